//! `devstack`: the whole of Shutter on loopback, with no Docker. Prints progress, then
//! `ready: http://127.0.0.1:PORT`, and runs until Ctrl-C.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Parser;
use devstack::{Devstack, DevstackConfig, LogSink};
use serde_json::json;

/// Runs template.yaml locally: moto, tansu, osmem-server, every function and the HTTP API.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Port of the HTTP API.
    #[arg(long, default_value_t = 8080)]
    port: u16,
    /// Register the demo users alice, bob and carol (password `shutter-demo-pass`); bob and
    /// carol follow alice, alice follows bob.
    #[arg(long)]
    demo_data: bool,
    /// The SAM template (default: template.yaml of the enclosing checkout).
    #[arg(long)]
    template: Option<PathBuf>,
    /// Directory of the function binaries (default: $CARGO_TARGET_DIR/debug).
    #[arg(long)]
    bin_dir: Option<PathBuf>,
    /// Write function output to files in the log directory instead of this terminal.
    #[arg(long)]
    quiet_functions: bool,
    /// Keep the functions' JSON log lines (the template's format) instead of text.
    #[arg(long)]
    json_logs: bool,
    /// Use this AWS endpoint (e.g. LocalStack, http://localhost:4566) instead of starting moto.
    #[arg(long, value_name = "URL")]
    aws_endpoint: Option<String>,
    /// Use these Kafka bootstrap servers (e.g. Redpanda, localhost:19092) instead of starting tansu.
    #[arg(long, value_name = "HOST:PORT")]
    kafka_bootstrap: Option<String>,
    /// Use this OpenSearch URL instead of starting osmem-server.
    #[arg(long, value_name = "URL")]
    opensearch_url: Option<String>,
    /// How event source mappings deliver batches: once, twice (each batch again at once),
    /// reorder (a Kafka batch's partitions in a random order), or twice,reorder. Default:
    /// $DEVSTACK_DELIVERY, else once.
    #[arg(long, value_name = "MODE", value_parser = devstack::Delivery::parse)]
    delivery: Option<devstack::Delivery>,
    /// A template parameter's value (repeatable), e.g.
    /// `--parameter RegistrationsPerAddressPerHour=1000` to register many users from
    /// this one loopback address.
    #[arg(long = "parameter", value_name = "NAME=VALUE", value_parser = parameter)]
    parameters: Vec<(String, String)>,
}

fn parameter(raw: &str) -> Result<(String, String), String> {
    raw.split_once('=')
        .filter(|(name, _)| !name.trim().is_empty())
        .map(|(name, value)| (name.trim().to_owned(), value.to_owned()))
        .ok_or_else(|| format!("{raw:?}: expected NAME=VALUE"))
}

const DEMO_USERS: [&str; 3] = ["alice", "bob", "carol"];
const DEMO_PASSWORD: &str = "shutter-demo-pass";

fn workspace_root(template: Option<&Path>) -> PathBuf {
    if let Some(t) = template.and_then(Path::parent) {
        return t.to_path_buf();
    }
    let cwd = std::env::current_dir().unwrap_or_default();
    cwd.ancestors()
        .find(|d| d.join("template.yaml").is_file())
        .map(Path::to_path_buf)
        .unwrap_or(cwd)
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("DEVSTACK_LOG")
                .unwrap_or_else(|_| "devstack=info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let root = workspace_root(args.template.as_deref());
    let mut config = DevstackConfig::for_workspace(&root);
    config.port = args.port;
    config.external = devstack::ExternalServices {
        aws: args.aws_endpoint,
        kafka: args.kafka_bootstrap,
        opensearch: args.opensearch_url,
    };
    config.progress = true;
    config.delivery = args.delivery;
    config.parameters.extend(args.parameters);
    if let Some(t) = args.template {
        config.template = t;
    }
    if let Some(b) = args.bin_dir {
        config.bin_dir = b;
    }
    if !args.json_logs {
        config.function_log_format = Some("Text".to_owned());
    }
    if args.quiet_functions {
        config.function_logs = LogSink::Dir(PathBuf::new());
    }
    let stack = match Devstack::start(config).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("[devstack] failed: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    if args.demo_data
        && let Err(e) = demo_data(stack.base_url()).await
    {
        eprintln!("[devstack] demo data: {e}");
    }
    eprintln!(
        "[devstack] started in {:.1} s; Ctrl-C stops it",
        stack.startup_time().as_secs_f64()
    );
    eprintln!(
        "[devstack] moto (AWS) {}, Kafka {}, OpenSearch {}; logs in {}",
        stack.moto_url(),
        stack.kafka_bootstrap(),
        stack.opensearch_url(),
        stack.log_dir().display()
    );
    println!("ready: {}", stack.base_url());
    wait_for_stop_signal().await;
    eprintln!("[devstack] stopping");
    stack.stop().await;
    std::process::ExitCode::SUCCESS
}

/// Ctrl-C, or a `kill` (SIGTERM/SIGHUP): either way the children are stopped, never orphaned.
async fn wait_for_stop_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut hup)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::hangup()),
    ) else {
        let _ = tokio::signal::ctrl_c().await;
        return;
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
        _ = hup.recv() => {}
    }
}

/// Registers the demo users through the API, as a client would, and waits for their
/// profiles (made by the registration event's consumer).
async fn demo_data(base: &str) -> Result<(), String> {
    let http = reqwest::Client::new();
    for user in DEMO_USERS {
        let body = json!({"username": user, "email": format!("{user}@example.com"), "password": DEMO_PASSWORD});
        let resp = http
            .post(format!("{base}/v1/auth/register"))
            .json(&body)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if !resp.status().is_success() {
            return Err(format!(
                "register {user}: {} {}",
                resp.status(),
                resp.text().await.unwrap_or_default()
            ));
        }
    }
    let token = demo_login(&http, base, DEMO_USERS[0]).await?;
    for user in DEMO_USERS {
        let profile = http
            .get(format!("{base}/v1/profiles/{user}"))
            .bearer_auth(&token);
        retry_until_ok(profile, || {
            format!("{user}'s profile did not appear within 30 s")
        })
        .await?;
    }
    demo_follows(&http, base).await?;
    eprintln!(
        "[devstack] demo users {} (password {DEMO_PASSWORD}); bob and carol follow alice, alice follows bob",
        DEMO_USERS.join(", ")
    );
    Ok(())
}

/// A small follow graph, so follower counts and feeds have something to show. The
/// follows service learns of users from their registration events: a follow is retried
/// while it answers 404.
async fn demo_follows(http: &reqwest::Client, base: &str) -> Result<(), String> {
    for (who, whom) in [("bob", "alice"), ("carol", "alice"), ("alice", "bob")] {
        let token = demo_login(http, base, who).await?;
        let follow = http
            .put(format!("{base}/v1/users/{whom}/follow"))
            .bearer_auth(&token);
        retry_until_ok(follow, || {
            format!("{who} could not follow {whom} within 30 s")
        })
        .await?;
    }
    Ok(())
}

/// A demo user's access token.
async fn demo_login(http: &reqwest::Client, base: &str, user: &str) -> Result<String, String> {
    let tokens: serde_json::Value = devstack::json_answer(
        http.post(format!("{base}/v1/auth/login"))
            .json(&json!({"login": user, "password": DEMO_PASSWORD})),
    )
    .await?;
    tokens["access_token"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("login {user}: no access token in {tokens}"))
}

/// Sends the request every 100 ms until it succeeds, for up to 30 s: the services learn
/// of new users from events, so the first tries may answer 404.
async fn retry_until_ok(
    request: reqwest::RequestBuilder,
    timed_out: impl Fn() -> String,
) -> Result<(), String> {
    for _ in 0..300 {
        let attempt = request.try_clone().ok_or("the request cannot be retried")?;
        if attempt
            .send()
            .await
            .map_err(|e| e.to_string())?
            .status()
            .is_success()
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(timed_out())
}
