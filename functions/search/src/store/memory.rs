//! Fakes of the ports for unit tests: [`CannedSearch`] answers canned search responses and
//! keeps the bodies it was sent; [`MemoryIndex`] keeps documents with OpenSearch's
//! versioning rules (external versions, `if_seq_no`, `create`), failures injected per
//! document id or for the whole cluster, and a count of bulk requests.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use async_trait::async_trait;
use serde_json::Value;
use shutter_core::UserId;

use super::{BulkOp, EdgeSide, IndexStore, ItemResult, SearchIndex, Stored, Version};
use crate::client::SearchError;
use crate::docs::{POSTS_INDEX, RELATIONS_INDEX, UserDoc};

fn down() -> SearchError {
    SearchError::Unavailable("the fake cluster is down".into())
}

fn poisoned() -> SearchError {
    SearchError::Malformed("poisoned lock".into())
}

/// A [`SearchIndex`] that answers canned responses and keeps the bodies it was sent; the
/// viewer's edges are paged as OpenSearch pages them (by id, after the last one).
#[derive(Debug, Default)]
pub struct CannedSearch {
    /// The viewer's edges on each side.
    pub edges: HashMap<EdgeSide, BTreeSet<UserId>>,
    /// How many pages of edges were asked for.
    pub edge_pages: AtomicUsize,
    /// Reads of edges fail as an unreachable cluster would (searches still answer).
    pub edges_down: AtomicBool,
    /// Index -> the response every search of it gets.
    pub responses: HashMap<String, Value>,
    pub users: HashMap<UserId, UserDoc>,
    pub sent: Mutex<Vec<(String, Value)>>,
    /// Every call fails as an unreachable cluster would.
    pub down: AtomicBool,
}

impl CannedSearch {
    /// The bodies sent so far, with their index.
    pub fn sent(&self) -> Vec<(String, Value)> {
        self.sent.lock().map(|s| s.clone()).unwrap_or_default()
    }

    fn check(&self) -> Result<(), SearchError> {
        if self.down.load(Ordering::Relaxed) {
            return Err(down());
        }
        Ok(())
    }

    /// Adds edges of the viewer on `side`.
    pub fn add_edges(&mut self, side: EdgeSide, users: impl IntoIterator<Item = UserId>) {
        self.edges.entry(side).or_default().extend(users);
    }
}

#[async_trait]
impl SearchIndex for CannedSearch {
    async fn edge_page(
        &self,
        _viewer: &UserId,
        side: EdgeSide,
        after: Option<&UserId>,
        size: usize,
    ) -> Result<Vec<UserId>, SearchError> {
        self.check()?;
        if self.edges_down.load(Ordering::Relaxed) {
            return Err(down());
        }
        self.edge_pages.fetch_add(1, Ordering::Relaxed);
        let Some(users) = self.edges.get(&side) else {
            return Ok(Vec::new());
        };
        Ok(users
            .iter()
            .filter(|u| after.is_none_or(|a| *u > a))
            .take(size)
            .cloned()
            .collect())
    }

    async fn search(&self, index: &str, body: &Value) -> Result<Value, SearchError> {
        self.check()?;
        if let Ok(mut sent) = self.sent.lock() {
            sent.push((index.to_owned(), body.clone()));
        }
        Ok(self.responses.get(index).cloned().unwrap_or(Value::Null))
    }

    async fn users(&self, ids: &HashSet<UserId>) -> Result<HashMap<UserId, UserDoc>, SearchError> {
        self.check()?;
        Ok(ids
            .iter()
            .filter_map(|id| Some((id.clone(), self.users.get(id)?.clone())))
            .collect())
    }
}

#[derive(Debug, Clone)]
struct Doc {
    source: Value,
    version: u64,
    seq_no: u64,
}

/// An [`IndexStore`] with OpenSearch's versioning rules.
#[derive(Debug, Default)]
pub struct MemoryIndex {
    docs: Mutex<HashMap<(String, String), Doc>>,
    seq: Mutex<u64>,
    /// Document id -> the status every write of it answers.
    pub fail: Mutex<HashMap<String, u16>>,
    /// Every request fails as an unreachable cluster would.
    pub down: AtomicBool,
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

    /// Every document of `index`, by id.
    pub fn all(&self, index: &str) -> HashMap<String, Value> {
        self.docs
            .lock()
            .map(|docs| {
                docs.iter()
                    .filter(|((i, _), _)| i == index)
                    .map(|((_, id), d)| (id.clone(), d.source.clone()))
                    .collect()
            })
            .unwrap_or_default()
    }

    fn check(&self) -> Result<(), SearchError> {
        if self.down.load(Ordering::Relaxed) {
            return Err(down());
        }
        Ok(())
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
    ) -> Result<HashMap<String, Stored>, SearchError> {
        self.check()?;
        let docs = self.docs.lock().map_err(|_| poisoned())?;
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

    async fn bulk(&self, ops: &[BulkOp], _refresh: bool) -> Result<Vec<ItemResult>, SearchError> {
        self.check()?;
        *self.bulk_calls.lock().map_err(|_| poisoned())? += 1;
        let mut docs = self.docs.lock().map_err(|_| poisoned())?;
        let mut seq = self.seq.lock().map_err(|_| poisoned())?;
        let fail = self.fail.lock().map_err(|_| poisoned())?;
        let mut out = Vec::new();
        for op in ops {
            let (index, id) = match op {
                BulkOp::Index { index, id, .. } | BulkOp::Update { index, id, .. } => (index, id),
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
                    if let (Some(target), Some(patch)) = (d.source.as_object_mut(), doc.as_object())
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

    async fn like_counts(&self, post_ids: &[String]) -> Result<HashMap<String, i64>, SearchError> {
        self.check()?;
        let docs = self.docs.lock().map_err(|_| poisoned())?;
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
    ) -> Result<Vec<String>, SearchError> {
        self.check()?;
        let docs = self.docs.lock().map_err(|_| poisoned())?;
        let mut ids: Vec<String> = docs
            .iter()
            .filter(|((index, id), d)| {
                index == POSTS_INDEX
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
