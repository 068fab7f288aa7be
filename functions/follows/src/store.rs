//! The follows table port and its adapters.
//!
//! Layout (`pk` / `sk`):
//! - `EDGE#<follower>` / `TO#<followee>`: the [`Edge`] (kept at `state: none` after an
//!   unfollow, so its `seq` keeps counting); a query on `EDGE#<user>` finds every edge
//!   the user started, which is how an account's edges are found when it is deleted;
//! - `FOLLOWERS#<followee>` / `<entry>` and `FOLLOWING#<follower>` / `<entry>`: the two
//!   list entries of a `following` edge (entry ids are ULIDs: the lists sort by time);
//! - `REQUESTS#<followee>` / `<entry>`: the list entry of a `requested` edge;
//! - `BLOCK#<blocker>` / `TO#<blocked>`: the [`Block`]; while it holds, also
//!   `BLOCKEDBY#<blocked>` / `FROM#<blocker>`, so a deleted account's blocks by others
//!   can be found;
//! - `DIR#...`: the directory of users ([`shutter_directory`]);
//! - `OUTBOX#<event id>` / `OUTBOX`: this service's events.
//!
//! A change that makes an edge `requested` or `following`, or starts a block, checks in
//! its transaction that neither user's directory item is a tombstone (a deleted account's
//! token lives up to 15 minutes), and an edge change also checks that neither user blocks
//! the other: a block and a follow racing each other cannot both commit.

use std::collections::HashMap;

use async_trait::async_trait;
use shutter_core::ApiError;
use shutter_events::legacy::Envelope;

use crate::model::{Block, Edge, FollowState, ListEntry, Relation};

/// The outcome of a conditional write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Commit {
    Done,
    /// An edge or block changed since it was read (or a racing transaction holds it).
    Stale,
    /// A guard failed: one of the two blocks the other, or an account is deleted.
    Refused,
}

/// One change of a transaction.
#[derive(Debug, Clone)]
pub enum Change {
    /// Replace `previous` (none: never stored) with `next`.
    Edge { previous: Option<Edge>, next: Edge },
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

#[async_trait]
pub trait FollowsStore: Send + Sync {
    /// What stands between `viewer` and each of `others` (one batch of reads).
    async fn relations(
        &self,
        viewer: &str,
        others: &[String],
    ) -> Result<HashMap<String, Relation>, ApiError>;
    async fn edge(&self, follower_id: &str, followee_id: &str) -> Result<Option<Edge>, ApiError>;
    /// Applies every change and publishes `events` in one transaction.
    async fn commit(&self, changes: &[Change], events: &[Envelope]) -> Result<Commit, ApiError>;
    /// Up to `limit` entries of `owner`'s list, newest first, after `after`.
    async fn list(
        &self,
        list: List,
        owner: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<ListEntry>, ApiError>;
    /// The user's edges that are not `none`, both directions (account deletion).
    async fn live_edges(&self, user_id: &str, limit: usize) -> Result<Vec<Edge>, ApiError>;
    /// The blocks that hold by or against the user (account deletion).
    async fn live_blocks(&self, user_id: &str, limit: usize) -> Result<Vec<Block>, ApiError>;
}

/// What stands between `a` and `b`.
pub async fn relation<S: FollowsStore + ?Sized>(
    store: &S,
    a: &str,
    b: &str,
) -> Result<Relation, ApiError> {
    Ok(store
        .relations(a, &[b.to_owned()])
        .await?
        .remove(b)
        .unwrap_or_default())
}

pub mod dynamo {
    //! The DynamoDB adapter.

    use std::collections::HashMap;

    use shutter_events::legacy::outbox_put;
    use shutter_store::dynamodb::types::{
        AttributeValue, ConditionCheck, Delete, Put, TransactWriteItem,
    };
    use shutter_store::{Item, Table, cancellation_reasons, from_item, n, s, to_item};

    use super::*;
    use crate::FOLLOWS_TOPIC;

    #[derive(Debug, Clone)]
    pub struct DynamoFollowsStore {
        pub table: Table,
    }

    fn internal(e: impl std::error::Error + Send + Sync + 'static) -> ApiError {
        ApiError::internal(e)
    }

    fn key(pk: String, sk: String) -> Item {
        HashMap::from([("pk".to_owned(), s(pk)), ("sk".to_owned(), s(sk))])
    }
    fn edge_key(follower: &str, followee: &str) -> Item {
        key(format!("EDGE#{follower}"), format!("TO#{followee}"))
    }
    fn block_key(blocker: &str, blocked: &str) -> Item {
        key(format!("BLOCK#{blocker}"), format!("TO#{blocked}"))
    }
    fn blocked_by_key(blocker: &str, blocked: &str) -> Item {
        key(format!("BLOCKEDBY#{blocked}"), format!("FROM#{blocker}"))
    }
    fn directory_key(user_id: &str) -> Item {
        key(format!("DIR#AUTHOR#{user_id}"), "DIR".to_owned())
    }
    fn list_pk(list: List, owner: &str) -> String {
        match list {
            List::Followers => format!("FOLLOWERS#{owner}"),
            List::Following => format!("FOLLOWING#{owner}"),
            List::Requests => format!("REQUESTS#{owner}"),
        }
    }

    fn string(item: &Item, name: &str) -> String {
        item.get(name)
            .and_then(|v| v.as_s().ok())
            .cloned()
            .unwrap_or_default()
    }

    fn entry_item(list: List, owner: &str, entry: &str, other: &str, at: &str) -> Item {
        let mut item = key(list_pk(list, owner), entry.to_owned());
        item.insert("user_id".to_owned(), s(other));
        item.insert("at".to_owned(), s(at));
        item
    }

    /// The list entries an edge in `state` has.
    fn entries(edge: &Edge, state: FollowState, entry: &str) -> Vec<Item> {
        let (f, e, at) = (&edge.follower_id, &edge.followee_id, &edge.since);
        match state {
            FollowState::None => vec![],
            FollowState::Requested => vec![entry_item(List::Requests, e, entry, f, at)],
            FollowState::Following => vec![
                entry_item(List::Followers, e, entry, f, at),
                entry_item(List::Following, f, entry, e, at),
            ],
        }
    }

    fn unchanged(seq: Option<u64>) -> (String, Option<Item>) {
        match seq {
            None => ("attribute_not_exists(pk)".to_owned(), None),
            Some(seq) => (
                "seq = :seq".to_owned(),
                Some(HashMap::from([(":seq".to_owned(), n(seq))])),
            ),
        }
    }

    impl DynamoFollowsStore {
        fn put(
            &self,
            item: Item,
            condition: Option<(String, Option<Item>)>,
        ) -> Result<TransactWriteItem, ApiError> {
            let (cond, values) = condition.unzip();
            let put = Put::builder()
                .table_name(&self.table.name)
                .set_item(Some(item))
                .set_condition_expression(cond)
                .set_expression_attribute_values(values.flatten())
                .build()
                .map_err(internal)?;
            Ok(TransactWriteItem::builder().put(put).build())
        }

        fn delete(&self, key: Item) -> Result<TransactWriteItem, ApiError> {
            let del = Delete::builder()
                .table_name(&self.table.name)
                .set_key(Some(key))
                .build()
                .map_err(internal)?;
            Ok(TransactWriteItem::builder().delete(del).build())
        }

        fn check(
            &self,
            key: Item,
            condition: &str,
            values: Option<Item>,
        ) -> Result<TransactWriteItem, ApiError> {
            let check = ConditionCheck::builder()
                .table_name(&self.table.name)
                .set_key(Some(key))
                .condition_expression(condition)
                .set_expression_attribute_values(values)
                .build()
                .map_err(internal)?;
            Ok(TransactWriteItem::builder().condition_check(check).build())
        }

        /// The checks that neither account is deleted.
        fn alive(
            &self,
            users: [&str; 2],
            items: &mut Vec<TransactWriteItem>,
            guards: &mut Vec<usize>,
        ) -> Result<(), ApiError> {
            for user in users {
                guards.push(items.len());
                items.push(self.check(
                    directory_key(user),
                    "attribute_not_exists(deleted)",
                    None,
                )?);
            }
            Ok(())
        }

        fn edge_items(
            &self,
            previous: Option<&Edge>,
            next: &Edge,
            items: &mut Vec<TransactWriteItem>,
            guards: &mut Vec<usize>,
        ) -> Result<(), ApiError> {
            let mut item = to_item(next)?;
            item.extend(edge_key(&next.follower_id, &next.followee_id));
            items.push(self.put(item, Some(unchanged(previous.map(|p| p.seq))))?);
            if let Some(prev) = previous
                && let Some(entry) = &prev.entry
            {
                for mut old in entries(prev, prev.state, entry) {
                    old.retain(|name, _| name == "pk" || name == "sk");
                    items.push(self.delete(old)?);
                }
            }
            if let Some(entry) = &next.entry {
                for new in entries(next, next.state, entry) {
                    items.push(self.put(new, None)?);
                }
            }
            if next.state != FollowState::None {
                let (f, e) = (next.follower_id.as_str(), next.followee_id.as_str());
                self.alive([f, e], items, guards)?;
                let not_blocked = "attribute_not_exists(pk) OR blocked = :no";
                for (a, b) in [(f, e), (e, f)] {
                    guards.push(items.len());
                    items.push(self.check(
                        block_key(a, b),
                        not_blocked,
                        Some(HashMap::from([(
                            ":no".to_owned(),
                            AttributeValue::Bool(false),
                        )])),
                    )?);
                }
            }
            Ok(())
        }

        fn block_items(
            &self,
            previous: Option<&Block>,
            next: &Block,
            items: &mut Vec<TransactWriteItem>,
            guards: &mut Vec<usize>,
        ) -> Result<(), ApiError> {
            let mut item = to_item(next)?;
            item.extend(block_key(&next.blocker_id, &next.blocked_id));
            items.push(self.put(item, Some(unchanged(previous.map(|p| p.seq))))?);
            let index = blocked_by_key(&next.blocker_id, &next.blocked_id);
            if next.blocked {
                let mut index = index;
                index.insert("blocker_id".to_owned(), s(&next.blocker_id));
                items.push(self.put(index, None)?);
                self.alive([&next.blocker_id, &next.blocked_id], items, guards)?;
            } else {
                items.push(self.delete(index)?);
            }
            Ok(())
        }
    }

    #[async_trait]
    impl FollowsStore for DynamoFollowsStore {
        async fn relations(
            &self,
            viewer: &str,
            others: &[String],
        ) -> Result<HashMap<String, Relation>, ApiError> {
            let mut found: HashMap<(String, String), Item> = HashMap::new();
            // Nothing stands between the viewer and themselves, and BatchGetItem refuses
            // repeated keys.
            let mut distinct: Vec<&String> = others.iter().filter(|o| *o != viewer).collect();
            distinct.sort_unstable();
            distinct.dedup();
            let mut keys = Vec::with_capacity(distinct.len() * 4);
            for other in distinct {
                keys.push(edge_key(viewer, other));
                keys.push(edge_key(other, viewer));
                keys.push(block_key(viewer, other));
                keys.push(block_key(other, viewer));
            }
            for item in self.table.batch_get(keys).await? {
                found.insert((string(&item, "pk"), string(&item, "sk")), item);
            }
            let mut take = |pk: String, sk: String| found.remove(&(pk, sk));
            others
                .iter()
                .map(|other| {
                    let edge = |item: Option<Item>| item.map(from_item::<Edge>).transpose();
                    let block = |item: Option<Item>| item.map(from_item::<Block>).transpose();
                    let relation = Relation {
                        outgoing: edge(take(format!("EDGE#{viewer}"), format!("TO#{other}")))?,
                        incoming: edge(take(format!("EDGE#{other}"), format!("TO#{viewer}")))?,
                        blocking: block(take(format!("BLOCK#{viewer}"), format!("TO#{other}")))?,
                        blocked_by: block(take(format!("BLOCK#{other}"), format!("TO#{viewer}")))?,
                    };
                    Ok((other.clone(), relation))
                })
                .collect()
        }

        async fn edge(
            &self,
            follower_id: &str,
            followee_id: &str,
        ) -> Result<Option<Edge>, ApiError> {
            Ok(self
                .table
                .get(&format!("EDGE#{follower_id}"), &format!("TO#{followee_id}"))
                .await?)
        }

        async fn commit(
            &self,
            changes: &[Change],
            events: &[Envelope],
        ) -> Result<Commit, ApiError> {
            let mut items = Vec::new();
            let mut guards = Vec::new();
            for change in changes {
                match change {
                    Change::Edge { previous, next } => {
                        self.edge_items(previous.as_ref(), next, &mut items, &mut guards)?;
                    }
                    Change::Block { previous, next } => {
                        self.block_items(previous.as_ref(), next, &mut items, &mut guards)?;
                    }
                }
            }
            for event in events {
                items.push(outbox_put(&self.table.name, FOLLOWS_TOPIC, event));
            }
            match self
                .table
                .client
                .transact_write_items()
                .set_transact_items(Some(items))
                .send()
                .await
            {
                Ok(_) => Ok(Commit::Done),
                Err(err) => {
                    let reasons = cancellation_reasons(&err);
                    if guards
                        .iter()
                        .any(|&i| shutter_store::condition_failed_at(&reasons, i))
                    {
                        Ok(Commit::Refused)
                    } else if reasons
                        .iter()
                        .any(|r| r == "ConditionalCheckFailed" || r == "TransactionConflict")
                    {
                        Ok(Commit::Stale)
                    } else {
                        Err(internal(err))
                    }
                }
            }
        }

        async fn list(
            &self,
            list: List,
            owner: &str,
            after: Option<&str>,
            limit: usize,
        ) -> Result<Vec<ListEntry>, ApiError> {
            let items = self
                .table
                .query_page(&list_pk(list, owner), after, true, Some(limit))
                .await?;
            Ok(items
                .iter()
                .map(|item| ListEntry {
                    position: string(item, "sk"),
                    user_id: string(item, "user_id"),
                    at: string(item, "at"),
                })
                .collect())
        }

        async fn live_edges(&self, user_id: &str, limit: usize) -> Result<Vec<Edge>, ApiError> {
            // Outgoing edges are found by their own partition; incoming ones by the lists.
            let out = self
                .table
                .client
                .query()
                .table_name(&self.table.name)
                .key_condition_expression("pk = :pk")
                .filter_expression("#state <> :none")
                .expression_attribute_names("#state", "state")
                .expression_attribute_values(":pk", s(format!("EDGE#{user_id}")))
                .expression_attribute_values(":none", s("none"))
                .consistent_read(true)
                .send()
                .await
                .map_err(internal)?;
            let mut edges: Vec<Edge> = out
                .items()
                .iter()
                .cloned()
                .map(from_item)
                .collect::<Result<_, _>>()?;
            for list in [List::Followers, List::Requests] {
                if edges.len() >= limit {
                    break;
                }
                let listed = self.list(list, user_id, None, limit - edges.len()).await?;
                let keys = listed
                    .iter()
                    .map(|e| edge_key(&e.user_id, user_id))
                    .collect();
                for item in self.table.batch_get(keys).await? {
                    edges.push(from_item(item)?);
                }
            }
            edges.retain(|e| e.state != FollowState::None);
            edges.truncate(limit);
            Ok(edges)
        }

        async fn live_blocks(&self, user_id: &str, limit: usize) -> Result<Vec<Block>, ApiError> {
            let query = |pk: String, filter: bool| {
                let mut q = self
                    .table
                    .client
                    .query()
                    .table_name(&self.table.name)
                    .key_condition_expression("pk = :pk")
                    .expression_attribute_values(":pk", s(pk))
                    .consistent_read(true);
                if filter {
                    q = q
                        .filter_expression("blocked = :yes")
                        .expression_attribute_values(":yes", AttributeValue::Bool(true));
                }
                q
            };
            let by = query(format!("BLOCK#{user_id}"), true)
                .send()
                .await
                .map_err(internal)?;
            let mut blocks: Vec<Block> = by
                .items()
                .iter()
                .cloned()
                .map(from_item)
                .collect::<Result<_, _>>()?;
            let against = query(format!("BLOCKEDBY#{user_id}"), false)
                .send()
                .await
                .map_err(internal)?;
            let keys = against
                .items()
                .iter()
                .map(|item| block_key(&string(item, "blocker_id"), user_id))
                .collect();
            for item in self.table.batch_get(keys).await? {
                let block: Block = from_item(item)?;
                if block.blocked {
                    blocks.push(block);
                }
            }
            blocks.truncate(limit);
            Ok(blocks)
        }
    }
}

pub mod memory {
    //! An in-memory store with the same rules, for unit tests of the handlers.

    use std::sync::Mutex;

    use super::*;

    #[derive(Debug, Default)]
    pub struct MemoryFollowsStore {
        edges: Mutex<HashMap<(String, String), Edge>>,
        blocks: Mutex<HashMap<(String, String), Block>>,
        /// Deleted accounts (the directory's tombstones).
        pub gone: Mutex<Vec<String>>,
        pub events: Mutex<Vec<Envelope>>,
    }

    fn poisoned() -> ApiError {
        ApiError::internal(std::io::Error::other("poisoned lock"))
    }

    #[async_trait]
    impl FollowsStore for MemoryFollowsStore {
        async fn relations(
            &self,
            viewer: &str,
            others: &[String],
        ) -> Result<HashMap<String, Relation>, ApiError> {
            let edges = self.edges.lock().map_err(|_| poisoned())?;
            let blocks = self.blocks.lock().map_err(|_| poisoned())?;
            let pair = |a: &str, b: &str| (a.to_owned(), b.to_owned());
            Ok(others
                .iter()
                .map(|o| {
                    (
                        o.clone(),
                        Relation {
                            outgoing: edges.get(&pair(viewer, o)).cloned(),
                            incoming: edges.get(&pair(o, viewer)).cloned(),
                            blocking: blocks.get(&pair(viewer, o)).cloned(),
                            blocked_by: blocks.get(&pair(o, viewer)).cloned(),
                        },
                    )
                })
                .collect())
        }

        async fn edge(
            &self,
            follower_id: &str,
            followee_id: &str,
        ) -> Result<Option<Edge>, ApiError> {
            Ok(self
                .edges
                .lock()
                .map_err(|_| poisoned())?
                .get(&(follower_id.to_owned(), followee_id.to_owned()))
                .cloned())
        }

        async fn commit(
            &self,
            changes: &[Change],
            events: &[Envelope],
        ) -> Result<Commit, ApiError> {
            let mut edges = self.edges.lock().map_err(|_| poisoned())?;
            let mut blocks = self.blocks.lock().map_err(|_| poisoned())?;
            let gone = self.gone.lock().map_err(|_| poisoned())?;
            let blocked = |blocks: &HashMap<(String, String), Block>, a: &str, b: &str| {
                blocks
                    .get(&(a.to_owned(), b.to_owned()))
                    .is_some_and(|x| x.blocked)
            };
            for change in changes {
                match change {
                    Change::Edge { previous, next } => {
                        let key = (next.follower_id.clone(), next.followee_id.clone());
                        if edges.get(&key).map(|e| e.seq) != previous.as_ref().map(|p| p.seq) {
                            return Ok(Commit::Stale);
                        }
                        if next.state != FollowState::None
                            && (blocked(&blocks, &key.0, &key.1)
                                || blocked(&blocks, &key.1, &key.0)
                                || gone.contains(&key.0)
                                || gone.contains(&key.1))
                        {
                            return Ok(Commit::Refused);
                        }
                    }
                    Change::Block { previous, next } => {
                        let key = (next.blocker_id.clone(), next.blocked_id.clone());
                        if blocks.get(&key).map(|b| b.seq) != previous.as_ref().map(|p| p.seq) {
                            return Ok(Commit::Stale);
                        }
                        if next.blocked && (gone.contains(&key.0) || gone.contains(&key.1)) {
                            return Ok(Commit::Refused);
                        }
                    }
                }
            }
            for change in changes {
                match change.clone() {
                    Change::Edge { next, .. } => {
                        edges.insert((next.follower_id.clone(), next.followee_id.clone()), next);
                    }
                    Change::Block { next, .. } => {
                        blocks.insert((next.blocker_id.clone(), next.blocked_id.clone()), next);
                    }
                }
            }
            self.events
                .lock()
                .map_err(|_| poisoned())?
                .extend_from_slice(events);
            Ok(Commit::Done)
        }

        async fn list(
            &self,
            list: List,
            owner: &str,
            after: Option<&str>,
            limit: usize,
        ) -> Result<Vec<ListEntry>, ApiError> {
            let edges = self.edges.lock().map_err(|_| poisoned())?;
            let mut found: Vec<ListEntry> = edges
                .values()
                .filter_map(|e| {
                    let (mine, other) = match list {
                        List::Followers => (
                            e.followee_id == owner && e.state == FollowState::Following,
                            &e.follower_id,
                        ),
                        List::Following => (
                            e.follower_id == owner && e.state == FollowState::Following,
                            &e.followee_id,
                        ),
                        List::Requests => (
                            e.followee_id == owner && e.state == FollowState::Requested,
                            &e.follower_id,
                        ),
                    };
                    let entry = e.entry.clone()?;
                    (mine && after.is_none_or(|a| entry.as_str() < a)).then(|| ListEntry {
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

        async fn live_edges(&self, user_id: &str, limit: usize) -> Result<Vec<Edge>, ApiError> {
            Ok(self
                .edges
                .lock()
                .map_err(|_| poisoned())?
                .values()
                .filter(|e| {
                    e.state != FollowState::None
                        && (e.follower_id == user_id || e.followee_id == user_id)
                })
                .take(limit)
                .cloned()
                .collect())
        }

        async fn live_blocks(&self, user_id: &str, limit: usize) -> Result<Vec<Block>, ApiError> {
            Ok(self
                .blocks
                .lock()
                .map_err(|_| poisoned())?
                .values()
                .filter(|b| b.blocked && (b.blocker_id == user_id || b.blocked_id == user_id))
                .take(limit)
                .cloned()
                .collect())
        }
    }
}
