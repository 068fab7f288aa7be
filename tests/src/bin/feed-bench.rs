//! Measures the feed's fan-out and reads against the local DynamoDB (moto): for an author
//! with 10, 100, 1,000 and 10,000 followers, the DynamoDB requests and time to fan out one
//! post; for a viewer following 10, 100 and 1,000 authors (two of them celebrities), the
//! requests to read one feed page. Not a test: it prints figures.
//!
//! `cargo build --workspace --bins && cargo run -p shutter-e2e --bin feed-bench`
//!
//! It calls the feed's own consumer, its fan-out worker (the work queue in memory, the
//! template's default page of 100 followers a chunk) and handler in-process on the
//! devstack's tables, and counts requests in the feed's store. Times are moto's (one request at a time, in
//! Python); the request counts carry over to AWS.

use std::time::Instant;

use futures::StreamExt;
use shutter_core::{CursorSigner, PostId, UserId};
use shutter_directory::{Directory, DynamoDirectory};
use shutter_e2e::TestApp;
use shutter_events::work::{DEFAULT_PAGE, MemoryWorkQueue, WithWork};
use shutter_events::{Envelope, Event, PostFacts, UserRegistered};
use shutter_feed::model::{Entry, FanOut, PostCopy};
use shutter_feed::store::DynamoFeedStore;
use shutter_feed::{App, Timelines, fanout, http, worker};
use shutter_store::dynamodb::types::{PutRequest, WriteRequest};
use shutter_store::{Table, n, s};

/// Writes items 25 a request, 8 requests at a time.
async fn put_all(table: &Table, items: Vec<shutter_store::Item>) {
    let batches: Vec<Vec<WriteRequest>> = items
        .chunks(25)
        .map(|chunk| {
            chunk
                .iter()
                .map(|item| {
                    WriteRequest::builder()
                        .put_request(
                            PutRequest::builder()
                                .set_item(Some(item.clone()))
                                .build()
                                .expect("an item"),
                        )
                        .build()
                })
                .collect()
        })
        .collect();
    futures::stream::iter(batches)
        .for_each_concurrent(8, |batch| async move {
            let mut pending = batch;
            while !pending.is_empty() {
                let out = table
                    .client
                    .get()
                    .batch_write_item()
                    .request_items(&table.name, pending)
                    .send()
                    .await
                    .expect("seeding writes");
                pending = out
                    .unprocessed_items
                    .and_then(|mut u| u.remove(&table.name))
                    .unwrap_or_default();
            }
        })
        .await;
}

fn item(pk: String, sk: String) -> shutter_store::Item {
    std::collections::HashMap::from([("pk".to_owned(), s(pk)), ("sk".to_owned(), s(sk))])
}

fn published(post_id: &PostId, author: &UserId) -> Envelope {
    Envelope::new(
        Event::PostPublished(PostFacts {
            post_id: post_id.clone(),
            author_id: author.clone(),
            caption: "bench #feed".to_owned(),
            location: None,
            hashtags: vec!["feed".to_owned()],
            mentions: vec![],
            created_at: shutter_core::now_rfc3339(),
            version: 2,
            media: vec![],
        }),
        Some(author),
        "feed-bench",
    )
}

async fn register(dir: &DynamoDirectory, user: &UserId) {
    let event = Envelope::new(
        Event::UserRegistered(UserRegistered {
            user_id: user.clone(),
            username: format!("u{}", user.to_ascii_lowercase()),
            created_at: shutter_core::now_rfc3339(),
        }),
        None,
        "feed-bench",
    );
    dir.apply(&event).await.expect("directory write");
}

type Feed = WithWork<Timelines<DynamoFeedStore, DynamoDirectory>, MemoryWorkQueue>;

/// The consumer's and worker's dependencies on the bench's store (clones share its
/// request count).
fn timelines(store: &DynamoFeedStore, dir: &DynamoDirectory, celebrity_followers: i64) -> Feed {
    WithWork {
        app: Timelines {
            store: store.clone(),
            directory: dir.clone(),
            settings: FanOut {
                celebrity_followers,
            },
        },
        work: MemoryWorkQueue::default(),
        page: DEFAULT_PAGE,
    }
}

/// One event through the consumer, then the work it handed on through the worker.
async fn apply(feed: &Feed, event: Envelope) {
    fanout::apply(feed, event).await.expect("consumed");
    let failed = feed
        .work
        .drain(usize::MAX, |job| worker::chunk(feed, job))
        .await;
    assert!(failed.is_empty(), "{failed:?}");
}

#[tokio::main]
async fn main() {
    let app = TestApp::spawn().await;
    let aws = app.aws().await;
    let table = Table::new(&aws, app.stack.table_name("FeedTable"));
    let store = DynamoFeedStore::new(table.clone());
    let dir = DynamoDirectory {
        table: table.clone(),
    };

    println!("fan-out of one post (every follower an ordinary timeline)");
    println!("| followers | DynamoDB requests | requests per follower | time |");
    println!("|---:|---:|---:|---:|");
    let ordinary = timelines(&store, &dir, i64::MAX);
    for followers in [10usize, 100, 1_000, 10_000] {
        let author = UserId::generate();
        // Each follower listed, and its follow marker (what a fan-out checks after writing).
        let mut items: Vec<_> = (0..followers)
            .flat_map(|_| {
                let follower = shutter_core::new_id();
                let mut marker = item(format!("FEDGE#{follower}#{author}"), "EDGE".to_owned());
                marker.insert("seq".to_owned(), n(1));
                marker.insert(
                    "holds".to_owned(),
                    shutter_store::dynamodb::types::AttributeValue::Bool(true),
                );
                [item(format!("FOLLOWERS#{author}"), follower), marker]
            })
            .collect();
        let mut meta = item(format!("AUTHOR#{author}"), "META".to_owned());
        meta.insert("follower_count".to_owned(), n(followers));
        items.push(meta);
        put_all(&table, items).await;
        let post = PostId::generate();
        let before = store.requests();
        let started = Instant::now();
        apply(&ordinary, published(&post, &author)).await;
        let elapsed = started.elapsed();
        let requests = store.requests() - before;
        println!(
            "| {followers} | {requests} | {:.3} | {:.2} s |",
            requests as f64 / followers as f64,
            elapsed.as_secs_f64()
        );
    }
    let celebrity = UserId::generate();
    let mut meta = item(format!("AUTHOR#{celebrity}"), "META".to_owned());
    meta.insert("follower_count".to_owned(), n(10_000));
    meta.insert(
        "celebrity".to_owned(),
        shutter_store::dynamodb::types::AttributeValue::Bool(true),
    );
    put_all(&table, vec![meta]).await;
    let before = store.requests();
    apply(
        &timelines(&store, &dir, 10_000),
        published(&PostId::generate(), &celebrity),
    )
    .await;
    println!(
        "a celebrity's post (10,000 followers, merged at read time): {} requests",
        store.requests() - before
    );

    println!();
    println!("one feed page (20 posts) for a viewer following N authors, 2 of them celebrities");
    println!("| authors followed | DynamoDB requests | time |");
    println!("|---:|---:|---:|");
    let reader = App {
        store: store.clone(),
        media: shutter_media::MemoryMedia::default(),
        cursors: shutter_store::CursorKey::ready(CursorSigner::new(b"feed-bench".to_vec())),
    };
    for following in [10usize, 100, 1_000] {
        let viewer = UserId::generate();
        let authors: Vec<UserId> = (0..following).map(|_| UserId::generate()).collect();
        futures::stream::iter(authors.iter())
            .for_each_concurrent(16, |a| register(&dir, a))
            .await;
        // Each ordinary author has one post in the viewer's timeline; the first two
        // authors are celebrities, whose recent posts are merged in at read time.
        let mut items = Vec::new();
        for (i, author) in authors.iter().enumerate() {
            let post = PostId::generate();
            let at = shutter_core::now_rfc3339();
            let copy = PostCopy {
                post_id: post.clone(),
                author_id: author.clone(),
                caption: "bench".to_owned(),
                location: None,
                media: Vec::new(),
                published_at: at.clone(),
                version: 2,
                like_count: 0,
                comment_count: 0,
                deleted: false,
            };
            let mut post_item = shutter_store::to_item(&copy).expect("a post copy");
            post_item.extend(item(format!("POST#{post}"), "POST".to_owned()));
            items.push(post_item);
            let entry = Entry::new(&at, &post, author);
            let (pk, listed) = if i < 2 {
                items.push(item(format!("CELEBFOLLOWING#{viewer}"), author.to_string()));
                (format!("RECENT#{author}"), entry)
            } else {
                (format!("TL#{viewer}"), entry)
            };
            let mut e = item(pk, listed.position.clone());
            e.insert("post_id".to_owned(), s(listed.post_id.as_str()));
            e.insert("author_id".to_owned(), s(listed.author_id.as_str()));
            items.push(e);
        }
        put_all(&table, items).await;
        let request = shutter_http::test_support::api_request(
            "GET",
            "/v1/feed",
            &[],
            "",
            Some((viewer.as_str(), "bench.viewer", "user")),
        );
        let before = store.requests();
        let started = Instant::now();
        let response = http::feed(&reader, request).await.expect("a feed page");
        let elapsed = started.elapsed();
        let page: serde_json::Value =
            serde_json::from_slice(response.body().as_ref()).expect("JSON");
        assert_eq!(
            page["items"].as_array().map(Vec::len),
            Some(20.min(following))
        );
        println!(
            "| {following} | {} | {:.0} ms |",
            store.requests() - before,
            elapsed.as_secs_f64() * 1000.0
        );
    }
    app.stop().await;
}
