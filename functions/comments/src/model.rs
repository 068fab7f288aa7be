//! A comment as written, stored and shown, its validated text, and what is parsed out of
//! that text (hashtags and mentions).

use serde::{Deserialize, Serialize};
use shutter_core::validate::Username;
use utoipa::ToSchema;

/// At most this many characters of text.
pub const MAX_TEXT_CHARS: usize = 2_200;

/// The text of a comment: 1-2,200 characters, not only blanks, no control characters
/// except newline. Taken as sent (no trimming), so the OpenAPI schema is the rule.
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
        if raw.chars().all(is_blank) {
            return Err("may not be blank".into());
        }
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
            .description(Some(
                "1-2,200 characters, not only blanks; newlines allowed, other control characters not. `#hashtags` and `@mentions` are picked out of it.",
            ))
            .min_length(Some(1))
            .max_length(Some(MAX_TEXT_CHARS))
            .pattern(Some(
                "^[^\\x00-\\x09\\x0b-\\x1f\\x7f-\\x9f]*[^\\s\\x00-\\x1f\\x7f-\\x9f][^\\x00-\\x09\\x0b-\\x1f\\x7f-\\x9f]*$",
            ))
            .into()
    }
}
impl ToSchema for CommentText {}

/// Who wrote a comment, or who is mentioned in it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct UserRef {
    pub id: String,
    pub username: String,
}

/// A comment as stored (and as carried on the writes queue).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Comment {
    pub id: String,
    pub post_id: String,
    pub author: UserRef,
    pub text: String,
    /// The top-level comment this one answers (replies to replies are attached to it).
    pub reply_to: Option<String>,
    pub hashtags: Vec<String>,
    pub mentions: Vec<UserRef>,
    pub like_count: u64,
    pub created_at: String,
    #[serde(default)]
    pub edited_at: Option<String>,
}

impl Comment {
    /// The top-level comment this one belongs under: its parent, or itself.
    pub fn thread(&self) -> &str {
        self.reply_to.as_deref().unwrap_or(&self.id)
    }

    /// The sort key under `POST#<post>`: `C#<parent>` for a top-level comment and
    /// `C#<parent>#R#<reply>` for a reply, so one query returns each thread in order.
    pub fn sort_key(&self) -> String {
        match &self.reply_to {
            Some(parent) => format!("C#{parent}#R#{}", self.id),
            None => format!("C#{}", self.id),
        }
    }
}

/// A comment as a client sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CommentView {
    /// ULID, assigned when the comment is posted.
    pub id: String,
    pub post_id: String,
    pub author: UserRef,
    pub text: String,
    /// The top-level comment this one answers, if it is a reply.
    pub reply_to: Option<String>,
    /// Lower-cased, without '#', in order of appearance.
    pub hashtags: Vec<String>,
    /// Existing users mentioned with '@', in order of appearance.
    pub mentions: Vec<UserRef>,
    pub like_count: u64,
    pub liked_by_me: bool,
    pub created_at: String,
    pub edited_at: Option<String>,
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

/// Where a comment is: read from its lookup item by id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommentRef {
    pub comment_id: String,
    pub post_id: String,
    pub author_id: String,
    pub reply_to: Option<String>,
}

// ---------------------------------------------------------------- events

/// `CommentAdded` payload. The posts service counts each `comment_id` once.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CommentAdded {
    pub comment_id: String,
    pub post_id: String,
    pub author_id: String,
    pub reply_to: Option<String>,
    pub text: String,
    pub hashtags: Vec<String>,
    pub mentions: Vec<UserRef>,
    pub created_at: String,
}

impl From<&Comment> for CommentAdded {
    fn from(c: &Comment) -> Self {
        Self {
            comment_id: c.id.clone(),
            post_id: c.post_id.clone(),
            author_id: c.author.id.clone(),
            reply_to: c.reply_to.clone(),
            text: c.text.clone(),
            hashtags: c.hashtags.clone(),
            mentions: c.mentions.clone(),
            created_at: c.created_at.clone(),
        }
    }
}

/// `CommentEdited` payload.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CommentEdited {
    pub comment_id: String,
    pub post_id: String,
    pub author_id: String,
    pub text: String,
    pub hashtags: Vec<String>,
    pub mentions: Vec<UserRef>,
}

/// `CommentDeleted` payload: one per deleted comment (a parent's replies each get one).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CommentDeleted {
    pub comment_id: String,
    pub post_id: String,
    pub author_id: String,
    pub deleted_by: String,
}

/// `CommentLikeAdded` / `CommentLikeRemoved` payload.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CommentLikeChanged {
    pub comment_id: String,
    pub post_id: String,
    pub user_id: String,
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
}
