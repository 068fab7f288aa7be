//! `posts-media-uploaded`: S3 tells an SQS queue of each upload; this checks that the
//! object is what was declared (real type by magic bytes, size), sends images through the
//! shared pipeline ([`shutter_media::images`]: refused above `MaxImagePixels` from the
//! header alone, decoded, turned upright, re-encoded, so no metadata survives: EXIF, GPS,
//! XMP) and writes a display size and a thumbnail, blanks the location and other metadata
//! of videos ([`shutter_media::mp4`]), and settles the media item. When every item of a
//! post is settled the post is published (or rejected when none is usable), with its event.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use shutter_core::{MediaId, PostId};
use shutter_events::{Envelope, Event};
use shutter_media::{MediaStore, MediaType, images};
use shutter_store::{StoreError, StoreResult};

pub use shutter_media::Refusal;

use crate::App;
use crate::model::{MediaStatus, PostStatus, max_bytes, parse_upload_key, rendition_key};
use crate::store::{self, PostsStore};

pub const DISPLAY_WIDTH: u32 = 1080;
pub const THUMBNAIL_SIZE: u32 = 320;

/// The renditions of an accepted upload.
#[derive(Debug)]
pub struct Renditions {
    pub media_type: MediaType,
    pub display: Vec<u8>,
    pub thumbnail: Option<Vec<u8>>,
}

/// Checks `bytes` against what was declared and makes its renditions; images of more
/// than `max_pixels` are refused before they are decoded.
pub fn process(bytes: &[u8], declared: MediaType, max_pixels: u64) -> Result<Renditions, Refusal> {
    if bytes.is_empty() || bytes.len() as u64 > max_bytes(declared) {
        return Err(Refusal(format!(
            "size {} is not within 1..={} bytes",
            bytes.len(),
            max_bytes(declared)
        )));
    }
    let real = MediaType::sniff(&bytes[..bytes.len().min(16)]);
    if real != Some(declared) {
        return Err(Refusal(format!(
            "declared {} but the file is {}",
            declared.mime(),
            real.map_or("of an unknown type", MediaType::mime)
        )));
    }
    if !declared.is_image() {
        // Videos are stored as uploaded but for their metadata (blanked in place);
        // transcoding and poster frames need a media service (e.g. MediaConvert), not a
        // Lambda.
        return Ok(Renditions {
            media_type: declared,
            display: shutter_media::mp4::strip_metadata(bytes)?,
            thumbnail: None,
        });
    }
    let image = images::decode_upright(bytes, declared, max_pixels)?;
    // WebP is re-encoded as PNG: the image crate writes lossless WebP only.
    let out_type = if declared == MediaType::Jpeg {
        MediaType::Jpeg
    } else {
        MediaType::Png
    };
    let display = if image.width() > DISPLAY_WIDTH {
        image.resize(
            DISPLAY_WIDTH,
            u32::MAX,
            image::imageops::FilterType::Triangle,
        )
    } else {
        image.clone()
    };
    let thumbnail = image.thumbnail(THUMBNAIL_SIZE, THUMBNAIL_SIZE);
    Ok(Renditions {
        media_type: out_type,
        display: images::encode(&display, out_type)?,
        thumbnail: Some(images::encode(&thumbnail, out_type)?),
    })
}

/// The SQS consumer: only messages that failed for a retryable reason are reported, so
/// the rest of the batch is not processed again; after three failures a message goes to
/// the queue's DLQ.
pub async fn media_uploaded<S: PostsStore, M: MediaStore, D>(
    app: &App<S, M, D>,
    event: &SqsEvent,
) -> SqsBatchResponse {
    shutter_media::for_each_upload(event, |key| async move { settle_upload(app, &key).await }).await
}

/// [`media_uploaded`] as a Lambda handler: it never fails as a whole (failures are the
/// batch's item failures).
pub async fn on_uploads<S: PostsStore, M: MediaStore, D>(
    app: &App<S, M, D>,
    event: SqsEvent,
) -> Result<SqsBatchResponse, std::convert::Infallible> {
    Ok(media_uploaded(app, &event).await)
}

/// Checks and processes one upload, and settles its media item. An object that belongs
/// to no pending item (unknown, or redelivered after it was settled) is deleted.
pub(crate) async fn settle_upload<S: PostsStore, M: MediaStore, D>(
    app: &App<S, M, D>,
    key: &str,
) -> StoreResult<()> {
    let (store, media) = (&app.store, &app.media);
    let named = parse_upload_key(key).and_then(|(author, post, media)| {
        let post = PostId::parse("post", post).ok()?;
        Some((author, post, MediaId::parse("media", media).ok()?))
    });
    let Some((author, post_id, media_id)) = named else {
        tracing::warn!(
            key,
            "object outside post-uploads/<author>/<post>/<media>; deleted"
        );
        return media.delete(key).await;
    };
    let Some(post) = store.post(&post_id).await? else {
        return media.delete(key).await;
    };
    let Some(item) = post
        .media
        .iter()
        .find(|m| m.id == media_id && post.author_id == author && m.upload_key == key)
    else {
        return media.delete(key).await;
    };
    if item.status != MediaStatus::Pending {
        // Redelivered after it was settled.
        return media.delete(key).await;
    }
    let Some(bytes) = media.get(key).await? else {
        return Ok(());
    };
    let max_pixels = images::max_pixels();
    let outcome = tokio::task::block_in_place(|| process(&bytes, item.media_type, max_pixels));
    let mut keys = (None, None);
    if let Ok(r) = &outcome {
        let display_key = rendition_key(&post_id, &media_id, "display", r.media_type);
        media
            .put(&display_key, r.media_type, r.display.clone())
            .await?;
        if let Some(thumb) = &r.thumbnail {
            let thumb_key = rendition_key(&post_id, &media_id, "thumbnail", r.media_type);
            media.put(&thumb_key, r.media_type, thumb.clone()).await?;
            keys.1 = Some(thumb_key);
        }
        keys.0 = Some(display_key);
    }
    settle(store, &post_id, &media_id, &outcome, keys).await?;
    // The upload itself (with its metadata) is never served.
    media.delete(key).await?;
    match outcome {
        Ok(_) => tracing::info!(key, "media ready"),
        Err(Refusal(why)) => tracing::info!(key, why, "media rejected"),
    }
    Ok(())
}

/// How often a post is read and written again when another item of it settled
/// meanwhile.
const SETTLE_ATTEMPTS: usize = 8;

/// Records the media item's outcome and, once all are settled, publishes the post; a
/// concurrent change (another item of the same post) is met by reading again.
async fn settle<S: PostsStore>(
    store: &S,
    post_id: &PostId,
    media_id: &MediaId,
    outcome: &Result<Renditions, Refusal>,
    (display_key, thumbnail_key): (Option<String>, Option<String>),
) -> StoreResult<()> {
    for _ in 0..SETTLE_ATTEMPTS {
        let Some(before) = store.post(post_id).await? else {
            return Ok(());
        };
        let mut post = before.clone();
        let Some(item) = post.media.iter_mut().find(|m| m.id == *media_id) else {
            return Ok(());
        };
        if item.status != MediaStatus::Pending {
            return Ok(());
        }
        match outcome {
            Ok(r) => {
                item.status = MediaStatus::Ready;
                item.media_type = r.media_type;
                item.display_key = display_key.clone();
                item.thumbnail_key = thumbnail_key.clone();
            }
            Err(Refusal(why)) => {
                item.status = MediaStatus::Rejected;
                item.reason = Some(why.clone());
            }
        }
        post.version += 1;
        let mut events = Vec::new();
        if post.status == PostStatus::Pending && post.media_settled() {
            post.status = post.settled_status();
            if post.status == PostStatus::Published {
                post.published_at = Some(shutter_core::now_rfc3339());
                events.push(Envelope::new(
                    Event::PostPublished(post.facts()),
                    Some(&post.author_id),
                    &shutter_core::new_id(),
                ));
            }
        }
        match store.save(&before, &post, &events).await {
            Err(StoreError::Conflict(store::STALE)) => continue,
            // The author's account is deleted: its cascade deletes the post and its media.
            Err(StoreError::Conflict(store::ACCOUNT_DELETED)) => return Ok(()),
            other => return other,
        }
    }
    // It kept changing: the message is retried later.
    Err(StoreError::Conflict(store::STALE))
}

/// Test material for this crate's and the end-to-end tests.
#[cfg(any(test, feature = "test-support"))]
pub mod fixtures {
    pub use shutter_media::images::fixtures::{black_png, jpeg_with_gps};
    pub use shutter_media::mp4::fixtures::{LOCATION, mp4_with_location};
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::io::Cursor;

    use super::fixtures::{LOCATION, black_png, jpeg_with_gps, mp4_with_location};
    use super::*;
    use shutter_media::images::DEFAULT_MAX_PIXELS as MAX;

    fn has_exif(bytes: &[u8]) -> bool {
        exif::Reader::new()
            .read_from_container(&mut Cursor::new(bytes))
            .is_ok()
    }

    #[test]
    fn images_lose_their_metadata_and_get_a_display_size_and_a_thumbnail() {
        let upload = jpeg_with_gps(1600, 1200);
        let exif = exif::Reader::new()
            .read_from_container(&mut Cursor::new(&upload))
            .unwrap();
        assert!(
            exif.get_field(exif::Tag::GPSLatitudeRef, exif::In::PRIMARY)
                .is_some(),
            "the fixture has GPS data"
        );
        let r = process(&upload, MediaType::Jpeg, MAX).unwrap();
        assert!(!has_exif(&r.display) && !has_exif(r.thumbnail.as_ref().unwrap()));
        let display = image::load_from_memory(&r.display).unwrap();
        // Orientation 6 turned the 1600×1200 landscape upright (1200×1600), then 1080 wide.
        assert_eq!((display.width(), display.height()), (1080, 1440));
        let thumb = image::load_from_memory(r.thumbnail.as_ref().unwrap()).unwrap();
        assert!(thumb.width() <= THUMBNAIL_SIZE && thumb.height() <= THUMBNAIL_SIZE);
    }

    #[test]
    fn a_file_that_is_not_what_it_claims_is_refused() {
        let err = process(b"just some text, not a png at all", MediaType::Png, MAX).unwrap_err();
        assert!(err.0.contains("declared image/png"), "{err:?}");
        let jpeg = jpeg_with_gps(10, 10);
        assert!(process(&jpeg, MediaType::Png, MAX).is_err());
        // Right magic bytes, broken body.
        let mut broken = b"\x89PNG\r\n\x1a\n".to_vec();
        broken.extend_from_slice(&[0; 64]);
        assert!(
            process(&broken, MediaType::Png, MAX)
                .unwrap_err()
                .0
                .contains("not a readable image")
        );
        assert!(process(&[], MediaType::Png, MAX).is_err());
    }

    #[test]
    fn a_huge_canvas_is_refused_before_it_is_decoded() {
        let bomb = black_png(20_000, 20_000);
        let err = process(&bomb, MediaType::Png, MAX).unwrap_err();
        assert!(err.0.contains("more than the 50000000 accepted"), "{err:?}");
        // The cap is the deployment's.
        let small = black_png(100, 100);
        assert!(process(&small, MediaType::Png, 10_000).is_ok());
        assert!(process(&small, MediaType::Png, 9_999).is_err());
    }

    #[test]
    fn videos_lose_their_location_and_keep_their_frames() {
        let upload = mp4_with_location();
        let r = process(&upload, MediaType::Mp4, MAX).unwrap();
        let has = |bytes: &[u8], needle: &[u8]| bytes.windows(needle.len()).any(|w| w == needle);
        assert!(has(&upload, LOCATION.as_bytes()));
        assert!(!has(&r.display, LOCATION.as_bytes()) && !has(&r.display, b"\xA9xyz"));
        assert_eq!(r.display.len(), upload.len());
        assert!(has(&r.display, b"frame-data-frame-data-"));
        assert_eq!((r.media_type, r.thumbnail), (MediaType::Mp4, None));
        // A file that only starts like an MP4 is refused.
        let mut polyglot = upload;
        polyglot.extend_from_slice(b"<html><script>alert(1)</script>");
        assert!(process(&polyglot, MediaType::Mp4, MAX).is_err());
    }

    /// GIVEN a pending post of ann's with one JPEG declared.
    fn pending() -> (crate::testing::TestApp, crate::model::Post) {
        let app = crate::testing::app();
        let ann = crate::testing::user(&app, "ann", false);
        let post = crate::testing::post(&app, &ann, PostStatus::Pending);
        (app, post)
    }

    fn keys(app: &crate::testing::TestApp) -> Vec<String> {
        let mut keys: Vec<String> = app.media.objects.lock().unwrap().keys().cloned().collect();
        keys.sort();
        keys
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_checked_upload_publishes_its_post_once() {
        let (app, post) = pending();
        let upload = post.media[0].upload_key.clone();
        app.media
            .upload(&upload, "image/jpeg", jpeg_with_gps(64, 48));
        // WHEN the upload is announced (and announced again)
        settle_upload(&app, &upload).await.unwrap();
        app.media
            .upload(&upload, "image/jpeg", jpeg_with_gps(64, 48));
        settle_upload(&app, &upload).await.unwrap();
        // THEN the post is published once, with its renditions, and the upload is gone
        let stored = app.store.stored(&post.id).unwrap();
        assert_eq!((stored.status, stored.version), (PostStatus::Published, 3));
        let item = &stored.media[0];
        assert_eq!(item.status, MediaStatus::Ready);
        let display = item.display_key.clone().unwrap();
        let thumbnail = item.thumbnail_key.clone().unwrap();
        assert_eq!(keys(&app), vec![display.clone(), thumbnail]);
        assert!(!has_exif(&app.media.get(&display).await.unwrap().unwrap()));
        let events = app.store.events();
        let [published] = events.as_slice() else {
            panic!("one event: {events:?}")
        };
        let Event::PostPublished(facts) = &published.event else {
            panic!("PostPublished: {published:?}")
        };
        assert_eq!(facts.media[0].display_key, display);
        assert_eq!(published.actor.as_ref(), Some(&post.author_id));
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_refused_upload_rejects_a_post_with_nothing_usable() {
        let (app, post) = pending();
        let upload = post.media[0].upload_key.clone();
        app.media
            .upload(&upload, "image/jpeg", b"not a jpeg at all".to_vec());
        settle_upload(&app, &upload).await.unwrap();
        let stored = app.store.stored(&post.id).unwrap();
        assert_eq!(stored.status, PostStatus::Rejected);
        assert_eq!(stored.media[0].status, MediaStatus::Rejected);
        assert!(
            stored.media[0]
                .reason
                .as_deref()
                .unwrap()
                .contains("declared image/jpeg")
        );
        assert!(
            keys(&app).is_empty(),
            "the upload is deleted, nothing is made of it"
        );
        assert!(app.store.events().is_empty());
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn objects_of_no_pending_item_are_deleted_and_change_nothing() {
        let (app, post) = pending();
        let strangers = [
            "avatars/u/m.jpg".to_owned(),
            format!(
                "post-uploads/{}/{}/m.jpg",
                post.author_id,
                shutter_core::PostId::generate()
            ),
            // Someone else's upload under ann's post.
            post.media[0]
                .upload_key
                .replace(post.author_id.as_str(), "someone"),
        ];
        for key in &strangers {
            app.media.upload(key, "image/jpeg", jpeg_with_gps(8, 8));
            settle_upload(&app, key).await.unwrap();
        }
        assert!(keys(&app).is_empty());
        assert_eq!(app.store.stored(&post.id), Some(post));
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn unavailable_storage_leaves_the_upload_for_a_retry() {
        let (app, post) = pending();
        let upload = post.media[0].upload_key.clone();
        app.media.upload(&upload, "image/jpeg", jpeg_with_gps(8, 8));
        app.store.set_unavailable(true);
        assert!(
            settle_upload(&app, &upload)
                .await
                .unwrap_err()
                .is_retryable()
        );
        assert_eq!(keys(&app), vec![upload]);
    }
}
