//! Posts and their media: what a post is, the rules for its text and media, who may see
//! and change it, when it is published, what its events carry, and the engagement
//! markers its counters are kept from. Pure: no I/O.

use serde::{Deserialize, Serialize};
use shutter_core::validate::check_tag_counts;
use shutter_core::{CommentId, MediaId, PostId, UserId};
use shutter_events::{MediaFacts, PostFacts};
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

impl PostStatus {
    /// The status as stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            PostStatus::Pending => "pending",
            PostStatus::Published => "published",
            PostStatus::Rejected => "rejected",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        [Self::Pending, Self::Published, Self::Rejected]
            .into_iter()
            .find(|s| s.as_str() == raw)
    }
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
    pub id: MediaId,
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

impl Media {
    /// A declared item of `post` by `author`, waiting for its upload.
    pub fn pending(
        id: MediaId,
        author: &UserId,
        post: &PostId,
        media_type: MediaType,
        declared_size: u64,
    ) -> Self {
        Self {
            upload_key: upload_key(author, post, &id, media_type),
            id,
            media_type,
            declared_size,
            status: MediaStatus::Pending,
            display_key: None,
            thumbnail_key: None,
            reason: None,
        }
    }
}

/// A mention that names an existing user; any other `@word` stays plain text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Mention {
    pub user_id: UserId,
    pub username: String,
}

/// A post as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Post {
    pub id: PostId,
    pub author_id: UserId,
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
    /// Set when staff removed the post (`ContentRemoved`): for good, seen by its author
    /// and staff only. Absent from the stored item otherwise, so a save of a post read
    /// before the removal cannot clear it (it is stale anyway: a removal bumps the
    /// version).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub removed: Option<Removal>,
}

pub use shutter_events::Removal;

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

    /// Who may see the post: its author and staff always; others once it is published,
    /// not removed, and the author's posts are visible to them (`author_visible`: the
    /// directory's rule, which hides a banned author's posts; an author the directory
    /// does not know yet counts as private).
    pub fn visible_to(&self, user: &UserId, staff: bool, author_visible: bool) -> bool {
        if self.author_id == *user || staff {
            return true;
        }
        self.status == PostStatus::Published && self.removed.is_none() && author_visible
    }

    /// The post as staff removed it: the note, the time, and a new version (an edit read
    /// before it is stale). `None` when it was removed already: the first removal stands.
    pub fn removal(&self, note: &str, removed_at: &str) -> Option<Post> {
        if self.removed.is_some() {
            return None;
        }
        Some(Post {
            removed: Some(Removal {
                note: note.to_owned(),
                removed_at: removed_at.to_owned(),
            }),
            version: self.version + 1,
            ..self.clone()
        })
    }

    /// Only the author edits a post's text.
    pub fn editable_by(&self, user: &UserId) -> bool {
        self.author_id == *user
    }

    /// The author, a moderator or an admin may delete a post.
    pub fn deletable_by(&self, user: &UserId, staff: bool) -> bool {
        self.author_id == *user || staff
    }

    /// The post's facts as `PostCreated`, `PostPublished` and `PostUpdated` carry them:
    /// only the ready media, with their stored objects.
    pub fn facts(&self) -> PostFacts {
        PostFacts {
            post_id: self.id.clone(),
            author_id: self.author_id.clone(),
            caption: self.caption.clone(),
            location: self.location.clone(),
            hashtags: self.hashtags.clone(),
            mentions: self.mentions.iter().map(|m| m.user_id.clone()).collect(),
            created_at: self.created_at.clone(),
            version: self.version,
            media: self
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

// ---------------------------------------------------------------- media objects

/// `post-uploads/<author>/<post>/<media>.<ext>`: where the client uploads an item.
pub fn upload_key(
    author: &UserId,
    post: &PostId,
    media: &MediaId,
    media_type: MediaType,
) -> String {
    format!(
        "post-uploads/{author}/{post}/{media}.{}",
        media_type.extension()
    )
}

/// The (author, post, media) an upload key names, if it is one.
pub fn parse_upload_key(key: &str) -> Option<(&str, &str, &str)> {
    let mut parts = key.split('/');
    match (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) {
        (Some("post-uploads"), Some(author), Some(post), Some(file), None) => {
            Some((author, post, file.split('.').next().unwrap_or(file)))
        }
        _ => None,
    }
}

/// Where one rendition (`display`, `thumbnail`) of a processed item is stored.
pub fn rendition_key(post: &PostId, media: &MediaId, name: &str, media_type: MediaType) -> String {
    format!(
        "{}{media}/{name}.{}",
        media_prefix(post),
        media_type.extension()
    )
}

/// Every processed object of a post.
pub fn media_prefix(post: &PostId) -> String {
    format!("post-media/{post}/")
}

/// Every upload of a post (processed ones are already gone).
pub fn uploads_prefix(author: &UserId, post: &PostId) -> String {
    format!("post-uploads/{author}/{post}/")
}

// ---------------------------------------------------------------- input rules

/// Input that breaks a rule: the field and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    pub field: String,
    pub reason: String,
}

impl Invalid {
    pub fn new(field: &str, reason: impl Into<String>) -> Self {
        Self {
            field: field.to_owned(),
            reason: reason.into(),
        }
    }
}

fn check_text(field: &str, text: &str, max: usize) -> Result<(), Invalid> {
    if text.chars().count() > max {
        return Err(Invalid::new(
            field,
            format!("must be at most {max} characters"),
        ));
    }
    if text.chars().any(|c| c.is_control() && c != '\n') {
        return Err(Invalid::new(field, "must not contain control characters"));
    }
    // Bidirectional overrides and other invisible format characters spoof text.
    shutter_core::validate::check_format_chars(text).map_err(|why| Invalid::new(field, why))
}

/// A caption: bounded, plain, and with at most 30 hashtags and 20 mentions (each hashtag
/// is an entry of the tag index, each mention a lookup).
pub fn check_caption(caption: &str) -> Result<(), Invalid> {
    check_text("caption", caption, MAX_CAPTION_CHARS)?;
    check_tag_counts(
        crate::text::hashtags(caption).len(),
        crate::text::mentions(caption).len(),
    )
    .map_err(|why| Invalid::new("caption", why))
}

pub fn check_location(location: Option<&str>) -> Result<(), Invalid> {
    match location {
        Some(l) if l.trim().is_empty() => Err(Invalid::new("location", "must not be blank")),
        Some(l) => check_text("location", l, MAX_LOCATION_CHARS),
        None => Ok(()),
    }
}

/// The declared media, checked: 1–10 items of accepted types within their limits, each
/// given as (content type, size).
pub fn check_media<'a>(
    declared: impl ExactSizeIterator<Item = (&'a str, u64)>,
) -> Result<Vec<(MediaType, u64)>, Invalid> {
    if declared.len() == 0 || declared.len() > MAX_MEDIA {
        return Err(Invalid::new("media", "must have 1 to 10 items"));
    }
    declared
        .enumerate()
        .map(|(i, (content_type, size))| {
            let t = MediaType::from_mime(content_type).ok_or_else(|| {
                Invalid::new(
                    &format!("media[{i}].content_type"),
                    "must be image/jpeg, image/png, image/webp or video/mp4",
                )
            })?;
            if size == 0 || size > max_bytes(t) {
                return Err(Invalid::new(
                    &format!("media[{i}].size"),
                    format!("must be from 1 to {} bytes for {}", max_bytes(t), t.mime()),
                ));
            }
            Ok((t, size))
        })
        .collect()
}

/// A new post as the author asks for it, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPost {
    pub caption: String,
    pub location: Option<String>,
    pub media: Vec<(MediaType, u64)>,
}

// ---------------------------------------------------------------- engagement

/// The counters a post keeps from engagement events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Counter {
    Likes,
    Comments,
}

/// What one engagement marker of a post is about: one user's like, or one comment.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MarkerId {
    Like(UserId),
    Comment(CommentId),
}

impl MarkerId {
    /// The counter the marker counts in.
    pub fn counter(&self) -> Counter {
        match self {
            MarkerId::Like(_) => Counter::Likes,
            MarkerId::Comment(_) => Counter::Comments,
        }
    }
}

/// What a marker holds: the last sequence applied and whether it counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Marker {
    pub seq: u64,
    pub counted: bool,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn post(media: Vec<Media>) -> Post {
        Post {
            id: PostId::generate(),
            author_id: UserId::generate(),
            caption: String::new(),
            location: None,
            hashtags: vec![],
            mentions: vec![],
            status: PostStatus::Pending,
            media,
            like_count: 0,
            comment_count: 0,
            version: 1,
            created_at: String::new(),
            published_at: None,
            removed: None,
        }
    }

    fn declared(items: &[(&'static str, u64)]) -> Result<Vec<(MediaType, u64)>, Invalid> {
        check_media(items.iter().copied())
    }

    #[test]
    fn media_declarations_are_checked_per_type() {
        assert!(declared(&[("image/jpeg", 10_485_760)]).is_ok());
        assert!(declared(&[("video/mp4", 104_857_600)]).is_ok());
        let err = declared(&[("image/png", 10_485_761)]).unwrap_err();
        assert_eq!(err.field, "media[0].size");
        let err = declared(&[("image/png", 1), ("text/plain", 1)]).unwrap_err();
        assert_eq!(err.field, "media[1].content_type");
        assert_eq!(declared(&[]).unwrap_err().field, "media");
        let eleven = [("image/png", 1); 11];
        assert_eq!(declared(&eleven).unwrap_err().field, "media");
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
    fn captions_have_at_most_30_hashtags_and_20_mentions() {
        let tags = |n: usize| {
            (0..n)
                .map(|i| format!("#t{i}"))
                .collect::<Vec<_>>()
                .join(" ")
        };
        let names = |n: usize| {
            (0..n)
                .map(|i| format!("@user{i}"))
                .collect::<Vec<_>>()
                .join(" ")
        };
        assert!(check_caption(&format!("{} {}", tags(30), names(20))).is_ok());
        // The same tag many times is one tag.
        assert!(check_caption(&"#same ".repeat(100)).is_ok());
        let err = check_caption(&tags(31)).unwrap_err();
        assert_eq!(err.field, "caption");
        assert!(err.reason.contains("30 hashtags"), "{}", err.reason);
        let err = check_caption(&names(21)).unwrap_err();
        assert_eq!(err.field, "caption");
        assert!(err.reason.contains("20 users"), "{}", err.reason);
    }

    #[test]
    fn a_post_publishes_when_its_media_are_settled_and_one_is_ready() {
        let (author, id) = (UserId::generate(), PostId::generate());
        let media = |status| Media {
            status,
            ..Media::pending(MediaId::generate(), &author, &id, MediaType::Png, 1)
        };
        let mut post = post(vec![media(MediaStatus::Ready), media(MediaStatus::Pending)]);
        assert!(!post.media_settled());
        post.media[1].status = MediaStatus::Rejected;
        assert!(post.media_settled());
        assert_eq!(post.settled_status(), PostStatus::Published);
        post.media[0].status = MediaStatus::Rejected;
        assert_eq!(post.settled_status(), PostStatus::Rejected);
    }

    #[test]
    fn others_see_only_published_posts_of_authors_they_may_see() {
        let mut post = post(vec![]);
        let (author, other) = (post.author_id.clone(), UserId::generate());
        // GIVEN a pending post: only its author and staff see it.
        assert!(post.visible_to(&author, false, false));
        assert!(post.visible_to(&other, true, false));
        assert!(!post.visible_to(&other, false, true));
        // WHEN it is published: those who may see the author see it too.
        post.status = PostStatus::Published;
        assert!(post.visible_to(&other, false, true));
        assert!(!post.visible_to(&other, false, false));
        // Only the author edits; staff may delete.
        assert!(post.editable_by(&author) && !post.editable_by(&other));
        assert!(post.deletable_by(&other, true) && !post.deletable_by(&other, false));
    }

    #[test]
    fn facts_carry_only_ready_media_and_mentioned_ids() {
        let (author, id) = (UserId::generate(), PostId::generate());
        let mut ready = Media::pending(MediaId::generate(), &author, &id, MediaType::Jpeg, 1);
        ready.status = MediaStatus::Ready;
        ready.display_key = Some(rendition_key(&id, &ready.id, "display", MediaType::Jpeg));
        let waiting = Media::pending(MediaId::generate(), &author, &id, MediaType::Png, 1);
        let mut p = post(vec![waiting, ready.clone()]);
        let mentioned = UserId::generate();
        p.mentions = vec![Mention {
            user_id: mentioned.clone(),
            username: "bob".into(),
        }];
        let facts = p.facts();
        assert_eq!(facts.mentions, vec![mentioned]);
        assert_eq!(facts.media.len(), 1);
        assert_eq!(facts.media[0].id, ready.id);
        assert_eq!(
            facts.media[0].display_key,
            format!("post-media/{id}/{}/display.jpg", ready.id)
        );
    }

    #[test]
    fn upload_keys_name_author_post_and_media() {
        assert_eq!(
            parse_upload_key("post-uploads/u/p/m.jpg"),
            Some(("u", "p", "m"))
        );
        assert_eq!(parse_upload_key("post-uploads/u/p/x/m.jpg"), None);
        assert_eq!(parse_upload_key("avatars/u/m.jpg"), None);
        let (a, p, m) = (UserId::generate(), PostId::generate(), MediaId::generate());
        let key = upload_key(&a, &p, &m, MediaType::Png);
        assert_eq!(
            parse_upload_key(&key),
            Some((a.as_str(), p.as_str(), m.as_str()))
        );
        assert!(key.starts_with(&uploads_prefix(&a, &p)));
    }
}
