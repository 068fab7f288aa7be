//! `follows-directory-events`: keeps the directory of users from the identity and profiles
//! topics; when an account turns public, approves its pending requests (a public account
//! has none); when an account turns private, turns the follows that started on their own
//! after the switch (decided on the stale copy before the event arrived) back into
//! requests; when an account is deleted, ends all its follows, requests and blocks with
//! their events (so the other services' counters, feeds and indexes follow).
//!
//! A record's own work is the directory's write; the approvals and the endings, which grow
//! with the account's requests and follows, go on the service's work queue and are done a
//! page a chunk by `follows-cascade-worker` ([`crate::worker`]). Every effect is
//! idempotent: directory writes are, and each change is conditional on the edge's or
//! block's `seq`, so Kafka's redeliveries (and a job handed on twice) do no harm.

use shutter_directory::Directory;
use shutter_events::work::{Job, WithWork, WorkQueue};
use shutter_events::{ConsumeError, Consumer, Envelope, Event, ProfileFacts, UserDeleted};

use crate::App;
use crate::store::{FollowsStore, List};
use crate::worker::FollowsWork;

/// Reads only the directory's user events: who the users are, their privacy, and their
/// deletion (the service never asks its directory about posts or access).
pub const DIRECTORY_EVENTS: Consumer = Consumer {
    name: "follows-directory-events",
    handles: shutter_directory::USER_EVENTS,
    summary: "Keeps the follows service's copy of users; approves the pending requests of an account that turns public; turns the follows that started after an account turned private (before the event arrived) back into requests; ends every follow, request and block of a deleted account.",
};

/// One event's effects.
pub async fn apply<S: FollowsStore, D: Directory, C, Q: WorkQueue>(
    deps: &WithWork<App<S, D, C>, Q>,
    envelope: Envelope,
) -> Result<(), ConsumeError> {
    // The tombstone first: from then on no new follow or block of the account commits.
    deps.directory.apply(&envelope).await?;
    let work = match &envelope.event {
        Event::ProfileUpdated(facts) => match privacy_work(deps, facts).await? {
            Some(work) => work,
            None => return Ok(()),
        },
        Event::UserDeleted(UserDeleted { user_id, .. }) => FollowsWork::EndAccount {
            user_id: user_id.clone(),
        },
        _ => return Ok(()),
    };
    deps.work.enqueue(&Job::new(work, &envelope)).await?;
    Ok(())
}

/// What a profile's privacy, as the directory now holds it, hands on. The directory's
/// copy decides, not the event's: a redelivered or late older event changed nothing
/// there (it keeps the newest version), so it must not act either.
///
/// - A public account has no requests: turning public approves those pending (a profile
///   edit of a public account, with none pending, hands nothing on).
/// - A private account has no follow that started on its own after it turned private:
///   those this service let start on its stale copy (the event had not arrived yet) go
///   back to requests. The newest follower tells whether there are any.
async fn privacy_work<S: FollowsStore, D: Directory, C, Q>(
    deps: &WithWork<App<S, D, C>, Q>,
    facts: &ProfileFacts,
) -> Result<Option<FollowsWork>, ConsumeError> {
    let Some(author) = deps.directory.author(&facts.user_id).await? else {
        return Ok(None);
    };
    if author.version > facts.version {
        return Ok(None);
    }
    let user_id = author.user_id;
    if !author.private {
        let pending = deps.store.list(List::Requests, &user_id, None, 1).await?;
        return Ok((!pending.is_empty()).then_some(FollowsWork::ApprovePending { user_id }));
    }
    let Some(private_since) = author.private_since else {
        return Ok(None);
    };
    let newest = deps.store.list(List::Followers, &user_id, None, 1).await?;
    let since_switch = newest.first().is_some_and(|e| e.at >= private_since);
    Ok(since_switch.then_some(FollowsWork::WindowFollows {
        user_id,
        private_since,
    }))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::collections::BTreeSet;

    use base64::Engine;
    use shutter_events::{
        EndReason, EventType, KafkaEvent, KafkaRecord, MemoryPoisonQueue, Topic, UserRegistered,
    };

    use shutter_core::UserId;

    use super::*;
    use crate::model::FollowState;
    use crate::testing::{World, username, world};

    fn profile(w: &World, name: &str, private: bool) -> Envelope {
        versioned(w, name, private, 0, None)
    }

    /// `name`'s profile at `version`, private since `since` if private.
    fn versioned(
        w: &World,
        name: &str,
        private: bool,
        version: u64,
        since: Option<&str>,
    ) -> Envelope {
        let user = w.id(name);
        Envelope::new(
            Event::ProfileUpdated(ProfileFacts {
                user_id: user.clone(),
                username: name.into(),
                display_name: name.to_uppercase(),
                private,
                avatar_key: None,
                version,
                private_since: since.map(str::to_owned),
            }),
            Some(&user),
            "corr",
        )
    }

    /// Now, a few milliseconds after anything before and before anything after.
    fn a_moment() -> String {
        std::thread::sleep(std::time::Duration::from_millis(5));
        let now = shutter_core::now_rfc3339();
        std::thread::sleep(std::time::Duration::from_millis(5));
        now
    }

    async fn list(w: &World, list: List, owner: &str) -> Vec<UserId> {
        let entries = w
            .app
            .store
            .list(list, &w.id(owner), None, 100)
            .await
            .unwrap();
        entries.into_iter().map(|e| e.user_id).collect()
    }

    #[tokio::test]
    async fn follows_that_started_after_the_switch_become_requests_when_the_event_arrives() {
        // GIVEN ann followed bob; bob turned private at `switch`; before the event reached
        // this service, cat and dan followed him (the stale copy said public)
        let w = world(&[
            ("ann", false),
            ("bob", false),
            ("cat", false),
            ("dan", false),
        ]);
        follow(&w, "ann", "bob").await;
        let switch = a_moment();
        follow(&w, "cat", "bob").await;
        follow(&w, "dan", "bob").await;
        assert_eq!(state(&w, "cat", "bob").await, FollowState::Following);
        let before = w.app.store.events().len();
        // WHEN the event arrives, twice (a redelivery), with a chunk of two
        for _ in 0..2 {
            apply(&w.app, versioned(&w, "bob", true, 1, Some(&switch)))
                .await
                .unwrap();
            w.work().await;
        }
        // THEN cat's and dan's follows are pending requests, ann's follow stands
        assert_eq!(state(&w, "ann", "bob").await, FollowState::Following);
        assert_eq!(state(&w, "cat", "bob").await, FollowState::Requested);
        assert_eq!(state(&w, "dan", "bob").await, FollowState::Requested);
        assert_eq!(list(&w, List::Followers, "bob").await, [w.id("ann")]);
        let mut requests = list(&w, List::Requests, "bob").await;
        requests.sort();
        let mut expected = vec![w.id("cat"), w.id("dan")];
        expected.sort();
        assert_eq!(requests, expected);
        assert!(list(&w, List::Following, "cat").await.is_empty());
        // AND each went back once: FollowEnded (awaits approval) then FollowRequested,
        // caused by bob
        let events: Vec<Envelope> = w.app.store.events().split_off(before);
        let types: Vec<_> = events.iter().map(Envelope::event_type).collect();
        assert_eq!(
            types,
            [
                EventType::FollowEnded,
                EventType::FollowRequested,
                EventType::FollowEnded,
                EventType::FollowRequested
            ]
        );
        for event in &events {
            assert_eq!(event.actor, Some(w.id("bob")));
            if let Event::FollowEnded(ended) = &event.event {
                assert_eq!(ended.reason, Some(EndReason::AwaitsApproval));
            }
        }
        // AND bob may approve them as any request
        w.app
            .approve(&w.caller("bob"), &w.id("cat"), "corr")
            .await
            .unwrap();
        assert_eq!(state(&w, "cat", "bob").await, FollowState::Following);
        // AND a later profile edit of the still private bob takes nothing back
        apply(&w.app, versioned(&w, "bob", true, 2, Some(&switch)))
            .await
            .unwrap();
        w.work().await;
        assert_eq!(state(&w, "cat", "bob").await, FollowState::Following);
    }

    #[tokio::test]
    async fn a_late_older_privacy_event_takes_nothing_back() {
        // GIVEN bob turned private (version 1), then public again (version 2), and cat
        // followed him while public
        let w = world(&[("bob", false), ("cat", false)]);
        let switch = a_moment();
        let private = versioned(&w, "bob", true, 1, Some(&switch));
        apply(&w.app, private.clone()).await.unwrap();
        apply(&w.app, versioned(&w, "bob", false, 2, None))
            .await
            .unwrap();
        w.work().await;
        follow(&w, "cat", "bob").await;
        // WHEN the private version is delivered again (a reordered redelivery)
        apply(&w.app, private).await.unwrap();
        w.work().await;
        // THEN cat still follows, and nothing else happened
        assert_eq!(state(&w, "cat", "bob").await, FollowState::Following);
        assert_eq!(w.events(), [EventType::FollowStarted]);
        assert!(
            !w.app
                .directory
                .author(&w.id("bob"))
                .await
                .unwrap()
                .unwrap()
                .private
        );
    }

    #[tokio::test]
    async fn a_window_job_stops_when_the_account_turned_public_meanwhile() {
        // GIVEN cat followed bob after he turned private, and the job was handed on
        let w = world(&[("bob", false), ("cat", false)]);
        let switch = a_moment();
        follow(&w, "cat", "bob").await;
        apply(&w.app, versioned(&w, "bob", true, 1, Some(&switch)))
            .await
            .unwrap();
        // WHEN bob turns public before the job runs
        apply(&w.app, versioned(&w, "bob", false, 2, None))
            .await
            .unwrap();
        w.work().await;
        // THEN the follow stands: a public account takes every follow
        assert_eq!(state(&w, "cat", "bob").await, FollowState::Following);
        assert_eq!(w.events(), [EventType::FollowStarted]);
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
        w.work().await;
        assert_eq!(state(&w, "ann", "bob").await, FollowState::Requested);
        // WHEN bob turns public, delivered twice THEN ann follows him, once
        for _ in 0..2 {
            apply(&w.app, profile(&w, "bob", false)).await.unwrap();
            w.work().await;
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
        w.work().await;
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
        w.app.store.lose_races(crate::worker::ATTEMPTS);
        // WHEN ann's deletion is applied THEN the record hands its work on
        apply(&w.app, deleted(&w, "ann")).await.unwrap();
        // AND the chunk fails for a retry, and nothing ended
        let failed = w
            .app
            .work
            .drain(10, |job| crate::worker::chunk(&w.app, job))
            .await;
        assert_eq!(failed.len(), 1);
        assert_eq!(state(&w, "ann", "bob").await, FollowState::Following);
        // WHEN SQS delivers the message again THEN the follow ends
        shutter_events::work::WorkQueue::send(&w.app.work, failed[0].clone())
            .await
            .unwrap();
        w.work().await;
        assert_eq!(state(&w, "ann", "bob").await, FollowState::None);
        assert_eq!(
            w.events(),
            [EventType::FollowStarted, EventType::FollowEnded]
        );
    }

    #[tokio::test]
    async fn a_deleted_account_with_more_than_a_page_ends_everything_in_several_chunks() {
        // GIVEN gone follows three users, three follow gone, and two block gone (two items
        // a chunk here)
        let names: [&'static str; 9] = [
            "gone", "aan", "bea", "cal", "dov", "eve", "fay", "gus", "hal",
        ];
        let w = world(&names.map(|n| (n, false)));
        for other in ["aan", "bea", "cal"] {
            follow(&w, "gone", other).await;
        }
        for other in ["dov", "eve", "fay"] {
            follow(&w, other, "gone").await;
        }
        for other in ["gus", "hal"] {
            w.app
                .block(&w.caller(other), &username("gone"), "corr")
                .await
                .unwrap();
        }
        let before = w.app.store.events().len();
        // WHEN gone is deleted
        apply(&w.app, deleted(&w, "gone")).await.unwrap();
        let mut chunks = 0;
        let failed = w
            .app
            .work
            .drain(100, |job| {
                chunks += 1;
                crate::worker::chunk(&w.app, job)
            })
            .await;
        assert!(failed.is_empty());
        // THEN six follows ended and two blocks were lifted, each once, over several chunks
        let types: Vec<_> = w.app.store.events()[before..]
            .iter()
            .map(Envelope::event_type)
            .collect();
        let count = |t| types.iter().filter(|x| **x == t).count();
        assert_eq!(count(EventType::FollowEnded), 6, "{types:?}");
        assert_eq!(count(EventType::UserUnblocked), 2, "{types:?}");
        assert_eq!(types.len(), 8);
        assert!(chunks >= 5, "{chunks} chunks");
        for other in ["aan", "bea", "cal"] {
            assert_eq!(state(&w, "gone", other).await, FollowState::None);
        }
        for other in ["dov", "eve", "fay"] {
            assert_eq!(state(&w, other, "gone").await, FollowState::None);
        }
    }

    #[tokio::test]
    async fn approvals_stop_when_the_account_turns_private_again() {
        // GIVEN three requests to the private bob (two a chunk here)
        let w = world(&[("bob", true), ("a", false), ("b", false), ("c", false)]);
        for who in ["a", "b", "c"] {
            follow(&w, who, "bob").await;
        }
        // WHEN bob turns public, and private again before the second chunk runs
        apply(&w.app, profile(&w, "bob", false)).await.unwrap();
        let first = w.app.work.take::<FollowsWork>();
        assert_eq!(first.len(), 1);
        let step = crate::worker::chunk(&w.app, first[0].clone())
            .await
            .unwrap();
        apply(&w.app, profile(&w, "bob", true)).await.unwrap();
        let shutter_events::work::Step::More(cursor) = step else {
            panic!("a full page leaves more: {step:?}");
        };
        let rest = crate::worker::chunk(&w.app, first[0].next(cursor))
            .await
            .unwrap();
        // THEN two were approved, and the third still waits
        assert_eq!(rest, shutter_events::work::Step::Done);
        let mut following = 0;
        for who in ["a", "b", "c"] {
            following += usize::from(state(&w, who, "bob").await == FollowState::Following);
        }
        assert_eq!(following, 2);
    }

    #[tokio::test]
    async fn a_public_profile_edit_with_nothing_pending_hands_nothing_on() {
        let w = world(&[("ann", false)]);
        apply(&w.app, profile(&w, "ann", false)).await.unwrap();
        assert!(w.app.work.take::<FollowsWork>().is_empty());
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
