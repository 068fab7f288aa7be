//! Measures the devstack: its start-up time, the latency of requests through the local
//! gateway (JWT authorizer + Lambda Runtime API + function + moto), and the event path
//! from a registration to the profile its consumer creates. Prints the figures.
//!
//! `cargo run -p devstack --bin devstack-bench [-- REQUESTS]` after
//! `cargo build --workspace --bins`. The functions are the debug binaries.

use std::time::{Duration, Instant};

use devstack::{Devstack, DevstackConfig};
use serde_json::json;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

fn report(name: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let mean = samples.iter().sum::<Duration>() / samples.len() as u32;
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "{name:<44} n={:<5} mean={:>7.2} ms  p50={:>7.2} ms  p90={:>7.2} ms  p99={:>7.2} ms",
        samples.len(),
        ms(mean),
        ms(percentile(&samples, 0.5)),
        ms(percentile(&samples, 0.9)),
        ms(percentile(&samples, 0.99))
    );
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let requests: usize = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(200);
    let started = Instant::now();
    let stack = Devstack::start(DevstackConfig::for_tests()).await?;
    println!(
        "devstack start-up (servers, resources, {} functions warm): {:.2} s",
        stack.function_count(),
        started.elapsed().as_secs_f64()
    );
    let base = stack.base_url().to_owned();
    let http = reqwest::Client::new();

    let register = |name: String| {
        let (http, base) = (http.clone(), base.clone());
        async move {
            let body = json!({"username": name, "email": format!("{name}@example.com"), "password": "a long password"});
            http.post(format!("{base}/v1/auth/register"))
                .json(&body)
                .send()
                .await
        }
    };
    register("benchuser".into()).await?.error_for_status()?;
    let login = json!({"login": "benchuser", "password": "a long password"});
    let tokens: serde_json::Value = http
        .post(format!("{base}/v1/auth/login"))
        .json(&login)
        .send()
        .await?
        .json()
        .await?;
    let token = tokens["access_token"]
        .as_str()
        .unwrap_or_default()
        .to_owned();

    // Warm both paths once so the figures are steady-state.
    http.get(format!("{base}/v1/users/me"))
        .bearer_auth(&token)
        .send()
        .await?;
    let mut me = Vec::with_capacity(requests);
    for _ in 0..requests {
        let t = Instant::now();
        let resp = http
            .get(format!("{base}/v1/users/me"))
            .bearer_auth(&token)
            .send()
            .await?;
        assert!(resp.status().is_success());
        resp.bytes().await?;
        me.push(t.elapsed());
    }
    report("GET /v1/users/me (JWT, Lambda, DynamoDB get)", me);

    let mut jwks = Vec::with_capacity(requests);
    for _ in 0..requests {
        let t = Instant::now();
        http.get(format!("{base}/.well-known/jwks.json"))
            .send()
            .await?
            .bytes()
            .await?;
        jwks.push(t.elapsed());
    }
    report("GET /.well-known/jwks.json (no auth)", jwks);

    let mut refused = Vec::with_capacity(requests);
    for _ in 0..requests {
        let t = Instant::now();
        let resp = http
            .get(format!("{base}/v1/users/me"))
            .bearer_auth("not.a.jwt")
            .send()
            .await?;
        assert_eq!(resp.status().as_u16(), 401);
        refused.push(t.elapsed());
    }
    report("GET /v1/users/me refused by the authorizer", refused);

    // Event path: register → outbox → stream → publisher → Kafka → consumer → profile.
    let mut event_path = Vec::new();
    for i in 0..10 {
        let name = format!("eventpath{i}");
        let t = Instant::now();
        register(name.clone()).await?.error_for_status()?;
        loop {
            let resp = http
                .get(format!("{base}/v1/profiles/{name}"))
                .bearer_auth(&token)
                .send()
                .await?;
            if resp.status().is_success() {
                break;
            }
            if t.elapsed() > Duration::from_secs(30) {
                return Err(format!("{name}'s profile never appeared").into());
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        event_path.push(t.elapsed());
    }
    report("register → profile created (event path)", event_path);
    stack.stop().await;
    Ok(())
}
