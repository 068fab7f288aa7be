//! The posts table (`pk`/`sk`):
//! - `POST#<id>` / `POST`: the post, its media and its counters;
//! - `POST#<id>` / `LIKE#<user>` and `COMMENT#<comment>`: engagement markers (see
//!   `counters`), so `liked_by_me` and the counters come from this service's own table;
//! - `AUTHOR#<user>` / `POST#<id>`: the author's posts, newest first (ids are ULIDs);
//! - `TAG#<tag>` / `POST#<id>`: published posts by hashtag;
//! - `IDEMPOTENCY#<user>#<key>`: the post a create with that `Idempotency-Key` made;
//! - `DIR#...`: the directory of authors (shutter-directory); `OUTBOX#...`: events.
//!
//! Every change of a post is one transaction: the post (conditional on the version it
//! was read at), its index items and its outbox event, so lists and events never
//! disagree with the post.

use std::collections::{HashMap, HashSet};

use shutter_core::ApiError;
use shutter_events::legacy::{Envelope, outbox_put};
use shutter_store::dynamodb::types::{AttributeValue, Delete, Put, TransactWriteItem};
use shutter_store::{
    Item, Table, cancellation_reasons, condition_failed_at, from_item, n, s, to_item,
};

use crate::model::{Post, PostStatus};

pub const TOPIC: &str = "shutter.posts";
const IDEMPOTENCY_TTL_SECONDS: i64 = 24 * 3600;

pub fn post_pk(id: &str) -> String {
    format!("POST#{id}")
}

#[derive(Debug, Clone)]
pub struct PostsStore {
    pub table: Table,
}

/// What a create with an idempotency key found.
#[derive(Debug)]
pub enum Created {
    New,
    /// The key was used before, for this same request: its post.
    Replayed(String),
}

fn build<T, E: std::error::Error + Send + Sync + 'static>(r: Result<T, E>) -> Result<T, ApiError> {
    r.map_err(ApiError::internal)
}

impl PostsStore {
    fn put(
        &self,
        item: Item,
        condition: Option<&str>,
        values: &[(&str, AttributeValue)],
    ) -> Result<TransactWriteItem, ApiError> {
        let mut put = Put::builder()
            .table_name(&self.table.name)
            .set_item(Some(item));
        if let Some(c) = condition {
            put = put.condition_expression(c);
        }
        for (k, v) in values {
            put = put.expression_attribute_values(*k, v.clone());
        }
        Ok(TransactWriteItem::builder()
            .put(build(put.build())?)
            .build())
    }

    fn delete(&self, pk: String, sk: String) -> Result<TransactWriteItem, ApiError> {
        let delete = Delete::builder()
            .table_name(&self.table.name)
            .key("pk", s(pk))
            .key("sk", s(sk))
            .build();
        Ok(TransactWriteItem::builder().delete(build(delete)?).build())
    }

    fn post_item(post: &Post) -> Result<Item, ApiError> {
        let mut item = to_item(post)?;
        item.insert("pk".into(), s(post_pk(&post.id)));
        item.insert("sk".into(), s("POST"));
        Ok(item)
    }

    fn author_index(&self, post: &Post) -> Result<TransactWriteItem, ApiError> {
        let item = HashMap::from([
            ("pk".to_owned(), s(format!("AUTHOR#{}", post.author_id))),
            ("sk".to_owned(), s(post_pk(&post.id))),
            ("post_id".to_owned(), s(&post.id)),
            ("status".to_owned(), s(status_name(post.status))),
        ]);
        self.put(item, None, &[])
    }

    fn tag_index(&self, tag: &str, post: &Post) -> Result<TransactWriteItem, ApiError> {
        let item = HashMap::from([
            ("pk".to_owned(), s(format!("TAG#{tag}"))),
            ("sk".to_owned(), s(post_pk(&post.id))),
            ("post_id".to_owned(), s(&post.id)),
            ("author_id".to_owned(), s(&post.author_id)),
        ]);
        self.put(item, None, &[])
    }

    async fn transact(&self, items: Vec<TransactWriteItem>) -> Result<(), Vec<String>> {
        match self
            .table
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => {
                let reasons = cancellation_reasons(&e);
                if reasons.is_empty() {
                    tracing::error!(error = %shutter_store::dynamodb::error::DisplayErrorContext(&e), "transaction failed");
                }
                Err(reasons)
            }
        }
    }

    /// Stores a new pending post with its `PostCreated` event; with an idempotency key
    /// (and the request's hash), a second create with the same key returns the first post
    /// (or 422 when the request differs).
    pub async fn create(
        &self,
        post: &Post,
        event: &Envelope,
        idempotency: Option<(&str, &str)>,
    ) -> Result<Created, ApiError> {
        let mut items = Vec::new();
        if let Some((key, hash)) = idempotency {
            let item = HashMap::from([
                (
                    "pk".to_owned(),
                    s(format!("IDEMPOTENCY#{}#{key}", post.author_id)),
                ),
                ("sk".to_owned(), s("IDEMPOTENCY")),
                ("post_id".to_owned(), s(&post.id)),
                ("request_hash".to_owned(), s(hash)),
                (
                    "ttl".to_owned(),
                    n(shutter_store::epoch_seconds() + IDEMPOTENCY_TTL_SECONDS),
                ),
            ]);
            items.push(self.put(item, Some("attribute_not_exists(pk)"), &[])?);
        }
        items.push(self.put(
            Self::post_item(post)?,
            Some("attribute_not_exists(pk)"),
            &[],
        )?);
        items.push(self.author_index(post)?);
        items.push(outbox_put(&self.table.name, TOPIC, event));
        match self.transact(items).await {
            Ok(()) => Ok(Created::New),
            Err(reasons) if idempotency.is_some() && condition_failed_at(&reasons, 0) => {
                let Some((key, hash)) = idempotency else {
                    unreachable!()
                };
                #[derive(serde::Deserialize)]
                struct Used {
                    post_id: String,
                    request_hash: String,
                }
                let used: Used = self
                    .table
                    .get(
                        &format!("IDEMPOTENCY#{}#{key}", post.author_id),
                        "IDEMPOTENCY",
                    )
                    .await?
                    .ok_or_else(|| {
                        ApiError::internal(std::io::Error::other("idempotency item vanished"))
                    })?;
                if used.request_hash != hash {
                    return Err(ApiError::conflict(
                        "idempotency_key_reused",
                        "Idempotency-Key",
                        "this key was used for a different request",
                    ));
                }
                Ok(Created::Replayed(used.post_id))
            }
            Err(_) => Err(ApiError::internal(std::io::Error::other(
                "storing the post failed",
            ))),
        }
    }

    pub async fn get(&self, id: &str) -> Result<Option<Post>, ApiError> {
        Ok(self.table.get(&post_pk(id), "POST").await?)
    }

    /// Writes `post` (read at `read_version`) with its events; on publish or a caption
    /// change, the hashtag index follows. 409 `version_conflict` when it changed since.
    pub async fn save(
        &self,
        read_version: u64,
        before: &Post,
        post: &Post,
        events: &[Envelope],
    ) -> Result<(), ApiError> {
        let mut items = vec![self.put(
            Self::post_item(post)?,
            Some("version = :v"),
            &[(":v", n(read_version))],
        )?];
        if before.status != post.status {
            items.push(self.author_index(post)?);
        }
        let old_tags: HashSet<&String> = if before.status == PostStatus::Published {
            before.hashtags.iter().collect()
        } else {
            HashSet::new()
        };
        let new_tags: HashSet<&String> = if post.status == PostStatus::Published {
            post.hashtags.iter().collect()
        } else {
            HashSet::new()
        };
        for gone in old_tags.difference(&new_tags) {
            items.push(self.delete(format!("TAG#{gone}"), post_pk(&post.id))?);
        }
        for added in new_tags.difference(&old_tags) {
            items.push(self.tag_index(added, post)?);
        }
        for event in events {
            items.push(outbox_put(&self.table.name, TOPIC, event));
        }
        match self.transact(items).await {
            Ok(()) => Ok(()),
            Err(reasons) if condition_failed_at(&reasons, 0) => Err(version_conflict()),
            Err(_) => Err(ApiError::internal(std::io::Error::other(
                "saving the post failed",
            ))),
        }
    }

    /// Deletes the post, its index items and engagement markers' parent, with `PostDeleted`.
    pub async fn delete_post(&self, post: &Post, event: &Envelope) -> Result<(), ApiError> {
        let mut items = vec![{
            let delete = Delete::builder()
                .table_name(&self.table.name)
                .key("pk", s(post_pk(&post.id)))
                .key("sk", s("POST"))
                .condition_expression("version = :v")
                .expression_attribute_values(":v", n(post.version))
                .build();
            TransactWriteItem::builder().delete(build(delete)?).build()
        }];
        items.push(self.delete(format!("AUTHOR#{}", post.author_id), post_pk(&post.id))?);
        if post.status == PostStatus::Published {
            for tag in &post.hashtags {
                items.push(self.delete(format!("TAG#{tag}"), post_pk(&post.id))?);
            }
        }
        items.push(outbox_put(&self.table.name, TOPIC, event));
        match self.transact(items).await {
            Ok(()) => Ok(()),
            Err(reasons) if condition_failed_at(&reasons, 0) => Err(version_conflict()),
            Err(_) => Err(ApiError::internal(std::io::Error::other(
                "deleting the post failed",
            ))),
        }
    }

    /// Post ids under an index partition (`AUTHOR#<id>` or `TAG#<tag>`), newest first,
    /// after `after` (a sort key), with their index attributes.
    pub async fn index_page(
        &self,
        pk: &str,
        limit: usize,
        after: Option<&str>,
    ) -> Result<(Vec<Item>, bool), ApiError> {
        let mut query = self
            .table
            .client
            .query()
            .table_name(&self.table.name)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", s(pk))
            .scan_index_forward(false)
            .limit(limit as i32 + 1);
        if let Some(sk) = after {
            query = query
                .exclusive_start_key("pk", s(pk))
                .exclusive_start_key("sk", s(sk));
        }
        let mut items = query
            .send()
            .await
            .map_err(ApiError::internal)?
            .items
            .unwrap_or_default();
        let more = items.len() > limit;
        items.truncate(limit);
        Ok((items, more))
    }

    /// The posts with these ids that still exist, in the order given.
    pub async fn many(&self, ids: &[String]) -> Result<Vec<Post>, ApiError> {
        let found = self
            .batch_get(
                ids.iter()
                    .map(|id| (post_pk(id), "POST".to_owned()))
                    .collect(),
            )
            .await?;
        let mut by_id: HashMap<String, Post> = HashMap::new();
        for item in found {
            let post: Post = from_item(item)?;
            by_id.insert(post.id.clone(), post);
        }
        Ok(ids.iter().filter_map(|id| by_id.remove(id)).collect())
    }

    /// Which of these posts `user` likes (from the like markers).
    pub async fn liked_by(
        &self,
        user: &str,
        post_ids: &[String],
    ) -> Result<HashSet<String>, ApiError> {
        let keys = post_ids
            .iter()
            .map(|id| (post_pk(id), format!("LIKE#{user}")))
            .collect();
        let mut liked = HashSet::new();
        for item in self.batch_get(keys).await? {
            let counted = matches!(item.get("counted"), Some(AttributeValue::Bool(true)));
            if let (true, Some(AttributeValue::S(pk))) = (counted, item.get("pk")) {
                liked.insert(pk.trim_start_matches("POST#").to_owned());
            }
        }
        Ok(liked)
    }

    /// BatchGetItem in chunks of 100, retrying unprocessed keys.
    pub async fn batch_get(&self, keys: Vec<(String, String)>) -> Result<Vec<Item>, ApiError> {
        let keys = keys
            .into_iter()
            .map(|(pk, sk)| shutter_store::key(pk, sk))
            .collect();
        Ok(self.table.batch_get(keys).await?)
    }

    /// Deletes one index item.
    pub async fn delete_index_item(&self, pk: &str, sk: &str) -> Result<(), ApiError> {
        self.table
            .client
            .delete_item()
            .table_name(&self.table.name)
            .key("pk", s(pk))
            .key("sk", s(sk))
            .send()
            .await
            .map(|_| ())
            .map_err(ApiError::internal)
    }

    /// Writes many engagement markers and one counter update for a post, atomically.
    pub async fn transact_raw(&self, items: Vec<TransactWriteItem>) -> Result<(), Vec<String>> {
        self.transact(items).await
    }
}

pub fn version_conflict() -> ApiError {
    ApiError::conflict(
        "version_conflict",
        "version",
        "the post changed since you read it; read it again",
    )
}

pub fn status_name(status: PostStatus) -> &'static str {
    match status {
        PostStatus::Pending => "pending",
        PostStatus::Published => "published",
        PostStatus::Rejected => "rejected",
    }
}
