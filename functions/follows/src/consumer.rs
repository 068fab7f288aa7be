//! `follows-directory-events`: keeps the directory of users from the identity and profiles
//! topics; when an account turns public, approves its pending requests (a public account
//! has none); when an account is deleted, ends all its follows, requests and blocks with
//! their events (so the other services' counters, feeds and indexes follow). Every effect
//! is idempotent: directory writes are, and each change is conditional on the edge's or
//! block's `seq`, so Kafka's redeliveries do no harm.

use shutter_core::UserId;
use shutter_directory::Directory;
use shutter_events::{ConsumeError, Consumer, Envelope, Event, ProfileFacts, UserDeleted};
use shutter_store::StoreError;

use crate::App;
use crate::model::{
    Block, Edge, EdgeAction, EndReason, FollowState, edge_event, next_block, next_edge,
};
use crate::store::{self, Change, FollowsStore, List};

/// Reads only the directory's user events: who the users are, their privacy, and their
/// deletion (the service never asks its directory about posts or access).
pub const DIRECTORY_EVENTS: Consumer = Consumer {
    name: "follows-directory-events",
    handles: shutter_directory::USER_EVENTS,
    summary: "Keeps the follows service's copy of users; approves the pending requests of an account that turns public; ends every follow, request and block of a deleted account.",
};

/// Edges and blocks read per page.
const PAGE: usize = 100;

/// How often one edge's or block's end is decided again when a racing request changed it.
const ATTEMPTS: usize = 5;

/// One event's effects.
pub async fn apply<S: FollowsStore, D: Directory, C>(
    app: &App<S, D, C>,
    envelope: Envelope,
) -> Result<(), ConsumeError> {
    // The tombstone first: from then on no new follow or block of the account commits.
    app.directory.apply(&envelope).await?;
    match &envelope.event {
        // A public account has no requests: turning public approves those pending.
        Event::ProfileUpdated(ProfileFacts {
            user_id,
            private: false,
            ..
        }) => {
            let approved = approve_pending(app, user_id, &envelope).await?;
            if approved > 0 {
                tracing::info!(event_id = %envelope.id, %user_id, approved, "pending requests approved: the account is public");
            }
            Ok(())
        }
        Event::UserDeleted(UserDeleted { user_id, .. }) => {
            let (edges, blocks) = end_everything_of(app, user_id, &envelope).await?;
            tracing::info!(event_id = %envelope.id, %user_id, edges, blocks, "follows and blocks of a deleted account ended");
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Approves every pending request to `user`, each with its `FollowStarted` caused by the
/// account. Returns how many were approved. A request that a racing change moved (or a
/// block or deletion took away) is left to that change.
async fn approve_pending<S: FollowsStore, D: Directory, C>(
    app: &App<S, D, C>,
    user: &UserId,
    cause: &Envelope,
) -> Result<usize, ConsumeError> {
    let mut after: Option<String> = None;
    let mut approved = 0;
    loop {
        let page = app
            .store
            .list(List::Requests, user, after.as_deref(), PAGE)
            .await?;
        let Some(last) = page.last() else {
            return Ok(approved);
        };
        after = Some(last.position.clone());
        for entry in &page {
            let Some(edge) = app
                .store
                .edge(&entry.user_id, user)
                .await?
                .filter(|e| e.state == FollowState::Requested)
            else {
                continue;
            };
            let Some(next) = next_edge(Some(&edge), &entry.user_id, user, EdgeAction::Approve)
            else {
                continue;
            };
            let event = edge_event(edge.state, &next, EdgeAction::Approve);
            let event = Envelope::new(event, Some(user), &cause.correlation_id);
            let change = Change::Edge {
                previous: Some(edge),
                next,
            };
            match app.store.commit(&[change], &[event]).await {
                Ok(()) => approved += 1,
                Err(StoreError::Conflict(
                    store::STALE | store::BLOCKED | store::ACCOUNT_DELETED,
                )) => {}
                Err(err) => return Err(err.into()),
            }
        }
    }
}

/// Ends every follow, request and block by or of `user`. Returns how many edges and
/// blocks ended.
async fn end_everything_of<S: FollowsStore, D: Directory, C>(
    app: &App<S, D, C>,
    user: &UserId,
    cause: &Envelope,
) -> Result<(usize, usize), ConsumeError> {
    let (mut edges, mut blocks) = (0, 0);
    loop {
        let live = app.store.live_edges(user, PAGE).await?;
        if live.is_empty() {
            break;
        }
        for edge in live {
            edges += usize::from(end_edge(app, edge, cause).await?);
        }
    }
    loop {
        let live = app.store.live_blocks(user, PAGE).await?;
        if live.is_empty() {
            break;
        }
        for block in live {
            blocks += usize::from(end_block(app, block, cause).await?);
        }
    }
    Ok((edges, blocks))
}

/// Ends `edge` (reason `account_deleted`), reading it again when a racing request changed
/// it. False when it had ended already.
async fn end_edge<S: FollowsStore, D: Directory, C>(
    app: &App<S, D, C>,
    edge: Edge,
    cause: &Envelope,
) -> Result<bool, ConsumeError> {
    let end = EdgeAction::End(EndReason::AccountDeleted);
    let mut current = Some(edge);
    for _ in 0..ATTEMPTS {
        let Some(edge) = current.take() else {
            return Ok(false);
        };
        let Some(next) = next_edge(Some(&edge), &edge.follower_id, &edge.followee_id, end) else {
            return Ok(false);
        };
        let event = edge_event(edge.state, &next, end);
        let event = Envelope::new(event, cause.actor.as_ref(), &cause.correlation_id);
        let (follower, followee) = (next.follower_id.clone(), next.followee_id.clone());
        let change = Change::Edge {
            previous: Some(edge),
            next,
        };
        match app.store.commit(&[change], &[event]).await {
            Ok(()) => return Ok(true),
            Err(StoreError::Conflict(store::STALE)) => {
                current = app.store.edge(&follower, &followee).await?;
            }
            Err(err) => return Err(err.into()),
        }
    }
    Err(ConsumeError::retry_because(
        "a follow kept changing while its account was deleted",
    ))
}

/// Lifts `block`, reading it again when a racing request changed it. False when it had
/// been lifted already.
async fn end_block<S: FollowsStore, D: Directory, C>(
    app: &App<S, D, C>,
    block: Block,
    cause: &Envelope,
) -> Result<bool, ConsumeError> {
    let mut current = Some(block);
    for _ in 0..ATTEMPTS {
        let Some(block) = current.take() else {
            return Ok(false);
        };
        let (blocker, blocked) = (block.blocker_id.clone(), block.blocked_id.clone());
        let Some(next) = next_block(Some(&block), &blocker, &blocked, false) else {
            return Ok(false);
        };
        let event = Envelope::new(next.event(), cause.actor.as_ref(), &cause.correlation_id);
        let change = Change::Block {
            previous: Some(block),
            next,
        };
        match app.store.commit(&[change], &[event]).await {
            Ok(()) => return Ok(true),
            Err(StoreError::Conflict(store::STALE)) => {
                current = app.store.relation(&blocker, &blocked).await?.blocking;
            }
            Err(err) => return Err(err.into()),
        }
    }
    Err(ConsumeError::retry_because(
        "a block kept changing while its account was deleted",
    ))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::collections::BTreeSet;

    use base64::Engine;
    use shutter_events::{
        EndReason, EventType, KafkaEvent, KafkaRecord, MemoryPoisonQueue, Topic, UserRegistered,
    };

    use super::*;
    use crate::testing::{World, username, world};

    fn profile(w: &World, name: &str, private: bool) -> Envelope {
        let user = w.id(name);
        Envelope::new(
            Event::ProfileUpdated(ProfileFacts {
                user_id: user.clone(),
                username: name.into(),
                display_name: name.to_uppercase(),
                private,
                avatar_key: None,
            }),
            Some(&user),
            "corr",
        )
    }

    fn deleted(w: &World, name: &str) -> Envelope {
        let user = w.id(name);
        Envelope::new(
            Event::UserDeleted(UserDeleted {
                user_id: user.clone(),
                username: name.into(),
            }),
            Some(&user),
            "corr",
        )
    }

    async fn follow(w: &World, who: &str, whom: &str) {
        w.app
            .follow(&w.caller(who), &username(whom), "corr")
            .await
            .unwrap();
    }

    async fn state(w: &World, who: &str, whom: &str) -> FollowState {
        let rel = w.app.store.relation(&w.id(who), &w.id(whom)).await.unwrap();
        rel.outgoing_state()
    }

    #[test]
    fn it_handles_the_user_events_of_the_topics_template_yaml_subscribes_it_to() {
        assert_eq!(
            DIRECTORY_EVENTS.handles.topics(),
            BTreeSet::from([Topic::Identity, Topic::Profiles])
        );
        for acted_on in [EventType::ProfileUpdated, EventType::UserDeleted] {
            assert!(DIRECTORY_EVENTS.handles.contains(acted_on));
        }
        assert!(crate::CONSUMERS.contains(&&DIRECTORY_EVENTS));
    }

    #[tokio::test]
    async fn an_account_that_turns_public_approves_its_pending_requests() {
        // GIVEN ann asked to follow the private bob
        let w = world(&[("ann", false), ("bob", true)]);
        follow(&w, "ann", "bob").await;
        // WHEN bob's profile changes but stays private THEN the request waits
        apply(&w.app, profile(&w, "bob", true)).await.unwrap();
        assert_eq!(state(&w, "ann", "bob").await, FollowState::Requested);
        // WHEN bob turns public, delivered twice THEN ann follows him, once
        for _ in 0..2 {
            apply(&w.app, profile(&w, "bob", false)).await.unwrap();
        }
        assert_eq!(state(&w, "ann", "bob").await, FollowState::Following);
        assert_eq!(
            w.events(),
            [EventType::FollowRequested, EventType::FollowStarted]
        );
        let started = &w.app.store.events()[1];
        assert_eq!(started.actor, Some(w.id("bob")), "the account approved");
        // AND the directory knows bob is public now
        let bob = w.app.directory.author(&w.id("bob")).await.unwrap().unwrap();
        assert!(!bob.private);
    }

    #[tokio::test]
    async fn a_deleted_account_ends_its_follows_and_blocks_once_however_often_delivered() {
        // GIVEN gone follows bob, cat follows gone, bob follows cat, dan blocks gone
        let w = world(&[
            ("gone", false),
            ("bob", false),
            ("cat", false),
            ("dan", false),
        ]);
        follow(&w, "gone", "bob").await;
        follow(&w, "cat", "gone").await;
        follow(&w, "bob", "cat").await;
        w.app
            .block(&w.caller("dan"), &username("gone"), "corr")
            .await
            .unwrap();
        let before = w.app.store.events().len();
        // WHEN gone's deletion is delivered twice
        apply(&w.app, deleted(&w, "gone")).await.unwrap();
        apply(&w.app, deleted(&w, "gone")).await.unwrap();
        // THEN its two follows ended and the block was lifted, once each
        let events: Vec<_> = w.app.store.events().split_off(before);
        let types: Vec<_> = events.iter().map(Envelope::event_type).collect();
        assert_eq!(types.len(), 3, "{types:?}");
        assert_eq!(
            types
                .iter()
                .filter(|t| **t == EventType::FollowEnded)
                .count(),
            2
        );
        assert!(types.contains(&EventType::UserUnblocked));
        for event in &events {
            if let Event::FollowEnded(facts) = &event.event {
                assert_eq!(facts.reason, Some(EndReason::AccountDeleted));
            }
            assert_eq!(event.actor, Some(w.id("gone")));
        }
        // AND the others' follows stand; gone is no one now
        assert_eq!(state(&w, "bob", "cat").await, FollowState::Following);
        assert_eq!(state(&w, "cat", "gone").await, FollowState::None);
        assert!(
            w.app
                .directory
                .author(&w.id("gone"))
                .await
                .unwrap()
                .is_none()
        );
    }

    #[tokio::test]
    async fn a_deletion_that_keeps_losing_races_is_retried_and_then_completes() {
        // GIVEN ann follows bob, and racing requests win every attempt to end it
        let w = world(&[("ann", false), ("bob", false)]);
        follow(&w, "ann", "bob").await;
        w.app.store.lose_races(ATTEMPTS);
        // WHEN ann's deletion is applied THEN the batch is retried, and nothing ended
        assert!(matches!(
            apply(&w.app, deleted(&w, "ann")).await,
            Err(ConsumeError::Retry(_))
        ));
        assert_eq!(state(&w, "ann", "bob").await, FollowState::Following);
        // WHEN it is delivered again THEN the follow ends
        apply(&w.app, deleted(&w, "ann")).await.unwrap();
        assert_eq!(state(&w, "ann", "bob").await, FollowState::None);
        assert_eq!(
            w.events(),
            [EventType::FollowStarted, EventType::FollowEnded]
        );
    }

    fn record(offset: i64, json: &str) -> KafkaRecord {
        let mut record = KafkaRecord::default();
        record.offset = offset;
        record.value = Some(base64::engine::general_purpose::STANDARD.encode(json));
        record
    }

    #[tokio::test]
    async fn unknown_unhandled_and_malformed_records_are_skipped_ignored_and_poisoned() {
        let w = world(&[("ann", false)]);
        let newcomer = UserId::generate();
        let registered = Envelope::new(
            Event::UserRegistered(UserRegistered {
                user_id: newcomer.clone(),
                username: "zed".into(),
                created_at: "2025-01-01T00:00:00.000Z".into(),
            }),
            Some(&newcomer),
            "corr",
        );
        let email = Envelope::new(
            Event::UserEmailChanged(shutter_events::UserEmailChanged {
                user_id: w.id("ann"),
            }),
            Some(&w.id("ann")),
            "corr",
        );
        let unknown = r#"{"id":"1","type":"UserRenamed","version":1,"occurred_at":"t","actor":null,"aggregate_id":"a","correlation_id":"c","data":{}}"#;
        let mut event = KafkaEvent::default();
        event.records.insert(
            "shutter.identity-0".into(),
            vec![
                record(1, &registered.to_json().unwrap()),
                record(2, &email.to_json().unwrap()),
                record(3, unknown),
                record(4, "not an event"),
            ],
        );
        let queue = MemoryPoisonQueue::default();
        let report = shutter_events::consume(&DIRECTORY_EVENTS, &event, &queue, |envelope| {
            apply(&w.app, envelope)
        })
        .await
        .unwrap();
        assert_eq!(
            (
                report.handled,
                report.ignored,
                report.unknown,
                report.poisoned
            ),
            (1, 1, 1, 1)
        );
        assert_eq!(queue.positions(), ["shutter.identity-0@4"]);
        // The handled one reached the directory: the newcomer can be followed.
        follow(&w, "ann", "zed").await;
        assert_eq!(w.events(), [EventType::FollowStarted]);
    }
}
