//! An in-memory [`FollowsStore`] with the DynamoDB adapter's rules and conflict labels,
//! so the use-case tests exercise the real decisions.

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use shutter_core::UserId;
use shutter_events::Envelope;
use shutter_store::{StoreError, StoreResult};

use super::{ACCOUNT_DELETED, BLOCKED, BlocksExport, Change, FollowsStore, List, ListEntry, STALE};
use crate::model::{Block, Edge, FollowState, Relation};

type Pair = (UserId, UserId);

#[derive(Debug, Default)]
pub struct MemoryFollowsStore {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    edges: HashMap<Pair, Edge>,
    blocks: HashMap<Pair, Block>,
    /// Deleted accounts: in the table, the directory's tombstones.
    gone: HashSet<UserId>,
    events: Vec<Envelope>,
    /// How many of the next commits a racing request wins.
    races_to_lose: usize,
}

impl State {
    fn blocks(&self, blocker: &UserId, blocked: &UserId) -> bool {
        self.blocks
            .get(&(blocker.clone(), blocked.clone()))
            .is_some_and(|b| b.blocked)
    }

    /// The first guard `change` fails, as the adapter checks them.
    fn refusal(&self, change: &Change) -> Option<&'static str> {
        let (starts, a, b, checks_blocks) = match change {
            Change::Edge { next, .. } => (
                next.state != FollowState::None,
                &next.follower_id,
                &next.followee_id,
                true,
            ),
            Change::Block { next, .. } => (next.blocked, &next.blocker_id, &next.blocked_id, false),
        };
        if !starts {
            None
        } else if self.gone.contains(a) || self.gone.contains(b) {
            Some(ACCOUNT_DELETED)
        } else if checks_blocks && (self.blocks(a, b) || self.blocks(b, a)) {
            Some(BLOCKED)
        } else {
            None
        }
    }

    /// Whether what `change` read is still what is stored.
    fn unchanged(&self, change: &Change) -> bool {
        match change {
            Change::Edge { previous, next } => {
                let pair = (next.follower_id.clone(), next.followee_id.clone());
                self.edges.get(&pair).map(|e| e.seq) == previous.as_ref().map(|p| p.seq)
            }
            Change::Block { previous, next } => {
                let pair = (next.blocker_id.clone(), next.blocked_id.clone());
                self.blocks.get(&pair).map(|b| b.seq) == previous.as_ref().map(|p| p.seq)
            }
        }
    }
}

impl MemoryFollowsStore {
    fn state(&self) -> MutexGuard<'_, State> {
        // A test that panicked holding the lock has failed already; later reads may go on.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Deletes `user`'s account, as the directory's tombstone does in the table.
    pub fn delete_account(&self, user: &UserId) {
        self.state().gone.insert(user.clone());
    }

    /// Every event committed so far, in order.
    pub fn events(&self) -> Vec<Envelope> {
        self.state().events.clone()
    }

    /// The next `commits` commits fail with [`STALE`] and change nothing, as if a racing
    /// request had changed what they read.
    pub fn lose_races(&self, commits: usize) {
        self.state().races_to_lose = commits;
    }
}

#[async_trait]
impl FollowsStore for MemoryFollowsStore {
    async fn relations(
        &self,
        viewer: &UserId,
        others: &[UserId],
    ) -> StoreResult<HashMap<UserId, Relation>> {
        let state = self.state();
        let pair = |a: &UserId, b: &UserId| (a.clone(), b.clone());
        Ok(others
            .iter()
            .map(|other| {
                let relation = Relation {
                    outgoing: state.edges.get(&pair(viewer, other)).cloned(),
                    incoming: state.edges.get(&pair(other, viewer)).cloned(),
                    blocking: state.blocks.get(&pair(viewer, other)).cloned(),
                    blocked_by: state.blocks.get(&pair(other, viewer)).cloned(),
                };
                (other.clone(), relation)
            })
            .collect())
    }

    async fn edge(&self, follower: &UserId, followee: &UserId) -> StoreResult<Option<Edge>> {
        Ok(self
            .state()
            .edges
            .get(&(follower.clone(), followee.clone()))
            .cloned())
    }

    async fn commit(&self, changes: &[Change], events: &[Envelope]) -> StoreResult<()> {
        let mut state = self.state();
        if let Some(label) = changes.iter().find_map(|c| state.refusal(c)) {
            return Err(StoreError::Conflict(label));
        }
        if state.races_to_lose > 0 {
            state.races_to_lose -= 1;
            return Err(StoreError::Conflict(STALE));
        }
        if !changes.iter().all(|c| state.unchanged(c)) {
            return Err(StoreError::Conflict(STALE));
        }
        for change in changes {
            match change.clone() {
                Change::Edge { next, .. } => {
                    let pair = (next.follower_id.clone(), next.followee_id.clone());
                    state.edges.insert(pair, next);
                }
                Change::Block { next, .. } => {
                    let pair = (next.blocker_id.clone(), next.blocked_id.clone());
                    state.blocks.insert(pair, next);
                }
            }
        }
        state.events.extend_from_slice(events);
        Ok(())
    }

    async fn list(
        &self,
        list: List,
        owner: &UserId,
        after: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<ListEntry>> {
        let state = self.state();
        let mut found: Vec<ListEntry> = state
            .edges
            .values()
            .filter_map(|e| {
                let (listed, other) = match list {
                    List::Followers => (
                        e.followee_id == *owner && e.state == FollowState::Following,
                        &e.follower_id,
                    ),
                    List::Following => (
                        e.follower_id == *owner && e.state == FollowState::Following,
                        &e.followee_id,
                    ),
                    List::Requests => (
                        e.followee_id == *owner && e.state == FollowState::Requested,
                        &e.follower_id,
                    ),
                };
                let entry = e.entry.clone()?;
                (listed && after.is_none_or(|a| entry.as_str() < a)).then(|| ListEntry {
                    position: entry,
                    user_id: other.clone(),
                    at: e.since.clone(),
                })
            })
            .collect();
        found.sort_by(|a, b| b.position.cmp(&a.position));
        found.truncate(limit);
        Ok(found)
    }

    async fn live_edges(&self, user: &UserId, limit: usize) -> StoreResult<Vec<Edge>> {
        Ok(self
            .state()
            .edges
            .values()
            .filter(|e| {
                e.state != FollowState::None && (e.follower_id == *user || e.followee_id == *user)
            })
            .take(limit)
            .cloned()
            .collect())
    }

    async fn live_blocks(&self, user: &UserId, limit: usize) -> StoreResult<Vec<Block>> {
        Ok(self
            .state()
            .blocks
            .values()
            .filter(|b| b.blocked && (b.blocker_id == *user || b.blocked_id == *user))
            .take(limit)
            .cloned()
            .collect())
    }
}

#[async_trait]
impl BlocksExport for MemoryFollowsStore {
    async fn blocks_by(
        &self,
        user: &UserId,
        after: Option<&str>,
        limit: usize,
    ) -> StoreResult<(Vec<Block>, Option<String>)> {
        let state = self.state();
        let mut mine: Vec<&Block> = state
            .blocks
            .values()
            .filter(|b| b.blocker_id == *user)
            .filter(|b| after.is_none_or(|a| b.blocked_id.as_str() > a))
            .collect();
        mine.sort_by(|a, b| a.blocked_id.cmp(&b.blocked_id));
        mine.truncate(limit);
        let next = (mine.len() >= limit)
            .then(|| mine.last().map(|b| b.blocked_id.to_string()))
            .flatten();
        Ok((
            mine.into_iter().filter(|b| b.blocked).cloned().collect(),
            next,
        ))
    }
}
