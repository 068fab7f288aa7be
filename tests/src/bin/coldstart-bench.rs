//! Cold starts of every function, as a new user would measure them: each release binary
//! started behind a minimal Lambda Runtime API (this file's; the devstack's own is
//! `infra/devstack/src/runtime.rs`) against the local stack, given one real event, timed
//! and killed, `--runs` times (15), medians. Beside them, in the same run and interleaved
//! with them (so a busy machine weighs on all alike): `hello-lambda`, a hello-world
//! `lambda_http` function with the same profile (the floor), and `infra/coldstart/
//! profiles-get.js`, the Node.js 20 twin of `profiles-get` (AWS SDK v3 DynamoDB client).
//!
//! ```text
//! cargo run -p shutter-e2e --bin coldstart-bench -- [--runs 15] [--no-build] [--warm 300] [--only a,b]
//! ```
//!
//! It builds the functions first (`cargo build --release` of every function package and
//! `hello-lambda`; `CARGO_BUILD_JOBS` limits it), unless `--no-build`. Per binary it
//! prints: init (spawn to its first `GET /runtime/invocation/next`), first response (spawn
//! to its response posted), peak RSS (`VmHWM` of its process just before it is killed),
//! the binary's size, and each time's ratio to the hello-world's.
//!
//! The events are real: a short story through the devstack's gateway (two users, a
//! follow, a published post, a like, a comment, reads) reaches most functions, and each
//! one's last event is what its cold starts get. A function the story did not reach gets a
//! minimal event of its trigger's kind (an HTTP request without a token, an empty batch).
//!
//! Before each cold start it waits for the machine to be idle (what the previous event set
//! off in the devstack has finished), so that no function is charged for another's work.
//!
//! `--warm N` then measures the warm path through the gateway (authorizer, Runtime API,
//! function, moto) with the release builds: N requests each of get post, feed page, like
//! and comment list, p50 and p99.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use reqwest::Method;
use serde_json::{Value, json};
use shutter_e2e::{TestApp, User, eventually};

/// One cold start's figures.
#[derive(Debug, Clone, Copy)]
struct Sample {
    init: Duration,
    first: Duration,
    rss_kb: u64,
}

/// A binary to start cold: how, and with what event.
struct Subject {
    name: String,
    program: PathBuf,
    args: Vec<String>,
    env: Vec<(String, String)>,
    /// The story's event (or the minimal one), then a minimal one of its trigger's kind.
    payloads: [Bytes; 2],
    /// The file whose size is reported (the binary; the script for Node).
    size_of: Option<PathBuf>,
    note: &'static str,
}

#[derive(Default)]
struct Timings {
    init: Option<Instant>,
    answered: Option<(Instant, String)>,
    taken: bool,
}

#[derive(Clone)]
struct Api {
    payload: Bytes,
    name: String,
    timings: Arc<Mutex<Timings>>,
    done: Arc<tokio::sync::Notify>,
}

fn lock(t: &Mutex<Timings>) -> std::sync::MutexGuard<'_, Timings> {
    t.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

async fn next(State(api): State<Api>) -> Response {
    let now = Instant::now();
    let first = {
        let mut t = lock(&api.timings);
        t.init.get_or_insert(now);
        !std::mem::replace(&mut t.taken, true)
    };
    if !first {
        // One event per cold start: the process is killed while it waits here.
        tokio::time::sleep(Duration::from_secs(600)).await;
        return StatusCode::GONE.into_response();
    }
    let mut headers = HeaderMap::new();
    let deadline = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() + 30_000)
        .unwrap_or_default();
    for (k, v) in [
        ("lambda-runtime-aws-request-id", "coldstart-1".to_owned()),
        ("lambda-runtime-deadline-ms", deadline.to_string()),
        (
            "lambda-runtime-invoked-function-arn",
            format!(
                "arn:aws:lambda:us-east-1:000000000000:function:{}",
                api.name
            ),
        ),
        (
            "lambda-runtime-trace-id",
            "Root=1-00000000-000000000000000000000000;Sampled=0".to_owned(),
        ),
        ("content-type", "application/json".to_owned()),
    ] {
        if let Ok(v) = HeaderValue::from_str(&v) {
            headers.insert(k, v);
        }
    }
    (StatusCode::OK, headers, api.payload.clone()).into_response()
}

fn outcome_of(body: &[u8]) -> String {
    let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    match &v["statusCode"] {
        Value::Null => "ok".to_owned(),
        code => code.to_string(),
    }
}

/// `at`: when the response had fully arrived, taken before the bench reads it (parsing a
/// 200 KB answer in this debug build took milliseconds that were charged to the function).
async fn answered(api: &Api, at: Instant, outcome: String) -> StatusCode {
    lock(&api.timings).answered.get_or_insert((at, outcome));
    api.done.notify_one();
    StatusCode::ACCEPTED
}

async fn response(State(api): State<Api>, body: Bytes) -> StatusCode {
    let at = Instant::now();
    let outcome = outcome_of(&body);
    answered(&api, at, outcome).await
}

async fn error(State(api): State<Api>, body: Bytes) -> StatusCode {
    let at = Instant::now();
    let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let outcome = format!("error {}", v["errorType"].as_str().unwrap_or("?"));
    answered(&api, at, outcome).await
}

async fn init_error(State(api): State<Api>, body: Bytes) -> StatusCode {
    let at = Instant::now();
    let outcome = format!("init error {}", String::from_utf8_lossy(&body));
    answered(&api, at, outcome).await
}

/// Peak resident set of a live process, in kB.
fn vm_hwm_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Starts `subject` cold once: its figures and what it answered.
async fn cold_start(subject: &Subject, payload: &Bytes) -> Result<(Sample, String), String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let api = Api {
        payload: payload.clone(),
        name: subject.name.clone(),
        timings: Arc::default(),
        done: Arc::default(),
    };
    let app = Router::new()
        .route("/2018-06-01/runtime/invocation/next", get(next))
        .route(
            "/2018-06-01/runtime/invocation/{id}/response",
            post(response),
        )
        .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
        .route("/2018-06-01/runtime/init/error", post(init_error))
        .with_state(api.clone());
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });

    let mut cmd = tokio::process::Command::new(&subject.program);
    cmd.args(&subject.args)
        .env_clear()
        .envs(subject.env.iter().map(|(k, v)| (k, v)))
        .env("AWS_LAMBDA_RUNTIME_API", addr.to_string())
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "coldstart/1")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true);
    let spawned = Instant::now();
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("{}: {e}", subject.program.display()))?;
    let pid = child.id().unwrap_or(0);
    let waited = tokio::time::timeout(Duration::from_secs(30), api.done.notified()).await;
    let rss_kb = vm_hwm_kb(pid);
    let _ = child.kill().await;
    server.abort();
    if waited.is_err() {
        return Err(format!("{}: no answer within 30 s", subject.name));
    }
    let t = lock(&api.timings);
    let (Some(init), Some((answered, outcome))) = (t.init, t.answered.clone()) else {
        return Err(format!("{}: {:?}", subject.name, t.answered));
    };
    Ok((
        Sample {
            init: init - spawned,
            first: answered - spawned,
            rss_kb,
        },
        outcome,
    ))
}

/// (busy, total) jiffies of every CPU so far, from `/proc/stat`.
fn cpu_jiffies() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let fields: Vec<u64> = stat
        .lines()
        .next()?
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal ...: idle and iowait are not busy.
    let total: u64 = fields.iter().sum();
    let idle = fields.get(3).copied().unwrap_or(0) + fields.get(4).copied().unwrap_or(0);
    Some((total - idle, total))
}

/// Waits until the machine is idle again (under 15% busy over 50 ms, for at most 3 s):
/// a real event sets off work in the devstack (streams, the outbox, consumers) that
/// would otherwise run on the two cores during the next cold start and be counted to
/// whichever function comes next.
async fn settle() {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(3) {
        let Some((busy0, total0)) = cpu_jiffies() else {
            return;
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        let Some((busy1, total1)) = cpu_jiffies() else {
            return;
        };
        let total = total1.saturating_sub(total0).max(1);
        if busy1.saturating_sub(busy0) * 100 < total * 15 {
            return;
        }
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// A minimal event of the trigger's kind, for a function the story did not reach.
fn fallback_event(events: &[(String, String, Value)]) -> Value {
    match events.first() {
        Some((_, kind, props)) if kind == "HttpApi" => {
            let method = props["Method"].as_str().unwrap_or("GET");
            let route = props["Path"].as_str().unwrap_or("/");
            let mut params = serde_json::Map::new();
            let path: Vec<String> = route
                .split('/')
                .map(
                    |seg| match seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                        Some(name) => {
                            params.insert(name.trim_end_matches('+').to_owned(), json!("x"));
                            "x".to_owned()
                        }
                        None => seg.to_owned(),
                    },
                )
                .collect();
            let path = path.join("/");
            json!({
                "version": "2.0", "routeKey": format!("{method} {route}"), "rawPath": path,
                "rawQueryString": "", "headers": {"host": "127.0.0.1"},
                "pathParameters": params,
                "requestContext": {"accountId": "000000000000", "apiId": "local",
                    "domainName": "127.0.0.1", "domainPrefix": "local",
                    "http": {"method": method, "path": path, "protocol": "HTTP/1.1",
                        "sourceIp": "127.0.0.1", "userAgent": "coldstart"},
                    "requestId": "coldstart", "routeKey": format!("{method} {route}"),
                    "stage": "$default", "time": "07/Dec/2026:00:00:00 +0000", "timeEpoch": 0},
                "isBase64Encoded": false
            })
        }
        Some((_, kind, _)) if kind == "MSK" => json!({"eventSource": "aws:kafka", "records": {}}),
        // What EventBridge sends: the schedule's input when it has one.
        Some((_, kind, props)) if kind == "Schedule" && props["Input"].is_string() => {
            serde_json::from_str(props["Input"].as_str().unwrap_or_default()).unwrap_or(Value::Null)
        }
        Some((_, kind, _)) if kind == "Schedule" => json!({
            "version": "0", "id": "coldstart", "detail-type": "Scheduled Event",
            "source": "aws.events", "account": "000000000000", "time": "2026-12-07T00:00:00Z",
            "region": "us-east-1", "resources": [], "detail": {}
        }),
        _ => json!({"Records": []}),
    }
}

/// A short story that reaches most functions through the gateway and the event
/// source mappings; what the warm path measures afterwards.
struct Story {
    viewer: User,
    post: String,
}

async fn story(app: &TestApp) -> Story {
    let author = app.user(&TestApp::unique("cs_author")).await;
    let viewer = app.user(&TestApp::unique("cs_viewer")).await;
    let wait = Duration::from_secs(60);
    let follow = format!("/v1/users/{}/follow", author.username);
    eventually("the follows service to know the author", wait, || async {
        let a = app
            .call(Method::PUT, &follow, Some(&viewer.access_token), None)
            .await;
        a.status.is_success().then_some(())
    })
    .await;
    let post = app.published_post(&author).await;
    let token = Some(viewer.access_token.as_str());
    let like = format!("/v1/posts/{post}/like");
    let comments = format!("/v1/posts/{post}/comments");
    app.call(Method::PUT, &like, token, None).await;
    let comment = app
        .call(
            Method::POST,
            &comments,
            token,
            Some(json!({"text": "nice #clouds"})),
        )
        .await;
    let comment_id = comment.body["id"].as_str().unwrap_or_default().to_owned();
    app.call(
        Method::POST,
        &format!("/v1/comments/{comment_id}/like"),
        token,
        None,
    )
    .await;
    let reads = [
        format!("/v1/posts/{post}"),
        comments.clone(),
        format!("/v1/posts/{post}/likes"),
        "/v1/profiles/me".to_owned(),
        format!("/v1/profiles/{}", author.username),
        "/v1/users/me".to_owned(),
        format!("/v1/users/{}/posts", author.username),
        format!("/v1/users/{}/followers", author.username),
        format!("/v1/users/{}/following", viewer.username),
        "/v1/follow-requests".to_owned(),
        "/v1/hashtags/test/posts".to_owned(),
        "/v1/search/users?q=cs".to_owned(),
        "/v1/search/posts?q=post".to_owned(),
        "/v1/search/hashtags?q=te".to_owned(),
        "/.well-known/jwks.json".to_owned(),
        "/openapi.json".to_owned(),
    ];
    eventually("the post in the viewer's feed", wait, || async {
        let feed = app.call(Method::GET, "/v1/feed", token, None).await;
        let items = feed.body["items"].as_array().map_or(0, Vec::len);
        (items > 0).then_some(())
    })
    .await;
    for path in &reads {
        app.call(Method::GET, path, token, None).await;
    }
    app.call(
        Method::POST,
        "/v1/auth/refresh",
        None,
        Some(json!({"refresh_token": viewer.refresh_token})),
    )
    .await;
    // The consumers get their batches (profiles' counts, search's index...).
    tokio::time::sleep(Duration::from_secs(5)).await;
    Story { viewer, post }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

async fn warm(app: &TestApp, story: &Story, n: usize) {
    let token = Some(story.viewer.access_token.as_str());
    let post = &story.post;
    let like = format!("/v1/posts/{post}/like");
    let cases: [(&str, Method, String); 4] = [
        ("get post", Method::GET, format!("/v1/posts/{post}")),
        ("feed page", Method::GET, "/v1/feed".to_owned()),
        ("like", Method::PUT, like.clone()),
        (
            "comment list",
            Method::GET,
            format!("/v1/posts/{post}/comments"),
        ),
    ];
    println!("\n### Warm path ({n} requests each, through the gateway, release builds)\n");
    println!("| request | p50 | p99 | status |");
    println!("|---|---:|---:|---|");
    for (name, method, path) in cases {
        let mut samples = Vec::with_capacity(n);
        let mut status = BTreeMap::new();
        for _ in 0..n {
            if name == "like" {
                // Every measured like is a new one.
                app.call(Method::DELETE, &like, token, None).await;
            }
            let t = Instant::now();
            let a = app.call(method.clone(), &path, token, None).await;
            samples.push(t.elapsed());
            *status.entry(a.status.as_u16()).or_insert(0) += 1;
        }
        samples.sort();
        println!(
            "| {name} `{method} {}` | {:.2} ms | {:.2} ms | {status:?} |",
            path.replace(post.as_str(), "{id}"),
            ms(percentile(&samples, 0.5)),
            ms(percentile(&samples, 0.99)),
        );
    }
}

fn build(root: &Path) -> Result<(), String> {
    let mut cmd = std::process::Command::new(std::env::var("CARGO").unwrap_or("cargo".into()));
    cmd.current_dir(root)
        .args(["build", "--release", "--bins", "-p", "hello-lambda"]);
    for dir in std::fs::read_dir(root.join("functions"))
        .map_err(|e| e.to_string())?
        .flatten()
    {
        let name = dir.file_name().to_string_lossy().into_owned();
        if dir.path().join("Cargo.toml").exists() {
            cmd.args(["-p", &format!("shutter-{name}")]);
        }
    }
    eprintln!("[coldstart] {cmd:?}");
    let status = cmd.status().map_err(|e| e.to_string())?;
    status
        .success()
        .then_some(())
        .ok_or_else(|| format!("the release build failed: {status}"))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flag = |name: &str| args.iter().position(|a| a == name);
    let value = |name: &str, default: usize| {
        flag(name)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let runs = value("--runs", 15);
    let warm_n = flag("--warm").map(|_| value("--warm", 300));
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let root = root.canonicalize().unwrap_or(root);
    if flag("--no-build").is_none() {
        build(&root)?;
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let release = target.join("release");

    // The stack runs the release builds; a function not built in release yet runs its
    // debug build (listed), so the story can run while the release build goes on.
    let template = devstack::template::Template::load(&root.join("template.yaml"))?;
    let bins = tempfile_dir()?;
    let mut debug_fallbacks = Vec::new();
    for (id, _) in template.resources_of("AWS::Serverless::Function") {
        let Some(binary) = template.resource(id)["Metadata"]["BuildProperties"]["Binary"].as_str()
        else {
            continue;
        };
        let mut source = release.join(binary);
        if !source.exists() {
            source = target.join("debug").join(binary);
            debug_fallbacks.push(binary.to_owned());
        }
        std::os::unix::fs::symlink(&source, bins.join(binary))?;
    }
    if !debug_fallbacks.is_empty() {
        eprintln!(
            "[coldstart] not built in release (the stack runs their debug builds, their cold starts are not measured): {}",
            debug_fallbacks.join(", ")
        );
    }
    let mut config = devstack::DevstackConfig::for_tests();
    config.bin_dir = bins.clone();
    let app = TestApp::spawn_with(config).await;
    eprintln!("[coldstart] the story that gives each function a real event");
    let story = story(&app).await;

    let mut subjects = Vec::new();
    let mut functions: Vec<_> = app.stack.functions().iter().collect();
    functions.sort_by(|a, b| a.0.cmp(b.0));
    let mut profiles_get = None;
    for (_, f) in functions {
        let (binary, env) = f.launch();
        let Some(file) = binary.file_name() else {
            continue;
        };
        let binary = release.join(file);
        let minimal = Bytes::from(serde_json::to_vec(&fallback_event(&f.spec.events))?);
        let real = f.last_payload();
        if file == "profiles-get" {
            profiles_get = Some((
                env.to_vec(),
                real.clone().unwrap_or_default(),
                minimal.clone(),
            ));
        }
        if !binary.exists() {
            continue;
        }
        subjects.push(Subject {
            name: file.to_string_lossy().into_owned(),
            program: binary.clone(),
            args: vec![],
            env: env.to_vec(),
            note: if real.is_none() {
                "the story did not reach it: minimal event twice"
            } else {
                ""
            },
            payloads: [real.unwrap_or_else(|| minimal.clone()), minimal],
            size_of: Some(binary.clone()),
        });
    }
    let (env, real, minimal) = profiles_get.ok_or("no profiles-get in the template")?;
    let hello = Subject {
        name: "hello-lambda (the floor)".to_owned(),
        program: release.join("hello-lambda"),
        args: vec![],
        env: env.clone(),
        payloads: [real.clone(), minimal.clone()],
        size_of: Some(release.join("hello-lambda")),
        note: "",
    };
    let script = root.join("infra/coldstart/profiles-get.js");
    let node = root.join("infra/coldstart/node_modules/@aws-sdk/client-dynamodb");
    let twin = node.exists().then(|| Subject {
        name: "profiles-get.js (Node.js 20 twin)".to_owned(),
        program: PathBuf::from("node"),
        args: vec![script.display().to_string()],
        env: env.clone(),
        payloads: [real.clone(), minimal.clone()],
        size_of: None,
        note: "",
    });
    if twin.is_none() {
        eprintln!(
            "[coldstart] no Node.js twin: run `npm ci --prefix infra/coldstart` (Node.js 20)"
        );
    }
    // `--only a,b` measures those functions (and the floor and the twin) alone.
    if let Some(only) = flag("--only").and_then(|i| args.get(i + 1)) {
        let names: Vec<&str> = only.split(',').collect();
        subjects.retain(|s| names.contains(&s.name.as_str()));
    }
    let mut all: Vec<Subject> = vec![hello];
    all.extend(twin);
    all.extend(subjects);

    eprintln!(
        "[coldstart] {} binaries x {runs} runs x 2 events (the story's, a minimal one)",
        all.len()
    );
    // [subject][event]
    let mut samples: Vec<[Vec<Sample>; 2]> = vec![Default::default(); all.len()];
    let mut outcomes: Vec<BTreeMap<String, usize>> = vec![BTreeMap::new(); all.len()];
    for run in 0..runs {
        for (i, subject) in all.iter().enumerate() {
            for (event, payload) in subject.payloads.iter().enumerate() {
                settle().await;
                match cold_start(subject, payload).await {
                    Ok((s, outcome)) => {
                        samples[i][event].push(s);
                        if event == 0 {
                            *outcomes[i].entry(outcome).or_insert(0) += 1;
                        }
                    }
                    Err(e) => {
                        *outcomes[i].entry(e).or_insert(0) += 1;
                    }
                }
            }
        }
        eprintln!("[coldstart] run {}/{runs}", run + 1);
    }

    // init: over both events (it comes before any); first responses: per event.
    let med = |i: usize| {
        let both = || samples[i].iter().flatten();
        (
            median(both().map(|s| ms(s.init)).collect()),
            median(samples[i][1].iter().map(|s| ms(s.first)).collect()),
            median(samples[i][0].iter().map(|s| ms(s.first)).collect()),
            median(both().map(|s| s.rss_kb as f64 / 1024.0).collect()),
        )
    };
    let (hello_init, hello_first, _, _) = med(0);
    println!(
        "\n### Cold starts ({runs} runs each, medians; x86_64 release, {} cores)\n",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!(
        "| binary | init | first response | ... to the story's event | peak RSS | size | init / floor | first response / floor | the story's event answered |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---|");
    let mut worst_init = (0.0_f64, String::new());
    let mut worst_first = (0.0_f64, String::new());
    for (i, subject) in all.iter().enumerate() {
        let (init, first, first_real, rss) = med(i);
        let bytes = subject
            .size_of
            .as_ref()
            .and_then(|p| std::fs::metadata(p).ok())
            .map(|m| m.len());
        let size = bytes.map_or("-".to_owned(), |b| format!("{:.2} MB", b as f64 / 1e6));
        let (ri, rf) = (init / hello_init, first / hello_first);
        let is_function = i > 0 && subject.size_of.is_some();
        if is_function && ri > worst_init.0 {
            worst_init = (ri, subject.name.clone());
        }
        if is_function && rf > worst_first.0 {
            worst_first = (rf, subject.name.clone());
        }
        let answered: Vec<String> = outcomes[i]
            .iter()
            .map(|(k, n)| format!("{k} x{n}"))
            .collect();
        let note = if subject.note.is_empty() {
            String::new()
        } else {
            format!(" ({})", subject.note)
        };
        println!(
            "| {} | {init:.1} ms | {first:.1} ms | {first_real:.1} ms | {rss:.1} MB | {size} | {ri:.2} | {rf:.2} | {}{note} |",
            subject.name,
            answered.join(", ")
        );
    }
    println!(
        "\nWorst function: init {:.2}x the floor's ({}), init + first response {:.2}x the \
         floor's ({}); the targets are 1.5x and 2x. First response: to a minimal event (an \
         HTTP request without a token, an empty batch), as the floor's; the story's event \
         adds the function's own requests to the local stack (moto is Python).",
        worst_init.0, worst_init.1, worst_first.0, worst_first.1
    );
    println!(
        "Sizes: the x86_64 release builds measured here. The 5 MB budget is for the deployed \
         arm64 builds, which `bash scripts/build-lambdas.sh` checks."
    );

    if let Some(n) = warm_n {
        warm(&app, &story, n).await;
    }
    app.stop().await;
    let _ = std::fs::remove_dir_all(&bins);
    Ok(())
}

/// A fresh directory for the stack's binaries (links to the builds).
fn tempfile_dir() -> std::io::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("shutter-coldstart-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
