//! Measures search through the devstack: indexing throughput (post documents per second
//! through the `shutter.posts` MSK mapping and `search-indexer`, bulk requests into
//! osmem-server) and search latency through the gateway (p50/p99 of
//! `GET /v1/search/posts`, `/users` and `/hashtags`). Not a test: it prints figures.
//!
//! `cargo build --workspace --bins && cargo run -p shutter-e2e --bin search-bench -- [POSTS] [SEARCHES]`
//! (defaults: 10,000 posts by 100 authors, 500 searches of each kind from 8 clients).
//!
//! The posts are `PostPublished` events in the posts service's contract, produced straight
//! to tansu (making 10,000 posts with media through the API would measure moto and image
//! processing instead). Locally the figures measure one machine running every function,
//! tansu and osmem-server at once; the shape (batches of 100 per bulk request, one request
//! per search plus two small ones) is what carries over.

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use shutter_core::{PostId, UserId};
use shutter_e2e::TestApp;
use shutter_e2e::bench::arg;
use shutter_events::{Envelope, Event, PostFacts, UserRegistered};

const WORDS: &[&str] = &[
    "sunset", "beach", "coffee", "morning", "city", "lights", "mountain", "river", "forest",
    "friends", "family", "dinner", "pasta", "pizza", "summer", "winter", "snow", "rain", "street",
    "art", "music", "concert", "dog", "cat", "garden", "flowers", "travel", "train", "harbour",
    "boat", "bridge", "market", "bread", "wine", "sea", "island", "desert", "road", "trip",
    "museum", "library", "book", "running", "cycling", "yoga", "sky", "stars", "moon", "cloud",
];

/// A small deterministic generator (xorshift), so runs are comparable.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 as usize
    }

    fn word(&mut self) -> &'static str {
        WORDS[self.next() % WORDS.len()]
    }
}

/// Indexed, searchable posts.
async fn indexed(app: &TestApp) -> u64 {
    let url = app.stack.opensearch_url();
    let _ = app
        .http
        .post(format!("{url}/shutter-posts/_refresh"))
        .send()
        .await;
    let body = json!({"query": {"term": {"deleted": false}}});
    match app
        .http
        .post(format!("{url}/shutter-posts/_count"))
        .json(&body)
        .send()
        .await
    {
        Ok(r) => r
            .json::<Value>()
            .await
            .ok()
            .and_then(|v| v["count"].as_u64())
            .unwrap_or(0),
        Err(_) => 0,
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

#[tokio::main]
async fn main() {
    let posts = arg(1, 10_000);
    let searches = arg(2, 500);
    let authors = 100.min(posts.max(1));
    let app = Arc::new(TestApp::spawn().await);
    let mut rng = Rng(0x5eed_1234_abcd_9876);

    // Authors first (the posts carry their privacy), then the posts.
    let author_ids: Vec<UserId> = (0..authors).map(|_| UserId::generate()).collect();
    let registered: Vec<Envelope> = author_ids
        .iter()
        .enumerate()
        .map(|(i, id)| {
            let event = Event::UserRegistered(UserRegistered {
                user_id: id.clone(),
                username: format!("author{i:03}"),
                created_at: shutter_core::now_rfc3339(),
            });
            Envelope::new(event, Some(id), "search-bench")
        })
        .collect();
    app.produce(&registered).await;

    let records: Vec<Envelope> = (0..posts)
        .map(|i| {
            let author = &author_ids[i % authors];
            let words: Vec<&str> = (0..8).map(|_| rng.word()).collect();
            let tags = vec![rng.word().to_owned(), rng.word().to_owned()];
            let caption = format!("{} #{} #{}", words.join(" "), tags[0], tags[1]);
            let event = Event::PostPublished(PostFacts {
                post_id: PostId::generate(),
                author_id: author.clone(),
                caption,
                location: None,
                hashtags: tags,
                mentions: vec![],
                created_at: shutter_core::now_rfc3339(),
                version: 2,
                media: vec![],
            });
            Envelope::new(event, Some(author), "search-bench")
        })
        .collect();
    eprintln!("search-bench: producing {posts} PostPublished events");
    let started = Instant::now();
    app.produce(&records).await;
    let produced_in = started.elapsed();
    let mut last_report = Instant::now();
    loop {
        let n = indexed(&app).await;
        if n >= posts as u64 {
            break;
        }
        if last_report.elapsed() > Duration::from_secs(10) {
            eprintln!(
                "search-bench: {n} of {posts} indexed after {:.1} s",
                started.elapsed().as_secs_f64()
            );
            last_report = Instant::now();
        }
        assert!(
            started.elapsed() < Duration::from_secs(900),
            "indexing did not finish in 15 minutes"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let indexed_in = started.elapsed();

    // Searches through the gateway, as a logged-in user.
    let user = app.user("bench.searcher").await;
    let token = Arc::new(user.access_token);
    let mut report = Vec::new();
    for (kind, make) in [
        (
            "posts",
            (|r: &mut Rng| format!("/v1/search/posts?q={}%20{}", r.word(), r.word()))
                as fn(&mut Rng) -> String,
        ),
        ("users", |r: &mut Rng| {
            format!("/v1/search/users?q=author{:02}", r.next() % 100)
        }),
        ("hashtags", |r: &mut Rng| {
            format!("/v1/search/hashtags?q={}", &r.word()[..2])
        }),
    ] {
        let paths: Vec<String> = (0..searches).map(|_| make(&mut rng)).collect();
        // Warm every environment first.
        for p in paths.iter().take(8) {
            let _ = app.call(Method::GET, p, Some(&token), None).await;
        }
        // One client: the latency of a search on an idle stack.
        let mut alone = Vec::new();
        for p in paths.iter().take(searches / 5) {
            let t = Instant::now();
            let answer = app.call(Method::GET, p, Some(&token), None).await;
            alone.push(t.elapsed());
            assert_eq!(answer.status, StatusCode::OK, "{p}: {answer:?}");
        }
        alone.sort();
        report.push(format!(
            "search {kind:<8}: {} requests from 1 client: p50 {:.1} ms, p99 {:.1} ms",
            alone.len(),
            percentile(&alone, 0.50).as_secs_f64() * 1000.0,
            percentile(&alone, 0.99).as_secs_f64() * 1000.0,
        ));
        // Eight clients: throughput, and latency under load.
        let mut set = tokio::task::JoinSet::new();
        let clients = 8;
        let t0 = Instant::now();
        for chunk in paths.chunks(searches.div_ceil(clients).max(1)) {
            let (app, token, chunk) = (app.clone(), token.clone(), chunk.to_vec());
            set.spawn(async move {
                let mut times = Vec::new();
                let mut failures = 0;
                let mut hits = 0;
                for p in chunk {
                    let t = Instant::now();
                    let answer = app.call(Method::GET, &p, Some(&token), None).await;
                    times.push(t.elapsed());
                    if answer.status == StatusCode::OK {
                        hits += answer.body["items"].as_array().map_or(0, Vec::len);
                    } else {
                        failures += 1;
                    }
                }
                (times, failures, hits)
            });
        }
        let mut times = Vec::new();
        let (mut failures, mut hits) = (0, 0);
        for (t, f, h) in set.join_all().await {
            times.extend(t);
            failures += f;
            hits += h;
        }
        let wall = t0.elapsed();
        times.sort();
        report.push(format!(
            "search {kind:<8}: {} requests from {clients} clients in {:.1} s ({:.0}/s); p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; {:.1} items per answer; {failures} failed",
            times.len(),
            wall.as_secs_f64(),
            times.len() as f64 / wall.as_secs_f64(),
            percentile(&times, 0.50).as_secs_f64() * 1000.0,
            percentile(&times, 0.99).as_secs_f64() * 1000.0,
            times.last().copied().unwrap_or_default().as_secs_f64() * 1000.0,
            hits as f64 / times.len().max(1) as f64,
        ));
    }

    println!("search-bench: {posts} posts by {authors} authors");
    println!(
        "indexing      : produced in {:.1} s; all searchable after {:.1} s: {:.0} posts/s through search-indexer",
        produced_in.as_secs_f64(),
        indexed_in.as_secs_f64(),
        posts as f64 / indexed_in.as_secs_f64()
    );
    for line in report {
        println!("{line}");
    }
    if let Ok(app) = Arc::try_unwrap(app) {
        app.stop().await;
    }
}
