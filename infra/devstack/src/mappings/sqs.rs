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
        let mut matching = matching;
        if source.delivery.reorder {
            // A standard queue promises no order.
            rand::seq::SliceRandom::shuffle(matching.as_mut_slice(), &mut rand::thread_rng());
        }
        let done: Vec<Value> = match source.invoke(&json!({ "Records": matching })).await {
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
    let body = m["Body"].as_str().map(s3_notification_as_aws_sends_it);
    json!({
        "messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": body,
        "attributes": attributes, "messageAttributes": message_attributes, "md5OfBody": m["MD5OfBody"],
        "eventSource": "aws:sqs", "eventSourceARN": arn, "awsRegion": REGION,
    })
}

/// moto's S3 notifications lack fields AWS always sends (`userIdentity`,
/// `requestParameters`, `responseElements`, the object's `sequencer`) and write
/// `eventTime` without its `Z`, so `aws_lambda_events`' `S3Event` would refuse them.
/// They are completed here, so functions parse exactly what S3 sends in AWS.
fn s3_notification_as_aws_sends_it(body: &str) -> String {
    let Ok(mut event) = serde_json::from_str::<Value>(body) else {
        return body.to_owned();
    };
    let Some(records) = event.get_mut("Records").and_then(Value::as_array_mut) else {
        return body.to_owned();
    };
    for r in records.iter_mut().filter(|r| r["eventSource"] == "aws:s3") {
        if let Some(t) = r["eventTime"]
            .as_str()
            .filter(|t| !t.ends_with('Z') && !t.contains('+'))
        {
            r["eventTime"] = json!(format!("{t}Z"));
        }
        for (k, v) in [
            ("userIdentity", json!({"principalId": "AWS:LOCAL"})),
            ("requestParameters", json!({"sourceIPAddress": "127.0.0.1"})),
            (
                "responseElements",
                json!({"x-amz-request-id": "local", "x-amz-id-2": "local"}),
            ),
        ] {
            if r.get(k).is_none() {
                r[k] = v;
            }
        }
        if r["s3"]["object"].is_object() && r["s3"]["object"].get("sequencer").is_none() {
            r["s3"]["object"]["sequencer"] = json!(format!(
                "{:016X}",
                time::OffsetDateTime::now_utc().unix_timestamp_nanos()
            ));
        }
    }
    event.to_string()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moto_s3_notifications_become_aws_shaped() {
        let moto = r#"{"Records":[{"eventVersion":"2.1","eventSource":"aws:s3","awsRegion":"us-east-1","eventTime":"2026-11-25T09:29:57.123456","eventName":"ObjectCreated:Post","s3":{"s3SchemaVersion":"1.0","configurationId":"x","bucket":{"name":"b","arn":"arn:aws:s3:::b"},"object":{"key":"avatars/u/1.png","size":67,"eTag":"e"}}}]}"#;
        let fixed: Value = serde_json::from_str(&s3_notification_as_aws_sends_it(moto)).unwrap();
        let r = &fixed["Records"][0];
        assert_eq!(r["eventTime"], "2026-11-25T09:29:57.123456Z");
        assert!(r["userIdentity"]["principalId"].is_string() && r["requestParameters"].is_object());
        assert_eq!(r["s3"]["object"]["key"], "avatars/u/1.png");
        assert_eq!(s3_notification_as_aws_sends_it("plain text"), "plain text");
    }
}
