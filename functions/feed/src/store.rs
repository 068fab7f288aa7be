//! The feed table and its DynamoDB adapter.
//!
//! Layout (`pk` / `sk`):
//! - `TL#<user>` / `<published at>#<post id>`: an entry of the user's home timeline
//!   (expires after [`ENTRY_TTL_SECONDS`]; trimmed to [`TIMELINE_CAP`]);
//! - `RECENT#<author>` / `<published at>#<post id>`: the author's posts, newest first:
//!   what a new follower gets backfilled with and what a celebrity's followers merge in;
//! - `POST#<id>` / `POST`: the feed's copy of a published post (caption, media, counts);
//! - `FEDGE#<follower>#<followee>` / `EDGE`: the newest applied follow change (`seq`,
//!   `holds`), so follow events apply once and in order;
//! - `FOLLOWERS#<author>` / `<follower>`: whom to fan an ordinary author's posts out to;
//! - `CELEBFOLLOWING#<user>` / `<author>`: the celebrities the user follows, merged at
//!   read time;
//! - `AUTHOR#<id>` / `META`: `follower_count` and whether the author is a celebrity;
//! - `LIKED#<user>#<post>` / `LIKED`: whether the user likes the post (`seq`, `holds`);
//! - `PROCESSED#...`: applied engagement events; `DIR#...`: the directory of authors.
//!
//! Every request to DynamoDB is counted ([`FeedStore::requests`]), so the fan-out and
//! read benchmarks can print requests per operation.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};
use shutter_core::ApiError;
use shutter_store::dynamodb::types::{
    AttributeValue, Delete, DeleteRequest, Put, PutRequest, TransactWriteItem, Update, WriteRequest,
};
use shutter_store::{Item, Table, cancellation_reasons, from_item, n, s, to_item};

/// Timelines keep at most this many entries.
pub const TIMELINE_CAP: usize = 800;
/// Timeline and recent-post entries expire after 30 days.
pub const ENTRY_TTL_SECONDS: i64 = 30 * 24 * 3600;
/// BatchWriteItem takes 25 requests.
const WRITE_BATCH: usize = 25;

/// A timeline or recent-posts entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// `<published at>#<post id>`: the sort key, newest last.
    pub position: String,
    pub post_id: String,
    pub author_id: String,
}

impl Entry {
    pub fn new(published_at: &str, post_id: &str, author_id: &str) -> Self {
        Self {
            position: format!("{published_at}#{post_id}"),
            post_id: post_id.to_owned(),
            author_id: author_id.to_owned(),
        }
    }
}

/// A ready media item of a post copy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MediaCopy {
    pub id: String,
    pub content_type: String,
    pub display_key: String,
    #[serde(default)]
    pub thumbnail_key: Option<String>,
}

/// The feed's copy of a published post.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PostCopy {
    pub post_id: String,
    pub author_id: String,
    pub caption: String,
    #[serde(default)]
    pub location: Option<String>,
    #[serde(default)]
    pub media: Vec<MediaCopy>,
    pub published_at: String,
    /// The post's `version` this copy was made from: an older update never overwrites it.
    pub version: u64,
    #[serde(default)]
    pub like_count: i64,
    #[serde(default)]
    pub comment_count: i64,
    #[serde(default)]
    pub deleted: bool,
}

/// The newest applied change of a pair (a follow, a like).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PairMarker {
    pub seq: u64,
    pub holds: bool,
}

/// An author's follower count and celebrity flag.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthorMeta {
    #[serde(default)]
    pub follower_count: i64,
    #[serde(default)]
    pub celebrity: bool,
}

/// What one page's hydration read.
#[derive(Debug, Default)]
pub struct Hydrated {
    pub posts: HashMap<String, PostCopy>,
    pub authors: HashMap<String, shutter_directory::legacy::Author>,
    pub liked: std::collections::HashSet<String>,
}

#[derive(Debug, Clone)]
pub struct FeedStore {
    pub table: Table,
    requests: Arc<AtomicU64>,
}

fn internal(e: impl std::error::Error + Send + Sync + 'static) -> ApiError {
    ApiError::internal(e)
}

use shutter_store::key;

fn string(item: &Item, name: &str) -> String {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .cloned()
        .unwrap_or_default()
}

fn conditional_failure(reasons: &[String]) -> bool {
    reasons
        .iter()
        .any(|r| r == "ConditionalCheckFailed" || r == "TransactionConflict")
}

impl FeedStore {
    pub fn new(table: Table) -> Self {
        Self {
            table,
            requests: Arc::default(),
        }
    }

    /// DynamoDB requests made so far through this store.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    fn count(&self, requests: u64) {
        self.requests.fetch_add(requests, Ordering::Relaxed);
    }

    async fn get<T: serde::de::DeserializeOwned>(
        &self,
        pk: &str,
        sk: &str,
    ) -> Result<Option<T>, ApiError> {
        self.count(1);
        Ok(self.table.get(pk, sk).await?)
    }

    /// Entries of `pk` (a timeline or an author's recent posts), newest first, before
    /// `before` when given.
    pub async fn entries(
        &self,
        pk: &str,
        before: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Entry>, ApiError> {
        self.count(1);
        let items = self.table.query_page(pk, before, true, Some(limit)).await?;
        Ok(items
            .iter()
            .map(|item| Entry {
                position: string(item, "sk"),
                post_id: string(item, "post_id"),
                author_id: string(item, "author_id"),
            })
            .collect())
    }

    fn entry_item(pk: &str, entry: &Entry) -> Item {
        let mut item = key(pk, &entry.position);
        item.insert("post_id".to_owned(), s(&entry.post_id));
        item.insert("author_id".to_owned(), s(&entry.author_id));
        item.insert(
            "ttl".to_owned(),
            n(shutter_store::epoch_seconds() + ENTRY_TTL_SECONDS),
        );
        item
    }

    /// The write that puts `entry` at `pk` (or deletes it).
    fn entry_write(pk: &str, entry: &Entry, put: bool) -> Result<WriteRequest, ApiError> {
        let request = if put {
            PutRequest::builder()
                .set_item(Some(Self::entry_item(pk, entry)))
                .build()
                .map(|p| WriteRequest::builder().put_request(p).build())
        } else {
            DeleteRequest::builder()
                .set_key(Some(key(pk, &entry.position)))
                .build()
                .map(|d| WriteRequest::builder().delete_request(d).build())
        };
        request.map_err(internal)
    }

    /// Puts (or deletes) `entry` in each of `users`' timelines, 25 a request. Writing an
    /// entry that is there, or deleting one that is not, changes nothing: a retried batch
    /// does no harm.
    pub async fn write_timelines(
        &self,
        users: &[String],
        entry: &Entry,
        put: bool,
    ) -> Result<(), ApiError> {
        let requests = users
            .iter()
            .map(|user| Self::entry_write(&format!("TL#{user}"), entry, put))
            .collect::<Result<_, _>>()?;
        self.batch_write(requests).await
    }

    /// Puts or deletes `entries` in one user's timeline.
    pub async fn write_timeline_entries(
        &self,
        user: &str,
        entries: &[Entry],
        put: bool,
    ) -> Result<(), ApiError> {
        let pk = format!("TL#{user}");
        let requests = entries
            .iter()
            .map(|entry| Self::entry_write(&pk, entry, put))
            .collect::<Result<_, _>>()?;
        self.batch_write(requests).await
    }

    async fn batch_write(&self, requests: Vec<WriteRequest>) -> Result<(), ApiError> {
        for chunk in requests.chunks(WRITE_BATCH) {
            let mut pending = chunk.to_vec();
            let mut attempts = 0;
            while !pending.is_empty() {
                attempts += 1;
                self.count(1);
                let out = self
                    .table
                    .client
                    .batch_write_item()
                    .request_items(&self.table.name, pending)
                    .send()
                    .await
                    .map_err(internal)?;
                pending = out
                    .unprocessed_items
                    .and_then(|mut u| u.remove(&self.table.name))
                    .unwrap_or_default();
                if !pending.is_empty() {
                    if attempts >= 8 {
                        return Err(internal(std::io::Error::other(
                            "writes left unprocessed; retry",
                        )));
                    }
                    // Throttled: back off before sending the rest.
                    tokio::time::sleep(std::time::Duration::from_millis(50 << attempts.min(5)))
                        .await;
                }
            }
        }
        Ok(())
    }

    /// Deletes the timeline's entries beyond [`TIMELINE_CAP`].
    pub async fn trim(&self, user: &str) -> Result<usize, ApiError> {
        let pk = format!("TL#{user}");
        let kept = self.entries(&pk, None, TIMELINE_CAP).await?;
        if kept.len() < TIMELINE_CAP {
            return Ok(0);
        }
        let oldest_kept = kept.last().map(|e| e.position.clone());
        let mut trimmed = 0;
        loop {
            let beyond = self.entries(&pk, oldest_kept.as_deref(), 100).await?;
            if beyond.is_empty() {
                return Ok(trimmed);
            }
            trimmed += beyond.len();
            self.write_timeline_entries(user, &beyond, false).await?;
        }
    }

    /// Deletes every entry of the user's timeline (account deletion).
    pub async fn clear_timeline(&self, user: &str) -> Result<(), ApiError> {
        loop {
            let entries = self.entries(&format!("TL#{user}"), None, 100).await?;
            if entries.is_empty() {
                return Ok(());
            }
            self.write_timeline_entries(user, &entries, false).await?;
        }
    }

    pub async fn put_recent(&self, entry: &Entry, put: bool) -> Result<(), ApiError> {
        let pk = format!("RECENT#{}", entry.author_id);
        self.batch_write(vec![Self::entry_write(&pk, entry, put)?])
            .await
    }

    /// Up to `limit` followers of `author` after `after`.
    pub async fn followers(
        &self,
        author: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<String>, ApiError> {
        self.count(1);
        let pk = format!("FOLLOWERS#{author}");
        let items = self
            .table
            .query_page(&pk, after, false, Some(limit))
            .await?;
        Ok(items.iter().map(|item| string(item, "sk")).collect())
    }

    /// The celebrities `user` follows.
    pub async fn celebrities_followed(&self, user: &str) -> Result<Vec<String>, ApiError> {
        self.count(1);
        let pk = format!("CELEBFOLLOWING#{user}");
        let items = self.table.query_page(&pk, None, false, None).await?;
        Ok(items.iter().map(|item| string(item, "sk")).collect())
    }

    pub async fn author_meta(&self, author: &str) -> Result<AuthorMeta, ApiError> {
        Ok(self
            .get(&format!("AUTHOR#{author}"), "META")
            .await?
            .unwrap_or_default())
    }

    pub async fn edge(
        &self,
        follower: &str,
        followee: &str,
    ) -> Result<Option<PairMarker>, ApiError> {
        self.get(&format!("FEDGE#{follower}#{followee}"), "EDGE")
            .await
    }

    /// Moves a follow edge from `previous` to `next` with its follower-list entry, the
    /// followee's follower count and (for a celebrity) the follower's celebrity list, in
    /// one transaction; `false` when the marker moved meanwhile.
    pub async fn set_edge(
        &self,
        follower: &str,
        followee: &str,
        previous: Option<PairMarker>,
        next: PairMarker,
        celebrity: bool,
    ) -> Result<bool, ApiError> {
        let mut marker = to_item(&next)?;
        marker.extend(key(format!("FEDGE#{follower}#{followee}"), "EDGE"));
        let mut put = Put::builder()
            .table_name(&self.table.name)
            .set_item(Some(marker));
        put = match previous {
            None => put.condition_expression("attribute_not_exists(pk)"),
            Some(p) => put
                .condition_expression("seq = :seq")
                .expression_attribute_values(":seq", n(p.seq)),
        };
        let mut items = vec![
            TransactWriteItem::builder()
                .put(put.build().map_err(internal)?)
                .build(),
        ];
        let was = previous.is_some_and(|p| p.holds);
        if was != next.holds {
            let follower_entry = key(format!("FOLLOWERS#{followee}"), follower);
            let celeb_entry = key(format!("CELEBFOLLOWING#{follower}"), followee);
            if next.holds {
                let put = Put::builder()
                    .table_name(&self.table.name)
                    .set_item(Some(follower_entry))
                    .build()
                    .map_err(internal)?;
                items.push(TransactWriteItem::builder().put(put).build());
                if celebrity {
                    let put = Put::builder()
                        .table_name(&self.table.name)
                        .set_item(Some(celeb_entry))
                        .build()
                        .map_err(internal)?;
                    items.push(TransactWriteItem::builder().put(put).build());
                }
            } else {
                for k in [follower_entry, celeb_entry] {
                    let del = Delete::builder()
                        .table_name(&self.table.name)
                        .set_key(Some(k))
                        .build()
                        .map_err(internal)?;
                    items.push(TransactWriteItem::builder().delete(del).build());
                }
            }
            let update = Update::builder()
                .table_name(&self.table.name)
                .set_key(Some(key(format!("AUTHOR#{followee}"), "META")))
                .update_expression("ADD follower_count :d")
                .expression_attribute_values(":d", n(if next.holds { 1 } else { -1 }))
                .build()
                .map_err(internal)?;
            items.push(TransactWriteItem::builder().update(update).build());
        }
        self.transact(items).await
    }

    async fn transact(&self, items: Vec<TransactWriteItem>) -> Result<bool, ApiError> {
        self.count(1);
        match self
            .table
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(err) if conditional_failure(&cancellation_reasons(&err)) => Ok(false),
            Err(err) => Err(internal(err)),
        }
    }

    /// Marks `author` a celebrity and lists them among every follower's celebrities (so
    /// their posts are merged at read time from now on instead of fanned out).
    pub async fn promote(&self, author: &str) -> Result<usize, ApiError> {
        let mut after: Option<String> = None;
        let mut listed = 0;
        loop {
            let page = self.followers(author, after.as_deref(), 1000).await?;
            let Some(last) = page.last().cloned() else {
                break;
            };
            let requests: Vec<WriteRequest> = page
                .iter()
                .map(|f| {
                    PutRequest::builder()
                        .set_item(Some(key(format!("CELEBFOLLOWING#{f}"), author)))
                        .build()
                        .map(|p| WriteRequest::builder().put_request(p).build())
                })
                .collect::<Result<_, _>>()
                .map_err(internal)?;
            listed += requests.len();
            self.batch_write(requests).await?;
            after = Some(last);
        }
        self.count(1);
        self.table
            .client
            .update_item()
            .table_name(&self.table.name)
            .set_key(Some(key(format!("AUTHOR#{author}"), "META")))
            .update_expression("SET celebrity = :yes")
            .expression_attribute_values(":yes", AttributeValue::Bool(true))
            .send()
            .await
            .map_err(internal)?;
        Ok(listed)
    }

    /// Stores a newly published post's copy unless one (or a tombstone) is there.
    pub async fn put_post(&self, post: &PostCopy) -> Result<(), ApiError> {
        let mut item = to_item(post)?;
        item.extend(key(format!("POST#{}", post.post_id), "POST"));
        self.count(1);
        let result = self
            .table
            .client
            .put_item()
            .table_name(&self.table.name)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        Self::unless_condition_failed(result)
    }

    /// Applies an edit (caption, location) of a newer version; counts are kept.
    pub async fn update_post(&self, post: &PostCopy) -> Result<(), ApiError> {
        self.count(1);
        let result = self
            .table
            .client
            .update_item()
            .table_name(&self.table.name)
            .set_key(Some(key(format!("POST#{}", post.post_id), "POST")))
            .update_expression("SET caption = :c, #loc = :l, version = :v")
            .condition_expression("attribute_exists(pk) AND deleted = :no AND version < :v")
            .expression_attribute_names("#loc", "location")
            .expression_attribute_values(":c", s(&post.caption))
            .expression_attribute_values(
                ":l",
                post.location.as_ref().map_or(AttributeValue::Null(true), s),
            )
            .expression_attribute_values(":v", n(post.version))
            .expression_attribute_values(":no", AttributeValue::Bool(false))
            .send()
            .await;
        Self::unless_condition_failed(result)
    }

    /// A write whose condition failed changed nothing, which is what a repeated or stale
    /// event should do.
    fn unless_condition_failed<T, E>(
        result: Result<T, shutter_store::dynamodb::error::SdkError<E>>,
    ) -> Result<(), ApiError>
    where
        E: shutter_store::dynamodb::error::ProvideErrorMetadata
            + std::error::Error
            + Send
            + Sync
            + 'static,
    {
        match result {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error().and_then(|se| se.code())
                    == Some("ConditionalCheckFailedException") =>
            {
                Ok(())
            }
            Err(e) => Err(internal(e)),
        }
    }

    pub async fn post(&self, post_id: &str) -> Result<Option<PostCopy>, ApiError> {
        self.get(&format!("POST#{post_id}"), "POST").await
    }

    /// Replaces the post copy with a tombstone (kept a week: late events cannot revive it).
    pub async fn tombstone_post(&self, post_id: &str, author_id: &str) -> Result<(), ApiError> {
        let mut item = key(format!("POST#{post_id}"), "POST");
        item.insert("post_id".to_owned(), s(post_id));
        item.insert("author_id".to_owned(), s(author_id));
        item.insert("deleted".to_owned(), AttributeValue::Bool(true));
        item.insert(
            "ttl".to_owned(),
            n(shutter_store::epoch_seconds() + 8 * 24 * 3600),
        );
        self.count(1);
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

    /// Adds an engagement event's deltas to the post copy, once per event id.
    pub async fn add_engagement(
        &self,
        consumer: &str,
        event_id: &str,
        post_id: &str,
        likes: i64,
        comments: i64,
    ) -> Result<(), ApiError> {
        let update = Update::builder()
            .table_name(&self.table.name)
            .set_key(Some(key(format!("POST#{post_id}"), "POST")))
            .update_expression("ADD like_count :l, comment_count :c")
            .condition_expression("attribute_exists(pk) AND deleted = :no")
            .expression_attribute_values(":l", n(likes))
            .expression_attribute_values(":c", n(comments))
            .expression_attribute_values(":no", AttributeValue::Bool(false))
            .build()
            .map_err(internal)?;
        let items = vec![
            shutter_events::legacy::processed_marker(&self.table.name, consumer, event_id),
            TransactWriteItem::builder().update(update).build(),
        ];
        // Seen before, or the post is unknown or deleted: nothing to count.
        self.transact(items).await.map(|_| ())
    }

    /// Records whether `user` likes `post` as of `seq`, unless a newer change is there.
    pub async fn set_liked(
        &self,
        user: &str,
        post: &str,
        marker: PairMarker,
    ) -> Result<(), ApiError> {
        let mut item = to_item(&marker)?;
        item.extend(key(format!("LIKED#{user}#{post}"), "LIKED"));
        item.insert(
            "ttl".to_owned(),
            n(shutter_store::epoch_seconds() + ENTRY_TTL_SECONDS),
        );
        self.count(1);
        let result = self
            .table
            .client
            .put_item()
            .table_name(&self.table.name)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk) OR seq < :seq")
            .expression_attribute_values(":seq", n(marker.seq))
            .send()
            .await;
        Self::unless_condition_failed(result)
    }

    /// The posts, their authors and the viewer's likes of them, in batches of 100 keys.
    pub async fn hydrate(
        &self,
        viewer: &str,
        posts: &[String],
        authors: &[String],
    ) -> Result<Hydrated, ApiError> {
        let mut keys: Vec<Item> = Vec::new();
        for p in posts {
            keys.push(key(format!("POST#{p}"), "POST"));
            keys.push(key(format!("LIKED#{viewer}#{p}"), "LIKED"));
        }
        for a in authors {
            keys.push(key(format!("DIR#AUTHOR#{a}"), "DIR"));
        }
        let mut out = Hydrated::default();
        // Eventually consistent: a page tolerates milliseconds of lag at half the read cost.
        let (items, requests) = self
            .table
            .batch_get_counted(keys, shutter_store::Consistency::Eventual)
            .await?;
        self.count(requests);
        for item in items {
            let pk = string(&item, "pk");
            if pk.starts_with("POST#") {
                let post: PostCopy = from_item(item)?;
                if !post.deleted {
                    out.posts.insert(post.post_id.clone(), post);
                }
            } else if let Some(rest) = pk.strip_prefix("LIKED#") {
                if item.get("holds").and_then(|v| v.as_bool().ok()) == Some(&true)
                    && let Some((_, post)) = rest.split_once('#')
                {
                    out.liked.insert(post.to_owned());
                }
            } else if pk.starts_with("DIR#AUTHOR#") && !item.contains_key("deleted") {
                let author: shutter_directory::legacy::Author = from_item(item)?;
                out.authors.insert(author.user_id.clone(), author);
            }
        }
        Ok(out)
    }
}
