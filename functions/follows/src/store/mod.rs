//! The follows storage port: edges, blocks and their lists, read and changed in
//! transactions that carry their events. [`dynamo`] is the real adapter (its module docs
//! give the item layout), [`memory`] the fake the unit tests run the use cases on.
//!
//! A commit either applies every change and writes every event, or fails with one of the
//! conflict labels below and changes nothing.

use std::collections::HashMap;

use async_trait::async_trait;
use shutter_core::UserId;
use shutter_events::Envelope;
use shutter_store::StoreResult;

use crate::model::{Block, Edge, Relation};

pub mod dynamo;
pub mod memory;

/// An edge or block changed since it was read (its `seq` moved): decide again.
pub const STALE: &str = "stale";
/// One of the two users blocks the other: no follow or request may start.
pub const BLOCKED: &str = "blocked";
/// One of the two accounts is deleted: no follow, request or block may start.
pub const ACCOUNT_DELETED: &str = "account_deleted";

/// One change of a transaction: the new state of an edge or a block, replacing the one
/// that was read (none: never stored).
#[derive(Debug, Clone)]
pub enum Change {
    Edge {
        previous: Option<Edge>,
        next: Edge,
    },
    Block {
        previous: Option<Block>,
        next: Block,
    },
}

/// The lists the service keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum List {
    /// Who follows the owner.
    Followers,
    /// Whom the owner follows.
    Following,
    /// Pending requests to the owner.
    Requests,
}

/// An entry of a followers, following or follow-requests list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListEntry {
    /// The entry's position in its list: pass it back as `after` for the next page.
    pub position: String,
    /// The other user of the edge.
    pub user_id: UserId,
    /// When the edge took this state (RFC 3339).
    pub at: String,
}

#[async_trait]
pub trait FollowsStore: Send + Sync {
    /// What stands between `viewer` and each of `others` (one batch of reads); a user
    /// with nothing between them maps to an empty [`Relation`].
    async fn relations(
        &self,
        viewer: &UserId,
        others: &[UserId],
    ) -> StoreResult<HashMap<UserId, Relation>>;

    /// What stands between `viewer` and `other`.
    async fn relation(&self, viewer: &UserId, other: &UserId) -> StoreResult<Relation> {
        Ok(self
            .relations(viewer, std::slice::from_ref(other))
            .await?
            .remove(other)
            .unwrap_or_default())
    }

    async fn edge(&self, follower: &UserId, followee: &UserId) -> StoreResult<Option<Edge>>;

    /// Applies every change and writes every event in one transaction. Conflicts:
    /// [`ACCOUNT_DELETED`] (a change that starts a follow, request or block, and either
    /// account is deleted), [`BLOCKED`] (a change that starts a follow or request, and
    /// either user blocks the other), [`STALE`] (an edge or block is no longer as read),
    /// reported in that order when several fail.
    async fn commit(&self, changes: &[Change], events: &[Envelope]) -> StoreResult<()>;

    /// Up to `limit` entries of `owner`'s list, newest first, after position `after`.
    async fn list(
        &self,
        list: List,
        owner: &UserId,
        after: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<ListEntry>>;

    /// Up to `limit` of the user's edges that are not `none`, both directions (to end
    /// them when the account is deleted).
    async fn live_edges(&self, user: &UserId, limit: usize) -> StoreResult<Vec<Edge>>;

    /// Up to `limit` of the blocks that hold by or against the user (likewise).
    async fn live_blocks(&self, user: &UserId, limit: usize) -> StoreResult<Vec<Block>>;
}

/// A user's own blocks, read for their account export (`shutter-exports`).
#[async_trait]
pub trait BlocksExport: Send + Sync {
    /// Up to `limit` of the blocks `user` holds, in blocked-user order, after position
    /// `after`; the position to resume after when there may be more.
    async fn blocks_by(
        &self,
        user: &UserId,
        after: Option<&str>,
        limit: usize,
    ) -> StoreResult<(Vec<Block>, Option<String>)>;
}
