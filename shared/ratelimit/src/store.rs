//! The counters' port and its adapters: [`DynamoCounters`] (the `RateLimitsTable`, one
//! conditional atomic update a request) and [`MemoryCounters`] (the same rule, for unit
//! tests).

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use shutter_store::{AttributeValue, Item, StoreError, StoreResult, Table, Write, key, n};

use crate::model::Plan;

/// The sort key of every counter item (the table has `pk` and `sk`, as every table here).
const SK: &str = "limit";

/// The condition labels of a transaction's writes, one per plan, so that a refusal says
/// which policy was full.
const LABELS: [&str; 8] = [
    "limit-0", "limit-1", "limit-2", "limit-3", "limit-4", "limit-5", "limit-6", "limit-7",
];

/// What adding a request to its counters gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Taken {
    /// Counted. For each plan, its counters after the request, when the write answered
    /// them (a single update does; a transaction does not).
    Granted(Vec<Option<Vec<u64>>>),
    /// Nothing counted: plan number `plan` had a full window.
    Refused { plan: usize },
}

#[async_trait]
pub trait Counters: Send + Sync {
    /// Adds each plan's cost to every one of its counters, all plans or none, if every
    /// counter stays within its window's limit.
    async fn take(&self, plans: &[Plan]) -> StoreResult<Taken>;
    /// The counters of `plan` as they are (to say why a request was refused).
    async fn read(&self, plan: &Plan) -> StoreResult<Vec<u64>>;
}

/// The counters in DynamoDB: a single policy is one `UpdateItem` (`ADD` to each window's
/// counter, conditional on each staying within its limit, returning the new counts);
/// several are one `TransactWriteItems` of such updates. Never a read before the write.
#[derive(Debug, Clone)]
pub struct DynamoCounters {
    pub table: Table,
}

fn update(plan: &Plan, label: &'static str) -> Option<Write> {
    let mut adds = Vec::new();
    let mut conditions = Vec::new();
    let mut write_names = Vec::new();
    let mut write_values = Vec::new();
    for (i, counter) in plan.counters.iter().enumerate() {
        let most = counter.most_before(plan.cost)?;
        adds.push(format!("#c{i} :cost"));
        conditions.push(format!("(attribute_not_exists(#c{i}) OR #c{i} <= :m{i})"));
        write_names.push((format!("#c{i}"), counter.attribute.clone()));
        write_values.push((format!(":m{i}"), n(most)));
    }
    let mut write = Write::update(
        key(plan.pk.clone(), SK),
        format!("SET #ttl = :ttl ADD {}", adds.join(", ")),
    )
    .when(label, conditions.join(" AND "))
    .name("#ttl", "ttl")
    .value(":ttl", n(plan.ttl))
    .value(":cost", n(plan.cost));
    for (placeholder, attribute) in write_names {
        write = write.name(placeholder, attribute);
    }
    for (placeholder, value) in write_values {
        write = write.value(placeholder, value);
    }
    Some(write)
}

fn counts(plan: &Plan, item: &Item) -> Vec<u64> {
    plan.counters
        .iter()
        .map(|c| match item.get(&c.attribute) {
            Some(AttributeValue::N(v)) => v.parse().unwrap_or(0),
            _ => 0,
        })
        .collect()
}

#[async_trait]
impl Counters for DynamoCounters {
    async fn take(&self, plans: &[Plan]) -> StoreResult<Taken> {
        if plans.len() > LABELS.len() {
            return Err(StoreError::corrupt_because(
                "too many rate limits on one request",
            ));
        }
        let mut writes = Vec::with_capacity(plans.len());
        for (i, plan) in plans.iter().enumerate() {
            match update(plan, LABELS[i]) {
                Some(w) => writes.push(w),
                // Larger than a whole window: it never fits, so nothing is written.
                None => return Ok(Taken::Refused { plan: i }),
            }
        }
        match writes.len() {
            0 => Ok(Taken::Granted(Vec::new())),
            1 => {
                let write = writes.remove(0);
                match self.table.update_returning(write).await {
                    Ok(item) => Ok(Taken::Granted(vec![Some(counts(&plans[0], &item))])),
                    Err(StoreError::Conflict(_)) => Ok(Taken::Refused { plan: 0 }),
                    Err(other) => Err(other),
                }
            }
            _ => match self.table.transact(writes).await {
                Ok(()) => Ok(Taken::Granted(vec![None; plans.len()])),
                Err(StoreError::Conflict(label)) => Ok(Taken::Refused {
                    plan: LABELS.iter().position(|l| *l == label).unwrap_or(0),
                }),
                Err(other) => Err(other),
            },
        }
    }

    async fn read(&self, plan: &Plan) -> StoreResult<Vec<u64>> {
        let item = self.table.get_item(&plan.pk, SK).await?.unwrap_or_default();
        Ok(counts(plan, &item))
    }
}

/// The counters in memory, with the adapter's rule: all plans or none, each counter
/// within its limit. Also counts the writes it was asked for.
#[derive(Debug, Default)]
pub struct MemoryCounters {
    items: Mutex<HashMap<String, HashMap<String, u64>>>,
}

impl MemoryCounters {
    /// The value of `attribute` in item `pk` (0 when absent).
    pub fn value(&self, pk: &str, attribute: &str) -> u64 {
        self.items
            .lock()
            .map(|items| {
                items
                    .get(pk)
                    .and_then(|i| i.get(attribute))
                    .copied()
                    .unwrap_or(0)
            })
            .unwrap_or(0)
    }

    /// How many items (policy, key, largest window) hold counters.
    pub fn items(&self) -> usize {
        self.items.lock().map(|i| i.len()).unwrap_or(0)
    }
}

fn poisoned<T>(_: T) -> StoreError {
    StoreError::Unavailable("poisoned lock".into())
}

#[async_trait]
impl Counters for MemoryCounters {
    async fn take(&self, plans: &[Plan]) -> StoreResult<Taken> {
        let mut items = self.items.lock().map_err(poisoned)?;
        for (i, plan) in plans.iter().enumerate() {
            let values: Vec<u64> = match items.get(&plan.pk) {
                Some(item) => plan
                    .counters
                    .iter()
                    .map(|c| item.get(&c.attribute).copied().unwrap_or(0))
                    .collect(),
                None => Vec::new(),
            };
            if !plan.fits(&values) {
                return Ok(Taken::Refused { plan: i });
            }
        }
        let mut after = Vec::with_capacity(plans.len());
        for plan in plans {
            let item = items.entry(plan.pk.clone()).or_default();
            let values = plan
                .counters
                .iter()
                .map(|c| {
                    let v = item.entry(c.attribute.clone()).or_insert(0);
                    *v += plan.cost;
                    *v
                })
                .collect();
            after.push((plans.len() == 1).then_some(values));
        }
        Ok(Taken::Granted(after))
    }

    async fn read(&self, plan: &Plan) -> StoreResult<Vec<u64>> {
        let items = self.items.lock().map_err(poisoned)?;
        Ok(plan
            .counters
            .iter()
            .map(|c| {
                items
                    .get(&plan.pk)
                    .and_then(|i| i.get(&c.attribute))
                    .copied()
                    .unwrap_or(0)
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::model::Policy;

    #[test]
    fn one_update_adds_to_every_window_under_one_condition() {
        let p = Policy::parse("posts@user=50/3600,100/86400").unwrap();
        let plan = p.plan("U1", 1000, 1);
        let w = update(&plan, "limit-0").unwrap();
        assert_eq!(w.label(), Some("limit-0"));
        assert_eq!(w.key(), key("posts#user#U1#0", "limit"));
        assert!(update(&p.plan("U1", 1000, 51), "limit-0").is_none());
    }
}
