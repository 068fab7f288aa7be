//! Follow edges and blocks as stored, the rules that move them, the events they emit and
//! the shapes the API answers with.

use serde::{Deserialize, Serialize};
use shutter_events::legacy::Envelope;
use utoipa::ToSchema;

/// Where a follower stands with a followee.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FollowState {
    /// No follow and no pending request.
    None,
    /// A request to a private account, waiting for its approval.
    Requested,
    /// An approved follow: the follower sees the followee's posts.
    Following,
}

/// One follower-to-followee edge. It outlives an unfollow (`state: none`), so `seq` keeps
/// counting: it grows by one on every change, and each write is conditional on the `seq`
/// it read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Edge {
    pub follower_id: String,
    pub followee_id: String,
    pub state: FollowState,
    pub seq: u64,
    /// When the state last changed (RFC 3339).
    pub since: String,
    /// While `requested` or `following`: the id of its list entries (a ULID, so the lists
    /// sort by time).
    #[serde(default)]
    pub entry: Option<String>,
}

/// Why an edge ends; carried in the event so consumers and clients can tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    /// The follower unfollowed or withdrew the request.
    Withdrawn,
    /// The followee declined the request.
    Declined,
    /// One of the two blocked the other.
    Blocked,
    /// One of the two deleted their account.
    AccountDeleted,
}

/// What a request asks of an edge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EdgeAction {
    /// Follow; a private followee gets a request instead.
    Follow { private: bool },
    /// The followee approves a pending request.
    Approve,
    /// End the edge, whatever it is.
    End(EndReason),
}

/// The next edge if `action` changes `current`; `None` when it already holds (following
/// one you follow, unfollowing one you do not) or does not apply (approving where no
/// request is pending): such a request changes nothing and emits nothing.
pub fn next_edge(
    current: Option<&Edge>,
    follower_id: &str,
    followee_id: &str,
    action: EdgeAction,
) -> Option<Edge> {
    let state = current.map_or(FollowState::None, |c| c.state);
    let next = match (state, action) {
        (FollowState::None, EdgeAction::Follow { private: true }) => FollowState::Requested,
        (FollowState::None, EdgeAction::Follow { private: false }) => FollowState::Following,
        (FollowState::Requested, EdgeAction::Approve) => FollowState::Following,
        (FollowState::Requested | FollowState::Following, EdgeAction::End(_)) => FollowState::None,
        _ => return None,
    };
    let (entry, since) = shutter_core::new_id_and_time();
    Some(Edge {
        follower_id: follower_id.to_owned(),
        followee_id: followee_id.to_owned(),
        state: next,
        seq: current.map_or(0, |c| c.seq) + 1,
        entry: (next != FollowState::None).then_some(entry),
        since,
    })
}

/// The payload of every follow event: a contract the profiles, feed, search and other
/// services consume. `seq` orders the changes of one (follower, followee) edge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EdgeEvent {
    pub follower_id: String,
    pub followee_id: String,
    pub seq: u64,
    pub at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<EndReason>,
}

/// The event reporting the move from `previous` to `next`.
pub fn edge_event(
    previous: FollowState,
    next: &Edge,
    reason: Option<EndReason>,
    actor: Option<&str>,
    correlation_id: &str,
) -> Envelope {
    let event_type = match (previous, next.state) {
        (_, FollowState::Following) => "FollowStarted",
        (_, FollowState::Requested) => "FollowRequested",
        (FollowState::Following, FollowState::None) => "FollowEnded",
        _ => "FollowRequestCancelled",
    };
    let data = EdgeEvent {
        follower_id: next.follower_id.clone(),
        followee_id: next.followee_id.clone(),
        seq: next.seq,
        at: next.since.clone(),
        reason: reason.filter(|_| next.state == FollowState::None),
    };
    Envelope::new(event_type, &next.follower_id, actor, correlation_id, &data)
}

/// One user's block of another. It outlives an unblock (`blocked: false`) so `seq` keeps
/// counting, like [`Edge`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Block {
    pub blocker_id: String,
    pub blocked_id: String,
    pub blocked: bool,
    pub seq: u64,
    pub since: String,
}

/// The next block state if it changes; `None` when it already holds.
pub fn next_block(
    current: Option<&Block>,
    blocker_id: &str,
    blocked_id: &str,
    blocked: bool,
) -> Option<Block> {
    if current.is_some_and(|c| c.blocked) == blocked {
        return None;
    }
    Some(Block {
        blocker_id: blocker_id.to_owned(),
        blocked_id: blocked_id.to_owned(),
        blocked,
        seq: current.map_or(0, |c| c.seq) + 1,
        since: shutter_core::now_rfc3339(),
    })
}

/// The payload of `UserBlocked` and `UserUnblocked`; `seq` orders one pair's changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockEvent {
    pub blocker_id: String,
    pub blocked_id: String,
    pub seq: u64,
    pub at: String,
}

impl Block {
    pub fn event(&self, actor: Option<&str>, correlation_id: &str) -> Envelope {
        let event_type = if self.blocked {
            "UserBlocked"
        } else {
            "UserUnblocked"
        };
        let data = BlockEvent {
            blocker_id: self.blocker_id.clone(),
            blocked_id: self.blocked_id.clone(),
            seq: self.seq,
            at: self.since.clone(),
        };
        Envelope::new(event_type, &self.blocker_id, actor, correlation_id, &data)
    }
}

/// Everything between a viewer and another user that the endpoints decide on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Relation {
    /// The viewer's edge to the other.
    pub outgoing: Option<Edge>,
    /// The other's edge to the viewer.
    pub incoming: Option<Edge>,
    /// The viewer's block of the other.
    pub blocking: Option<Block>,
    /// The other's block of the viewer.
    pub blocked_by: Option<Block>,
}

impl Relation {
    pub fn outgoing_state(&self) -> FollowState {
        self.outgoing
            .as_ref()
            .map_or(FollowState::None, |e| e.state)
    }

    pub fn incoming_state(&self) -> FollowState {
        self.incoming
            .as_ref()
            .map_or(FollowState::None, |e| e.state)
    }

    /// Either blocked the other: they are hidden from each other.
    pub fn blocked_either_way(&self) -> bool {
        self.blocking.as_ref().is_some_and(|b| b.blocked)
            || self.blocked_by.as_ref().is_some_and(|b| b.blocked)
    }
}

/// An entry of a followers, following or follow-requests list as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListEntry {
    /// The entry's position in its list (its sort key).
    pub position: String,
    /// The other user of the edge.
    pub user_id: String,
    pub at: String,
}

/// `PUT`/`DELETE /v1/users/{username}/follow` and the follow-request answers.
#[derive(Debug, Serialize, ToSchema)]
pub struct FollowStatus {
    pub user_id: String,
    pub username: String,
    /// Where the follower stands now.
    pub state: FollowState,
}

/// `PUT`/`DELETE /v1/users/{username}/block` answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct BlockStatus {
    pub user_id: String,
    pub username: String,
    /// Whether you block the user now.
    pub blocked: bool,
}

/// One user in a followers or following list.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct FollowEntry {
    pub user_id: String,
    pub username: String,
    pub display_name: String,
    /// When this follow started.
    pub since: String,
    /// Your own follow state towards this user (`none` for yourself).
    pub viewer_state: FollowState,
}

/// `GET /v1/users/{username}/followers` and `/following` answer.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct FollowPage {
    pub items: Vec<FollowEntry>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// One pending request in `GET /v1/follow-requests`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct FollowRequestEntry {
    /// The request's id: the requester's user id (one request per requester).
    pub id: String,
    pub user_id: String,
    pub username: String,
    pub display_name: String,
    pub requested_at: String,
}

/// `GET /v1/follow-requests` answer.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct FollowRequestPage {
    pub items: Vec<FollowRequestEntry>,
    pub next_cursor: Option<String>,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn follow(private: bool) -> EdgeAction {
        EdgeAction::Follow { private }
    }

    #[test]
    fn following_a_public_account_starts_at_once_and_a_private_one_asks_first() {
        let public = next_edge(None, "a", "b", follow(false)).unwrap();
        assert_eq!((public.state, public.seq), (FollowState::Following, 1));
        assert!(public.entry.is_some());
        let private = next_edge(None, "a", "b", follow(true)).unwrap();
        assert_eq!(private.state, FollowState::Requested);
        let approved = next_edge(Some(&private), "a", "b", EdgeAction::Approve).unwrap();
        assert_eq!((approved.state, approved.seq), (FollowState::Following, 2));
        assert_ne!(approved.entry, private.entry);
    }

    #[test]
    fn repeated_and_inapplicable_requests_change_nothing() {
        let following = next_edge(None, "a", "b", follow(false)).unwrap();
        assert_eq!(next_edge(Some(&following), "a", "b", follow(false)), None);
        assert_eq!(next_edge(Some(&following), "a", "b", follow(true)), None);
        assert_eq!(
            next_edge(Some(&following), "a", "b", EdgeAction::Approve),
            None
        );
        assert_eq!(next_edge(None, "a", "b", EdgeAction::Approve), None);
        assert_eq!(
            next_edge(None, "a", "b", EdgeAction::End(EndReason::Withdrawn)),
            None
        );
        let ended = next_edge(
            Some(&following),
            "a",
            "b",
            EdgeAction::End(EndReason::Withdrawn),
        )
        .unwrap();
        assert_eq!(
            (ended.state, ended.seq, ended.entry.clone()),
            (FollowState::None, 2, None)
        );
        let again = next_edge(Some(&ended), "a", "b", follow(false)).unwrap();
        assert_eq!(again.seq, 3);
    }

    #[test]
    fn each_move_names_its_event() {
        let requested = next_edge(None, "a", "b", follow(true)).unwrap();
        let kind =
            |prev, next: &Edge, reason| edge_event(prev, next, reason, Some("a"), "c").event_type;
        assert_eq!(kind(FollowState::None, &requested, None), "FollowRequested");
        let declined = next_edge(
            Some(&requested),
            "a",
            "b",
            EdgeAction::End(EndReason::Declined),
        )
        .unwrap();
        let event = edge_event(
            FollowState::Requested,
            &declined,
            Some(EndReason::Declined),
            Some("b"),
            "c",
        );
        assert_eq!(event.event_type, "FollowRequestCancelled");
        assert_eq!(event.aggregate_id, "a");
        let data: EdgeEvent = event.data().unwrap();
        assert_eq!((data.seq, data.reason), (2, Some(EndReason::Declined)));
        let following = next_edge(None, "a", "b", follow(false)).unwrap();
        assert_eq!(kind(FollowState::None, &following, None), "FollowStarted");
        let ended = next_edge(
            Some(&following),
            "a",
            "b",
            EdgeAction::End(EndReason::Blocked),
        )
        .unwrap();
        assert_eq!(
            kind(FollowState::Following, &ended, Some(EndReason::Blocked)),
            "FollowEnded"
        );
    }

    #[test]
    fn blocks_toggle_once_and_count() {
        let on = next_block(None, "a", "b", true).unwrap();
        assert_eq!((on.blocked, on.seq), (true, 1));
        assert_eq!(next_block(Some(&on), "a", "b", true), None);
        assert_eq!(next_block(None, "a", "b", false), None);
        let off = next_block(Some(&on), "a", "b", false).unwrap();
        assert_eq!((off.blocked, off.seq), (false, 2));
        assert_eq!(off.event(Some("a"), "c").event_type, "UserUnblocked");
        assert_eq!(on.event(Some("a"), "c").event_type, "UserBlocked");
    }
}
