//! The devstack against its own probe stack (tests/fixtures/probe-template.yaml and the
//! probe-function example): the gateway's routing and events, the runtime's timeouts and
//! crashes, and Lambda's batch, retry, partial-failure, filtering and on-failure
//! behaviour for SQS, DynamoDB Streams and Kafka, all on the real moto and tansu.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use devstack::aws::MotoJson;
use devstack::{Devstack, DevstackConfig, InvokeError};
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(60);

async fn eventually<T, F: AsyncFnMut() -> Option<T>>(what: &str, mut check: F) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(start.elapsed() < WAIT, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Where cargo built the probe function for this test.
fn probe_dir() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_devstack-probe"))
        .parent()
        .expect("bin dir")
        .to_path_buf()
}

/// (source, id) of every invocation the probe recorded.
fn invocations(log: &Path) -> Vec<(String, String)> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .flat_map(|v| {
            let source = v["source"].as_str().unwrap_or_default().to_owned();
            v["ids"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .map(move |id| (source.clone(), id.as_str().unwrap_or_default().to_owned()))
        })
        .collect()
}

fn count(log: &Path, source: &str, id: &str) -> usize {
    invocations(log)
        .iter()
        .filter(|(s, i)| s == source && i == id)
        .count()
}

async fn receive_all(moto: &MotoJson, url: &str) -> Vec<Value> {
    let got = moto
        .sqs(
            "ReceiveMessage",
            &json!({"QueueUrl": url, "MaxNumberOfMessages": 10}),
        )
        .await
        .expect("receive");
    got["Messages"].as_array().cloned().unwrap_or_default()
}

/// The OnFailure destination queue: every invocation record read from it so far.
struct Destination<'a> {
    moto: &'a MotoJson,
    url: String,
    seen: Vec<Value>,
}

impl Destination<'_> {
    /// Waits for an invocation record carrying `batch_info` (e.g. `KafkaBatchInfo`).
    async fn record_with(&mut self, batch_info: &str) -> Value {
        eventually(
            &format!("a record with {batch_info} at the OnFailure destination"),
            async || {
                for m in receive_all(self.moto, &self.url).await {
                    self.seen.extend(
                        serde_json::from_str::<Value>(m["Body"].as_str().unwrap_or_default()).ok(),
                    );
                }
                self.seen
                    .iter()
                    .find(|b| b.get(batch_info).is_some())
                    .cloned()
            },
        )
        .await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_probe_stack_behaves_as_lambda() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("probe.log");
    let mut config = DevstackConfig::for_tests();
    config.template =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/probe-template.yaml");
    config.bin_dir = probe_dir();
    config
        .parameters
        .insert("ProbeLogPath".into(), log.display().to_string());
    let stack = Devstack::start(config)
        .await
        .expect("the probe stack starts ");
    let moto = MotoJson::new(stack.moto_url());
    let http = reqwest::Client::new();
    let base = stack.base_url().to_owned();

    // Gateway: the most specific route wins, parameters and query strings arrive decoded.
    let echo: Value = http
        .get(format!("{base}/echo/a%20b?x=1&x=2&y=%C3%A9"))
        .header("cookie", "c1=v1; c2=v2")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(echo["routeKey"], "GET /echo/{name}");
    assert_eq!(echo["pathParameters"]["name"], "a b");
    assert_eq!(echo["queryStringParameters"], json!({"x": "1,2", "y": "é"}));
    assert_eq!(echo["cookies"], json!(["c1=v1", "c2=v2"]));
    assert_eq!(echo["requestContext"]["http"]["method"], "GET");
    let any: Value = http
        .post(format!("{base}/any/deep/path"))
        .body("x")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (
            any["routeKey"].as_str(),
            any["pathParameters"]["proxy"].as_str()
        ),
        (Some("ANY /{proxy+}"), Some("any/deep/path"))
    );
    assert_eq!(
        any["isBase64Encoded"], true,
        "a body without a text content type arrives base64-encoded"
    );

    // Runtime: a function past its timeout is cut off (503) and its environment replaced;
    // one that crashes gives 500; the next request is served by a fresh environment.
    let slow = http.get(format!("{base}/sleep")).send().await.unwrap();
    assert_eq!(slow.status(), 503);
    let crashed = http.get(format!("{base}/crash")).send().await.unwrap();
    assert_eq!(crashed.status(), 500);
    assert_eq!(
        http.get(format!("{base}/echo/again"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        stack.invoke("NoSuchFunction", json!({})).await,
        Err(InvokeError::UnknownFunction("NoSuchFunction".into()))
    );

    // Concurrent calls to a busy function run in more than one environment.
    let holds = (0..4).map(|_| {
        let (http, base) = (http.clone(), base.clone());
        async move {
            http.get(format!("{base}/hold"))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
        }
    });
    let mut environments = futures::future::join_all(holds).await;
    environments.sort();
    environments.dedup();
    assert!(
        environments.len() > 1,
        "one environment served 4 concurrent calls: {environments:?}"
    );

    // SQS: only the failed message is retried; after maxReceiveCount it is in the DLQ.
    let queue = stack.queue_url("ProbeQueue");
    for body in ["ok-1", "fail-1"] {
        moto.sqs(
            "SendMessage",
            &json!({"QueueUrl": queue, "MessageBody": body}),
        )
        .await
        .unwrap();
    }
    let dlq = stack.queue_url("ProbeQueueDlq");
    let dead = eventually("fail-1 in the dead-letter queue", async || {
        receive_all(&moto, &dlq)
            .await
            .into_iter()
            .find(|m| m["Body"] == "fail-1")
    })
    .await;
    assert_eq!(dead["Body"], "fail-1");
    assert_eq!(
        count(&log, "sqs", "ok-1"),
        1,
        "a handled message is deleted, never redelivered"
    );
    assert!(
        count(&log, "sqs", "fail-1") >= 2,
        "a failed message is retried"
    );

    // DynamoDB Streams: filtered records never arrive; a failing record is retried
    // MaximumRetryAttempts times, goes to the OnFailure destination, and the shard moves on.
    let table = stack.table_name("ProbeTable");
    let put = async |pk: &str| {
        moto.dynamodb(
            "PutItem",
            &json!({"TableName": table, "Item": {"pk": {"S": pk}}}),
        )
        .await
        .unwrap();
    };
    put("SKIP#1").await;
    put("OK#1").await;
    eventually("OK#1 delivered", async || {
        (count(&log, "dynamodb", "OK#1") == 1).then_some(())
    })
    .await;
    put("FAIL#1").await;
    let failures = stack.queue_url("ProbeFailures");
    let mut destination = Destination {
        moto: &moto,
        url: failures,
        seen: Vec::new(),
    };
    let stream_failure = destination.record_with("DDBStreamBatchInfo").await;
    assert_eq!(
        stream_failure["requestContext"]["condition"],
        "RetryAttemptsExhausted"
    );
    assert_eq!(stream_failure["DDBStreamBatchInfo"]["batchSize"], 1);
    assert_eq!(
        count(&log, "dynamodb", "FAIL#1"),
        2,
        "one attempt and one retry"
    );
    put("OK#2").await;
    eventually("OK#2 delivered after the failure", async || {
        (count(&log, "dynamodb", "OK#2") == 1).then_some(())
    })
    .await;
    assert_eq!(
        count(&log, "dynamodb", "SKIP#1"),
        0,
        "FilterCriteria drops it"
    );

    // Kafka: the same for an MSK mapping; offsets move past the batch it gave up on.
    let producer: FutureProducer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", stack.kafka_bootstrap())
        .create()
        .unwrap();
    for value in ["fail-k", "ok-k"] {
        producer
            .send(
                FutureRecord::to("probe.events").key("k").payload(value),
                Duration::from_secs(10),
            )
            .await
            .expect("produce");
        if value == "fail-k" {
            let kafka_failure = destination.record_with("KafkaBatchInfo").await;
            assert_eq!(kafka_failure["KafkaBatchInfo"]["topic"], "probe.events");
        }
    }
    eventually("ok-k delivered", async || {
        (count(&log, "kafka", "ok-k") == 1).then_some(())
    })
    .await;
    assert_eq!(
        count(&log, "kafka", "fail-k"),
        2,
        "one attempt and one retry"
    );
    std::thread::spawn(move || drop(producer));
    stack.stop().await;
}
