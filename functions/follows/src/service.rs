//! The use cases: each loads what it decides on, asks the model what changes, and commits
//! the change with its events in one transaction. A change that a racing request
//! overtook (the store's `STALE`) is decided again on what that request left.

use serde::{Deserialize, Serialize};
use shutter_core::validate::Username;
use shutter_core::{ApiError, PageRequest, UserId};
use shutter_directory::{Author, Directory};
use shutter_events::{Envelope, Event};
use shutter_http::Caller;
use shutter_store::CursorKey;
use shutter_store::{StoreError, StoreResult};

use crate::App;
use crate::errors::{self, kept_changing};
use crate::model::{
    BlockStatus, Edge, EdgeAction, EndReason, FollowEntry, FollowPage, FollowRequestEntry,
    FollowRequestPage, FollowState, FollowStatus, Relation, edge_event, next_block, next_edge,
};
use crate::store::{self, Change, FollowsStore, List, ListEntry};

/// How often a change is decided again when racing requests changed what it read.
pub(crate) const MAX_ATTEMPTS: usize = 5;

fn not_found() -> ApiError {
    ApiError::NotFound("user")
}

/// One who blocks the caller does not exist for them; one the caller blocks must be
/// unblocked first.
fn refuse_blocked(rel: &Relation) -> Result<(), ApiError> {
    if rel.is_blocked() {
        return Err(not_found());
    }
    if rel.blocks() {
        return Err(ApiError::conflict(
            "blocked",
            "username",
            "you block this user: unblock them first",
        ));
    }
    Ok(())
}

/// Follows, requests and blocks: what every function of the service may do.
impl<S: FollowsStore, D: Directory, C> App<S, D, C> {
    /// Follows `username`, or asks to if the account is private. Idempotent.
    pub async fn follow(
        &self,
        caller: &Caller,
        username: &Username,
        correlation_id: &str,
    ) -> Result<FollowStatus, ApiError> {
        let user = self.other_user(caller, username).await?;
        // A banned account is hidden from others (its profile is a 404): not followed.
        if self.banned(&user.user_id).await? {
            return Err(not_found());
        }
        let action = EdgeAction::Follow {
            private: user.private,
        };
        self.change_own_edge(caller, &user, action, correlation_id)
            .await
    }

    /// Stops following `username`, or withdraws the request. Idempotent.
    pub async fn unfollow(
        &self,
        caller: &Caller,
        username: &Username,
        correlation_id: &str,
    ) -> Result<FollowStatus, ApiError> {
        let user = self.other_user(caller, username).await?;
        let action = EdgeAction::End(EndReason::Withdrawn);
        self.change_own_edge(caller, &user, action, correlation_id)
            .await
    }

    /// The caller approves `requester`'s pending request.
    pub async fn approve(
        &self,
        caller: &Caller,
        requester: &UserId,
        correlation_id: &str,
    ) -> Result<FollowStatus, ApiError> {
        self.answer_request(caller, requester, EdgeAction::Approve, correlation_id)
            .await
    }

    /// The caller declines `requester`'s pending request; they may ask again.
    pub async fn decline(
        &self,
        caller: &Caller,
        requester: &UserId,
        correlation_id: &str,
    ) -> Result<FollowStatus, ApiError> {
        let action = EdgeAction::End(EndReason::Declined);
        self.answer_request(caller, requester, action, correlation_id)
            .await
    }

    /// Blocks `username`, ending follows and requests both ways. Idempotent.
    pub async fn block(
        &self,
        caller: &Caller,
        username: &Username,
        correlation_id: &str,
    ) -> Result<BlockStatus, ApiError> {
        self.set_block(caller, username, true, correlation_id).await
    }

    /// Lifts the caller's block of `username`; ended follows do not come back. Idempotent.
    pub async fn unblock(
        &self,
        caller: &Caller,
        username: &Username,
        correlation_id: &str,
    ) -> Result<BlockStatus, ApiError> {
        self.set_block(caller, username, false, correlation_id)
            .await
    }

    /// The user named `username`: never the caller (400), and one who does not exist is a
    /// 404; a deleted caller is a 401. Whether either blocks the other is each use case's
    /// decision.
    async fn other_user(&self, caller: &Caller, username: &Username) -> Result<Author, ApiError> {
        self.refuse_inactive(caller).await?;
        let user = self
            .directory
            .author_by_username(username.as_str())
            .await
            .map_err(errors::api)?
            .ok_or_else(not_found)?;
        if user.user_id == caller.user_id {
            return Err(ApiError::invalid(
                "username",
                "is you: follows and blocks are between two users",
            ));
        }
        Ok(user)
    }

    /// 401 for a deleted account's still-valid token, 403 `account_suspended` for a
    /// suspended or banned one, once this service's directory holds the tombstone or the
    /// standing ([`shutter_directory::refuse_inactive`], as every service answers). In the
    /// seconds before the event arrives the write passes: a follow racing the tombstone is
    /// refused by the store's guard, or ended by the deletion cascade; one by an account
    /// being suspended stays (following is no content to hide).
    async fn refuse_inactive(&self, caller: &Caller) -> Result<(), ApiError> {
        shutter_directory::refuse_inactive(&self.directory, &caller.user_id).await
    }

    /// Whether `user_id` is banned, as this service's directory knows (from its
    /// `UserSuspended` until its `UserReinstated`).
    async fn banned(&self, user_id: &UserId) -> Result<bool, ApiError> {
        let standing = self
            .directory
            .account_standing(user_id)
            .await
            .map_err(errors::api)?;
        Ok(standing.banned)
    }

    /// Moves the caller's edge to `user` by `action`, deciding again on what a racing
    /// request left, until it commits or already holds.
    async fn change_own_edge(
        &self,
        caller: &Caller,
        user: &Author,
        action: EdgeAction,
        correlation_id: &str,
    ) -> Result<FollowStatus, ApiError> {
        let status = |state| FollowStatus {
            user_id: user.user_id.clone(),
            username: user.username.clone(),
            state,
        };
        for _ in 0..MAX_ATTEMPTS {
            let rel = self
                .store
                .relation(&caller.user_id, &user.user_id)
                .await
                .map_err(errors::api)?;
            if matches!(action, EdgeAction::Follow { .. }) {
                refuse_blocked(&rel)?;
            }
            let Some(next) = next_edge(
                rel.outgoing.as_ref(),
                &caller.user_id,
                &user.user_id,
                action,
            ) else {
                return Ok(status(rel.outgoing_state()));
            };
            let (state, seq) = (next.state, next.seq);
            match self
                .commit_edge(rel.outgoing, next, action, caller, correlation_id)
                .await
            {
                Ok(()) => {
                    tracing::info!(followee = %user.user_id, seq, ?state, "follow changed");
                    return Ok(status(state));
                }
                Err(StoreError::Conflict(store::STALE)) => continue,
                // A block or a deletion won the race: answer as if it had come first.
                Err(StoreError::Conflict(store::BLOCKED | store::ACCOUNT_DELETED)) => {
                    let rel = self
                        .store
                        .relation(&caller.user_id, &user.user_id)
                        .await
                        .map_err(errors::api)?;
                    refuse_blocked(&rel)?;
                    return Err(not_found());
                }
                Err(err) => return Err(errors::api(err)),
            }
        }
        Err(kept_changing())
    }

    /// The caller (the followee) approves or declines `requester`'s pending request.
    async fn answer_request(
        &self,
        caller: &Caller,
        requester: &UserId,
        action: EdgeAction,
        correlation_id: &str,
    ) -> Result<FollowStatus, ApiError> {
        self.refuse_inactive(caller).await?;
        let missing = || ApiError::NotFound("follow request");
        for _ in 0..MAX_ATTEMPTS {
            let edge = self
                .store
                .edge(requester, &caller.user_id)
                .await
                .map_err(errors::api)?
                .filter(|e| e.state == FollowState::Requested)
                .ok_or_else(missing)?;
            let next =
                next_edge(Some(&edge), requester, &caller.user_id, action).ok_or_else(missing)?;
            let state = next.state;
            match self
                .commit_edge(Some(edge), next, action, caller, correlation_id)
                .await
            {
                Ok(()) => {
                    let user = self
                        .directory
                        .author(requester)
                        .await
                        .map_err(errors::api)?;
                    return Ok(FollowStatus {
                        user_id: requester.clone(),
                        username: user.map(|u| u.username).unwrap_or_default(),
                        state,
                    });
                }
                Err(StoreError::Conflict(store::STALE)) => continue,
                // A block or a deletion took the request away meanwhile.
                Err(StoreError::Conflict(store::BLOCKED | store::ACCOUNT_DELETED)) => {
                    return Err(missing());
                }
                Err(err) => return Err(errors::api(err)),
            }
        }
        Err(kept_changing())
    }

    /// Blocks or unblocks `username` for the caller; a block also ends both users' follows
    /// and requests between them, in the same transaction.
    async fn set_block(
        &self,
        caller: &Caller,
        username: &Username,
        blocked: bool,
        correlation_id: &str,
    ) -> Result<BlockStatus, ApiError> {
        let user = self.other_user(caller, username).await?;
        let answer = || BlockStatus {
            user_id: user.user_id.clone(),
            username: user.username.clone(),
            blocked,
        };
        for _ in 0..MAX_ATTEMPTS {
            let rel = self
                .store
                .relation(&caller.user_id, &user.user_id)
                .await
                .map_err(errors::api)?;
            let Some(next) = next_block(
                rel.blocking.as_ref(),
                &caller.user_id,
                &user.user_id,
                blocked,
            ) else {
                return Ok(answer());
            };
            let mut events = vec![next.event()];
            let mut changes = vec![Change::Block {
                previous: rel.blocking.clone(),
                next,
            }];
            if blocked {
                let end = EdgeAction::End(EndReason::Blocked);
                for edge in [&rel.outgoing, &rel.incoming].into_iter().flatten() {
                    if let Some(ended) =
                        next_edge(Some(edge), &edge.follower_id, &edge.followee_id, end)
                    {
                        events.push(edge_event(edge.state, &ended, end));
                        changes.push(Change::Edge {
                            previous: Some(edge.clone()),
                            next: ended,
                        });
                    }
                }
            }
            let events = envelopes(events, caller, correlation_id);
            match self.store.commit(&changes, &events).await {
                Ok(()) => {
                    tracing::info!(other = %user.user_id, blocked, "block changed");
                    return Ok(answer());
                }
                Err(StoreError::Conflict(store::STALE)) => continue,
                // A deleted account cannot be blocked: errors::api answers as for no user.
                Err(err) => return Err(errors::api(err)),
            }
        }
        Err(kept_changing())
    }

    /// Commits `next` in place of `previous` with the event of the move, caused by
    /// `caller`.
    async fn commit_edge(
        &self,
        previous: Option<Edge>,
        next: Edge,
        action: EdgeAction,
        caller: &Caller,
        correlation_id: &str,
    ) -> StoreResult<()> {
        let from = previous.as_ref().map_or(FollowState::None, |e| e.state);
        let events = envelopes(
            vec![edge_event(from, &next, action)],
            caller,
            correlation_id,
        );
        self.store
            .commit(&[Change::Edge { previous, next }], &events)
            .await
    }
}

/// `events` as `caller` caused them within request `correlation_id`.
fn envelopes(events: Vec<Event>, caller: &Caller, correlation_id: &str) -> Vec<Envelope> {
    events
        .into_iter()
        .map(|event| Envelope::new(event, Some(&caller.user_id), correlation_id))
        .collect()
}

/// The lists: only the functions that hold the cursor key page through them.
impl<S: FollowsStore, D: Directory> App<S, D, CursorKey> {
    /// Who follows `username`, newest first, with the caller's own state towards each.
    pub async fn followers(
        &self,
        caller: &Caller,
        username: &Username,
        page: &PageRequest,
    ) -> Result<FollowPage, ApiError> {
        self.follow_list(caller, username, page, List::Followers)
            .await
    }

    /// Whom `username` follows, newest first, with the caller's own state towards each.
    pub async fn following(
        &self,
        caller: &Caller,
        username: &Username,
        page: &PageRequest,
    ) -> Result<FollowPage, ApiError> {
        self.follow_list(caller, username, page, List::Following)
            .await
    }

    /// The pending requests to follow the caller, newest first.
    pub async fn follow_requests(
        &self,
        caller: &Caller,
        page: &PageRequest,
    ) -> Result<FollowRequestPage, ApiError> {
        let scope = scope(List::Requests, &caller.user_id);
        let after = resume_after(&self.cursors, &scope, page.cursor.as_deref()).await?;
        let (entries, next_cursor) = self
            .read_page(List::Requests, &caller.user_id, &scope, after, page.limit)
            .await?;
        let ids: Vec<UserId> = entries.iter().map(|e| e.user_id.clone()).collect();
        let (users, banned) = futures::try_join!(
            futures::future::try_join_all(ids.iter().map(|id| self.directory.author(id))),
            self.hidden_among(caller, &ids)
        )
        .map_err(errors::api)?;
        let items = entries
            .into_iter()
            .zip(users)
            .filter_map(|(entry, user)| {
                // A deleted account's requests go soon; meanwhile they are not shown, nor
                // are a banned account's while the ban holds.
                let user = user?;
                if banned.contains(&entry.user_id) {
                    return None;
                }
                Some(FollowRequestEntry {
                    id: entry.user_id.clone(),
                    user_id: entry.user_id,
                    username: user.username,
                    display_name: user.display_name,
                    requested_at: entry.at,
                })
            })
            .collect();
        Ok(FollowRequestPage { items, next_cursor })
    }

    /// A followers or following list. A private account's lists show only to the account,
    /// its approved followers and staff; nobody sees those of one who blocks them or whom
    /// they block.
    async fn follow_list(
        &self,
        caller: &Caller,
        username: &Username,
        page: &PageRequest,
        list: List,
    ) -> Result<FollowPage, ApiError> {
        let owner = self
            .directory
            .author_by_username(username.as_str())
            .await
            .map_err(errors::api)?
            .ok_or_else(not_found)?;
        let scope = scope(list, &owner.user_id);
        let after = resume_after(&self.cursors, &scope, page.cursor.as_deref()).await?;
        if owner.user_id != caller.user_id && !caller.is_staff() {
            // A banned account is hidden from others while the ban holds, lists and all.
            if self.banned(&owner.user_id).await? {
                return Err(not_found());
            }
            let rel = self
                .store
                .relation(&caller.user_id, &owner.user_id)
                .await
                .map_err(errors::api)?;
            if rel.blocked_either_way() {
                return Err(not_found());
            }
            if owner.private && rel.outgoing_state() != FollowState::Following {
                return Err(ApiError::Forbidden);
            }
        }
        let (entries, next_cursor) = self
            .read_page(list, &owner.user_id, &scope, after, page.limit)
            .await?;
        let ids: Vec<UserId> = entries.iter().map(|e| e.user_id.clone()).collect();
        let (users, relations, banned) = futures::try_join!(
            futures::future::try_join_all(ids.iter().map(|id| self.directory.author(id))),
            self.store.relations(&caller.user_id, &ids),
            self.hidden_among(caller, &ids)
        )
        .map_err(errors::api)?;
        let items = entries
            .into_iter()
            .zip(users)
            .filter_map(|(entry, user)| {
                // A deleted account's entries go soon; meanwhile they are not shown. Nor is
                // anyone who blocks the viewer or whom the viewer blocks, nor a banned
                // account while the ban holds.
                let user = user?;
                let rel = relations.get(&entry.user_id).cloned().unwrap_or_default();
                if rel.blocked_either_way() || banned.contains(&entry.user_id) {
                    return None;
                }
                Some(FollowEntry {
                    viewer_state: rel.outgoing_state(),
                    user_id: entry.user_id,
                    username: user.username,
                    display_name: user.display_name,
                    since: entry.at,
                })
            })
            .collect();
        Ok(FollowPage { items, next_cursor })
    }

    /// Which of `ids` a list leaves out for `caller` as the directory knows them: the
    /// banned (this service's directory holds no blocks: those are the store's, above),
    /// but for the caller themself; staff see everyone. A ban hides from when its
    /// `UserSuspended` reaches the directory until its `UserReinstated` does.
    async fn hidden_among(
        &self,
        caller: &Caller,
        ids: &[UserId],
    ) -> StoreResult<std::collections::HashSet<UserId>> {
        if caller.is_staff() || ids.is_empty() {
            return Ok(Default::default());
        }
        self.directory.blocked_among(&caller.user_id, ids).await
    }

    /// Up to `limit` entries after `after`, and the cursor of the next page if there is
    /// one (one entry more is read to tell).
    async fn read_page(
        &self,
        list: List,
        owner: &UserId,
        scope: &str,
        after: Option<String>,
        limit: u16,
    ) -> Result<(Vec<ListEntry>, Option<String>), ApiError> {
        let limit = usize::from(limit);
        let mut entries = self
            .store
            .list(list, owner, after.as_deref(), limit + 1)
            .await
            .map_err(errors::api)?;
        let next_cursor = if entries.len() > limit {
            entries.truncate(limit);
            let signer = self.cursors.signer().await?;
            entries.last().map(|e| {
                let position = Position {
                    after: e.position.clone(),
                };
                signer.sign(scope, &position)
            })
        } else {
            None
        };
        Ok((entries, next_cursor))
    }
}

/// What a list's cursors are bound to: one owner's list of one kind (a followers cursor
/// cannot be replayed on a following list, nor on another user's). The strings are those
/// of cursors already issued.
fn scope(list: List, owner: &UserId) -> String {
    match list {
        List::Followers => format!("Followers:{owner}"),
        List::Following => format!("Following:{owner}"),
        List::Requests => format!("requests:{owner}"),
    }
}

/// Where a list page resumes: the position of the last entry shown.
#[derive(Debug, Serialize, Deserialize)]
struct Position {
    after: String,
}

/// The `after` position of `cursor`, which must have been issued for `scope`.
async fn resume_after(
    key: &CursorKey,
    scope: &str,
    cursor: Option<&str>,
) -> Result<Option<String>, ApiError> {
    let Some(cursor) = cursor else {
        return Ok(None);
    };
    let position: Position = key.signer().await?.verify(scope, cursor)?;
    shutter_core::parse_id("cursor", &position.after)
        .map_err(|_| ApiError::invalid("cursor", "is not a cursor this server issued"))?;
    Ok(Some(position.after))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use shutter_core::PageRequest;
    use shutter_events::{EdgeFacts, EventType};

    use super::*;
    use crate::testing::{World, username, world};

    fn page(limit: u16, cursor: Option<&str>) -> PageRequest {
        PageRequest {
            limit,
            cursor: cursor.map(str::to_owned),
        }
    }

    fn first_page() -> PageRequest {
        page(20, None)
    }

    impl World {
        async fn follow(&self, who: &str, whom: &str) -> Result<FollowState, ApiError> {
            // List entries are ULIDs, ordered by their millisecond: keep follows apart.
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
            let status = self
                .app
                .follow(&self.caller(who), &username(whom), "corr")
                .await?;
            Ok(status.state)
        }

        async fn unfollow(&self, who: &str, whom: &str) -> Result<FollowState, ApiError> {
            let status = self
                .app
                .unfollow(&self.caller(who), &username(whom), "corr")
                .await?;
            Ok(status.state)
        }

        async fn block(&self, who: &str, whom: &str, on: bool) -> Result<bool, ApiError> {
            let (caller, whom) = (self.caller(who), username(whom));
            let status = if on {
                self.app.block(&caller, &whom, "corr").await?
            } else {
                self.app.unblock(&caller, &whom, "corr").await?
            };
            Ok(status.blocked)
        }

        async fn answer(
            &self,
            who: &str,
            requester: &str,
            approve: bool,
        ) -> Result<FollowState, ApiError> {
            let (caller, requester) = (self.caller(who), self.id(requester));
            let status = if approve {
                self.app.approve(&caller, &requester, "corr").await?
            } else {
                self.app.decline(&caller, &requester, "corr").await?
            };
            Ok(status.state)
        }

        async fn followers(&self, who: &str, whose: &str) -> Result<Vec<String>, ApiError> {
            let page = self
                .app
                .followers(&self.caller(who), &username(whose), &first_page())
                .await?;
            Ok(page.items.into_iter().map(|e| e.username).collect())
        }

        async fn requests(&self, who: &str) -> Vec<String> {
            let page = self
                .app
                .follow_requests(&self.caller(who), &first_page())
                .await
                .unwrap();
            page.items.into_iter().map(|e| e.username).collect()
        }

        async fn state(&self, who: &str, whom: &str) -> FollowState {
            let rel = self
                .app
                .store
                .relation(&self.id(who), &self.id(whom))
                .await
                .unwrap();
            rel.outgoing_state()
        }
    }

    fn edge_facts(event: &Event) -> &EdgeFacts {
        match event {
            Event::FollowRequested(f)
            | Event::FollowRequestCancelled(f)
            | Event::FollowStarted(f)
            | Event::FollowEnded(f) => f,
            other => panic!("not a follow event: {other:?}"),
        }
    }

    #[tokio::test]
    async fn following_twice_follows_once_and_unfollowing_twice_ends_once() {
        let w = world(&[("ann", false), ("bob", false)]);
        assert_eq!(
            w.follow("ann", "bob").await.unwrap(),
            FollowState::Following
        );
        assert_eq!(
            w.follow("ann", "bob").await.unwrap(),
            FollowState::Following
        );
        assert_eq!(w.unfollow("ann", "bob").await.unwrap(), FollowState::None);
        assert_eq!(w.unfollow("ann", "bob").await.unwrap(), FollowState::None);
        assert_eq!(
            w.events(),
            [EventType::FollowStarted, EventType::FollowEnded]
        );
    }

    #[tokio::test]
    async fn a_private_account_is_asked_and_its_answer_decides() {
        let w = world(&[("ann", false), ("bob", true), ("cat", false)]);
        assert_eq!(
            w.follow("ann", "bob").await.unwrap(),
            FollowState::Requested
        );
        assert_eq!(
            w.follow("cat", "bob").await.unwrap(),
            FollowState::Requested
        );
        // Only the asked account answers its requests.
        assert!(matches!(
            w.answer("cat", "ann", true).await,
            Err(ApiError::NotFound("follow request"))
        ));
        let one = w
            .app
            .follow_requests(&w.caller("bob"), &page(1, None))
            .await
            .unwrap();
        assert_eq!(one.items[0].username, "cat");
        assert_eq!(one.items[0].id, w.id("cat"));
        assert!(one.next_cursor.is_some());
        assert_eq!(
            w.answer("bob", "ann", true).await.unwrap(),
            FollowState::Following
        );
        assert_eq!(
            w.answer("bob", "cat", false).await.unwrap(),
            FollowState::None
        );
        assert!(matches!(
            w.answer("bob", "cat", true).await,
            Err(ApiError::NotFound("follow request"))
        ));
        assert_eq!(
            w.events(),
            [
                EventType::FollowRequested,
                EventType::FollowRequested,
                EventType::FollowStarted,
                EventType::FollowRequestCancelled
            ]
        );
        // Approved followers see a private account's lists; others are refused.
        assert_eq!(w.followers("ann", "bob").await.unwrap(), ["ann"]);
        assert!(matches!(
            w.followers("cat", "bob").await,
            Err(ApiError::Forbidden)
        ));
    }

    #[tokio::test]
    async fn events_are_keyed_by_the_follower_and_name_who_acted_and_why() {
        // GIVEN ann asked to follow the private bob
        let w = world(&[("ann", false), ("bob", true)]);
        w.follow("ann", "bob").await.unwrap();
        // WHEN bob declines
        w.answer("bob", "ann", false).await.unwrap();
        // THEN the event is ann's edge's, caused by bob, in bob's request, with the reason
        let events = w.app.store.events();
        let declined = &events[1];
        assert_eq!(declined.event_type(), EventType::FollowRequestCancelled);
        assert_eq!(declined.aggregate_id, w.id("ann").as_str());
        assert_eq!(declined.actor, Some(w.id("bob")));
        assert_eq!(declined.correlation_id, "corr");
        let facts = edge_facts(&declined.event);
        assert_eq!((facts.seq, facts.reason), (2, Some(EndReason::Declined)));
        // AND ann may ask again: the edge counts on.
        assert_eq!(
            w.follow("ann", "bob").await.unwrap(),
            FollowState::Requested
        );
        assert_eq!(edge_facts(&w.app.store.events()[2].event).seq, 3);
    }

    #[tokio::test]
    async fn withdrawing_a_request_cancels_it_and_leaves_nothing_to_answer() {
        let w = world(&[("ann", false), ("bob", true)]);
        w.follow("ann", "bob").await.unwrap();
        assert_eq!(w.requests("bob").await, ["ann"]);
        assert_eq!(w.unfollow("ann", "bob").await.unwrap(), FollowState::None);
        assert!(w.requests("bob").await.is_empty());
        let events = w.app.store.events();
        assert_eq!(events[1].event_type(), EventType::FollowRequestCancelled);
        assert_eq!(
            edge_facts(&events[1].event).reason,
            Some(EndReason::Withdrawn)
        );
        assert!(matches!(
            w.answer("bob", "ann", true).await,
            Err(ApiError::NotFound("follow request"))
        ));
        assert_eq!(w.events().len(), 2);
    }

    #[tokio::test]
    async fn a_block_ends_follows_both_ways_and_cannot_be_bypassed() {
        let w = world(&[("ann", false), ("bob", false)]);
        w.follow("ann", "bob").await.unwrap();
        w.follow("bob", "ann").await.unwrap();
        assert!(w.block("ann", "bob", true).await.unwrap());
        assert!(w.block("ann", "bob", true).await.unwrap());
        assert_eq!(
            w.events()[2..],
            [
                EventType::UserBlocked,
                EventType::FollowEnded,
                EventType::FollowEnded
            ]
        );
        // The blocked one cannot see or follow the blocker; the blocker must unblock first.
        assert!(matches!(
            w.follow("bob", "ann").await,
            Err(ApiError::NotFound("user"))
        ));
        assert!(matches!(
            w.follow("ann", "bob").await,
            Err(ApiError::Conflict {
                code: "blocked",
                ..
            })
        ));
        assert!(matches!(
            w.followers("bob", "ann").await,
            Err(ApiError::NotFound("user"))
        ));
        assert!(!w.block("ann", "bob", false).await.unwrap());
        // Follows ended by the block do not come back.
        assert!(w.followers("ann", "ann").await.unwrap().is_empty());
        assert_eq!(
            w.follow("bob", "ann").await.unwrap(),
            FollowState::Following
        );
    }

    #[tokio::test]
    async fn a_block_cancels_a_pending_request_for_the_reason_blocked() {
        // GIVEN ann asked to follow the private bob
        let w = world(&[("ann", false), ("bob", true)]);
        w.follow("ann", "bob").await.unwrap();
        // WHEN bob blocks ann
        w.block("bob", "ann", true).await.unwrap();
        // THEN the request is cancelled in the same transaction, as bob's doing
        let events = w.app.store.events();
        assert_eq!(
            w.events(),
            [
                EventType::FollowRequested,
                EventType::UserBlocked,
                EventType::FollowRequestCancelled
            ]
        );
        assert_eq!(
            edge_facts(&events[2].event).reason,
            Some(EndReason::Blocked)
        );
        assert_eq!(events[2].actor, Some(w.id("bob")));
        assert!(w.requests("bob").await.is_empty());
        assert_eq!(w.state("ann", "bob").await, FollowState::None);
    }

    #[tokio::test]
    async fn a_refused_request_changes_nothing() {
        let w = world(&[("ann", false), ("bob", false), ("cat", true)]);
        // GIVEN bob blocks ann
        w.block("bob", "ann", true).await.unwrap();
        let before = w.events();
        // WHEN ann tries to follow bob, bob to follow ann, or ann answers a request that
        // was never made
        assert!(matches!(
            w.follow("ann", "bob").await,
            Err(ApiError::NotFound("user"))
        ));
        assert!(matches!(
            w.follow("bob", "ann").await,
            Err(ApiError::Conflict {
                code: "blocked",
                ..
            })
        ));
        assert!(matches!(
            w.answer("ann", "cat", true).await,
            Err(ApiError::NotFound("follow request"))
        ));
        // THEN no edge moved and no event was written
        assert_eq!(w.events(), before);
        assert_eq!(w.state("ann", "bob").await, FollowState::None);
        assert_eq!(w.state("bob", "ann").await, FollowState::None);
    }

    #[tokio::test]
    async fn a_deleted_account_cannot_be_followed_or_blocked() {
        let w = world(&[("ann", false), ("bob", false)]);
        // GIVEN bob's account is deleted (his token may still be valid, his directory
        // entry not yet gone)
        w.app.store.delete_account(&w.id("bob"));
        // WHEN ann follows or blocks him THEN he does not exist, and nothing changes
        assert!(matches!(
            w.follow("ann", "bob").await,
            Err(ApiError::NotFound("user"))
        ));
        assert!(matches!(
            w.block("ann", "bob", true).await,
            Err(ApiError::NotFound("user"))
        ));
        assert!(w.events().is_empty());
        assert_eq!(w.state("ann", "bob").await, FollowState::None);
    }

    #[tokio::test]
    async fn a_deleted_accounts_token_follows_blocks_and_approves_nothing() {
        let w = world(&[("ann", false), ("bob", true), ("cat", false)]);
        // GIVEN cat asked to follow bob, then bob's account is deleted (his token is
        // still valid) and this service's directory holds his tombstone
        w.follow("cat", "bob").await.unwrap();
        let before = w.events();
        let deleted = Envelope::new(
            Event::UserDeleted(shutter_events::UserDeleted {
                user_id: w.id("bob"),
                username: "bob".into(),
            }),
            Some(&w.id("bob")),
            "corr",
        );
        w.app.directory.apply(&deleted).await.unwrap();
        // WHEN his token follows, blocks or approves THEN each is a 401, nothing changes
        let refusals = [
            w.follow("bob", "ann").await.map(|_| ()),
            w.block("bob", "ann", true).await.map(|_| ()),
            w.answer("bob", "cat", true).await.map(|_| ()),
        ];
        for refused in refusals {
            assert_eq!(refused.unwrap_err().status(), 401);
        }
        assert_eq!(w.events(), before);
        assert_eq!(w.state("bob", "ann").await, FollowState::None);
        assert_eq!(w.state("cat", "bob").await, FollowState::Requested);
    }

    #[tokio::test]
    async fn a_race_lost_is_decided_again_and_one_lost_every_time_changes_nothing() {
        let w = world(&[("ann", false), ("bob", false)]);
        // GIVEN racing requests win the next two commits
        w.app.store.lose_races(2);
        // WHEN ann follows bob THEN the third attempt commits, once
        assert_eq!(
            w.follow("ann", "bob").await.unwrap(),
            FollowState::Following
        );
        assert_eq!(w.events(), [EventType::FollowStarted]);
        // GIVEN racing requests win every attempt
        w.app.store.lose_races(MAX_ATTEMPTS);
        // WHEN ann unfollows THEN she is told to retry, and still follows bob
        assert!(matches!(
            w.unfollow("ann", "bob").await,
            Err(ApiError::Conflict {
                code: "concurrent_update",
                ..
            })
        ));
        assert_eq!(w.state("ann", "bob").await, FollowState::Following);
        assert_eq!(w.events(), [EventType::FollowStarted]);
        // AND so are block and approve
        w.app.store.lose_races(MAX_ATTEMPTS);
        assert!(matches!(
            w.block("ann", "bob", true).await,
            Err(ApiError::Conflict {
                code: "concurrent_update",
                ..
            })
        ));
        assert_eq!(w.events(), [EventType::FollowStarted]);
    }

    #[tokio::test]
    async fn unblocking_one_never_blocked_and_following_oneself_change_nothing() {
        let w = world(&[("ann", false), ("bob", false)]);
        assert!(!w.block("ann", "bob", false).await.unwrap());
        assert!(matches!(
            w.follow("ann", "ann").await,
            Err(ApiError::Invalid { ref field, .. }) if field == "username"
        ));
        assert!(matches!(
            w.block("ann", "ann", true).await,
            Err(ApiError::Invalid { .. })
        ));
        assert!(matches!(
            w.follow("ann", "nobody").await,
            Err(ApiError::NotFound("user"))
        ));
        assert!(w.events().is_empty());
    }

    #[tokio::test]
    async fn lists_page_newest_first_with_the_viewers_state_and_refuse_forged_cursors() {
        let w = world(&[
            ("ann", false),
            ("bob", false),
            ("cat", false),
            ("dan", false),
        ]);
        for who in ["bob", "cat", "dan"] {
            w.follow(who, "ann").await.unwrap();
        }
        w.follow("bob", "cat").await.unwrap();
        let (bob, ann) = (w.caller("bob"), username("ann"));
        let first = w.app.followers(&bob, &ann, &page(2, None)).await.unwrap();
        let names: Vec<_> = first.items.iter().map(|e| e.username.as_str()).collect();
        assert_eq!(names, ["dan", "cat"]);
        assert_eq!(first.items[1].viewer_state, FollowState::Following);
        assert_eq!(first.items[0].viewer_state, FollowState::None);
        let cursor = first.next_cursor.unwrap();
        let rest = w
            .app
            .followers(&bob, &ann, &page(2, Some(&cursor)))
            .await
            .unwrap();
        assert_eq!(rest.items[0].username, "bob");
        assert!(rest.next_cursor.is_none());
        // A cursor of another list, or a forged one, is refused.
        let invalid_cursor = |r: Result<FollowPage, ApiError>| matches!(r, Err(ApiError::Invalid { ref field, .. }) if field == "cursor");
        assert!(invalid_cursor(
            w.app
                .followers(&bob, &username("cat"), &page(2, Some(&cursor)))
                .await
        ));
        assert!(invalid_cursor(
            w.app.following(&bob, &ann, &page(2, Some(&cursor))).await
        ));
        assert!(invalid_cursor(
            w.app.followers(&bob, &ann, &page(2, Some("abc"))).await
        ));
    }

    #[tokio::test]
    async fn a_private_accounts_lists_show_to_itself_its_followers_and_staff() {
        // GIVEN the private bob, followed by ann, and cat who does not follow him
        let w = world(&[("ann", false), ("bob", true), ("cat", false)]);
        w.follow("ann", "bob").await.unwrap();
        w.answer("bob", "ann", true).await.unwrap();
        let bob = username("bob");
        // THEN bob, ann and a moderator see whom bob follows and who follows him
        for viewer in [w.caller("bob"), w.caller("ann"), w.staff("cat")] {
            let list = w.app.followers(&viewer, &bob, &first_page()).await.unwrap();
            assert_eq!(list.items.len(), 1);
            assert!(w.app.following(&viewer, &bob, &first_page()).await.is_ok());
        }
        // AND cat does not
        assert!(matches!(
            w.app.following(&w.caller("cat"), &bob, &first_page()).await,
            Err(ApiError::Forbidden)
        ));
    }

    #[tokio::test]
    async fn lists_leave_out_deleted_accounts_and_users_blocked_either_way() {
        // GIVEN bob, cat and dan follow ann, and eve looks at ann's followers
        let w = world(&[
            ("ann", false),
            ("bob", false),
            ("cat", false),
            ("dan", false),
            ("eve", false),
        ]);
        for who in ["bob", "cat", "dan"] {
            w.follow(who, "ann").await.unwrap();
        }
        // WHEN cat blocks eve, and dan's account is deleted
        w.block("cat", "eve", true).await.unwrap();
        let deleted = Envelope::new(
            Event::UserDeleted(shutter_events::UserDeleted {
                user_id: w.id("dan"),
                username: "dan".into(),
            }),
            Some(&w.id("dan")),
            "corr",
        );
        w.app.directory.apply(&deleted).await.unwrap();
        // THEN eve sees bob only, and ann sees bob and cat
        assert_eq!(w.followers("eve", "ann").await.unwrap(), ["bob"]);
        assert_eq!(w.followers("ann", "ann").await.unwrap(), ["cat", "bob"]);
    }

    /// `name` suspended until `until` (RFC 3339) or banned (`None`), with `seq`; or
    /// reinstated (`reinstated`), as this service's directory learns it.
    async fn standing(w: &World, name: &str, until: Option<&str>, seq: u64, reinstated: bool) {
        let event = if reinstated {
            Event::UserReinstated(shutter_events::UserReinstated {
                user_id: w.id(name),
                username: name.into(),
                seq,
            })
        } else {
            Event::UserSuspended(shutter_events::UserSuspended {
                user_id: w.id(name),
                username: name.into(),
                banned: until.is_none(),
                until: until.map(str::to_owned),
                seq,
            })
        };
        // Delivered twice, as Kafka may: the second changes nothing.
        let envelope = Envelope::new(event, None, "mod");
        w.app.directory.apply(&envelope).await.unwrap();
        w.app.directory.apply(&envelope).await.unwrap();
    }

    #[tokio::test]
    async fn a_suspended_accounts_token_follows_blocks_and_answers_nothing_until_reinstated() {
        let w = world(&[("ann", false), ("bob", true), ("cat", false)]);
        // GIVEN cat asked to follow bob and bob follows nobody; then bob is suspended
        w.follow("cat", "bob").await.unwrap();
        let until = "2999-01-01T00:00:00.000Z";
        standing(&w, "bob", Some(until), 1, false).await;
        let before = w.events();
        // WHEN his token follows, unfollows, blocks, unblocks, approves or declines
        let refusals = [
            w.follow("bob", "ann").await.map(|_| ()),
            w.unfollow("bob", "ann").await.map(|_| ()),
            w.block("bob", "ann", true).await.map(|_| ()),
            w.block("bob", "ann", false).await.map(|_| ()),
            w.answer("bob", "cat", true).await.map(|_| ()),
            w.answer("bob", "cat", false).await.map(|_| ()),
        ];
        // THEN each is a 403 account_suspended saying until when, and nothing changes
        for refused in refusals {
            let p = refused.unwrap_err().problem();
            assert_eq!((p.status, p.code.as_str()), (403, "account_suspended"));
            assert_eq!(p.until.as_deref(), Some(until));
        }
        assert_eq!(w.events(), before);
        // AND he still reads his requests and lists, and others still see and follow him
        let page = w.app.follow_requests(&w.caller("bob"), &first_page()).await;
        assert_eq!(page.unwrap().items.len(), 1);
        assert_eq!(w.followers("ann", "cat").await.unwrap().len(), 0);
        assert_eq!(
            w.follow("ann", "bob").await.unwrap(),
            FollowState::Requested
        );
        // WHEN reinstated (a higher seq; the old suspension again changes nothing)
        standing(&w, "bob", None, 2, true).await;
        standing(&w, "bob", Some(until), 1, false).await;
        // THEN his writes pass
        assert_eq!(
            w.follow("bob", "ann").await.unwrap(),
            FollowState::Following
        );
        assert_eq!(
            w.answer("bob", "cat", true).await.unwrap(),
            FollowState::Following
        );
    }

    #[tokio::test]
    async fn a_banned_account_is_left_out_of_lists_and_cannot_be_followed_while_the_ban_holds() {
        // GIVEN bob and cat follow ann, ann follows bob, dan asked to follow the private eve
        let w = world(&[
            ("ann", false),
            ("bob", false),
            ("cat", false),
            ("dan", false),
            ("eve", true),
        ]);
        w.follow("bob", "ann").await.unwrap();
        w.follow("cat", "ann").await.unwrap();
        w.follow("ann", "bob").await.unwrap();
        w.follow("dan", "eve").await.unwrap();
        // WHEN bob and dan are banned
        standing(&w, "bob", None, 1, false).await;
        standing(&w, "dan", None, 1, false).await;
        // THEN others' lists leave them out, staff and they themselves still see them
        assert_eq!(w.followers("cat", "ann").await.unwrap(), ["cat"]);
        assert_eq!(w.followers("ann", "ann").await.unwrap(), ["cat"]);
        let staff = w
            .app
            .followers(&w.staff("cat"), &username("ann"), &first_page())
            .await
            .unwrap();
        assert_eq!(staff.items.len(), 2);
        let following = w
            .app
            .following(&w.caller("ann"), &username("ann"), &first_page())
            .await
            .unwrap();
        assert!(following.items.is_empty());
        let requests = w.app.follow_requests(&w.caller("eve"), &first_page()).await;
        assert!(requests.unwrap().items.is_empty());
        // AND bob's own lists are a 404 to others, not to him or staff
        let bob = username("bob");
        let err = w.app.followers(&w.caller("cat"), &bob, &first_page()).await;
        assert!(matches!(err, Err(ApiError::NotFound("user"))));
        assert!(
            w.app
                .following(&w.caller("bob"), &bob, &first_page())
                .await
                .is_ok()
        );
        assert!(
            w.app
                .following(&w.staff("cat"), &bob, &first_page())
                .await
                .is_ok()
        );
        // AND he cannot be followed
        assert!(matches!(
            w.follow("cat", "bob").await,
            Err(ApiError::NotFound("user"))
        ));
        // WHEN the ban is lifted THEN all comes back
        standing(&w, "bob", None, 2, true).await;
        assert_eq!(w.followers("cat", "ann").await.unwrap(), ["cat", "bob"]);
        assert_eq!(
            w.follow("cat", "bob").await.unwrap(),
            FollowState::Following
        );
    }
}
