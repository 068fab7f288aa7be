//! The outbox as the publisher and the sweeper see it, across every service table: the
//! items still pending (the sparse `OutboxPending` index), and marking one published.
//! The DynamoDB adapter scans or queries the index through shutter-store's `Table`; the
//! memory fake keeps the same rules for unit tests.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use shutter_events::OutboxMessage;
use shutter_events::outbox::{
    PENDING_ATTRIBUTE, PENDING_INDEX, PUBLISHED_LABEL, WRITTEN_AT_ATTRIBUTE, mark_published,
};
use shutter_store::{
    Item, Query, SdkClient, SdkConfig, SortKeys, StoreError, StoreResult, Table, n,
};

/// A pending outbox item as the sweeper reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingItem {
    /// The table it is in.
    pub table: String,
    /// Its event id (from its key, so that even an item that does not decode is known).
    pub event_id: String,
    /// `outbox_at`: when it was written, in ms since the epoch.
    pub written_at: i64,
    /// The message to publish, or why the item can never be published.
    pub message: Result<OutboxMessage, String>,
    /// The item's `event` text as stored, for the dead-letter queue.
    pub raw: String,
}

impl PendingItem {
    /// The aggregate whose events must stay in order: the message's key, or for an item
    /// that does not decode, the item itself.
    pub fn aggregate(&self) -> (&str, &str) {
        match &self.message {
            Ok(msg) => (self.table.as_str(), msg.key.as_str()),
            Err(_) => (self.table.as_str(), self.event_id.as_str()),
        }
    }
}

#[async_trait]
pub trait OutboxStore: Send + Sync {
    /// Up to `limit` items of `table`'s pending `shard` written before `before` (ms since
    /// the epoch), oldest first.
    async fn pending(
        &self,
        table: &str,
        shard: &str,
        before: i64,
        limit: usize,
    ) -> StoreResult<Vec<PendingItem>>;

    /// Every item of `table`'s pending index written before `before`, in no order, read in
    /// one scan of the index: `None` when the index holds more than `most` items (of any
    /// age), which are then read per shard, oldest first, with [`Self::pending`].
    async fn pending_all(
        &self,
        table: &str,
        before: i64,
        most: usize,
    ) -> StoreResult<Option<Vec<PendingItem>>>;

    /// Marks `event_id`'s item of `table` published. Conflict([`PUBLISHED_LABEL`]) when the
    /// item is not there (it expired after an earlier mark).
    async fn mark_published(&self, table: &str, event_id: &str) -> StoreResult<()>;
}

/// The outbox in DynamoDB: every table through one client.
#[derive(Debug, Clone)]
pub struct DynamoOutbox {
    pub client: SdkClient<aws_sdk_dynamodb::Client>,
}

impl DynamoOutbox {
    pub fn new(aws: &SdkConfig) -> Self {
        Self {
            client: SdkClient::new(aws, aws_sdk_dynamodb::Client::new),
        }
    }

    /// `name` through the one client.
    fn table(&self, name: &str) -> Table {
        Table {
            client: self.client.clone(),
            name: name.to_owned(),
        }
    }
}

#[async_trait]
impl OutboxStore for DynamoOutbox {
    async fn pending(
        &self,
        table: &str,
        shard: &str,
        before: i64,
        limit: usize,
    ) -> StoreResult<Vec<PendingItem>> {
        let table = self.table(table);
        let mut items = Vec::new();
        let mut start: Option<Item> = None;
        while items.len() < limit {
            // Oldest first, up to what is still wanted: the sweeper publishes in order.
            let query = Query::index(
                shard,
                PENDING_INDEX,
                PENDING_ATTRIBUTE,
                WRITTEN_AT_ATTRIBUTE,
            )
            .sort_keys(SortKeys::Below(n(before)))
            .limit(limit - items.len());
            let (page, next) = table.query_from(&query, start).await?;
            items.extend(page.iter().map(|i| read_item(&table.name, i)));
            start = next;
            if start.is_none() {
                break;
            }
        }
        Ok(items)
    }

    async fn pending_all(
        &self,
        table: &str,
        before: i64,
        most: usize,
    ) -> StoreResult<Option<Vec<PendingItem>>> {
        let table = self.table(table);
        let (mut items, mut read) = (Vec::new(), 0usize);
        let mut start: Option<Item> = None;
        loop {
            // One more than `most`: reading it says the index holds too many.
            let (page, count, next) = table
                .scan_index_from(
                    PENDING_INDEX,
                    ("#a < :v", WRITTEN_AT_ATTRIBUTE, n(before)),
                    most + 1 - read,
                    start,
                )
                .await?;
            read += count;
            items.extend(page.iter().map(|i| read_item(&table.name, i)));
            if read > most {
                return Ok(None);
            }
            match next {
                Some(key) => start = Some(key),
                None => return Ok(Some(items)),
            }
        }
    }

    async fn mark_published(&self, table: &str, event_id: &str) -> StoreResult<()> {
        let table = self.table(table);
        table.write(mark_published(event_id)).await
    }
}

/// A pending item as DynamoDB returned it.
fn read_item(table: &str, item: &Item) -> PendingItem {
    let pk = shutter_store::string_attr(item, "pk").unwrap_or_default();
    PendingItem {
        table: table.to_owned(),
        event_id: pk.strip_prefix("OUTBOX#").unwrap_or(pk).to_owned(),
        written_at: shutter_store::number_attr(item, WRITTEN_AT_ATTRIBUTE).unwrap_or(0),
        message: match OutboxMessage::from_item(item) {
            Some(Ok(msg)) => Ok(msg),
            Some(Err(e)) => Err(e.to_string()),
            None => Err(format!("{pk} is not an outbox item")),
        },
        raw: match item.get("event") {
            Some(AttributeValue::S(text)) => text.clone(),
            _ => String::new(),
        },
    }
}

/// The outbox in memory, for unit tests: each table's items, pending or published.
#[derive(Debug, Default)]
pub struct MemoryOutbox {
    /// (item, still pending) by table, in insertion order.
    pub tables: std::sync::Mutex<std::collections::BTreeMap<String, Vec<(PendingItem, bool)>>>,
    /// Event ids whose mark fails (as when DynamoDB is unreachable).
    pub failing_marks: std::sync::Mutex<Vec<String>>,
}

impl MemoryOutbox {
    /// Adds a pending item.
    pub fn insert(&self, item: PendingItem) {
        if let Ok(mut tables) = self.tables.lock() {
            tables
                .entry(item.table.clone())
                .or_default()
                .push((item, true));
        }
    }

    /// The event ids still pending in `table`.
    pub fn still_pending(&self, table: &str) -> Vec<String> {
        self.tables
            .lock()
            .map(|t| {
                t.get(table)
                    .into_iter()
                    .flatten()
                    .filter(|(_, pending)| *pending)
                    .map(|(i, _)| i.event_id.clone())
                    .collect()
            })
            .unwrap_or_default()
    }
}

#[async_trait]
impl OutboxStore for MemoryOutbox {
    async fn pending(
        &self,
        table: &str,
        shard: &str,
        before: i64,
        limit: usize,
    ) -> StoreResult<Vec<PendingItem>> {
        let tables = self
            .tables
            .lock()
            .map_err(|_| StoreError::Unavailable("poisoned lock".into()))?;
        let mut found: Vec<PendingItem> = tables
            .get(table)
            .into_iter()
            .flatten()
            .filter(|(item, pending)| {
                *pending
                    && item.written_at < before
                    && shutter_events::outbox::pending_shard(item.aggregate().1) == shard
            })
            .map(|(item, _)| item.clone())
            .collect();
        found.sort_by_key(|i| i.written_at);
        found.truncate(limit);
        Ok(found)
    }

    async fn pending_all(
        &self,
        table: &str,
        before: i64,
        most: usize,
    ) -> StoreResult<Option<Vec<PendingItem>>> {
        let tables = self
            .tables
            .lock()
            .map_err(|_| StoreError::Unavailable("poisoned lock".into()))?;
        let pending: Vec<&PendingItem> = tables
            .get(table)
            .into_iter()
            .flatten()
            .filter(|(_, pending)| *pending)
            .map(|(item, _)| item)
            .collect();
        if pending.len() > most {
            return Ok(None);
        }
        Ok(Some(
            pending
                .into_iter()
                .filter(|item| item.written_at < before)
                .cloned()
                .collect(),
        ))
    }

    async fn mark_published(&self, table: &str, event_id: &str) -> StoreResult<()> {
        if self
            .failing_marks
            .lock()
            .is_ok_and(|f| f.iter().any(|id| id == event_id))
        {
            return Err(StoreError::Unavailable("DynamoDB unreachable".into()));
        }
        let mut tables = self
            .tables
            .lock()
            .map_err(|_| StoreError::Unavailable("poisoned lock".into()))?;
        let item = tables
            .get_mut(table)
            .and_then(|items| items.iter_mut().find(|(i, _)| i.event_id == event_id))
            .ok_or(StoreError::Conflict(PUBLISHED_LABEL))?;
        item.1 = false;
        Ok(())
    }
}
