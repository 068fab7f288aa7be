//! `profiles-avatar-uploaded`: verifies uploaded avatars (S3 notifications through SQS). A
//! real jpeg, png or webp of at most 5 MB under its uploader's own prefix becomes their
//! avatar, with `AvatarChanged`, and the previous avatar is deleted; anything else is
//! deleted. Redelivered notifications change nothing.
//!
//! An SQS consumer, not a Kafka one: no [`shutter_events::Consumer`]. A message that fails
//! is reported alone as a batch item failure, so the rest of the batch is not replayed;
//! SQS delivers it again, and its redrive policy moves it to the uploads dead-letter
//! queue after a few receives (what this consumer cannot ever apply ends there too).

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use shutter_events::ConsumeError;
use shutter_media::MediaStore;
use shutter_store::StoreError;

use crate::App;
use crate::model::{AvatarChange, AvatarKey, Uploaded};
use crate::store::{self, ProfilesStore};

/// How often an avatar is read and saved again when the profile changed meanwhile.
const ATTEMPTS: usize = 5;

/// Handles one SQS batch of S3 notifications.
pub async fn avatar_uploaded<S: ProfilesStore, M: MediaStore>(
    app: &App<S, M>,
    event: &SqsEvent,
) -> SqsBatchResponse {
    shutter_media::for_each_upload(event, |key| async move {
        let result = verify(app, &key).await;
        if let Err(ConsumeError::Poison(reason)) = &result {
            tracing::error!(
                key,
                reason,
                "upload cannot be verified; left to the queue's dead-letter redrive"
            );
        }
        result
    })
    .await
}

/// [`avatar_uploaded`] as a Lambda handler: it never fails as a whole (failures are the
/// batch's item failures).
pub async fn on_uploads<S: ProfilesStore, M: MediaStore>(
    app: &App<S, M>,
    event: SqsEvent,
) -> Result<SqsBatchResponse, std::convert::Infallible> {
    Ok(avatar_uploaded(app, &event).await)
}

/// Verifies the object at `key` and sets it as its owner's avatar, or deletes it.
async fn verify<S: ProfilesStore, M: MediaStore>(
    app: &App<S, M>,
    key: &str,
) -> Result<(), ConsumeError> {
    let Some(avatar) = AvatarKey::parse(key) else {
        tracing::warn!(key, "object outside avatars/<user>/<file>; deleted");
        return Ok(app.media.delete(key).await?);
    };
    // Deleted meanwhile (a newer upload replaced it, or a redelivery): nothing to do.
    let Some(info) = app.media.head(key).await? else {
        return Ok(());
    };
    let uploaded = Uploaded::new(&info, &app.media.first_bytes(key, 16).await?);
    if !uploaded.is_valid_avatar() {
        tracing::info!(key, size = uploaded.size, declared = ?uploaded.declared, sniffed = ?uploaded.sniffed, "avatar rejected and deleted");
        return Ok(app.media.delete(key).await?);
    }
    for _ in 0..ATTEMPTS {
        let Some(previous) = app.store.by_id(avatar.user_id()).await? else {
            return Ok(app.media.delete(key).await?);
        };
        match previous.avatar_change(&avatar) {
            // The avatar stays where it was uploaded: untagged, the lifecycle rule for
            // unverified uploads leaves it. Before the profile names it, so a failure in
            // between can only leave an untagged upload, never expire a live avatar; again
            // when it is already current (a redelivery after a failure at that point).
            AvatarChange::Current => return Ok(app.media.mark_verified(key).await?),
            AvatarChange::Older => return Ok(app.media.delete(key).await?),
            AvatarChange::Newer => app.media.mark_verified(key).await?,
        }
        let updated = previous.with_avatar(&avatar, &shutter_core::now_rfc3339());
        let event = updated.avatar_event(&shutter_core::new_id());
        match app.store.save(&previous, &updated, &event).await {
            Ok(()) => {
                if let Some(old) = &previous.avatar_key {
                    app.media.delete(old).await?;
                }
                tracing::info!(key, user_id = %updated.user_id, event_id = %event.id, "avatar set");
                return Ok(());
            }
            // The profile changed meanwhile (an edit, another upload): decide again on
            // what it is now.
            Err(StoreError::Conflict(store::STALE)) => continue,
            Err(err) => return Err(err.into()),
        }
    }
    Err(ConsumeError::retry_because(format!(
        "the profile of {} kept changing while setting avatar {key}",
        avatar.user_id()
    )))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::atomic::{AtomicUsize, Ordering};

    use async_trait::async_trait;
    use aws_lambda_events::event::sqs::SqsMessage;
    use shutter_core::validate::Username;
    use shutter_core::{EventId, UserId};
    use shutter_events::{Envelope, Event, EventType};
    use shutter_media::MemoryMedia;
    use shutter_store::StoreResult;

    use super::*;
    use crate::model::{Profile, ProfilePatch};
    use crate::store::memory::MemoryProfilesStore;
    use crate::testing::{app, register};

    const PNG: &[u8] = b"\x89PNG\r\n\x1a\nrest";

    fn s3_message(id: &str, key: &str) -> SqsMessage {
        let mut m = SqsMessage::default();
        m.message_id = Some(id.to_owned());
        let mut s3: serde_json::Value = serde_json::from_str(include_str!(
            "../../../events/s3-avatar-object-created.json"
        ))
        .unwrap();
        s3["Records"][0]["s3"]["object"]["key"] = key.into();
        m.body = Some(s3.to_string());
        m
    }

    fn sqs(keys: &[&str]) -> SqsEvent {
        let mut event = SqsEvent::default();
        event.records = keys
            .iter()
            .enumerate()
            .map(|(i, k)| s3_message(&format!("m{i}"), k))
            .collect();
        event
    }

    fn avatar(p: &Profile, file: &str) -> String {
        format!("avatars/{}/{file}", p.user_id)
    }

    #[tokio::test]
    async fn real_images_become_avatars_and_fakes_are_deleted() {
        let app = app();
        let alice = register(&app, "alice").await;
        let good = avatar(&alice, "01B.png");
        let fake = avatar(&alice, "01C.png");
        app.media.upload(&good, "image/png", PNG.to_vec());
        app.media
            .upload(&fake, "image/png", b"just some text".to_vec());
        let event = sqs(&[&good, &fake]);
        let resp = avatar_uploaded(&app, &event).await;
        assert!(resp.batch_item_failures.is_empty());
        let now = app.store.by_id(&alice.user_id).await.unwrap().unwrap();
        assert_eq!(now.avatar_key.as_deref(), Some(good.as_str()));
        assert!(!app.media.objects.lock().unwrap().contains_key(&fake));
        let events = app.store.events();
        let last = events.last().unwrap();
        assert_eq!(last.event_type(), EventType::AvatarChanged);
        assert_eq!(last.actor.as_ref(), Some(&alice.user_id));
        let Event::AvatarChanged(facts) = &last.event else {
            panic!("an AvatarChanged")
        };
        assert_eq!(facts.avatar_key.as_deref(), Some(good.as_str()));
        // The accepted upload is kept (its unverified tag removed); the fake is not.
        let verified = app.media.verified.lock().unwrap().clone();
        assert!(
            verified.contains(&good) && !verified.contains(&fake),
            "{verified:?}"
        );

        // Redelivery changes nothing.
        let before = app.store.events().len();
        let resp = avatar_uploaded(&app, &event).await;
        assert!(resp.batch_item_failures.is_empty());
        assert_eq!(app.store.events().len(), before);
        assert!(app.media.objects.lock().unwrap().contains_key(&good));
    }

    #[tokio::test]
    async fn a_newer_upload_replaces_the_avatar_and_a_late_older_one_is_discarded() {
        // GIVEN alice's avatar 01B
        let app = app();
        let alice = register(&app, "alice").await;
        let (a, b, c) = (
            avatar(&alice, "01A.png"),
            avatar(&alice, "01B.png"),
            avatar(&alice, "01C.png"),
        );
        for key in [&a, &b, &c] {
            app.media.upload(key, "image/png", PNG.to_vec());
        }
        avatar_uploaded(&app, &sqs(&[&b])).await;
        // WHEN 01C arrives, then a late notification of 01A
        avatar_uploaded(&app, &sqs(&[&c, &a])).await;
        // THEN 01C is the avatar, 01B (replaced) and 01A (late) are deleted
        let now = app.store.by_id(&alice.user_id).await.unwrap().unwrap();
        assert_eq!(now.avatar_key.as_deref(), Some(c.as_str()));
        let objects = app.media.objects.lock().unwrap();
        assert_eq!(objects.keys().collect::<Vec<_>>(), vec![&c]);
        assert_eq!(app.store.events().len(), 2);
    }

    #[tokio::test]
    async fn uploads_outside_a_profile_are_deleted() {
        let app = app();
        let stranger = UserId::generate();
        let nobody = format!("avatars/{stranger}/01.png");
        for key in ["avatars/x.png", "elsewhere/a/b.png", nobody.as_str()] {
            app.media.upload(key, "image/png", PNG.to_vec());
        }
        let resp =
            avatar_uploaded(&app, &sqs(&["avatars/x.png", "elsewhere/a/b.png", &nobody])).await;
        assert!(resp.batch_item_failures.is_empty());
        assert!(app.media.objects.lock().unwrap().is_empty());
        assert!(app.store.events().is_empty());
    }

    /// A profiles store whose profile is edited by "another request" just before each of
    /// the first `races` saves.
    struct Racing {
        inner: MemoryProfilesStore,
        races: AtomicUsize,
    }

    #[async_trait]
    impl ProfilesStore for Racing {
        async fn by_id(&self, user_id: &UserId) -> StoreResult<Option<Profile>> {
            self.inner.by_id(user_id).await
        }
        async fn by_username(&self, username: &Username) -> StoreResult<Option<Profile>> {
            self.inner.by_username(username).await
        }
        async fn blocked_between(&self, a: &UserId, b: &UserId) -> StoreResult<bool> {
            self.inner.blocked_between(a, b).await
        }
        async fn save(
            &self,
            previous: &Profile,
            updated: &Profile,
            event: &Envelope,
        ) -> StoreResult<()> {
            let race = self
                .races
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok();
            if race {
                let current = self
                    .inner
                    .by_id(&previous.user_id)
                    .await?
                    .unwrap_or_else(|| previous.clone());
                let patch = ProfilePatch {
                    private: Some(!current.private),
                    ..ProfilePatch::default()
                };
                let edit = current.edited(&patch, &shutter_core::new_id()).unwrap();
                self.inner
                    .save(&current, &edit, &edit.updated_event("other"))
                    .await?;
            }
            self.inner.save(previous, updated, event).await
        }
        async fn create(
            &self,
            consumer: &str,
            event_id: &EventId,
            profile: &Profile,
        ) -> StoreResult<()> {
            self.inner.create(consumer, event_id, profile).await
        }
        async fn erase(
            &self,
            consumer: &str,
            event_id: &EventId,
            user_id: &UserId,
        ) -> StoreResult<Option<Profile>> {
            self.inner.erase(consumer, event_id, user_id).await
        }
    }

    async fn racing_app(races: usize) -> (App<Racing, MemoryMedia>, Profile, String) {
        let app = App {
            store: Racing {
                inner: MemoryProfilesStore::default(),
                races: AtomicUsize::new(races),
            },
            media: MemoryMedia::default(),
        };
        let alice = crate::testing::unregistered("alice");
        app.store
            .create("test", &EventId::generate(), &alice)
            .await
            .unwrap();
        let key = avatar(&alice, "01B.png");
        app.media.upload(&key, "image/png", PNG.to_vec());
        (app, alice, key)
    }

    #[tokio::test]
    async fn a_profile_edited_meanwhile_gets_the_avatar_and_keeps_the_edit() {
        // GIVEN an edit of alice's profile races the avatar's first save
        let (app, alice, key) = racing_app(1).await;
        // WHEN the upload is verified
        let result = verify(&app, &key).await;
        // THEN it is decided again: the avatar is set and the edit kept
        assert!(result.is_ok(), "{result:?}");
        let now = app.store.by_id(&alice.user_id).await.unwrap().unwrap();
        assert_eq!(now.avatar_key.as_deref(), Some(key.as_str()));
        assert!(now.private, "the racing edit stands");
        assert_eq!(app.store.inner.events().len(), 2);
    }

    #[tokio::test]
    async fn a_profile_that_keeps_changing_is_retried_not_poisoned() {
        // GIVEN edits race every save
        let (app, alice, key) = racing_app(usize::MAX).await;
        // WHEN the upload is verified THEN it is a retry (the message comes back), and
        // the avatar is not set
        let err = verify(&app, &key).await.unwrap_err();
        assert!(matches!(err, ConsumeError::Retry(_)), "{err}");
        let now = app.store.by_id(&alice.user_id).await.unwrap().unwrap();
        assert_eq!(now.avatar_key, None);
        assert!(
            app.store
                .inner
                .events()
                .iter()
                .all(|e| matches!(e.event, Event::ProfileUpdated(_)))
        );
        // AND as an SQS batch, the message alone is reported for redelivery
        let resp = avatar_uploaded(&app, &sqs(&[&key])).await;
        assert_eq!(resp.batch_item_failures.len(), 1);
    }
}
