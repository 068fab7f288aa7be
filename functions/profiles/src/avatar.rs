//! `profiles-avatar-uploaded`: verifies uploaded avatars (S3 notifications through SQS). A
//! jpeg, png or webp of at most 5 MB under its uploader's own prefix goes through the
//! image pipeline every stored image takes ([`shutter_media::images`]): its real type must
//! be the declared one, its size in pixels at most `MaxImagePixels` (read from the header,
//! before decoding), its pixels must decode; they are turned upright, scaled to at most
//! [`AVATAR_MAX_SIDE`] and encoded afresh. The clean file replaces the upload at the same
//! key and becomes its owner's avatar, with `AvatarChanged`, and the previous avatar is
//! deleted. What was uploaded (EXIF with GPS, a polyglot's hidden bytes) is never served;
//! anything refused is deleted and the avatar stays as it was. Redelivered notifications
//! change nothing.
//!
//! The clean file is written as Shutter's own ([`Origin::Shutter`]): S3 announces that
//! write too, and its notification finds the object done, so it is not processed again.
//!
//! An SQS consumer, not a Kafka one: no [`shutter_events::Consumer`]. A message that fails
//! is reported alone as a batch item failure, so the rest of the batch is not replayed;
//! SQS delivers it again, and its redrive policy moves it to the uploads dead-letter
//! queue after a few receives (what this consumer cannot ever apply ends there too).

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use shutter_events::ConsumeError;
use shutter_media::{MediaStore, ObjectInfo, Origin, Refusal, images};
use shutter_store::StoreError;

use crate::App;
use crate::model::{AvatarChange, AvatarKey, ImageType, Uploaded, avatar_size_allowed};
use crate::store::{self, ProfilesStore};

/// How often an avatar is read and saved again when the profile changed meanwhile.
const ATTEMPTS: usize = 5;

/// The longest side of a stored avatar, in pixels: avatars are shown small, so more is
/// only bytes to serve.
pub const AVATAR_MAX_SIDE: u32 = 1080;

/// A client's upload (`info` as S3 describes it, and its `bytes`) as a clean avatar of the
/// type it declared, or why it is refused.
pub fn clean_avatar(
    info: &ObjectInfo,
    bytes: &[u8],
    max_pixels: u64,
) -> Result<(ImageType, Vec<u8>), Refusal> {
    let read = ObjectInfo {
        size: bytes.len() as u64,
        content_type: info.content_type.clone(),
    };
    let uploaded = Uploaded::new(&read, &bytes[..bytes.len().min(16)]);
    let declared = match uploaded.declared {
        Some(declared) if uploaded.is_valid_avatar() => declared,
        _ => {
            return Err(Refusal(format!(
                "not an avatar: {} bytes, declared {:?}, sniffed {:?}",
                uploaded.size, uploaded.declared, uploaded.sniffed
            )));
        }
    };
    let image = images::decode_upright(bytes, declared, max_pixels)?;
    let image = images::fit_within(&image, AVATAR_MAX_SIDE);
    Ok((declared, images::encode(&image, declared)?))
}

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
    let Some((info, origin)) = app.media.head_with_origin(key).await? else {
        return Ok(());
    };
    // A form signed before the account's suspension or ban reached this service, used
    // after: the upload is a write of a suspended account, refused as the form would be.
    let standing = app.store.standing(avatar.user_id()).await?;
    if standing.refusal(&shutter_core::now_rfc3339()).is_some() {
        tracing::info!(key, user_id = %avatar.user_id(), "upload of a suspended account; deleted");
        return Ok(app.media.delete(key).await?);
    }
    if origin == Origin::Upload && !clean(app, key, &info).await? {
        return Ok(());
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

/// Replaces the client's upload at `key` with its clean re-encoding, written as Shutter's
/// own; false when it was refused (and deleted) or is gone.
async fn clean<S, M: MediaStore>(
    app: &App<S, M>,
    key: &str,
    info: &ObjectInfo,
) -> Result<bool, ConsumeError> {
    let refused = |why: String| async move {
        tracing::info!(key, why, "avatar rejected and deleted");
        app.media.delete(key).await.map(|()| false)
    };
    // Larger than an avatar may be: refused unread.
    if !avatar_size_allowed(info.size) {
        return Ok(refused(format!("{} bytes", info.size)).await?);
    }
    let Some(bytes) = app.media.get(key).await? else {
        return Ok(false);
    };
    let max_pixels = images::max_pixels();
    match tokio::task::block_in_place(|| clean_avatar(info, &bytes, max_pixels)) {
        Ok((image_type, clean)) => {
            app.media.put(key, image_type, clean).await?;
            Ok(true)
        }
        Err(Refusal(why)) => Ok(refused(why).await?),
    }
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
    use shutter_media::images::fixtures::{black_png, jpeg_with_gps};
    use shutter_store::StoreResult;

    use super::*;
    use crate::model::{Profile, ProfilePatch};
    use crate::store::memory::MemoryProfilesStore;
    use crate::testing::{app, register};

    /// A real 4 × 3 PNG.
    fn png() -> Vec<u8> {
        black_png(4, 3)
    }

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

    #[tokio::test(flavor = "multi_thread")]
    async fn real_images_become_avatars_and_fakes_are_deleted() {
        let app = app();
        let alice = register(&app, "alice").await;
        let good = avatar(&alice, "01B.png");
        let fake = avatar(&alice, "01C.png");
        app.media.upload(&good, "image/png", png());
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

    fn stored(app: &crate::testing::TestApp, key: &str) -> Option<(String, Vec<u8>)> {
        app.media.objects.lock().unwrap().get(key).cloned()
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn an_avatar_is_stored_re_encoded_upright_and_without_its_metadata() {
        // GIVEN alice uploads a 1600 × 1200 JPEG with GPS in its EXIF, orientation 6
        let app = app();
        let alice = register(&app, "alice").await;
        let key = avatar(&alice, "01B.jpg");
        let upload = jpeg_with_gps(1600, 1200);
        app.media.upload(&key, "image/jpeg", upload.clone());
        // WHEN it is verified
        let resp = avatar_uploaded(&app, &sqs(&[&key])).await;
        assert!(resp.batch_item_failures.is_empty());
        // THEN the stored avatar is a fresh JPEG, upright, at most 1080 px, with no EXIF
        let (content_type, bytes) = stored(&app, &key).unwrap();
        assert_eq!(content_type, "image/jpeg");
        assert_ne!(bytes, upload);
        assert!(!bytes.windows(4).any(|w| w == b"Exif"), "no EXIF block");
        let image = images::decode_upright(&bytes, ImageType::Jpeg, u64::MAX).unwrap();
        assert_eq!((image.width(), image.height()), (810, 1080));
        let now = app.store.by_id(&alice.user_id).await.unwrap().unwrap();
        assert_eq!(now.avatar_key.as_deref(), Some(key.as_str()));
        // AND the notification of that write finds it done: nothing is encoded again
        let events = app.store.events().len();
        avatar_uploaded(&app, &sqs(&[&key])).await;
        assert_eq!(stored(&app, &key).unwrap().1, bytes);
        assert_eq!(app.store.events().len(), events);
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_decompression_bomb_is_refused_unread_and_deleted() {
        // GIVEN alice's avatar, then an upload claiming 20,000 × 20,000 pixels
        let app = app();
        let alice = register(&app, "alice").await;
        let first = avatar(&alice, "01A.png");
        app.media.upload(&first, "image/png", png());
        avatar_uploaded(&app, &sqs(&[&first])).await;
        let events = app.store.events().len();
        let bomb = avatar(&alice, "01B.png");
        app.media
            .upload(&bomb, "image/png", black_png(20_000, 20_000));
        // WHEN it is verified THEN it is deleted and the avatar stays as it was
        let resp = avatar_uploaded(&app, &sqs(&[&bomb])).await;
        assert!(resp.batch_item_failures.is_empty());
        assert!(stored(&app, &bomb).is_none());
        let now = app.store.by_id(&alice.user_id).await.unwrap().unwrap();
        assert_eq!(now.avatar_key.as_deref(), Some(first.as_str()));
        assert_eq!(app.store.events().len(), events);
        // AND a type it is not, or a polyglot's tail, never reaches the store either
        let jpeg_as_png = avatar(&alice, "01C.png");
        app.media
            .upload(&jpeg_as_png, "image/png", jpeg_with_gps(8, 8));
        avatar_uploaded(&app, &sqs(&[&jpeg_as_png])).await;
        assert!(stored(&app, &jpeg_as_png).is_none());
        let polyglot = avatar(&alice, "01D.png");
        let mut bytes = png();
        bytes.extend_from_slice(b"<script>alert(1)</script>");
        app.media.upload(&polyglot, "image/png", bytes);
        avatar_uploaded(&app, &sqs(&[&polyglot])).await;
        let (_, kept) = stored(&app, &polyglot).unwrap();
        assert!(!kept.windows(7).any(|w| w == b"<script"));
    }

    #[tokio::test(flavor = "multi_thread")]
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
            app.media.upload(key, "image/png", png());
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

    #[tokio::test(flavor = "multi_thread")]
    async fn uploads_outside_a_profile_are_deleted() {
        let app = app();
        let stranger = UserId::generate();
        let nobody = format!("avatars/{stranger}/01.png");
        for key in ["avatars/x.png", "elsewhere/a/b.png", nobody.as_str()] {
            app.media.upload(key, "image/png", png());
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
        async fn standing(&self, user_id: &UserId) -> StoreResult<crate::store::Standing> {
            self.inner.standing(user_id).await
        }
        async fn set_standing(
            &self,
            user_id: &UserId,
            banned: bool,
            until: Option<&str>,
            seq: u64,
        ) -> StoreResult<()> {
            self.inner.set_standing(user_id, banned, until, seq).await
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
        app.media.upload(&key, "image/png", png());
        (app, alice, key)
    }

    #[tokio::test(flavor = "multi_thread")]
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

    #[tokio::test(flavor = "multi_thread")]
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
