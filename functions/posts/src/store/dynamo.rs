//! The DynamoDB adapter of [`PostsStore`]: keys, items and conditions of the layout in
//! [`crate::store`].

use std::collections::{BTreeSet, HashMap, HashSet};

use async_trait::async_trait;
use serde::Deserialize;
use shutter_core::{PostId, UserId};
use shutter_events::{Envelope, outbox_write};
use shutter_store::{
    AttributeValue, Consistency, Item, Query, StoreError, StoreResult, Table, Write, bool_attr,
    from_item, key, n, number_attr, s, string_attr, to_item,
};

use super::{
    ACCOUNT_DELETED, Idempotency, Index, IndexEntry, IndexPage, KEY_REUSED, MARKER_CHANGED,
    POST_GONE, PostsStore, STALE, Stored, Tally,
};
use crate::model::{Marker, MarkerId, Post, PostStatus};

/// Idempotency keys are honoured for a day.
const IDEMPOTENCY_TTL_SECONDS: i64 = 24 * 3600;

/// Adapter-internal conflicts, resolved before they leave it.
const KEY_USED: &str = "idempotency_key_used";
/// A new post's id is taken: ids are ULIDs, so this is a bug, not a race.
const POST_EXISTS: &str = "post_exists";

const POST_SK: &str = "POST";

fn post_pk(id: &str) -> String {
    format!("POST#{id}")
}

fn index_pk(index: &Index) -> String {
    match index {
        Index::Author(user) => author_pk(user),
        Index::Tag(tag) => tag_pk(tag),
    }
}

fn author_pk(user: &str) -> String {
    format!("AUTHOR#{user}")
}

fn tag_pk(tag: &str) -> String {
    format!("TAG#{tag}")
}

fn idempotency_pk(author: &str, key: &str) -> String {
    format!("IDEMPOTENCY#{author}#{key}")
}

fn marker_sk(marker: &MarkerId) -> String {
    match marker {
        MarkerId::Like(user) => format!("LIKE#{user}"),
        MarkerId::Comment(comment) => format!("COMMENT#{comment}"),
    }
}

/// The posts table.
#[derive(Debug, Clone)]
pub struct DynamoPostsStore {
    pub table: Table,
}

fn post_item(post: &Post) -> StoreResult<Item> {
    let mut item = to_item(post)?;
    item.extend(key(post_pk(&post.id), POST_SK));
    Ok(item)
}

/// Every attribute of `post` but its counters, set on the stored item: the counters
/// move under `ADD` without a version bump (so that likes never make an edit stale), and
/// a whole-item put would write back the counts it read.
fn post_update(post: &Post) -> StoreResult<Write> {
    let mut item = to_item(post)?;
    for counter in ["like_count", "comment_count"] {
        item.remove(counter);
    }
    let attributes: Vec<(String, AttributeValue)> = item.into_iter().collect();
    let sets: Vec<String> = (0..attributes.len())
        .map(|i| format!("#a{i} = :a{i}"))
        .collect();
    let mut write = Write::update(
        key(post_pk(&post.id), POST_SK),
        format!("SET {}", sets.join(", ")),
    );
    for (i, (attribute, value)) in attributes.into_iter().enumerate() {
        write = write
            .name(format!("#a{i}"), attribute)
            .value(format!(":a{i}"), value);
    }
    Ok(write)
}

fn author_entry(post: &Post) -> Write {
    let mut item = key(author_pk(&post.author_id), post_pk(&post.id));
    item.insert("post_id".to_owned(), s(post.id.as_str()));
    item.insert("status".to_owned(), s(post.status.as_str()));
    Write::put(item)
}

/// The entry of `post` under `tag`: the same item however often it is written.
fn tag_entry(tag: &str, post: &Post) -> Item {
    let mut item = key(tag_pk(tag), post_pk(&post.id));
    item.insert("post_id".to_owned(), s(post.id.as_str()));
    item.insert("author_id".to_owned(), s(post.author_id.as_str()));
    item
}

fn tag_key(tag: &str, post: &PostId) -> Item {
    key(tag_pk(tag), post_pk(post))
}

/// The hashtags a post is listed under: a hashtag lists published posts only.
fn listed_tags(post: &Post) -> BTreeSet<&str> {
    if post.status == PostStatus::Published {
        post.hashtags.iter().map(String::as_str).collect()
    } else {
        BTreeSet::new()
    }
}

fn with_events(mut writes: Vec<Write>, events: &[&Envelope]) -> StoreResult<Vec<Write>> {
    for event in events {
        writes.push(outbox_write(event)?);
    }
    Ok(writes)
}

impl DynamoPostsStore {
    /// Puts the entries of `post` under `tags`, in batches: writing one again changes
    /// nothing.
    async fn put_tags(&self, post: &Post, tags: &BTreeSet<&str>) -> StoreResult<()> {
        let items = tags.iter().map(|tag| tag_entry(tag, post)).collect();
        self.table.batch_put(items).await
    }

    /// Deletes the entries of `post` under `tags`, in batches: deleting what is not there
    /// succeeds.
    async fn delete_tags<'a>(
        &self,
        post: &PostId,
        tags: impl IntoIterator<Item = &'a str>,
    ) -> StoreResult<()> {
        // Each key once: DynamoDB refuses a batch that names a key twice.
        let tags: BTreeSet<&str> = tags.into_iter().collect();
        let keys = tags.into_iter().map(|tag| tag_key(tag, post)).collect();
        self.table.batch_delete(keys).await
    }

    /// After a create lost to an existing key: the first post, when the request is the
    /// same.
    async fn replay(&self, author: &UserId, idempotency: &Idempotency) -> StoreResult<Stored> {
        #[derive(Deserialize)]
        struct Used {
            post_id: PostId,
            request_hash: String,
        }
        let used: Used = self
            .table
            .get(&idempotency_pk(author, &idempotency.key), "IDEMPOTENCY")
            .await?
            // Its TTL ran out between the two requests: rare enough to be retried.
            .ok_or_else(|| StoreError::Unavailable("the idempotency item vanished".into()))?;
        if used.request_hash == idempotency.request_hash {
            Ok(Stored::Replayed(used.post_id))
        } else {
            Err(StoreError::Conflict(KEY_REUSED))
        }
    }
}

#[async_trait]
impl PostsStore for DynamoPostsStore {
    async fn post(&self, id: &PostId) -> StoreResult<Option<Post>> {
        self.table.get(&post_pk(id), POST_SK).await
    }

    async fn posts(&self, ids: &[PostId]) -> StoreResult<Vec<Post>> {
        let keys = ids.iter().map(|id| key(post_pk(id), POST_SK)).collect();
        let mut by_id: HashMap<PostId, Post> = HashMap::new();
        for item in self.table.batch_get(keys).await? {
            let post: Post = from_item(item)?;
            by_id.insert(post.id.clone(), post);
        }
        Ok(ids.iter().filter_map(|id| by_id.remove(id)).collect())
    }

    async fn create(
        &self,
        post: &Post,
        event: &Envelope,
        idempotency: Option<&Idempotency>,
    ) -> StoreResult<Stored> {
        // First: a deleted account is told so whatever else fails.
        let mut writes = vec![shutter_directory::account_alive(
            &post.author_id,
            ACCOUNT_DELETED,
        )];
        if let Some(i) = idempotency {
            let mut item = key(idempotency_pk(&post.author_id, &i.key), "IDEMPOTENCY");
            item.insert("post_id".to_owned(), s(post.id.as_str()));
            item.insert("request_hash".to_owned(), s(&i.request_hash));
            item.insert(
                "ttl".to_owned(),
                n(shutter_store::epoch_seconds() + IDEMPOTENCY_TTL_SECONDS),
            );
            writes.push(Write::put(item).if_absent(KEY_USED));
        }
        writes.push(Write::put(post_item(post)?).if_absent(POST_EXISTS));
        writes.push(author_entry(post));
        let writes = with_events(writes, &[event])?;
        match (self.table.transact(writes).await, idempotency) {
            (Ok(()), _) => Ok(Stored::New),
            (Err(StoreError::Conflict(KEY_USED)), Some(i)) => self.replay(&post.author_id, i).await,
            (Err(err), _) => Err(err),
        }
    }

    async fn save(&self, before: &Post, after: &Post, events: &[Envelope]) -> StoreResult<()> {
        let (old, new) = (listed_tags(before), listed_tags(after));
        // Every entry the post will have, before it has it (all of them, not only the new
        // ones: a save also mends an index a failed step left short).
        self.put_tags(after, &new).await?;
        let mut writes = vec![
            post_update(after)?
                .when(STALE, "version = :v")
                .value(":v", n(before.version)),
            shutter_directory::account_alive(&after.author_id, ACCOUNT_DELETED),
        ];
        if before.status != after.status {
            writes.push(author_entry(after));
        }
        let writes = with_events(writes, &events.iter().collect::<Vec<_>>())?;
        self.table.transact(writes).await?;
        // The entries it lost, once it lost them. The change is made: a failure here
        // leaves entries the hashtag lists do not show (they check the post).
        if let Err(err) = self
            .delete_tags(&after.id, old.difference(&new).copied())
            .await
        {
            tracing::warn!(post_id = %after.id, error = %err, "hashtag entries of a saved post left behind");
        }
        Ok(())
    }

    async fn delete(&self, post: &Post, event: &Envelope) -> StoreResult<()> {
        // Every entry the post may have (whatever its status, however many: an index
        // left half-written is deleted all the same), before the post: a failure leaves
        // the post in place for the delete to be retried whole.
        self.delete_tags(&post.id, post.hashtags.iter().map(String::as_str))
            .await?;
        let writes = vec![
            Write::delete(key(post_pk(&post.id), POST_SK))
                .when(STALE, "version = :v")
                .value(":v", n(post.version)),
            Write::delete(key(author_pk(&post.author_id), post_pk(&post.id))),
        ];
        let writes = with_events(writes, &[event])?;
        match self.table.transact(writes).await {
            // Changed meanwhile (STALE): the caller reads it again and deletes that.
            Err(err) if !matches!(err, StoreError::Conflict(STALE)) => {
                // The post stays until a retry: list it under its hashtags again.
                if let Err(restore) = self.put_tags(post, &listed_tags(post)).await {
                    tracing::warn!(post_id = %post.id, error = %restore, "hashtag entries of an undeleted post not restored");
                }
                Err(err)
            }
            other => other,
        }
    }

    async fn page(
        &self,
        index: &Index,
        limit: usize,
        after: Option<&str>,
    ) -> StoreResult<IndexPage> {
        // An author's list is read strongly: the deletion cascade pages it after the
        // account's tombstone, and must meet every post committed before the tombstone
        // (a post created in the last moment of a deleted account's token).
        let consistency = match index {
            Index::Author(_) => Consistency::Strong,
            Index::Tag(_) => Consistency::Eventual,
        };
        // One more than asked tells whether a next page exists.
        let query = Query::partition(index_pk(index))
            .after(after)
            .newest_first()
            .limit(limit + 1)
            .consistency(consistency);
        let mut items = self.table.query(&query).await?;
        let more = items.len() > limit;
        items.truncate(limit);
        let next = match (more, items.last()) {
            (true, Some(last)) => string_attr(last, "sk").map(str::to_owned),
            _ => None,
        };
        let entries = items
            .iter()
            .filter_map(|item| {
                Some(IndexEntry {
                    post_id: PostId::trusted(string_attr(item, "post_id")?),
                    status: string_attr(item, "status").and_then(PostStatus::parse),
                })
            })
            .collect();
        Ok(IndexPage { entries, next })
    }

    async fn drop_entry(&self, index: &Index, post: &PostId) -> StoreResult<()> {
        self.table
            .write(Write::delete(key(index_pk(index), post_pk(post))))
            .await
    }

    async fn liked_by(&self, user: &UserId, posts: &[PostId]) -> StoreResult<HashSet<PostId>> {
        let by_pk: HashMap<String, &PostId> = posts.iter().map(|id| (post_pk(id), id)).collect();
        let like = marker_sk(&MarkerId::Like(user.clone()));
        let keys = by_pk.keys().map(|pk| key(pk, &like)).collect();
        let mut liked = HashSet::new();
        for item in self.table.batch_get(keys).await? {
            let pk = string_attr(&item, "pk").and_then(|pk| by_pk.get(pk));
            if let (true, Some(id)) = (bool_attr(&item, "counted"), pk) {
                liked.insert((*id).clone());
            }
        }
        Ok(liked)
    }

    async fn markers(
        &self,
        post: &PostId,
        markers: &[MarkerId],
    ) -> StoreResult<HashMap<MarkerId, Marker>> {
        let by_sk: HashMap<String, &MarkerId> = markers.iter().map(|m| (marker_sk(m), m)).collect();
        let keys = by_sk.keys().map(|sk| key(post_pk(post), sk)).collect();
        let mut out = HashMap::new();
        for item in self.table.batch_get(keys).await? {
            let marker = string_attr(&item, "sk").and_then(|sk| by_sk.get(sk));
            let (Some(marker), Some(seq)) = (marker, number_attr::<u64>(&item, "seq")) else {
                continue;
            };
            out.insert(
                (*marker).clone(),
                Marker {
                    seq,
                    counted: bool_attr(&item, "counted"),
                },
            );
        }
        Ok(out)
    }

    async fn tally(&self, tally: &Tally) -> StoreResult<()> {
        let pk = post_pk(&tally.post_id);
        let mut writes = Vec::with_capacity(tally.markers.len() + 2);
        let deltas = [
            ("like_count", tally.like_delta),
            ("comment_count", tally.comment_delta),
        ];
        let adds: Vec<String> = deltas
            .iter()
            .enumerate()
            .filter(|(_, (_, delta))| *delta != 0)
            .map(|(i, (attribute, _))| format!("{attribute} :d{i}"))
            .collect();
        if !adds.is_empty() {
            // First, so that a gone post is the conflict reported even when a marker
            // changed too: the tally is then moot.
            let mut update = Write::update(key(&pk, POST_SK), format!("ADD {}", adds.join(", ")))
                .if_present(POST_GONE);
            for (i, (_, delta)) in deltas.iter().enumerate() {
                if *delta != 0 {
                    update = update.value(format!(":d{i}"), n(delta));
                }
            }
            writes.push(update);
        }
        for m in &tally.markers {
            let mut item = key(&pk, marker_sk(&m.marker));
            item.insert("seq".to_owned(), n(m.seq));
            item.insert("counted".to_owned(), AttributeValue::Bool(m.counted));
            writes.push(match m.previous {
                Some(seq) => Write::put(item)
                    .when(MARKER_CHANGED, "seq = :old")
                    .value(":old", n(seq)),
                None => Write::put(item).if_absent(MARKER_CHANGED),
            });
        }
        let writes = with_events(writes, &tally.event.iter().collect::<Vec<_>>())?;
        self.table.transact(writes).await
    }
}
