//! `posts-media-uploaded`: S3 tells an SQS queue of each upload; this checks that the
//! object is what was declared (real type by magic bytes, size), re-encodes images so no
//! metadata survives (EXIF, GPS, XMP: only pixels are kept, turned upright first), writes
//! a display size and a thumbnail, and settles the media item. When every item of a post
//! is settled the post is published (or rejected when none is usable), with its event.

use std::io::Cursor;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader};
use shutter_core::{MediaId, PostId};
use shutter_events::{Envelope, Event};
use shutter_media::{MediaStore, MediaType};
use shutter_store::{StoreError, StoreResult};

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

/// Why an upload was refused.
#[derive(Debug, PartialEq, Eq)]
pub struct Refusal(pub String);

/// Checks `bytes` against what was declared and makes its renditions.
pub fn process(bytes: &[u8], declared: MediaType) -> Result<Renditions, Refusal> {
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
        // Videos are stored as uploaded; transcoding and poster frames need a media
        // service (e.g. MediaConvert), not a Lambda.
        return Ok(Renditions {
            media_type: declared,
            display: bytes.to_vec(),
            thumbnail: None,
        });
    }
    let image = upright_pixels(bytes, declared)
        .map_err(|e| Refusal(format!("not a readable image: {e}")))?;
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
        display: encode(&display, out_type).map_err(|e| Refusal(e.to_string()))?,
        thumbnail: Some(encode(&thumbnail, out_type).map_err(|e| Refusal(e.to_string()))?),
    })
}

/// Decodes to pixels, applying the EXIF orientation (the only metadata worth keeping,
/// and it is kept by rotating the pixels rather than as a tag).
fn upright_pixels(bytes: &[u8], media_type: MediaType) -> Result<DynamicImage, image::ImageError> {
    let format = match media_type {
        MediaType::Jpeg => ImageFormat::Jpeg,
        MediaType::Png => ImageFormat::Png,
        _ => ImageFormat::WebP,
    };
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    // Bounds decoding: a small file must not claim a gigapixel canvas.
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(12_000);
    limits.max_image_height = Some(12_000);
    limits.max_alloc = Some(512 * 1024 * 1024);
    reader.limits(limits);
    let mut decoder = reader.into_decoder()?;
    let orientation = decoder.orientation()?;
    let mut image = DynamicImage::from_decoder(decoder)?;
    image.apply_orientation(orientation);
    Ok(image)
}

fn encode(image: &DynamicImage, media_type: MediaType) -> Result<Vec<u8>, image::ImageError> {
    let mut out = Cursor::new(Vec::new());
    if media_type == MediaType::Jpeg {
        let encoder = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 85);
        image.to_rgb8().write_with_encoder(encoder)?;
    } else {
        image.write_to(&mut out, ImageFormat::Png)?;
    }
    Ok(out.into_inner())
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
    let outcome = tokio::task::block_in_place(|| process(&bytes, item.media_type));
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
            other => return other,
        }
    }
    // It kept changing: the message is retried later.
    Err(StoreError::Conflict(store::STALE))
}

/// Test material for this crate's and the end-to-end tests.
#[cfg(any(test, feature = "test-support"))]
pub mod fixtures {
    use super::*;

    /// A JPEG with an EXIF block carrying GPS coordinates and orientation 6 (rotate 90°).
    #[allow(clippy::unwrap_used)]
    pub fn jpeg_with_gps(width: u32, height: u32) -> Vec<u8> {
        let image = DynamicImage::ImageRgb8(image::RgbImage::from_fn(width, height, |x, _| {
            image::Rgb([(x % 255) as u8, 100, 150])
        }));
        let plain = encode(&image, MediaType::Jpeg).unwrap();
        // TIFF header (little endian), IFD0 with Orientation=6 and a GPS IFD pointer,
        // then a GPS IFD with GPSLatitudeRef = 'N'.
        let mut tiff: Vec<u8> = b"II*\0\x08\0\0\0".to_vec();
        tiff.extend_from_slice(&2u16.to_le_bytes());
        tiff.extend_from_slice(&[0x12, 0x01, 3, 0, 1, 0, 0, 0, 6, 0, 0, 0]);
        tiff.extend_from_slice(&[0x25, 0x88, 4, 0, 1, 0, 0, 0, 38, 0, 0, 0]);
        tiff.extend_from_slice(&0u32.to_le_bytes());
        tiff.extend_from_slice(&1u16.to_le_bytes());
        tiff.extend_from_slice(&[0x01, 0x00, 2, 0, 2, 0, 0, 0, b'N', 0, 0, 0]);
        tiff.extend_from_slice(&0u32.to_le_bytes());
        let mut app1 = b"Exif\0\0".to_vec();
        app1.extend_from_slice(&tiff);
        let mut out = plain[..2].to_vec();
        out.extend_from_slice(&[0xFF, 0xE1]);
        out.extend_from_slice(&((app1.len() + 2) as u16).to_be_bytes());
        out.extend_from_slice(&app1);
        out.extend_from_slice(&plain[2..]);
        out
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::fixtures::jpeg_with_gps;
    use super::*;

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
        let r = process(&upload, MediaType::Jpeg).unwrap();
        assert!(!has_exif(&r.display) && !has_exif(r.thumbnail.as_ref().unwrap()));
        let display = image::load_from_memory(&r.display).unwrap();
        // Orientation 6 turned the 1600×1200 landscape upright (1200×1600), then 1080 wide.
        assert_eq!((display.width(), display.height()), (1080, 1440));
        let thumb = image::load_from_memory(r.thumbnail.as_ref().unwrap()).unwrap();
        assert!(thumb.width() <= THUMBNAIL_SIZE && thumb.height() <= THUMBNAIL_SIZE);
    }

    #[test]
    fn a_file_that_is_not_what_it_claims_is_refused() {
        let err = process(b"just some text, not a png at all", MediaType::Png).unwrap_err();
        assert!(err.0.contains("declared image/png"), "{err:?}");
        let jpeg = jpeg_with_gps(10, 10);
        assert!(process(&jpeg, MediaType::Png).is_err());
        // Right magic bytes, broken body.
        let mut broken = b"\x89PNG\r\n\x1a\n".to_vec();
        broken.extend_from_slice(&[0; 64]);
        assert!(
            process(&broken, MediaType::Png)
                .unwrap_err()
                .0
                .contains("not a readable image")
        );
        assert!(process(&[], MediaType::Png).is_err());
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
