//! The likes table port and its adapters.
//!
//! Layout (`pk` / `sk`):
//! - `POST#<post id>` / `LIKE#<user id>`: the [`LikeState`] of one user's like of the post
//!   (kept after an unlike, so its `seq` keeps counting);
//! - `POST#<post id>#LIST#<0-7>` / `LIKED#<entry ulid>`: an entry of the post's likers
//!   list while the like holds, in one of 8 partitions chosen by the user id (ULIDs sort by
//!   time, so a page is the newest entries of the 8 reverse queries merged);
//! - `USERLIKES#<user id>` / `POST#<post id>`: every post the user ever liked, so their
//!   likes can be found and erased when the account is deleted;
//! - `GONE#<user id>` / `GONE`: a deleted account, which may like nothing more (its access
//!   tokens outlive the deletion by up to 15 minutes);
//! - `DIR#...`: the directory of authors and posts ([`shutter_directory`]);
//! - `OUTBOX#<event id>` / `OUTBOX`: this service's events.
//!
//! Hot posts. A post that draws thousands of likes a second must not funnel them through
//! one item: each like writes its own items (its state under the post's partition key,
//! its list entry), and there is no counter item to serialise on, so concurrent likes
//! never conflict with each other. DynamoDB splits a hot partition by sort key ("split
//! for heat"), which spreads the state items (keyed by user id, so evenly). List entries
//! are keyed by time, and splits cannot spread writes that all land at the end of a key
//! range, so the list has 8 partitions: one post's likes get 8 partitions' write capacity
//! (about 1,000 write units a second each; a transactional write takes 2), and a page of
//! likers costs 8 small queries. The reads a like
//! makes of the post's directory items are kept a few seconds per environment
//! ([`crate::cache`]), so they do not make those items hot either. Counting is the posts
//! service's job: it sums `LikeAdded`/`LikeRemoved` per batch into `like_count`.

use async_trait::async_trait;
use shutter_core::ApiError;
use shutter_events::legacy::Envelope;

use crate::model::{LikeState, LikerEntry};

/// The outcome of a conditional write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Commit {
    Done,
    /// The like changed since it was read (or a racing transaction holds it): read again.
    Stale,
}

/// Reads and changes of likes: what the endpoints need.
#[async_trait]
pub trait LikesStore: Send + Sync {
    async fn state(&self, post_id: &str, user_id: &str) -> Result<Option<LikeState>, ApiError>;
    /// Replaces `previous` (none: no like was ever stored) with `next`, with `event`, in
    /// one transaction that fails as [`Commit::Stale`] unless the stored `seq` is still
    /// `previous`'s. A like by a deleted account is refused (401).
    async fn commit(
        &self,
        previous: Option<&LikeState>,
        next: &LikeState,
        event: &Envelope,
    ) -> Result<Commit, ApiError>;
    /// Up to `limit` entries of the post's likers list, newest first, after `after` (a
    /// position a previous page ended on).
    async fn likers(
        &self,
        post_id: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<LikerEntry>, ApiError>;
}

/// What the directory consumer does to likes when posts and accounts go.
#[async_trait]
pub trait LikesCleanup: Send + Sync {
    /// Marks the account deleted: [`LikesStore::commit`] refuses its likes from now on.
    async fn mark_gone(&self, user_id: &str) -> Result<(), ApiError>;
    /// Up to `limit` posts the user has a like state on (liked or not).
    async fn posts_liked_by(&self, user_id: &str, limit: usize) -> Result<Vec<String>, ApiError>;
    /// Erases the user's like of the post (state, list entry, index item), with `event`
    /// when it was liked; conditional on `current.seq` like [`LikesStore::commit`].
    async fn erase(
        &self,
        current: &LikeState,
        event: Option<&Envelope>,
    ) -> Result<Commit, ApiError>;
    /// Removes a `posts_liked_by` index item that has no state behind it.
    async fn forget(&self, user_id: &str, post_id: &str) -> Result<(), ApiError>;
    /// Deletes every like of the post; returns how many items went.
    async fn delete_post_likes(&self, post_id: &str) -> Result<usize, ApiError>;
}

fn gone() -> ApiError {
    ApiError::Unauthorized("the account no longer exists")
}

pub mod dynamo {
    //! The DynamoDB adapter.

    use std::collections::HashMap;
    use std::time::Duration;

    use shutter_events::legacy::outbox_put;
    use shutter_store::dynamodb::types::{
        ConditionCheck, Delete, DeleteRequest, Put, TransactWriteItem, WriteRequest,
    };
    use shutter_store::{Item, Table, cancellation_reasons, n, s, to_item};

    use super::*;
    use crate::LIKES_TOPIC;

    /// Seconds a deleted account's marker is kept: longer than any access token lives.
    const GONE_TTL_SECONDS: i64 = 24 * 3600;

    #[derive(Debug, Clone)]
    pub struct DynamoLikesStore {
        pub table: Table,
    }

    fn internal(e: impl std::error::Error + Send + Sync + 'static) -> ApiError {
        ApiError::internal(e)
    }

    fn key(pk: String, sk: String) -> Item {
        HashMap::from([("pk".to_owned(), s(pk)), ("sk".to_owned(), s(sk))])
    }

    fn post_pk(post_id: &str) -> String {
        format!("POST#{post_id}")
    }
    fn state_key(post_id: &str, user_id: &str) -> Item {
        key(post_pk(post_id), format!("LIKE#{user_id}"))
    }
    /// The likers list is spread over this many partitions (see the module notes).
    const LIST_SHARDS: u32 = 8;

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
    fn entry_sk(entry: &str) -> String {
        format!("LIKED#{entry}")
    }
    fn index_key(user_id: &str, post_id: &str) -> Item {
        key(format!("USERLIKES#{user_id}"), post_pk(post_id))
    }
    fn gone_key(user_id: &str) -> Item {
        key(format!("GONE#{user_id}"), "GONE".to_owned())
    }

    fn string(item: &Item, name: &str) -> String {
        item.get(name)
            .and_then(|v| v.as_s().ok())
            .cloned()
            .unwrap_or_default()
    }

    /// What a transaction's cancellation means for a like.
    enum Cancelled {
        Stale,
        Gone,
    }

    impl DynamoLikesStore {
        fn put(
            &self,
            item: Item,
            condition: Option<(&str, Item)>,
        ) -> Result<TransactWriteItem, ApiError> {
            let (cond, values) = split(condition);
            let put = Put::builder()
                .table_name(&self.table.name)
                .set_item(Some(item))
                .set_condition_expression(cond)
                .set_expression_attribute_values(values)
                .build()
                .map_err(internal)?;
            Ok(TransactWriteItem::builder().put(put).build())
        }

        fn delete(
            &self,
            key: Item,
            condition: Option<(&str, Item)>,
        ) -> Result<TransactWriteItem, ApiError> {
            let (cond, values) = split(condition);
            let del = Delete::builder()
                .table_name(&self.table.name)
                .set_key(Some(key))
                .set_condition_expression(cond)
                .set_expression_attribute_values(values)
                .build()
                .map_err(internal)?;
            Ok(TransactWriteItem::builder().delete(del).build())
        }

        fn state_item(state: &LikeState) -> Result<Item, ApiError> {
            let mut item = to_item(state)?;
            item.extend(state_key(&state.post_id, &state.user_id));
            Ok(item)
        }

        fn entry_item(state: &LikeState, entry: &str) -> Item {
            let mut item = key(entry_pk(&state.post_id, &state.user_id), entry_sk(entry));
            item.insert("user_id".to_owned(), s(&state.user_id));
            item.insert("username".to_owned(), s(&state.username));
            item.insert("liked_at".to_owned(), s(&state.at));
            item
        }

        /// The state item's condition: unchanged since `previous` was read.
        fn unchanged(previous: Option<&LikeState>) -> (&'static str, Item) {
            match previous {
                None => ("attribute_not_exists(pk)", Item::new()),
                Some(p) => ("seq = :seq", HashMap::from([(":seq".to_owned(), n(p.seq))])),
            }
        }

        async fn transact(
            &self,
            items: Vec<TransactWriteItem>,
            gone_check_at: Option<usize>,
        ) -> Result<Result<(), Cancelled>, ApiError> {
            match self
                .table
                .client
                .transact_write_items()
                .set_transact_items(Some(items))
                .send()
                .await
            {
                Ok(_) => Ok(Ok(())),
                Err(err) => {
                    let reasons = cancellation_reasons(&err);
                    if gone_check_at
                        .is_some_and(|i| shutter_store::condition_failed_at(&reasons, i))
                    {
                        Ok(Err(Cancelled::Gone))
                    } else if reasons
                        .iter()
                        .any(|r| r == "ConditionalCheckFailed" || r == "TransactionConflict")
                    {
                        Ok(Err(Cancelled::Stale))
                    } else {
                        Err(internal(err))
                    }
                }
            }
        }
    }

    fn split(condition: Option<(&str, Item)>) -> (Option<String>, Option<Item>) {
        match condition {
            None => (None, None),
            Some((c, v)) => (Some(c.to_owned()), (!v.is_empty()).then_some(v)),
        }
    }

    #[async_trait]
    impl LikesStore for DynamoLikesStore {
        async fn state(&self, post_id: &str, user_id: &str) -> Result<Option<LikeState>, ApiError> {
            Ok(self
                .table
                .get(&post_pk(post_id), &format!("LIKE#{user_id}"))
                .await?)
        }

        async fn commit(
            &self,
            previous: Option<&LikeState>,
            next: &LikeState,
            event: &Envelope,
        ) -> Result<Commit, ApiError> {
            let (cond, values) = Self::unchanged(previous);
            let mut items = vec![self.put(Self::state_item(next)?, Some((cond, values)))?];
            let mut gone_check_at = None;
            if next.liked {
                if let Some(entry) = &next.entry {
                    items.push(self.put(Self::entry_item(next, entry), None)?);
                }
                let mut index = index_key(&next.user_id, &next.post_id);
                index.insert("post_id".to_owned(), s(&next.post_id));
                items.push(self.put(index, None)?);
                let check = ConditionCheck::builder()
                    .table_name(&self.table.name)
                    .set_key(Some(gone_key(&next.user_id)))
                    .condition_expression("attribute_not_exists(pk)")
                    .build()
                    .map_err(internal)?;
                gone_check_at = Some(items.len());
                items.push(TransactWriteItem::builder().condition_check(check).build());
            } else if let Some(entry) = previous.and_then(|p| p.entry.as_deref()) {
                items.push(self.delete(
                    key(entry_pk(&next.post_id, &next.user_id), entry_sk(entry)),
                    None,
                )?);
            }
            items.push(outbox_put(&self.table.name, LIKES_TOPIC, event));
            match self.transact(items, gone_check_at).await? {
                Ok(()) => Ok(Commit::Done),
                Err(Cancelled::Stale) => Ok(Commit::Stale),
                Err(Cancelled::Gone) => Err(gone()),
            }
        }

        async fn likers(
            &self,
            post_id: &str,
            after: Option<&str>,
            limit: usize,
        ) -> Result<Vec<LikerEntry>, ApiError> {
            // Entry ids are ULIDs, so one position orders every shard: read the next
            // `limit` of each, newest first, and keep the newest `limit` of them all.
            let limit_i32 = i32::try_from(limit).unwrap_or(i32::MAX);
            let pages = futures::future::try_join_all((0..LIST_SHARDS).map(|shard| {
                let mut query = self
                    .table
                    .client
                    .query()
                    .table_name(&self.table.name)
                    .expression_attribute_values(":pk", s(list_pk(post_id, shard)))
                    .scan_index_forward(false)
                    .limit(limit_i32);
                query = match after {
                    Some(after) => query
                        .key_condition_expression("pk = :pk AND sk < :after")
                        .expression_attribute_values(":after", s(after)),
                    None => query.key_condition_expression("pk = :pk"),
                };
                async move { query.send().await.map_err(internal) }
            }))
            .await?;
            let mut entries: Vec<LikerEntry> = pages
                .iter()
                .flat_map(|page| page.items())
                .map(|item| LikerEntry {
                    position: string(item, "sk"),
                    user_id: string(item, "user_id"),
                    username: string(item, "username"),
                    liked_at: string(item, "liked_at"),
                })
                .collect();
            entries.sort_by(|a, b| b.position.cmp(&a.position));
            entries.truncate(limit);
            Ok(entries)
        }
    }

    #[async_trait]
    impl LikesCleanup for DynamoLikesStore {
        async fn mark_gone(&self, user_id: &str) -> Result<(), ApiError> {
            let mut item = gone_key(user_id);
            item.insert(
                "ttl".to_owned(),
                n(shutter_store::epoch_seconds() + GONE_TTL_SECONDS),
            );
            self.table
                .client
                .put_item()
                .table_name(&self.table.name)
                .set_item(Some(item))
                .send()
                .await
                .map(|_| ())
                .map_err(internal)
        }

        async fn posts_liked_by(
            &self,
            user_id: &str,
            limit: usize,
        ) -> Result<Vec<String>, ApiError> {
            let out = self
                .table
                .client
                .query()
                .table_name(&self.table.name)
                .key_condition_expression("pk = :pk")
                .expression_attribute_values(":pk", s(format!("USERLIKES#{user_id}")))
                .consistent_read(true)
                .limit(i32::try_from(limit).unwrap_or(i32::MAX))
                .send()
                .await
                .map_err(internal)?;
            Ok(out
                .items()
                .iter()
                .map(|item| string(item, "post_id"))
                .collect())
        }

        async fn erase(
            &self,
            current: &LikeState,
            event: Option<&Envelope>,
        ) -> Result<Commit, ApiError> {
            let mut items = vec![
                self.delete(
                    state_key(&current.post_id, &current.user_id),
                    Some(Self::unchanged(Some(current))),
                )?,
                self.delete(index_key(&current.user_id, &current.post_id), None)?,
            ];
            if let Some(entry) = &current.entry {
                items.push(self.delete(
                    key(
                        entry_pk(&current.post_id, &current.user_id),
                        entry_sk(entry),
                    ),
                    None,
                )?);
            }
            if let Some(event) = event {
                items.push(outbox_put(&self.table.name, LIKES_TOPIC, event));
            }
            match self.transact(items, None).await? {
                Ok(()) => Ok(Commit::Done),
                Err(_) => Ok(Commit::Stale),
            }
        }

        async fn forget(&self, user_id: &str, post_id: &str) -> Result<(), ApiError> {
            self.table
                .client
                .delete_item()
                .table_name(&self.table.name)
                .set_key(Some(index_key(user_id, post_id)))
                .send()
                .await
                .map(|_| ())
                .map_err(internal)
        }

        async fn delete_post_likes(&self, post_id: &str) -> Result<usize, ApiError> {
            let mut deleted = 0;
            let partitions = std::iter::once(post_pk(post_id))
                .chain((0..LIST_SHARDS).map(|n| list_pk(post_id, n)));
            for pk in partitions {
                let mut start: Option<Item> = None;
                loop {
                    let out = self
                        .table
                        .client
                        .query()
                        .table_name(&self.table.name)
                        .key_condition_expression("pk = :pk")
                        .expression_attribute_values(":pk", s(&pk))
                        .projection_expression("pk, sk, user_id")
                        .consistent_read(true)
                        .set_exclusive_start_key(start.take())
                        .send()
                        .await
                        .map_err(internal)?;
                    let mut keys = Vec::new();
                    for item in out.items() {
                        let sk = string(item, "sk");
                        if sk.starts_with("LIKE#") {
                            keys.push(index_key(&string(item, "user_id"), post_id));
                        }
                        keys.push(key(pk.clone(), sk));
                    }
                    deleted += keys.len();
                    self.batch_delete(keys).await?;
                    match out.last_evaluated_key {
                        Some(k) if !k.is_empty() => start = Some(k),
                        _ => break,
                    }
                }
            }
            Ok(deleted)
        }
    }

    impl DynamoLikesStore {
        /// Deletes `keys`, 25 a request, retrying what DynamoDB leaves unprocessed.
        async fn batch_delete(&self, keys: Vec<Item>) -> Result<(), ApiError> {
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
                    if attempt > 0 {
                        tokio::time::sleep(Duration::from_millis(50 << attempt)).await;
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
                        .and_then(|mut u| u.remove(&self.table.name))
                        .unwrap_or_default();
                }
                if !requests.is_empty() {
                    return Err(internal(std::io::Error::other(
                        "DynamoDB left deletes unprocessed; retry",
                    )));
                }
            }
            Ok(())
        }
    }
}

pub mod memory {
    //! An in-memory store with the same conditions, for unit tests.

    use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
    use std::sync::Mutex;

    use super::*;

    #[derive(Debug, Default)]
    pub struct MemoryLikesStore {
        state: Mutex<State>,
    }

    #[derive(Debug, Default)]
    struct State {
        likes: HashMap<(String, String), LikeState>,
        /// (post id, position) -> entry
        entries: BTreeMap<(String, String), LikerEntry>,
        index: BTreeSet<(String, String)>,
        gone: HashSet<String>,
        events: Vec<Envelope>,
    }

    impl MemoryLikesStore {
        fn state(&self) -> std::sync::MutexGuard<'_, State> {
            self.state.lock().unwrap_or_else(|e| e.into_inner())
        }

        pub fn events(&self) -> Vec<Envelope> {
            self.state().events.clone()
        }

        /// Items left that concern `post_id` (states and entries).
        pub fn items_of_post(&self, post_id: &str) -> usize {
            let st = self.state();
            st.likes.keys().filter(|(p, _)| p == post_id).count()
                + st.entries.keys().filter(|(p, _)| p == post_id).count()
        }

        fn unchanged(st: &State, previous: Option<&LikeState>, next: &LikeState) -> bool {
            let stored = st.likes.get(&(next.post_id.clone(), next.user_id.clone()));
            stored.map(|s| s.seq) == previous.map(|p| p.seq)
        }
    }

    #[async_trait]
    impl LikesStore for MemoryLikesStore {
        async fn state(&self, post_id: &str, user_id: &str) -> Result<Option<LikeState>, ApiError> {
            Ok(self
                .state()
                .likes
                .get(&(post_id.to_owned(), user_id.to_owned()))
                .cloned())
        }

        async fn commit(
            &self,
            previous: Option<&LikeState>,
            next: &LikeState,
            event: &Envelope,
        ) -> Result<Commit, ApiError> {
            let mut st = self.state();
            if !Self::unchanged(&st, previous, next) {
                return Ok(Commit::Stale);
            }
            if next.liked && st.gone.contains(&next.user_id) {
                return Err(gone());
            }
            if let Some(entry) = previous.and_then(|p| p.entry.clone()) {
                st.entries
                    .remove(&(next.post_id.clone(), format!("LIKED#{entry}")));
            }
            if let Some(entry) = &next.entry {
                let position = format!("LIKED#{entry}");
                st.entries.insert(
                    (next.post_id.clone(), position.clone()),
                    LikerEntry {
                        position,
                        user_id: next.user_id.clone(),
                        username: next.username.clone(),
                        liked_at: next.at.clone(),
                    },
                );
                st.index
                    .insert((next.user_id.clone(), next.post_id.clone()));
            }
            st.likes
                .insert((next.post_id.clone(), next.user_id.clone()), next.clone());
            st.events.push(event.clone());
            Ok(Commit::Done)
        }

        async fn likers(
            &self,
            post_id: &str,
            after: Option<&str>,
            limit: usize,
        ) -> Result<Vec<LikerEntry>, ApiError> {
            Ok(self
                .state()
                .entries
                .iter()
                .rev()
                .filter(|((p, pos), _)| p == post_id && after.is_none_or(|a| pos.as_str() < a))
                .take(limit)
                .map(|(_, e)| e.clone())
                .collect())
        }
    }

    #[async_trait]
    impl LikesCleanup for MemoryLikesStore {
        async fn mark_gone(&self, user_id: &str) -> Result<(), ApiError> {
            self.state().gone.insert(user_id.to_owned());
            Ok(())
        }

        async fn posts_liked_by(
            &self,
            user_id: &str,
            limit: usize,
        ) -> Result<Vec<String>, ApiError> {
            Ok(self
                .state()
                .index
                .iter()
                .filter(|(u, _)| u == user_id)
                .take(limit)
                .map(|(_, p)| p.clone())
                .collect())
        }

        async fn erase(
            &self,
            current: &LikeState,
            event: Option<&Envelope>,
        ) -> Result<Commit, ApiError> {
            let mut st = self.state();
            let k = (current.post_id.clone(), current.user_id.clone());
            if st.likes.get(&k).map(|s| s.seq) != Some(current.seq) {
                return Ok(Commit::Stale);
            }
            st.likes.remove(&k);
            st.index
                .remove(&(current.user_id.clone(), current.post_id.clone()));
            if let Some(entry) = &current.entry {
                st.entries
                    .remove(&(current.post_id.clone(), format!("LIKED#{entry}")));
            }
            if let Some(event) = event {
                st.events.push(event.clone());
            }
            Ok(Commit::Done)
        }

        async fn forget(&self, user_id: &str, post_id: &str) -> Result<(), ApiError> {
            self.state()
                .index
                .remove(&(user_id.to_owned(), post_id.to_owned()));
            Ok(())
        }

        async fn delete_post_likes(&self, post_id: &str) -> Result<usize, ApiError> {
            let mut st = self.state();
            let before = st.likes.len() + st.entries.len() + st.index.len();
            st.likes.retain(|(p, _), _| p != post_id);
            st.entries.retain(|(p, _), _| p != post_id);
            st.index.retain(|(_, p)| p != post_id);
            Ok(before - (st.likes.len() + st.entries.len() + st.index.len()))
        }
    }
}
