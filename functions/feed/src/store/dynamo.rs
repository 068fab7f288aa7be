//! The feed table (DynamoDB).
//!
//! Layout (`pk` / `sk`):
//! - `TL#<user>` / `<published at>#<post id>`: an entry of the user's home timeline
//!   (expires after [`ENTRY_TTL_SECONDS`]; trimmed to [`crate::model::TIMELINE_CAP`]);
//! - `RECENT#<author>` / `<published at>#<post id>`: the author's posts, newest first:
//!   what a new follower gets backfilled with and what a celebrity's followers merge in;
//! - `POST#<id>` / `POST`: the feed's copy of a published post (caption, media, counts),
//!   or its tombstone (`deleted`, with the `position` its entries had);
//! - `FEDGE#<follower>#<followee>` / `EDGE`: the newest applied follow change (`seq`,
//!   `holds`), so follow events apply once and in order;
//! - `FOLLOWERS#<author>` / `<follower>`: whom to fan an ordinary author's posts out to;
//! - `CELEBFOLLOWING#<user>` / `<author>`: the celebrities the user follows, merged at
//!   read time;
//! - `AUTHOR#<id>` / `META`: `follower_count` and whether the author is a celebrity;
//! - `LIKED#<user>#<post>` / `LIKED`: whether the user likes the post (`seq`, `holds`);
//! - `PROCESSED#...`: applied engagement events; `DIR#...`: the directory of authors
//!   ([`shutter_directory::DynamoDirectory`] in the same table).
//!
//! Every request to DynamoDB is counted ([`DynamoFeedStore::requests`]), so the fan-out
//! and read benchmarks can print requests per operation.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use serde::Deserialize;
use shutter_core::{EventId, PostId, UserId};
use shutter_directory::Author;
use shutter_events::EngagementChanged;
use shutter_store::{
    AttributeValue, Consistency, Item, Query, StoreResult, Table, Write, bool_attr, from_item, key,
    n, s, string_attr, to_item,
};

use super::{
    EDGE_MOVED, FeedReader, FeedStore, Hydrated, LIKE_STALE, POST_EXISTS, POST_GONE, POST_STALE,
};
use crate::model::{AuthorMeta, Entry, FollowChange, PairMarker, PostCopy, follow_change};

/// Timeline and recent-post entries (and like markers) expire after 30 days.
pub const ENTRY_TTL_SECONDS: i64 = 30 * 24 * 3600;
/// A deleted post's tombstone outlives any redelivery (Kafka keeps records a week).
const TOMBSTONE_TTL_SECONDS: i64 = 8 * 24 * 3600;
/// BatchWriteItem takes 25 items a request (for the request count).
const WRITE_BATCH: usize = 25;

/// The feed store on the service's table, counting its requests.
#[derive(Debug, Clone)]
pub struct DynamoFeedStore {
    pub table: Table,
    /// Shared by clones, so a benchmark reads the count of the store it handed out.
    requests: Arc<AtomicU64>,
}

fn timeline_pk(user: &UserId) -> String {
    format!("TL#{user}")
}
fn recent_pk(author: &UserId) -> String {
    format!("RECENT#{author}")
}
fn followers_pk(author: &UserId) -> String {
    format!("FOLLOWERS#{author}")
}
fn celebrities_pk(user: &UserId) -> String {
    format!("CELEBFOLLOWING#{user}")
}
fn post_key(post: &PostId) -> Item {
    key(format!("POST#{post}"), "POST")
}
fn edge_key(follower: &UserId, followee: &UserId) -> Item {
    key(format!("FEDGE#{follower}#{followee}"), "EDGE")
}
fn meta_key(author: &UserId) -> Item {
    key(format!("AUTHOR#{author}"), "META")
}
fn liked_key(user: &UserId, post: &PostId) -> Item {
    key(format!("LIKED#{user}#{post}"), "LIKED")
}
/// The directory's author item (`shutter_directory` keeps it in this table), read in the
/// same batch as the posts so a page costs one batch read per 100 keys.
fn directory_author_key(author: &UserId) -> Item {
    key(format!("DIR#AUTHOR#{author}"), "DIR")
}

/// The author's standing as the directory keeps it (whether they are banned).
fn directory_standing_key(author: &UserId) -> Item {
    key(format!("{STANDING_PREFIX}{author}"), "DIR")
}

const STANDING_PREFIX: &str = "DIR#STANDING#";

fn ttl(seconds: i64) -> AttributeValue {
    n(shutter_store::epoch_seconds() + seconds)
}

fn entry_item(pk: &str, entry: &Entry) -> Item {
    let mut item = key(pk, &entry.position);
    item.insert("post_id".to_owned(), s(entry.post_id.as_str()));
    item.insert("author_id".to_owned(), s(entry.author_id.as_str()));
    item.insert("ttl".to_owned(), ttl(ENTRY_TTL_SECONDS));
    item
}

/// An entry as stored.
#[derive(Deserialize)]
struct EntryItem {
    sk: String,
    post_id: PostId,
    author_id: UserId,
}

impl DynamoFeedStore {
    pub fn new(table: Table) -> Self {
        Self {
            table,
            requests: Arc::default(),
        }
    }

    /// DynamoDB requests made so far through this store (and its clones).
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    fn count(&self, requests: u64) {
        self.requests.fetch_add(requests, Ordering::Relaxed);
    }

    async fn get_item(&self, key: &Item) -> StoreResult<Option<Item>> {
        let (pk, sk) = (
            string_attr(key, "pk").unwrap_or_default(),
            string_attr(key, "sk").unwrap_or_default(),
        );
        self.count(1);
        self.table.get_item(pk, sk).await
    }

    async fn get<T: serde::de::DeserializeOwned>(&self, key: &Item) -> StoreResult<Option<T>> {
        self.get_item(key).await?.map(from_item).transpose()
    }

    async fn write(&self, write: Write) -> StoreResult<()> {
        self.count(1);
        self.table.write(write).await
    }

    async fn transact(&self, writes: Vec<Write>) -> StoreResult<()> {
        self.count(1);
        self.table.transact(writes).await
    }

    /// Puts `items`, 25 a request (the table sends again what DynamoDB left unprocessed;
    /// those re-sends are not counted).
    async fn batch_put(&self, items: Vec<Item>) -> StoreResult<()> {
        self.count(items.len().div_ceil(WRITE_BATCH) as u64);
        self.table.batch_put(items).await
    }

    async fn batch_delete(&self, keys: Vec<Item>) -> StoreResult<()> {
        self.count(keys.len().div_ceil(WRITE_BATCH) as u64);
        self.table.batch_delete(keys).await
    }

    /// One page of a partition of entries, newest first. Eventually consistent: a feed
    /// tolerates milliseconds of lag at half the read cost.
    async fn entries(
        &self,
        pk: String,
        before: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<Entry>> {
        let query = Query::partition(pk)
            .after(before)
            .newest_first()
            .limit(limit)
            .consistency(Consistency::Eventual);
        self.count(1);
        self.table
            .query(&query)
            .await?
            .into_iter()
            .map(|item| {
                let stored: EntryItem = from_item(item)?;
                Ok(Entry {
                    position: stored.sk,
                    post_id: stored.post_id,
                    author_id: stored.author_id,
                })
            })
            .collect()
    }

    /// The sort keys of one page of a partition of user lists, as user ids.
    async fn users(&self, query: Query) -> StoreResult<Vec<UserId>> {
        self.count(1);
        Ok(self
            .table
            .query(&query.consistency(Consistency::Eventual))
            .await?
            .iter()
            .filter_map(|item| string_attr(item, "sk"))
            .map(UserId::trusted)
            .collect())
    }

    fn timeline_items(users: &[UserId], entries: &[Entry]) -> Vec<(String, Entry)> {
        users
            .iter()
            .flat_map(|user| entries.iter().map(|e| (timeline_pk(user), e.clone())))
            .collect()
    }
}

#[async_trait]
impl FeedReader for DynamoFeedStore {
    async fn timeline(
        &self,
        user: &UserId,
        before: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<Entry>> {
        self.entries(timeline_pk(user), before, limit).await
    }

    async fn recent(
        &self,
        author: &UserId,
        before: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<Entry>> {
        self.entries(recent_pk(author), before, limit).await
    }

    async fn celebrities_followed(&self, user: &UserId) -> StoreResult<Vec<UserId>> {
        self.users(Query::partition(celebrities_pk(user))).await
    }

    async fn hydrate(
        &self,
        viewer: &UserId,
        posts: &[PostId],
        authors: &[UserId],
    ) -> StoreResult<Hydrated> {
        let mut keys: Vec<Item> = Vec::new();
        for post in posts {
            keys.push(post_key(post));
            keys.push(liked_key(viewer, post));
        }
        keys.extend(authors.iter().map(directory_author_key));
        keys.extend(authors.iter().map(directory_standing_key));
        keys.extend(authors.iter().map(|author| edge_key(viewer, author)));
        let followed_prefix = format!("FEDGE#{viewer}#");
        let (items, requests) = self
            .table
            .batch_get_counted(keys, Consistency::Eventual)
            .await?;
        self.count(requests);
        let mut out = Hydrated::default();
        for item in items {
            let pk = string_attr(&item, "pk").unwrap_or_default().to_owned();
            if pk.starts_with("POST#") {
                if !bool_attr(&item, "deleted") {
                    let post: PostCopy = from_item(item)?;
                    out.posts.insert(post.post_id.clone(), post);
                }
            } else if let Some(pair) = pk.strip_prefix("LIKED#") {
                if bool_attr(&item, "holds")
                    && let Some((_, post)) = pair.split_once('#')
                {
                    out.liked.insert(PostId::trusted(post));
                }
            } else if let Some(author) = pk.strip_prefix(STANDING_PREFIX) {
                if bool_attr(&item, "banned") {
                    out.banned.insert(UserId::trusted(author));
                }
            } else if pk.starts_with("DIR#AUTHOR#") && !item.contains_key("deleted") {
                let author: Author = from_item(item)?;
                out.authors.insert(author.user_id.clone(), author);
            } else if let Some(author) = pk.strip_prefix(&followed_prefix)
                && bool_attr(&item, "holds")
            {
                out.followed.insert(UserId::trusted(author));
            }
        }
        Ok(out)
    }
}

#[async_trait]
impl FeedStore for DynamoFeedStore {
    async fn add_to_timelines(&self, users: &[UserId], entries: &[Entry]) -> StoreResult<()> {
        let items = Self::timeline_items(users, entries)
            .iter()
            .map(|(pk, entry)| entry_item(pk, entry))
            .collect();
        self.batch_put(items).await
    }

    async fn remove_from_timelines(&self, users: &[UserId], entries: &[Entry]) -> StoreResult<()> {
        let keys = Self::timeline_items(users, entries)
            .into_iter()
            .map(|(pk, entry)| key(pk, entry.position))
            .collect();
        self.batch_delete(keys).await
    }

    async fn add_recent(&self, entry: &Entry) -> StoreResult<()> {
        self.write(Write::put(entry_item(&recent_pk(&entry.author_id), entry)))
            .await
    }

    async fn remove_recent(&self, entry: &Entry) -> StoreResult<()> {
        self.write(Write::delete(key(
            recent_pk(&entry.author_id),
            &entry.position,
        )))
        .await
    }

    async fn followers(
        &self,
        author: &UserId,
        after: Option<&UserId>,
        limit: usize,
    ) -> StoreResult<Vec<UserId>> {
        let query = Query::partition(followers_pk(author))
            .after(after.map(UserId::as_str))
            .limit(limit);
        self.users(query).await
    }

    async fn author_meta(&self, author: &UserId) -> StoreResult<AuthorMeta> {
        Ok(self.get(&meta_key(author)).await?.unwrap_or_default())
    }

    async fn edge(&self, follower: &UserId, followee: &UserId) -> StoreResult<Option<PairMarker>> {
        self.get(&edge_key(follower, followee)).await
    }

    async fn following(&self, author: &UserId, users: &[UserId]) -> StoreResult<HashSet<UserId>> {
        let keys = users.iter().map(|u| edge_key(u, author)).collect();
        let (items, requests) = self
            .table
            .batch_get_counted(keys, Consistency::Strong)
            .await?;
        self.count(requests);
        let suffix = format!("#{author}");
        Ok(items
            .iter()
            .filter(|item| bool_attr(item, "holds"))
            .filter_map(|item| {
                string_attr(item, "pk")?
                    .strip_prefix("FEDGE#")?
                    .strip_suffix(&suffix)
                    .map(UserId::trusted)
            })
            .collect())
    }

    async fn set_edge(
        &self,
        follower: &UserId,
        followee: &UserId,
        previous: Option<PairMarker>,
        next: PairMarker,
        celebrity: bool,
    ) -> StoreResult<()> {
        let mut marker = to_item(&next)?;
        marker.extend(edge_key(follower, followee));
        let mut writes = vec![match previous {
            None => Write::put(marker).if_absent(EDGE_MOVED),
            Some(p) => Write::put(marker)
                .when(EDGE_MOVED, "seq = :seq")
                .value(":seq", n(p.seq)),
        }];
        let listed = key(followers_pk(followee), follower.as_str());
        let celebrity_listed = key(celebrities_pk(follower), followee.as_str());
        let delta = match follow_change(previous, next) {
            FollowChange::Started => {
                writes.push(Write::put(listed));
                if celebrity {
                    writes.push(Write::put(celebrity_listed));
                }
                Some(1)
            }
            FollowChange::Ended => {
                writes.push(Write::delete(listed));
                writes.push(Write::delete(celebrity_listed));
                Some(-1)
            }
            FollowChange::Stale | FollowChange::Unchanged => None,
        };
        if let Some(delta) = delta {
            writes.push(
                Write::update(meta_key(followee), "ADD follower_count :d").value(":d", n(delta)),
            );
        }
        self.transact(writes).await
    }

    async fn list_celebrity(&self, followers: &[UserId], author: &UserId) -> StoreResult<()> {
        let items = followers
            .iter()
            .map(|f| key(celebrities_pk(f), author.as_str()))
            .collect();
        self.batch_put(items).await
    }

    async fn mark_celebrity(&self, author: &UserId) -> StoreResult<()> {
        let write = Write::update(meta_key(author), "SET celebrity = :yes")
            .value(":yes", AttributeValue::Bool(true));
        self.write(write).await
    }

    async fn put_post(&self, post: &PostCopy) -> StoreResult<()> {
        let mut item = to_item(post)?;
        item.extend(post_key(&post.post_id));
        self.write(Write::put(item).if_absent(POST_EXISTS)).await
    }

    async fn update_post(&self, post: &PostCopy) -> StoreResult<()> {
        let location = post.location.as_ref().map_or(AttributeValue::Null(true), s);
        let write = Write::update(
            post_key(&post.post_id),
            "SET caption = :c, #loc = :l, version = :v",
        )
        .when(
            POST_STALE,
            "attribute_exists(pk) AND deleted = :no AND version < :v",
        )
        .name("#loc", "location")
        .value(":c", s(&post.caption))
        .value(":l", location)
        .value(":v", n(post.version))
        .value(":no", AttributeValue::Bool(false));
        self.write(write).await
    }

    async fn post(&self, post_id: &PostId) -> StoreResult<Option<PostCopy>> {
        match self.get_item(&post_key(post_id)).await? {
            // A tombstone has no caption or time: it is no copy.
            Some(item) if !bool_attr(&item, "deleted") => from_item(item).map(Some),
            _ => Ok(None),
        }
    }

    async fn tombstone_post(
        &self,
        post_id: &PostId,
        author_id: &UserId,
        entry: Option<&Entry>,
    ) -> StoreResult<()> {
        let mut item = post_key(post_id);
        item.insert("post_id".to_owned(), s(post_id.as_str()));
        item.insert("author_id".to_owned(), s(author_id.as_str()));
        item.insert("deleted".to_owned(), AttributeValue::Bool(true));
        if let Some(entry) = entry {
            item.insert("position".to_owned(), s(&entry.position));
        }
        item.insert("ttl".to_owned(), ttl(TOMBSTONE_TTL_SECONDS));
        self.write(Write::put(item)).await
    }

    async fn deleted_entry(&self, post_id: &PostId) -> StoreResult<Option<Entry>> {
        let Some(item) = self.get_item(&post_key(post_id)).await? else {
            return Ok(None);
        };
        if !bool_attr(&item, "deleted") {
            return Ok(None);
        }
        let (Some(position), Some(author)) = (
            string_attr(&item, "position"),
            string_attr(&item, "author_id"),
        ) else {
            return Ok(None);
        };
        Ok(Some(Entry {
            position: position.to_owned(),
            post_id: post_id.clone(),
            author_id: UserId::trusted(author),
        }))
    }

    async fn add_engagement(
        &self,
        consumer: &str,
        event_id: &EventId,
        change: &EngagementChanged,
    ) -> StoreResult<()> {
        let count = Write::update(
            post_key(&change.post_id),
            "ADD like_count :l, comment_count :c",
        )
        .when(POST_GONE, "attribute_exists(pk) AND deleted = :no")
        .value(":l", n(change.like_delta))
        .value(":c", n(change.comment_delta))
        .value(":no", AttributeValue::Bool(false));
        self.transact(vec![shutter_events::processed(consumer, event_id), count])
            .await
    }

    async fn set_liked(&self, user: &UserId, post: &PostId, marker: PairMarker) -> StoreResult<()> {
        let mut item = to_item(&marker)?;
        item.extend(liked_key(user, post));
        item.insert("ttl".to_owned(), ttl(ENTRY_TTL_SECONDS));
        let write = Write::put(item)
            .when(LIKE_STALE, "attribute_not_exists(pk) OR seq < :seq")
            .value(":seq", n(marker.seq));
        self.write(write).await
    }
}
