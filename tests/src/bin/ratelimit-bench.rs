//! Measures the rate limiter against the devstack: the latency it adds to a request (its
//! one conditional update of RateLimitsTable, timed alone), and the DynamoDB requests it
//! makes per limited request, counted by moto for requests through the gateway to a route
//! whose handler itself touches no DynamoDB (`GET /v1/search/users`). Not a test: it
//! prints figures.
//!
//! `cargo build --workspace --bins && cargo run -p shutter-e2e --bin ratelimit-bench -- [N]`
//! (default: 500 checks and 200 requests of each kind).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use shutter_e2e::TestApp;
use shutter_e2e::bench::{arg, settled};
use shutter_ratelimit::model::parse_policies;
use shutter_ratelimit::store::DynamoCounters;
use shutter_ratelimit::{Decision, Limiter, Who};
use shutter_store::Table;

fn per_request(before: &BTreeMap<String, u64>, after: &BTreeMap<String, u64>, n: usize) -> String {
    let mut total = 0;
    let mut parts = Vec::new();
    for (op, count) in after {
        let d = count - before.get(op).copied().unwrap_or(0);
        if d > 0 {
            total += d;
            parts.push(format!("{op} {:.2}", d as f64 / n as f64));
        }
    }
    format!("{:.2} ({})", total as f64 / n as f64, parts.join(", "))
}

fn percentiles(mut samples: Vec<Duration>) -> String {
    samples.sort();
    let pct = |p: f64| samples[((samples.len() - 1) as f64 * p) as usize].as_secs_f64() * 1000.0;
    format!("p50 {:.2} ms, p99 {:.2} ms", pct(0.5), pct(0.99))
}

async fn timed_checks(limiter: &Limiter, who: &Who, n: usize, allowed: bool) -> Vec<Duration> {
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        let decision = limiter.check(who).await;
        samples.push(t.elapsed());
        assert_eq!(
            matches!(decision, Decision::Allowed(_)),
            allowed,
            "{decision:?}"
        );
    }
    samples
}

/// `n` searches, timed; the answers that were not `expect` (a refusal phase can straddle
/// a minute boundary) are counted and left out.
async fn timed_searches(app: &TestApp, token: &str, n: usize, expect: StatusCode) -> Vec<Duration> {
    let mut samples = Vec::with_capacity(n);
    let mut other = 0;
    for _ in 0..n {
        let t = Instant::now();
        let answer = app
            .call(Method::GET, "/v1/search/users?q=be", Some(token), None)
            .await;
        if answer.status == expect {
            samples.push(t.elapsed());
        } else {
            other += 1;
        }
    }
    if other > 0 {
        eprintln!("ratelimit-bench: {other} of {n} answers were not {expect}");
    }
    samples
}

#[tokio::main]
async fn main() {
    let n = arg(1, 500).max(10);
    let requests_n = arg(2, 200).max(10);
    let app = TestApp::spawn().await;
    let aws = app.aws().await;
    let table = Table::new(&aws, app.stack.table_name("RateLimitsTable"));

    // The limiter alone, as a function runs it: one policy of two windows.
    let limiter = Limiter {
        counters: DynamoCounters {
            table: table.clone(),
        },
        policies: parse_policies("bench@user=1000000/3600,1000000/86400").unwrap_or_default(),
    };
    let who = Who {
        user: Some("bench-user".to_owned()),
        address: None,
        costs: Vec::new(),
    };
    let _ = timed_checks(&limiter, &who, 20, true).await; // warm the client
    let allowed = timed_checks(&limiter, &who, n, true).await;
    println!(
        "ratelimit-bench: limiter check, counted ({n} sequential): {}",
        percentiles(allowed)
    );
    // Two policies (a password check: account and address), one transaction.
    let both = Limiter {
        counters: DynamoCounters {
            table: table.clone(),
        },
        policies: parse_policies("pw@user=1000000/900^4;pw_addr@address=1000000/900^4")
            .unwrap_or_default(),
    };
    let who_both = Who {
        address: Some("127.0.0.1".to_owned()),
        ..who.clone()
    };
    let two = timed_checks(&both, &who_both, n, true).await;
    println!(
        "ratelimit-bench: limiter check, two policies in one transaction ({n} sequential): {}",
        percentiles(two)
    );
    let full = Limiter {
        counters: DynamoCounters { table },
        policies: parse_policies("full@user=1/3600").unwrap_or_default(),
    };
    let _ = timed_checks(&full, &who, 1, true).await;
    let refused = timed_checks(&full, &who, n, false).await;
    println!(
        "ratelimit-bench: limiter check, refused ({n} sequential): {}",
        percentiles(refused)
    );

    // Through the gateway: a limited route whose handler reads no DynamoDB.
    let user = app.user("bench.searcher").await;
    let _ = timed_searches(&app, &user.access_token, 10, StatusCode::OK).await;
    let before = settled(&app).await;
    let searches = timed_searches(&app, &user.access_token, requests_n, StatusCode::OK).await;
    let after = settled(&app).await;
    println!(
        "ratelimit-bench: GET /v1/search/users, counted ({requests_n} sequential): {}; DynamoDB requests per request: {}",
        percentiles(searches),
        per_request(&before, &after, requests_n)
    );
    app.stop().await;

    // The same route with its limit used up: refused before the handler runs.
    let mut config = devstack::DevstackConfig::for_tests();
    config
        .parameters
        .insert("SearchesPerMinute".to_owned(), "1".to_owned());
    let app = TestApp::spawn_with(config).await;
    let user = app.user("bench.searcher").await;
    let _ = timed_searches(&app, &user.access_token, 1, StatusCode::OK).await;
    let before = settled(&app).await;
    let limited = timed_searches(
        &app,
        &user.access_token,
        requests_n.min(100),
        StatusCode::TOO_MANY_REQUESTS,
    )
    .await;
    let after = settled(&app).await;
    println!(
        "ratelimit-bench: GET /v1/search/users, refused ({} sequential): {}; DynamoDB requests per request: {}",
        requests_n.min(100),
        percentiles(limited),
        per_request(&before, &after, requests_n.min(100))
    );
    app.stop().await;
}
