//! A like as stored, the rule that moves it, and the event it emits.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The state of one user's like of one post. It outlives an unlike (`liked: false`), so
/// `seq` keeps counting: it grows by exactly one on every change, and every write of it is
/// conditional on the `seq` it was read with, so two racing requests cannot both change it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LikeState {
    pub post_id: String,
    pub user_id: String,
    pub post_author_id: String,
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
    pub post_id: &'a str,
    pub post_author_id: &'a str,
    pub user_id: &'a str,
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
        post_id: request.post_id.to_owned(),
        user_id: request.user_id.to_owned(),
        post_author_id: request.post_author_id.to_owned(),
        liked: request.liked,
        seq: current.map_or(0, |c| c.seq) + 1,
        entry: request.liked.then_some(entry),
        username: request.username.to_owned(),
        at,
    })
}

/// The payload of `LikeAdded` and `LikeRemoved`: a contract the posts service consumes.
/// `seq` orders the changes of one (post, user) like, so a consumer can drop stale or
/// repeated ones.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LikeEvent {
    pub post_id: String,
    pub post_author_id: String,
    pub user_id: String,
    pub seq: u64,
    pub at: String,
}

impl LikeState {
    pub fn event_type(&self) -> &'static str {
        if self.liked {
            "LikeAdded"
        } else {
            "LikeRemoved"
        }
    }

    pub fn event_data(&self) -> LikeEvent {
        LikeEvent {
            post_id: self.post_id.clone(),
            post_author_id: self.post_author_id.clone(),
            user_id: self.user_id.clone(),
            seq: self.seq,
            at: self.at.clone(),
        }
    }

    /// The event reporting this state, caused by `actor`.
    pub fn event(
        &self,
        actor: Option<&str>,
        correlation_id: &str,
    ) -> shutter_events::legacy::Envelope {
        shutter_events::legacy::Envelope::new(
            self.event_type(),
            &self.post_id,
            actor,
            correlation_id,
            &self.event_data(),
        )
    }
}

/// An entry of a post's likers list as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LikerEntry {
    /// The position in the list (the entry's sort key).
    pub position: String,
    pub user_id: String,
    pub username: String,
    pub liked_at: String,
}

/// `PUT` / `DELETE /v1/posts/{id}/like` answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct LikeStatus {
    pub post_id: String,
    /// Whether the caller likes the post now.
    pub liked: bool,
}

/// One liker in `GET /v1/posts/{id}/likes`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Liker {
    pub user_id: String,
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

    fn request(liked: bool) -> LikeRequest<'static> {
        LikeRequest {
            post_id: "p",
            post_author_id: "a",
            user_id: "u",
            username: "ann",
            liked,
        }
    }

    #[test]
    fn seq_grows_by_one_on_every_change_and_only_on_a_change() {
        let first = transition(None, &request(true)).unwrap();
        assert_eq!((first.seq, first.liked), (1, true));
        assert!(first.entry.is_some());
        assert!(transition(Some(&first), &request(true)).is_none());
        let second = transition(Some(&first), &request(false)).unwrap();
        assert_eq!(
            (second.seq, second.liked, second.entry.is_none()),
            (2, false, true)
        );
        assert!(transition(Some(&second), &request(false)).is_none());
        let third = transition(Some(&second), &request(true)).unwrap();
        assert_eq!(third.seq, 3);
        assert_eq!(third.event_type(), "LikeAdded");
        assert_eq!(second.event_type(), "LikeRemoved");
    }

    #[test]
    fn unliking_what_was_never_liked_changes_nothing() {
        assert!(transition(None, &request(false)).is_none());
    }

    #[test]
    fn the_event_payload_is_the_contract() {
        let state = transition(None, &request(true)).unwrap();
        let event = state.event(Some("u"), "corr");
        assert_eq!(event.aggregate_id, "p");
        let mut keys: Vec<_> = event.data.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        assert_eq!(
            keys,
            ["at", "post_author_id", "post_id", "seq", "user_id"].map(str::to_owned)
        );
        assert_eq!(event.data["seq"], 1);
    }
}
