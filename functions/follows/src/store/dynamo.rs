//! The DynamoDB adapter over the follows table.
//!
//! Layout (`pk` / `sk`):
//! - `EDGE#<follower>` / `TO#<followee>`: the [`Edge`] (kept at `state: none` after an
//!   unfollow, so its `seq` keeps counting); a query on `EDGE#<user>` finds every edge
//!   the user started, which is how an account's edges are found when it is deleted;
//! - `FOLLOWERS#<followee>` / `<entry>` and `FOLLOWING#<follower>` / `<entry>`: the two
//!   list entries of a `following` edge (`user_id`: the other user, `at`; entry ids are
//!   ULIDs, so the lists sort by time);
//! - `REQUESTS#<followee>` / `<entry>`: the list entry of a `requested` edge;
//! - `BLOCK#<blocker>` / `TO#<blocked>`: the [`Block`]; while it holds, also
//!   `BLOCKEDBY#<blocked>` / `FROM#<blocker>` (`blocker_id`), so a deleted account's
//!   blocks by others can be found;
//! - `DIR#...`: the directory of users ([`shutter_directory`]);
//! - `OUTBOX#<event id>` / `OUTBOX`: this service's events ([`shutter_events::outbox_write`]).
//!
//! A change that makes an edge `requested` or `following`, or starts a block, checks in
//! its transaction that neither user's directory item is a tombstone (a deleted account's
//! token lives up to 15 minutes), and an edge change also checks that neither user blocks
//! the other: a block and a follow racing each other cannot both commit.

use std::collections::HashMap;

use async_trait::async_trait;
use serde::Deserialize;
use shutter_core::UserId;
use shutter_events::{Envelope, outbox_write};
use shutter_store::{
    AttributeValue, Consistency, Item, Query, StoreResult, Table, Write, from_item, key, n, s,
    string_attr, to_item,
};

use super::{ACCOUNT_DELETED, BLOCKED, BlocksExport, Change, FollowsStore, List, ListEntry, STALE};
use crate::model::{Block, Edge, FollowState, Relation};

#[derive(Debug, Clone)]
pub struct DynamoFollowsStore {
    pub table: Table,
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

fn list_pk(list: List, owner: &str) -> String {
    match list {
        List::Followers => format!("FOLLOWERS#{owner}"),
        List::Following => format!("FOLLOWING#{owner}"),
        List::Requests => format!("REQUESTS#{owner}"),
    }
}

/// A list entry as stored.
#[derive(Deserialize)]
struct EntryItem {
    sk: String,
    user_id: UserId,
    at: String,
}

/// A `BLOCKEDBY` index item as stored.
#[derive(Deserialize)]
struct BlockedByItem {
    blocker_id: UserId,
}

fn entry_item(list: List, owner: &str, entry: &str, other: &str, at: &str) -> Item {
    let mut item = key(list_pk(list, owner), entry);
    item.insert("user_id".to_owned(), s(other));
    item.insert("at".to_owned(), s(at));
    item
}

/// The list entries an edge has in its state.
fn entries(edge: &Edge) -> Vec<Item> {
    let Some(entry) = &edge.entry else {
        return vec![];
    };
    let (f, e, at) = (&edge.follower_id, &edge.followee_id, &edge.since);
    match edge.state {
        FollowState::None => vec![],
        FollowState::Requested => vec![entry_item(List::Requests, e, entry, f, at)],
        FollowState::Following => vec![
            entry_item(List::Followers, e, entry, f, at),
            entry_item(List::Following, f, entry, e, at),
        ],
    }
}

/// `item` in place of what was read: nothing (`previous: None`) or the version `previous`.
fn put_unchanged_since(item: Item, previous: Option<u64>) -> Write {
    match previous {
        None => Write::put(item).if_absent(STALE),
        Some(seq) => Write::put(item)
            .when(STALE, "seq = :seq")
            .value(":seq", n(seq)),
    }
}

/// The checks that neither account is deleted.
fn alive<'a>(users: [&'a UserId; 2]) -> impl Iterator<Item = Write> + 'a {
    users
        .into_iter()
        .map(|user| shutter_directory::account_alive(user, ACCOUNT_DELETED))
}

/// The check that `blocker` does not block `blocked`.
fn not_blocked(blocker: &str, blocked: &str) -> Write {
    Write::check(
        block_key(blocker, blocked),
        BLOCKED,
        "attribute_not_exists(pk) OR blocked = :no",
    )
    .value(":no", AttributeValue::Bool(false))
}

/// The writes of one change: its guards (which go first in the transaction, so that a
/// refusal is reported over a stale read) and its puts and deletes.
fn change_writes(
    change: &Change,
    guards: &mut Vec<Write>,
    writes: &mut Vec<Write>,
) -> StoreResult<()> {
    match change {
        Change::Edge { previous, next } => {
            let mut item = to_item(next)?;
            item.extend(edge_key(&next.follower_id, &next.followee_id));
            writes.push(put_unchanged_since(item, previous.as_ref().map(|p| p.seq)));
            for mut old in previous.iter().flat_map(entries) {
                old.retain(|name, _| name == "pk" || name == "sk");
                writes.push(Write::delete(old));
            }
            writes.extend(entries(next).into_iter().map(Write::put));
            if next.state != FollowState::None {
                let (f, e) = (next.follower_id.as_str(), next.followee_id.as_str());
                guards.extend(alive([&next.follower_id, &next.followee_id]));
                guards.push(not_blocked(f, e));
                guards.push(not_blocked(e, f));
            }
        }
        Change::Block { previous, next } => {
            let (blocker, blocked) = (next.blocker_id.as_str(), next.blocked_id.as_str());
            let mut item = to_item(next)?;
            item.extend(block_key(blocker, blocked));
            writes.push(put_unchanged_since(item, previous.as_ref().map(|p| p.seq)));
            let mut index = blocked_by_key(blocker, blocked);
            if next.blocked {
                index.insert("blocker_id".to_owned(), s(blocker));
                writes.push(Write::put(index));
                guards.extend(alive([&next.blocker_id, &next.blocked_id]));
            } else {
                writes.push(Write::delete(index));
            }
        }
    }
    Ok(())
}

impl DynamoFollowsStore {
    /// Up to `limit` items that `query` selects (after its filter), following DynamoDB's
    /// pages: a filter may leave a page empty while later ones hold matches.
    async fn first(&self, query: &Query, limit: usize) -> StoreResult<Vec<Item>> {
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let (page, next) = self.table.query_from(query, start).await?;
            items.extend(page);
            match next {
                Some(next) if items.len() < limit => start = Some(next),
                _ => break,
            }
        }
        items.truncate(limit);
        Ok(items)
    }

    /// The edges to `user` listed in `list` (strongly consistent: ended edges' entries are
    /// gone in the same transaction, so none is read twice).
    async fn listed_edges(
        &self,
        list: List,
        user: &UserId,
        limit: usize,
    ) -> StoreResult<Vec<Edge>> {
        let query = Query::partition(list_pk(list, user)).limit(limit);
        let keys = self
            .table
            .query(&query)
            .await?
            .into_iter()
            .map(|item| from_item::<EntryItem>(item).map(|e| edge_key(&e.user_id, user)))
            .collect::<StoreResult<Vec<_>>>()?;
        self.table
            .batch_get(keys)
            .await?
            .into_iter()
            .map(from_item)
            .collect()
    }
}

#[async_trait]
impl FollowsStore for DynamoFollowsStore {
    async fn relations(
        &self,
        viewer: &UserId,
        others: &[UserId],
    ) -> StoreResult<HashMap<UserId, Relation>> {
        // Nothing stands between the viewer and themselves, and BatchGetItem refuses
        // repeated keys.
        let mut distinct: Vec<&UserId> = others.iter().filter(|o| *o != viewer).collect();
        distinct.sort_unstable();
        distinct.dedup();
        let mut keys = Vec::with_capacity(distinct.len() * 4);
        for other in distinct {
            keys.push(edge_key(viewer, other));
            keys.push(edge_key(other, viewer));
            keys.push(block_key(viewer, other));
            keys.push(block_key(other, viewer));
        }
        let mut found: HashMap<(String, String), Item> = HashMap::new();
        for item in self.table.batch_get(keys).await? {
            if let (Some(pk), Some(sk)) = (string_attr(&item, "pk"), string_attr(&item, "sk")) {
                found.insert((pk.to_owned(), sk.to_owned()), item);
            }
        }
        let mut take = |pk: String, sk: String| found.remove(&(pk, sk));
        let edge = |item: Option<Item>| item.map(from_item::<Edge>).transpose();
        let block = |item: Option<Item>| item.map(from_item::<Block>).transpose();
        others
            .iter()
            .map(|other| {
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

    async fn edge(&self, follower: &UserId, followee: &UserId) -> StoreResult<Option<Edge>> {
        self.table
            .get(&format!("EDGE#{follower}"), &format!("TO#{followee}"))
            .await
    }

    async fn commit(&self, changes: &[Change], events: &[Envelope]) -> StoreResult<()> {
        let (mut guards, mut writes) = (Vec::new(), Vec::new());
        for change in changes {
            change_writes(change, &mut guards, &mut writes)?;
        }
        for event in events {
            writes.push(outbox_write(event)?);
        }
        // The transaction names the first write whose condition failed: guards first.
        guards.extend(writes);
        self.table.transact(guards).await
    }

    async fn list(
        &self,
        list: List,
        owner: &UserId,
        after: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<ListEntry>> {
        let query = Query::partition(list_pk(list, owner))
            .after(after)
            .newest_first()
            .limit(limit)
            .consistency(Consistency::Eventual);
        self.table
            .query(&query)
            .await?
            .into_iter()
            .map(|item| {
                let entry: EntryItem = from_item(item)?;
                Ok(ListEntry {
                    position: entry.sk,
                    user_id: entry.user_id,
                    at: entry.at,
                })
            })
            .collect()
    }

    async fn live_edges(&self, user: &UserId, limit: usize) -> StoreResult<Vec<Edge>> {
        // Outgoing edges are found by their own partition; incoming ones by the lists.
        let outgoing = Query::partition(format!("EDGE#{user}"))
            .filter("#state <> :none")
            .name("#state", "state")
            .value(":none", s("none"));
        let mut edges = self
            .first(&outgoing, limit)
            .await?
            .into_iter()
            .map(from_item)
            .collect::<StoreResult<Vec<Edge>>>()?;
        for list in [List::Followers, List::Requests] {
            if edges.len() >= limit {
                break;
            }
            edges.extend(self.listed_edges(list, user, limit - edges.len()).await?);
        }
        edges.retain(|e| e.state != FollowState::None);
        edges.truncate(limit);
        Ok(edges)
    }

    async fn live_blocks(&self, user: &UserId, limit: usize) -> StoreResult<Vec<Block>> {
        let by = Query::partition(format!("BLOCK#{user}"))
            .filter("blocked = :yes")
            .value(":yes", AttributeValue::Bool(true));
        let mut blocks = self
            .first(&by, limit)
            .await?
            .into_iter()
            .map(from_item)
            .collect::<StoreResult<Vec<Block>>>()?;
        if blocks.len() < limit {
            let against = Query::partition(format!("BLOCKEDBY#{user}"));
            let keys = self
                .first(&against, limit - blocks.len())
                .await?
                .into_iter()
                .map(|item| {
                    from_item::<BlockedByItem>(item).map(|i| block_key(&i.blocker_id, user))
                })
                .collect::<StoreResult<Vec<_>>>()?;
            for item in self.table.batch_get(keys).await? {
                let block: Block = from_item(item)?;
                if block.blocked {
                    blocks.push(block);
                }
            }
        }
        blocks.truncate(limit);
        Ok(blocks)
    }
}

#[async_trait]
impl BlocksExport for DynamoFollowsStore {
    async fn blocks_by(
        &self,
        user: &UserId,
        after: Option<&str>,
        limit: usize,
    ) -> StoreResult<(Vec<Block>, Option<String>)> {
        // Lifted blocks stay as items (their seq guards later changes): filtered here, not
        // in the query, so that a page's position is its last item whatever it held.
        let items = self
            .table
            .query(
                &Query::partition(format!("BLOCK#{user}"))
                    .after(after)
                    .limit(limit),
            )
            .await?;
        let next = shutter_store::next_position(&items, limit);
        let mut blocks = Vec::new();
        for item in items {
            let block: Block = from_item(item)?;
            if block.blocked {
                blocks.push(block);
            }
        }
        Ok((blocks, next))
    }
}
