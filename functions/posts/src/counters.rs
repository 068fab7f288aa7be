//! `posts-events`, the posts service's MSK consumer:
//! - engagement (`shutter.likes`, `shutter.comments`) becomes `like_count`,
//!   `comment_count` and the `liked_by_me` markers;
//! - authors (`shutter.identity`, `shutter.profiles`) go to the directory;
//! - `PostDeleted` removes the post's media; `UserDeleted` deletes the user's posts.
//!
//! Counters on a hot post: one post's events share a Kafka partition (keyed by post id),
//! so one consumer sees them in order, and a batch of up to 100 becomes one BatchGetItem
//! and one transaction per 99 changes: the post item takes one write per batch, not one
//! per like. Each (post, user) like and each comment has a marker holding the sequence
//! number of the last change applied; a change applies only if its number is higher, and
//! the counter moves by the difference in "counted" state, in the same transaction. So
//! redelivery, duplicates from the outbox and replays after a partial failure never move
//! a counter twice.

use std::collections::{BTreeMap, HashMap};

use serde::Deserialize;
use shutter_core::ApiError;
use shutter_directory::legacy::Directory;
use shutter_events::legacy::{Envelope, decode_kafka_event};
use shutter_events::{KafkaEvent, PoisonQueue};
use shutter_media::MediaStore;
use shutter_store::dynamodb::types::{AttributeValue, Put, TransactWriteItem, Update};
use shutter_store::{n, s};

use crate::store::{PostsStore, post_pk};

/// One change of one marker: `LIKE#<user>` or `COMMENT#<id>` under a post.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub post_id: String,
    pub marker: String,
    pub seq: u64,
    pub counted: bool,
    pub counter: Counter,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Counter {
    Likes,
    Comments,
}

impl Counter {
    fn attribute(self) -> &'static str {
        match self {
            Self::Likes => "like_count",
            Self::Comments => "comment_count",
        }
    }
}

#[derive(Debug, Deserialize)]
struct LikeFacts {
    post_id: String,
    user_id: String,
    seq: u64,
}

#[derive(Debug, Deserialize)]
struct CommentFacts {
    post_id: String,
    comment_id: String,
}

/// The marker change an engagement event asks for; `None` for other events.
pub fn change_of(event: &Envelope) -> Result<Option<Change>, ApiError> {
    let bad = |e: shutter_events::legacy::DecodeError| ApiError::invalid("data", e.to_string());
    let like = |counted: bool| -> Result<Option<Change>, ApiError> {
        let f: LikeFacts = event.data().map_err(bad)?;
        Ok(Some(Change {
            post_id: f.post_id,
            marker: format!("LIKE#{}", f.user_id),
            seq: f.seq,
            counted,
            counter: Counter::Likes,
        }))
    };
    // A comment is added once and deleted once: its sequence is 1 then 2.
    let comment = |seq: u64| -> Result<Option<Change>, ApiError> {
        let f: CommentFacts = event.data().map_err(bad)?;
        Ok(Some(Change {
            post_id: f.post_id,
            marker: format!("COMMENT#{}", f.comment_id),
            seq,
            counted: seq == 1,
            counter: Counter::Comments,
        }))
    };
    match event.event_type.as_str() {
        "LikeAdded" => like(true),
        "LikeRemoved" => like(false),
        "CommentAdded" => comment(1),
        "CommentDeleted" => comment(2),
        _ => Ok(None),
    }
}

/// The last change per marker of one post, in marker order.
pub fn latest_per_marker(changes: Vec<Change>) -> Vec<Change> {
    let mut latest: BTreeMap<String, Change> = BTreeMap::new();
    for c in changes {
        match latest.get(&c.marker) {
            Some(seen) if seen.seq >= c.seq => {}
            _ => {
                latest.insert(c.marker.clone(), c);
            }
        }
    }
    latest.into_values().collect()
}

/// What a marker holds: the last sequence applied and whether it counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Marker {
    pub seq: u64,
    pub counted: bool,
}

/// The changes that apply over `stored`, and how each counter moves.
pub fn plan(
    changes: &[Change],
    stored: &HashMap<String, Marker>,
) -> (Vec<Change>, HashMap<Counter, i64>) {
    let mut applied = Vec::new();
    let mut deltas: HashMap<Counter, i64> = HashMap::new();
    for c in changes {
        let old = stored.get(&c.marker);
        if old.is_some_and(|m| m.seq >= c.seq) {
            continue;
        }
        let was = old.is_some_and(|m| m.counted);
        *deltas.entry(c.counter).or_default() += i64::from(c.counted) - i64::from(was);
        applied.push(c.clone());
    }
    (applied, deltas)
}

async fn stored_markers(
    store: &PostsStore,
    post_id: &str,
    changes: &[Change],
) -> Result<HashMap<String, Marker>, ApiError> {
    let keys = changes
        .iter()
        .map(|c| (post_pk(post_id), c.marker.clone()))
        .collect();
    let mut out = HashMap::new();
    for item in store.batch_get(keys).await? {
        let (Some(AttributeValue::S(sk)), Some(AttributeValue::N(seq))) =
            (item.get("sk"), item.get("seq"))
        else {
            continue;
        };
        let counted = matches!(item.get("counted"), Some(AttributeValue::Bool(true)));
        out.insert(
            sk.clone(),
            Marker {
                seq: seq.parse().unwrap_or(0),
                counted,
            },
        );
    }
    Ok(out)
}

fn internal(e: impl std::error::Error + Send + Sync + 'static) -> ApiError {
    ApiError::internal(e)
}

/// Markers per transaction: with the post's update and the event, 100 items at most.
const MARKERS_PER_TRANSACTION: usize = 98;

/// The payload of `PostEngagementChanged`: how one counter transaction moved the post's
/// counters. Emitted in that transaction, so a consumer that applies each event once (by
/// its id) keeps an exact copy of the counts (the feed does).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, Deserialize)]
pub struct EngagementChanged {
    pub post_id: String,
    pub like_delta: i64,
    pub comment_delta: i64,
}

/// Applies one post's changes: markers, counters and the event together, 98 markers a
/// transaction.
async fn apply_post(
    store: &PostsStore,
    post_id: &str,
    changes: Vec<Change>,
) -> Result<(), ApiError> {
    let changes = latest_per_marker(changes);
    for chunk in changes.chunks(MARKERS_PER_TRANSACTION) {
        let mut attempts = 0;
        loop {
            attempts += 1;
            let stored = stored_markers(store, post_id, chunk).await?;
            let (applied, deltas) = plan(chunk, &stored);
            if applied.is_empty() {
                break;
            }
            let mut items = Vec::with_capacity(applied.len() + 1);
            for c in &applied {
                let mut put = Put::builder()
                    .table_name(&store.table.name)
                    .item("pk", s(post_pk(post_id)))
                    .item("sk", s(&c.marker))
                    .item("seq", n(c.seq))
                    .item("counted", AttributeValue::Bool(c.counted));
                put = match stored.get(&c.marker) {
                    Some(m) => put
                        .condition_expression("seq = :old")
                        .expression_attribute_values(":old", n(m.seq)),
                    None => put.condition_expression("attribute_not_exists(pk)"),
                };
                items.push(
                    TransactWriteItem::builder()
                        .put(put.build().map_err(internal)?)
                        .build(),
                );
            }
            let mut adds = Vec::new();
            let mut update = Update::builder()
                .table_name(&store.table.name)
                .key("pk", s(post_pk(post_id)))
                .key("sk", s("POST"))
                .condition_expression("attribute_exists(pk)");
            for (i, (counter, delta)) in deltas.iter().filter(|(_, d)| **d != 0).enumerate() {
                adds.push(format!("{} :d{i}", counter.attribute()));
                update = update.expression_attribute_values(format!(":d{i}"), n(delta));
            }
            if !adds.is_empty() {
                let update = update
                    .update_expression(format!("ADD {}", adds.join(", ")))
                    .build()
                    .map_err(internal)?;
                items.push(TransactWriteItem::builder().update(update).build());
                let delta = |c| deltas.get(&c).copied().unwrap_or(0);
                let event = Envelope::new(
                    "PostEngagementChanged",
                    post_id,
                    None,
                    &format!("engagement-{post_id}"),
                    &EngagementChanged {
                        post_id: post_id.to_owned(),
                        like_delta: delta(Counter::Likes),
                        comment_delta: delta(Counter::Comments),
                    },
                );
                items.push(shutter_events::legacy::outbox_put(
                    &store.table.name,
                    crate::store::TOPIC,
                    &event,
                ));
            }
            match store.transact_raw(items).await {
                Ok(()) => break,
                Err(reasons) if shutter_store::condition_failed_at(&reasons, applied.len()) => {
                    // The post is gone: its counters no longer matter.
                    tracing::info!(post_id, "engagement for a deleted post ignored");
                    return Ok(());
                }
                Err(reasons)
                    if attempts < 5 && reasons.iter().any(|r| r == "ConditionalCheckFailed") =>
                {
                    continue;
                }
                Err(_) => {
                    return Err(ApiError::internal(std::io::Error::other(
                        "counter transaction failed",
                    )));
                }
            }
        }
    }
    Ok(())
}

#[derive(Debug, Deserialize)]
struct Deleted {
    post_id: String,
    author_id: String,
}

#[derive(Debug, Deserialize)]
struct UserGone {
    user_id: String,
}

/// The consumer: see the module documentation.
pub async fn posts_events<M: MediaStore, D: Directory, Q: PoisonQueue>(
    store: &PostsStore,
    media: &M,
    directory: &D,
    poison: &Q,
    event: &KafkaEvent,
) -> Result<(), ApiError> {
    let mut engagement: BTreeMap<String, Vec<Change>> = BTreeMap::new();
    for record in decode_kafka_event(event) {
        let envelope = match record.event {
            Ok(e) => e,
            Err(err) => {
                tracing::error!(position = %record.position, error = %err, "poison record sent to the DLQ");
                poison.send(&record.position, &err.to_string(), "").await?;
                continue;
            }
        };
        let result = match change_of(&envelope) {
            Ok(Some(change)) => {
                engagement
                    .entry(change.post_id.clone())
                    .or_default()
                    .push(change);
                Ok(())
            }
            Ok(None) => apply_other(store, media, directory, &envelope).await,
            Err(e) => Err(e),
        };
        if let Err(err) = result {
            if err.is_retryable() {
                return Err(err);
            }
            tracing::error!(position = %record.position, event_id = %envelope.id, error = %err, "poison event sent to the DLQ");
            poison
                .send(
                    &record.position,
                    &err.to_string(),
                    &serde_json::to_string(&envelope).unwrap_or_default(),
                )
                .await?;
        }
    }
    for (post_id, changes) in engagement {
        apply_post(store, &post_id, changes).await?;
    }
    Ok(())
}

async fn apply_other<M: MediaStore, D: Directory>(
    store: &PostsStore,
    media: &M,
    directory: &D,
    envelope: &Envelope,
) -> Result<(), ApiError> {
    let bad = |e: shutter_events::legacy::DecodeError| ApiError::invalid("data", e.to_string());
    match envelope.event_type.as_str() {
        "PostDeleted" => {
            let d: Deleted = envelope.data().map_err(bad)?;
            // Safe to repeat: deleting what is gone is a no-op.
            media
                .delete_prefix(&format!("post-media/{}/", d.post_id))
                .await?;
            Ok(media
                .delete_prefix(&format!("post-uploads/{}/{}/", d.author_id, d.post_id))
                .await?)
        }
        "UserDeleted" => {
            directory.apply(envelope).await?;
            let user: UserGone = envelope.data().map_err(bad)?;
            delete_posts_of(store, &user.user_id, envelope).await
        }
        _ => directory.apply(envelope).await,
    }
}

/// Deletes every post of a deleted account, each with its `PostDeleted`.
async fn delete_posts_of(
    store: &PostsStore,
    user_id: &str,
    cause: &Envelope,
) -> Result<(), ApiError> {
    loop {
        let (items, _) = store
            .index_page(&format!("AUTHOR#{user_id}"), 25, None)
            .await?;
        if items.is_empty() {
            return Ok(());
        }
        for item in items {
            let Some(AttributeValue::S(post_id)) = item.get("post_id") else {
                continue;
            };
            let Some(post) = store.get(post_id).await? else {
                // An index item without its post would be met on every pass: drop it.
                store
                    .delete_index_item(
                        &format!("AUTHOR#{user_id}"),
                        &crate::store::post_pk(post_id),
                    )
                    .await?;
                continue;
            };
            let data = serde_json::json!({"post_id": post.id, "author_id": post.author_id, "deleted_by": user_id});
            let event = Envelope::new(
                "PostDeleted",
                &post.id,
                Some(user_id),
                &cause.correlation_id,
                &data,
            );
            match store.delete_post(&post, &event).await {
                Ok(()) | Err(ApiError::Conflict { .. }) => {}
                Err(e) => return Err(e),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn like(user: &str, seq: u64) -> Change {
        Change {
            post_id: "p".into(),
            marker: format!("LIKE#{user}"),
            seq,
            counted: seq % 2 == 1,
            counter: Counter::Likes,
        }
    }

    #[test]
    fn duplicates_and_replays_move_a_counter_once() {
        let batch = latest_per_marker(vec![
            like("a", 1),
            like("a", 1),
            like("b", 1),
            like("c", 1),
            like("c", 2),
        ]);
        let (applied, deltas) = plan(&batch, &HashMap::new());
        assert_eq!(applied.len(), 3);
        // a and b like; c liked then unliked: +2.
        assert_eq!(deltas[&Counter::Likes], 2);
        // The same batch again, over what it stored: nothing moves.
        let stored = applied
            .iter()
            .map(|c| {
                (
                    c.marker.clone(),
                    Marker {
                        seq: c.seq,
                        counted: c.counted,
                    },
                )
            })
            .collect();
        let (again, _) = plan(&batch, &stored);
        assert!(again.is_empty());
    }

    #[test]
    fn an_older_change_never_undoes_a_newer_one() {
        let stored = HashMap::from([(
            "LIKE#a".to_owned(),
            Marker {
                seq: 2,
                counted: false,
            },
        )]);
        let (applied, _) = plan(&[like("a", 1)], &stored);
        assert!(applied.is_empty());
        let (applied, deltas) = plan(&[like("a", 3)], &stored);
        assert_eq!((applied.len(), deltas[&Counter::Likes]), (1, 1));
    }

    #[test]
    fn comments_count_once_and_uncount_once() {
        let added = Envelope::new(
            "CommentAdded",
            "p",
            None,
            "c",
            &serde_json::json!({"post_id": "p", "comment_id": "k", "author_id": "u"}),
        );
        let deleted = Envelope::new(
            "CommentDeleted",
            "p",
            None,
            "c",
            &serde_json::json!({"post_id": "p", "comment_id": "k", "author_id": "u"}),
        );
        let a = change_of(&added).unwrap().unwrap();
        let d = change_of(&deleted).unwrap().unwrap();
        let (_, deltas) = plan(
            &latest_per_marker(vec![a.clone(), a.clone()]),
            &HashMap::new(),
        );
        assert_eq!(deltas[&Counter::Comments], 1);
        // Deleted before its add was seen (or with it): never counted.
        let (_, deltas) = plan(&latest_per_marker(vec![d.clone(), a]), &HashMap::new());
        assert_eq!(deltas[&Counter::Comments], 0);
        let stored = HashMap::from([(
            "COMMENT#k".to_owned(),
            Marker {
                seq: 1,
                counted: true,
            },
        )]);
        assert_eq!(plan(&[d], &stored).1[&Counter::Comments], -1);
    }

    #[test]
    fn malformed_engagement_is_a_4xx_poison() {
        let bad = Envelope::new(
            "LikeAdded",
            "p",
            None,
            "c",
            &serde_json::json!({"post_id": "p"}),
        );
        assert!(!change_of(&bad).unwrap_err().is_retryable());
        let other = Envelope::new("PostCreated", "p", None, "c", &serde_json::json!({}));
        assert_eq!(change_of(&other).unwrap(), None);
    }
}
