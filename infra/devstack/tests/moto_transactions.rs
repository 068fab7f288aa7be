//! The local DynamoDB keeps a cancelled transaction invisible, as DynamoDB does: no stream
//! reader sees its writes, and no write made meanwhile by another request is lost when it
//! rolls back. (moto applies a transaction item by item and restores a copy of the tables
//! when one fails; the devstack serialises its DynamoDB requests so that neither shows.)

use std::collections::HashSet;

use devstack::aws::MotoJson;
use devstack::services::start_moto;
use serde_json::{Value, json};

const ROUNDS: usize = 150;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cancelled_transactions_are_invisible_to_streams_and_to_other_writers() {
    let logs = tempfile::tempdir().expect("log dir");
    let moto_server = start_moto(logs.path()).await.expect("moto starts");
    let moto = MotoJson::new(&moto_server.url);
    let created = moto
        .create_streamed_table("Atomic")
        .await
        .expect("create table");
    let stream = created["TableDescription"]["LatestStreamArn"]
        .as_str()
        .expect("stream arn")
        .to_owned();
    put(&moto, "guard").await;
    put(&moto, "bystander").await;

    // Transactions that always fail on their last item, after writing the first one.
    let cancelled = {
        let moto = moto.clone();
        tokio::spawn(async move {
            for i in 0..ROUNDS {
                let answer = moto
                    .dynamodb(
                        "TransactWriteItems",
                        &json!({"TransactItems": [
                            {"Put": {"TableName": "Atomic", "Item": {"pk": {"S": format!("cancelled-{i}")}}}},
                            {"Update": {"TableName": "Atomic", "Key": {"pk": {"S": "bystander"}},
                                        "UpdateExpression": "SET touched = :t", "ExpressionAttributeValues": {":t": {"N": format!("{i}")}}}},
                            {"Put": {"TableName": "Atomic", "Item": {"pk": {"S": "guard"}},
                                     "ConditionExpression": "attribute_not_exists(pk)"}},
                        ]}),
                    )
                    .await;
                assert!(answer.is_err(), "the transaction must be cancelled");
            }
        })
    };
    // Writes by someone else, at the same time.
    let others = {
        let moto = moto.clone();
        tokio::spawn(async move {
            for i in 0..ROUNDS {
                put(&moto, &format!("kept-{i}")).await;
            }
        })
    };
    // A stream reader polling all along, as the devstack's poller does.
    let reader = {
        let moto = moto.clone();
        let stream = stream.clone();
        tokio::spawn(async move {
            let mut seen = Vec::new();
            for _ in 0..ROUNDS {
                seen.extend(stream_keys(&moto, &stream).await);
            }
            seen
        })
    };
    cancelled.await.expect("cancelled transactions");
    others.await.expect("other writes");
    let seen_while_writing = reader.await.expect("reader");

    let phantom: Vec<&String> = seen_while_writing
        .iter()
        .filter(|k| k.starts_with("cancelled-"))
        .collect();
    assert!(
        phantom.is_empty(),
        "a stream reader saw cancelled writes: {phantom:?}"
    );
    let stored: HashSet<String> = moto
        .dynamodb("Scan", &json!({"TableName": "Atomic"}))
        .await
        .expect("scan")["Items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|i| i["pk"]["S"].as_str().map(str::to_owned))
        .collect();
    let lost: Vec<String> = (0..ROUNDS)
        .map(|i| format!("kept-{i}"))
        .filter(|k| !stored.contains(k))
        .collect();
    assert!(lost.is_empty(), "writes lost to a rollback: {lost:?}");
    assert!(!stored.iter().any(|k| k.starts_with("cancelled-")));
    // An item a cancelled transaction updated is as it was.
    let bystander = moto
        .dynamodb(
            "GetItem",
            &json!({"TableName": "Atomic", "Key": {"pk": {"S": "bystander"}}}),
        )
        .await
        .expect("get");
    assert_eq!(bystander["Item"], json!({"pk": {"S": "bystander"}}));
    // The stream, read once everything is done, holds every kept write exactly once.
    let finally = stream_keys(&moto, &stream).await;
    let kept: Vec<&String> = finally.iter().filter(|k| k.starts_with("kept-")).collect();
    assert_eq!(kept.len(), ROUNDS, "stream: {finally:?}");
    // Every DynamoDB request is counted once, for the benchmarks.
    let counted = std::fs::read_to_string(logs.path().join("moto.err.log"))
        .expect("moto's log")
        .lines()
        .filter(|l| *l == "shutter-dynamodb-request TransactWriteItems")
        .count();
    assert_eq!(counted, ROUNDS);
    moto_server.stop().await;
}

async fn put(moto: &MotoJson, key: &str) {
    moto.dynamodb(
        "PutItem",
        &json!({"TableName": "Atomic", "Item": {"pk": {"S": key}}}),
    )
    .await
    .expect("put");
}

/// The keys of every record in the stream's shard, from its start.
async fn stream_keys(moto: &MotoJson, stream: &str) -> Vec<String> {
    let described = moto
        .streams("DescribeStream", &json!({"StreamArn": stream}))
        .await
        .expect("describe stream");
    let shard = described["StreamDescription"]["Shards"][0]["ShardId"]
        .as_str()
        .expect("shard")
        .to_owned();
    let iterator = moto
        .streams(
            "GetShardIterator",
            &json!({"StreamArn": stream, "ShardId": shard, "ShardIteratorType": "TRIM_HORIZON"}),
        )
        .await
        .expect("iterator")["ShardIterator"]
        .clone();
    let records = moto
        .streams(
            "GetRecords",
            &json!({"ShardIterator": iterator, "Limit": 1000}),
        )
        .await
        .expect("records");
    records["Records"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r: &Value| r["dynamodb"]["Keys"]["pk"]["S"].as_str().map(str::to_owned))
        .collect()
}
