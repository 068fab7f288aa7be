//! The documents of the three indexes. Their mappings are `indexes/<name>.json`, applied
//! on deploy by `search-indexes` (see [`crate::setup`]).
//!
//! Deleting leaves a tombstone (`deleted: true`) rather than removing the document: a
//! late or redelivered event from another topic (a `ProfileUpdated` after `UserDeleted`,
//! a `PostUpdated` replayed after `PostDeleted`) then finds the tombstone and changes
//! nothing, however long after. Queries filter tombstones out.

use serde::{Deserialize, Serialize};

/// Published posts (id = post id).
pub const POSTS_INDEX: &str = "shutter-posts";
/// Users (id = user id).
pub const USERS_INDEX: &str = "shutter-users";
/// Follow, block and like edges (id = `<kind>:<a>:<b>`), versioned by their `seq`.
pub const RELATIONS_INDEX: &str = "shutter-relations";

/// Every index with its mappings and settings, as kept in the repository.
pub const INDEXES: [(&str, &str); 3] = [
    (POSTS_INDEX, include_str!("../indexes/shutter-posts.json")),
    (USERS_INDEX, include_str!("../indexes/shutter-users.json")),
    (
        RELATIONS_INDEX,
        include_str!("../indexes/shutter-relations.json"),
    ),
];

/// A post as indexed.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct PostDoc {
    pub post_id: String,
    pub author_id: String,
    pub caption: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    #[serde(default)]
    pub hashtags: Vec<String>,
    #[serde(default)]
    pub mentions: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
    /// The post's own version (from its events): an older one never overwrites a newer.
    #[serde(default)]
    pub version: u64,
    #[serde(default)]
    pub like_count: i64,
    /// `like_count + 1` as a rank feature (which must be positive); none on tombstones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub popularity: Option<i64>,
    /// A copy of the author's flag, so private posts are filtered inside the query.
    #[serde(default)]
    pub author_private: bool,
    /// A copy of the author's ban ([`UserDoc::banned`]), kept as `author_private` is, so a
    /// banned author's posts are filtered inside the query (hashtag counts included).
    /// Absent unless set: documents written before bans existed read as not banned, and
    /// queries test `author_banned: true` (never `false`) for the same reason.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub author_banned: bool,
    #[serde(default)]
    pub deleted: bool,
}

/// A user as indexed.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct UserDoc {
    pub user_id: String,
    pub username: String,
    #[serde(default)]
    pub display_name: String,
    #[serde(default)]
    pub private: bool,
    /// Banned by staff (`UserSuspended` with `banned`) and not reinstated since: hidden,
    /// with their posts, from everyone but staff and themselves. A time-limited suspension
    /// hides nothing in search. Absent unless set (see [`PostDoc::author_banned`]).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub banned: bool,
    /// The `seq` of the newest `UserSuspended` / `UserReinstated` folded in (0: none):
    /// an older or equal one changes nothing, so a redelivered or late event cannot
    /// undo a newer decision.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub standing_seq: u64,
    #[serde(default)]
    pub deleted: bool,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// The kinds of edge kept in [`RELATIONS_INDEX`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EdgeKind {
    /// a follows b (approved).
    Follow,
    /// a blocked b.
    Block,
    /// user a likes post b.
    Like,
}

impl EdgeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Follow => "follow",
            Self::Block => "block",
            Self::Like => "like",
        }
    }
}

/// A follow, block or like, as indexed. Its document version is `seq`, so a redelivered
/// or out-of-order event with an older `seq` is refused by OpenSearch itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EdgeDoc {
    pub kind: EdgeKind,
    pub a: String,
    pub b: String,
    pub active: bool,
    pub seq: u64,
}

impl EdgeDoc {
    pub fn id(&self) -> String {
        format!("{}:{}:{}", self.kind.as_str(), self.a, self.b)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn every_index_file_is_json_with_mappings_that_name_the_document_fields() {
        for (name, text) in INDEXES {
            let v: serde_json::Value = serde_json::from_str(text).unwrap();
            assert!(v["mappings"]["properties"].is_object(), "{name}");
        }
        let posts: serde_json::Value = serde_json::from_str(INDEXES[0].1).unwrap();
        let doc = serde_json::to_value(PostDoc {
            location: Some("x".into()),
            popularity: Some(1),
            created_at: Some("t".into()),
            author_banned: true,
            ..PostDoc::default()
        })
        .unwrap();
        for field in doc.as_object().unwrap().keys() {
            assert!(
                posts["mappings"]["properties"][field].is_object(),
                "posts mapping lacks {field}"
            );
        }
        let users: serde_json::Value = serde_json::from_str(INDEXES[1].1).unwrap();
        let doc = serde_json::to_value(UserDoc {
            banned: true,
            standing_seq: 1,
            ..UserDoc::default()
        })
        .unwrap();
        for field in doc.as_object().unwrap().keys() {
            assert!(
                users["mappings"]["properties"][field].is_object(),
                "users mapping lacks {field}"
            );
        }
    }
}
