//! A comment as written, stored and shown, its validated text, what is parsed out of
//! that text (hashtags and mentions), who may edit or delete it, and the event payloads
//! it makes (the catalogue's). Pure: no I/O.

use serde::{Deserialize, Serialize};
use shutter_core::validate::Username;
use shutter_core::{CommentId, PostId, UserId};
use shutter_events::{CommentAdded, CommentDeleted, CommentEdited, CommentLikeFacts};
use utoipa::ToSchema;

/// Who wrote a comment, or who is mentioned in it: the catalogue's, so the API's views
/// and the events serialise it the same way.
pub use shutter_events::UserRef;

/// At most this many characters of text.
pub const MAX_TEXT_CHARS: usize = 2_200;

/// At most this many distinct users are mentioned in a comment (more is refused).
pub use shutter_core::validate::MAX_MENTIONS;

/// The text of a comment: 1-2,200 characters, not only blanks, no control characters
/// except newline, at most 30 distinct hashtags and 20 distinct mentions. Taken as sent
/// (no trimming), so the OpenAPI schema is the rule (but for the counts, which no
/// pattern can say).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CommentText(String);

/// Blank as JSON Schema's `\s` counts it (Rust's `is_whitespace` plus U+FEFF).
fn is_blank(c: char) -> bool {
    c.is_whitespace() || c == '\u{feff}'
}

impl TryFrom<String> for CommentText {
    type Error = String;
    fn try_from(raw: String) -> Result<Self, String> {
        let n = raw.chars().count();
        if n == 0 || n > MAX_TEXT_CHARS {
            return Err(format!("must be 1-{MAX_TEXT_CHARS} characters"));
        }
        if raw.chars().any(|c| c.is_control() && c != '\n') {
            return Err("may not contain control characters other than newline".into());
        }
        // Bidirectional overrides and other invisible format characters spoof text.
        shutter_core::validate::check_format_chars(&raw)?;
        if raw.chars().all(is_blank) {
            return Err("may not be blank".into());
        }
        shutter_core::validate::check_tag_counts(
            hashtags(&raw).len(),
            mentioned_usernames(&raw).len(),
        )?;
        Ok(Self(raw))
    }
}

impl From<CommentText> for String {
    fn from(v: CommentText) -> String {
        v.0
    }
}

impl CommentText {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl utoipa::PartialSchema for CommentText {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .description(Some(format!(
                "1-2,200 characters, not only blanks; {}. `#hashtags` (at most 30) and `@mentions` (at most 20) are picked out of it.",
                shutter_core::validate::REFUSED_TEXT_CHARS
            )))
            .min_length(Some(1))
            .max_length(Some(MAX_TEXT_CHARS))
            .pattern(Some(
                shutter_core::validate::NON_BLANK_MULTILINE_TEXT_PATTERN,
            ))
            .into()
    }
}
impl ToSchema for CommentText {}

/// A comment as stored (and as carried on the writes queue).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Comment {
    pub id: CommentId,
    pub post_id: PostId,
    pub author: UserRef,
    pub text: String,
    /// The top-level comment this one answers (replies to replies are attached to it).
    pub reply_to: Option<CommentId>,
    pub hashtags: Vec<String>,
    pub mentions: Vec<UserRef>,
    pub like_count: u64,
    pub created_at: String,
    #[serde(default)]
    pub edited_at: Option<String>,
    /// Set for good when staff removed it (`ContentRemoved`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub removed: Option<Removal>,
}

pub use shutter_events::Removal;

impl Comment {
    /// A new comment by `author` on `post_id`, answering `reply_to` (already the
    /// top-level comment: see [`Comment::thread`]). Its time is its id's own instant, so
    /// the list (in id order) and the times agree.
    pub fn new(
        post_id: PostId,
        author: UserRef,
        text: CommentText,
        reply_to: Option<CommentId>,
        mentions: Vec<UserRef>,
    ) -> Self {
        let (id, created_at) = shutter_core::new_id_and_time();
        let text = String::from(text);
        Self {
            id: CommentId::trusted(id),
            post_id,
            author,
            hashtags: hashtags(&text),
            mentions,
            text,
            reply_to,
            like_count: 0,
            created_at,
            edited_at: None,
            removed: None,
        }
    }

    /// Whether `user` (staff or not) is shown this comment, as far as its removal goes:
    /// a removed comment only to its author and staff.
    pub fn shown_to(&self, user: &UserId, staff: bool) -> bool {
        self.removed.is_none() || staff || self.author.id == *user
    }

    /// The top-level comment this one belongs under: its parent, or itself.
    pub fn thread(&self) -> &CommentId {
        self.reply_to.as_ref().unwrap_or(&self.id)
    }

    /// Only the author edits a comment (staff delete, they do not rewrite).
    pub fn may_edit(&self, user: &UserId) -> bool {
        self.author.id == *user
    }

    /// The comment's author, staff and the author of the post it is on may delete it.
    /// `post_author` is who wrote the post, when known.
    pub fn may_delete(&self, user: &UserId, staff: bool, post_author: Option<&UserId>) -> bool {
        self.author.id == *user || staff || post_author == Some(user)
    }

    /// The comment after its author replaced the text at `at`: hashtags are taken again
    /// from the new text, `mentions` are the users it now mentions.
    pub fn edited(&self, text: CommentText, mentions: Vec<UserRef>, at: String) -> Self {
        let text = String::from(text);
        Self {
            hashtags: hashtags(&text),
            mentions,
            text,
            edited_at: Some(at),
            ..self.clone()
        }
    }

    /// The `CommentAdded` payload.
    pub fn added(&self) -> CommentAdded {
        CommentAdded {
            comment_id: self.id.clone(),
            post_id: self.post_id.clone(),
            author_id: self.author.id.clone(),
            reply_to: self.reply_to.clone(),
            text: self.text.clone(),
            hashtags: self.hashtags.clone(),
            mentions: self.mentions.clone(),
            created_at: self.created_at.clone(),
        }
    }

    /// The `CommentEdited` payload (of the comment after the edit).
    pub fn edit_facts(&self) -> CommentEdited {
        CommentEdited {
            comment_id: self.id.clone(),
            post_id: self.post_id.clone(),
            author_id: self.author.id.clone(),
            text: self.text.clone(),
            hashtags: self.hashtags.clone(),
            mentions: self.mentions.clone(),
        }
    }

    /// The `CommentDeleted` payload: `deleted_by` deleted it.
    pub fn deleted_by(&self, deleted_by: &UserId) -> CommentDeleted {
        CommentDeleted {
            comment_id: self.id.clone(),
            post_id: self.post_id.clone(),
            author_id: self.author.id.clone(),
            deleted_by: deleted_by.clone(),
        }
    }

    /// The `CommentLikeAdded` / `CommentLikeRemoved` payload of `user`'s like.
    pub fn like_by(&self, user: &UserId) -> CommentLikeFacts {
        CommentLikeFacts {
            comment_id: self.id.clone(),
            post_id: self.post_id.clone(),
            user_id: user.clone(),
        }
    }
}

/// A comment as a client sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CommentView {
    /// ULID, assigned when the comment is posted.
    pub id: CommentId,
    pub post_id: PostId,
    pub author: UserRef,
    pub text: String,
    /// The top-level comment this one answers, if it is a reply.
    pub reply_to: Option<CommentId>,
    /// Lower-cased, without '#', in order of appearance.
    pub hashtags: Vec<String>,
    /// Existing users mentioned with '@', in order of appearance.
    pub mentions: Vec<UserRef>,
    pub like_count: u64,
    pub liked_by_me: bool,
    pub created_at: String,
    pub edited_at: Option<String>,
    /// Present only when staff removed it (then it is shown to its author and staff only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub removed: Option<Removal>,
}

impl CommentView {
    pub fn new(c: &Comment, liked_by_me: bool) -> Self {
        Self {
            id: c.id.clone(),
            post_id: c.post_id.clone(),
            author: c.author.clone(),
            text: c.text.clone(),
            reply_to: c.reply_to.clone(),
            hashtags: c.hashtags.clone(),
            mentions: c.mentions.clone(),
            like_count: c.like_count,
            liked_by_me,
            created_at: c.created_at.clone(),
            edited_at: c.edited_at.clone(),
            removed: c.removed.clone(),
        }
    }
}

/// A page of comments.
#[derive(Debug, Serialize, ToSchema)]
pub struct CommentPage {
    /// Oldest thread first; each top-level comment is followed by its replies, oldest first.
    pub items: Vec<CommentView>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

// ---------------------------------------------------------------- parsing

/// Starts a tag only at the beginning or after a character that cannot be part of a word
/// (so `bob@example.com` mentions nobody and `a#b` is no hashtag).
fn starts_token(prev: Option<char>) -> bool {
    prev.is_none_or(|p| !(p.is_alphanumeric() || p == '_' || p == '.' || p == '@' || p == '#'))
}

/// The hashtags of `text`: `#` then letters, digits and `_`, lower-cased, deduplicated, in
/// order of appearance.
pub fn hashtags(text: &str) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let mut found: Vec<String> = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if chars[i] == '#' && starts_token(i.checked_sub(1).map(|p| chars[p])) {
            let tag: String = chars[i + 1..]
                .iter()
                .take_while(|c| c.is_alphanumeric() || **c == '_')
                .collect();
            i += 1 + tag.chars().count();
            let tag = tag.to_lowercase();
            if !tag.is_empty() && tag.chars().count() <= 100 && !found.contains(&tag) {
                found.push(tag);
            }
        } else {
            i += 1;
        }
    }
    found
}

/// The usernames `text` mentions: `@` then a valid username (3-30 of `[a-z0-9._]`, case
/// insensitive; a trailing '.' ends the sentence, not the name), deduplicated, in order.
pub fn mentioned_usernames(text: &str) -> Vec<Username> {
    let chars: Vec<char> = text.chars().collect();
    let mut found: Vec<Username> = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if chars[i] == '@' && starts_token(i.checked_sub(1).map(|p| chars[p])) {
            let run: String = chars[i + 1..]
                .iter()
                .take_while(|c| c.is_ascii_alphanumeric() || **c == '.' || **c == '_')
                .collect();
            i += 1 + run.len();
            if let Ok(name) = Username::try_from(run.trim_end_matches('.').to_owned())
                && !found.contains(&name)
            {
                found.push(name);
            }
        } else {
            i += 1;
        }
    }
    found
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn text_bounds_and_characters() {
        assert!(CommentText::try_from("x".repeat(2_200)).is_ok());
        assert!(CommentText::try_from("é".repeat(2_200)).is_ok());
        assert!(CommentText::try_from("x".repeat(2_201)).is_err());
        assert!(CommentText::try_from(String::new()).is_err());
        assert!(CommentText::try_from("  \n ".to_owned()).is_err());
        assert!(CommentText::try_from("line one\nline two".to_owned()).is_ok());
        for bad in ["tab\there", "bell\u{7}", "cr\r", "c1\u{85}"] {
            assert!(CommentText::try_from(bad.to_owned()).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn at_most_30_hashtags_and_20_mentions() {
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
        assert!(CommentText::try_from(format!("{} {}", tags(30), names(20))).is_ok());
        assert!(CommentText::try_from("#again ".repeat(50)).is_ok());
        let err = CommentText::try_from(tags(31)).unwrap_err();
        assert!(err.contains("30 hashtags"), "{err}");
        let err = CommentText::try_from(names(21)).unwrap_err();
        assert!(err.contains("20 users"), "{err}");
    }

    #[test]
    fn hashtags_are_words_after_a_hash_normalised() {
        assert_eq!(
            hashtags("#Sunset at the #beach_2026! #sunset, #Été #日本 a#b ## #"),
            vec!["sunset", "beach_2026", "été", "日本"]
        );
    }

    #[test]
    fn mentions_are_valid_usernames_after_an_at() {
        let names: Vec<String> = mentioned_usernames(
            "hi @Alice. and @bob_1, @al @alice mail bob@example.com @x..y @carol.d",
        )
        .into_iter()
        .map(String::from)
        .collect();
        assert_eq!(names, vec!["alice", "bob_1", "carol.d"]);
    }

    fn someone(name: &str) -> UserRef {
        UserRef {
            id: UserId::generate(),
            username: name.to_owned(),
        }
    }

    fn text(raw: &str) -> CommentText {
        CommentText::try_from(raw.to_owned()).unwrap()
    }

    #[test]
    fn a_new_comment_takes_its_hashtags_from_its_text_and_its_time_from_its_id() {
        // GIVEN a comment written now
        let comment = Comment::new(
            PostId::generate(),
            someone("bob"),
            text("Golden #Hour"),
            None,
            vec![],
        );
        // THEN its hashtags are parsed, it has no likes, and it is its own thread
        assert_eq!(comment.hashtags, vec!["hour"]);
        assert_eq!((comment.like_count, comment.edited_at.clone()), (0, None));
        assert_eq!(comment.thread(), &comment.id);
        assert!(comment.created_at.ends_with('Z'));
    }

    #[test]
    fn a_reply_belongs_to_the_thread_of_its_parent() {
        let parent = CommentId::generate();
        let reply = Comment::new(
            PostId::generate(),
            someone("ann"),
            text("me too"),
            Some(parent.clone()),
            vec![],
        );
        assert_eq!(reply.thread(), &parent);
    }

    #[test]
    fn only_the_author_edits_and_an_edit_keeps_everything_but_the_text() {
        // GIVEN bob's comment with a like
        let bob = someone("bob");
        let mut comment = Comment::new(PostId::generate(), bob.clone(), text("#old"), None, vec![]);
        comment.like_count = 3;
        let carol = someone("carol");
        // THEN bob may edit it, carol may not
        assert!(comment.may_edit(&bob.id));
        assert!(!comment.may_edit(&carol.id));
        // WHEN bob edits it
        let edited = comment.edited(text("#New words"), vec![carol.clone()], "t".into());
        // THEN the text, hashtags, mentions and edit time change, nothing else
        assert_eq!(edited.text, "#New words");
        assert_eq!(edited.hashtags, vec!["new"]);
        assert_eq!(edited.mentions, vec![carol]);
        assert_eq!(edited.edited_at.as_deref(), Some("t"));
        assert_eq!(
            (
                &edited.id,
                &edited.author,
                edited.like_count,
                &edited.created_at
            ),
            (&comment.id, &comment.author, 3, &comment.created_at)
        );
    }

    #[test]
    fn the_author_staff_and_the_posts_author_may_delete_nobody_else() {
        let (bob, ann, carol) = (someone("bob"), someone("ann"), someone("carol"));
        let comment = Comment::new(PostId::generate(), bob.clone(), text("hi"), None, vec![]);
        assert!(comment.may_delete(&bob.id, false, None), "its author");
        assert!(comment.may_delete(&carol.id, true, None), "staff");
        assert!(
            comment.may_delete(&ann.id, false, Some(&ann.id)),
            "the post's author"
        );
        assert!(!comment.may_delete(&carol.id, false, Some(&ann.id)));
        assert!(!comment.may_delete(&carol.id, false, None));
    }

    #[test]
    fn the_event_payloads_say_what_happened_to_which_comment() {
        let (bob, ann) = (someone("bob"), someone("ann"));
        let comment = Comment::new(
            PostId::generate(),
            bob.clone(),
            text("#a @ann"),
            Some(CommentId::generate()),
            vec![ann.clone()],
        );
        let added = comment.added();
        assert_eq!(
            (&added.comment_id, &added.post_id, &added.author_id),
            (&comment.id, &comment.post_id, &bob.id)
        );
        assert_eq!(added.reply_to, comment.reply_to);
        assert_eq!(
            (added.hashtags, added.mentions),
            (vec!["a".to_owned()], vec![ann.clone()])
        );
        let deleted = comment.deleted_by(&ann.id);
        assert_eq!(
            (deleted.author_id, deleted.deleted_by),
            (bob.id.clone(), ann.id.clone())
        );
        let like = comment.like_by(&ann.id);
        assert_eq!(
            (like.comment_id, like.user_id),
            (comment.id.clone(), ann.id)
        );
        assert_eq!(comment.edit_facts().text, "#a @ann");
    }

    #[test]
    fn views_and_queued_comments_serialise_as_before() {
        // The writes queue and the API carry plain strings for ids, as they always did.
        let comment = Comment::new(PostId::generate(), someone("bob"), text("hi"), None, vec![]);
        let json = serde_json::to_value(CommentView::new(&comment, true)).unwrap();
        assert_eq!(json["id"], comment.id.as_str());
        assert_eq!(json["author"]["id"], comment.author.id.as_str());
        assert_eq!(json["author"]["username"], "bob");
        assert_eq!(json["liked_by_me"], true);
        assert!(json["reply_to"].is_null() && json["edited_at"].is_null());
        let stored = serde_json::to_string(&comment).unwrap();
        assert_eq!(serde_json::from_str::<Comment>(&stored).unwrap(), comment);
    }
}
