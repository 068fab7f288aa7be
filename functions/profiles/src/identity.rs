//! `profiles-identity-events`: the MSK consumer of the identity topic. A registration
//! creates the profile; a deletion erases it, its username and counters, and the user's
//! avatars. Each store effect happens once however often Kafka redelivers (a marker per
//! event id is written in the same transaction); deleting avatars again is harmless. A
//! suspension, ban or reinstatement (from the moderation service) is kept as the account's
//! standing, the one with the highest `seq` (so redelivered and late events change
//! nothing): the service refuses the account's writes while it holds and hides a banned
//! account's profile from others ([`crate::service`]).

use shutter_core::validate::Username;
use shutter_core::{EventId, UserId};
use shutter_events::{
    ConsumeError, Consumer, Envelope, Event, EventSet, EventType, UserRegistered,
};
use shutter_media::MediaStore;
use shutter_store::StoreError;

use crate::App;
use crate::model::{Profile, avatar_prefix};
use crate::store::{self, ProfilesStore};

pub const IDENTITY_EVENTS: Consumer = Consumer {
    name: "profiles-identity-events",
    handles: EventSet::of(&[
        EventType::UserRegistered,
        EventType::UserDeleted,
        EventType::UserSuspended,
        EventType::UserReinstated,
    ]),
    summary: "Creates a profile when an account is registered; erases it, its username, counters and avatars when the account is deleted; keeps the account's suspension or ban (its writes are refused, a banned account's profile is hidden from others).",
};

/// One event's effects.
pub async fn apply<S: ProfilesStore, M: MediaStore>(
    app: &App<S, M>,
    envelope: Envelope,
) -> Result<(), ConsumeError> {
    match &envelope.event {
        Event::UserRegistered(user) => create(app, user, &envelope.id).await,
        Event::UserDeleted(user) => erase(app, &user.user_id, &envelope.id).await,
        Event::UserSuspended(s) => {
            standing(app, &s.user_id, s.banned, s.until.as_deref(), s.seq).await
        }
        Event::UserReinstated(r) => standing(app, &r.user_id, false, None, r.seq).await,
        _ => Ok(()),
    }
}

/// Keeps the account's standing numbered `seq`, unless a newer one is kept already.
async fn standing<S: ProfilesStore, M>(
    app: &App<S, M>,
    user_id: &UserId,
    banned: bool,
    until: Option<&str>,
    seq: u64,
) -> Result<(), ConsumeError> {
    match app.store.set_standing(user_id, banned, until, seq).await {
        Ok(()) => {
            tracing::info!(user_id = %user_id, banned, until, seq, "account standing changed");
            Ok(())
        }
        Err(StoreError::Conflict(store::STANDING_NEWER)) => {
            tracing::info!(user_id = %user_id, seq, "standing as new or newer kept; nothing to do");
            Ok(())
        }
        Err(err) => Err(err.into()),
    }
}

async fn create<S: ProfilesStore, M>(
    app: &App<S, M>,
    user: &UserRegistered,
    event_id: &EventId,
) -> Result<(), ConsumeError> {
    // The identity service only registers valid usernames: another is a broken record.
    let username = Username::try_from(user.username.clone())
        .map_err(|why| ConsumeError::poison(format!("username {why}")))?;
    let profile = Profile::new(user.user_id.clone(), username, &user.created_at);
    match app
        .store
        .create(IDENTITY_EVENTS.name, event_id, &profile)
        .await
    {
        Ok(()) => {
            tracing::info!(event_id = %event_id, user_id = %user.user_id, "profile created");
            Ok(())
        }
        Err(StoreError::Conflict(store::PROCESSED | store::PROFILE_EXISTS)) => {
            tracing::info!(event_id = %event_id, user_id = %user.user_id, "profile created before; nothing to do");
            Ok(())
        }
        // The username's previous owner was deleted, but that deletion is not applied
        // yet: it will be, so trying again later succeeds.
        Err(StoreError::Conflict(store::USERNAME_HELD)) => {
            Err(ConsumeError::retry_because(format!(
                "username {} is still held by another user; retry after their deletion",
                profile.username
            )))
        }
        Err(err) => Err(err.into()),
    }
}

async fn erase<S: ProfilesStore, M: MediaStore>(
    app: &App<S, M>,
    user_id: &UserId,
    event_id: &EventId,
) -> Result<(), ConsumeError> {
    match app
        .store
        .erase(IDENTITY_EVENTS.name, event_id, user_id)
        .await
    {
        Ok(erased) => {
            tracing::info!(event_id = %event_id, user_id = %user_id, had_profile = erased.is_some(), "profile erased");
        }
        Err(StoreError::Conflict(store::PROCESSED)) => {
            tracing::info!(event_id = %event_id, user_id = %user_id, "profile erased before");
        }
        // HANDLE_MOVED (a race with another registration) or storage trouble: retried.
        Err(err) => return Err(err.into()),
    }
    // Also on a redelivery: an earlier attempt may have failed after the erase.
    app.media.delete_prefix(&avatar_prefix(user_id)).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use shutter_events::{
        BatchReport, KafkaEvent, MemoryPoisonQueue, UserDeleted, UserEmailChanged, consume,
    };

    use super::*;
    use crate::testing::{TestApp, app, kafka, raw_kafka, register};

    const TOPIC: &str = "shutter.identity";

    fn registered(user_id: &UserId, username: &str) -> Envelope {
        Envelope::new(
            Event::UserRegistered(UserRegistered {
                user_id: user_id.clone(),
                username: username.to_owned(),
                created_at: "2026-01-01T00:00:00.000Z".to_owned(),
            }),
            Some(user_id),
            "c",
        )
    }

    fn deleted(p: &Profile) -> Envelope {
        Envelope::new(
            Event::UserDeleted(UserDeleted {
                user_id: p.user_id.clone(),
                username: p.username.to_string(),
            }),
            Some(&p.user_id),
            "c",
        )
    }

    async fn deliver(
        app: &TestApp,
        poison: &MemoryPoisonQueue,
        event: &KafkaEvent,
    ) -> Result<BatchReport, ConsumeError> {
        consume(&IDENTITY_EVENTS, event, poison, |env| apply(app, env)).await
    }

    fn name(raw: &str) -> Username {
        Username::try_from(raw.to_owned()).unwrap()
    }

    #[tokio::test]
    async fn registration_creates_one_profile_however_often_it_is_delivered() {
        let (app, poison) = (app(), MemoryPoisonQueue::default());
        let id = UserId::generate();
        let env = registered(&id, "alice");
        let batch = kafka(TOPIC, &[Some(&env), Some(&env)]);
        deliver(&app, &poison, &batch).await.unwrap();
        deliver(&app, &poison, &batch).await.unwrap();
        assert_eq!(app.store.profile_count(), 1);
        let alice = app.store.by_id(&id).await.unwrap().unwrap();
        assert_eq!(alice.username.as_str(), "alice");
        assert_eq!(alice.created_at, "2026-01-01T00:00:00.000Z");
        assert!(poison.positions().is_empty());
    }

    #[tokio::test]
    async fn poison_records_go_to_the_dlq_and_do_not_block_the_rest() {
        let (app, poison) = (app(), MemoryPoisonQueue::default());
        let bad_name = registered(&UserId::generate(), "no way!");
        let good = registered(&UserId::generate(), "bob");
        let mut event = kafka(TOPIC, &[None, Some(&bad_name), Some(&good)]);
        // A payload that does not fit UserRegistered, at offset 3.
        let bad_payload = raw_kafka(
            TOPIC,
            r#"{"id":"01J","type":"UserRegistered","version":1,"occurred_at":"t","actor":null,"aggregate_id":"x","correlation_id":"c","data":{"nope":1}}"#,
        );
        let mut record = bad_payload.records[&format!("{TOPIC}-0")][0].clone();
        record.offset = 3;
        event
            .records
            .get_mut(&format!("{TOPIC}-0"))
            .unwrap()
            .push(record);
        let report = deliver(&app, &poison, &event).await.unwrap();
        assert_eq!(
            poison.positions(),
            vec![
                "shutter.identity-0@0",
                "shutter.identity-0@3",
                "shutter.identity-0@1"
            ]
        );
        assert_eq!(report.poisoned, 3);
        assert_eq!(app.store.profile_count(), 1);
        assert!(app.store.by_username(&name("bob")).await.unwrap().is_some());
    }

    #[tokio::test]
    async fn deletion_erases_the_profile_and_avatars() {
        let app = app();
        let alice = register(&app, "alice").await;
        let other = UserId::generate();
        app.media.upload(
            &format!("avatars/{}/01.png", alice.user_id),
            "image/png",
            vec![1],
        );
        app.media
            .upload(&format!("avatars/{other}/01.png"), "image/png", vec![1]);
        let env = deleted(&alice);
        apply(&app, env.clone()).await.unwrap();
        assert!(app.store.by_id(&alice.user_id).await.unwrap().is_none());
        assert!(
            app.store
                .by_username(&name("alice"))
                .await
                .unwrap()
                .is_none()
        );
        assert_eq!(
            app.media.objects.lock().unwrap().len(),
            1,
            "only the other user's avatar remains"
        );
        // Redelivered: nothing more changes.
        apply(&app, env).await.unwrap();
        assert_eq!(app.store.profile_count(), 0);
        assert_eq!(app.media.objects.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn a_username_frees_once_its_owners_deletion_is_applied() {
        // GIVEN alice holds "alice"
        let app = app();
        let alice = register(&app, "alice").await;
        // WHEN someone else registers "alice" before alice's deletion is applied
        let newcomer = UserId::generate();
        let early = registered(&newcomer, "alice");
        let err = apply(&app, early.clone()).await.unwrap_err();
        // THEN it is retried, not poisoned, and nothing changed
        assert!(matches!(err, ConsumeError::Retry(_)), "{err}");
        assert!(app.store.by_id(&newcomer).await.unwrap().is_none());
        assert_eq!(
            app.store
                .by_username(&name("alice"))
                .await
                .unwrap()
                .unwrap()
                .user_id,
            alice.user_id
        );
        // WHEN the deletion is applied THEN the retried registration succeeds
        apply(&app, deleted(&alice)).await.unwrap();
        apply(&app, early).await.unwrap();
        assert_eq!(
            app.store
                .by_username(&name("alice"))
                .await
                .unwrap()
                .unwrap()
                .user_id,
            newcomer
        );
    }

    #[tokio::test]
    async fn other_identity_events_change_nothing() {
        let (app, poison) = (app(), MemoryPoisonQueue::default());
        let alice = register(&app, "alice").await;
        let changed = Envelope::new(
            Event::UserEmailChanged(UserEmailChanged {
                user_id: alice.user_id.clone(),
            }),
            Some(&alice.user_id),
            "c",
        );
        let report = deliver(&app, &poison, &kafka(TOPIC, &[Some(&changed)]))
            .await
            .unwrap();
        assert_eq!((report.handled, report.ignored), (0, 1));
        assert_eq!(
            app.store.by_id(&alice.user_id).await.unwrap().unwrap(),
            alice
        );
    }

    #[tokio::test]
    async fn the_sample_msk_event_creates_alices_profile() {
        let event: KafkaEvent = serde_json::from_str(include_str!(
            "../../../events/profiles-identity-events.json"
        ))
        .unwrap();
        let app = app();
        let poison = MemoryPoisonQueue::default();
        deliver(&app, &poison, &event).await.unwrap();
        let alice = app
            .store
            .by_username(&name("alice"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(alice.user_id, "01JD00000000000000000USER1");
        assert!(poison.positions().is_empty());
    }
}
