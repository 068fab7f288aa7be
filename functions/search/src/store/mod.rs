//! The ports the service works through, one per capability: [`SearchIndex`] (the
//! searches, read-only), [`IndexStore`] (the indexer's reads and conditional writes) and
//! [`IndexAdmin`] (applying the mappings on deploy). Their adapters: [`opensearch`] (the
//! real cluster, over [`crate::client::OpenSearch`]) and [`memory`] (fakes for unit tests).
//!
//! The vocabulary of the indexer's writes lives here too ([`BulkOp`], [`Version`],
//! [`ItemResult`]): what a conditional write is, and what its answer means.

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;
use serde_json::Value;
use shutter_core::UserId;

use crate::client::SearchError;
use crate::docs::UserDoc;

pub mod memory;
pub mod opensearch;

/// Which of a viewer's edges in the relations index, seen from the viewer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EdgeSide {
    /// Users the viewer blocks.
    Blocking,
    /// Users who block the viewer.
    BlockedBy,
    /// Users the viewer follows (approved).
    Following,
}

/// What the search endpoints need of OpenSearch.
#[async_trait]
pub trait SearchIndex: Send + Sync {
    /// Up to `size` of the other users of `viewer`'s active edges on `side`, in id order,
    /// after `after`: pages that [`crate::service`] reads until done, so no edge is left
    /// out however many the viewer has. An answer that does not read as a page is an
    /// error, never an empty page.
    async fn edge_page(
        &self,
        viewer: &UserId,
        side: EdgeSide,
        after: Option<&UserId>,
        size: usize,
    ) -> Result<Vec<UserId>, SearchError>;
    /// A `_search` of `index` with `body` (built by [`crate::query`], from values only).
    async fn search(&self, index: &str, body: &Value) -> Result<Value, SearchError>;
    /// User documents by id, tombstones included (missing ones are left out).
    async fn users(&self, ids: &HashSet<UserId>) -> Result<HashMap<UserId, UserDoc>, SearchError>;
}

/// What the indexer needs of OpenSearch.
#[async_trait]
pub trait IndexStore: Send + Sync {
    /// The documents of `index` that exist among `ids`.
    async fn get(
        &self,
        index: &str,
        ids: &[String],
    ) -> Result<HashMap<String, Stored>, SearchError>;
    /// One result per operation, in order. `refresh` makes the writes searchable before it
    /// answers (the like counts read them at once).
    async fn bulk(&self, ops: &[BulkOp], refresh: bool) -> Result<Vec<ItemResult>, SearchError>;
    /// Active like edges per post (0 for those with none).
    async fn like_counts(&self, post_ids: &[String]) -> Result<HashMap<String, i64>, SearchError>;
    /// Ids of an author's post documents, by id, after `after`.
    async fn posts_of(
        &self,
        author_id: &str,
        after: Option<&str>,
        size: usize,
    ) -> Result<Vec<String>, SearchError>;
}

/// What applying the indexes needs of OpenSearch.
#[async_trait]
pub trait IndexAdmin: Send + Sync {
    async fn exists(&self, index: &str) -> Result<bool, SearchError>;
    async fn create(&self, index: &str, body: &Value) -> Result<(), SearchError>;
    async fn put_mappings(&self, index: &str, mappings: &Value) -> Result<(), SearchError>;
}

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

/// What the answer for one operation means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Written.
    Done,
    /// Its condition failed: the document changed since it was read, or (an edge) a newer
    /// or equal version is already there.
    Conflict,
    /// A partial update of a document that is not there.
    Missing,
    /// The cluster was overloaded or failed: the same write may pass later.
    Retry,
    /// OpenSearch refused the document itself: it never will take it.
    Poison,
}

impl ItemResult {
    pub fn ok(status: u16) -> Self {
        Self {
            status,
            error_type: None,
            reason: None,
        }
    }

    pub fn outcome(&self) -> Outcome {
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

    /// Why OpenSearch refused it, for the DLQ and the logs.
    pub fn why(&self) -> String {
        format!(
            "OpenSearch refused the document ({}): {}",
            self.error_type.as_deref().unwrap_or("error"),
            self.reason.as_deref().unwrap_or("no reason given")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(status: u16, error_type: &str) -> ItemResult {
        ItemResult {
            status,
            error_type: Some(error_type.into()),
            reason: Some("r".into()),
        }
    }

    #[test]
    fn item_answers_say_done_conflict_missing_retry_or_poison() {
        assert_eq!(ItemResult::ok(201).outcome(), Outcome::Done);
        assert_eq!(
            item(409, "version_conflict_engine_exception").outcome(),
            Outcome::Conflict
        );
        assert_eq!(
            item(404, "document_missing_exception").outcome(),
            Outcome::Missing
        );
        assert_eq!(
            item(404, "index_not_found_exception").outcome(),
            Outcome::Poison
        );
        assert_eq!(
            item(429, "es_rejected_execution_exception").outcome(),
            Outcome::Retry
        );
        assert_eq!(item(503, "unavailable").outcome(), Outcome::Retry);
        assert_eq!(
            item(400, "mapper_parsing_exception").outcome(),
            Outcome::Poison
        );
        assert_eq!(
            item(400, "mapper_parsing_exception").why(),
            "OpenSearch refused the document (mapper_parsing_exception): r"
        );
    }
}
