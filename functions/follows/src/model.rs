//! Follow edges and blocks, the rules that move them, the events that report each move,
//! and the shapes the API answers with. Nothing here does I/O: the use cases load, ask
//! these rules what changes, and save.

use serde::{Deserialize, Serialize};
use shutter_core::UserId;
use shutter_events::{BlockFacts, EdgeFacts, Event};
use utoipa::ToSchema;

/// Why an edge ends, as the catalogue carries it in the event.
pub use shutter_events::EndReason;

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
    pub follower_id: UserId,
    pub followee_id: UserId,
    pub state: FollowState,
    pub seq: u64,
    /// When the state last changed (RFC 3339).
    pub since: String,
    /// While `requested` or `following`: the id of its list entries (a ULID, so the lists
    /// sort by time).
    #[serde(default)]
    pub entry: Option<String>,
    /// A `following` edge the followee approved (a request they answered). One that
    /// started on its own (the account was public as far as this service knew, or turned
    /// public and took its requests) is not: if the account had in fact turned private
    /// before it started, it goes back to a request ([`started_on_stale_privacy`]).
    #[serde(default)]
    pub approved: bool,
}

/// What a request asks of an edge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EdgeAction {
    /// Follow; a private followee gets a request instead.
    Follow { private: bool },
    /// The followee approves a pending request.
    Approve,
    /// An account that turned public takes a pending request (nobody approved it).
    TakeAsPublic,
    /// End the edge, whatever it is.
    End(EndReason),
}

/// The next edge if `action` changes `current`; `None` when it already holds (following
/// one you follow, unfollowing one you do not) or does not apply (approving where no
/// request is pending): such a request changes nothing and emits nothing.
pub fn next_edge(
    current: Option<&Edge>,
    follower_id: &UserId,
    followee_id: &UserId,
    action: EdgeAction,
) -> Option<Edge> {
    let state = current.map_or(FollowState::None, |c| c.state);
    let next = match (state, action) {
        (FollowState::None, EdgeAction::Follow { private: true }) => FollowState::Requested,
        (FollowState::None, EdgeAction::Follow { private: false }) => FollowState::Following,
        (FollowState::Requested, EdgeAction::Approve | EdgeAction::TakeAsPublic) => {
            FollowState::Following
        }
        (FollowState::Requested | FollowState::Following, EdgeAction::End(_)) => FollowState::None,
        _ => return None,
    };
    // The entry id and the time come from one ULID, so a list sorted by entry is sorted
    // by time too.
    let (entry, since) = shutter_core::new_id_and_time();
    Some(Edge {
        follower_id: follower_id.clone(),
        followee_id: followee_id.clone(),
        state: next,
        seq: current.map_or(0, |c| c.seq) + 1,
        entry: (next != FollowState::None).then_some(entry),
        since,
        approved: next == FollowState::Following && action == EdgeAction::Approve,
    })
}

/// Whether `edge` is a follow that started on its own at or after `private_since`, when
/// the followee's account had already turned private: it was decided on a stale copy of
/// the privacy (the profile event had not reached this service yet). A follow that
/// started before, or that the followee approved, stands. Times are RFC 3339 with three
/// fraction digits, so they compare as strings.
pub fn started_on_stale_privacy(edge: &Edge, private_since: &str) -> bool {
    edge.state == FollowState::Following && !edge.approved && edge.since.as_str() >= private_since
}

/// Such a follow as the pending request it should have been, and the two events of the
/// move: `FollowEnded` (reason `awaits_approval`, `seq` + 1), then `FollowRequested`
/// (`seq` + 2), so every consumer that counts, lists or shows follows undoes the follow
/// once and in `seq` order. `None` unless `edge` is a follow.
pub fn back_to_request(edge: &Edge) -> Option<(Edge, [Event; 2])> {
    if edge.state != FollowState::Following {
        return None;
    }
    let (follower, followee) = (&edge.follower_id, &edge.followee_id);
    let end = EdgeAction::End(EndReason::AwaitsApproval);
    let ended = next_edge(Some(edge), follower, followee, end)?;
    let ask = EdgeAction::Follow { private: true };
    let requested = next_edge(Some(&ended), follower, followee, ask)?;
    let events = [
        edge_event(edge.state, &ended, end),
        edge_event(ended.state, &requested, ask),
    ];
    Some((requested, events))
}

/// The event reporting the move from `previous` to `next` made by `action`. Its payload
/// is a contract the profiles, feed, search and other services consume; `seq` orders one
/// edge's changes, and an ended edge says why.
pub fn edge_event(previous: FollowState, next: &Edge, action: EdgeAction) -> Event {
    let facts = EdgeFacts {
        follower_id: next.follower_id.clone(),
        followee_id: next.followee_id.clone(),
        seq: next.seq,
        at: next.since.clone(),
        reason: match action {
            EdgeAction::End(reason) => Some(reason),
            EdgeAction::Follow { .. } | EdgeAction::Approve | EdgeAction::TakeAsPublic => None,
        },
    };
    match (previous, next.state) {
        (_, FollowState::Following) => Event::FollowStarted(facts),
        (_, FollowState::Requested) => Event::FollowRequested(facts),
        (FollowState::Following, FollowState::None) => Event::FollowEnded(facts),
        // A request that ends was never a follow: it is cancelled.
        _ => Event::FollowRequestCancelled(facts),
    }
}

/// One user's block of another. It outlives an unblock (`blocked: false`) so `seq` keeps
/// counting, like [`Edge`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Block {
    pub blocker_id: UserId,
    pub blocked_id: UserId,
    pub blocked: bool,
    pub seq: u64,
    pub since: String,
}

/// The next block state if it changes; `None` when it already holds.
pub fn next_block(
    current: Option<&Block>,
    blocker_id: &UserId,
    blocked_id: &UserId,
    blocked: bool,
) -> Option<Block> {
    if current.is_some_and(|c| c.blocked) == blocked {
        return None;
    }
    Some(Block {
        blocker_id: blocker_id.clone(),
        blocked_id: blocked_id.clone(),
        blocked,
        seq: current.map_or(0, |c| c.seq) + 1,
        since: shutter_core::now_rfc3339(),
    })
}

impl Block {
    /// `UserBlocked` or `UserUnblocked`, as this block now stands.
    pub fn event(&self) -> Event {
        let facts = BlockFacts {
            blocker_id: self.blocker_id.clone(),
            blocked_id: self.blocked_id.clone(),
            seq: self.seq,
            at: self.since.clone(),
        };
        if self.blocked {
            Event::UserBlocked(facts)
        } else {
            Event::UserUnblocked(facts)
        }
    }
}

/// Everything between a viewer and another user that the use cases decide on.
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

    /// The viewer blocks the other.
    pub fn blocks(&self) -> bool {
        self.blocking.as_ref().is_some_and(|b| b.blocked)
    }

    /// The other blocks the viewer.
    pub fn is_blocked(&self) -> bool {
        self.blocked_by.as_ref().is_some_and(|b| b.blocked)
    }

    /// Either blocked the other: they are hidden from each other.
    pub fn blocked_either_way(&self) -> bool {
        self.blocks() || self.is_blocked()
    }
}

/// `PUT`/`DELETE /v1/users/{username}/follow` and the follow-request answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct FollowStatus {
    pub user_id: UserId,
    pub username: String,
    /// Where the follower stands now.
    pub state: FollowState,
}

/// `PUT`/`DELETE /v1/users/{username}/block` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct BlockStatus {
    pub user_id: UserId,
    pub username: String,
    /// Whether you block the user now.
    pub blocked: bool,
}

/// One user in a followers or following list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FollowEntry {
    pub user_id: UserId,
    pub username: String,
    pub display_name: String,
    /// When this follow started.
    pub since: String,
    /// Your own follow state towards this user (`none` for yourself).
    pub viewer_state: FollowState,
}

/// `GET /v1/users/{username}/followers` and `/following` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FollowPage {
    pub items: Vec<FollowEntry>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// One pending request in `GET /v1/follow-requests`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FollowRequestEntry {
    /// The request's id: the requester's user id (one request per requester).
    pub id: UserId,
    pub user_id: UserId,
    pub username: String,
    pub display_name: String,
    pub requested_at: String,
}

/// `GET /v1/follow-requests` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FollowRequestPage {
    pub items: Vec<FollowRequestEntry>,
    pub next_cursor: Option<String>,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use shutter_events::EventType;

    fn follow(private: bool) -> EdgeAction {
        EdgeAction::Follow { private }
    }

    fn pair() -> (UserId, UserId) {
        (UserId::generate(), UserId::generate())
    }

    #[test]
    fn following_a_public_account_starts_at_once_and_a_private_one_asks_first() {
        let (a, b) = pair();
        // GIVEN no edge WHEN a follows a public b THEN the follow starts at seq 1.
        let public = next_edge(None, &a, &b, follow(false)).unwrap();
        assert_eq!((public.state, public.seq), (FollowState::Following, 1));
        assert!(public.entry.is_some());
        // WHEN b is private THEN a asks, and the approval is a new entry at seq 2.
        let private = next_edge(None, &a, &b, follow(true)).unwrap();
        assert_eq!(private.state, FollowState::Requested);
        let approved = next_edge(Some(&private), &a, &b, EdgeAction::Approve).unwrap();
        assert_eq!((approved.state, approved.seq), (FollowState::Following, 2));
        assert_ne!(approved.entry, private.entry);
    }

    #[test]
    fn repeated_and_inapplicable_requests_change_nothing() {
        let (a, b) = pair();
        let following = next_edge(None, &a, &b, follow(false)).unwrap();
        assert_eq!(next_edge(Some(&following), &a, &b, follow(false)), None);
        assert_eq!(next_edge(Some(&following), &a, &b, follow(true)), None);
        assert_eq!(
            next_edge(Some(&following), &a, &b, EdgeAction::Approve),
            None
        );
        assert_eq!(next_edge(None, &a, &b, EdgeAction::Approve), None);
        let withdraw = EdgeAction::End(EndReason::Withdrawn);
        assert_eq!(next_edge(None, &a, &b, withdraw), None);
        let ended = next_edge(Some(&following), &a, &b, withdraw).unwrap();
        assert_eq!(
            (ended.state, ended.seq, ended.entry.clone()),
            (FollowState::None, 2, None)
        );
        assert_eq!(next_edge(Some(&ended), &a, &b, withdraw), None);
        // The edge outlives the unfollow: following again counts on.
        let again = next_edge(Some(&ended), &a, &b, follow(false)).unwrap();
        assert_eq!(again.seq, 3);
    }

    #[test]
    fn each_move_names_its_event() {
        let (a, b) = pair();
        let requested = next_edge(None, &a, &b, follow(true)).unwrap();
        assert_eq!(
            edge_event(FollowState::None, &requested, follow(true)).event_type(),
            EventType::FollowRequested
        );
        let decline = EdgeAction::End(EndReason::Declined);
        let declined = next_edge(Some(&requested), &a, &b, decline).unwrap();
        let event = edge_event(FollowState::Requested, &declined, decline);
        // Keyed by the follower, whoever acted.
        assert_eq!(event.aggregate_id(), a.as_str());
        let Event::FollowRequestCancelled(facts) = event else {
            panic!("a declined request is cancelled: {event:?}")
        };
        assert_eq!((facts.seq, facts.reason), (2, Some(EndReason::Declined)));
        assert_eq!(
            (facts.follower_id, facts.followee_id),
            (a.clone(), b.clone())
        );

        let following = next_edge(None, &a, &b, follow(false)).unwrap();
        let started = edge_event(FollowState::None, &following, follow(false));
        let Event::FollowStarted(facts) = started else {
            panic!("a follow of a public account starts: {started:?}")
        };
        assert_eq!(facts.reason, None, "only an end has a reason");
        let block = EdgeAction::End(EndReason::Blocked);
        let ended = next_edge(Some(&following), &a, &b, block).unwrap();
        assert_eq!(
            edge_event(FollowState::Following, &ended, block).event_type(),
            EventType::FollowEnded
        );
    }

    #[test]
    fn the_event_payload_is_the_catalogues_wire_format() {
        let (a, b) = pair();
        let requested = next_edge(None, &a, &b, follow(true)).unwrap();
        let withdraw = EdgeAction::End(EndReason::Withdrawn);
        let withdrawn = next_edge(Some(&requested), &a, &b, withdraw).unwrap();
        let data = edge_event(FollowState::Requested, &withdrawn, withdraw)
            .to_data()
            .unwrap();
        assert_eq!(
            data,
            serde_json::json!({
                "follower_id": a.as_str(), "followee_id": b.as_str(), "seq": 2,
                "at": withdrawn.since, "reason": "withdrawn"
            })
        );
        let data = edge_event(FollowState::None, &requested, follow(true))
            .to_data()
            .unwrap();
        assert!(
            data.get("reason").is_none(),
            "no reason unless ended: {data}"
        );
    }

    #[test]
    fn blocks_toggle_once_and_count() {
        let (a, b) = pair();
        let on = next_block(None, &a, &b, true).unwrap();
        assert_eq!((on.blocked, on.seq), (true, 1));
        assert_eq!(next_block(Some(&on), &a, &b, true), None);
        assert_eq!(next_block(None, &a, &b, false), None);
        let off = next_block(Some(&on), &a, &b, false).unwrap();
        assert_eq!((off.blocked, off.seq), (false, 2));
        assert_eq!(off.event().event_type(), EventType::UserUnblocked);
        assert_eq!(on.event().event_type(), EventType::UserBlocked);
        assert_eq!(
            on.event().aggregate_id(),
            a.as_str(),
            "keyed by the blocker"
        );
    }

    #[test]
    fn a_block_either_way_hides_the_two_from_each_other() {
        let (a, b) = pair();
        let mut rel = Relation::default();
        assert!(!rel.blocked_either_way());
        rel.blocked_by = next_block(None, &b, &a, true);
        assert!(rel.is_blocked() && !rel.blocks() && rel.blocked_either_way());
        rel.blocked_by = None;
        rel.blocking = next_block(None, &a, &b, true);
        assert!(rel.blocks() && !rel.is_blocked() && rel.blocked_either_way());
        // A lifted block is no block.
        rel.blocking = next_block(rel.blocking.as_ref(), &a, &b, false);
        assert!(!rel.blocked_either_way());
    }

    #[test]
    fn a_follow_that_started_on_its_own_after_the_switch_goes_back_to_a_request() {
        let (a, b) = pair();
        // GIVEN a followed b on its own at `since`, and b's account turned private
        let follow = next_edge(None, &a, &b, follow(false)).unwrap();
        let before = "2000-01-01T00:00:00.000Z";
        let after = "2999-01-01T00:00:00.000Z";
        // THEN it was decided on stale privacy if it started at or after the switch
        assert!(started_on_stale_privacy(&follow, before));
        assert!(started_on_stale_privacy(&follow, &follow.since));
        assert!(!started_on_stale_privacy(&follow, after), "started before");
        // AND a follow b approved, or a request, stands
        let asked = next_edge(None, &a, &b, EdgeAction::Follow { private: true }).unwrap();
        assert!(!started_on_stale_privacy(&asked, before));
        let approved = next_edge(Some(&asked), &a, &b, EdgeAction::Approve).unwrap();
        assert!(approved.approved);
        assert!(!started_on_stale_privacy(&approved, before));
        // AND one an account that turned public took was nobody's approval
        let taken = next_edge(Some(&asked), &a, &b, EdgeAction::TakeAsPublic).unwrap();
        assert!(started_on_stale_privacy(&taken, before));
        // WHEN it goes back THEN it ends (seq + 1) and is requested (seq + 2), in order
        let (request, [ended, requested]) = back_to_request(&follow).unwrap();
        assert_eq!((request.state, request.seq), (FollowState::Requested, 3));
        assert!(request.entry.is_some() && !request.approved);
        assert_ne!(request.entry, follow.entry);
        let Event::FollowEnded(end) = &ended else {
            panic!("{ended:?}")
        };
        assert_eq!((end.seq, end.reason), (2, Some(EndReason::AwaitsApproval)));
        let Event::FollowRequested(ask) = &requested else {
            panic!("{requested:?}")
        };
        assert_eq!(
            (ask.seq, ask.reason, ask.at.clone()),
            (3, None, request.since.clone())
        );
        assert_eq!(requested.event_type(), EventType::FollowRequested);
        // AND only a follow goes back
        assert!(back_to_request(&asked).is_none());
    }
}
