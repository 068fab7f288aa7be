//! The consumers: identity events from Kafka, and S3 upload notifications from SQS.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use serde::Deserialize;
use shutter_core::ApiError;
use shutter_core::validate::Username;
use shutter_events::KafkaEvent;
use shutter_events::legacy::Envelope;

use crate::avatar::{ImageType, MAX_AVATAR_BYTES, MediaStore, avatar_type};
use crate::model::{Profile, ProfileUpdated};
use crate::store::ProfilesStore;

/// This consumer's name in processed-event markers.
pub const IDENTITY_CONSUMER: &str = "profiles-identity-events";

pub use shutter_events::{PoisonQueue, SqsPoisonQueue};

#[derive(Debug, Deserialize)]
struct UserEvent {
    user_id: String,
    username: String,
    #[serde(default)]
    created_at: Option<String>,
}

/// Applies `UserRegistered` (create the profile) and `UserDeleted` (erase it and the
/// user's avatars). Each effect happens once however often Kafka redelivers (a marker per
/// event id is written in the same transaction). Poison records go to the DLQ; any other
/// failure fails the batch, which Lambda retries.
pub async fn identity_events<S: ProfilesStore, M: MediaStore, Q: PoisonQueue>(
    store: &S,
    media: &M,
    poison: &Q,
    event: &KafkaEvent,
) -> Result<(), ApiError> {
    shutter_events::legacy::consume(event, poison, |envelope| async move {
        apply_identity_event(store, media, &envelope).await
    })
    .await
}

async fn apply_identity_event<S: ProfilesStore, M: MediaStore>(
    store: &S,
    media: &M,
    envelope: &Envelope,
) -> Result<(), ApiError> {
    let payload = || {
        envelope
            .data::<UserEvent>()
            .map_err(|e| ApiError::invalid("data", e.to_string()))
    };
    match envelope.event_type.as_str() {
        "UserRegistered" => {
            let data = payload()?;
            let username = Username::try_from(data.username)
                .map_err(|why| ApiError::invalid("data.username", why))?;
            let created_at = data
                .created_at
                .unwrap_or_else(|| envelope.occurred_at.clone());
            let applied = store
                .create(
                    IDENTITY_CONSUMER,
                    &envelope.id,
                    &Profile::new(&data.user_id, username, &created_at),
                )
                .await?;
            tracing::info!(event_id = %envelope.id, user_id = %data.user_id, ?applied, "profile created");
        }
        "UserDeleted" => {
            let data = payload()?;
            let (applied, _) = store
                .erase(IDENTITY_CONSUMER, &envelope.id, &data.user_id)
                .await?;
            // Safe to repeat: deleting what is gone is a no-op.
            media
                .delete_prefix(&format!("avatars/{}/", data.user_id))
                .await?;
            tracing::info!(event_id = %envelope.id, user_id = %data.user_id, ?applied, "profile erased");
        }
        other => tracing::debug!(event_type = other, "event not for this consumer"),
    }
    Ok(())
}

/// Verifies uploaded avatars (S3 notifications through SQS): a real jpeg/png/webp of at
/// most 5 MB under the uploader's own prefix becomes their avatar; anything else is
/// deleted. Only messages that failed for a retryable reason are reported, so the rest of
/// the batch is not replayed.
pub async fn avatar_uploaded<S: ProfilesStore, M: MediaStore>(
    store: &S,
    media: &M,
    event: &SqsEvent,
) -> SqsBatchResponse {
    shutter_media::for_each_upload(event, |key| async move {
        verify_avatar(store, media, &key).await
    })
    .await
}

async fn verify_avatar<S: ProfilesStore, M: MediaStore>(
    store: &S,
    media: &M,
    key: &str,
) -> Result<(), ApiError> {
    let mut parts = key.split('/');
    let (Some("avatars"), Some(user_id), Some(file), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        tracing::warn!(key, "object outside avatars/<user>/<file>; deleted");
        return Ok(media.delete(key).await?);
    };
    let Some(info) = media.head(key).await? else {
        return Ok(());
    };
    let declared = info.content_type.as_deref().and_then(avatar_type);
    let sniffed = ImageType::sniff(&media.first_bytes(key, 16).await?);
    let valid =
        info.size > 0 && info.size <= MAX_AVATAR_BYTES && declared.is_some() && declared == sniffed;
    if !valid {
        tracing::info!(
            key,
            size = info.size,
            ?declared,
            ?sniffed,
            "avatar rejected and deleted"
        );
        return Ok(media.delete(key).await?);
    }
    let Some(previous) = store.by_id(user_id).await? else {
        return Ok(media.delete(key).await?);
    };
    // Keys end in a ULID, so a late notification for an older upload never wins.
    let newer = previous
        .avatar_key
        .as_deref()
        .is_none_or(|current| file_of(current) < file);
    if !newer {
        if previous.avatar_key.as_deref() != Some(key) {
            media.delete(key).await?;
        }
        return Ok(());
    }
    let mut updated = previous.clone();
    updated.avatar_key = Some(key.to_owned());
    updated.updated_at = shutter_core::now_rfc3339();
    let event = Envelope::new(
        "AvatarChanged",
        user_id,
        Some(user_id),
        &shutter_core::new_id(),
        &ProfileUpdated::from(&updated),
    );
    match store.save(&previous, &updated, &event).await {
        Ok(()) => {}
        // Changed meanwhile: a 409 is retryable here (the message comes back).
        Err(ApiError::Conflict { .. }) => {
            return Err(ApiError::internal(std::io::Error::other(
                "profile changed meanwhile",
            )));
        }
        Err(err) => return Err(err),
    }
    if let Some(old) = previous.avatar_key {
        media.delete(&old).await?;
    }
    tracing::info!(key, user_id, "avatar set");
    Ok(())
}

fn file_of(key: &str) -> &str {
    key.rsplit('/').next().unwrap_or(key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handlers::tests::{MemoryMedia, store_with};
    use base64::Engine;
    use shutter_events::KafkaRecord;

    use shutter_events::MemoryPoisonQueue as MemoryPoison;

    fn kafka(envelopes: &[Option<&Envelope>]) -> KafkaEvent {
        let mut event = KafkaEvent::default();
        for (offset, env) in envelopes.iter().enumerate() {
            let mut r = KafkaRecord::default();
            r.offset = offset as i64;
            r.value = Some(match env {
                Some(env) => base64::engine::general_purpose::STANDARD
                    .encode(serde_json::to_vec(env).unwrap()),
                None => "not base64!".to_owned(),
            });
            event
                .records
                .entry("shutter.identity-0".to_owned())
                .or_default()
                .push(r);
        }
        event
    }

    fn registered(user_id: &str, username: &str) -> Envelope {
        Envelope::new(
            "UserRegistered",
            user_id,
            None,
            "c",
            &serde_json::json!({"user_id": user_id, "username": username}),
        )
    }

    #[tokio::test]
    async fn registration_creates_one_profile_however_often_it_is_delivered() {
        let store = crate::store::memory::MemoryProfilesStore::default();
        let (media, poison) = (MemoryMedia::default(), MemoryPoison::default());
        let id = shutter_core::new_id();
        let env = registered(&id, "alice");
        let batch = kafka(&[Some(&env), Some(&env)]);
        identity_events(&store, &media, &poison, &batch)
            .await
            .unwrap();
        identity_events(&store, &media, &poison, &batch)
            .await
            .unwrap();
        assert_eq!(store.profile_count(), 1);
        assert_eq!(
            store.by_id(&id).await.unwrap().unwrap().username.as_str(),
            "alice"
        );
        assert!(poison.sent.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn poison_records_go_to_the_dlq_and_do_not_block_the_rest() {
        let store = crate::store::memory::MemoryProfilesStore::default();
        let (media, poison) = (MemoryMedia::default(), MemoryPoison::default());
        let bad_payload = Envelope::new(
            "UserRegistered",
            "x",
            None,
            "c",
            &serde_json::json!({"nope": 1}),
        );
        let good = registered(&shutter_core::new_id(), "bob");
        identity_events(
            &store,
            &media,
            &poison,
            &kafka(&[None, Some(&bad_payload), Some(&good)]),
        )
        .await
        .unwrap();
        assert_eq!(
            poison
                .sent
                .lock()
                .unwrap()
                .iter()
                .map(|(p, _)| p.as_str())
                .collect::<Vec<_>>(),
            vec!["shutter.identity-0@0", "shutter.identity-0@1"]
        );
        assert_eq!(store.profile_count(), 1);
    }

    #[tokio::test]
    async fn deletion_erases_the_profile_and_avatars() {
        let (store, alice) = store_with("alice").await;
        let media = MemoryMedia::default();
        media.objects.lock().unwrap().insert(
            format!("avatars/{}/01.png", alice.user_id),
            ("image/png".into(), vec![1]),
        );
        media.objects.lock().unwrap().insert(
            "avatars/someone-else/01.png".into(),
            ("image/png".into(), vec![1]),
        );
        let env = Envelope::new(
            "UserDeleted",
            &alice.user_id,
            None,
            "c",
            &serde_json::json!({"user_id": alice.user_id, "username": "alice"}),
        );
        identity_events(
            &store,
            &media,
            &MemoryPoison::default(),
            &kafka(&[Some(&env)]),
        )
        .await
        .unwrap();
        assert!(store.by_id(&alice.user_id).await.unwrap().is_none());
        assert!(
            store
                .by_username(&Username::try_from("alice".to_owned()).unwrap())
                .await
                .unwrap()
                .is_none()
        );
        assert_eq!(
            media.objects.lock().unwrap().len(),
            1,
            "only the other user's avatar remains"
        );
    }

    fn s3_message(id: &str, key: &str) -> aws_lambda_events::event::sqs::SqsMessage {
        let mut m = aws_lambda_events::event::sqs::SqsMessage::default();
        m.message_id = Some(id.to_owned());
        let mut s3: serde_json::Value = serde_json::from_str(include_str!(
            "../../../events/s3-avatar-object-created.json"
        ))
        .unwrap();
        s3["Records"][0]["s3"]["object"]["key"] = key.into();
        m.body = Some(s3.to_string());
        m
    }

    #[tokio::test]
    async fn real_images_become_avatars_and_fakes_are_deleted() {
        let (store, alice) = store_with("alice").await;
        let media = MemoryMedia::default();
        let good = format!("avatars/{}/01B.png", alice.user_id);
        let fake = format!("avatars/{}/01C.png", alice.user_id);
        media.objects.lock().unwrap().insert(
            good.clone(),
            ("image/png".into(), b"\x89PNG\r\n\x1a\nrest".to_vec()),
        );
        media.objects.lock().unwrap().insert(
            fake.clone(),
            ("image/png".into(), b"just some text".to_vec()),
        );
        let mut event = SqsEvent::default();
        event.records = vec![s3_message("m1", &good), s3_message("m2", &fake)];
        let resp = avatar_uploaded(&store, &media, &event).await;
        assert!(resp.batch_item_failures.is_empty());
        assert_eq!(
            store
                .by_id(&alice.user_id)
                .await
                .unwrap()
                .unwrap()
                .avatar_key
                .as_deref(),
            Some(good.as_str())
        );
        assert!(!media.objects.lock().unwrap().contains_key(&fake));
        assert_eq!(store.events().last().unwrap().event_type, "AvatarChanged");

        // Redelivery changes nothing.
        let before = store.events().len();
        avatar_uploaded(&store, &media, &event).await;
        assert_eq!(store.events().len(), before);
    }

    #[tokio::test]
    async fn the_sample_msk_event_creates_alices_profile() {
        let event: KafkaEvent = serde_json::from_str(include_str!(
            "../../../events/profiles-identity-events.json"
        ))
        .unwrap();
        let store = crate::store::memory::MemoryProfilesStore::default();
        identity_events(
            &store,
            &MemoryMedia::default(),
            &MemoryPoison::default(),
            &event,
        )
        .await
        .unwrap();
        let alice = store
            .by_username(&Username::try_from("alice".to_owned()).unwrap())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(alice.user_id, "01JD00000000000000000USER1");
    }
}
