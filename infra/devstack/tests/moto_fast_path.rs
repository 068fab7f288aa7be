//! The devstack's moto serves DynamoDB and Streams requests without moto's Flask request
//! cycle (`dynamodb_first` in `src/moto_server.py`, for speed). Its answers stay moto's:
//! the same bodies, the same errors with their types, and every other service as before;
//! only the access-log line of a DynamoDB request that succeeded is left out.

use devstack::aws::MotoJson;
use devstack::services::start_moto;
use serde_json::json;

#[tokio::test]
async fn dynamodb_requests_answer_as_moto_does_and_other_services_are_untouched() {
    let logs = tempfile::tempdir().expect("log dir");
    let moto_server = start_moto(logs.path()).await.expect("moto starts");
    let moto = MotoJson::new(&moto_server.url);
    moto.create_streamed_table("Fast")
        .await
        .expect("create table");
    let item = json!({"pk": {"S": "a"}, "n": {"N": "1"}});
    moto.dynamodb("PutItem", &json!({"TableName": "Fast", "Item": item}))
        .await
        .expect("put");
    let got = moto
        .dynamodb(
            "GetItem",
            &json!({"TableName": "Fast", "Key": {"pk": {"S": "a"}}}),
        )
        .await
        .expect("get");
    assert_eq!(got["Item"], item);

    // Errors keep their status and type.
    let conditional = moto
        .dynamodb(
            "PutItem",
            &json!({"TableName": "Fast", "Item": item, "ConditionExpression": "attribute_not_exists(pk)"}),
        )
        .await
        .expect_err("the item exists");
    let text = conditional.to_string();
    assert!(text.contains("(400 Bad Request)"), "{text}");
    assert!(text.contains("ConditionalCheckFailedException"), "{text}");
    let missing = moto
        .dynamodb(
            "GetItem",
            &json!({"TableName": "Nowhere", "Key": {"pk": {"S": "a"}}}),
        )
        .await
        .expect_err("no such table")
        .to_string();
    assert!(missing.contains("ResourceNotFoundException"), "{missing}");

    // Streams go the same way.
    let streams = moto
        .streams("ListStreams", &json!({"TableName": "Fast"}))
        .await
        .expect("list streams");
    assert_eq!(
        streams["Streams"].as_array().map(Vec::len),
        Some(1),
        "{streams}"
    );

    // Another service: moto's usual path.
    let queue = moto
        .sqs("CreateQueue", &json!({"QueueName": "still-moto"}))
        .await
        .expect("create queue");
    assert!(
        queue["QueueUrl"]
            .as_str()
            .is_some_and(|u| u.ends_with("/still-moto")),
        "{queue}"
    );

    // The access log: the failed DynamoDB requests and the SQS one, no successful DynamoDB
    // one (each is counted by operation instead).
    let log = std::fs::read_to_string(logs.path().join("moto.err.log")).expect("moto's log");
    let access = |status: &str| {
        log.lines()
            .filter(|l| l.contains(&format!("\"POST / HTTP/1.1\" {status}")))
            .count()
    };
    assert_eq!(access("400"), 2, "{log}");
    assert_eq!(access("200"), 1, "only CreateQueue: {log}");
    let counted = log
        .lines()
        .filter(|l| l.starts_with("shutter-dynamodb-request "))
        .count();
    assert_eq!(counted, 5, "{log}");
    moto_server.stop().await;
}
