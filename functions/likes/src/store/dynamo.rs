//! The DynamoDB adapter: keys, items and conditions of the layout in [`super`], sent with
//! [`Table`].

use async_trait::async_trait;
use shutter_core::{PostId, UserId};
use shutter_events::{Envelope, outbox_write};
use shutter_store::{
    Consistency, Item, Query, StoreError, StoreResult, Table, Write, key, n, s, string_attr,
    to_item,
};

use super::{ACCOUNT_DELETED, ENTRY_PREFIX, LikesCleanup, LikesExport, LikesStore, STALE};
use crate::model::{LikeState, LikerEntry};

/// Seconds a deleted account's marker is kept: longer than any access token lives.
const GONE_TTL_SECONDS: i64 = 24 * 3600;

/// The likers list is spread over this many partitions (see the module notes).
const LIST_SHARDS: u32 = 8;

const STATE_PREFIX: &str = "LIKE#";
const POST_PREFIX: &str = "POST#";

#[derive(Debug, Clone)]
pub struct DynamoLikesStore {
    pub table: Table,
}

fn post_pk(post_id: &str) -> String {
    format!("{POST_PREFIX}{post_id}")
}
fn state_key(post_id: &str, user_id: &str) -> Item {
    key(post_pk(post_id), format!("{STATE_PREFIX}{user_id}"))
}
/// The list partition of `user_id`'s entries on `post_id`.
fn entry_pk(post_id: &str, user_id: &str) -> String {
    let hash = user_id
        .bytes()
        .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)));
    list_pk(post_id, hash % LIST_SHARDS)
}
fn list_pk(post_id: &str, shard: u32) -> String {
    format!("POST#{post_id}#LIST#{shard}")
}
fn entry_key(state: &LikeState, entry: &str) -> Item {
    key(
        entry_pk(&state.post_id, &state.user_id),
        format!("{ENTRY_PREFIX}{entry}"),
    )
}
fn index_pk(user_id: &str) -> String {
    format!("USERLIKES#{user_id}")
}
fn index_key(user_id: &str, post_id: &str) -> Item {
    key(index_pk(user_id), post_pk(post_id))
}
fn gone_key(user_id: &str) -> Item {
    key(format!("GONE#{user_id}"), "GONE")
}

fn state_item(state: &LikeState) -> StoreResult<Item> {
    let mut item = to_item(state)?;
    item.extend(state_key(&state.post_id, &state.user_id));
    Ok(item)
}

fn entry_item(state: &LikeState, entry: &str) -> Item {
    let mut item = entry_key(state, entry);
    item.insert("user_id".to_owned(), s(state.user_id.as_str()));
    item.insert("username".to_owned(), s(&state.username));
    item.insert("liked_at".to_owned(), s(&state.at));
    item
}

/// `write`, conditional on the like being unchanged since `previous` was read.
fn unchanged(write: Write, previous: Option<&LikeState>) -> Write {
    match previous {
        None => write.if_absent(STALE),
        Some(p) => write.when(STALE, "seq = :seq").value(":seq", n(p.seq)),
    }
}

fn text(item: &Item, name: &str) -> StoreResult<String> {
    string_attr(item, name)
        .map(str::to_owned)
        .ok_or_else(|| StoreError::corrupt_because(format!("a likes item has no {name}")))
}

fn liker_entry(item: &Item) -> StoreResult<LikerEntry> {
    Ok(LikerEntry {
        position: text(item, "sk")?,
        user_id: UserId::trusted(text(item, "user_id")?),
        username: text(item, "username")?,
        liked_at: text(item, "liked_at")?,
    })
}

#[async_trait]
impl LikesStore for DynamoLikesStore {
    async fn state(&self, post_id: &PostId, user_id: &UserId) -> StoreResult<Option<LikeState>> {
        self.table
            .get(&post_pk(post_id), &format!("{STATE_PREFIX}{user_id}"))
            .await
    }

    async fn commit(
        &self,
        previous: Option<&LikeState>,
        next: &LikeState,
        event: &Envelope,
    ) -> StoreResult<()> {
        let mut writes = vec![unchanged(Write::put(state_item(next)?), previous)];
        if next.liked {
            if let Some(entry) = &next.entry {
                writes.push(Write::put(entry_item(next, entry)));
            }
            let mut index = index_key(&next.user_id, &next.post_id);
            index.insert("post_id".to_owned(), s(next.post_id.as_str()));
            writes.push(Write::put(index));
            writes.push(Write::check(
                gone_key(&next.user_id),
                ACCOUNT_DELETED,
                "attribute_not_exists(pk)",
            ));
        } else if let Some(entry) = previous.and_then(|p| p.entry.as_deref()) {
            writes.push(Write::delete(entry_key(next, entry)));
        }
        writes.push(outbox_write(event)?);
        self.table.transact(writes).await
    }

    async fn likers(
        &self,
        post_id: &PostId,
        after: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<LikerEntry>> {
        // Entry ids are ULIDs, so one position orders every shard: read the next `limit`
        // of each, newest first, and keep the newest `limit` of them all.
        let pages = futures::future::try_join_all((0..LIST_SHARDS).map(|shard| {
            let query = Query::partition(list_pk(post_id, shard))
                .after(after)
                .newest_first()
                .limit(limit)
                .consistency(Consistency::Eventual);
            async move { self.table.query(&query).await }
        }))
        .await?;
        let mut entries = pages
            .iter()
            .flatten()
            .map(liker_entry)
            .collect::<StoreResult<Vec<_>>>()?;
        entries.sort_by(|a, b| b.position.cmp(&a.position));
        entries.truncate(limit);
        Ok(entries)
    }
}

#[async_trait]
impl LikesCleanup for DynamoLikesStore {
    async fn mark_gone(&self, user_id: &UserId) -> StoreResult<()> {
        let mut item = gone_key(user_id);
        item.insert(
            "ttl".to_owned(),
            n(shutter_store::epoch_seconds() + GONE_TTL_SECONDS),
        );
        self.table.write(Write::put(item)).await
    }

    async fn posts_liked_by(&self, user_id: &UserId, limit: usize) -> StoreResult<Vec<PostId>> {
        let items = self
            .table
            .query(&Query::partition(index_pk(user_id)).limit(limit))
            .await?;
        // The post id is read from the key, which every index item has.
        items
            .iter()
            .map(|item| {
                let sk = text(item, "sk")?;
                sk.strip_prefix(POST_PREFIX)
                    .map(PostId::trusted)
                    .ok_or_else(|| StoreError::corrupt_because("a likes index item is not a post"))
            })
            .collect()
    }

    async fn erase(&self, current: &LikeState, event: Option<&Envelope>) -> StoreResult<()> {
        let mut writes = vec![
            unchanged(
                Write::delete(state_key(&current.post_id, &current.user_id)),
                Some(current),
            ),
            Write::delete(index_key(&current.user_id, &current.post_id)),
        ];
        if let Some(entry) = &current.entry {
            writes.push(Write::delete(entry_key(current, entry)));
        }
        if let Some(event) = event {
            writes.push(outbox_write(event)?);
        }
        self.table.transact(writes).await
    }

    async fn forget(&self, user_id: &UserId, post_id: &PostId) -> StoreResult<()> {
        self.table
            .write(Write::delete(index_key(user_id, post_id)))
            .await
    }

    async fn delete_post_likes(&self, post_id: &PostId, limit: usize) -> StoreResult<usize> {
        let partitions =
            std::iter::once(post_pk(post_id)).chain((0..LIST_SHARDS).map(|n| list_pk(post_id, n)));
        for pk in partitions {
            // One page of the first partition that has any left: what is deleted is gone,
            // so the next call starts from the top again.
            let items = self
                .table
                .query(&Query::partition(pk.as_str()).limit(limit))
                .await?;
            if items.is_empty() {
                continue;
            }
            let mut keys = Vec::with_capacity(items.len() * 2);
            for item in &items {
                let sk = text(item, "sk")?;
                // A state item has its user's index item to go with it.
                if let Some(user_id) = sk.strip_prefix(STATE_PREFIX) {
                    keys.push(index_key(user_id, post_id));
                }
                keys.push(key(pk.as_str(), sk));
            }
            let deleted = keys.len();
            self.table.batch_delete(keys).await?;
            return Ok(deleted);
        }
        Ok(0)
    }
}

#[async_trait]
impl LikesExport for DynamoLikesStore {
    async fn likes_of(
        &self,
        user_id: &UserId,
        after: Option<&str>,
        limit: usize,
    ) -> StoreResult<(Vec<LikeState>, Option<String>)> {
        // The user's index (one item per post they have a state on), then the states:
        // an index item may outlive a like taken back, so only states that hold count.
        let items = self
            .table
            .query(
                &Query::partition(index_pk(user_id))
                    .after(after)
                    .limit(limit),
            )
            .await?;
        let next = shutter_store::next_position(&items, limit);
        let keys = items
            .iter()
            .filter_map(|i| string_attr(i, "sk"))
            .filter_map(|sk| sk.strip_prefix(POST_PREFIX))
            .map(|post| state_key(post, user_id))
            .collect::<Vec<_>>();
        let mut likes = self
            .table
            .batch_get(keys)
            .await?
            .into_iter()
            .map(shutter_store::from_item::<LikeState>)
            .filter(|state| state.as_ref().map_or(true, |s| s.liked))
            .collect::<StoreResult<Vec<_>>>()?;
        likes.sort_by(|a, b| a.post_id.cmp(&b.post_id));
        Ok((likes, next))
    }
}
