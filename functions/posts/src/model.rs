//! Posts and their media, the rules for creating them, and how the API shows them.

use serde::{Deserialize, Serialize};
use shutter_core::ApiError;
use shutter_media::MediaType;
use utoipa::ToSchema;

pub const MAX_CAPTION_CHARS: usize = 2_200;
pub const MAX_LOCATION_CHARS: usize = 100;
pub const MAX_MEDIA: usize = 10;
pub const MAX_IMAGE_BYTES: u64 = 10 * 1024 * 1024;
pub const MAX_VIDEO_BYTES: u64 = 100 * 1024 * 1024;

/// The most bytes an upload of `media_type` may have.
pub fn max_bytes(media_type: MediaType) -> u64 {
    if media_type.is_image() {
        MAX_IMAGE_BYTES
    } else {
        MAX_VIDEO_BYTES
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum PostStatus {
    /// Waiting for its media to be uploaded and checked.
    Pending,
    /// Visible to those who may see the author's posts.
    Published,
    /// Every media item was refused: nothing to publish.
    Rejected,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum MediaStatus {
    Pending,
    Ready,
    Rejected,
}

/// A media item as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Media {
    pub id: String,
    pub media_type: MediaType,
    pub declared_size: u64,
    pub status: MediaStatus,
    /// Where the client uploads it (deleted once processed).
    pub upload_key: String,
    #[serde(default)]
    pub display_key: Option<String>,
    #[serde(default)]
    pub thumbnail_key: Option<String>,
    #[serde(default)]
    pub reason: Option<String>,
}

/// A mention that names an existing user; any other `@word` stays plain text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Mention {
    pub user_id: String,
    pub username: String,
}

/// A post as stored (`pk = POST#<id>`, `sk = POST`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Post {
    pub id: String,
    pub author_id: String,
    pub caption: String,
    #[serde(default)]
    pub location: Option<String>,
    pub hashtags: Vec<String>,
    pub mentions: Vec<Mention>,
    pub status: PostStatus,
    pub media: Vec<Media>,
    #[serde(default)]
    pub like_count: i64,
    #[serde(default)]
    pub comment_count: i64,
    /// Bumped by every change: edits send the version they read (409 when stale).
    pub version: u64,
    pub created_at: String,
    #[serde(default)]
    pub published_at: Option<String>,
}

impl Post {
    /// Every media item is settled (ready or rejected).
    pub fn media_settled(&self) -> bool {
        self.media.iter().all(|m| m.status != MediaStatus::Pending)
    }

    /// The status a pending post moves to once all its media are settled.
    pub fn settled_status(&self) -> PostStatus {
        if self.media.iter().any(|m| m.status == MediaStatus::Ready) {
            PostStatus::Published
        } else {
            PostStatus::Rejected
        }
    }
}

/// One media item to upload, as the client declares it.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MediaRequest {
    /// image/jpeg, image/png, image/webp (at most 10 MB) or video/mp4 (at most 100 MB)
    #[schema(pattern = "^(image/(jpeg|png|webp)|video/mp4)$")]
    pub content_type: String,
    /// The file's size in bytes
    #[schema(minimum = 1, maximum = 104857600)]
    #[serde(deserialize_with = "shutter_core::validate::whole_number")]
    pub size: u64,
}

/// `POST /v1/posts` body.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreatePost {
    /// At most 2,200 characters; `#hashtags` and `@mentions` are picked out of it
    #[serde(default)]
    #[schema(max_length = 2200)]
    pub caption: String,
    #[serde(default)]
    #[schema(max_length = 100)]
    pub location: Option<String>,
    /// 1 to 10 items
    #[schema(min_items = 1, max_items = 10)]
    pub media: Vec<MediaRequest>,
}

fn check_text(field: &str, text: &str, max: usize) -> Result<(), ApiError> {
    if text.chars().count() > max {
        return Err(ApiError::invalid(
            field,
            format!("must be at most {max} characters"),
        ));
    }
    if text.chars().any(|c| c.is_control() && c != '\n') {
        return Err(ApiError::invalid(
            field,
            "must not contain control characters",
        ));
    }
    Ok(())
}

pub fn check_caption(caption: &str) -> Result<(), ApiError> {
    check_text("caption", caption, MAX_CAPTION_CHARS)
}

pub fn check_location(location: Option<&str>) -> Result<(), ApiError> {
    match location {
        Some(l) if l.trim().is_empty() => Err(ApiError::invalid("location", "must not be blank")),
        Some(l) => check_text("location", l, MAX_LOCATION_CHARS),
        None => Ok(()),
    }
}

impl CreatePost {
    /// The declared media, validated: 1–10 items of accepted types within their limits.
    pub fn validate(&self) -> Result<Vec<(MediaType, u64)>, ApiError> {
        check_caption(&self.caption)?;
        check_location(self.location.as_deref())?;
        if self.media.is_empty() || self.media.len() > MAX_MEDIA {
            return Err(ApiError::invalid("media", "must have 1 to 10 items"));
        }
        self.media
            .iter()
            .enumerate()
            .map(|(i, m)| {
                let t = MediaType::from_mime(&m.content_type).ok_or_else(|| {
                    ApiError::invalid(
                        &format!("media[{i}].content_type"),
                        "must be image/jpeg, image/png, image/webp or video/mp4",
                    )
                })?;
                if m.size == 0 || m.size > max_bytes(t) {
                    return Err(ApiError::invalid(
                        &format!("media[{i}].size"),
                        format!("must be from 1 to {} bytes for {}", max_bytes(t), t.mime()),
                    ));
                }
                Ok((t, m.size))
            })
            .collect()
    }
}

/// `PATCH /v1/posts/{id}` body: absent fields stay; `version` is the one you read.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdatePost {
    #[schema(max_length = 2200)]
    pub caption: Option<String>,
    /// A string sets it; null clears it
    #[serde(default, deserialize_with = "double_option")]
    #[schema(max_length = 100, value_type = Option<String>)]
    pub location: Option<Option<String>>,
    /// The post's `version` as you read it: 409 if it changed since
    #[serde(deserialize_with = "shutter_core::validate::whole_number")]
    pub version: u64,
}

fn double_option<'de, D: serde::Deserializer<'de>>(
    de: D,
) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(de).map(Some)
}

/// The author as a post shows them.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AuthorView {
    pub id: String,
    pub username: String,
    pub display_name: String,
    pub avatar_url: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MediaView {
    pub id: String,
    #[schema(value_type = String, example = "image/jpeg")]
    pub content_type: MediaType,
    pub status: MediaStatus,
    /// The display size (images at most 1080 px wide), once ready
    pub url: Option<String>,
    /// A 320 px thumbnail, once ready (images only)
    pub thumbnail_url: Option<String>,
}

/// A post as the API returns it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PostView {
    pub id: String,
    pub author: AuthorView,
    pub caption: String,
    pub location: Option<String>,
    pub hashtags: Vec<String>,
    pub mentions: Vec<Mention>,
    pub status: PostStatus,
    pub media: Vec<MediaView>,
    pub like_count: i64,
    pub comment_count: i64,
    pub liked_by_me: bool,
    pub version: u64,
    pub created_at: String,
    pub published_at: Option<String>,
}

/// `PostPublished` / `PostUpdated` payload.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PostFacts {
    pub post_id: String,
    pub author_id: String,
    pub caption: String,
    pub location: Option<String>,
    pub hashtags: Vec<String>,
    pub mentions: Vec<String>,
    pub created_at: String,
    pub version: u64,
    /// The ready media's stored objects, in order (others are left out).
    #[serde(default)]
    pub media: Vec<MediaFacts>,
}

/// A ready media item as events carry it: its type and stored objects.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MediaFacts {
    pub id: String,
    pub content_type: String,
    pub display_key: String,
    #[serde(default)]
    pub thumbnail_key: Option<String>,
}

impl From<&Post> for PostFacts {
    fn from(p: &Post) -> Self {
        Self {
            post_id: p.id.clone(),
            author_id: p.author_id.clone(),
            caption: p.caption.clone(),
            location: p.location.clone(),
            hashtags: p.hashtags.clone(),
            mentions: p.mentions.iter().map(|m| m.user_id.clone()).collect(),
            created_at: p.created_at.clone(),
            version: p.version,
            media: p
                .media
                .iter()
                .filter(|m| m.status == MediaStatus::Ready)
                .filter_map(|m| {
                    Some(MediaFacts {
                        id: m.id.clone(),
                        content_type: m.media_type.mime().to_owned(),
                        display_key: m.display_key.clone()?,
                        thumbnail_key: m.thumbnail_key.clone(),
                    })
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn create(media: serde_json::Value) -> Result<Vec<(MediaType, u64)>, ApiError> {
        let body: CreatePost =
            serde_json::from_value(serde_json::json!({"caption": "hi", "media": media})).unwrap();
        body.validate()
    }

    #[test]
    fn media_declarations_are_checked_per_type() {
        assert!(
            create(serde_json::json!([{"content_type": "image/jpeg", "size": 10485760}])).is_ok()
        );
        assert!(
            create(serde_json::json!([{"content_type": "video/mp4", "size": 104857600}])).is_ok()
        );
        let err = create(serde_json::json!([{"content_type": "image/png", "size": 10485761}]))
            .unwrap_err();
        assert_eq!(err.problem().field.as_deref(), Some("media[0].size"));
        let err = create(serde_json::json!([{"content_type": "image/png", "size": 1}, {"content_type": "text/plain", "size": 1}])).unwrap_err();
        assert_eq!(
            err.problem().field.as_deref(),
            Some("media[1].content_type")
        );
        assert!(create(serde_json::json!([])).is_err());
        let eleven: Vec<_> = (0..11)
            .map(|_| serde_json::json!({"content_type": "image/png", "size": 1}))
            .collect();
        assert_eq!(
            create(serde_json::json!(eleven))
                .unwrap_err()
                .problem()
                .field
                .as_deref(),
            Some("media")
        );
    }

    #[test]
    fn captions_are_bounded_and_plain() {
        assert!(check_caption(&"a".repeat(2200)).is_ok());
        assert!(check_caption(&"a".repeat(2201)).is_err());
        assert!(check_caption("line\nbreak").is_ok());
        assert!(check_caption("bell\u{7}").is_err());
        assert!(check_location(Some("  ")).is_err());
    }

    #[test]
    fn a_post_publishes_when_its_media_are_settled_and_one_is_ready() {
        let media = |status| Media {
            id: "m".into(),
            media_type: MediaType::Png,
            declared_size: 1,
            status,
            upload_key: "k".into(),
            display_key: None,
            thumbnail_key: None,
            reason: None,
        };
        let mut post = Post {
            id: "p".into(),
            author_id: "a".into(),
            caption: String::new(),
            location: None,
            hashtags: vec![],
            mentions: vec![],
            status: PostStatus::Pending,
            media: vec![media(MediaStatus::Ready), media(MediaStatus::Pending)],
            like_count: 0,
            comment_count: 0,
            version: 1,
            created_at: String::new(),
            published_at: None,
        };
        assert!(!post.media_settled());
        post.media[1].status = MediaStatus::Rejected;
        assert!(post.media_settled());
        assert_eq!(post.settled_status(), PostStatus::Published);
        post.media[0].status = MediaStatus::Rejected;
        assert_eq!(post.settled_status(), PostStatus::Rejected);
    }
}
