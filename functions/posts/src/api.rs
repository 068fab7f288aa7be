//! What clients send and get back: the request bodies (read into checked commands) and
//! the views of posts, with their OpenAPI schemas.

use serde::{Deserialize, Serialize};
use shutter_core::{MediaId, PostId, UserId};
use shutter_media::{MediaType, UploadForm};
use utoipa::ToSchema;

use crate::model::{
    Invalid, MediaStatus, Mention, NewPost, PostStatus, Removal, check_caption, check_location,
    check_media,
};

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
    /// At most 2,200 characters, 30 distinct `#hashtags` and 20 distinct `@mentions`.
    /// No control characters but newline, and no invisible formatting characters (Unicode
    /// category Cf: bidirectional overrides, embeddings, isolates and marks, zero-width
    /// spaces, word joiners, the byte-order mark; a zero-width joiner or non-joiner only
    /// between two visible characters, tag characters only in an emoji flag): 400
    /// `invalid_input` naming the field.
    #[serde(default)]
    #[schema(
        max_length = 2200,
        pattern = r"^[^\x00-\x09\x0b-\x1f\x7f-\x9f\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e\u200b\u200e\u200f\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb]*$"
    )]
    pub caption: String,
    /// At most 100 characters, not only blanks; as the caption, no control or invisible
    /// formatting characters
    #[serde(default)]
    #[schema(
        max_length = 100,
        pattern = r"^[^\x00-\x09\x0b-\x1f\x7f-\x9f\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e\u200b\u200e\u200f\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb]*[^\s\x00-\x1f\x7f-\x9f\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e\u200b\u200e\u200f\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb][^\x00-\x09\x0b-\x1f\x7f-\x9f\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e\u200b\u200e\u200f\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb]*$"
    )]
    pub location: Option<String>,
    /// 1 to 10 items
    #[schema(min_items = 1, max_items = 10)]
    pub media: Vec<MediaRequest>,
}

impl CreatePost {
    /// The post asked for, checked: caption, location, then 1–10 media items of accepted
    /// types within their limits.
    pub fn validate(self) -> Result<NewPost, Invalid> {
        check_caption(&self.caption)?;
        check_location(self.location.as_deref())?;
        let media = check_media(self.media.iter().map(|m| (m.content_type.as_str(), m.size)))?;
        Ok(NewPost {
            caption: self.caption,
            location: self.location,
            media,
        })
    }
}

/// `PATCH /v1/posts/{id}` body: absent fields stay; `version` is the one you read.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdatePost {
    /// As on create: at most 2,200 characters, 30 hashtags and 20 mentions; no control
    /// characters but newline, and no invisible formatting characters (bidirectional
    /// overrides, isolates and marks, zero-width spaces and other Unicode format
    /// characters): 400 `invalid_input` naming the field.
    #[schema(
        max_length = 2200,
        pattern = r"^[^\x00-\x09\x0b-\x1f\x7f-\x9f\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e\u200b\u200e\u200f\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb]*$"
    )]
    pub caption: Option<String>,
    /// A string sets it; null clears it. As on create: not only blanks, no control or
    /// invisible formatting characters
    #[serde(default, deserialize_with = "double_option")]
    #[schema(max_length = 100, value_type = Option<String>, pattern = r"^[^\x00-\x09\x0b-\x1f\x7f-\x9f\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e\u200b\u200e\u200f\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb]*[^\s\x00-\x1f\x7f-\x9f\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e\u200b\u200e\u200f\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb][^\x00-\x09\x0b-\x1f\x7f-\x9f\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e\u200b\u200e\u200f\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb]*$")]
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
    pub id: UserId,
    pub username: String,
    pub display_name: String,
    pub avatar_url: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MediaView {
    pub id: MediaId,
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
    pub id: PostId,
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
    /// Present when staff removed the post (only its author and staff still see it):
    /// the moderator's note and when. Absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub removed: Option<Removal>,
}

/// Where and how to upload one media item.
#[derive(Debug, Serialize, ToSchema)]
pub struct MediaUpload {
    pub media_id: MediaId,
    pub upload: UploadForm,
}

/// A new post and its upload forms.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedPost {
    pub post: PostView,
    /// One per pending media item: send `upload.fields` plus a `file` part as
    /// multipart/form-data to `upload.url`
    pub uploads: Vec<MediaUpload>,
}

/// A page of posts.
#[derive(Debug, Serialize, ToSchema)]
pub struct PostPage {
    pub items: Vec<PostView>,
    pub next_cursor: Option<String>,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn create(body: serde_json::Value) -> Result<NewPost, Invalid> {
        serde_json::from_value::<CreatePost>(body)
            .unwrap()
            .validate()
    }

    #[test]
    fn a_create_body_becomes_a_checked_new_post() {
        let new = create(serde_json::json!({"caption": "hi", "location": "Lisbon", "media": [{"content_type": "image/jpeg", "size": 10485760}]})).unwrap();
        assert_eq!(new.media, vec![(MediaType::Jpeg, 10_485_760)]);
        assert_eq!(new.location.as_deref(), Some("Lisbon"));
        let err = create(serde_json::json!({"caption": "bell\u{7}", "media": []})).unwrap_err();
        assert_eq!(err.field, "caption", "the caption is checked first");
        let err =
            create(serde_json::json!({"media": [{"content_type": "image/png", "size": 10485761}]}))
                .unwrap_err();
        assert_eq!(err.field, "media[0].size");
    }

    #[test]
    fn a_patch_tells_a_cleared_location_from_an_absent_one() {
        let p: UpdatePost = serde_json::from_str(r#"{"location": null, "version": 2}"#).unwrap();
        assert_eq!(p.location, Some(None));
        let p: UpdatePost = serde_json::from_str(r#"{"version": 2}"#).unwrap();
        assert_eq!(p.location, None);
        assert!(serde_json::from_str::<UpdatePost>(r#"{"version": 2, "extra": 1}"#).is_err());
    }

    #[test]
    fn the_schemas_refuse_what_the_checks_refuse() {
        // The attributes need literals: they must be the shared patterns, word for word.
        use shutter_core::validate::{MULTILINE_TEXT_PATTERN, NON_BLANK_MULTILINE_TEXT_PATTERN};
        for schema in [
            <CreatePost as utoipa::PartialSchema>::schema(),
            <UpdatePost as utoipa::PartialSchema>::schema(),
        ] {
            let schema = serde_json::to_value(schema).unwrap();
            let field = |name: &str| schema["properties"][name].clone();
            assert_eq!(field("caption")["pattern"], MULTILINE_TEXT_PATTERN);
            assert_eq!(
                field("location")["pattern"],
                NON_BLANK_MULTILINE_TEXT_PATTERN
            );
            // (a doc comment's line breaks stay in the description: compare the words)
            let said = field("caption")["description"]
                .as_str()
                .unwrap_or_default()
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ");
            assert!(said.contains("bidirectional overrides"), "{said}");
        }
    }
}
