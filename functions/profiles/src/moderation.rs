//! How suspensions and bans (the moderation service's `UserSuspended` and
//! `UserReinstated`, through `profiles-identity-events`) act on profiles: unit tests of the
//! rules over the memory fakes.

#![allow(clippy::unwrap_used)]

use shutter_core::validate::Username;
use shutter_events::{Envelope, Event, MemoryPoisonQueue, consume};

use crate::identity::{IDENTITY_EVENTS, apply};
use crate::model::{ImageType, Profile, ProfilePatch};
use crate::store::ProfilesStore;
use crate::testing::{TestApp, app, caller, kafka, register, staff};

const UNTIL: &str = "2999-01-01T00:00:00.000Z";

fn suspended(p: &Profile, until: Option<&str>, seq: u64) -> Envelope {
    Envelope::new(
        Event::UserSuspended(shutter_events::UserSuspended {
            user_id: p.user_id.clone(),
            username: p.username.to_string(),
            banned: until.is_none(),
            until: until.map(str::to_owned),
            seq,
        }),
        None,
        "mod",
    )
}

fn reinstated(p: &Profile, seq: u64) -> Envelope {
    Envelope::new(
        Event::UserReinstated(shutter_events::UserReinstated {
            user_id: p.user_id.clone(),
            username: p.username.to_string(),
            seq,
        }),
        None,
        "mod",
    )
}

/// `event` delivered twice through the consumer, as Kafka may.
async fn deliver_twice(app: &TestApp, event: &Envelope) {
    let poison = MemoryPoisonQueue::default();
    let batch = kafka("shutter.identity", &[Some(event), Some(event)]);
    let report = consume(&IDENTITY_EVENTS, &batch, &poison, |env| apply(app, env))
        .await
        .unwrap();
    assert_eq!((report.handled, report.poisoned), (2, 0));
}

fn patch(json: &str) -> ProfilePatch {
    serde_json::from_str(json).unwrap()
}

fn name(raw: &str) -> Username {
    Username::try_from(raw.to_owned()).unwrap()
}

/// The status and code of `p`'s profile edit and avatar form.
async fn writes(app: &TestApp, p: &Profile) -> Vec<(u16, String)> {
    let me = caller(p);
    let edit = app
        .update_profile(&me, &patch(r#"{"bio":"still here","private":true}"#), "c")
        .await
        .map(|_| ());
    let avatar = app.avatar_upload(&me, ImageType::Png).await.map(|_| ());
    [edit, avatar]
        .into_iter()
        .map(|r| match r {
            Ok(()) => (200, String::new()),
            Err(e) => (e.status(), e.problem().code),
        })
        .collect()
}

#[tokio::test]
async fn a_suspended_account_edits_nothing_until_reinstated_and_its_profile_stays_seen() {
    // GIVEN alice, then suspended for a long while (delivered twice)
    let app = app();
    let alice = register(&app, "alice").await;
    let bob = register(&app, "bob").await;
    deliver_twice(&app, &suspended(&alice, Some(UNTIL), 1)).await;
    // WHEN her still-valid token edits her profile (bio, privacy) or asks for an avatar
    // form THEN each is a 403 account_suspended saying until when; nothing changed
    assert_eq!(
        writes(&app, &alice).await,
        vec![(403, "account_suspended".to_owned()); 2]
    );
    let err = app
        .update_profile(&caller(&alice), &patch(r#"{"bio":"x"}"#), "c")
        .await
        .unwrap_err();
    assert_eq!(err.problem().until.as_deref(), Some(UNTIL));
    assert_eq!(
        app.store.by_id(&alice.user_id).await.unwrap().unwrap(),
        alice
    );
    assert!(app.store.events().is_empty());
    // AND she still reads hers, and others still see it (a suspension hides nothing)
    assert!(app.my_profile(&caller(&alice)).await.is_ok());
    assert!(app.profile(&caller(&bob), &name("alice")).await.is_ok());
    // WHEN reinstated (seq 2), then the suspension delivered again, late
    deliver_twice(&app, &reinstated(&alice, 2)).await;
    deliver_twice(&app, &suspended(&alice, Some(UNTIL), 1)).await;
    // THEN her writes pass
    assert_eq!(writes(&app, &alice).await, vec![(200, String::new()); 2]);
    assert_eq!(app.store.events().len(), 1);
}

#[tokio::test]
async fn a_deleted_accounts_standing_is_erased_with_its_profile() {
    let app = app();
    let alice = register(&app, "alice").await;
    deliver_twice(&app, &suspended(&alice, None, 1)).await;
    let gone = Envelope::new(
        Event::UserDeleted(shutter_events::UserDeleted {
            user_id: alice.user_id.clone(),
            username: "alice".into(),
        }),
        None,
        "c",
    );
    deliver_twice(&app, &gone).await;
    let standing = app.store.standing(&alice.user_id).await.unwrap();
    assert_eq!(standing, crate::store::Standing::default());
}

#[tokio::test]
async fn a_suspension_that_ended_refuses_nothing() {
    let app = app();
    let alice = register(&app, "alice").await;
    deliver_twice(
        &app,
        &suspended(&alice, Some("2001-01-01T00:00:00.000Z"), 1),
    )
    .await;
    assert_eq!(writes(&app, &alice).await, vec![(200, String::new()); 2]);
}

#[tokio::test]
async fn a_banned_accounts_profile_is_a_404_to_others_until_the_ban_is_lifted() {
    // GIVEN alice and bob; alice is banned
    let app = app();
    let alice = register(&app, "alice").await;
    let bob = register(&app, "bob").await;
    deliver_twice(&app, &suspended(&alice, None, 1)).await;
    // THEN bob is told there is no such profile; alice and staff still see it
    let err = app
        .profile(&caller(&bob), &name("alice"))
        .await
        .unwrap_err();
    assert_eq!(err.status(), 404);
    assert!(app.profile(&caller(&alice), &name("alice")).await.is_ok());
    assert!(app.profile(&staff(&bob), &name("alice")).await.is_ok());
    // AND her writes are refused as banned: 403 without `until`
    let err = app
        .update_profile(&caller(&alice), &patch(r#"{"bio":"x"}"#), "c")
        .await
        .unwrap_err();
    assert_eq!((err.status(), err.problem().until), (403, None));
    // WHEN the ban is lifted THEN bob sees her again
    deliver_twice(&app, &reinstated(&alice, 2)).await;
    assert!(app.profile(&caller(&bob), &name("alice")).await.is_ok());
    // AND a later ban (seq 3) holds again: the newest decides
    deliver_twice(&app, &suspended(&alice, None, 3)).await;
    deliver_twice(&app, &reinstated(&alice, 2)).await;
    assert_eq!(
        app.profile(&caller(&bob), &name("alice"))
            .await
            .unwrap_err()
            .status(),
        404
    );
}

#[tokio::test]
async fn an_avatar_uploaded_by_a_suspended_account_is_deleted_not_set() {
    // GIVEN alice's form was signed, then she was suspended before the upload arrived
    let app = app();
    let alice = register(&app, "alice").await;
    let key = format!("avatars/{}/01B.png", alice.user_id);
    app.media.upload(&key, "image/png", vec![1, 2, 3]);
    deliver_twice(&app, &suspended(&alice, Some(UNTIL), 1)).await;
    // WHEN the upload's notification is handled
    let mut event = aws_lambda_events::event::sqs::SqsEvent::default();
    let mut message = aws_lambda_events::event::sqs::SqsMessage::default();
    message.message_id = Some("m".into());
    let mut s3: serde_json::Value = serde_json::from_str(include_str!(
        "../../../events/s3-avatar-object-created.json"
    ))
    .unwrap();
    s3["Records"][0]["s3"]["object"]["key"] = key.clone().into();
    message.body = Some(s3.to_string());
    event.records = vec![message];
    let resp = crate::avatar::avatar_uploaded(&app, &event).await;
    // THEN the avatar is not set and the upload is gone
    assert!(resp.batch_item_failures.is_empty());
    let now = app.store.by_id(&alice.user_id).await.unwrap().unwrap();
    assert_eq!(now.avatar_key, None);
    assert!(!app.media.objects.lock().unwrap().contains_key(&key));
    assert!(app.store.events().is_empty());
}
