//! MSK → Lambda: one consumer group per mapping reads the topics, gathers up to
//! `BatchSize` records within the batching window, invokes the function with the Kafka
//! event (records grouped by `topic-partition`, base64 keys and values, numeric
//! timestamps, written by hand as AWS writes it), and commits offsets only after a
//! successful invocation. A failing batch is retried; after `MaximumRetryAttempts` it
//! goes to the `OnFailure` destination and is committed.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use base64::Engine;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::message::{Headers, Message};
use rdkafka::{Offset, TopicPartitionList};
use serde_json::{Map, Value, json};

use super::Source;
use crate::Error;
use crate::runtime::InvokeError;

struct Record {
    topic: String,
    partition: i32,
    offset: i64,
    json: Value,
}

pub fn run(
    source: Source,
    bootstrap: String,
) -> Result<impl Future<Output = ()> + Send + 'static, Error> {
    let topics: Vec<String> = source.props["Topics"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t.as_str().map(str::to_owned))
        .collect();
    if topics.len() != 1 {
        // Lambda's MSK event source mapping reads exactly one topic; a template that
        // lists more would fail to deploy, so it fails here first.
        return Err(Error::Template(format!(
            "{}: an MSK event reads exactly one topic, this one lists {topics:?}; declare one event per topic",
            source.name()
        )));
    }
    let group = source.props["ConsumerGroupId"]
        .as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| format!("{}-{}", source.function.spec.name, source.event_name));
    let reset = if source.props["StartingPosition"] == "LATEST" {
        "latest"
    } else {
        "earliest"
    };
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("group.id", &group)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", reset)
        .create()
        .map_err(|e| Error::Kafka(format!("consumer for {}: {e}", source.name())))?;
    let refs: Vec<&str> = topics.iter().map(String::as_str).collect();
    consumer
        .subscribe(&refs)
        .map_err(|e| Error::Kafka(format!("subscribe {}: {e}", source.name())))?;
    let arn = source.props["Stream"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    Ok(async move {
        poll(&source, &consumer, &arn, &bootstrap).await;
        // Destroying a group consumer can block for seconds: never on the caller's path.
        std::thread::spawn(move || drop(consumer));
    })
}

async fn poll(source: &Source, consumer: &StreamConsumer, arn: &str, bootstrap: &str) {
    let batch_size = source.batch_size(100).max(1);
    let window = Duration::from_secs_f64(
        source.props["MaximumBatchingWindowInSeconds"]
            .as_f64()
            .unwrap_or(0.5),
    );
    loop {
        let first = tokio::select! {
            _ = source.stop.cancelled() => return,
            m = consumer.recv() => m,
        };
        let mut batch = Vec::new();
        match first {
            Ok(m) => batch.push(to_record(&m)),
            Err(e) => {
                tracing::warn!("{}: consume failed: {e}", source.name());
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
        }
        let deadline = tokio::time::Instant::now() + window;
        while batch.len() < batch_size {
            tokio::select! {
                _ = tokio::time::sleep_until(deadline) => break,
                _ = source.stop.cancelled() => return,
                m = consumer.recv() => match m {
                    Ok(m) => batch.push(to_record(&m)),
                    Err(e) => { tracing::warn!("{}: consume failed: {e}", source.name()); break; }
                },
            }
        }
        if !deliver(source, &batch, arn, bootstrap).await {
            return;
        }
        commit(source, consumer, &batch);
    }
}

fn to_record<M: Message>(m: &M) -> Record {
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let headers: Vec<Value> = m
        .headers()
        .map(|h| {
            h.iter()
                .map(|h| {
                    let mut one = Map::new();
                    one.insert(h.key.to_owned(), json!(h.value.unwrap_or_default()));
                    Value::Object(one)
                })
                .collect()
        })
        .unwrap_or_default();
    let (timestamp_type, timestamp) = match m.timestamp() {
        rdkafka::Timestamp::LogAppendTime(t) => ("LOG_APPEND_TIME", t),
        rdkafka::Timestamp::CreateTime(t) => ("CREATE_TIME", t),
        rdkafka::Timestamp::NotAvailable => ("CREATE_TIME", 0),
    };
    let mut json = json!({
        "topic": m.topic(), "partition": m.partition(), "offset": m.offset(),
        "timestamp": timestamp, "timestampType": timestamp_type,
        "value": b64(m.payload().unwrap_or_default()), "headers": headers,
    });
    if let Some(key) = m.key() {
        json["key"] = json!(b64(key));
    }
    Record {
        topic: m.topic().to_owned(),
        partition: m.partition(),
        offset: m.offset(),
        json,
    }
}

/// Invokes until the batch succeeds or goes to the destination; false when stopping.
async fn deliver(source: &Source, batch: &[Record], arn: &str, bootstrap: &str) -> bool {
    let mut grouped: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for r in batch
        .iter()
        .filter(|r| source.filters.accepts(&filter_view(&r.json)))
    {
        grouped
            .entry(format!("{}-{}", r.topic, r.partition))
            .or_default()
            .push(r.json.clone());
    }
    if grouped.is_empty() {
        return true;
    }
    let event = json!({"eventSource": "aws:kafka", "eventSourceArn": arn, "bootstrapServers": bootstrap, "records": grouped});
    let mut attempts = 0u32;
    loop {
        attempts += 1;
        match source.function.invoke(&event).await {
            Ok(_) => return true,
            Err(InvokeError::Stopped) => return false,
            Err(e) => tracing::warn!(
                "{}: batch of {} failed (attempt {attempts}): {e}",
                source.name(),
                batch.len()
            ),
        }
        if source.max_retries() >= 0 && i64::from(attempts) > source.max_retries() {
            let first = &batch[0];
            let info = json!({
                "batchSize": batch.len(), "topic": first.topic, "partition": first.partition,
                "firstOffset": first.offset, "lastOffset": batch[batch.len() - 1].offset,
                "bootstrapServers": bootstrap, "eventSourceArn": arn,
            });
            source
                .send_to_destination("RetryAttemptsExhausted", attempts, ("KafkaBatchInfo", info))
                .await;
            return true;
        }
        if !source.backoff(attempts).await {
            return false;
        }
    }
}

/// Filters see the value decoded, as JSON when it is JSON.
fn filter_view(record: &Value) -> Value {
    let mut view = record.clone();
    if let Some(bytes) = record["value"]
        .as_str()
        .and_then(|v| base64::engine::general_purpose::STANDARD.decode(v).ok())
        && let Ok(parsed) = serde_json::from_slice::<Value>(&bytes)
    {
        view["value"] = parsed;
    }
    view
}

fn commit(source: &Source, consumer: &StreamConsumer, batch: &[Record]) {
    let mut next: BTreeMap<(String, i32), i64> = BTreeMap::new();
    for r in batch {
        let e = next
            .entry((r.topic.clone(), r.partition))
            .or_insert(r.offset + 1);
        *e = (*e).max(r.offset + 1);
    }
    let mut list = TopicPartitionList::new();
    for ((topic, partition), offset) in next {
        if let Err(e) = list.add_partition_offset(&topic, partition, Offset::Offset(offset)) {
            tracing::warn!("{}: {e}", source.name());
        }
    }
    if let Err(e) = consumer.commit(&list, CommitMode::Sync) {
        tracing::warn!(
            "{}: commit failed (the batch may be delivered again): {e}",
            source.name()
        );
    }
}
