//! No event lost, none applied twice: an outbox item stays pending until it is published
//! (shutter_events::outbox), the sweeper publishes what the stream path left behind, and
//! `dlq-replay` sends again what reached EventsDlq. Faults are injected for real: the
//! devstack's broker is frozen (SIGSTOP on tansu) for longer than the stream mappings
//! retry, and the publisher's process is killed in the middle of a batch.
//!
//! The fault stories start devstacks of their own, with the sweep shortened through the
//! template's parameters (`OutboxSweepRate` in seconds, which only the devstack takes, and
//! `OutboxSweepGraceSeconds`), one at a time. They run the `dlq-replay` binary, so build
//! the binaries first: `cargo build --workspace --bins`.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test, with its location

use std::collections::BTreeSet;
use std::io::{Read, Seek, SeekFrom};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use shutter_core::UserId;
use shutter_e2e::{PNG, Stopped, TestApp, User, eventually, signal};
use shutter_events::{Envelope, Event, UserRegistered};

const WAIT: Duration = Duration::from_secs(300);

/// The stories that start devstacks take turns: two at once would share two cores.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const FANS: usize = 30;

/// A devstack whose sweeper runs every 3 seconds and takes what has been pending for 4,
/// and whose outbox stream mappings retry `stream_retries` times.
fn config(stream_retries: u32, grace_seconds: u32) -> devstack::DevstackConfig {
    let mut config = devstack::DevstackConfig::for_tests();
    for (name, value) in [
        ("LikesDirectoryCacheMillis", "0".to_owned()),
        ("OutboxSweepRate", "rate(3 seconds)".to_owned()),
        ("OutboxSweepGraceSeconds", grace_seconds.to_string()),
        ("OutboxStreamRetries", stream_retries.to_string()),
    ] {
        config.parameters.insert(name.to_owned(), value);
    }
    config
}

/// The execution environments of `outbox-publisher` that this devstack runs: this test
/// process's children running that binary, pointed at this devstack's broker.
fn publisher_pids(app: &TestApp) -> Vec<u32> {
    let me = std::process::id();
    let broker = format!("KAFKA_BOOTSTRAP_SERVERS={}", app.stack.kafka_bootstrap());
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let dir = entry.path();
        let stat = std::fs::read_to_string(dir.join("stat")).unwrap_or_default();
        // "pid (comm) state ppid ...": the fields after the command's closing parenthesis.
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok());
        if ppid != Some(me) {
            continue;
        }
        let cmdline = std::fs::read(dir.join("cmdline")).unwrap_or_default();
        let program = cmdline.split(|b| *b == 0).next().unwrap_or_default();
        if !program.ends_with(b"/outbox-publisher") {
            continue;
        }
        let environ = std::fs::read(dir.join("environ")).unwrap_or_default();
        if environ
            .split(|b| *b == 0)
            .any(|var| var == broker.as_bytes())
        {
            pids.push(pid);
        }
    }
    pids
}

/// The publisher's log, read as it grows: the event ids it says it published.
struct PublisherLog {
    path: std::path::PathBuf,
    offset: u64,
    rest: String,
    /// (event type, event id) of every "event published" line read so far.
    published: Vec<(String, String)>,
}

impl PublisherLog {
    /// From the log's current end: what is published from now on.
    fn from_now(app: &TestApp) -> Self {
        let path = app
            .stack
            .log_dir()
            .join("functions/OutboxPublisherFunction.log");
        let offset = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        Self {
            path,
            offset,
            rest: String::new(),
            published: Vec::new(),
        }
    }

    /// Reads what was appended; the ids of `event_type` published so far, one per publish.
    fn published(&mut self, event_type: &str) -> Vec<String> {
        if let Ok(mut file) = std::fs::File::open(&self.path) {
            let _ = file.seek(SeekFrom::Start(self.offset));
            let mut text = String::new();
            if let Ok(n) = file.read_to_string(&mut text) {
                self.offset += n as u64;
                self.rest.push_str(&text);
            }
        }
        while let Some(end) = self.rest.find('\n') {
            let line: String = self.rest.drain(..=end).collect();
            if let Ok(json) = serde_json::from_str::<Value>(&line) {
                let fields = &json["fields"];
                if fields["message"] == "event published" {
                    self.published.push((
                        fields["event_type"].as_str().unwrap_or_default().to_owned(),
                        fields["event_id"].as_str().unwrap_or_default().to_owned(),
                    ));
                }
            }
        }
        self.published
            .iter()
            .filter(|(t, _)| t == event_type)
            .map(|(_, id)| id.clone())
            .collect()
    }

    /// The ids of every event published so far, one per publish.
    fn every(&mut self) -> Vec<String> {
        self.published("");
        self.published.iter().map(|(_, id)| id.clone()).collect()
    }

    /// How many different events of `event_type` were published so far (a batch delivered
    /// twice, or sent again, publishes some more than once).
    fn distinct(&mut self, event_type: &str) -> usize {
        self.published(event_type)
            .into_iter()
            .collect::<BTreeSet<_>>()
            .len()
    }
}

/// The events the sweeper says it published: (event type, event id).
fn swept(app: &TestApp) -> Vec<(String, String)> {
    let log = app
        .stack
        .log_dir()
        .join("functions/OutboxSweeperFunction.log");
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|json| json["fields"]["message"] == "pending event published")
        .map(|json| {
            let field = |name: &str| json["fields"][name].as_str().unwrap_or_default().to_owned();
            (field("event_type"), field("event_id"))
        })
        .collect()
}

/// The event ids pending in a table's `OutboxPending` index, read through moto.
async fn pending(app: &TestApp, table: &str) -> Vec<String> {
    let dynamo = aws_sdk_dynamodb::Client::new(&app.aws().await);
    let mut ids = Vec::new();
    for shard in shutter_events::outbox::pending_shards() {
        let out = dynamo
            .query()
            .table_name(app.stack.table_name(table))
            .index_name(shutter_events::outbox::PENDING_INDEX)
            .key_condition_expression("outbox_pending = :shard")
            .expression_attribute_values(":shard", AttributeValue::S(shard))
            .send()
            .await
            .unwrap();
        for item in out.items() {
            if let Some(AttributeValue::S(pk)) = item.get("pk") {
                ids.push(pk.trim_start_matches("OUTBOX#").to_owned());
            }
        }
    }
    ids
}

const OUTBOX_TABLES: [&str; 6] = [
    "IdentityTable",
    "ProfilesTable",
    "PostsTable",
    "LikesTable",
    "CommentsTable",
    "FollowsTable",
];

async fn sqs(app: &TestApp) -> aws_sdk_sqs::Client {
    aws_sdk_sqs::Client::new(&app.aws().await)
}

/// Messages in EventsDlq, visible or not.
async fn dlq_depth(app: &TestApp) -> u64 {
    let attributes = sqs(app)
        .await
        .get_queue_attributes()
        .queue_url(app.stack.queue_url("EventsDlq"))
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::All)
        .send()
        .await
        .unwrap();
    let count = |name| {
        attributes
            .attributes()
            .and_then(|a| a.get(&name))
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    count(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
        + count(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
}

/// The bodies of EventsDlq's messages, read without taking them (visible again at once).
async fn dlq_bodies(app: &TestApp) -> Vec<Value> {
    let received = sqs(app)
        .await
        .receive_message()
        .queue_url(app.stack.queue_url("EventsDlq"))
        .max_number_of_messages(10)
        .visibility_timeout(0)
        .send()
        .await
        .unwrap();
    received
        .messages()
        .iter()
        .map(|m| serde_json::from_str(m.body().unwrap_or_default()).unwrap_or(Value::Null))
        .collect()
}

/// Runs `dlq-replay` against this devstack, as an operator would: (succeeded, its output).
async fn dlq_replay(app: &TestApp, args: &[&str]) -> (bool, String) {
    let binary = devstack::DevstackConfig::for_tests()
        .bin_dir
        .join("dlq-replay");
    let out = tokio::process::Command::new(&binary)
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("AWS_ENDPOINT_URL", app.stack.moto_url())
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("KAFKA_BOOTSTRAP_SERVERS", app.stack.kafka_bootstrap())
        .env("EVENTS_DLQ_URL", app.stack.queue_url("EventsDlq"))
        .output()
        .await
        .unwrap_or_else(|e| {
            panic!(
                "{} runs (cargo build --workspace --bins): {e}",
                binary.display()
            )
        });
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

async fn get(app: &TestApp, user: &User, path: &str) -> shutter_e2e::Answer {
    app.call(Method::GET, path, Some(&user.access_token), None)
        .await
}

/// Waits until the follows service knows `user` (from UserRegistered).
async fn known_to_follows(app: &TestApp, viewer: &User, user: &User) {
    let path = format!("/v1/users/{}/followers", user.username);
    eventually("the follows service to know the user", WAIT, || async {
        (get(app, viewer, &path).await.status == StatusCode::OK).then_some(())
    })
    .await;
}

async fn follow(app: &TestApp, who: &User, whom: &User) {
    let answer = app
        .call(
            Method::PUT,
            &format!("/v1/users/{}/follow", whom.username),
            Some(&who.access_token),
            None,
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{answer:?}");
    assert_eq!(answer.body["state"], "following");
}

/// Waits until `whose` profile counts (followers, following).
async fn counts_become(app: &TestApp, viewer: &User, whose: &User, expected: (u64, u64)) {
    let path = format!("/v1/profiles/{}", whose.username);
    eventually(
        &format!("{}'s counts {expected:?}", whose.username),
        WAIT,
        || async {
            let profile = get(app, viewer, &path).await;
            let counts = (
                profile.body["follower_count"].as_u64().unwrap_or(u64::MAX),
                profile.body["following_count"].as_u64().unwrap_or(u64::MAX),
            );
            (counts == expected).then_some(())
        },
    )
    .await;
}

/// The post's (like_count, comment_count), as the posts service counts them from events.
async fn post_counts(app: &TestApp, viewer: &User, post: &str) -> (u64, u64) {
    let post = get(app, viewer, &format!("/v1/posts/{post}")).await;
    (
        post.body["like_count"].as_u64().unwrap_or(u64::MAX),
        post.body["comment_count"].as_u64().unwrap_or(u64::MAX),
    )
}

/// How many times `post` is in the first page of `viewer`'s feed.
async fn in_feed(app: &TestApp, viewer: &User, post: &str) -> usize {
    let feed = get(app, viewer, "/v1/feed?limit=100").await;
    assert_eq!(feed.status, StatusCode::OK, "{feed:?}");
    feed.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["id"] == post)
        .count()
}

/// The ids a posts search finds, once OpenSearch has made every write searchable.
async fn search_posts(app: &TestApp, viewer: &User, word: &str) -> Vec<String> {
    app.http
        .post(format!("{}/_refresh", app.stack.opensearch_url()))
        .send()
        .await
        .unwrap();
    let found = get(app, viewer, &format!("/v1/search/posts?q={word}")).await;
    assert_eq!(found.status, StatusCode::OK, "{found:?}");
    found.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_owned())
        .collect()
}

/// A post with `caption` and one PNG, uploaded, once the posts service has published it
/// (no Kafka on that path: S3, SQS and the posts table).
async fn post(app: &TestApp, author: &User, caption: &str) -> String {
    let created = app
        .call(
            Method::POST,
            "/v1/posts",
            Some(&author.access_token),
            Some(json!({"caption": caption, "media": [{"content_type": "image/png", "size": PNG.len()}]})),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    let id = created.body["post"]["id"].as_str().unwrap().to_owned();
    let uploaded = app.upload(&created.body["uploads"][0]["upload"], PNG).await;
    assert!(uploaded.is_success(), "S3 took the upload: {uploaded}");
    let path = format!("/v1/posts/{id}");
    eventually("the post to be published", WAIT, || async {
        (get(app, author, &path).await.body["status"] == "published").then_some(())
    })
    .await;
    id
}

/// A word no other story uses, for a search to find one post by.
fn word(prefix: &str) -> String {
    let id = shutter_core::new_id().to_ascii_lowercase();
    let letters: String = id
        .chars()
        .rev()
        .filter(char::is_ascii_alphabetic)
        .take(8)
        .collect();
    format!("{prefix}{letters}")
}

/// The sweeper's reads of a pending index, against moto (its DynamoDB adapter): one scan
/// returns every item written before the cutoff while the index holds at most `most` items,
/// and says "too many" beyond; a shard's query returns its oldest items first, at most
/// `limit`, across pages.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sweepers_reads_scan_a_small_index_and_query_a_backlog_per_shard_oldest_first() {
    use shutter_outbox::store::{DynamoOutbox, OutboxStore};
    let app = TestApp::shared().await;
    let aws = app.aws().await;
    let ddb = aws_sdk_dynamodb::Client::new(&aws);
    // A table of this test's own with the services' pending index, so that no stream
    // publisher marks its items.
    let table = TestApp::unique("OutboxReads");
    let attribute = |name: &str, ty| {
        aws_sdk_dynamodb::types::AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ty)
            .build()
            .unwrap()
    };
    let key = |name: &str, ty| {
        aws_sdk_dynamodb::types::KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(ty)
            .build()
            .unwrap()
    };
    use aws_sdk_dynamodb::types::{KeyType, ScalarAttributeType as T};
    ddb.create_table()
        .table_name(&table)
        .billing_mode(aws_sdk_dynamodb::types::BillingMode::PayPerRequest)
        .attribute_definitions(attribute("pk", T::S))
        .attribute_definitions(attribute("sk", T::S))
        .attribute_definitions(attribute("outbox_pending", T::S))
        .attribute_definitions(attribute("outbox_at", T::N))
        .key_schema(key("pk", KeyType::Hash))
        .key_schema(key("sk", KeyType::Range))
        .global_secondary_indexes(
            aws_sdk_dynamodb::types::GlobalSecondaryIndex::builder()
                .index_name(shutter_events::outbox::PENDING_INDEX)
                .key_schema(key("outbox_pending", KeyType::Hash))
                .key_schema(key("outbox_at", KeyType::Range))
                .projection(
                    aws_sdk_dynamodb::types::Projection::builder()
                        .projection_type(aws_sdk_dynamodb::types::ProjectionType::All)
                        .build(),
                )
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    // GIVEN 12 pending items in shard 0, written at 1..=12 (stored newest first), and 3 in
    // shard 1 written at 100..=102, and an item already published (not in the index).
    let put = |id: String, shard: Option<&str>, at: i64| {
        let mut item = ddb
            .put_item()
            .table_name(&table)
            .item("pk", AttributeValue::S(format!("OUTBOX#{id}")))
            .item("sk", AttributeValue::S("OUTBOX".into()))
            .item("outbox_at", AttributeValue::N(at.to_string()))
            .item("event", AttributeValue::S("{}".into()));
        if let Some(shard) = shard {
            item = item.item("outbox_pending", AttributeValue::S(shard.into()));
        }
        item.send()
    };
    for at in (1..=12).rev() {
        put(format!("a{at:02}"), Some("PENDING#0"), at)
            .await
            .unwrap();
    }
    for at in 100..=102 {
        put(format!("b{at}"), Some("PENDING#1"), at).await.unwrap();
    }
    put("published".into(), None, 1).await.unwrap();
    let outbox = DynamoOutbox::new(&aws);
    let ids = |items: &[shutter_outbox::store::PendingItem]| -> Vec<String> {
        items.iter().map(|i| i.event_id.clone()).collect()
    };

    // THEN one scan returns what was written before the cutoff, from both shards
    let found = outbox.pending_all(&table, 101, 15).await.unwrap().unwrap();
    let mut found = ids(&found);
    found.sort();
    let mut expected: Vec<String> = (1..=12).map(|at| format!("a{at:02}")).collect();
    expected.push("b100".into());
    assert_eq!(
        found, expected,
        "every pending item before the cutoff, none published"
    );
    // and says "too many" once the index holds more than `most` (of any age)
    assert!(outbox.pending_all(&table, 101, 14).await.unwrap().is_none());
    assert!(outbox.pending_all(&table, 5, 14).await.unwrap().is_none());
    // and a shard's query reads its oldest first, across pages of `limit`
    let oldest = outbox.pending(&table, "PENDING#0", 1_000, 5).await.unwrap();
    assert_eq!(ids(&oldest), vec!["a01", "a02", "a03", "a04", "a05"]);
    let before = outbox.pending(&table, "PENDING#1", 102, 200).await.unwrap();
    assert_eq!(ids(&before), vec!["b100", "b101"]);
    ddb.delete_table().table_name(&table).send().await.unwrap();
}

/// Every table whose stream the publisher reads has the pending index, and the sweeper
/// reads it and may mark its items: a service table added later cannot be forgotten.
#[test]
fn every_outbox_table_is_indexed_and_swept() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let template = devstack::template::Template::load(&root.join("template.yaml")).unwrap();
    let publisher = template.resource("OutboxPublisherFunction");
    let streamed: BTreeSet<String> = publisher["Properties"]["Events"]
        .as_object()
        .unwrap()
        .values()
        .filter(|e| e["Type"] == "DynamoDB")
        .map(|e| {
            e["Properties"]["Stream"]["Fn::GetAtt"][0]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(streamed.len(), OUTBOX_TABLES.len(), "{streamed:?}");
    assert_eq!(
        streamed,
        OUTBOX_TABLES.iter().map(|t| (*t).to_owned()).collect()
    );
    for table in &streamed {
        let indexes = &template.resource(table)["Properties"]["GlobalSecondaryIndexes"];
        let pending = indexes
            .as_array()
            .into_iter()
            .flatten()
            .find(|i| i["IndexName"] == shutter_events::outbox::PENDING_INDEX)
            .unwrap_or_else(|| panic!("{table} has no OutboxPending index"));
        assert_eq!(
            pending["KeySchema"],
            json!([
                {"AttributeName": "outbox_pending", "KeyType": "HASH"},
                {"AttributeName": "outbox_at", "KeyType": "RANGE"}
            ]),
            "{table}"
        );
    }
    let sweeper = &template.resource("OutboxSweeperFunction")["Properties"];
    let swept: BTreeSet<String> = sweeper["Environment"]["Variables"]["OUTBOX_TABLES"]["Fn::Join"]
        [1]
    .as_array()
    .unwrap()
    .iter()
    .map(|r| r["Ref"].as_str().unwrap().to_owned())
    .collect();
    assert_eq!(swept, streamed, "OUTBOX_TABLES");
    // Both may mark the items of exactly these tables; the sweeper queries their indexes.
    let rights = |function: &Value, action: &str| -> BTreeSet<String> {
        function["Policies"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|p| p["Statement"].as_array().cloned().unwrap_or_default())
            .filter(|s| {
                s["Action"]
                    .as_array()
                    .is_some_and(|a| a.iter().any(|x| x == action))
            })
            .flat_map(|s| s["Resource"].as_array().cloned().unwrap_or_default())
            .map(|r| match &r["Fn::GetAtt"] {
                Value::Array(parts) => parts[0].as_str().unwrap().to_owned(),
                _ => r["Fn::Sub"].as_str().unwrap_or_default().to_owned(),
            })
            .collect()
    };
    assert_eq!(
        rights(&publisher["Properties"], "dynamodb:UpdateItem"),
        streamed
    );
    assert_eq!(rights(sweeper, "dynamodb:UpdateItem"), streamed);
    let indexes: BTreeSet<String> = streamed
        .iter()
        .map(|t| format!("${{{t}.Arn}}/index/OutboxPending"))
        .collect();
    assert_eq!(rights(sweeper, "dynamodb:Query"), indexes);
    assert_eq!(rights(sweeper, "dynamodb:Scan"), indexes);
    // One scheduled run per table, its input naming the table.
    let scheduled: BTreeSet<String> = sweeper["Events"]
        .as_object()
        .unwrap()
        .values()
        .filter(|e| e["Type"] == "Schedule")
        .map(|e| {
            // {"table": "${PostsTable}"}: the table's name, as the deploy resolves it.
            let input = e["Properties"]["Input"]["Fn::Sub"].as_str().unwrap();
            let input: Value = serde_json::from_str(input).unwrap();
            let table = input["table"].as_str().unwrap();
            table
                .strip_prefix("${")
                .and_then(|t| t.strip_suffix('}'))
                .unwrap_or_else(|| panic!("{table}"))
                .to_owned()
        })
        .collect();
    assert_eq!(scheduled, streamed, "the sweeper's schedules");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_written_while_the_broker_is_down_past_every_retry_are_published_by_the_sweeper_once()
 {
    let _turn = ONE_AT_A_TIME.lock().await;
    // The stream mappings give up at the first failure: only the sweeper is left.
    let stack = TestApp::spawn_with(config(0, 4)).await;
    let app = &stack;
    let ann = app.user(&TestApp::unique("ann")).await;
    let bob = app.user(&TestApp::unique("bob")).await;
    let carol = app.user(&TestApp::unique("carol")).await;
    let first = app.published_post(&ann).await;
    for user in [&ann, &bob, &carol] {
        known_to_follows(app, &carol, user).await;
    }
    for (service, path) in [
        ("likes", format!("/v1/posts/{first}/likes")),
        ("comments", format!("/v1/posts/{first}/comments")),
    ] {
        eventually(
            &format!("the {service} service to know the post"),
            WAIT,
            || async { (get(app, &bob, &path).await.status == StatusCode::OK).then_some(()) },
        )
        .await;
    }
    assert_eq!(dlq_depth(app).await, 0);

    // GIVEN the broker is frozen
    let frozen = Stopped::new(vec![
        app.stack.broker_pid().expect("the devstack runs tansu"),
    ]);

    // WHEN bob and carol follow ann, like her post and comment on it, and ann posts again
    for fan in [&bob, &carol] {
        follow(app, fan, &ann).await;
        let liked = app
            .call(
                Method::PUT,
                &format!("/v1/posts/{first}/like"),
                Some(&fan.access_token),
                None,
            )
            .await;
        assert_eq!(liked.status, StatusCode::OK, "{liked:?}");
    }
    let commented = app
        .call(
            Method::POST,
            &format!("/v1/posts/{first}/comments"),
            Some(&bob.access_token),
            Some(json!({"text": "written while Kafka slept"})),
        )
        .await;
    assert_eq!(commented.status, StatusCode::ACCEPTED, "{commented:?}");
    let term = word("glacier");
    let second = post(app, &ann, &format!("a post from the freeze {term}")).await;

    // THEN each event waits in its table's outbox, pending
    for (table, at_least) in [
        ("FollowsTable", 2),
        ("LikesTable", 2),
        ("CommentsTable", 1),
        ("PostsTable", 1),
    ] {
        eventually(
            &format!("{at_least} events pending in {table}"),
            WAIT,
            || async { (pending(app, table).await.len() >= at_least).then_some(()) },
        )
        .await;
    }
    // AND the stream path gives up on them, leaving only their position in EventsDlq
    eventually("the outbox stream mappings to give up", WAIT, || async {
        (dlq_depth(app).await > 0).then_some(())
    })
    .await;
    let bodies = dlq_bodies(app).await;
    assert!(!bodies.is_empty());
    for body in &bodies {
        assert!(
            body["DDBStreamBatchInfo"]["streamArn"].is_string(),
            "a stream batch's position, no event: {body}"
        );
    }
    // AND nothing is lost meanwhile: the follows are still pending
    assert!(pending(app, "FollowsTable").await.len() >= 2);

    // WHEN the broker is back
    drop(frozen);

    // THEN the sweeper publishes every event, and each takes effect once
    counts_become(app, &bob, &ann, (2, 0)).await;
    counts_become(app, &ann, &bob, (0, 1)).await;
    eventually("2 likes and 1 comment counted", WAIT, || async {
        (post_counts(app, &ann, &first).await == (2, 1)).then_some(())
    })
    .await;
    for fan in [&bob, &carol] {
        eventually("the new post in the fans' feeds", WAIT, || async {
            (in_feed(app, fan, &second).await == 1).then_some(())
        })
        .await;
    }
    eventually("the new post to be found", WAIT, || async {
        (search_posts(app, &bob, &term).await == [second.as_str()]).then_some(())
    })
    .await;
    for table in OUTBOX_TABLES {
        eventually(&format!("nothing pending in {table}"), WAIT, || async {
            pending(app, table).await.is_empty().then_some(())
        })
        .await;
    }
    // (the sweeper published what the stream path gave up on)
    let by_sweeper = swept(app);
    eprintln!(
        "the sweeper published {} events: {:?}",
        by_sweeper.len(),
        by_sweeper.iter().map(|(t, _)| t).collect::<Vec<_>>()
    );
    assert!(!by_sweeper.is_empty(), "the sweeper published the events");
    // AND once everything is published, nothing arrived twice
    counts_become(app, &bob, &ann, (2, 0)).await;
    assert_eq!(post_counts(app, &ann, &first).await, (2, 1));
    for fan in [&bob, &carol] {
        assert_eq!(in_feed(app, fan, &second).await, 1);
    }
    assert_eq!(search_posts(app, &bob, &term).await, [second.as_str()]);

    // WHEN an operator lists EventsDlq with dlq-replay --dry-run
    let depth = dlq_depth(app).await;
    let (ok, listed) = dlq_replay(app, &["--dry-run"]).await;
    // THEN it names each stream batch and keeps every message
    assert!(ok, "{listed}");
    assert_eq!(
        listed.matches("would replay").count() as u64,
        depth,
        "{listed}"
    );
    assert!(listed.contains("stream batch"), "{listed}");
    assert_eq!(dlq_depth(app).await, depth);

    // WHEN they replay it
    let (ok, replayed) = dlq_replay(app, &[]).await;
    // THEN each batch is settled (its events were published: nothing is pending from then),
    // the queue is empty, and still nothing is counted twice
    assert!(ok, "{replayed}");
    let settled = replayed
        .lines()
        .filter(|l| l.starts_with("replayed "))
        .count();
    assert_eq!(settled as u64, depth, "{replayed}");
    assert_eq!(dlq_depth(app).await, 0, "{replayed}");
    counts_become(app, &bob, &ann, (2, 0)).await;
    assert_eq!(post_counts(app, &ann, &first).await, (2, 1));
    stack.stop().await;
}

/// How long the outage story keeps the broker down.
const OUTAGE: Duration = Duration::from_secs(30);

/// The ids of the events pending in every outbox table.
async fn pending_everywhere(app: &TestApp) -> BTreeSet<String> {
    let mut ids = BTreeSet::new();
    for table in OUTBOX_TABLES {
        ids.extend(pending(app, table).await);
    }
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_30_second_broker_outage_under_load_loses_nothing_and_applies_nothing_twice() {
    let _turn = ONE_AT_A_TIME.lock().await;
    // As deployed: the stream mappings retry 10 times; the sweeper takes what has been
    // pending for 20 seconds, so both paths publish during the recovery.
    let stack = TestApp::spawn_with(config(10, 20)).await;
    let app = &stack;
    let star = app.user(&TestApp::unique("star")).await;
    let fans: Vec<User> = futures::future::join_all(
        (0..6).map(|i| async move { app.user(&TestApp::unique(&format!("fan{i}"))).await }),
    )
    .await;
    let first = app.published_post(&star).await;
    known_to_follows(app, &star, &star).await;
    for fan in &fans {
        known_to_follows(app, &star, fan).await;
    }
    for path in [
        format!("/v1/posts/{first}/likes"),
        format!("/v1/posts/{first}/comments"),
    ] {
        eventually(
            "the likes and comments services to know the post",
            WAIT,
            || async { (get(app, &star, &path).await.status == StatusCode::OK).then_some(()) },
        )
        .await;
    }
    let mut publisher = PublisherLog::from_now(app);
    let swept_before = swept(app).len();
    let pending_before = pending_everywhere(app).await;

    // GIVEN the broker is down for 30 seconds
    let down = Stopped::new(vec![
        app.stack.broker_pid().expect("the devstack runs tansu"),
    ]);
    let outage = Instant::now();

    // WHEN meanwhile the fans follow the star, like and comment on her post, she posts
    // again, and newcomers register: every request answered as usual
    let term = word("outage");
    let (star, first) = (&star, &first);
    let caption = format!("posted while Kafka was down {term}");
    let (_, second, newcomers) = tokio::join!(
        futures::future::join_all(fans.iter().map(|fan| async move {
            follow(app, fan, star).await;
            let liked = app
                .call(
                    Method::PUT,
                    &format!("/v1/posts/{first}/like"),
                    Some(&fan.access_token),
                    None,
                )
                .await;
            assert_eq!(liked.status, StatusCode::OK, "{liked:?}");
            let commented = app
                .call(
                    Method::POST,
                    &format!("/v1/posts/{first}/comments"),
                    Some(&fan.access_token),
                    Some(json!({"text": format!("{} was here during the outage", fan.username)})),
                )
                .await;
            assert_eq!(commented.status, StatusCode::ACCEPTED, "{commented:?}");
        })),
        post(app, star, &caption),
        futures::future::join_all(
            (0..3).map(|i| async move { app.user(&TestApp::unique(&format!("new{i}"))).await })
        ),
    );
    // (the comments are written by comments-writer from SQS: wait for their events)
    eventually("the outage's comments to be written", WAIT, || async {
        let comments = get(app, star, &format!("/v1/posts/{first}/comments")).await;
        (comments.body["items"].as_array().map_or(0, Vec::len) == fans.len()).then_some(())
    })
    .await;
    let produced: BTreeSet<String> = pending_everywhere(app)
        .await
        .difference(&pending_before)
        .cloned()
        .collect();
    tokio::time::sleep(OUTAGE.saturating_sub(outage.elapsed())).await;
    // (nothing reached a consumer: the star's counts are as before the outage)
    let profile = get(app, star, &format!("/v1/profiles/{}", star.username)).await;
    assert_eq!(profile.body["follower_count"], 0, "{profile:?}");

    // WHEN the broker is back
    drop(down);
    let outage_seconds = outage.elapsed().as_secs();

    // THEN every effect arrives, once
    counts_become(app, star, star, (fans.len() as u64, 0)).await;
    for fan in &fans {
        counts_become(app, star, fan, (0, 1)).await;
    }
    let n = fans.len() as u64;
    eventually("every like and comment counted", WAIT, || async {
        (post_counts(app, star, first).await == (n, n)).then_some(())
    })
    .await;
    for fan in &fans {
        eventually("the new post in each fan's feed", WAIT, || async {
            (in_feed(app, fan, &second).await == 1).then_some(())
        })
        .await;
    }
    eventually("the new post to be found", WAIT, || async {
        (search_posts(app, star, &term).await == [second.as_str()]).then_some(())
    })
    .await;
    for newcomer in &newcomers {
        let path = format!("/v1/profiles/{}", newcomer.username);
        eventually("each newcomer's profile", WAIT, || async {
            (get(app, star, &path).await.status == StatusCode::OK).then_some(())
        })
        .await;
    }
    eventually("nothing pending", WAIT, || async {
        pending_everywhere(app).await.is_empty().then_some(())
    })
    .await;
    // AND what was sent twice (a retried stream batch, a sweep racing the stream) was
    // applied once: the counts stay exact once everything is published
    let sends = publisher.every();
    let by_sweeper: Vec<String> = swept(app)[swept_before..]
        .iter()
        .map(|(_, id)| id.clone())
        .collect();
    let sent_of_outage: Vec<&String> = sends
        .iter()
        .chain(&by_sweeper)
        .filter(|id| produced.contains(*id))
        .collect();
    let delivered: BTreeSet<&String> = sent_of_outage.iter().copied().collect();
    assert_eq!(
        delivered.len(),
        produced.len(),
        "every event of the outage was published"
    );
    counts_become(app, star, star, (n, 0)).await;
    assert_eq!(post_counts(app, star, first).await, (n, n));
    for fan in &fans {
        assert_eq!(in_feed(app, fan, &second).await, 1);
    }
    eprintln!(
        "outage of {outage_seconds} s: {} events produced during the outage, {} delivered after \
         ({} sends: {} by the stream path, {} by the sweeper; {} extra sends), 0 \
         duplicates applied (follower, following, like and comment counts exact; the post \
         once in each of {} feeds; one search hit)",
        produced.len(),
        delivered.len(),
        sent_of_outage.len(),
        sends.iter().filter(|id| produced.contains(*id)).count(),
        by_sweeper
            .iter()
            .filter(|id| produced.contains(*id))
            .count(),
        sent_of_outage.len() - delivered.len(),
        fans.len(),
    );
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publisher_killed_in_the_middle_of_a_batch_loses_nothing_and_applies_nothing_twice() {
    let _turn = ONE_AT_A_TIME.lock().await;
    // The stream mappings retry as deployed; the sweeper waits two minutes, so what is
    // published twice here is the cut batch sent again.
    let stack = TestApp::spawn_with(config(10, 120)).await;
    // Where the kill lands is a race this test cannot win every time: the publisher may
    // finish the batch before its log says it began, or the kill may come between two
    // batches. Every round must lose nothing and apply nothing twice; rounds go on, with
    // new users, until one has cut a batch.
    for round in 1..=CUT_ROUNDS {
        let cut = kill_the_publisher_during_a_batch(&stack).await;
        eprintln!(
            "round {round}: held batch {} follows; killed after {} of {FANS}; {} publishes of \
             {FANS} events; {} sent before the kill and again after it",
            cut.held,
            cut.at_kill,
            cut.publishes,
            cut.sent_again.len()
        );
        if cut.landed_mid_batch() {
            stack.stop().await;
            return;
        }
    }
    panic!("no kill in {CUT_ROUNDS} rounds landed in the middle of a batch");
}

const CUT_ROUNDS: usize = 4;

/// One round of the killed-publisher story, as seen in the publisher's log.
struct Cut {
    /// Follows the batch held before the one to be cut took.
    held: usize,
    /// Different follows published when the kill was sent.
    at_kill: usize,
    /// Follows published, counting each publish (the batch cut and sent again adds some).
    publishes: usize,
    /// Follows the killed batch had sent before the kill: each must be sent again.
    cut_short: BTreeSet<String>,
    /// Those of `cut_short` published again after the kill.
    sent_again: BTreeSet<String>,
}

impl Cut {
    /// The kill came after the batch had sent some follows and before it had sent all,
    /// and what it had sent was sent again (the retried batch starts from its first).
    fn landed_mid_batch(&self) -> bool {
        !self.cut_short.is_empty() && self.at_kill < FANS && self.sent_again == self.cut_short
    }
}

/// FANS new users follow a new star while the publisher is held, and the publisher is
/// killed once the next batch has begun; asserts every follow takes effect once.
async fn kill_the_publisher_during_a_batch(app: &TestApp) -> Cut {
    let star = app.user(&TestApp::unique("star")).await;
    let fans: Vec<User> = futures::future::join_all(
        (0..FANS).map(|i| async move { app.user(&TestApp::unique(&format!("fan{i:02}"))).await }),
    )
    .await;
    known_to_follows(app, &star, &star).await;
    for fan in &fans {
        known_to_follows(app, &star, fan).await;
    }

    // GIVEN the fans follow the star all at once while the publisher is held, so that
    // their events wait in the stream and go out in big batches
    let mut log = PublisherLog::from_now(app);
    let held = Stopped::new(publisher_pids(app));
    assert!(!held.0.is_empty(), "the devstack runs outbox-publisher");
    let invoked = app.stack.invocations("OutboxPublisherFunction");
    futures::future::join_all(fans.iter().map(|fan| follow(app, fan, &star))).await;
    drop(held);
    // The batch the publisher was holding ends; the rest of the follows come next.
    eventually("the held batch to end", WAIT, || async {
        (app.stack.invocations("OutboxPublisherFunction") > invoked).then_some(())
    })
    .await;
    let held_ids: BTreeSet<String> = log.published("FollowStarted").into_iter().collect();
    let held = held_ids.len();

    // WHEN the publisher is killed as soon as it has sent one of the next batch
    let started = Instant::now();
    while log.distinct("FollowStarted") <= held && held < FANS {
        assert!(
            started.elapsed() < WAIT,
            "the publisher never sent more than {held}"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    for pid in publisher_pids(app) {
        assert!(signal("KILL", pid), "{pid} is killed");
    }
    let before_kill = log.published("FollowStarted").len();
    let at_kill = log.distinct("FollowStarted");

    // THEN every follow takes effect once
    counts_become(app, &star, &star, (FANS as u64, 0)).await;
    for fan in &fans {
        counts_become(app, &star, fan, (0, 1)).await;
    }
    let post = app.published_post(&star).await;
    for fan in &fans {
        eventually("the star's post in each fan's feed", WAIT, || async {
            (in_feed(app, fan, &post).await == 1).then_some(())
        })
        .await;
    }
    eventually("nothing pending in FollowsTable", WAIT, || async {
        pending(app, "FollowsTable").await.is_empty().then_some(())
    })
    .await;
    // AND every follow was published, some maybe twice (the cut batch sent again), and
    // each is still counted once
    let sent = log.published("FollowStarted");
    let distinct: BTreeSet<&String> = sent.iter().collect();
    assert_eq!(distinct.len(), FANS, "{sent:?}");
    counts_become(app, &star, &star, (FANS as u64, 0)).await;
    for fan in &fans {
        assert_eq!(in_feed(app, fan, &post).await, 1);
    }
    let cut_short: BTreeSet<String> = sent[..before_kill]
        .iter()
        .filter(|id| !held_ids.contains(*id))
        .cloned()
        .collect();
    let sent_again = sent[before_kill..]
        .iter()
        .filter(|id| cut_short.contains(*id))
        .cloned()
        .collect();
    Cut {
        held,
        at_kill,
        publishes: sent.len(),
        cut_short,
        sent_again,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_a_consumer_gave_up_on_is_replayed_from_the_dlq_with_its_payload() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let app = &TestApp::shared().await;
    let viewer = app.user(&TestApp::unique("viewer")).await;
    // GIVEN a UserRegistered that the profiles consumer gave up on, in EventsDlq with its
    // whole envelope (as shutter_events::SqsPoisonQueue writes it)
    let user = UserId::generate();
    let username = TestApp::unique("replayed");
    let event = Envelope::new(
        Event::UserRegistered(UserRegistered {
            user_id: user.clone(),
            username: username.clone(),
            created_at: shutter_core::now_rfc3339(),
        }),
        Some(&user),
        "dlq-replay-story",
    );
    let depth = dlq_depth(app).await;
    sqs(app)
        .await
        .send_message()
        .queue_url(app.stack.queue_url("EventsDlq"))
        .message_body(
            json!({
                "source": "profiles-identity-events",
                "position": "shutter.identity-0@0",
                "reason": "a dependency was down for longer than the retries",
                "record": event.to_json().unwrap(),
            })
            .to_string(),
        )
        .send()
        .await
        .unwrap();
    let profile = format!("/v1/profiles/{username}");

    // WHEN an operator lists the queue (named as in the template)
    let (ok, listed) = dlq_replay(app, &["--queue-url", "EventsDlq", "--dry-run"]).await;
    // THEN it names the event and changes nothing
    assert!(ok, "{listed}");
    assert!(
        listed.contains(&format!(
            "poison from profiles-identity-events at shutter.identity-0@0: UserRegistered {}",
            event.id
        )),
        "{listed}"
    );
    assert_eq!(dlq_depth(app).await, depth + 1);
    assert_eq!(
        get(app, &viewer, &profile).await.status,
        StatusCode::NOT_FOUND
    );

    // WHEN they replay it
    let (ok, replayed) = dlq_replay(app, &["--queue-url", "EventsDlq"]).await;
    // THEN the event is published again, its message deleted, and its effect arrives
    assert!(ok, "{replayed}");
    assert!(replayed.contains("(1 events)"), "{replayed}");
    assert_eq!(dlq_depth(app).await, depth);
    let found = eventually("the replayed user's profile", WAIT, || async {
        let answer = get(app, &viewer, &profile).await;
        (answer.status == StatusCode::OK).then_some(answer.body)
    })
    .await;
    assert_eq!(found["id"], user.as_str());
}
