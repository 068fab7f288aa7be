//! Measures likes on one post through the devstack: likes per second and DynamoDB
//! requests per like, by operation. Not a test: it prints figures.
//!
//! `cargo build --workspace --bins && cargo run -p shutter-e2e --bin likes-bench -- [LIKES] [CLIENTS]`
//! (defaults: 200 likes by 200 users from 50 concurrent clients).
//!
//! The rate measures the local stack more than the service: moto copies a whole table for
//! every item of a transaction (a 5-item like costs about 150 ms at 500 items in the table,
//! 1.5 s at 5,000), one request at a time, so likes slow down as the tables grow and 50
//! clients can push a like past its 10 s timeout (reported as 503s). DynamoDB requests
//! per like is the figure that carries over to AWS.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use shutter_e2e::bench::{arg, settled};
use shutter_e2e::{TestApp, User, eventually};

#[tokio::main]
async fn main() {
    let likes = arg(1, 200);
    let clients = arg(2, 50).max(1);
    let app = Arc::new(TestApp::spawn().await);
    eprintln!("likes-bench: registering {likes} users and publishing a post");
    let author = app.user("bench.author").await;
    let post = app.published_post(&author).await;
    let users: Vec<User> = {
        let mut set = tokio::task::JoinSet::new();
        for chunk in (0..likes)
            .collect::<Vec<_>>()
            .chunks(likes.div_ceil(8).max(1))
        {
            let (app, chunk) = (app.clone(), chunk.to_vec());
            set.spawn(async move {
                let mut users = Vec::new();
                for i in chunk {
                    users.push(app.user(&format!("bench{i:04}")).await);
                }
                users
            });
        }
        set.join_all().await.into_iter().flatten().collect()
    };
    let path = format!("/v1/posts/{post}/like");
    // The likes service knows the post once the author's own like goes through.
    eventually(
        "the likes service to know the post",
        Duration::from_secs(90),
        || async {
            let answer = app
                .call(Method::PUT, &path, Some(&author.access_token), None)
                .await;
            (answer.status == StatusCode::OK).then_some(())
        },
    )
    .await;
    let before = settled(&app).await;

    let users = Arc::new(users);
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..clients {
        let (app, users, next, path) = (app.clone(), users.clone(), next.clone(), path.clone());
        set.spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(user) = users.get(i) else {
                    return latencies;
                };
                let t = Instant::now();
                let answer = app
                    .call(Method::PUT, &path, Some(&user.access_token), None)
                    .await;
                latencies.push((t.elapsed(), answer.status));
            }
        });
    }
    let answers: Vec<(Duration, StatusCode)> = set.join_all().await.into_iter().flatten().collect();
    let mut failed: BTreeMap<u16, usize> = BTreeMap::new();
    for (_, status) in answers.iter().filter(|(_, s)| *s != StatusCode::OK) {
        *failed.entry(status.as_u16()).or_insert(0) += 1;
    }
    let mut latencies: Vec<Duration> = answers
        .iter()
        .filter(|(_, s)| *s == StatusCode::OK)
        .map(|(d, _)| *d)
        .collect();
    if latencies.is_empty() {
        eprintln!("likes-bench: no like succeeded: {failed:?}");
        return;
    }
    let elapsed = started.elapsed();
    let after = settled(&app).await;

    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() - 1) as f64 * p) as usize].as_millis();
    let n = latencies.len() as f64;
    println!(
        "likes-bench: {} likes on one post from {clients} concurrent clients in {:.2} s: {:.1} likes/s (latency p50 {} ms, p95 {} ms, max {} ms)",
        latencies.len(),
        elapsed.as_secs_f64(),
        n / elapsed.as_secs_f64(),
        pct(0.5),
        pct(0.95),
        pct(1.0),
    );
    if !failed.is_empty() {
        println!(
            "failed likes by status: {failed:?} (the devstack answers 503 when a function times out)"
        );
    }
    let mut total = 0;
    let mut lines = Vec::new();
    for (op, count) in &after {
        let d = count - before.get(op).copied().unwrap_or(0);
        if d > 0 {
            total += d;
            lines.push(format!("  {op:<22} {:>6.2} per like ({d})", d as f64 / n));
        }
    }
    println!(
        "DynamoDB requests per like: {:.2} ({total} in all, the like functions' and the consumers')",
        total as f64 / n
    );
    for line in lines {
        println!("{line}");
    }
    match Arc::try_unwrap(app) {
        Ok(app) => app.stop().await,
        Err(_) => eprintln!("likes-bench: the stack stops with the process"),
    }
}
