//! A like as stored, the rules that move it, and the events it emits: pure decisions, no
//! I/O.

use serde::{Deserialize, Serialize};
use shutter_core::{PostId, UserId};
use shutter_events::{Envelope, Event, LikeFacts};
use utoipa::ToSchema;

/// The state of one user's like of one post. It outlives an unlike (`liked: false`), so
/// `seq` keeps counting: it grows by exactly one on every change, and every write of it is
/// conditional on the `seq` it was read with, so two racing requests cannot both change it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LikeState {
    pub post_id: PostId,
    pub user_id: UserId,
    pub post_author_id: UserId,
    pub liked: bool,
    pub seq: u64,
    /// When it last changed (RFC 3339).
    pub at: String,
    /// While liked: the id of the likers-list entry (a ULID, so the list sorts by time).
    #[serde(default)]
    pub entry: Option<String>,
    /// The liker's username when they liked (shown if the directory does not know them yet).
    #[serde(default)]
    pub username: String,
}

/// What a like or unlike asks for.
#[derive(Debug, Clone)]
pub struct LikeRequest<'a> {
    pub post_id: &'a PostId,
    pub post_author_id: &'a UserId,
    pub user_id: &'a UserId,
    pub username: &'a str,
    pub liked: bool,
}

/// The next state if `request` changes `current`; `None` when it already holds (liking a
/// liked post, unliking one never liked), which changes nothing and emits nothing.
pub fn transition(current: Option<&LikeState>, request: &LikeRequest<'_>) -> Option<LikeState> {
    let was_liked = current.is_some_and(|c| c.liked);
    if was_liked == request.liked {
        return None;
    }
    // The likers list is ordered by the entry's id: its time is the id's own instant.
    let (entry, at) = shutter_core::new_id_and_time();
    Some(LikeState {
        post_id: request.post_id.clone(),
        user_id: request.user_id.clone(),
        post_author_id: request.post_author_id.clone(),
        liked: request.liked,
        seq: current.map_or(0, |c| c.seq) + 1,
        entry: request.liked.then_some(entry),
        username: request.username.to_owned(),
        at,
    })
}

/// What erasing a deleted account's like reports: the like taken back (one more `seq`)
/// when it held, so the posts' counters drop; `None` when it did not hold, which is
/// erased without an event.
pub fn erased(current: &LikeState) -> Option<LikeState> {
    current.liked.then(|| LikeState {
        liked: false,
        seq: current.seq + 1,
        entry: None,
        at: shutter_core::now_rfc3339(),
        ..current.clone()
    })
}

impl LikeState {
    /// The payload of `LikeAdded` and `LikeRemoved`: a contract the posts service consumes.
    pub fn facts(&self) -> LikeFacts {
        LikeFacts {
            post_id: self.post_id.clone(),
            post_author_id: self.post_author_id.clone(),
            user_id: self.user_id.clone(),
            seq: self.seq,
            at: self.at.clone(),
        }
    }

    /// The event reporting this state (`LikeAdded` while liked, else `LikeRemoved`),
    /// caused by `actor` within request `correlation_id`.
    pub fn event(&self, actor: Option<&UserId>, correlation_id: &str) -> Envelope {
        let event = if self.liked {
            Event::LikeAdded(self.facts())
        } else {
            Event::LikeRemoved(self.facts())
        };
        Envelope::new(event, actor, correlation_id)
    }
}

/// An entry of a post's likers list as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LikerEntry {
    /// The position in the list (opaque to all but the store; a page resumes after it).
    pub position: String,
    pub user_id: UserId,
    pub username: String,
    pub liked_at: String,
}

/// `PUT` / `DELETE /v1/posts/{id}/like` answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct LikeStatus {
    pub post_id: PostId,
    /// Whether the caller likes the post now.
    pub liked: bool,
}

/// One liker in `GET /v1/posts/{id}/likes`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Liker {
    pub user_id: UserId,
    pub username: String,
    pub display_name: String,
    /// When they liked the post (RFC 3339).
    pub liked_at: String,
}

/// A page of likers, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct LikersPage {
    pub items: Vec<Liker>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use shutter_events::EventType;

    struct Ids {
        post: PostId,
        author: UserId,
        user: UserId,
    }

    fn ids() -> Ids {
        Ids {
            post: PostId::generate(),
            author: UserId::generate(),
            user: UserId::generate(),
        }
    }

    fn request(ids: &Ids, liked: bool) -> LikeRequest<'_> {
        LikeRequest {
            post_id: &ids.post,
            post_author_id: &ids.author,
            user_id: &ids.user,
            username: "ann",
            liked,
        }
    }

    #[test]
    fn seq_grows_by_one_on_every_change_and_only_on_a_change() {
        // GIVEN no like, WHEN liked, unliked and liked again (with repeats between)
        let ids = ids();
        let first = transition(None, &request(&ids, true)).unwrap();
        assert_eq!((first.seq, first.liked), (1, true));
        assert!(first.entry.is_some());
        assert!(transition(Some(&first), &request(&ids, true)).is_none());
        let second = transition(Some(&first), &request(&ids, false)).unwrap();
        assert_eq!(
            (second.seq, second.liked, second.entry.is_none()),
            (2, false, true)
        );
        assert!(transition(Some(&second), &request(&ids, false)).is_none());
        let third = transition(Some(&second), &request(&ids, true)).unwrap();
        // THEN only the changes count, and each says which event it is
        assert_eq!(third.seq, 3);
        assert_eq!(third.event(None, "c").event_type(), EventType::LikeAdded);
        assert_eq!(second.event(None, "c").event_type(), EventType::LikeRemoved);
    }

    #[test]
    fn unliking_what_was_never_liked_changes_nothing() {
        assert!(transition(None, &request(&ids(), false)).is_none());
    }

    #[test]
    fn the_event_payload_is_the_contract() {
        // GIVEN a new like, WHEN its event is built
        let ids = ids();
        let state = transition(None, &request(&ids, true)).unwrap();
        let event = state.event(Some(&ids.user), "corr");
        // THEN it is keyed by the post and carries exactly the contract's fields
        assert_eq!(event.aggregate_id, ids.post.as_str());
        assert_eq!(event.actor.as_ref(), Some(&ids.user));
        let data = event.event.to_data().unwrap();
        let mut keys: Vec<_> = data.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        assert_eq!(
            keys,
            ["at", "post_author_id", "post_id", "seq", "user_id"].map(str::to_owned)
        );
        assert_eq!(data["seq"], 1);
        assert_eq!(data["post_author_id"], ids.author.as_str());
    }

    #[test]
    fn erasing_reports_a_held_like_as_removed_and_a_lapsed_one_not_at_all() {
        // GIVEN a like that holds and one taken back
        let ids = ids();
        let liked = transition(None, &request(&ids, true)).unwrap();
        let unliked = transition(Some(&liked), &request(&ids, false)).unwrap();
        // WHEN each is erased
        let removed = erased(&liked).unwrap();
        // THEN only the held one is reported, one seq on, without its list entry
        assert_eq!(
            (removed.liked, removed.seq, removed.entry.as_deref()),
            (false, 2, None)
        );
        assert_eq!(
            removed.event(None, "c").event_type(),
            EventType::LikeRemoved
        );
        assert_eq!(erased(&unliked), None);
    }
}
