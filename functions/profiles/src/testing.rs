//! Test set-up shared by the unit tests: an App over the memory fakes, registered users,
//! callers, and events as the other services send them.

#![allow(clippy::unwrap_used)]

use base64::Engine;
use shutter_core::UserId;
use shutter_core::validate::Username;
use shutter_events::{BlockFacts, Envelope, Event, KafkaEvent, KafkaRecord};
use shutter_http::Caller;
use shutter_media::MemoryMedia;

use crate::App;
use crate::model::Profile;
use crate::store::ProfilesStore;
use crate::store::memory::MemoryProfilesStore;

pub(crate) type TestApp = App<MemoryProfilesStore, MemoryMedia>;

pub(crate) fn app() -> TestApp {
    App {
        store: MemoryProfilesStore::default(),
        media: MemoryMedia::default(),
    }
}

/// A user whose profile is not stored (not registered yet, or as a caller only).
pub(crate) fn unregistered(username: &str) -> Profile {
    Profile::new(
        UserId::generate(),
        Username::try_from(username.to_owned()).unwrap(),
        "2026-01-01T00:00:00.000Z",
    )
}

/// GIVEN a registered user with a profile.
pub(crate) async fn register(app: &TestApp, username: &str) -> Profile {
    let profile = unregistered(username);
    app.store
        .create("test", &shutter_core::EventId::generate(), &profile)
        .await
        .unwrap();
    profile
}

/// The owner of `p`, signed in with the `user` scope.
pub(crate) fn caller(p: &Profile) -> Caller {
    Caller {
        user_id: p.user_id.clone(),
        username: p.username.to_string(),
        scopes: vec!["user".to_owned()],
    }
}

/// The owner of `p` as a moderator.
pub(crate) fn staff(p: &Profile) -> Caller {
    Caller {
        scopes: vec!["user".to_owned(), "moderator".to_owned()],
        ..caller(p)
    }
}

fn block_event(blocker: &Profile, blocked: &Profile, seq: u64, on: bool) -> Envelope {
    let facts = BlockFacts {
        blocker_id: blocker.user_id.clone(),
        blocked_id: blocked.user_id.clone(),
        seq,
        at: "2026-01-02T00:00:00.000Z".to_owned(),
    };
    let event = if on {
        Event::UserBlocked(facts)
    } else {
        Event::UserUnblocked(facts)
    };
    Envelope::new(event, Some(&blocker.user_id), "c")
}

/// GIVEN `blocker` blocks `blocked` (the follows service's event, as the graph consumer
/// applies it).
pub(crate) async fn block(app: &TestApp, blocker: &Profile, blocked: &Profile, seq: u64) {
    crate::counters::apply(app, block_event(blocker, blocked, seq, true))
        .await
        .unwrap();
}

/// WHEN `blocker` lifts the block.
pub(crate) async fn unblock(app: &TestApp, blocker: &Profile, blocked: &Profile, seq: u64) {
    crate::counters::apply(app, block_event(blocker, blocked, seq, false))
        .await
        .unwrap();
}

/// An MSK event with one record per value on partition `topic-0` (`None`: a record that is
/// not even base64).
pub(crate) fn kafka(topic: &str, envelopes: &[Option<&Envelope>]) -> KafkaEvent {
    let mut event = KafkaEvent::default();
    for (offset, env) in envelopes.iter().enumerate() {
        let mut r = KafkaRecord::default();
        r.offset = offset as i64;
        r.value = Some(match env {
            Some(env) => base64::engine::general_purpose::STANDARD.encode(env.to_json().unwrap()),
            None => "not base64!".to_owned(),
        });
        event
            .records
            .entry(format!("{topic}-0"))
            .or_default()
            .push(r);
    }
    event
}

/// An MSK record whose value is `json` as is (to send what no producer would).
pub(crate) fn raw_kafka(topic: &str, json: &str) -> KafkaEvent {
    let mut event = KafkaEvent::default();
    let mut r = KafkaRecord::default();
    r.value = Some(base64::engine::general_purpose::STANDARD.encode(json));
    event
        .records
        .entry(format!("{topic}-0"))
        .or_default()
        .push(r);
    event
}
