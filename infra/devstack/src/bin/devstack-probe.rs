//! A Lambda function for the devstack's own tests (tests/fixtures/probe-template.yaml): it records every invocation in the
//! file named by `PROBE_LOG` and misbehaves on request, so the tests can watch the
//! gateway, the runtime and the event source mappings handle failures as Lambda does.
//!
//! - HTTP: `/echo` returns the event it received; `/sleep` outlives its timeout;
//!   `/crash` exits the process; `/hold` answers after 500 ms with its environment's name.
//! - SQS: a message whose body starts with `fail` is reported in `batchItemFailures`.
//! - DynamoDB Streams: a record whose `pk` starts with `FAIL` fails the whole batch.
//! - Kafka: a record whose value starts with `fail` fails the whole batch; one whose
//!   value starts with `retry` is reported in `batchItemFailures` (partition and offset).

use std::io::Write;

use base64::Engine;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::{Value, json};

fn record(kind: &str, ids: &[String]) {
    if let Ok(path) = std::env::var("PROBE_LOG")
        && let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
    {
        let _ = writeln!(f, "{}", json!({"source": kind, "ids": ids}));
    }
}

async fn handle(event: LambdaEvent<Value>) -> Result<Value, Error> {
    let payload = event.payload;
    if payload.get("routeKey").is_some() {
        let path = payload["rawPath"].as_str().unwrap_or_default();
        record("http", &[path.to_owned()]);
        return match path {
            "/sleep" => {
                tokio::time::sleep(std::time::Duration::from_secs(30)).await;
                Ok(json!({"statusCode": 200}))
            }
            "/crash" => std::process::exit(3),
            "/hold" => {
                // Busy long enough that concurrent calls need more environments.
                tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                let environment = std::env::var("AWS_LAMBDA_LOG_STREAM_NAME").unwrap_or_default();
                Ok(json!({"statusCode": 200, "body": environment}))
            }
            _ => Ok(
                json!({"statusCode": 200, "headers": {"content-type": "application/json"}, "body": payload.to_string()}),
            ),
        };
    }
    if payload["eventSource"] == "aws:kafka" {
        let mut values = Vec::new();
        let mut failures = Vec::new();
        for (partition, records) in payload["records"].as_object().into_iter().flatten() {
            for r in records.as_array().into_iter().flatten() {
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(r["value"].as_str().unwrap_or_default())?;
                let value = String::from_utf8_lossy(&bytes).into_owned();
                if value.starts_with("retry") {
                    failures.push(
                        json!({"itemIdentifier": {"partition": partition, "offset": r["offset"]}}),
                    );
                }
                values.push(value);
            }
        }
        record("kafka", &values);
        if values.iter().any(|v| v.starts_with("fail")) {
            return Err("a kafka record asked to fail".into());
        }
        return Ok(json!({ "batchItemFailures": failures }));
    }
    let records = payload["Records"].as_array().cloned().unwrap_or_default();
    if records
        .first()
        .is_some_and(|r| r["eventSource"] == "aws:sqs")
    {
        let bodies: Vec<String> = records
            .iter()
            .map(|r| r["body"].as_str().unwrap_or_default().to_owned())
            .collect();
        record("sqs", &bodies);
        let failures: Vec<Value> = records
            .iter()
            .filter(|r| r["body"].as_str().is_some_and(|b| b.starts_with("fail")))
            .map(|r| json!({"itemIdentifier": r["messageId"]}))
            .collect();
        return Ok(json!({ "batchItemFailures": failures }));
    }
    let keys: Vec<String> = records
        .iter()
        .map(|r| {
            r["dynamodb"]["Keys"]["pk"]["S"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    record("dynamodb", &keys);
    if keys.iter().any(|k| k.starts_with("FAIL")) {
        return Err("a stream record asked to fail".into());
    }
    Ok(json!({ "batchItemFailures": [] }))
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::run(service_fn(handle)).await
}
