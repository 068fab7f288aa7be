//! `profiles-graph-events`: keeps `follower_count`, `following_count` and `post_count`
//! exact from the follows and posts topics (and who blocks whom, which hides profiles), however often Kafka redelivers and in
//! whatever order one edge's or post's events arrive.
//!
//! Each counted thing (a follow edge, a post) has a marker holding the newest `seq`
//! applied and whether it is counted now. An event moves the counters by the change in
//! "counted" only, in one transaction with the marker, conditional on the marker it read:
//! a repeated or stale event changes nothing, and two deliveries racing cannot both count.
//! Counters live in their own item beside the profile (`PROFILE#<id>` / `COUNTS`), so a
//! profile edit, which rewrites the profile item, never overwrites them.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use shutter_core::ApiError;
use shutter_events::legacy::Envelope;
use shutter_events::{KafkaEvent, PoisonQueue};

/// This consumer's name (consumer group, DLQ messages).
pub const GRAPH_CONSUMER: &str = "profiles-graph-events";

/// How often one event is applied again when a racing delivery moved its marker.
const ATTEMPTS: usize = 5;

/// The counters of a profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counter {
    Followers,
    Following,
    Posts,
}

impl Counter {
    pub fn attribute(self) -> &'static str {
        match self {
            Self::Followers => "follower_count",
            Self::Following => "following_count",
            Self::Posts => "post_count",
        }
    }
}

/// The newest applied state of one counted thing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Marker {
    pub seq: u64,
    pub counted: bool,
}

/// Whether a conditional write held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Commit {
    Done,
    /// The marker moved since it was read.
    Stale,
}

#[async_trait]
pub trait CountersStore: Send + Sync {
    async fn marker(&self, key: &str) -> Result<Option<Marker>, ApiError>;
    /// Replaces the marker `previous` with `next` and adds each delta to its user's
    /// counter, in one transaction. A deleted profile's counters are left alone.
    async fn count(
        &self,
        key: &str,
        previous: Option<&Marker>,
        next: &Marker,
        deltas: &[(&str, Counter, i64)],
    ) -> Result<Commit, ApiError>;
}

#[derive(Debug, Deserialize)]
struct EdgeFacts {
    follower_id: String,
    followee_id: String,
    seq: u64,
}

#[derive(Debug, Deserialize)]
struct BlockFacts {
    blocker_id: String,
    blocked_id: String,
    seq: u64,
}

#[derive(Debug, Deserialize)]
struct PostFacts {
    post_id: String,
    author_id: String,
}

/// Applies every record of an MSK batch; poison records go to the DLQ, anything
/// retryable fails the batch.
pub async fn graph_events<S: CountersStore, Q: PoisonQueue>(
    store: &S,
    poison: &Q,
    event: &KafkaEvent,
) -> Result<(), ApiError> {
    shutter_events::legacy::consume(event, poison, |envelope| async move {
        apply(store, &envelope).await
    })
    .await
}

/// One event's effect on the counters.
pub async fn apply<S: CountersStore>(store: &S, envelope: &Envelope) -> Result<(), ApiError> {
    let bad = |e: shutter_events::legacy::DecodeError| ApiError::invalid("data", e.to_string());
    match envelope.event_type.as_str() {
        kind @ ("FollowStarted" | "FollowEnded") => {
            let edge: EdgeFacts = envelope.data().map_err(bad)?;
            let key = format!("FOLLOW#{}#{}", edge.follower_id, edge.followee_id);
            let next = Marker {
                seq: edge.seq,
                counted: kind == "FollowStarted",
            };
            let users = [
                (edge.follower_id.as_str(), Counter::Following),
                (edge.followee_id.as_str(), Counter::Followers),
            ];
            settle(store, &key, next, &users).await
        }
        // A post counts from its publication until its deletion; a deletion is final.
        kind @ ("PostPublished" | "PostDeleted") => {
            let post: PostFacts = envelope.data().map_err(bad)?;
            let published = kind == "PostPublished";
            let next = Marker {
                seq: if published { 1 } else { 2 },
                counted: published,
            };
            let key = format!("POST#{}", post.post_id);
            settle(
                store,
                &key,
                next,
                &[(post.author_id.as_str(), Counter::Posts)],
            )
            .await
        }
        // Blocks hide profiles: a marker per (blocker, blocked), counting nothing.
        kind @ ("UserBlocked" | "UserUnblocked") => {
            let block: BlockFacts = envelope.data().map_err(bad)?;
            let next = Marker {
                seq: block.seq,
                counted: kind == "UserBlocked",
            };
            settle(
                store,
                &block_key(&block.blocker_id, &block.blocked_id),
                next,
                &[],
            )
            .await
        }
        _ => Ok(()),
    }
}

/// The marker key of `blocker`'s block of `blocked`.
pub fn block_key(blocker: &str, blocked: &str) -> String {
    format!("BLOCK#{blocker}#{blocked}")
}

/// Moves the marker at `key` to `next` unless it already holds a newer or equal `seq`,
/// and each user's counter by the change in "counted".
async fn settle<S: CountersStore>(
    store: &S,
    key: &str,
    next: Marker,
    users: &[(&str, Counter)],
) -> Result<(), ApiError> {
    for _ in 0..ATTEMPTS {
        let previous = store.marker(key).await?;
        if previous.is_some_and(|p| p.seq >= next.seq) {
            return Ok(());
        }
        let delta = i64::from(next.counted) - i64::from(previous.is_some_and(|p| p.counted));
        let deltas: Vec<(&str, Counter, i64)> = if delta == 0 {
            Vec::new()
        } else {
            users.iter().map(|&(u, c)| (u, c, delta)).collect()
        };
        if store.count(key, previous.as_ref(), &next, &deltas).await? == Commit::Done {
            return Ok(());
        }
    }
    Err(ApiError::internal(std::io::Error::other(format!(
        "counter marker {key} kept changing; retry"
    ))))
}

pub mod dynamo {
    //! The DynamoDB adapter: markers `COUNTED#<key>` / `COUNTED`, counters
    //! `PROFILE#<user id>` / `COUNTS` (a tombstone with `gone` once the profile is erased).

    use std::collections::HashMap;

    use shutter_store::dynamodb::types::{AttributeValue, Put, TransactWriteItem, Update};
    use shutter_store::{Item, Table, cancellation_reasons, n, s};

    use super::*;

    #[derive(Debug, Clone)]
    pub struct DynamoCountersStore {
        pub table: Table,
    }

    fn internal(e: impl std::error::Error + Send + Sync + 'static) -> ApiError {
        ApiError::internal(e)
    }

    /// The key of a user's counters item.
    pub fn counts_key(user_id: &str) -> Item {
        HashMap::from([
            ("pk".to_owned(), s(format!("PROFILE#{user_id}"))),
            ("sk".to_owned(), s("COUNTS")),
        ])
    }

    impl DynamoCountersStore {
        async fn gone(&self, user_id: &str) -> Result<bool, ApiError> {
            let item: Option<serde_json::Value> = self
                .table
                .get(&format!("PROFILE#{user_id}"), "COUNTS")
                .await?;
            Ok(item.is_some_and(|i| i.get("gone").is_some()))
        }
    }

    #[async_trait]
    impl CountersStore for DynamoCountersStore {
        async fn marker(&self, key: &str) -> Result<Option<Marker>, ApiError> {
            Ok(self.table.get(&format!("COUNTED#{key}"), "COUNTED").await?)
        }

        async fn count(
            &self,
            key: &str,
            previous: Option<&Marker>,
            next: &Marker,
            deltas: &[(&str, Counter, i64)],
        ) -> Result<Commit, ApiError> {
            let item: Item = HashMap::from([
                ("pk".to_owned(), s(format!("COUNTED#{key}"))),
                ("sk".to_owned(), s("COUNTED")),
                ("seq".to_owned(), n(next.seq)),
                ("counted".to_owned(), AttributeValue::Bool(next.counted)),
            ]);
            let (condition, values) = match previous {
                None => ("attribute_not_exists(pk)", None),
                Some(p) => (
                    "seq = :seq",
                    Some(HashMap::from([(":seq".to_owned(), n(p.seq))])),
                ),
            };
            let put = Put::builder()
                .table_name(&self.table.name)
                .set_item(Some(item))
                .condition_expression(condition)
                .set_expression_attribute_values(values)
                .build()
                .map_err(internal)?;
            let mut items = vec![TransactWriteItem::builder().put(put).build()];
            for &(user, counter, delta) in deltas {
                if self.gone(user).await? {
                    continue;
                }
                let update = Update::builder()
                    .table_name(&self.table.name)
                    .set_key(Some(counts_key(user)))
                    .update_expression("ADD #c :d")
                    .condition_expression("attribute_not_exists(gone)")
                    .expression_attribute_names("#c", counter.attribute())
                    .expression_attribute_values(":d", n(delta))
                    .build()
                    .map_err(internal)?;
                items.push(TransactWriteItem::builder().update(update).build());
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
                    if reasons
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
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::collections::HashMap;
    use std::sync::Mutex;

    use super::*;

    #[derive(Default)]
    struct Memory {
        markers: Mutex<HashMap<String, Marker>>,
        counts: Mutex<HashMap<(String, &'static str), i64>>,
    }

    #[async_trait]
    impl CountersStore for Memory {
        async fn marker(&self, key: &str) -> Result<Option<Marker>, ApiError> {
            Ok(self.markers.lock().unwrap().get(key).copied())
        }
        async fn count(
            &self,
            key: &str,
            previous: Option<&Marker>,
            next: &Marker,
            deltas: &[(&str, Counter, i64)],
        ) -> Result<Commit, ApiError> {
            let mut markers = self.markers.lock().unwrap();
            if markers.get(key) != previous {
                return Ok(Commit::Stale);
            }
            markers.insert(key.to_owned(), *next);
            let mut counts = self.counts.lock().unwrap();
            for &(user, counter, delta) in deltas {
                *counts
                    .entry((user.to_owned(), counter.attribute()))
                    .or_default() += delta;
            }
            Ok(Commit::Done)
        }
    }

    impl Memory {
        fn count_of(&self, user: &str, counter: Counter) -> i64 {
            self.counts
                .lock()
                .unwrap()
                .get(&(user.to_owned(), counter.attribute()))
                .copied()
                .unwrap_or(0)
        }
    }

    fn edge(kind: &str, seq: u64) -> Envelope {
        Envelope::new(
            kind,
            "a",
            None,
            "c",
            &serde_json::json!({"follower_id": "a", "followee_id": "b", "seq": seq, "at": "t"}),
        )
    }

    #[tokio::test]
    async fn redelivered_and_late_follow_events_count_once() {
        let store = Memory::default();
        let started = edge("FollowStarted", 1);
        apply(&store, &started).await.unwrap();
        apply(&store, &started).await.unwrap();
        assert_eq!(store.count_of("a", Counter::Following), 1);
        assert_eq!(store.count_of("b", Counter::Followers), 1);
        // Ended (seq 2) then a late Started (seq 1): ends at zero.
        apply(&store, &edge("FollowEnded", 2)).await.unwrap();
        apply(&store, &started).await.unwrap();
        assert_eq!(store.count_of("b", Counter::Followers), 0);
        // Out of order from the start: Ended (4) before Started (3) never counts.
        apply(&store, &edge("FollowEnded", 4)).await.unwrap();
        apply(&store, &edge("FollowStarted", 3)).await.unwrap();
        assert_eq!(store.count_of("b", Counter::Followers), 0);
        assert_eq!(store.count_of("a", Counter::Following), 0);
    }

    #[tokio::test]
    async fn a_post_counts_from_publication_until_deletion() {
        let store = Memory::default();
        let post = |kind: &str, id: &str| {
            Envelope::new(
                kind,
                id,
                None,
                "c",
                &serde_json::json!({"post_id": id, "author_id": "u"}),
            )
        };
        for _ in 0..2 {
            apply(&store, &post("PostPublished", "p1")).await.unwrap();
            apply(&store, &post("PostPublished", "p2")).await.unwrap();
        }
        assert_eq!(store.count_of("u", Counter::Posts), 2);
        apply(&store, &post("PostDeleted", "p1")).await.unwrap();
        apply(&store, &post("PostPublished", "p1")).await.unwrap();
        apply(&store, &post("PostDeleted", "p3")).await.unwrap();
        apply(&store, &post("PostPublished", "p3")).await.unwrap();
        assert_eq!(store.count_of("u", Counter::Posts), 1);
        // Events it does not count change nothing; bad payloads are poison (4xx).
        apply(&store, &post("PostUpdated", "p2")).await.unwrap();
        let bad = Envelope::new(
            "FollowStarted",
            "a",
            None,
            "c",
            &serde_json::json!({"seq": "x"}),
        );
        assert!(!apply(&store, &bad).await.unwrap_err().is_retryable());
    }
}
