//! `search-indexer`: keeps the indexes in step with `shutter.posts`, `shutter.identity`,
//! `shutter.profiles`, `shutter.likes` and `shutter.follows` (one MSK mapping per topic).
//!
//! A batch is applied in two bulk requests (plus one for a privacy change):
//!
//! 1. **Edges** (follows, blocks, likes) are indexed with `version_type=external` and the
//!    event's `seq` as version: OpenSearch refuses an older or equal `seq` (409), which is
//!    how a redelivered or out-of-order event changes nothing.
//! 2. **Posts and users** are read (`_mget`), every event of the batch is folded over them
//!    in order, and what changed is written back conditionally on the read
//!    (`if_seq_no`/`if_primary_term`, or `create` for a new document). A post keeps its
//!    own `version` and applies only newer facts; deletes leave tombstones. A write that
//!    lost a race (409) is read and folded again. `like_count` is recounted from the like
//!    edges of the posts the batch touched (an absolute value, so replays cannot drift).
//!
//! Per item: a 409 is a lost race (read again) or a stale edge (done); a 429 or 5xx fails
//! the batch so Lambda retries it; any other 4xx is poison: the records behind that item
//! go to the DLQ with the reason, never silently dropped.

use std::collections::{BTreeSet, HashMap};

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::Value;
use shutter_core::ApiError;
use shutter_events::legacy::{Envelope, decode_kafka_event};
use shutter_events::{KafkaEvent, PoisonQueue};

use crate::docs::{EdgeDoc, EdgeKind, POSTS_INDEX, PostDoc, RELATIONS_INDEX, USERS_INDEX, UserDoc};

/// Rounds of read-fold-write when racing writers keep changing the same documents.
const MAX_ROUNDS: usize = 5;
/// Posts re-flagged per bulk request when an author's privacy changes.
const PRIVACY_PAGE: usize = 500;

/// A document as read, with what a conditional write needs.
#[derive(Debug, Clone, PartialEq)]
pub struct Stored {
    pub source: Value,
    pub seq_no: u64,
    pub primary_term: u64,
}

/// How a write is made conditional.
#[derive(Debug, Clone, PartialEq)]
pub enum Version {
    /// Applied only if `v` is greater than the stored version.
    External(u64),
    /// Applied only if the document is still as read.
    Cas { seq_no: u64, primary_term: u64 },
    /// Applied only if there is no such document.
    Create,
}

/// One operation of a `_bulk` request.
#[derive(Debug, Clone, PartialEq)]
pub enum BulkOp {
    Index {
        index: String,
        id: String,
        source: Value,
        version: Version,
    },
    /// A partial update (retried on conflicts by OpenSearch itself).
    Update {
        index: String,
        id: String,
        doc: Value,
    },
}

/// The answer for one operation.
#[derive(Debug, Clone, PartialEq)]
pub struct ItemResult {
    pub status: u16,
    pub error_type: Option<String>,
    pub reason: Option<String>,
}

impl ItemResult {
    pub fn ok(status: u16) -> Self {
        Self {
            status,
            error_type: None,
            reason: None,
        }
    }

    fn outcome(&self) -> Outcome {
        match self.status {
            200..=299 => Outcome::Done,
            409 => Outcome::Conflict,
            404 if self.error_type.as_deref() == Some("document_missing_exception") => {
                Outcome::Missing
            }
            429 | 500.. => Outcome::Retry,
            _ => Outcome::Poison,
        }
    }

    fn why(&self) -> String {
        format!(
            "OpenSearch refused the document ({}): {}",
            self.error_type.as_deref().unwrap_or("error"),
            self.reason.as_deref().unwrap_or("no reason given")
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Done,
    Conflict,
    Missing,
    Retry,
    Poison,
}

/// What the indexer needs of OpenSearch.
#[async_trait]
pub trait IndexStore: Send + Sync {
    /// The documents of `index` that exist among `ids`.
    async fn get(&self, index: &str, ids: &[String]) -> Result<HashMap<String, Stored>, ApiError>;
    /// One result per operation, in order. `refresh` makes the writes searchable before it
    /// answers (the like counts read them at once).
    async fn bulk(&self, ops: &[BulkOp], refresh: bool) -> Result<Vec<ItemResult>, ApiError>;
    /// Active like edges per post (0 for those with none).
    async fn like_counts(&self, post_ids: &[String]) -> Result<HashMap<String, i64>, ApiError>;
    /// Ids of an author's post documents, by id, after `after`.
    async fn posts_of(
        &self,
        author_id: &str,
        after: Option<&str>,
        size: usize,
    ) -> Result<Vec<String>, ApiError>;
}

// ---------------------------------------------------------------------------------------
// Events

#[derive(Debug, Clone, Deserialize)]
struct PostFacts {
    post_id: String,
    author_id: String,
    #[serde(default)]
    caption: String,
    #[serde(default)]
    location: Option<String>,
    #[serde(default)]
    hashtags: Vec<String>,
    #[serde(default)]
    mentions: Vec<String>,
    #[serde(default)]
    created_at: Option<String>,
    version: u64,
}

#[derive(Debug, Clone, Deserialize)]
struct PostGone {
    post_id: String,
}

#[derive(Debug, Clone, Deserialize)]
struct Registered {
    user_id: String,
    username: String,
}

#[derive(Debug, Clone, Deserialize)]
struct Profile {
    user_id: String,
    username: String,
    #[serde(default)]
    display_name: String,
    #[serde(default)]
    private: bool,
}

#[derive(Debug, Clone, Deserialize)]
struct UserGone {
    user_id: String,
}

#[derive(Debug, Clone, Deserialize)]
struct Follow {
    follower_id: String,
    followee_id: String,
    seq: u64,
}

#[derive(Debug, Clone, Deserialize)]
struct Block {
    blocker_id: String,
    blocked_id: String,
    seq: u64,
}

#[derive(Debug, Clone, Deserialize)]
struct Like {
    post_id: String,
    user_id: String,
    seq: u64,
}

/// What one event asks of the indexes.
#[derive(Debug, Clone)]
enum Effect {
    Post(PostFacts),
    PostGone(PostGone),
    Registered(Registered),
    Profile(Profile),
    UserGone(UserGone),
    Edge(EdgeDoc),
}

/// The effect of `envelope`; `None` for events search does not index. A payload that does
/// not match its type is poison.
fn effect(envelope: &Envelope) -> Result<Option<Effect>, ApiError> {
    let bad = |e: shutter_events::legacy::DecodeError| ApiError::invalid("data", e.to_string());
    let edge = |kind, a: String, b: String, seq, active| {
        Effect::Edge(EdgeDoc {
            kind,
            a,
            b,
            active,
            seq,
        })
    };
    Ok(Some(match envelope.event_type.as_str() {
        "PostPublished" | "PostUpdated" => Effect::Post(envelope.data().map_err(bad)?),
        "PostDeleted" => Effect::PostGone(envelope.data().map_err(bad)?),
        "UserRegistered" => Effect::Registered(envelope.data().map_err(bad)?),
        "ProfileUpdated" | "AvatarChanged" => Effect::Profile(envelope.data().map_err(bad)?),
        "UserDeleted" => Effect::UserGone(envelope.data().map_err(bad)?),
        "FollowStarted" | "FollowEnded" => {
            let f: Follow = envelope.data().map_err(bad)?;
            let active = envelope.event_type == "FollowStarted";
            edge(
                EdgeKind::Follow,
                f.follower_id,
                f.followee_id,
                f.seq,
                active,
            )
        }
        "UserBlocked" | "UserUnblocked" => {
            let b: Block = envelope.data().map_err(bad)?;
            let active = envelope.event_type == "UserBlocked";
            edge(EdgeKind::Block, b.blocker_id, b.blocked_id, b.seq, active)
        }
        "LikeAdded" | "LikeRemoved" => {
            let l: Like = envelope.data().map_err(bad)?;
            let active = envelope.event_type == "LikeAdded";
            edge(EdgeKind::Like, l.user_id, l.post_id, l.seq, active)
        }
        _ => return Ok(None),
    }))
}

// ---------------------------------------------------------------------------------------
// The batch

/// A record of the batch that must go to the DLQ.
#[derive(Debug)]
struct Poisoned {
    position: String,
    reason: String,
    record: String,
}

/// Applies an MSK batch. Poison records go to `poison` once the rest is applied; anything
/// retryable fails the whole batch (every step is idempotent, so the retry is safe).
pub async fn index_events<S: IndexStore, Q: PoisonQueue>(
    store: &S,
    poison: &Q,
    event: &KafkaEvent,
) -> Result<IndexReport, ApiError> {
    let mut poisoned = Vec::new();
    let mut effects: Vec<(usize, Effect)> = Vec::new();
    let mut records: Vec<(String, String)> = Vec::new();
    for record in decode_kafka_event(event) {
        let envelope = match record.event {
            Ok(e) => e,
            Err(err) => {
                poisoned.push(Poisoned {
                    position: record.position,
                    reason: err.to_string(),
                    record: String::new(),
                });
                continue;
            }
        };
        let text = serde_json::to_string(&envelope).unwrap_or_default();
        match effect(&envelope) {
            Ok(Some(e)) => {
                effects.push((records.len(), e));
                records.push((record.position, text));
            }
            Ok(None) => {}
            Err(err) => poisoned.push(Poisoned {
                position: record.position,
                reason: err.to_string(),
                record: text,
            }),
        }
    }
    let report = apply(store, &effects).await?;
    for idx in &report.poisoned {
        if let Some((position, text)) = records.get(idx.0) {
            poisoned.push(Poisoned {
                position: position.clone(),
                reason: idx.1.clone(),
                record: text.clone(),
            });
        }
    }
    for p in &poisoned {
        tracing::error!(position = %p.position, reason = %p.reason, "poison record sent to the DLQ");
        poison.send(&p.position, &p.reason, &p.record).await?;
    }
    tracing::info!(
        edges = report.edges,
        documents = report.documents,
        poisoned = poisoned.len(),
        "batch indexed"
    );
    Ok(IndexReport {
        poisoned: Vec::new(),
        poison_sent: poisoned.len(),
        ..report
    })
}

/// What a batch did.
#[derive(Debug, Default)]
pub struct IndexReport {
    /// Edge documents written (stale ones not counted).
    pub edges: usize,
    /// Post and user documents written.
    pub documents: usize,
    /// Records sent to the DLQ.
    pub poison_sent: usize,
    poisoned: Vec<(usize, String)>,
}

async fn apply<S: IndexStore>(
    store: &S,
    effects: &[(usize, Effect)],
) -> Result<IndexReport, ApiError> {
    let mut report = IndexReport::default();
    // 1. Edges, newest seq wins (OpenSearch's external versioning decides).
    let mut ops = Vec::new();
    let mut owners = Vec::new();
    let mut liked_posts = BTreeSet::new();
    for (idx, e) in effects {
        if let Effect::Edge(edge) = e {
            if edge.kind == EdgeKind::Like {
                liked_posts.insert(edge.b.clone());
            }
            ops.push(BulkOp::Index {
                index: RELATIONS_INDEX.to_owned(),
                id: edge.id(),
                source: serde_json::to_value(edge).map_err(ApiError::internal)?,
                version: Version::External(edge.seq),
            });
            owners.push(vec![*idx]);
        }
    }
    let results = store.bulk(&ops, !liked_posts.is_empty()).await?;
    for (result, owner) in results.iter().zip(&owners) {
        match result.outcome() {
            Outcome::Done => report.edges += 1,
            // A newer or equal seq is already there: this event is old news.
            Outcome::Conflict | Outcome::Missing => {}
            Outcome::Retry => return Err(retry(result)),
            Outcome::Poison => report
                .poisoned
                .extend(owner.iter().map(|i| (*i, result.why()))),
        }
    }
    // 2. Posts and users, folded and written conditionally.
    for _ in 0..MAX_ROUNDS {
        match fold_and_write(store, effects, &liked_posts, &mut report).await? {
            Round::Done => return Ok(report),
            Round::Raced => continue,
        }
    }
    Err(ApiError::internal(std::io::Error::other(
        "search documents kept changing under the indexer; the batch will be retried",
    )))
}

fn retry(result: &ItemResult) -> ApiError {
    ApiError::internal(std::io::Error::other(result.why()))
}

enum Round {
    Done,
    Raced,
}

/// One document's state while the batch is folded over it.
struct Slot<T> {
    stored: Option<Stored>,
    current: Option<T>,
    /// The records that changed it (poisoned together if OpenSearch refuses it).
    owners: Vec<usize>,
}

fn slots<T: serde::de::DeserializeOwned>(
    stored: HashMap<String, Stored>,
) -> HashMap<String, Slot<T>> {
    stored
        .into_iter()
        .map(|(id, s)| {
            let current = serde_json::from_value(s.source.clone()).ok();
            (
                id,
                Slot {
                    stored: Some(s),
                    current,
                    owners: Vec::new(),
                },
            )
        })
        .collect()
}

fn slot<'a, T>(map: &'a mut HashMap<String, Slot<T>>, id: &str) -> &'a mut Slot<T> {
    map.entry(id.to_owned()).or_insert_with(|| Slot {
        stored: None,
        current: None,
        owners: Vec::new(),
    })
}

async fn fold_and_write<S: IndexStore>(
    store: &S,
    effects: &[(usize, Effect)],
    liked_posts: &BTreeSet<String>,
    report: &mut IndexReport,
) -> Result<Round, ApiError> {
    let mut post_ids: BTreeSet<String> = liked_posts.clone();
    let mut user_ids: BTreeSet<String> = BTreeSet::new();
    for (_, e) in effects {
        match e {
            Effect::Post(f) => {
                post_ids.insert(f.post_id.clone());
                user_ids.insert(f.author_id.clone());
            }
            Effect::PostGone(g) => {
                post_ids.insert(g.post_id.clone());
            }
            Effect::Registered(r) => {
                user_ids.insert(r.user_id.clone());
            }
            Effect::Profile(p) => {
                user_ids.insert(p.user_id.clone());
            }
            Effect::UserGone(g) => {
                user_ids.insert(g.user_id.clone());
            }
            Effect::Edge(_) => {}
        }
    }
    if post_ids.is_empty() && user_ids.is_empty() {
        return Ok(Round::Done);
    }
    let post_ids: Vec<String> = post_ids.into_iter().collect();
    let user_ids: Vec<String> = user_ids.into_iter().collect();
    let (posts, users) = futures::try_join!(
        store.get(POSTS_INDEX, &post_ids),
        store.get(USERS_INDEX, &user_ids)
    )?;
    let mut posts: HashMap<String, Slot<PostDoc>> = slots(posts);
    let mut users: HashMap<String, Slot<UserDoc>> = slots(users);
    // Counts for the posts whose likes changed and for posts new to the index.
    let to_count: Vec<String> = post_ids
        .iter()
        .filter(|id| liked_posts.contains(*id) || !posts.contains_key(*id))
        .cloned()
        .collect();
    let counts = store.like_counts(&to_count).await?;

    for (idx, e) in effects {
        match e {
            Effect::Post(f) => {
                let author_private = users
                    .get(&f.author_id)
                    .and_then(|s| s.current.as_ref())
                    .is_some_and(|u| u.private);
                let s = slot(&mut posts, &f.post_id);
                let like_count = match &s.current {
                    Some(p) if p.deleted || p.version >= f.version => continue,
                    Some(p) => p.like_count,
                    None => counts.get(&f.post_id).copied().unwrap_or(0),
                };
                s.current = Some(PostDoc {
                    post_id: f.post_id.clone(),
                    author_id: f.author_id.clone(),
                    caption: f.caption.clone(),
                    location: f.location.clone(),
                    hashtags: f.hashtags.iter().map(|h| h.to_lowercase()).collect(),
                    mentions: f.mentions.clone(),
                    created_at: f.created_at.clone(),
                    version: f.version,
                    like_count,
                    popularity: None,
                    author_private,
                    deleted: false,
                });
                s.owners.push(*idx);
            }
            Effect::PostGone(g) => {
                let s = slot(&mut posts, &g.post_id);
                if s.current.as_ref().is_some_and(|p| p.deleted) {
                    continue;
                }
                let version = s.current.as_ref().map_or(0, |p| p.version);
                s.current = Some(PostDoc {
                    post_id: g.post_id.clone(),
                    version,
                    deleted: true,
                    ..PostDoc::default()
                });
                s.owners.push(*idx);
            }
            Effect::Registered(r) => {
                let s = slot(&mut users, &r.user_id);
                // The profile's events know better; registration only fills a gap.
                if s.current.is_some() {
                    continue;
                }
                s.current = Some(UserDoc {
                    user_id: r.user_id.clone(),
                    username: r.username.clone(),
                    display_name: r.username.clone(),
                    private: false,
                    deleted: false,
                });
                s.owners.push(*idx);
            }
            Effect::Profile(p) => {
                let s = slot(&mut users, &p.user_id);
                if s.current.as_ref().is_some_and(|u| u.deleted) {
                    continue;
                }
                s.current = Some(UserDoc {
                    user_id: p.user_id.clone(),
                    username: p.username.clone(),
                    display_name: p.display_name.clone(),
                    private: p.private,
                    deleted: false,
                });
                s.owners.push(*idx);
            }
            Effect::UserGone(g) => {
                let s = slot(&mut users, &g.user_id);
                s.current = Some(UserDoc {
                    user_id: g.user_id.clone(),
                    deleted: true,
                    ..UserDoc::default()
                });
                s.owners.push(*idx);
            }
            Effect::Edge(_) => {}
        }
    }
    for post_id in liked_posts {
        if let Some(s) = posts.get_mut(post_id)
            && let Some(p) = s.current.as_mut()
            && !p.deleted
        {
            p.like_count = counts.get(post_id).copied().unwrap_or(p.like_count);
        }
    }
    for p in posts.values_mut().filter_map(|s| s.current.as_mut()) {
        p.popularity = (!p.deleted).then(|| p.like_count.max(0) + 1);
    }

    // A privacy change re-flags the author's posts first: if that fails, the user document
    // still holds the old flag, so the retry sees the change again.
    for (user_id, s) in &users {
        let before = s
            .stored
            .as_ref()
            .and_then(|st| serde_json::from_value::<UserDoc>(st.source.clone()).ok())
            .is_some_and(|u| u.private);
        if let Some(u) = &s.current
            && !u.deleted
            && u.private != before
        {
            reflag_posts(store, user_id, u.private).await?;
        }
    }

    let mut ops = Vec::new();
    let mut owners = Vec::new();
    collect_writes(POSTS_INDEX, &posts, &mut ops, &mut owners)?;
    collect_writes(USERS_INDEX, &users, &mut ops, &mut owners)?;
    let results = store.bulk(&ops, false).await?;
    let mut raced = false;
    for (result, owner) in results.iter().zip(&owners) {
        match result.outcome() {
            Outcome::Done => report.documents += 1,
            Outcome::Conflict | Outcome::Missing => raced = true,
            Outcome::Retry => return Err(retry(result)),
            Outcome::Poison => report
                .poisoned
                .extend(owner.iter().map(|i| (*i, result.why()))),
        }
    }
    Ok(if raced { Round::Raced } else { Round::Done })
}

fn collect_writes<T: serde::Serialize>(
    index: &str,
    slots: &HashMap<String, Slot<T>>,
    ops: &mut Vec<BulkOp>,
    owners: &mut Vec<Vec<usize>>,
) -> Result<(), ApiError> {
    let mut ids: Vec<&String> = slots.keys().collect();
    ids.sort();
    for id in ids {
        let s = &slots[id];
        let Some(current) = &s.current else { continue };
        let source = serde_json::to_value(current).map_err(ApiError::internal)?;
        let version = match &s.stored {
            Some(st) if st.source == source => continue,
            Some(st) => Version::Cas {
                seq_no: st.seq_no,
                primary_term: st.primary_term,
            },
            None => Version::Create,
        };
        ops.push(BulkOp::Index {
            index: index.to_owned(),
            id: id.clone(),
            source,
            version,
        });
        owners.push(s.owners.clone());
    }
    Ok(())
}

async fn reflag_posts<S: IndexStore>(
    store: &S,
    author_id: &str,
    private: bool,
) -> Result<(), ApiError> {
    let mut after: Option<String> = None;
    loop {
        let ids = store
            .posts_of(author_id, after.as_deref(), PRIVACY_PAGE)
            .await?;
        let Some(last) = ids.last().cloned() else {
            return Ok(());
        };
        let ops: Vec<BulkOp> = ids
            .iter()
            .map(|id| BulkOp::Update {
                index: POSTS_INDEX.to_owned(),
                id: id.clone(),
                doc: serde_json::json!({"author_private": private}),
            })
            .collect();
        for result in store.bulk(&ops, false).await? {
            match result.outcome() {
                Outcome::Done | Outcome::Missing => {}
                _ => return Err(retry(&result)),
            }
        }
        tracing::info!(
            author_id,
            private,
            posts = ids.len(),
            "posts re-flagged for a privacy change"
        );
        after = Some(last);
    }
}

// ---------------------------------------------------------------------------------------
// In-memory OpenSearch for unit tests

pub mod memory {
    //! An [`IndexStore`] with OpenSearch's versioning rules (external versions, `if_seq_no`,
    //! `create`), failures that can be injected per document id, and a log of requests.

    use std::collections::HashMap;
    use std::sync::Mutex;

    use async_trait::async_trait;
    use serde_json::Value;
    use shutter_core::ApiError;

    use super::{BulkOp, IndexStore, ItemResult, Stored, Version};
    use crate::docs::RELATIONS_INDEX;

    #[derive(Debug, Clone)]
    struct Doc {
        source: Value,
        version: u64,
        seq_no: u64,
    }

    #[derive(Debug, Default)]
    pub struct MemoryIndex {
        docs: Mutex<HashMap<(String, String), Doc>>,
        seq: Mutex<u64>,
        /// Document id -> the status every write of it answers.
        pub fail: Mutex<HashMap<String, u16>>,
        pub bulk_calls: Mutex<usize>,
    }

    impl MemoryIndex {
        pub fn source(&self, index: &str, id: &str) -> Option<Value> {
            self.docs
                .lock()
                .ok()?
                .get(&(index.to_owned(), id.to_owned()))
                .map(|d| d.source.clone())
        }

        /// Changes a document behind the indexer's back (a racing writer).
        pub fn touch(&self, index: &str, id: &str, source: Value) {
            let mut seq = self.seq.lock().unwrap_or_else(|e| e.into_inner());
            *seq += 1;
            if let Ok(mut docs) = self.docs.lock() {
                let d = docs
                    .entry((index.to_owned(), id.to_owned()))
                    .or_insert(Doc {
                        source: Value::Null,
                        version: 0,
                        seq_no: 0,
                    });
                d.source = source;
                d.version += 1;
                d.seq_no = *seq;
            }
        }
    }

    fn err(status: u16, kind: &str) -> ItemResult {
        ItemResult {
            status,
            error_type: Some(kind.to_owned()),
            reason: Some(kind.to_owned()),
        }
    }

    #[async_trait]
    impl IndexStore for MemoryIndex {
        async fn get(
            &self,
            index: &str,
            ids: &[String],
        ) -> Result<HashMap<String, Stored>, ApiError> {
            let docs = self
                .docs
                .lock()
                .map_err(|_| ApiError::internal(std::io::Error::other("lock")))?;
            Ok(ids
                .iter()
                .filter_map(|id| {
                    let d = docs.get(&(index.to_owned(), id.clone()))?;
                    Some((
                        id.clone(),
                        Stored {
                            source: d.source.clone(),
                            seq_no: d.seq_no,
                            primary_term: 1,
                        },
                    ))
                })
                .collect())
        }

        async fn bulk(&self, ops: &[BulkOp], _refresh: bool) -> Result<Vec<ItemResult>, ApiError> {
            *self
                .bulk_calls
                .lock()
                .map_err(|_| ApiError::internal(std::io::Error::other("lock")))? += 1;
            let mut docs = self
                .docs
                .lock()
                .map_err(|_| ApiError::internal(std::io::Error::other("lock")))?;
            let mut seq = self
                .seq
                .lock()
                .map_err(|_| ApiError::internal(std::io::Error::other("lock")))?;
            let fail = self
                .fail
                .lock()
                .map_err(|_| ApiError::internal(std::io::Error::other("lock")))?;
            let mut out = Vec::new();
            for op in ops {
                let (index, id) = match op {
                    BulkOp::Index { index, id, .. } | BulkOp::Update { index, id, .. } => {
                        (index, id)
                    }
                };
                if let Some(status) = fail.get(id) {
                    out.push(err(*status, "injected"));
                    continue;
                }
                let key = (index.clone(), id.clone());
                let existing = docs.get(&key).cloned();
                *seq += 1;
                let result = match op {
                    BulkOp::Index {
                        source, version, ..
                    } => {
                        let new_version = match (version, &existing) {
                            (Version::External(v), Some(d)) if *v <= d.version => {
                                out.push(err(409, "version_conflict_engine_exception"));
                                continue;
                            }
                            (Version::External(v), _) => *v,
                            (Version::Cas { seq_no, .. }, Some(d)) if *seq_no == d.seq_no => {
                                d.version + 1
                            }
                            (Version::Create, None) => 1,
                            _ => {
                                out.push(err(409, "version_conflict_engine_exception"));
                                continue;
                            }
                        };
                        Doc {
                            source: source.clone(),
                            version: new_version,
                            seq_no: *seq,
                        }
                    }
                    BulkOp::Update { doc, .. } => {
                        let Some(mut d) = existing else {
                            out.push(err(404, "document_missing_exception"));
                            continue;
                        };
                        if let (Some(target), Some(patch)) =
                            (d.source.as_object_mut(), doc.as_object())
                        {
                            for (k, v) in patch {
                                target.insert(k.clone(), v.clone());
                            }
                        }
                        d.version += 1;
                        d.seq_no = *seq;
                        d
                    }
                };
                docs.insert(key, result);
                out.push(ItemResult::ok(200));
            }
            Ok(out)
        }

        async fn like_counts(&self, post_ids: &[String]) -> Result<HashMap<String, i64>, ApiError> {
            let docs = self
                .docs
                .lock()
                .map_err(|_| ApiError::internal(std::io::Error::other("lock")))?;
            Ok(post_ids
                .iter()
                .map(|p| {
                    let n = docs
                        .iter()
                        .filter(|((index, _), d)| {
                            index == RELATIONS_INDEX
                                && d.source["kind"] == "like"
                                && d.source["active"] == true
                                && d.source["b"] == p.as_str()
                        })
                        .count() as i64;
                    (p.clone(), n)
                })
                .collect())
        }

        async fn posts_of(
            &self,
            author_id: &str,
            after: Option<&str>,
            size: usize,
        ) -> Result<Vec<String>, ApiError> {
            let docs = self
                .docs
                .lock()
                .map_err(|_| ApiError::internal(std::io::Error::other("lock")))?;
            let mut ids: Vec<String> = docs
                .iter()
                .filter(|((index, id), d)| {
                    index == crate::docs::POSTS_INDEX
                        && d.source["author_id"] == author_id
                        && after.is_none_or(|a| id.as_str() > a)
                })
                .map(|((_, id), _)| id.clone())
                .collect();
            ids.sort();
            ids.truncate(size);
            Ok(ids)
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::memory::MemoryIndex;
    use super::*;
    use base64::Engine;
    use serde_json::json;
    use shutter_events::{KafkaRecord, MemoryPoisonQueue};

    fn ev(kind: &str, data: Value) -> Envelope {
        Envelope::new(kind, "agg", Some("actor"), "corr", &data)
    }

    fn batch(events: &[Envelope]) -> KafkaEvent {
        let mut b = KafkaEvent::default();
        for (i, e) in events.iter().enumerate() {
            let mut r = KafkaRecord::default();
            r.offset = i as i64;
            r.value = Some(
                base64::engine::general_purpose::STANDARD.encode(serde_json::to_vec(e).unwrap()),
            );
            b.records
                .entry("shutter.posts-0".into())
                .or_default()
                .push(r);
        }
        b
    }

    fn post(id: &str, author: &str, caption: &str, version: u64) -> Envelope {
        ev(
            if version == 1 {
                "PostPublished"
            } else {
                "PostUpdated"
            },
            json!({"post_id": id, "author_id": author, "caption": caption, "location": null,
                   "hashtags": ["Beach"], "mentions": [], "created_at": "2026-11-29T00:00:00.000Z", "version": version}),
        )
    }

    async fn run(index: &MemoryIndex, events: &[Envelope]) -> MemoryPoisonQueue {
        let q = MemoryPoisonQueue::default();
        index_events(index, &q, &batch(events)).await.unwrap();
        q
    }

    #[tokio::test]
    async fn posts_are_indexed_and_an_older_version_never_overwrites_a_newer() {
        let index = MemoryIndex::default();
        run(
            &index,
            &[
                post("p", "a", "first words", 1),
                post("p", "a", "second words", 3),
            ],
        )
        .await;
        run(&index, &[post("p", "a", "stale words", 2)]).await;
        let doc = index.source(POSTS_INDEX, "p").unwrap();
        assert_eq!(
            (doc["caption"].as_str(), doc["version"].as_u64()),
            (Some("second words"), Some(3))
        );
        assert_eq!(
            doc["hashtags"],
            json!(["beach"]),
            "hashtags are kept lower-cased"
        );
    }

    #[tokio::test]
    async fn a_deleted_post_stays_deleted_whatever_arrives_late() {
        let index = MemoryIndex::default();
        run(&index, &[post("p", "a", "hello", 1)]).await;
        run(
            &index,
            &[ev("PostDeleted", json!({"post_id": "p", "author_id": "a"}))],
        )
        .await;
        run(&index, &[post("p", "a", "back from the dead", 5)]).await;
        let tombstone = index.source(POSTS_INDEX, "p").unwrap();
        assert_eq!(tombstone["deleted"], true);
        assert!(
            tombstone.get("popularity").is_none(),
            "a rank feature must be positive"
        );
    }

    #[tokio::test]
    async fn like_counts_follow_the_newest_seq_of_each_like_and_survive_replays() {
        let index = MemoryIndex::default();
        run(&index, &[post("p", "a", "hello", 1)]).await;
        let like = |user: &str, seq: u64, added: bool| {
            ev(
                if added { "LikeAdded" } else { "LikeRemoved" },
                json!({"post_id": "p", "post_author_id": "a", "user_id": user, "seq": seq, "at": "t"}),
            )
        };
        let events = [
            like("u1", 1, true),
            like("u2", 1, true),
            like("u2", 2, false),
            like("u3", 1, true),
        ];
        run(&index, &events).await;
        run(&index, &events).await; // redelivery
        run(&index, &[like("u2", 1, true)]).await; // out of order: older than the unlike
        assert_eq!(index.source(POSTS_INDEX, "p").unwrap()["like_count"], 2);
        assert_eq!(index.source(POSTS_INDEX, "p").unwrap()["popularity"], 3);
        // An edit keeps the count.
        run(&index, &[post("p", "a", "edited", 2)]).await;
        assert_eq!(index.source(POSTS_INDEX, "p").unwrap()["like_count"], 2);
    }

    #[tokio::test]
    async fn follows_and_blocks_apply_only_newer_seqs() {
        let index = MemoryIndex::default();
        let block = |seq, on: bool| {
            ev(
                if on { "UserBlocked" } else { "UserUnblocked" },
                json!({"blocker_id": "a", "blocked_id": "b", "seq": seq}),
            )
        };
        run(&index, &[block(2, false), block(1, true)]).await;
        assert_eq!(
            index.source(RELATIONS_INDEX, "block:a:b").unwrap()["active"],
            false
        );
        run(
            &index,
            &[
                ev(
                    "FollowStarted",
                    json!({"follower_id": "a", "followee_id": "c", "seq": 1}),
                ),
                ev(
                    "FollowRequested",
                    json!({"follower_id": "a", "followee_id": "d", "seq": 1}),
                ),
            ],
        )
        .await;
        assert_eq!(
            index.source(RELATIONS_INDEX, "follow:a:c").unwrap()["active"],
            true
        );
        assert!(
            index.source(RELATIONS_INDEX, "follow:a:d").is_none(),
            "requests are not follows"
        );
    }

    #[tokio::test]
    async fn users_follow_their_profile_and_a_privacy_change_reflags_their_posts() {
        let index = MemoryIndex::default();
        run(
            &index,
            &[
                ev(
                    "UserRegistered",
                    json!({"user_id": "a", "username": "ann", "created_at": "t"}),
                ),
                post("p", "a", "hello", 1),
            ],
        )
        .await;
        let profile = |private| {
            ev(
                "ProfileUpdated",
                json!({"user_id": "a", "username": "ann", "display_name": "Ann Lee", "private": private, "avatar_key": null}),
            )
        };
        run(&index, &[profile(true)]).await;
        assert_eq!(
            index.source(USERS_INDEX, "a").unwrap()["display_name"],
            "Ann Lee"
        );
        assert_eq!(
            index.source(POSTS_INDEX, "p").unwrap()["author_private"],
            true
        );
        // A registration replayed later does not undo the profile.
        run(
            &index,
            &[ev(
                "UserRegistered",
                json!({"user_id": "a", "username": "ann"}),
            )],
        )
        .await;
        assert_eq!(index.source(USERS_INDEX, "a").unwrap()["private"], true);
        // New posts of a private author are private from the start.
        run(&index, &[post("q", "a", "second", 1)]).await;
        assert_eq!(
            index.source(POSTS_INDEX, "q").unwrap()["author_private"],
            true
        );
        run(
            &index,
            &[
                ev("UserDeleted", json!({"user_id": "a", "username": "ann"})),
                profile(false),
            ],
        )
        .await;
        assert_eq!(index.source(USERS_INDEX, "a").unwrap()["deleted"], true);
    }

    #[tokio::test]
    async fn a_racing_writer_is_read_again_not_overwritten() {
        let index = MemoryIndex::default();
        run(&index, &[post("p", "a", "hello", 1)]).await;
        let mut raced = index.source(POSTS_INDEX, "p").unwrap();
        raced["like_count"] = json!(9);
        index.touch(POSTS_INDEX, "p", raced);
        run(&index, &[post("p", "a", "edited", 2)]).await;
        let doc = index.source(POSTS_INDEX, "p").unwrap();
        assert_eq!(
            (doc["caption"].as_str(), doc["like_count"].as_i64()),
            (Some("edited"), Some(9))
        );
    }

    #[tokio::test]
    async fn refused_items_are_poison_and_overload_fails_the_batch() {
        let index = MemoryIndex::default();
        index.fail.lock().unwrap().insert("bad".into(), 400);
        let q = run(
            &index,
            &[
                post("bad", "a", "x", 1),
                post("good", "a", "y", 1),
                ev("PostPublished", json!({"post": 1})),
            ],
        )
        .await;
        assert!(index.source(POSTS_INDEX, "good").is_some());
        assert_eq!(
            q.sent.lock().unwrap().len(),
            2,
            "the refused post and the undecodable one"
        );

        index.fail.lock().unwrap().insert("busy".into(), 429);
        let q = MemoryPoisonQueue::default();
        let err = index_events(&index, &q, &batch(&[post("busy", "a", "x", 1)]))
            .await
            .unwrap_err();
        assert!(err.is_retryable());
        assert!(q.sent.lock().unwrap().is_empty());
    }
}
