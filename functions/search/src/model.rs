//! The rules of searching, pure: what a query text may be ([`QueryText`], its words as
//! hashtags, a [`HashtagPrefix`]) and whom a viewer may see ([`Viewer`]).

use std::collections::HashSet;

use shutter_core::{ApiError, UserId};

use crate::docs::UserDoc;

/// Longest query text, in characters.
pub const MAX_QUERY_CHARS: usize = 100;
/// Words of a posts query also tried as hashtags.
const MAX_WORDS: usize = 10;

/// A query text as a client may send it: 1 to 100 characters, not only blanks, no control
/// characters. It only ever reaches OpenSearch as a value, never as query syntax.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryText(String);

impl QueryText {
    /// `raw` checked; a 400 naming `q` otherwise.
    pub fn parse(raw: &str) -> Result<Self, ApiError> {
        let n = raw.chars().count();
        if n == 0 || n > MAX_QUERY_CHARS {
            return Err(ApiError::invalid(
                "q",
                format!("must be 1 to {MAX_QUERY_CHARS} characters"),
            ));
        }
        if raw.trim().is_empty() {
            return Err(ApiError::invalid("q", "must not be only blanks"));
        }
        if raw.chars().any(char::is_control) {
            return Err(ApiError::invalid(
                "q",
                "must not contain control characters",
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The words as hashtag values: `#` dropped, lower-cased, letters, digits and `_`; at
    /// most [`MAX_WORDS`], repeats next to each other once.
    pub fn hashtag_words(&self) -> Vec<String> {
        let mut words: Vec<String> = self
            .0
            .split_whitespace()
            .map(|w| {
                w.trim_start_matches('#')
                    .chars()
                    .filter(|c| c.is_alphanumeric() || *c == '_')
                    .collect::<String>()
                    .to_lowercase()
            })
            .filter(|w| !w.is_empty())
            .collect();
        words.dedup();
        words.truncate(MAX_WORDS);
        words
    }
}

/// The beginning of a hashtag: one leading `#` dropped, lower-cased; letters, digits and
/// `_` only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HashtagPrefix(String);

impl HashtagPrefix {
    /// `q` as a hashtag prefix; a 400 naming `q` otherwise.
    pub fn parse(q: &QueryText) -> Result<Self, ApiError> {
        let q = q.as_str();
        let tag = q.strip_prefix('#').unwrap_or(q).to_lowercase();
        if tag.is_empty() || !tag.chars().all(|c| c.is_alphanumeric() || c == '_') {
            return Err(ApiError::invalid(
                "q",
                "must be a hashtag or its beginning: letters, digits and _ after an optional #",
            ));
        }
        Ok(Self(tag))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn matches(&self, tag: &str) -> bool {
        tag.starts_with(&self.0)
    }
}

/// Who the viewer must not see, and whom they follow.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Relations {
    /// Users the viewer blocked or who blocked the viewer.
    pub hidden: HashSet<UserId>,
    /// Users the viewer follows (approved).
    pub following: HashSet<UserId>,
}

/// The verified caller as a searcher.
#[derive(Debug, Clone, PartialEq)]
pub struct Viewer {
    pub user_id: UserId,
    pub staff: bool,
    pub relations: Relations,
}

impl Viewer {
    /// May the viewer see this author's posts? Not a deleted account's, not across a
    /// block either way, a banned account's only as themselves or staff, and a private
    /// account's only as themselves, staff or an approved follower.
    pub fn may_see(&self, author: &UserDoc) -> bool {
        self.may_find(author)
            && (!author.private
                || self.staff
                || self.user_id == author.user_id
                || self.relations.following.contains(author.user_id.as_str()))
    }

    /// May the viewer find this account by name? Not a deleted one, not across a block
    /// either way, and a banned one only as themselves or staff.
    pub fn may_find(&self, user: &UserDoc) -> bool {
        !user.deleted
            && !self.hides(&user.user_id)
            && (!user.banned || self.staff || self.user_id == user.user_id)
    }

    /// Is `user_id` blocked by the viewer, or blocking them?
    pub fn hides(&self, user_id: &str) -> bool {
        self.relations.hidden.contains(user_id)
    }

    /// The users hidden from the viewer, sorted (queries are then stable).
    pub fn hidden(&self) -> Vec<&UserId> {
        let mut v: Vec<&UserId> = self.relations.hidden.iter().collect();
        v.sort();
        v
    }

    /// Whose private posts the viewer may see, sorted: those they follow, and their own.
    /// `None` for staff, who see every private post.
    pub fn private_authors_seen(&self) -> Option<Vec<&UserId>> {
        if self.staff {
            return None;
        }
        let mut allowed: Vec<&UserId> = self.relations.following.iter().collect();
        allowed.push(&self.user_id);
        allowed.sort();
        Some(allowed)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn author(id: &str, private: bool, deleted: bool) -> UserDoc {
        UserDoc {
            user_id: id.into(),
            username: id.into(),
            display_name: id.into(),
            private,
            deleted,
            ..UserDoc::default()
        }
    }

    fn viewer(staff: bool) -> Viewer {
        Viewer {
            user_id: UserId::trusted("V"),
            staff,
            relations: Relations {
                hidden: HashSet::from([UserId::trusted("B")]),
                following: HashSet::from([UserId::trusted("F")]),
            },
        }
    }

    #[test]
    fn a_private_author_is_seen_by_followers_staff_and_themselves_only() {
        // GIVEN a viewer who follows F and not P
        let v = viewer(false);
        // THEN
        assert!(v.may_see(&author("A", false, false)), "public");
        assert!(v.may_see(&author("F", true, false)), "followed");
        assert!(v.may_see(&author("V", true, false)), "themselves");
        assert!(!v.may_see(&author("P", true, false)), "not followed");
        assert!(viewer(true).may_see(&author("P", true, false)), "staff");
    }

    #[test]
    fn a_banned_account_is_seen_by_staff_and_itself_only() {
        let banned = |id: &str, private: bool| UserDoc {
            banned: true,
            ..author(id, private, false)
        };
        assert!(!viewer(false).may_find(&banned("A", false)));
        assert!(!viewer(false).may_see(&banned("F", true)), "followed");
        assert!(viewer(false).may_see(&banned("V", true)), "themselves");
        assert!(viewer(true).may_see(&banned("A", true)), "staff");
        assert!(viewer(false).may_find(&author("P", true, false)), "private");
    }

    #[test]
    fn blocks_and_deleted_accounts_hide_even_from_staff() {
        let staff = viewer(true);
        assert!(!staff.may_see(&author("B", false, false)));
        assert!(!staff.may_see(&author("A", false, true)));
        assert_eq!(staff.private_authors_seen(), None);
        assert_eq!(
            viewer(false).private_authors_seen().unwrap(),
            [&UserId::trusted("F"), &UserId::trusted("V")]
        );
    }

    #[test]
    fn query_texts_are_bounded_and_their_words_become_hashtags() {
        for bad in ["", "   ", &"x".repeat(101), "a\u{0}b"] {
            let err = QueryText::parse(bad).unwrap_err();
            assert_eq!(err.problem().field.as_deref(), Some("q"), "{bad:?}");
        }
        assert!(
            QueryText::parse(&"é".repeat(100)).is_ok(),
            "characters, not bytes"
        );
        let q = QueryText::parse("#Beach beach sun-set! #").unwrap();
        assert_eq!(q.hashtag_words(), ["beach", "sunset"]);
    }

    #[test]
    fn a_hashtag_prefix_drops_one_hash_and_allows_word_characters_only() {
        let prefix = |q: &str| HashtagPrefix::parse(&QueryText::parse(q).unwrap());
        assert_eq!(prefix("#Sun").unwrap().as_str(), "sun");
        assert!(prefix("#Sun").unwrap().matches("sunset"));
        for bad in ["a b", "##sun", "#", "sun!"] {
            assert_eq!(
                prefix(bad).unwrap_err().problem().field.as_deref(),
                Some("q"),
                "{bad:?}"
            );
        }
    }
}
