//! DynamoDB Streams → Lambda: each shard is read in order; a failed batch is retried from
//! its first failed record (`ReportBatchItemFailures`) or bisected on a function error,
//! and nothing after it is delivered until it succeeds or its retries run out.

use std::time::Duration;

use serde_json::{Value, json};

use super::{Source, failed_items};
use crate::runtime::InvokeError;

pub async fn run(source: Source) {
    let arn = source.props["Stream"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let described = source
        .moto
        .streams("DescribeStream", &json!({"StreamArn": arn}))
        .await;
    let shards: Vec<String> = match described {
        Ok(d) => d["StreamDescription"]["Shards"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s["ShardId"].as_str().map(str::to_owned))
            .collect(),
        Err(e) => {
            tracing::error!("{}: cannot read stream {arn}: {e}", source.name());
            return;
        }
    };
    let tasks: Vec<_> = shards
        .into_iter()
        .map(|shard| tokio::spawn(shard_loop(source.clone(), arn.clone(), shard)))
        .collect();
    futures::future::join_all(tasks).await;
}

/// Reads one shard in order. Each poll asks for a fresh iterator after the last sequence
/// number seen rather than keeping the one GetRecords returns: a sequence number is all
/// the state the poller needs, and it survives anything moto does to its shard objects
/// (see moto_server.py for the rollbacks that once orphaned iterators).
async fn shard_loop(source: Source, arn: String, shard: String) {
    let position = source.props["StartingPosition"]
        .as_str()
        .unwrap_or("LATEST")
        .to_owned();
    let batch_size = source.batch_size(100);
    let mut last_seq: Option<String> = None;
    let mut latest_iterator: Option<String> = None;
    while !source.stop.is_cancelled() {
        let page = next_page(
            &source,
            &arn,
            &shard,
            &position,
            last_seq.as_deref(),
            latest_iterator.take(),
        )
        .await;
        let page = match page {
            Ok(p) => p,
            Err(e) => {
                if source.stop.is_cancelled() {
                    return;
                }
                tracing::warn!(
                    "{}: reading the stream failed, retrying: {e}",
                    source.name()
                );
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
        };
        let all: Vec<Value> = page["Records"].as_array().cloned().unwrap_or_default();
        if let Some(last) = all.last() {
            last_seq = Some(sequence_number(last).to_owned());
        } else if last_seq.is_none() {
            // LATEST with nothing new yet: keep the position it gave.
            latest_iterator = page["NextShardIterator"].as_str().map(str::to_owned);
        }
        let records: Vec<Value> = all
            .into_iter()
            .map(|mut r| {
                r["eventSourceARN"] = json!(arn);
                r
            })
            .filter(|r| source.filters.accepts(r))
            .collect();
        for batch in records.chunks(batch_size) {
            deliver(&source, &arn, &shard, batch.to_vec()).await;
        }
        if page["Records"].as_array().is_none_or(|r| r.len() < 1000) {
            // Lambda polls each shard about four times a second.
            tokio::select! {
                _ = source.stop.cancelled() => return,
                _ = tokio::time::sleep(Duration::from_millis(250)) => {}
            }
        }
    }
}

async fn next_page(
    source: &Source,
    arn: &str,
    shard: &str,
    position: &str,
    after: Option<&str>,
    latest_iterator: Option<String>,
) -> Result<Value, crate::Error> {
    let iterator = match (after, latest_iterator) {
        (_, Some(it)) if after.is_none() => it,
        (Some(seq), _) => {
            let req = json!({"StreamArn": arn, "ShardId": shard, "ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "SequenceNumber": seq});
            source.moto.streams("GetShardIterator", &req).await?["ShardIterator"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        }
        (None, _) => {
            let req = json!({"StreamArn": arn, "ShardId": shard, "ShardIteratorType": position});
            source.moto.streams("GetShardIterator", &req).await?["ShardIterator"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        }
    };
    source
        .moto
        .streams(
            "GetRecords",
            &json!({"ShardIterator": iterator, "Limit": 1000}),
        )
        .await
}

fn sequence_number(record: &Value) -> &str {
    record["dynamodb"]["SequenceNumber"]
        .as_str()
        .unwrap_or_default()
}

async fn deliver(source: &Source, arn: &str, shard: &str, records: Vec<Value>) {
    let mut batch = records;
    let mut attempts = 0u32;
    loop {
        attempts += 1;
        let result = source.invoke(&json!({ "Records": batch })).await;
        let retry_from = match result {
            Err(InvokeError::Stopped) => return,
            Ok(response) if source.reports_item_failures() => match failed_items(&response) {
                None => return,
                Some(Ok(ids)) => {
                    let first = batch
                        .iter()
                        .position(|r| ids.iter().any(|id| id == sequence_number(r)));
                    // An id not in the batch fails the whole batch.
                    if ids
                        .iter()
                        .all(|id| batch.iter().any(|r| sequence_number(r) == id))
                    {
                        first.unwrap_or(0)
                    } else {
                        0
                    }
                }
                Some(Err(())) => 0,
            },
            Ok(_) => return,
            Err(e) => {
                tracing::warn!("{}: batch of {} failed: {e}", source.name(), batch.len());
                if super::flag(&source.props["BisectBatchOnFunctionError"]) && batch.len() > 1 {
                    let right = batch.split_off(batch.len() / 2);
                    Box::pin(deliver(source, arn, shard, batch)).await;
                    Box::pin(deliver(source, arn, shard, right)).await;
                    return;
                }
                0
            }
        };
        batch.drain(..retry_from);
        let retries = i64::from(attempts) - 1;
        if source.max_retries() >= 0 && retries >= source.max_retries() {
            let info = json!({
                "shardId": shard,
                "startSequenceNumber": batch.first().map(sequence_number),
                "endSequenceNumber": batch.last().map(sequence_number),
                "approximateArrivalOfFirstRecord": batch.first().map(|r| r["dynamodb"]["ApproximateCreationDateTime"].clone()),
                "approximateArrivalOfLastRecord": batch.last().map(|r| r["dynamodb"]["ApproximateCreationDateTime"].clone()),
                "batchSize": batch.len(),
                "streamArn": arn,
            });
            source
                .send_to_destination(
                    "RetryAttemptsExhausted",
                    attempts,
                    ("DDBStreamBatchInfo", info),
                )
                .await;
            return;
        }
        if !source.backoff(attempts).await {
            return;
        }
    }
}
