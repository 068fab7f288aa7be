//! One DynamoDB table: reads, single and transactional writes, batches and queries,
//! written once for every service. Every SDK failure becomes a [`StoreError`]; nothing
//! here knows about HTTP.

use std::time::Duration;

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{DeleteRequest, KeysAndAttributes, PutRequest, WriteRequest};
use serde::de::DeserializeOwned;

use crate::{
    ConfigError, Item, SdkClient, SdkConfig, StoreError, StoreResult, Write, env, from_item, s,
};

/// DynamoDB's cap on the actions of one transaction.
pub const MAX_TRANSACTION_WRITES: usize = 100;
const BATCH_GET_KEYS: usize = 100;
const BATCH_WRITE_ITEMS: usize = 25;

/// How often, and how patiently, a request that DynamoDB pushed back (unprocessed batch
/// items, transactions in conflict) is sent again: exponential backoff from `base`,
/// capped at `max_delay`, at most `attempts` sends in all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub attempts: u32,
    pub base: Duration,
    pub max_delay: Duration,
}

impl RetryPolicy {
    /// The one policy every store uses.
    pub const STANDARD: Self = Self {
        attempts: 8,
        base: Duration::from_millis(25),
        max_delay: Duration::from_secs(2),
    };

    /// The pause before send number `attempt + 1` (`attempt` counts from 1).
    pub fn delay(&self, attempt: u32) -> Duration {
        let factor = 1u32 << attempt.saturating_sub(1).min(16);
        self.base.saturating_mul(factor).min(self.max_delay)
    }
}

/// Whether a read must see every write acknowledged before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Consistency {
    Strong,
    Eventual,
}

/// Which sort keys of a partition a query reads.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum SortKeys {
    #[default]
    All,
    Prefix(String),
    /// Strictly beyond this sort key, in the query's direction.
    After(String),
    /// Strictly below this sort key, of any type (a number: an index sorted by time).
    Below(crate::AttributeValue),
}

/// A query of one partition, built up and then run by [`Table::query`] (one request) or
/// [`Table::query_all`] (every page).
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    pk: String,
    /// The global secondary index read, if not the table: (index, partition attribute,
    /// sort attribute).
    index: Option<(String, String, String)>,
    sort: SortKeys,
    newest_first: bool,
    limit: Option<usize>,
    filter: Option<String>,
    names: Vec<(String, String)>,
    values: Vec<(String, crate::AttributeValue)>,
    consistency: Consistency,
}

impl Query {
    /// Partition `pk`, in ascending sort-key order, strongly consistent.
    pub fn partition(pk: impl Into<String>) -> Self {
        Self {
            pk: pk.into(),
            index: None,
            sort: SortKeys::All,
            newest_first: false,
            limit: None,
            filter: None,
            names: Vec::new(),
            values: Vec::new(),
            consistency: Consistency::Strong,
        }
    }

    /// Partition `pk` of global secondary index `index`, whose keys are the attributes
    /// `partition` and `sort`. Eventually consistent: a global index offers no other read.
    pub fn index(
        pk: impl Into<String>,
        index: impl Into<String>,
        partition: impl Into<String>,
        sort: impl Into<String>,
    ) -> Self {
        let mut query = Self::partition(pk).consistency(Consistency::Eventual);
        query.index = Some((index.into(), partition.into(), sort.into()));
        query
    }

    pub fn sort_keys(mut self, sort: SortKeys) -> Self {
        self.sort = sort;
        self
    }

    pub fn prefix(self, prefix: impl Into<String>) -> Self {
        self.sort_keys(SortKeys::Prefix(prefix.into()))
    }

    /// Strictly beyond `after` in the query's order; `None` from the start.
    pub fn after(self, after: Option<&str>) -> Self {
        match after {
            Some(after) => self.sort_keys(SortKeys::After(after.to_owned())),
            None => self,
        }
    }

    /// Highest sort key first.
    pub fn newest_first(mut self) -> Self {
        self.newest_first = true;
        self
    }

    /// At most `limit` items are read (before the filter applies).
    pub fn limit(mut self, limit: usize) -> Self {
        self.limit = Some(limit);
        self
    }

    /// Items read are kept only if `expression` holds.
    pub fn filter(mut self, expression: impl Into<String>) -> Self {
        self.filter = Some(expression.into());
        self
    }

    pub fn value(mut self, placeholder: impl Into<String>, value: crate::AttributeValue) -> Self {
        self.values.push((placeholder.into(), value));
        self
    }

    pub fn name(mut self, placeholder: impl Into<String>, attribute: impl Into<String>) -> Self {
        self.names.push((placeholder.into(), attribute.into()));
        self
    }

    pub fn consistency(mut self, consistency: Consistency) -> Self {
        self.consistency = consistency;
        self
    }
}

/// One DynamoDB table of a service.
#[derive(Debug, Clone)]
pub struct Table {
    /// Built on the first request that reads or writes (see [`SdkClient`]).
    pub client: SdkClient<aws_sdk_dynamodb::Client>,
    pub name: String,
}

/// An SDK failure: a request DynamoDB refused as malformed is a bug (retrying cannot
/// help); anything else (throttling, timeouts, 5xx) may pass.
pub(crate) fn sdk_error<E, R>(err: SdkError<E, R>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    let invalid = matches!(
        err.code(),
        Some("ValidationException" | "ResourceNotFoundException")
    );
    let cause = aws_sdk_dynamodb::error::DisplayErrorContext(&err).to_string();
    if invalid {
        StoreError::Corrupt(cause.into())
    } else {
        StoreError::Unavailable(cause.into())
    }
}

impl Table {
    pub fn new(config: &SdkConfig, name: String) -> Self {
        Self {
            client: SdkClient::new(config, aws_sdk_dynamodb::Client::new),
            name,
        }
    }

    /// The table named by environment variable `env_name`.
    pub fn from_env(config: &SdkConfig, env_name: &'static str) -> Result<Self, ConfigError> {
        Ok(Self::new(config, env(env_name)?))
    }

    /// The raw item at (`pk`, `sk`), strongly consistent (reads follow the caller's own
    /// writes).
    pub async fn get_item(&self, pk: &str, sk: &str) -> StoreResult<Option<Item>> {
        let out = self
            .client
            .get()
            .get_item()
            .table_name(&self.name)
            .key("pk", s(pk))
            .key("sk", s(sk))
            .consistent_read(true)
            .send()
            .await
            .map_err(sdk_error)?;
        Ok(out.item)
    }

    /// The item at (`pk`, `sk`) as `T`, strongly consistent.
    pub async fn get<T: DeserializeOwned>(&self, pk: &str, sk: &str) -> StoreResult<Option<T>> {
        self.get_item(pk, sk).await?.map(from_item).transpose()
    }

    /// One write on its own: a failed condition is [`StoreError::Conflict`] with its label.
    pub async fn write(&self, write: Write) -> StoreResult<()> {
        write.send_alone(self.client.get(), &self.name).await
    }

    /// Sends update `write` alone and answers the attributes it changed, as they are after
    /// it: an atomic counter's new value in the same request. A failed condition is
    /// [`StoreError::Conflict`] with its label.
    pub async fn update_returning(&self, write: Write) -> StoreResult<Item> {
        write
            .send_update_returning(self.client.get(), &self.name)
            .await
    }

    /// All of `writes` or none. A failed condition is [`StoreError::Conflict`] with the
    /// label of the first write whose condition failed; a transaction that kept
    /// conflicting with others is sent again by [`RetryPolicy::STANDARD`], then
    /// [`StoreError::Unavailable`].
    pub async fn transact(&self, writes: Vec<Write>) -> StoreResult<()> {
        if writes.is_empty() {
            return Ok(());
        }
        if writes.len() > MAX_TRANSACTION_WRITES {
            return Err(StoreError::corrupt_because(format!(
                "a transaction of {} writes is over DynamoDB's {MAX_TRANSACTION_WRITES}",
                writes.len()
            )));
        }
        let items = writes
            .iter()
            .map(|w| w.transact_item(&self.name))
            .collect::<Result<Vec<_>, _>>()?;
        let policy = RetryPolicy::STANDARD;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let err = match self
                .client
                .get()
                .transact_write_items()
                .set_transact_items(Some(items.clone()))
                .send()
                .await
            {
                Ok(_) => return Ok(()),
                Err(err) => err,
            };
            let reasons = cancellation_reasons(&err);
            if let Some(i) = reasons.iter().position(|r| r == "ConditionalCheckFailed") {
                return Err(StoreError::Conflict(
                    writes.get(i).and_then(Write::label).unwrap_or("unlabelled"),
                ));
            }
            let contended = reasons.iter().any(|r| r == "TransactionConflict");
            if contended && attempt < policy.attempts {
                tokio::time::sleep(policy.delay(attempt)).await;
                continue;
            }
            return Err(sdk_error(err));
        }
    }

    /// Every item of `keys` that exists, in requests of 100 keys, sending again what
    /// DynamoDB left unprocessed. Also returns the number of requests made, for callers
    /// that count them.
    pub async fn batch_get_counted(
        &self,
        keys: Vec<Item>,
        consistency: Consistency,
    ) -> StoreResult<(Vec<Item>, u64)> {
        let policy = RetryPolicy::STANDARD;
        let mut out = Vec::new();
        let mut requests = 0;
        for chunk in keys.chunks(BATCH_GET_KEYS) {
            let mut pending: Vec<Item> = chunk.to_vec();
            let mut attempt = 0;
            while !pending.is_empty() {
                attempt += 1;
                if attempt > 1 {
                    if attempt > policy.attempts {
                        return Err(StoreError::Unavailable(
                            "batch get kept leaving keys unprocessed".into(),
                        ));
                    }
                    tokio::time::sleep(policy.delay(attempt - 1)).await;
                }
                requests += 1;
                let request = KeysAndAttributes::builder()
                    .set_keys(Some(pending))
                    .consistent_read(consistency == Consistency::Strong)
                    .build()
                    .map_err(StoreError::corrupt)?;
                let answer = self
                    .client
                    .get()
                    .batch_get_item()
                    .request_items(&self.name, request)
                    .send()
                    .await
                    .map_err(sdk_error)?;
                out.extend(
                    answer
                        .responses
                        .and_then(|mut r| r.remove(&self.name))
                        .unwrap_or_default(),
                );
                pending = answer
                    .unprocessed_keys
                    .and_then(|mut u| u.remove(&self.name))
                    .map(|k| k.keys)
                    .unwrap_or_default();
            }
        }
        Ok((out, requests))
    }

    /// [`Table::batch_get_counted`], strongly consistent, without the count.
    pub async fn batch_get(&self, keys: Vec<Item>) -> StoreResult<Vec<Item>> {
        Ok(self.batch_get_counted(keys, Consistency::Strong).await?.0)
    }

    /// Puts every item (unconditionally), 25 a request, sending again what DynamoDB left
    /// unprocessed.
    pub async fn batch_put(&self, items: Vec<Item>) -> StoreResult<()> {
        let requests = items
            .into_iter()
            .map(|item| {
                PutRequest::builder()
                    .set_item(Some(item))
                    .build()
                    .map(|p| WriteRequest::builder().put_request(p).build())
                    .map_err(StoreError::corrupt)
            })
            .collect::<StoreResult<Vec<_>>>()?;
        self.batch_write(requests).await
    }

    /// Deletes every key, 25 a request, sending again what DynamoDB left unprocessed.
    /// Deleting what is not there succeeds.
    pub async fn batch_delete(&self, keys: Vec<Item>) -> StoreResult<()> {
        let requests = keys
            .into_iter()
            .map(|key| {
                DeleteRequest::builder()
                    .set_key(Some(key))
                    .build()
                    .map(|d| WriteRequest::builder().delete_request(d).build())
                    .map_err(StoreError::corrupt)
            })
            .collect::<StoreResult<Vec<_>>>()?;
        self.batch_write(requests).await
    }

    async fn batch_write(&self, requests: Vec<WriteRequest>) -> StoreResult<()> {
        let policy = RetryPolicy::STANDARD;
        for chunk in requests.chunks(BATCH_WRITE_ITEMS) {
            let mut pending = chunk.to_vec();
            let mut attempt = 0;
            while !pending.is_empty() {
                attempt += 1;
                if attempt > 1 {
                    if attempt > policy.attempts {
                        return Err(StoreError::Unavailable(
                            "batch write kept leaving items unprocessed".into(),
                        ));
                    }
                    tokio::time::sleep(policy.delay(attempt - 1)).await;
                }
                let out = self
                    .client
                    .get()
                    .batch_write_item()
                    .request_items(&self.name, pending)
                    .send()
                    .await
                    .map_err(sdk_error)?;
                pending = out
                    .unprocessed_items
                    .and_then(|mut m| m.remove(&self.name))
                    .unwrap_or_default();
            }
        }
        Ok(())
    }

    /// One request of `query`: up to its limit, in its order.
    pub async fn query(&self, query: &Query) -> StoreResult<Vec<Item>> {
        Ok(self.query_from(query, None).await?.0)
    }

    /// Every item `query` selects, following DynamoDB's pages (its limit applies to each
    /// request). Only for partitions whose size the caller bounds.
    pub async fn query_all(&self, query: &Query) -> StoreResult<Vec<Item>> {
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let (page, next) = self.query_from(query, start).await?;
            items.extend(page);
            match next {
                Some(key) => start = Some(key),
                None => return Ok(items),
            }
        }
    }

    /// One request of `query` from DynamoDB's own `start` key: the items and where the
    /// next request starts, if anywhere.
    pub async fn query_from(
        &self,
        query: &Query,
        start: Option<Item>,
    ) -> StoreResult<(Vec<Item>, Option<Item>)> {
        let (index, partition, sort) = match &query.index {
            Some((index, partition, sort)) => {
                (Some(index.clone()), partition.as_str(), sort.as_str())
            }
            None => (None, "pk", "sk"),
        };
        let mut request = self
            .client
            .get()
            .query()
            .table_name(&self.name)
            .set_index_name(index)
            .expression_attribute_names("#pk", partition)
            .expression_attribute_values(":pk", s(&query.pk))
            .scan_index_forward(!query.newest_first)
            .consistent_read(query.consistency == Consistency::Strong)
            .set_limit(query.limit.map(|l| i32::try_from(l).unwrap_or(i32::MAX)))
            .set_filter_expression(query.filter.clone())
            .set_exclusive_start_key(start);
        request = match &query.sort {
            SortKeys::All => request.key_condition_expression("#pk = :pk"),
            SortKeys::Prefix(prefix) => request
                .key_condition_expression("#pk = :pk AND begins_with(#sk, :sk)")
                .expression_attribute_names("#sk", sort)
                .expression_attribute_values(":sk", s(prefix)),
            SortKeys::After(after) => request
                .key_condition_expression(if query.newest_first {
                    "#pk = :pk AND #sk < :sk"
                } else {
                    "#pk = :pk AND #sk > :sk"
                })
                .expression_attribute_names("#sk", sort)
                .expression_attribute_values(":sk", s(after)),
            SortKeys::Below(below) => request
                .key_condition_expression("#pk = :pk AND #sk < :sk")
                .expression_attribute_names("#sk", sort)
                .expression_attribute_values(":sk", below.clone()),
        };
        for (placeholder, attribute) in &query.names {
            request = request.expression_attribute_names(placeholder, attribute);
        }
        for (placeholder, value) in &query.values {
            request = request.expression_attribute_values(placeholder, value.clone());
        }
        let out = request.send().await.map_err(sdk_error)?;
        let next = out.last_evaluated_key.filter(|k| !k.is_empty());
        Ok((out.items.unwrap_or_default(), next))
    }

    /// One request of a scan of the whole of `index` (meant for a sparse index, which holds
    /// few items), from DynamoDB's own `start` key, reading at most `limit` items: those of
    /// them that `filter` (over `#a` = `attribute`, `:v` = `value`) keeps, how many it read,
    /// and where the next request starts, if anywhere.
    pub async fn scan_index_from(
        &self,
        index: &str,
        filter: (&str, &str, crate::AttributeValue),
        limit: usize,
        start: Option<Item>,
    ) -> StoreResult<(Vec<Item>, usize, Option<Item>)> {
        let (expression, attribute, value) = filter;
        let out = self
            .client
            .get()
            .scan()
            .table_name(&self.name)
            .index_name(index)
            .filter_expression(expression)
            .expression_attribute_names("#a", attribute)
            .expression_attribute_values(":v", value)
            .limit(i32::try_from(limit.max(1)).unwrap_or(i32::MAX))
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(sdk_error)?;
        let read = usize::try_from(out.scanned_count).unwrap_or(0);
        let next = out.last_evaluated_key.filter(|k| !k.is_empty());
        Ok((out.items.unwrap_or_default(), read, next))
    }

    /// One page of partition `pk` in sort-key order, newest (highest) first when
    /// `newest_first`: up to `limit` items strictly beyond `after` in that order (all that
    /// one request returns when `limit` is none).
    pub async fn query_page(
        &self,
        pk: &str,
        after: Option<&str>,
        newest_first: bool,
        limit: Option<usize>,
    ) -> StoreResult<Vec<Item>> {
        let mut query = Query::partition(pk)
            .after(after)
            .consistency(Consistency::Eventual);
        if newest_first {
            query = query.newest_first();
        }
        if let Some(limit) = limit {
            query = query.limit(limit);
        }
        self.query(&query).await
    }
}

/// Why each action of a cancelled transaction failed (`ConditionalCheckFailed`, `None`,
/// ...), in action order; empty when the transaction failed for another reason.
fn cancellation_reasons(err: &SdkError<TransactWriteItemsError>) -> Vec<String> {
    match err.as_service_error() {
        Some(TransactWriteItemsError::TransactionCanceledException(e)) => e
            .cancellation_reasons()
            .iter()
            .map(|r| r.code().unwrap_or("None").to_owned())
            .collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        let p = RetryPolicy::STANDARD;
        assert_eq!(p.delay(1), Duration::from_millis(25));
        assert_eq!(p.delay(2), Duration::from_millis(50));
        assert_eq!(p.delay(4), Duration::from_millis(200));
        assert_eq!(p.delay(20), Duration::from_secs(2));
    }
}
