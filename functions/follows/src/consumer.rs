//! `follows-directory-events`: keeps the directory of users from the identity and profiles
//! topics and, when an account is deleted, ends all its follows, requests and blocks with
//! their events (so the other services' counters, feeds and indexes follow). Every effect
//! is idempotent: directory writes are, and each end is conditional on the edge's or
//! block's `seq`, so Kafka's redeliveries do no harm.

use serde::Deserialize;
use shutter_core::ApiError;
use shutter_directory::legacy::Directory;
use shutter_events::legacy::Envelope;
use shutter_events::{KafkaEvent, PoisonQueue};

use crate::model::{EdgeAction, EndReason, FollowState, edge_event, next_block, next_edge};
use crate::store::{Change, Commit, FollowsStore, List};

/// Edges and blocks ended per read.
const PAGE: usize = 100;

/// How often one edge's end is tried again when a racing request changed it.
const ATTEMPTS: usize = 5;

#[derive(Debug, Deserialize)]
struct UserGone {
    user_id: String,
}

/// Applies every record of an MSK batch; poison records go to the DLQ, anything
/// retryable fails the batch.
pub async fn directory_events<D, S, Q>(
    dir: &D,
    store: &S,
    poison: &Q,
    event: &KafkaEvent,
) -> Result<(), ApiError>
where
    D: Directory,
    S: FollowsStore,
    Q: PoisonQueue,
{
    shutter_events::legacy::consume(event, poison, |envelope| async move {
        apply(dir, store, &envelope).await
    })
    .await
}

/// One event's effects.
pub async fn apply<D: Directory, S: FollowsStore>(
    dir: &D,
    store: &S,
    envelope: &Envelope,
) -> Result<(), ApiError> {
    // The tombstone first: from then on no new follow or block of the account commits.
    dir.apply(envelope).await?;
    if envelope.event_type == "ProfileUpdated" {
        let profile: ProfileFacts = envelope
            .data()
            .map_err(|e| ApiError::invalid("data", e.to_string()))?;
        // A public account has no requests: turning public approves those pending.
        if profile.private == Some(false) {
            let approved = approve_pending(store, &profile.user_id, envelope).await?;
            if approved > 0 {
                tracing::info!(event_id = %envelope.id, user_id = %profile.user_id, approved, "pending requests approved: the account is public");
            }
        }
    }
    if envelope.event_type == "UserDeleted" {
        let user: UserGone = envelope
            .data()
            .map_err(|e| ApiError::invalid("data", e.to_string()))?;
        let (edges, blocks) = end_everything_of(store, &user.user_id, envelope).await?;
        tracing::info!(event_id = %envelope.id, user_id = %user.user_id, edges, blocks, "follows and blocks of a deleted account ended");
    }
    Ok(())
}

#[derive(Debug, Deserialize)]
struct ProfileFacts {
    user_id: String,
    #[serde(default)]
    private: Option<bool>,
}

/// Approves every pending request to `user_id`, each with its `FollowStarted`. Returns
/// how many were approved. A request that a racing change moved is left to that change.
async fn approve_pending<S: FollowsStore>(
    store: &S,
    user_id: &str,
    cause: &Envelope,
) -> Result<usize, ApiError> {
    let mut after: Option<String> = None;
    let mut approved = 0;
    loop {
        let page = store
            .list(List::Requests, user_id, after.as_deref(), PAGE)
            .await?;
        let Some(last) = page.last() else {
            return Ok(approved);
        };
        after = Some(last.position.clone());
        for entry in &page {
            let Some(edge) = store
                .edge(&entry.user_id, user_id)
                .await?
                .filter(|e| e.state == FollowState::Requested)
            else {
                continue;
            };
            let Some(next) = next_edge(Some(&edge), &entry.user_id, user_id, EdgeAction::Approve)
            else {
                continue;
            };
            let event = edge_event(
                edge.state,
                &next,
                None,
                Some(user_id),
                &cause.correlation_id,
            );
            let change = Change::Edge {
                previous: Some(edge),
                next,
            };
            if store.commit(&[change], &[event]).await? == Commit::Done {
                approved += 1;
            }
        }
    }
}

fn kept_changing(what: &str) -> ApiError {
    ApiError::internal(std::io::Error::other(format!(
        "{what} kept changing while its account was deleted; retry"
    )))
}

/// Ends every follow, request and block by or of `user_id`. Returns how many edges and
/// blocks ended.
async fn end_everything_of<S: FollowsStore>(
    store: &S,
    user_id: &str,
    cause: &Envelope,
) -> Result<(usize, usize), ApiError> {
    let actor = cause.actor.as_deref();
    let (mut edges, mut blocks) = (0, 0);
    loop {
        let live = store.live_edges(user_id, PAGE).await?;
        if live.is_empty() {
            break;
        }
        for edge in live {
            let mut current = Some(edge);
            let mut done = false;
            for _ in 0..ATTEMPTS {
                let Some(edge) = current.take() else {
                    done = true;
                    break;
                };
                let end = EdgeAction::End(EndReason::AccountDeleted);
                let Some(next) = next_edge(Some(&edge), &edge.follower_id, &edge.followee_id, end)
                else {
                    done = true;
                    break;
                };
                let event = edge_event(
                    edge.state,
                    &next,
                    Some(EndReason::AccountDeleted),
                    actor,
                    &cause.correlation_id,
                );
                let change = Change::Edge {
                    previous: Some(edge.clone()),
                    next,
                };
                if store.commit(&[change], &[event]).await? == Commit::Done {
                    edges += 1;
                    done = true;
                    break;
                }
                current = store.edge(&edge.follower_id, &edge.followee_id).await?;
            }
            if !done {
                return Err(kept_changing("a follow"));
            }
        }
    }
    loop {
        let live = store.live_blocks(user_id, PAGE).await?;
        if live.is_empty() {
            break;
        }
        for block in live {
            let Some(next) = next_block(Some(&block), &block.blocker_id, &block.blocked_id, false)
            else {
                continue;
            };
            let event = next.event(actor, &cause.correlation_id);
            let change = Change::Block {
                previous: Some(block),
                next,
            };
            match store.commit(&[change], &[event]).await? {
                Commit::Done => blocks += 1,
                // Read again on the next round.
                Commit::Stale | Commit::Refused => {}
            }
        }
    }
    Ok((edges, blocks))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::model::next_block;
    use crate::store::memory::MemoryFollowsStore;
    use crate::store::relation;
    use shutter_directory::legacy::MemoryDirectory;

    async fn connect(store: &MemoryFollowsStore, a: &str, b: &str) {
        let edge = next_edge(None, a, b, EdgeAction::Follow { private: false }).unwrap();
        let event = edge_event(FollowState::None, &edge, None, Some(a), "c");
        let change = Change::Edge {
            previous: None,
            next: edge,
        };
        assert_eq!(
            store.commit(&[change], &[event]).await.unwrap(),
            Commit::Done
        );
    }

    #[tokio::test]
    async fn an_account_that_turns_public_approves_its_pending_requests() {
        let (dir, store) = (MemoryDirectory::default(), MemoryFollowsStore::default());
        let requested = next_edge(None, "a", "b", EdgeAction::Follow { private: true }).unwrap();
        let event = edge_event(FollowState::None, &requested, None, Some("a"), "c");
        let change = Change::Edge {
            previous: None,
            next: requested,
        };
        store.commit(&[change], &[event]).await.unwrap();
        let profile = |private: bool| {
            Envelope::new(
                "ProfileUpdated",
                "b",
                Some("b"),
                "c",
                &serde_json::json!({"user_id": "b", "username": "bee", "private": private}),
            )
        };
        apply(&dir, &store, &profile(true)).await.unwrap();
        assert_eq!(
            relation(&store, "a", "b").await.unwrap().outgoing_state(),
            FollowState::Requested
        );
        for _ in 0..2 {
            apply(&dir, &store, &profile(false)).await.unwrap();
        }
        assert_eq!(
            relation(&store, "a", "b").await.unwrap().outgoing_state(),
            FollowState::Following
        );
        let kinds: Vec<_> = store
            .events
            .lock()
            .unwrap()
            .iter()
            .map(|e| e.event_type.clone())
            .collect();
        assert_eq!(kinds, ["FollowRequested", "FollowStarted"]);
    }

    #[tokio::test]
    async fn a_deleted_account_ends_its_follows_and_blocks_once_however_often_delivered() {
        let (dir, store) = (MemoryDirectory::default(), MemoryFollowsStore::default());
        connect(&store, "gone", "b").await;
        connect(&store, "c", "gone").await;
        connect(&store, "b", "c").await;
        let block = next_block(None, "d", "gone", true).unwrap();
        let change = Change::Block {
            previous: None,
            next: block,
        };
        store.commit(&[change], &[]).await.unwrap();
        let deleted = Envelope::new(
            "UserDeleted",
            "gone",
            Some("gone"),
            "c",
            &serde_json::json!({"user_id": "gone", "username": "gone"}),
        );
        apply(&dir, &store, &deleted).await.unwrap();
        apply(&dir, &store, &deleted).await.unwrap();
        let events: Vec<_> = store
            .events
            .lock()
            .unwrap()
            .iter()
            .skip(3)
            .map(|e| (e.event_type.clone(), e.data["reason"].clone()))
            .collect();
        assert_eq!(events.len(), 3, "{events:?}");
        assert_eq!(events.iter().filter(|(t, _)| t == "FollowEnded").count(), 2);
        assert!(events.iter().any(|(t, _)| t == "UserUnblocked"));
        assert_eq!(
            relation(&store, "b", "c").await.unwrap().outgoing_state(),
            FollowState::Following
        );
    }
}
