//! SQS → Lambda: long-polls the queue, deletes what the function handled, and leaves
//! failed messages to reappear after the visibility timeout, where the queue's redrive
//! policy moves them to its dead-letter queue after `maxReceiveCount` receives.

use std::time::Duration;

use serde_json::{Map, Value, json};

use super::{Source, failed_items};
use crate::runtime::InvokeError;
use crate::template::REGION;

pub async fn run(source: Source, arn: String, url: String) {
    let max = source.batch_size(10).clamp(1, 10);
    while !source.stop.is_cancelled() {
        let request = json!({
            "QueueUrl": url, "MaxNumberOfMessages": max, "WaitTimeSeconds": 1,
            "AttributeNames": ["All"], "MessageSystemAttributeNames": ["All"], "MessageAttributeNames": ["All"],
        });
        let received = tokio::select! {
            _ = source.stop.cancelled() => return,
            r = source.moto.sqs("ReceiveMessage", &request) => r,
        };
        let messages = match received {
            Ok(r) => r["Messages"].as_array().cloned().unwrap_or_default(),
            Err(e) => {
                tracing::warn!("{}: ReceiveMessage failed: {e}", source.name());
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
        };
        if messages.is_empty() {
            continue;
        }
        let records: Vec<Value> = messages.iter().map(|m| record(m, &arn)).collect();
        let (matching, filtered_out): (Vec<Value>, Vec<Value>) = records
            .into_iter()
            .partition(|r| source.filters.accepts(&filter_view(r)));
        // Lambda deletes messages that match no filter.
        delete(&source, &url, &filtered_out).await;
        if matching.is_empty() {
            continue;
        }
        let done: Vec<Value> = match source
            .function
            .invoke(&json!({ "Records": matching }))
            .await
        {
            Err(InvokeError::Stopped) => return,
            Err(e) => {
                tracing::warn!("{}: batch of {} failed: {e}", source.name(), matching.len());
                Vec::new()
            }
            Ok(response) if source.reports_item_failures() => match failed_items(&response) {
                None => matching,
                Some(Ok(ids))
                    if ids
                        .iter()
                        .all(|id| matching.iter().any(|r| r["messageId"] == id.as_str())) =>
                {
                    matching
                        .into_iter()
                        .filter(|r| !ids.iter().any(|id| r["messageId"] == id.as_str()))
                        .collect()
                }
                Some(_) => Vec::new(),
            },
            Ok(_) => matching,
        };
        delete(&source, &url, &done).await;
    }
}

/// A message as Lambda's SQS event record.
fn record(m: &Value, arn: &str) -> Value {
    let attributes: Map<String, Value> = m["Attributes"].as_object().cloned().unwrap_or_default();
    let message_attributes: Map<String, Value> = m["MessageAttributes"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| {
            (
                k.clone(),
                json!({
                    "stringValue": v["StringValue"], "binaryValue": v["BinaryValue"],
                    "stringListValues": [], "binaryListValues": [], "dataType": v["DataType"],
                }),
            )
        })
        .collect();
    json!({
        "messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"],
        "attributes": attributes, "messageAttributes": message_attributes, "md5OfBody": m["MD5OfBody"],
        "eventSource": "aws:sqs", "eventSourceARN": arn, "awsRegion": REGION,
    })
}

/// Filters see the body as JSON when it is JSON.
fn filter_view(record: &Value) -> Value {
    let mut view = record.clone();
    if let Some(parsed) = record["body"]
        .as_str()
        .and_then(|b| serde_json::from_str::<Value>(b).ok())
    {
        view["body"] = parsed;
    }
    view
}

async fn delete(source: &Source, url: &str, records: &[Value]) {
    for chunk in records.chunks(10) {
        if chunk.is_empty() {
            continue;
        }
        let entries: Vec<Value> = chunk
            .iter()
            .enumerate()
            .map(|(i, r)| json!({"Id": i.to_string(), "ReceiptHandle": r["receiptHandle"]}))
            .collect();
        if let Err(e) = source
            .moto
            .sqs(
                "DeleteMessageBatch",
                &json!({"QueueUrl": url, "Entries": entries}),
            )
            .await
        {
            tracing::warn!("{}: DeleteMessageBatch failed: {e}", source.name());
        }
    }
}
