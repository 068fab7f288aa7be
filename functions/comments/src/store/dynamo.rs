//! The DynamoDB adapter: keys, items and conditions of the layout in [`super`], sent
//! through `shutter_store::Table`.

use std::collections::HashSet;

use async_trait::async_trait;
use serde::Deserialize;
use shutter_core::{CommentId, PostId, UserId};
use shutter_events::{Envelope, outbox_write};
use shutter_store::{
    AttributeValue, Item, Query, StoreError, StoreResult, Table, Write, from_item, key, n, s,
    string_attr, to_item,
};

use super::{
    ACCOUNT_DELETED, ALREADY_LIKED, COMMENT_EXISTS, COMMENT_GONE, Claimed, CommentsReader,
    CommentsStore, IDEMPOTENCY_TTL_SECONDS, Idempotency, IdempotencyKeys, KEY_REUSED, NOT_LIKED,
    NOTHING_TO_REMOVE, PARENT_GONE, TOMBSTONE_TTL_SECONDS, sort_key,
};
use crate::model::{Comment, Removal};

#[derive(Debug, Clone)]
pub struct DynamoCommentsStore {
    pub table: Table,
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
fn authored_sk(comment_id: &str) -> String {
    format!("C#{comment_id}")
}
fn liked_sk(comment_id: &str) -> String {
    format!("L#{comment_id}")
}
fn idempotency_pk(author: &str, key: &str) -> String {
    format!("IDEMPOTENCY#{author}#{key}")
}
const IDEMPOTENCY_SK: &str = "IDEMPOTENCY";
/// Adapter-internal: the key was claimed before (resolved into a replay or
/// [`KEY_REUSED`] before it leaves the adapter).
const KEY_USED: &str = "idempotency_key_used";

fn av<T: serde::Serialize>(v: &T) -> StoreResult<AttributeValue> {
    shutter_store::serde_dynamo::to_attribute_value(v).map_err(StoreError::corrupt)
}

/// The lookup item's facts.
#[derive(Debug, Deserialize)]
struct Lookup {
    post_id: String,
    comment_sk: String,
    #[serde(default)]
    deleted: bool,
}

fn comment_item(c: &Comment) -> StoreResult<Item> {
    let mut item = to_item(c)?;
    item.extend(key(post_pk(&c.post_id), sort_key(c)));
    item.insert("author_id".to_owned(), s(c.author.id.as_str()));
    Ok(item)
}

/// The like counter of `c` moved by `by`, if the comment is still there.
fn count(c: &Comment, by: i64) -> Write {
    Write::update(key(post_pk(&c.post_id), sort_key(c)), "ADD like_count :by")
        .if_present(COMMENT_GONE)
        .value(":by", n(by))
}

/// The ids after `prefix` in the sort keys of `items`.
fn ids_after(items: Vec<Item>, prefix: &str) -> Vec<CommentId> {
    items
        .iter()
        .filter_map(|item| string_attr(item, "sk")?.strip_prefix(prefix))
        .map(CommentId::trusted)
        .collect()
}

impl DynamoCommentsStore {
    /// Up to `limit` ids of one of a user's indexes (`prefix` `C#` or `L#`), in id order,
    /// after `after`.
    async fn user_index(
        &self,
        user_id: &UserId,
        prefix: &str,
        after: Option<&CommentId>,
        limit: usize,
    ) -> StoreResult<Vec<CommentId>> {
        // Beyond the prefix itself (or the last id read): the index's items, then any of
        // the next prefix's, which are cut off.
        let start = format!("{prefix}{}", after.map_or("", CommentId::as_str));
        let query = Query::partition(user_pk(user_id))
            .after(Some(start.as_str()))
            .limit(limit);
        let items = self.table.query(&query).await?;
        let ours = items
            .into_iter()
            .take_while(|item| string_attr(item, "sk").is_some_and(|sk| sk.starts_with(prefix)))
            .collect();
        Ok(ids_after(ours, prefix))
    }

    /// The keys of every like of comment `id`.
    async fn like_keys(&self, id: &str) -> StoreResult<Vec<Item>> {
        let pk = lookup_pk(id);
        let likes = self
            .table
            .query_all(&Query::partition(&pk).prefix("LIKE#"))
            .await?;
        Ok(likes
            .iter()
            .filter_map(|item| string_attr(item, "sk"))
            .map(|sk| key(&pk, sk))
            .collect())
    }
}

#[async_trait]
impl CommentsReader for DynamoCommentsStore {
    async fn comment(&self, id: &CommentId) -> StoreResult<Option<Comment>> {
        let Some(lookup) = self.table.get::<Lookup>(&lookup_pk(id), LOOKUP_SK).await? else {
            return Ok(None);
        };
        if lookup.deleted {
            return Ok(None);
        }
        self.table
            .get(&post_pk(&lookup.post_id), &lookup.comment_sk)
            .await
    }

    async fn page(
        &self,
        post_id: &PostId,
        after: Option<&str>,
        limit: u16,
    ) -> StoreResult<(Vec<Comment>, Option<String>)> {
        let pk = post_pk(post_id);
        // DynamoDB resumes from the last key it returned: the position is that sort key.
        let query = Query::partition(&pk).prefix("C#").limit(usize::from(limit));
        let (items, next) = self
            .table
            .query_from(&query, after.map(|sk| key(&pk, sk)))
            .await?;
        let comments = items
            .into_iter()
            .map(from_item)
            .collect::<StoreResult<Vec<Comment>>>()?;
        let next = next.and_then(|k| string_attr(&k, "sk").map(str::to_owned));
        Ok((comments, next))
    }

    async fn liked_by(
        &self,
        user_id: &UserId,
        comment_ids: &[CommentId],
    ) -> StoreResult<HashSet<CommentId>> {
        let keys = comment_ids
            .iter()
            .map(|id| key(lookup_pk(id), like_sk(user_id)))
            .collect();
        Ok(self
            .table
            .batch_get(keys)
            .await?
            .iter()
            .filter_map(|item| string_attr(item, "pk")?.strip_prefix("COMMENT#"))
            .map(CommentId::trusted)
            .collect())
    }

    async fn replies(&self, parent: &Comment) -> StoreResult<Vec<Comment>> {
        let query =
            Query::partition(post_pk(&parent.post_id)).prefix(format!("C#{}#R#", parent.thread()));
        self.table
            .query_all(&query)
            .await?
            .into_iter()
            .map(from_item)
            .collect()
    }

    async fn by_author(
        &self,
        user_id: &UserId,
        after: Option<&CommentId>,
        limit: usize,
    ) -> StoreResult<Vec<CommentId>> {
        self.user_index(user_id, "C#", after, limit).await
    }

    async fn liked_comments(
        &self,
        user_id: &UserId,
        after: Option<&CommentId>,
        limit: usize,
    ) -> StoreResult<Vec<CommentId>> {
        self.user_index(user_id, "L#", after, limit).await
    }
}

#[async_trait]
impl CommentsStore for DynamoCommentsStore {
    async fn insert(&self, c: &Comment, event: &Envelope) -> StoreResult<()> {
        let mut lookup = key(lookup_pk(&c.id), LOOKUP_SK);
        lookup.insert("post_id".to_owned(), s(c.post_id.as_str()));
        lookup.insert("comment_sk".to_owned(), s(sort_key(c)));
        lookup.insert("author_id".to_owned(), s(c.author.id.as_str()));
        let mut by_author = key(user_pk(&c.author.id), authored_sk(&c.id));
        by_author.insert("post_id".to_owned(), s(c.post_id.as_str()));
        // The lookup first: a redelivery is told by its id before anything else.
        let mut writes = vec![
            Write::put(lookup).if_absent(COMMENT_EXISTS),
            Write::put(comment_item(c)?).if_absent(COMMENT_EXISTS),
            shutter_directory::account_alive(&c.author.id, ACCOUNT_DELETED),
            Write::put(by_author),
            outbox_write(event)?,
        ];
        if let Some(parent) = &c.reply_to {
            writes.push(
                Write::check(
                    key(lookup_pk(parent), LOOKUP_SK),
                    PARENT_GONE,
                    "attribute_exists(pk) AND attribute_not_exists(deleted) AND post_id = :post",
                )
                .value(":post", s(c.post_id.as_str())),
            );
        }
        self.table.transact(writes).await
    }

    async fn edit(&self, updated: &Comment, event: &Envelope) -> StoreResult<()> {
        let update = Write::update(
            key(post_pk(&updated.post_id), sort_key(updated)),
            "SET #text = :text, hashtags = :tags, mentions = :mentions, edited_at = :at",
        )
        .when(COMMENT_GONE, "attribute_exists(pk) AND author_id = :author")
        .name("#text", "text")
        .value(":text", s(&updated.text))
        .value(":tags", av(&updated.hashtags)?)
        .value(":mentions", av(&updated.mentions)?)
        .value(":at", av(&updated.edited_at.clone().unwrap_or_default())?)
        .value(":author", s(updated.author.id.as_str()));
        let alive = shutter_directory::account_alive(&updated.author.id, ACCOUNT_DELETED);
        self.table
            .transact(vec![update, alive, outbox_write(event)?])
            .await
    }

    async fn remove(&self, id: &CommentId, removal: &Removal) -> StoreResult<()> {
        let Some(lookup) = self.table.get::<Lookup>(&lookup_pk(id), LOOKUP_SK).await? else {
            return Err(StoreError::Conflict(NOTHING_TO_REMOVE));
        };
        if lookup.deleted {
            return Err(StoreError::Conflict(NOTHING_TO_REMOVE));
        }
        // The first removal stands: a redelivered or second one changes nothing.
        let update = Write::update(
            key(post_pk(&lookup.post_id), &lookup.comment_sk),
            "SET removed = :removal",
        )
        .when(
            NOTHING_TO_REMOVE,
            "attribute_exists(pk) AND attribute_not_exists(removed)",
        )
        .value(":removal", av(removal)?);
        self.table.write(update).await
    }

    async fn delete(&self, c: &Comment, event: &Envelope) -> StoreResult<()> {
        let mut tombstone = key(lookup_pk(&c.id), LOOKUP_SK);
        tombstone.insert("post_id".to_owned(), s(c.post_id.as_str()));
        tombstone.insert("comment_sk".to_owned(), s(sort_key(c)));
        tombstone.insert("deleted".to_owned(), AttributeValue::Bool(true));
        tombstone.insert(
            "ttl".to_owned(),
            n(shutter_store::epoch_seconds() + TOMBSTONE_TTL_SECONDS),
        );
        let writes = vec![
            Write::delete(key(post_pk(&c.post_id), sort_key(c))).if_present(COMMENT_GONE),
            Write::put(tombstone),
            Write::delete(key(user_pk(&c.author.id), authored_sk(&c.id))),
            outbox_write(event)?,
        ];
        self.table.transact(writes).await?;
        // Its likes go too (best effort: they are invisible once the comment is gone).
        let likes = self.like_keys(&c.id).await?;
        self.table.batch_delete(likes).await
    }

    async fn like(&self, c: &Comment, user_id: &UserId, event: &Envelope) -> StoreResult<()> {
        let mut like = key(lookup_pk(&c.id), like_sk(user_id));
        like.insert("post_id".to_owned(), s(c.post_id.as_str()));
        like.insert("created_at".to_owned(), s(shutter_core::now_rfc3339()));
        let mut liked = key(user_pk(user_id), liked_sk(&c.id));
        liked.insert("post_id".to_owned(), s(c.post_id.as_str()));
        // The counter first: a comment that is gone says so before a like left behind.
        // The liker's tombstone refuses the like: the deletion cascade, which erases the
        // account's likes after writing it, would never see one written later.
        let writes = vec![
            count(c, 1),
            Write::put(like).if_absent(ALREADY_LIKED),
            shutter_directory::account_alive(user_id, ACCOUNT_DELETED),
            outbox_write(event)?,
            Write::put(liked),
        ];
        self.table.transact(writes).await
    }

    async fn unlike(&self, c: &Comment, user_id: &UserId, event: &Envelope) -> StoreResult<()> {
        let writes = vec![
            count(c, -1),
            Write::delete(key(lookup_pk(&c.id), like_sk(user_id))).if_present(NOT_LIKED),
            outbox_write(event)?,
            Write::delete(key(user_pk(user_id), liked_sk(&c.id))),
        ];
        self.table.transact(writes).await
    }

    async fn forget_like(&self, user_id: &UserId, id: &CommentId) -> StoreResult<()> {
        self.table
            .write(Write::delete(key(user_pk(user_id), liked_sk(id))))
            .await
    }

    async fn purge_post(&self, post_id: &PostId, limit: usize) -> StoreResult<usize> {
        // What is erased is gone: each call takes the first comments left.
        let comments: Vec<Comment> = self
            .table
            .query(&Query::partition(post_pk(post_id)).prefix("C#").limit(limit))
            .await?
            .into_iter()
            .map(from_item)
            .collect::<StoreResult<_>>()?;
        let mut keys = Vec::new();
        for c in &comments {
            keys.push(key(user_pk(&c.author.id), authored_sk(&c.id)));
            keys.push(key(lookup_pk(&c.id), LOOKUP_SK));
            keys.extend(self.like_keys(&c.id).await?);
        }
        // The comments last, so a retry after a partial failure finds the rest.
        keys.extend(comments.iter().map(|c| key(post_pk(post_id), sort_key(c))));
        self.table.batch_delete(keys).await?;
        Ok(comments.len())
    }
}

#[async_trait]
impl IdempotencyKeys for DynamoCommentsStore {
    async fn claim(
        &self,
        author: &UserId,
        idempotency: &Idempotency,
        comment: &Comment,
    ) -> StoreResult<Claimed> {
        let pk = idempotency_pk(author, &idempotency.key);
        let mut item = key(&pk, IDEMPOTENCY_SK);
        item.insert("request_hash".to_owned(), s(&idempotency.request_hash));
        let accepted = serde_json::to_string(comment).map_err(StoreError::corrupt)?;
        item.insert("comment".to_owned(), s(accepted));
        item.insert(
            "ttl".to_owned(),
            n(shutter_store::epoch_seconds() + IDEMPOTENCY_TTL_SECONDS),
        );
        match self.table.write(Write::put(item).if_absent(KEY_USED)).await {
            Ok(()) => return Ok(Claimed::New),
            Err(StoreError::Conflict(KEY_USED)) => {}
            Err(err) => return Err(err),
        }
        #[derive(Deserialize)]
        struct Used {
            request_hash: String,
            comment: String,
        }
        let used: Used = self
            .table
            .get(&pk, IDEMPOTENCY_SK)
            .await?
            // Its TTL ran out between the two requests: rare enough to be retried.
            .ok_or_else(|| StoreError::Unavailable("the idempotency item vanished".into()))?;
        if used.request_hash != idempotency.request_hash {
            return Err(StoreError::Conflict(KEY_REUSED));
        }
        let first = serde_json::from_str(&used.comment).map_err(StoreError::corrupt)?;
        Ok(Claimed::Replayed(Box::new(first)))
    }
}
