//! The devstack against its own probe stack (tests/fixtures/probe-template.yaml and the
//! probe-function example): the gateway's routing and events, the runtime's timeouts and
//! crashes, and Lambda's batch, retry, partial-failure, filtering and on-failure
//! behaviour for SQS, DynamoDB Streams and Kafka, all on the real moto and tansu.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use devstack::aws::MotoJson;
use devstack::{Delivery, Devstack, DevstackConfig, InvokeError};
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

/// The ids of each invocation by `source`, in order.
fn batches(log: &Path, source: &str) -> Vec<Vec<String>> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["source"] == source)
        .map(|v| {
            v["ids"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|id| id.as_str().unwrap_or_default().to_owned())
                .collect()
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
        self.record_where(&format!("a record with {batch_info}"), |b| {
            b.get(batch_info).is_some()
        })
        .await
    }

    /// Waits for an invocation record that `wanted` accepts.
    async fn record_where(&mut self, what: &str, wanted: impl Fn(&Value) -> bool) -> Value {
        eventually(
            &format!("{what} at the OnFailure destination"),
            async || {
                for m in receive_all(self.moto, &self.url).await {
                    self.seen.extend(
                        serde_json::from_str::<Value>(m["Body"].as_str().unwrap_or_default()).ok(),
                    );
                }
                self.seen.iter().find(|b| wanted(b)).cloned()
            },
        )
        .await
    }
}

/// The probe stack, delivering as `delivery` says; the probe's log is in the temporary
/// directory.
async fn probe_stack(delivery: Delivery) -> (Devstack, tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let log = dir.path().join("probe.log");
    let mut config = DevstackConfig::for_tests();
    config.template =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/probe-template.yaml");
    config.bin_dir = probe_dir();
    config.delivery = Some(delivery);
    config
        .parameters
        .insert("ProbeLogPath".into(), log.display().to_string());
    let stack = Devstack::start(config)
        .await
        .expect("the probe stack starts");
    (stack, dir, log)
}

/// Sends `value` to a partition of `topic`; its offset.
async fn produce(
    producer: &FutureProducer,
    topic: &str,
    partition: i32,
    value: &str,
    timestamp: Option<i64>,
) -> i64 {
    let mut record = FutureRecord::to(topic)
        .key("k")
        .payload(value)
        .partition(partition);
    if let Some(t) = timestamp {
        record = record.timestamp(t);
    }
    producer
        .send(record, Duration::from_secs(10))
        .await
        .expect("produce")
        .offset
}

fn producer(stack: &Devstack) -> FutureProducer {
    rdkafka::ClientConfig::new()
        .set("bootstrap.servers", stack.kafka_bootstrap())
        .create()
        .expect("a Kafka producer")
}

/// The Kafka invocation record for `partition` of `probe.partial` given up for `condition`.
fn given_up(record: &Value, condition: &str, partition: i32) -> bool {
    record["requestContext"]["condition"] == condition
        && record["KafkaBatchInfo"]["recordsInfo"]
            .get(format!("probe.partial-{partition}"))
            .is_some()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_probe_stack_behaves_as_lambda() {
    let (stack, _dir, log) = probe_stack(Delivery::default()).await;
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
            let info = &kafka_failure["KafkaBatchInfo"];
            assert_eq!(info["batchSize"], 1, "{info}");
            let partitions: Vec<&String> =
                info["recordsInfo"].as_object().unwrap().keys().collect();
            assert!(
                partitions.len() == 1 && partitions[0].starts_with("probe.events-"),
                "{info}"
            );
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_mappings_handle_errors_as_lambda_does() {
    let (stack, _dir, log) = probe_stack(Delivery::default()).await;
    let moto = MotoJson::new(stack.moto_url());
    let mut destination = Destination {
        moto: &moto,
        url: stack.queue_url("ProbeFailures"),
        seen: Vec::new(),
    };
    let producer = producer(&stack);

    // A record reported failed is retried from its offset, its partition alone, until
    // MaximumRetryAttempts (a parameter: 2); the records before it and the other
    // partitions' are done at once.
    produce(&producer, "probe.partial", 0, "ok-a", None).await;
    let retried = produce(&producer, "probe.partial", 0, "retry-b", None).await;
    produce(&producer, "probe.partial", 1, "ok-d", None).await;
    let exhausted = destination
        .record_where("retry-b given up", |r| {
            given_up(r, "RetryAttemptsExhausted", 0)
        })
        .await;
    let info = &exhausted["KafkaBatchInfo"];
    assert_eq!(info["batchSize"], 1, "{info}");
    assert_eq!(
        info["recordsInfo"]["probe.partial-0"]["firstRecordOffset"],
        retried.to_string()
    );
    assert_eq!(
        count(&log, "kafka", "retry-b"),
        3,
        "one attempt, two retries"
    );
    assert_eq!(count(&log, "kafka", "ok-a"), 1, "done before the failure");
    assert_eq!(count(&log, "kafka", "ok-d"), 1, "another partition: done");
    // The partition moves on past what was given up.
    produce(&producer, "probe.partial", 0, "ok-c", None).await;
    eventually("ok-c delivered", async || {
        (count(&log, "kafka", "ok-c") == 1).then_some(())
    })
    .await;

    // A function error bisects the batch until the failing record is alone; only it is
    // given up.
    produce(&producer, "probe.partial", 2, "ok-e", None).await;
    let failing = produce(&producer, "probe.partial", 2, "fail-f", None).await;
    produce(&producer, "probe.partial", 2, "ok-g", None).await;
    let bisected = destination
        .record_where("fail-f given up", |r| {
            given_up(r, "RetryAttemptsExhausted", 2)
        })
        .await;
    let info = &bisected["KafkaBatchInfo"];
    assert_eq!(info["batchSize"], 1, "{info}");
    assert_eq!(
        info["recordsInfo"]["probe.partial-2"]["firstRecordOffset"],
        failing.to_string()
    );
    let kafka = batches(&log, "kafka");
    assert!(
        kafka.contains(&vec![
            "ok-e".to_owned(),
            "fail-f".to_owned(),
            "ok-g".to_owned()
        ]),
        "the three came in one batch: {kafka:?}"
    );
    assert!(kafka.contains(&vec!["fail-f".to_owned()]), "{kafka:?}");
    for ok in ["ok-e", "ok-g"] {
        assert!(
            kafka
                .iter()
                .any(|b| b.contains(&ok.to_owned()) && !b.contains(&"fail-f".to_owned())),
            "{ok} delivered apart from fail-f: {kafka:?}"
        );
    }

    // A record older than MaximumRecordAgeInSeconds is never delivered: it goes to the
    // destination.
    let an_hour_ago = time::OffsetDateTime::now_utc().unix_timestamp() * 1000 - 3_600_000;
    let old = produce(&producer, "probe.partial", 1, "old-h", Some(an_hour_ago)).await;
    let aged = destination
        .record_where("old-h given up", |r| given_up(r, "RecordAgeExceeded", 1))
        .await;
    assert_eq!(
        aged["KafkaBatchInfo"]["recordsInfo"]["probe.partial-1"]["firstRecordOffset"],
        old.to_string()
    );
    assert_eq!(count(&log, "kafka", "old-h"), 0);
    std::thread::spawn(move || drop(producer));
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redelivery_switches_deliver_every_batch_twice_and_partitions_apart() {
    let (stack, _dir, log) = probe_stack(Delivery {
        twice: true,
        reorder: true,
    })
    .await;
    let moto = MotoJson::new(stack.moto_url());
    let producer = producer(&stack);
    for (partition, value) in [(0, "k-1"), (1, "k-2"), (2, "k-3"), (0, "k-4")] {
        produce(&producer, "probe.partial", partition, value, None).await;
    }
    moto.sqs(
        "SendMessage",
        &json!({"QueueUrl": stack.queue_url("ProbeQueue"), "MessageBody": "s-1"}),
    )
    .await
    .unwrap();
    moto.dynamodb(
        "PutItem",
        &json!({"TableName": stack.table_name("ProbeTable"), "Item": {"pk": {"S": "T#1"}}}),
    )
    .await
    .unwrap();
    eventually("every record delivered twice", async || {
        let all = [
            ("kafka", "k-1"),
            ("kafka", "k-2"),
            ("kafka", "k-3"),
            ("kafka", "k-4"),
            ("sqs", "s-1"),
            ("dynamodb", "T#1"),
        ];
        all.iter()
            .all(|(source, id)| count(&log, source, id) >= 2)
            .then_some(())
    })
    .await;
    // Each Kafka invocation holds one partition, in order, and comes twice in a row.
    let kafka = batches(&log, "kafka");
    for pair in kafka.chunks(2) {
        assert_eq!(pair.len(), 2, "{kafka:?}");
        assert_eq!(pair[0], pair[1], "{kafka:?}");
    }
    for batch in &kafka {
        let partitions: Vec<char> = batch
            .iter()
            .map(|id| match id.as_str() {
                "k-1" | "k-4" => '0',
                "k-2" => '1',
                _ => '2',
            })
            .collect();
        assert!(partitions.windows(2).all(|w| w[0] == w[1]), "{kafka:?}");
        let k1 = batch.iter().position(|id| id == "k-1");
        let k4 = batch.iter().position(|id| id == "k-4");
        if let (Some(a), Some(b)) = (k1, k4) {
            assert!(a < b, "partition order kept: {kafka:?}");
        }
    }
    for (source, id) in [("kafka", "k-1"), ("sqs", "s-1"), ("dynamodb", "T#1")] {
        assert_eq!(count(&log, source, id), 2, "{source} {id}");
    }
    std::thread::spawn(move || drop(producer));
    stack.stop().await;
}
