//! The string-typed directory that services used before the typed one at the crate root,
//! kept only while they move to it. Delete it when nothing imports it.
//!
//! A service's own copy of the public facts it needs from other services: who the authors
//! are (from `shutter.identity` and `shutter.profiles`) and which posts are published
//! (from `shutter.posts`), and who follows or blocks whom (from `shutter.follows`). Each
//! service owns its tables, so the likes, comments and posts
//! services keep this copy in their own table, fed by their own consumer, and decide who
//! may see a post from it without reading another service's table.
//!
//! Every event is applied idempotently and out-of-order events are tolerated: a deleted
//! post or author leaves a tombstone, so a late or redelivered publish cannot bring it
//! back.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use shutter_core::ApiError;
use shutter_events::legacy::Envelope;
use shutter_store::{Table, n, s, to_item};

/// The topics a directory consumer reads.
pub const TOPICS: [&str; 4] = [
    "shutter.identity",
    "shutter.profiles",
    "shutter.posts",
    "shutter.follows",
];

/// Tombstones outlive any redelivery (Kafka keeps records a week).
const TOMBSTONE_TTL_SECONDS: i64 = 8 * 24 * 3600;

/// What a service knows of a user who may author posts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Author {
    pub user_id: String,
    pub username: String,
    pub display_name: String,
    pub private: bool,
    #[serde(default)]
    pub avatar_key: Option<String>,
}

/// What a service knows of a published post.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PostRef {
    pub post_id: String,
    pub author_id: String,
}

/// Who is looking: the verified caller.
#[derive(Debug, Clone, Copy)]
pub struct Viewer<'a> {
    pub user_id: &'a str,
    /// Moderators and admins see everything.
    pub staff: bool,
}

/// What stands between a viewer and an author.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Access {
    /// The viewer is an approved follower of the author.
    pub follows: bool,
    /// One of the two blocks the other.
    pub blocked: bool,
}

/// The rule for who sees an author's posts (and their likes and comments): the author and
/// staff always; nobody the author blocks or who blocks the author; for a private account
/// only its approved followers; for a public one everyone else.
pub async fn may_see<D: Directory + ?Sized>(
    directory: &D,
    author: &Author,
    viewer: Viewer<'_>,
) -> Result<bool, ApiError> {
    if viewer.staff || viewer.user_id == author.user_id {
        return Ok(true);
    }
    let access = directory.access(viewer.user_id, &author.user_id).await?;
    Ok(!access.blocked && (!author.private || access.follows))
}

#[async_trait]
pub trait Directory: Send + Sync {
    async fn author(&self, user_id: &str) -> Result<Option<Author>, ApiError>;
    async fn author_by_username(&self, username: &str) -> Result<Option<Author>, ApiError>;
    async fn post(&self, post_id: &str) -> Result<Option<PostRef>, ApiError>;
    /// Whether `viewer` follows `author`, and whether either blocks the other.
    async fn access(&self, viewer: &str, author: &str) -> Result<Access, ApiError>;
    /// Applies one event of [`TOPICS`]; others are ignored. Idempotent.
    async fn apply(&self, event: &Envelope) -> Result<(), ApiError>;
}

/// The post, if it is published and `viewer` may see it. Anything else is "not found",
/// so a private account's posts are not revealed to exist.
pub async fn visible_post<D: Directory + ?Sized>(
    directory: &D,
    post_id: &str,
    viewer: Viewer<'_>,
) -> Result<(PostRef, Author), ApiError> {
    let post = directory
        .post(post_id)
        .await?
        .ok_or(ApiError::NotFound("post"))?;
    let author = directory
        .author(&post.author_id)
        .await?
        .ok_or(ApiError::NotFound("post"))?;
    if may_see(directory, &author, viewer).await? {
        Ok((post, author))
    } else {
        Err(ApiError::NotFound("post"))
    }
}

/// What the directory reads from events; extra fields are ignored.
#[derive(Debug, Deserialize)]
struct UserFacts {
    user_id: String,
    username: String,
    #[serde(default)]
    display_name: Option<String>,
    #[serde(default)]
    private: Option<bool>,
    #[serde(default)]
    avatar_key: Option<String>,
}

/// A follow edge's or a block's change; `seq` orders one pair's changes.
#[derive(Debug, Deserialize)]
struct EdgeFacts {
    #[serde(alias = "blocker_id")]
    follower_id: String,
    #[serde(alias = "blocked_id")]
    followee_id: String,
    seq: u64,
}

#[derive(Debug, Deserialize)]
struct PostFacts {
    post_id: String,
    author_id: String,
}

/// The change an event makes to the directory.
#[derive(Debug, PartialEq)]
enum Change {
    /// Create the author if unknown (registration); never overwrites.
    AuthorRegistered(Author),
    /// Replace the author's public facts (profile edits), unless deleted.
    AuthorUpdated(Author),
    AuthorDeleted {
        user_id: String,
        username: String,
    },
    PostPublished(PostRef),
    PostDeleted(String),
    /// A pair's follow (`kind` FOLLOW) or block (`kind` BLOCK) holds or not from `seq` on.
    Pair {
        kind: &'static str,
        from: String,
        to: String,
        holds: bool,
        seq: u64,
    },
    Nothing,
}

fn change_of(event: &Envelope) -> Result<Change, ApiError> {
    let bad = |e: shutter_events::legacy::DecodeError| ApiError::invalid("data", e.to_string());
    let author = |facts: UserFacts| Author {
        display_name: facts.display_name.unwrap_or_else(|| facts.username.clone()),
        private: facts.private.unwrap_or(false),
        avatar_key: facts.avatar_key,
        user_id: facts.user_id,
        username: facts.username,
    };
    Ok(match event.event_type.as_str() {
        "UserRegistered" => Change::AuthorRegistered(author(event.data().map_err(bad)?)),
        "ProfileUpdated" | "AvatarChanged" => {
            Change::AuthorUpdated(author(event.data().map_err(bad)?))
        }
        "UserDeleted" => {
            let facts: UserFacts = event.data().map_err(bad)?;
            Change::AuthorDeleted {
                user_id: facts.user_id,
                username: facts.username,
            }
        }
        "PostPublished" => {
            let facts: PostFacts = event.data().map_err(bad)?;
            Change::PostPublished(PostRef {
                post_id: facts.post_id,
                author_id: facts.author_id,
            })
        }
        "PostDeleted" => Change::PostDeleted(event.data::<PostFacts>().map_err(bad)?.post_id),
        kind @ ("FollowStarted" | "FollowEnded" | "UserBlocked" | "UserUnblocked") => {
            let facts: EdgeFacts = event.data().map_err(bad)?;
            Change::Pair {
                kind: if kind.starts_with("Follow") {
                    "FOLLOW"
                } else {
                    "BLOCK"
                },
                from: facts.follower_id,
                to: facts.followee_id,
                holds: kind == "FollowStarted" || kind == "UserBlocked",
                seq: facts.seq,
            }
        }
        _ => Change::Nothing,
    })
}

/// The DynamoDB adapter: items `DIR#AUTHOR#<id>`, `DIR#USERNAME#<name>` and
/// `DIR#POST#<id>` (sort key `DIR`) in the host service's table.
#[derive(Debug, Clone)]
pub struct DynamoDirectory {
    pub table: Table,
}

const SK: &str = "DIR";

fn author_pk(user_id: &str) -> String {
    format!("DIR#AUTHOR#{user_id}")
}
fn username_pk(username: &str) -> String {
    format!("DIR#USERNAME#{}", username.to_ascii_lowercase())
}
fn post_pk(post_id: &str) -> String {
    format!("DIR#POST#{post_id}")
}
fn pair_pk(kind: &str, from: &str, to: &str) -> String {
    format!("DIR#{kind}#{from}#{to}")
}

#[derive(Debug, Deserialize)]
struct UsernameEntry {
    user_id: String,
}

impl DynamoDirectory {
    async fn live<T: serde::de::DeserializeOwned>(&self, pk: &str) -> Result<Option<T>, ApiError> {
        let Some(item) = self.table.get::<serde_json::Value>(pk, SK).await? else {
            return Ok(None);
        };
        if item.get("deleted").and_then(serde_json::Value::as_bool) == Some(true) {
            return Ok(None);
        }
        serde_json::from_value(item)
            .map(Some)
            .map_err(ApiError::internal)
    }

    /// Writes `value` at `pk` unless a tombstone is there (or, with `only_new`, anything).
    async fn put<T: Serialize>(&self, pk: &str, value: &T, only_new: bool) -> Result<(), ApiError> {
        let mut item = to_item(value)?;
        item.insert("pk".to_owned(), s(pk));
        item.insert("sk".to_owned(), s(SK));
        let condition = if only_new {
            "attribute_not_exists(pk)"
        } else {
            "attribute_not_exists(pk) OR attribute_not_exists(deleted)"
        };
        let req = self
            .table
            .client
            .put_item()
            .table_name(&self.table.name)
            .set_item(Some(item))
            .condition_expression(condition);
        match req.send().await {
            Ok(_) => Ok(()),
            // Already there (or deleted): applying the event again changes nothing.
            Err(e)
                if e.as_service_error()
                    .is_some_and(|se| se.is_conditional_check_failed_exception()) =>
            {
                Ok(())
            }
            Err(e) => Err(ApiError::internal(e)),
        }
    }

    async fn tombstone(&self, pk: &str) -> Result<(), ApiError> {
        self.table
            .client
            .put_item()
            .table_name(&self.table.name)
            .item("pk", s(pk))
            .item("sk", s(SK))
            .item(
                "deleted",
                shutter_store::dynamodb::types::AttributeValue::Bool(true),
            )
            .item(
                "ttl",
                n(shutter_store::epoch_seconds() + TOMBSTONE_TTL_SECONDS),
            )
            .send()
            .await
            .map(|_| ())
            .map_err(ApiError::internal)
    }
}

#[async_trait]
impl Directory for DynamoDirectory {
    async fn author(&self, user_id: &str) -> Result<Option<Author>, ApiError> {
        self.live(&author_pk(user_id)).await
    }

    async fn author_by_username(&self, username: &str) -> Result<Option<Author>, ApiError> {
        match self.live::<UsernameEntry>(&username_pk(username)).await? {
            Some(entry) => self.author(&entry.user_id).await,
            None => Ok(None),
        }
    }

    async fn post(&self, post_id: &str) -> Result<Option<PostRef>, ApiError> {
        self.live(&post_pk(post_id)).await
    }

    async fn apply(&self, event: &Envelope) -> Result<(), ApiError> {
        match change_of(event)? {
            Change::AuthorRegistered(author) => {
                self.put(
                    &username_pk(&author.username),
                    &serde_json::json!({"user_id": author.user_id}),
                    false,
                )
                .await?;
                self.put(&author_pk(&author.user_id), &author, true).await
            }
            Change::AuthorUpdated(author) => {
                self.put(
                    &username_pk(&author.username),
                    &serde_json::json!({"user_id": author.user_id}),
                    false,
                )
                .await?;
                self.put(&author_pk(&author.user_id), &author, false).await
            }
            Change::AuthorDeleted { user_id, username } => {
                self.tombstone(&author_pk(&user_id)).await?;
                self.tombstone(&username_pk(&username)).await
            }
            Change::PostPublished(post) => self.put(&post_pk(&post.post_id), &post, false).await,
            Change::PostDeleted(post_id) => self.tombstone(&post_pk(&post_id)).await,
            Change::Pair {
                kind,
                from,
                to,
                holds,
                seq,
            } => {
                use shutter_store::dynamodb::types::AttributeValue;
                let req = self
                    .table
                    .client
                    .put_item()
                    .table_name(&self.table.name)
                    .item("pk", s(pair_pk(kind, &from, &to)))
                    .item("sk", s(SK))
                    .item("holds", AttributeValue::Bool(holds))
                    .item("seq", n(seq))
                    // Only a newer change of the pair replaces an older one.
                    .condition_expression("attribute_not_exists(pk) OR seq < :seq")
                    .expression_attribute_values(":seq", n(seq));
                match req.send().await {
                    Ok(_) => Ok(()),
                    Err(e)
                        if e.as_service_error()
                            .is_some_and(|se| se.is_conditional_check_failed_exception()) =>
                    {
                        Ok(())
                    }
                    Err(e) => Err(ApiError::internal(e)),
                }
            }
            Change::Nothing => Ok(()),
        }
    }

    async fn access(&self, viewer: &str, author: &str) -> Result<Access, ApiError> {
        let keys = [
            pair_pk("FOLLOW", viewer, author),
            pair_pk("BLOCK", viewer, author),
            pair_pk("BLOCK", author, viewer),
        ];
        let keys_to_read = keys.iter().map(|pk| shutter_store::key(pk, SK)).collect();
        let (items, _) = self
            .table
            .batch_get_counted(keys_to_read, shutter_store::Consistency::Eventual)
            .await?;
        let holding: Vec<String> = items
            .iter()
            .filter(|item| item.get("holds").and_then(|v| v.as_bool().ok()) == Some(&true))
            .filter_map(|item| item.get("pk").and_then(|v| v.as_s().ok()).cloned())
            .collect();
        Ok(Access {
            follows: holding.contains(&keys[0]),
            blocked: holding.contains(&keys[1]) || holding.contains(&keys[2]),
        })
    }
}

/// (kind, from, to) of a follow or block pair.
type PairKey = (&'static str, String, String);
/// (holds, seq) of a pair.
type PairState = (bool, u64);

/// An in-memory directory for unit tests, with the same rules.
#[derive(Debug, Default)]
pub struct MemoryDirectory {
    authors: Mutex<HashMap<String, Option<Author>>>,
    posts: Mutex<HashMap<String, Option<PostRef>>>,
    pairs: Mutex<HashMap<PairKey, PairState>>,
}

impl MemoryDirectory {
    /// Adds an author directly (test set-up).
    pub fn add_author(&self, author: Author) {
        if let Ok(mut authors) = self.authors.lock() {
            authors.insert(author.user_id.clone(), Some(author));
        }
    }

    /// Adds a published post directly (test set-up).
    pub fn add_post(&self, post: PostRef) {
        if let Ok(mut posts) = self.posts.lock() {
            posts.insert(post.post_id.clone(), Some(post));
        }
    }
}

fn poisoned() -> ApiError {
    ApiError::internal(std::io::Error::other("poisoned lock"))
}

#[async_trait]
impl Directory for MemoryDirectory {
    async fn author(&self, user_id: &str) -> Result<Option<Author>, ApiError> {
        Ok(self
            .authors
            .lock()
            .map_err(|_| poisoned())?
            .get(user_id)
            .cloned()
            .flatten())
    }

    async fn author_by_username(&self, username: &str) -> Result<Option<Author>, ApiError> {
        Ok(self
            .authors
            .lock()
            .map_err(|_| poisoned())?
            .values()
            .flatten()
            .find(|a| a.username.eq_ignore_ascii_case(username))
            .cloned())
    }

    async fn post(&self, post_id: &str) -> Result<Option<PostRef>, ApiError> {
        Ok(self
            .posts
            .lock()
            .map_err(|_| poisoned())?
            .get(post_id)
            .cloned()
            .flatten())
    }

    async fn apply(&self, event: &Envelope) -> Result<(), ApiError> {
        let mut authors = self.authors.lock().map_err(|_| poisoned())?;
        let mut posts = self.posts.lock().map_err(|_| poisoned())?;
        match change_of(event)? {
            Change::AuthorRegistered(a) => {
                authors.entry(a.user_id.clone()).or_insert(Some(a));
            }
            Change::AuthorUpdated(a) => {
                if let Some(slot @ Some(_)) = authors.get_mut(&a.user_id) {
                    *slot = Some(a);
                } else if !authors.contains_key(&a.user_id) {
                    authors.insert(a.user_id.clone(), Some(a));
                }
            }
            Change::AuthorDeleted { user_id, .. } => {
                authors.insert(user_id, None);
            }
            Change::PostPublished(p) => {
                posts.entry(p.post_id.clone()).or_insert(Some(p));
            }
            Change::PostDeleted(id) => {
                posts.insert(id, None);
            }
            Change::Pair {
                kind,
                from,
                to,
                holds,
                seq,
            } => {
                let mut pairs = self.pairs.lock().map_err(|_| poisoned())?;
                let slot = pairs.entry((kind, from, to)).or_insert((false, 0));
                if slot.1 < seq {
                    *slot = (holds, seq);
                }
            }
            Change::Nothing => {}
        }
        Ok(())
    }

    async fn access(&self, viewer: &str, author: &str) -> Result<Access, ApiError> {
        let pairs = self.pairs.lock().map_err(|_| poisoned())?;
        let holds = |kind: &'static str, from: &str, to: &str| {
            pairs
                .get(&(kind, from.to_owned(), to.to_owned()))
                .is_some_and(|p| p.0)
        };
        Ok(Access {
            follows: holds("FOLLOW", viewer, author),
            blocked: holds("BLOCK", viewer, author) || holds("BLOCK", author, viewer),
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn event(kind: &str, data: serde_json::Value) -> Envelope {
        Envelope::new(kind, "agg", None, "corr", &data)
    }

    fn viewer(id: &str) -> Viewer<'_> {
        Viewer {
            user_id: id,
            staff: false,
        }
    }

    #[tokio::test]
    async fn a_private_authors_posts_are_seen_by_the_author_and_staff_only() {
        let dir = MemoryDirectory::default();
        dir.apply(&event(
            "UserRegistered",
            serde_json::json!({"user_id": "u1", "username": "ann"}),
        ))
        .await
        .unwrap();
        dir.apply(&event(
            "PostPublished",
            serde_json::json!({"post_id": "p1", "author_id": "u1"}),
        ))
        .await
        .unwrap();
        assert!(visible_post(&dir, "p1", viewer("u2")).await.is_ok());
        dir.apply(&event("ProfileUpdated", serde_json::json!({"user_id": "u1", "username": "ann", "display_name": "Ann", "private": true}))).await.unwrap();
        assert!(matches!(
            visible_post(&dir, "p1", viewer("u2")).await,
            Err(ApiError::NotFound("post"))
        ));
        assert!(visible_post(&dir, "p1", viewer("u1")).await.is_ok());
        assert!(
            visible_post(
                &dir,
                "p1",
                Viewer {
                    user_id: "u3",
                    staff: true
                }
            )
            .await
            .is_ok()
        );
        assert_eq!(
            dir.author_by_username("ANN")
                .await
                .unwrap()
                .unwrap()
                .display_name,
            "Ann"
        );
    }

    #[tokio::test]
    async fn approved_followers_see_a_private_account_and_blocks_hide_both_ways() {
        let dir = MemoryDirectory::default();
        dir.add_author(Author {
            user_id: "u1".into(),
            username: "ann".into(),
            display_name: "Ann".into(),
            private: true,
            avatar_key: None,
        });
        dir.add_post(PostRef {
            post_id: "p1".into(),
            author_id: "u1".into(),
        });
        let edge = |kind: &str, seq: u64| {
            event(
                kind,
                serde_json::json!({"follower_id": "u2", "followee_id": "u1", "seq": seq}),
            )
        };
        assert!(visible_post(&dir, "p1", viewer("u2")).await.is_err());
        dir.apply(&edge("FollowStarted", 2)).await.unwrap();
        assert!(visible_post(&dir, "p1", viewer("u2")).await.is_ok());
        // A late, older event does not undo a newer one.
        dir.apply(&edge("FollowEnded", 1)).await.unwrap();
        assert!(visible_post(&dir, "p1", viewer("u2")).await.is_ok());
        dir.apply(&edge("FollowEnded", 3)).await.unwrap();
        assert!(visible_post(&dir, "p1", viewer("u2")).await.is_err());
        // A block hides a public account's posts both ways.
        dir.add_author(Author {
            user_id: "u1".into(),
            username: "ann".into(),
            display_name: "Ann".into(),
            private: false,
            avatar_key: None,
        });
        assert!(visible_post(&dir, "p1", viewer("u3")).await.is_ok());
        let block = |kind: &str, seq: u64| {
            event(
                kind,
                serde_json::json!({"blocker_id": "u3", "blocked_id": "u1", "seq": seq}),
            )
        };
        dir.apply(&block("UserBlocked", 1)).await.unwrap();
        assert!(visible_post(&dir, "p1", viewer("u3")).await.is_err());
        dir.apply(&block("UserUnblocked", 2)).await.unwrap();
        assert!(visible_post(&dir, "p1", viewer("u3")).await.is_ok());
    }

    #[tokio::test]
    async fn deletions_win_over_late_or_repeated_events() {
        let dir = MemoryDirectory::default();
        let registered = event(
            "UserRegistered",
            serde_json::json!({"user_id": "u1", "username": "ann"}),
        );
        let published = event(
            "PostPublished",
            serde_json::json!({"post_id": "p1", "author_id": "u1"}),
        );
        dir.apply(&registered).await.unwrap();
        dir.apply(&published).await.unwrap();
        dir.apply(&event(
            "PostDeleted",
            serde_json::json!({"post_id": "p1", "author_id": "u1"}),
        ))
        .await
        .unwrap();
        dir.apply(&published).await.unwrap();
        assert_eq!(dir.post("p1").await.unwrap(), None);
        dir.apply(&event(
            "UserDeleted",
            serde_json::json!({"user_id": "u1", "username": "ann"}),
        ))
        .await
        .unwrap();
        dir.apply(&registered).await.unwrap();
        assert_eq!(dir.author("u1").await.unwrap(), None);
    }

    #[test]
    fn events_it_does_not_read_change_nothing_and_bad_payloads_are_4xx() {
        assert_eq!(
            change_of(&event("LikeAdded", serde_json::json!({}))).unwrap(),
            Change::Nothing
        );
        let err =
            change_of(&event("PostPublished", serde_json::json!({"post_id": 1}))).unwrap_err();
        assert!(!err.is_retryable());
    }
}
