//! The comments table port and its adapters.
//!
//! Layout (`pk` / `sk`):
//! - `POST#<post>` / `C#<parent>` a top-level comment, `C#<parent>#R#<reply>` a reply: one
//!   query returns every thread in order, each parent followed by its replies;
//! - `COMMENT#<id>` / `COMMENT` the lookup item (where comment `id` is). A deleted comment
//!   leaves a tombstone there (`deleted`, with a TTL), so a redelivered write cannot
//!   bring it back;
//! - `COMMENT#<id>` / `LIKE#<user>` a like of the comment;
//! - `USER#<author>` / `C#<id>` the author's comments, `USER#<user>` / `L#<id>` the
//!   comments a user likes (both for `UserDeleted`);
//! - `DIR#...` the directory's copy of authors and posts (`shutter-directory`);
//! - `OUTBOX#<event id>` / `OUTBOX` this service's events.

use std::collections::HashSet;

use async_trait::async_trait;
use shutter_core::ApiError;
use shutter_events::legacy::Envelope;

use crate::model::Comment;

/// How a write of a new comment went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inserted {
    Written,
    /// Written before (a redelivered message) or deleted since: nothing changed.
    Duplicate,
    /// The comment it replies to is gone: nothing written.
    ParentGone,
}

/// A deleted comment's tombstone outlives any redelivery of its write (SQS keeps a
/// message 4 days by default, at most 14).
pub const TOMBSTONE_TTL_SECONDS: i64 = 15 * 24 * 3600;

/// What the read-only functions may do.
#[async_trait]
pub trait CommentsReader: Send + Sync {
    /// The live comment with this id.
    async fn comment(&self, id: &str) -> Result<Option<Comment>, ApiError>;
    /// Up to `limit` comments of a post in thread order, after sort key `after`; the sort
    /// key to resume after when there may be more.
    async fn page(
        &self,
        post_id: &str,
        after: Option<&str>,
        limit: u16,
    ) -> Result<(Vec<Comment>, Option<String>), ApiError>;
    /// Which of `comment_ids` `user_id` likes.
    async fn liked_by(
        &self,
        user_id: &str,
        comment_ids: &[String],
    ) -> Result<HashSet<String>, ApiError>;
    /// The replies of a top-level comment.
    async fn replies(&self, parent: &Comment) -> Result<Vec<Comment>, ApiError>;
    /// The ids of the comments `user_id` wrote.
    async fn by_author(&self, user_id: &str) -> Result<Vec<String>, ApiError>;
    /// The ids of the comments `user_id` likes (some may be deleted since).
    async fn liked_comments(&self, user_id: &str) -> Result<Vec<String>, ApiError>;
}

/// Everything else: the writes, each with its event.
#[async_trait]
pub trait CommentsStore: CommentsReader {
    /// Writes a new comment and its event once: a comment id that was ever written (even if
    /// deleted since) is a [`Inserted::Duplicate`]. A reply needs its parent alive.
    async fn insert(&self, comment: &Comment, event: &Envelope) -> Result<Inserted, ApiError>;
    /// Saves the text, hashtags, mentions and `edited_at` of `updated`, if the comment is
    /// still there and still its author's (404 otherwise), with `event`.
    async fn edit(&self, updated: &Comment, event: &Envelope) -> Result<(), ApiError>;
    /// Deletes one comment with its event; false when it was already gone.
    async fn delete(&self, comment: &Comment, event: &Envelope) -> Result<bool, ApiError>;
    /// Adds `user_id`'s like once (true) and counts it; 404 when the comment is gone.
    async fn like(
        &self,
        comment: &Comment,
        user_id: &str,
        event: &Envelope,
    ) -> Result<bool, ApiError>;
    /// Removes `user_id`'s like if there (true) and counts it; 404 when the comment is gone.
    async fn unlike(
        &self,
        comment: &Comment,
        user_id: &str,
        event: &Envelope,
    ) -> Result<bool, ApiError>;
    /// Forgets which comments `user_id` liked (after their likes were taken back).
    async fn forget_likes(&self, user_id: &str) -> Result<(), ApiError>;
    /// Erases every comment of a deleted post (no events: the post is gone). Idempotent.
    async fn purge_post(&self, post_id: &str) -> Result<usize, ApiError>;
}

fn gone() -> ApiError {
    ApiError::NotFound("comment")
}

pub mod dynamo {
    //! The DynamoDB adapter.

    use std::collections::HashMap;
    use std::time::Duration;

    use shutter_events::legacy::outbox_put;
    use shutter_store::dynamodb::types::{
        AttributeValue, ConditionCheck, Delete, DeleteRequest, KeysAndAttributes, Put,
        TransactWriteItem, Update, WriteRequest,
    };
    use shutter_store::{Item, Table, cancellation_reasons, condition_failed_at, n, s, to_item};

    use super::*;
    use crate::COMMENTS_TOPIC;

    #[derive(Debug, Clone)]
    pub struct DynamoCommentsStore {
        pub table: Table,
    }

    fn internal(e: impl std::error::Error + Send + Sync + 'static) -> ApiError {
        ApiError::internal(e)
    }

    fn key(pk: impl Into<String>, sk: impl Into<String>) -> Item {
        HashMap::from([("pk".to_owned(), s(pk)), ("sk".to_owned(), s(sk))])
    }

    fn post_pk(post_id: &str) -> String {
        format!("POST#{post_id}")
    }
    fn lookup_pk(comment_id: &str) -> String {
        format!("COMMENT#{comment_id}")
    }
    const LOOKUP_SK: &str = "COMMENT";
    fn like_sk(user_id: &str) -> String {
        format!("LIKE#{user_id}")
    }
    fn user_pk(user_id: &str) -> String {
        format!("USER#{user_id}")
    }

    fn av<T: serde::Serialize>(v: &T) -> Result<AttributeValue, ApiError> {
        serde_dynamo::to_attribute_value(v).map_err(internal)
    }
    use shutter_store::serde_dynamo;

    /// The lookup item's facts.
    #[derive(Debug, serde::Deserialize)]
    struct Lookup {
        post_id: String,
        comment_sk: String,
        #[serde(default)]
        deleted: bool,
    }

    impl DynamoCommentsStore {
        fn put(&self, item: Item, condition: Option<&str>) -> Result<TransactWriteItem, ApiError> {
            let put = Put::builder()
                .table_name(&self.table.name)
                .set_item(Some(item))
                .set_condition_expression(condition.map(str::to_owned))
                .build()
                .map_err(internal)?;
            Ok(TransactWriteItem::builder().put(put).build())
        }

        fn delete_item(
            &self,
            key: Item,
            condition: Option<&str>,
        ) -> Result<TransactWriteItem, ApiError> {
            let del = Delete::builder()
                .table_name(&self.table.name)
                .set_key(Some(key))
                .set_condition_expression(condition.map(str::to_owned))
                .build()
                .map_err(internal)?;
            Ok(TransactWriteItem::builder().delete(del).build())
        }

        fn count(&self, comment: &Comment, by: i64) -> Result<TransactWriteItem, ApiError> {
            let update = Update::builder()
                .table_name(&self.table.name)
                .set_key(Some(key(post_pk(&comment.post_id), comment.sort_key())))
                .update_expression("ADD like_count :by")
                .condition_expression("attribute_exists(pk)")
                .expression_attribute_values(":by", n(by))
                .build()
                .map_err(internal)?;
            Ok(TransactWriteItem::builder().update(update).build())
        }

        /// Ok(Err(reasons)) when a condition failed. A transaction that lost a race with
        /// another one on the same item (a popular comment's counter) is tried again.
        async fn transact(
            &self,
            items: Vec<TransactWriteItem>,
        ) -> Result<Result<(), Vec<String>>, ApiError> {
            let mut attempt = 0u32;
            loop {
                match self
                    .table
                    .client
                    .transact_write_items()
                    .set_transact_items(Some(items.clone()))
                    .send()
                    .await
                {
                    Ok(_) => return Ok(Ok(())),
                    Err(err) => {
                        let reasons = cancellation_reasons(&err);
                        if reasons.iter().any(|r| r == "ConditionalCheckFailed") {
                            return Ok(Err(reasons));
                        }
                        if attempt < 4 && reasons.iter().any(|r| r == "TransactionConflict") {
                            attempt += 1;
                            tokio::time::sleep(Duration::from_millis(20 << attempt)).await;
                            continue;
                        }
                        return Err(internal(err));
                    }
                }
            }
        }

        async fn query_all(&self, pk: &str, prefix: &str) -> Result<Vec<Item>, ApiError> {
            let mut items = Vec::new();
            let mut start: Option<Item> = None;
            loop {
                let out = self
                    .table
                    .client
                    .query()
                    .table_name(&self.table.name)
                    .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
                    .expression_attribute_values(":pk", s(pk))
                    .expression_attribute_values(":prefix", s(prefix))
                    .consistent_read(true)
                    .set_exclusive_start_key(start.take())
                    .send()
                    .await
                    .map_err(internal)?;
                items.extend(out.items.unwrap_or_default());
                match out.last_evaluated_key {
                    Some(k) if !k.is_empty() => start = Some(k),
                    _ => return Ok(items),
                }
            }
        }

        /// Deletes `keys` in batches of 25, retrying what DynamoDB leaves unprocessed.
        async fn delete_all(&self, keys: Vec<Item>) -> Result<(), ApiError> {
            for chunk in keys.chunks(25) {
                let mut requests: Vec<WriteRequest> = chunk
                    .iter()
                    .map(|k| {
                        DeleteRequest::builder()
                            .set_key(Some(k.clone()))
                            .build()
                            .map(|d| WriteRequest::builder().delete_request(d).build())
                            .map_err(internal)
                    })
                    .collect::<Result<_, _>>()?;
                for attempt in 0..8u32 {
                    if requests.is_empty() {
                        break;
                    }
                    let out = self
                        .table
                        .client
                        .batch_write_item()
                        .request_items(&self.table.name, requests)
                        .send()
                        .await
                        .map_err(internal)?;
                    requests = out
                        .unprocessed_items
                        .and_then(|mut m| m.remove(&self.table.name))
                        .unwrap_or_default();
                    if !requests.is_empty() {
                        tokio::time::sleep(Duration::from_millis(50 << attempt)).await;
                    }
                }
                if !requests.is_empty() {
                    return Err(internal(std::io::Error::other(
                        "batch delete left items unprocessed",
                    )));
                }
            }
            Ok(())
        }
    }

    fn comment_item(c: &Comment) -> Result<Item, ApiError> {
        let mut item = to_item(c)?;
        item.extend(key(post_pk(&c.post_id), c.sort_key()));
        item.insert("author_id".to_owned(), s(&c.author.id));
        Ok(item)
    }

    #[async_trait]
    impl CommentsReader for DynamoCommentsStore {
        async fn comment(&self, id: &str) -> Result<Option<Comment>, ApiError> {
            let Some(lookup) = self.table.get::<Lookup>(&lookup_pk(id), LOOKUP_SK).await? else {
                return Ok(None);
            };
            if lookup.deleted {
                return Ok(None);
            }
            Ok(self
                .table
                .get(&post_pk(&lookup.post_id), &lookup.comment_sk)
                .await?)
        }

        async fn page(
            &self,
            post_id: &str,
            after: Option<&str>,
            limit: u16,
        ) -> Result<(Vec<Comment>, Option<String>), ApiError> {
            let out = self
                .table
                .client
                .query()
                .table_name(&self.table.name)
                .key_condition_expression("pk = :pk AND begins_with(sk, :c)")
                .expression_attribute_values(":pk", s(post_pk(post_id)))
                .expression_attribute_values(":c", s("C#"))
                .set_exclusive_start_key(after.map(|sk| key(post_pk(post_id), sk)))
                .limit(i32::from(limit))
                .consistent_read(true)
                .send()
                .await
                .map_err(internal)?;
            let comments = out
                .items
                .unwrap_or_default()
                .into_iter()
                .map(shutter_store::from_item)
                .collect::<Result<Vec<Comment>, _>>()?;
            let next = out
                .last_evaluated_key
                .and_then(|k| k.get("sk").and_then(|v| v.as_s().ok()).cloned());
            Ok((comments, next))
        }

        async fn liked_by(
            &self,
            user_id: &str,
            comment_ids: &[String],
        ) -> Result<HashSet<String>, ApiError> {
            let mut liked = HashSet::new();
            for chunk in comment_ids.chunks(100) {
                let keys: Vec<Item> = chunk
                    .iter()
                    .map(|id| key(lookup_pk(id), like_sk(user_id)))
                    .collect();
                let mut pending = Some(
                    KeysAndAttributes::builder()
                        .set_keys(Some(keys))
                        .projection_expression("pk")
                        .consistent_read(true)
                        .build()
                        .map_err(internal)?,
                );
                let mut attempt = 0u32;
                while let Some(request) = pending.take() {
                    let out = self
                        .table
                        .client
                        .batch_get_item()
                        .request_items(&self.table.name, request)
                        .send()
                        .await
                        .map_err(internal)?;
                    for item in out
                        .responses
                        .and_then(|mut r| r.remove(&self.table.name))
                        .unwrap_or_default()
                    {
                        if let Some(Ok(pk)) = item.get("pk").map(|v| v.as_s()) {
                            liked.insert(pk.trim_start_matches("COMMENT#").to_owned());
                        }
                    }
                    pending = out
                        .unprocessed_keys
                        .and_then(|mut u| u.remove(&self.table.name))
                        .filter(|k| !k.keys.is_empty());
                    if pending.is_some() {
                        attempt += 1;
                        if attempt > 8 {
                            return Err(internal(std::io::Error::other(
                                "batch get left keys unprocessed",
                            )));
                        }
                        tokio::time::sleep(Duration::from_millis(50 << attempt)).await;
                    }
                }
            }
            Ok(liked)
        }

        async fn replies(&self, parent: &Comment) -> Result<Vec<Comment>, ApiError> {
            self.query_all(
                &post_pk(&parent.post_id),
                &format!("C#{}#R#", parent.thread()),
            )
            .await?
            .into_iter()
            .map(|item| shutter_store::from_item(item).map_err(ApiError::from))
            .collect()
        }

        async fn by_author(&self, user_id: &str) -> Result<Vec<String>, ApiError> {
            Ok(self
                .query_all(&user_pk(user_id), "C#")
                .await?
                .into_iter()
                .filter_map(|item| {
                    Some(
                        item.get("sk")?
                            .as_s()
                            .ok()?
                            .trim_start_matches("C#")
                            .to_owned(),
                    )
                })
                .collect())
        }

        async fn liked_comments(&self, user_id: &str) -> Result<Vec<String>, ApiError> {
            Ok(self
                .query_all(&user_pk(user_id), "L#")
                .await?
                .into_iter()
                .filter_map(|item| {
                    Some(
                        item.get("sk")?
                            .as_s()
                            .ok()?
                            .trim_start_matches("L#")
                            .to_owned(),
                    )
                })
                .collect())
        }
    }

    #[async_trait]
    impl CommentsStore for DynamoCommentsStore {
        async fn insert(&self, c: &Comment, event: &Envelope) -> Result<Inserted, ApiError> {
            let mut lookup = key(lookup_pk(&c.id), LOOKUP_SK);
            lookup.insert("post_id".to_owned(), s(&c.post_id));
            lookup.insert("comment_sk".to_owned(), s(c.sort_key()));
            lookup.insert("author_id".to_owned(), s(&c.author.id));
            let mut by_author = key(user_pk(&c.author.id), format!("C#{}", c.id));
            by_author.insert("post_id".to_owned(), s(&c.post_id));
            let mut items = vec![
                self.put(lookup, Some("attribute_not_exists(pk)"))?,
                self.put(comment_item(c)?, Some("attribute_not_exists(pk)"))?,
                self.put(by_author, None)?,
                outbox_put(&self.table.name, COMMENTS_TOPIC, event),
            ];
            if let Some(parent) = &c.reply_to {
                let check = ConditionCheck::builder()
                    .table_name(&self.table.name)
                    .set_key(Some(key(lookup_pk(parent), LOOKUP_SK)))
                    .condition_expression("attribute_exists(pk) AND attribute_not_exists(deleted) AND post_id = :post")
                    .expression_attribute_values(":post", s(&c.post_id))
                    .build()
                    .map_err(internal)?;
                items.push(TransactWriteItem::builder().condition_check(check).build());
            }
            match self.transact(items).await? {
                Ok(()) => Ok(Inserted::Written),
                Err(r) if condition_failed_at(&r, 0) || condition_failed_at(&r, 1) => {
                    Ok(Inserted::Duplicate)
                }
                Err(r) if condition_failed_at(&r, 4) => Ok(Inserted::ParentGone),
                Err(r) => Err(internal(std::io::Error::other(format!(
                    "comment write cancelled: {r:?}"
                )))),
            }
        }

        async fn edit(&self, updated: &Comment, event: &Envelope) -> Result<(), ApiError> {
            let update = Update::builder()
                .table_name(&self.table.name)
                .set_key(Some(key(post_pk(&updated.post_id), updated.sort_key())))
                .update_expression(
                    "SET #text = :text, hashtags = :tags, mentions = :mentions, edited_at = :at",
                )
                .condition_expression("attribute_exists(pk) AND author_id = :author")
                .expression_attribute_names("#text", "text")
                .expression_attribute_values(":text", s(&updated.text))
                .expression_attribute_values(":tags", av(&updated.hashtags)?)
                .expression_attribute_values(":mentions", av(&updated.mentions)?)
                .expression_attribute_values(
                    ":at",
                    av(&updated.edited_at.clone().unwrap_or_default())?,
                )
                .expression_attribute_values(":author", s(&updated.author.id))
                .build()
                .map_err(internal)?;
            let items = vec![
                TransactWriteItem::builder().update(update).build(),
                outbox_put(&self.table.name, COMMENTS_TOPIC, event),
            ];
            self.transact(items).await?.map_err(|_| gone())
        }

        async fn delete(&self, c: &Comment, event: &Envelope) -> Result<bool, ApiError> {
            let mut tombstone = key(lookup_pk(&c.id), LOOKUP_SK);
            tombstone.insert("post_id".to_owned(), s(&c.post_id));
            tombstone.insert("comment_sk".to_owned(), s(c.sort_key()));
            tombstone.insert("deleted".to_owned(), AttributeValue::Bool(true));
            tombstone.insert(
                "ttl".to_owned(),
                n(shutter_store::epoch_seconds() + TOMBSTONE_TTL_SECONDS),
            );
            let items = vec![
                self.delete_item(
                    key(post_pk(&c.post_id), c.sort_key()),
                    Some("attribute_exists(pk)"),
                )?,
                self.put(tombstone, None)?,
                self.delete_item(key(user_pk(&c.author.id), format!("C#{}", c.id)), None)?,
                outbox_put(&self.table.name, COMMENTS_TOPIC, event),
            ];
            match self.transact(items).await? {
                Ok(()) => {}
                Err(r) if condition_failed_at(&r, 0) => return Ok(false),
                Err(r) => {
                    return Err(internal(std::io::Error::other(format!(
                        "comment delete cancelled: {r:?}"
                    ))));
                }
            }
            // Its likes go too (best effort: they are invisible once the comment is gone).
            let likes: Vec<Item> = self
                .query_all(&lookup_pk(&c.id), "LIKE#")
                .await?
                .into_iter()
                .filter_map(|item| {
                    let sk = item.get("sk")?.as_s().ok()?.clone();
                    Some(key(lookup_pk(&c.id), sk))
                })
                .collect();
            self.delete_all(likes).await?;
            Ok(true)
        }

        async fn like(
            &self,
            c: &Comment,
            user_id: &str,
            event: &Envelope,
        ) -> Result<bool, ApiError> {
            let mut like = key(lookup_pk(&c.id), like_sk(user_id));
            like.insert("post_id".to_owned(), s(&c.post_id));
            like.insert("created_at".to_owned(), s(shutter_core::now_rfc3339()));
            let mut liked = key(user_pk(user_id), format!("L#{}", c.id));
            liked.insert("post_id".to_owned(), s(&c.post_id));
            let items = vec![
                self.put(like, Some("attribute_not_exists(pk)"))?,
                self.count(c, 1)?,
                outbox_put(&self.table.name, COMMENTS_TOPIC, event),
                self.put(liked, None)?,
            ];
            match self.transact(items).await? {
                Ok(()) => Ok(true),
                Err(r) if condition_failed_at(&r, 1) => Err(gone()),
                Err(_) => Ok(false),
            }
        }

        async fn unlike(
            &self,
            c: &Comment,
            user_id: &str,
            event: &Envelope,
        ) -> Result<bool, ApiError> {
            let items = vec![
                self.delete_item(
                    key(lookup_pk(&c.id), like_sk(user_id)),
                    Some("attribute_exists(pk)"),
                )?,
                self.count(c, -1)?,
                outbox_put(&self.table.name, COMMENTS_TOPIC, event),
                self.delete_item(key(user_pk(user_id), format!("L#{}", c.id)), None)?,
            ];
            match self.transact(items).await? {
                Ok(()) => Ok(true),
                Err(r) if condition_failed_at(&r, 1) => Err(gone()),
                Err(_) => Ok(false),
            }
        }

        async fn forget_likes(&self, user_id: &str) -> Result<(), ApiError> {
            let keys = self
                .liked_comments(user_id)
                .await?
                .into_iter()
                .map(|id| key(user_pk(user_id), format!("L#{id}")))
                .collect();
            self.delete_all(keys).await
        }

        async fn purge_post(&self, post_id: &str) -> Result<usize, ApiError> {
            let comments: Vec<Comment> = self
                .query_all(&post_pk(post_id), "C#")
                .await?
                .into_iter()
                .map(shutter_store::from_item)
                .collect::<Result<_, _>>()?;
            let mut keys = Vec::new();
            for c in &comments {
                keys.push(key(user_pk(&c.author.id), format!("C#{}", c.id)));
                keys.push(key(lookup_pk(&c.id), LOOKUP_SK));
                for like in self.query_all(&lookup_pk(&c.id), "LIKE#").await? {
                    if let Some(Ok(sk)) = like.get("sk").map(|v| v.as_s()) {
                        keys.push(key(lookup_pk(&c.id), sk.clone()));
                    }
                }
            }
            // The comments last, so a retry after a partial failure finds the rest.
            keys.extend(comments.iter().map(|c| key(post_pk(post_id), c.sort_key())));
            self.delete_all(keys).await?;
            Ok(comments.len())
        }
    }
}

pub mod memory {
    //! An in-memory [`CommentsStore`] with the same conditions, for unit tests.

    use std::collections::{BTreeMap, HashMap};
    use std::sync::{Mutex, MutexGuard};

    use super::*;

    #[derive(Debug, Default)]
    pub struct MemoryCommentsStore {
        state: Mutex<State>,
    }

    #[derive(Debug, Default)]
    struct State {
        /// (post, sort key) -> comment
        comments: BTreeMap<(String, String), Comment>,
        /// comment id -> (post, sort key), or None when deleted (tombstone)
        lookups: HashMap<String, Option<(String, String)>>,
        likes: HashSet<(String, String)>,
        events: Vec<Envelope>,
    }

    impl MemoryCommentsStore {
        fn state(&self) -> MutexGuard<'_, State> {
            self.state.lock().unwrap_or_else(|e| e.into_inner())
        }

        pub fn events(&self) -> Vec<Envelope> {
            self.state().events.clone()
        }

        pub fn comment_count(&self) -> usize {
            self.state().comments.len()
        }

        /// Stores a comment directly (test set-up), without an event.
        pub fn add(&self, c: &Comment) {
            let mut st = self.state();
            let at = (c.post_id.clone(), c.sort_key());
            st.lookups.insert(c.id.clone(), Some(at.clone()));
            st.comments.insert(at, c.clone());
        }
    }

    fn at(c: &Comment) -> (String, String) {
        (c.post_id.clone(), c.sort_key())
    }

    #[async_trait]
    impl CommentsReader for MemoryCommentsStore {
        async fn comment(&self, id: &str) -> Result<Option<Comment>, ApiError> {
            let st = self.state();
            Ok(st
                .lookups
                .get(id)
                .cloned()
                .flatten()
                .and_then(|k| st.comments.get(&k).cloned()))
        }

        async fn page(
            &self,
            post_id: &str,
            after: Option<&str>,
            limit: u16,
        ) -> Result<(Vec<Comment>, Option<String>), ApiError> {
            let st = self.state();
            let mut page: Vec<Comment> = st
                .comments
                .iter()
                .filter(|((post, sk), _)| post == post_id && after.is_none_or(|a| sk.as_str() > a))
                .map(|(_, c)| c.clone())
                .take(usize::from(limit) + 1)
                .collect();
            let more = page.len() > usize::from(limit);
            page.truncate(usize::from(limit));
            let next = if more {
                page.last().map(Comment::sort_key)
            } else {
                None
            };
            Ok((page, next))
        }

        async fn liked_by(
            &self,
            user_id: &str,
            comment_ids: &[String],
        ) -> Result<HashSet<String>, ApiError> {
            let st = self.state();
            Ok(comment_ids
                .iter()
                .filter(|id| st.likes.contains(&((*id).clone(), user_id.to_owned())))
                .cloned()
                .collect())
        }

        async fn replies(&self, parent: &Comment) -> Result<Vec<Comment>, ApiError> {
            Ok(self
                .state()
                .comments
                .values()
                .filter(|c| c.reply_to.as_deref() == Some(parent.id.as_str()))
                .cloned()
                .collect())
        }

        async fn by_author(&self, user_id: &str) -> Result<Vec<String>, ApiError> {
            Ok(self
                .state()
                .comments
                .values()
                .filter(|c| c.author.id == user_id)
                .map(|c| c.id.clone())
                .collect())
        }

        async fn liked_comments(&self, user_id: &str) -> Result<Vec<String>, ApiError> {
            Ok(self
                .state()
                .likes
                .iter()
                .filter(|(_, u)| u == user_id)
                .map(|(c, _)| c.clone())
                .collect())
        }
    }

    #[async_trait]
    impl CommentsStore for MemoryCommentsStore {
        async fn insert(&self, c: &Comment, event: &Envelope) -> Result<Inserted, ApiError> {
            let mut st = self.state();
            if st.lookups.contains_key(&c.id) {
                return Ok(Inserted::Duplicate);
            }
            if let Some(parent) = &c.reply_to {
                let alive =
                    matches!(st.lookups.get(parent), Some(Some((post, _))) if *post == c.post_id);
                if !alive {
                    return Ok(Inserted::ParentGone);
                }
            }
            st.lookups.insert(c.id.clone(), Some(at(c)));
            st.comments.insert(at(c), c.clone());
            st.events.push(event.clone());
            Ok(Inserted::Written)
        }

        async fn edit(&self, updated: &Comment, event: &Envelope) -> Result<(), ApiError> {
            let mut st = self.state();
            let current = st.comments.get_mut(&at(updated)).ok_or_else(gone)?;
            if current.author.id != updated.author.id {
                return Err(gone());
            }
            current.text = updated.text.clone();
            current.hashtags = updated.hashtags.clone();
            current.mentions = updated.mentions.clone();
            current.edited_at = updated.edited_at.clone();
            st.events.push(event.clone());
            Ok(())
        }

        async fn delete(&self, c: &Comment, event: &Envelope) -> Result<bool, ApiError> {
            let mut st = self.state();
            if st.comments.remove(&at(c)).is_none() {
                return Ok(false);
            }
            st.lookups.insert(c.id.clone(), None);
            st.likes.retain(|(id, _)| *id != c.id);
            st.events.push(event.clone());
            Ok(true)
        }

        async fn like(
            &self,
            c: &Comment,
            user_id: &str,
            event: &Envelope,
        ) -> Result<bool, ApiError> {
            let mut st = self.state();
            if !st.comments.contains_key(&at(c)) {
                return Err(gone());
            }
            if !st.likes.insert((c.id.clone(), user_id.to_owned())) {
                return Ok(false);
            }
            if let Some(stored) = st.comments.get_mut(&at(c)) {
                stored.like_count += 1;
            }
            st.events.push(event.clone());
            Ok(true)
        }

        async fn unlike(
            &self,
            c: &Comment,
            user_id: &str,
            event: &Envelope,
        ) -> Result<bool, ApiError> {
            let mut st = self.state();
            if !st.comments.contains_key(&at(c)) {
                return Err(gone());
            }
            if !st.likes.remove(&(c.id.clone(), user_id.to_owned())) {
                return Ok(false);
            }
            if let Some(stored) = st.comments.get_mut(&at(c)) {
                stored.like_count = stored.like_count.saturating_sub(1);
            }
            st.events.push(event.clone());
            Ok(true)
        }

        async fn forget_likes(&self, user_id: &str) -> Result<(), ApiError> {
            self.state().likes.retain(|(_, u)| u != user_id);
            Ok(())
        }

        async fn purge_post(&self, post_id: &str) -> Result<usize, ApiError> {
            let mut st = self.state();
            let before = st.comments.len();
            st.comments.retain(|(post, _), _| post != post_id);
            Ok(before - st.comments.len())
        }
    }
}
