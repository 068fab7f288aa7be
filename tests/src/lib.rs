//! A running Shutter for tests: one call gives a test the devstack (moto, tansu,
//! osmem-server and every function of template.yaml) and a client. Tests read as user
//! stories.
//!
//! Each file of `tests/tests` is one test binary. Its stories share one devstack
//! ([`TestApp::shared`]), started by the first story that asks and stopped when the binary
//! exits, so each story is its own `#[tokio::test]`: one that fails names itself and
//! hides no other. A story that needs a devstack to itself (other parameters, a fault it
//! injects) starts one with [`TestApp::spawn`] and stops it with [`TestApp::stop`].

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

pub use devstack::Devstack;

pub const PASSWORD: &str = "correct horse battery";

/// A 1x1 PNG.
pub const PNG: &[u8] = &[
    0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1F, 0x15, 0xC4,
    0x89, 0x00, 0x00, 0x00, 0x0A, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9C, 0x63, 0x00, 0x01, 0x00, 0x00,
    0x05, 0x00, 0x01, 0x0D, 0x0A, 0x2D, 0xB4, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4E, 0x44, 0xAE,
    0x42, 0x60, 0x82,
];

/// The system under test and an HTTP client for it.
pub struct TestApp {
    pub stack: Arc<Devstack>,
    pub http: reqwest::Client,
    /// A shared devstack's turn: its stories run one at a time, so none sees another's
    /// half-done effects (each still makes its own users and posts).
    _turn: Option<tokio::sync::MutexGuard<'static, ()>>,
    /// The runtime of a devstack started apart ([`TestApp::spawn_apart`]).
    apart: Option<Apart>,
}

/// A devstack's own runtime, on a thread that ends (and drops it) when this drops.
struct Apart {
    runtime: tokio::runtime::Handle,
    _running: tokio::sync::oneshot::Sender<()>,
}

/// An HTTP answer: status, headers, and the body as JSON (`Null` when empty or not JSON).
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

/// A registered, logged-in user.
#[derive(Debug, Clone)]
pub struct User {
    pub id: String,
    pub username: String,
    pub access_token: String,
    pub refresh_token: String,
}

const START_HINT: &str =
    "the devstack starts (are moto_server, tansu and osmem-server installed? run scripts/test.sh)";

/// The devstack every story of this test binary shares.
static SHARED: OnceLock<Arc<Devstack>> = OnceLock::new();

/// Removes the shared devstack's working directory when this process exits: a static is
/// never dropped, so a shell holding the other end of a pipe does it once the pipe closes
/// (as it does however the process ends). `DEVSTACK_KEEP_LOGS` keeps it, as for any
/// devstack.
static CLEANUP: OnceLock<std::process::ChildStdin> = OnceLock::new();

fn remove_at_exit(dir: &std::path::Path) {
    if std::env::var_os("DEVSTACK_KEEP_LOGS").is_some() {
        return;
    }
    let child = std::process::Command::new("sh")
        .args([
            "-c",
            "cat >/dev/null; rm -rf \"$0\"",
            &dir.to_string_lossy(),
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
    if let Ok(mut child) = child
        && let Some(stdin) = child.stdin.take()
    {
        let _ = CLEANUP.set(stdin);
    }
}

/// The shared devstack's configuration: the template's defaults, but for the likes
/// functions' reuse of directory answers, which the stories turn off so that a privacy
/// change or deletion the directory knows is in force at once (the window it opens is
/// the template's `LikesDirectoryCacheMillis`, unit-tested in the likes service). Benches
/// start devstacks of their own with the defaults.
fn shared_config() -> devstack::DevstackConfig {
    let mut config = devstack::DevstackConfig::for_tests();
    config
        .parameters
        .insert("LikesDirectoryCacheMillis".to_owned(), "0".to_owned());
    config
}

/// Whose turn it is on the shared devstack.
static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

impl TestApp {
    /// A devstack of its own, for a story that changes how the system runs; stop it with
    /// [`TestApp::stop`].
    pub async fn spawn() -> Self {
        Self::spawn_with(devstack::DevstackConfig::for_tests()).await
    }

    /// [`TestApp::spawn`] with a configuration of the caller's (template parameters, ...).
    pub async fn spawn_with(config: devstack::DevstackConfig) -> Self {
        let stack = Devstack::start(config).await.expect(START_HINT);
        Self {
            stack: Arc::new(stack),
            http: reqwest::Client::new(),
            _turn: None,
            apart: None,
        }
    }

    /// A devstack of the story's own whose `AdminUsernames` names a fresh account, and
    /// that account (registered and logged in: its token has the `admin` scope).
    pub async fn with_admin() -> (Self, User) {
        let admin_name = Self::unique("root");
        let mut config = devstack::DevstackConfig::for_tests();
        config
            .parameters
            .insert("AdminUsernames".to_owned(), admin_name.clone());
        let app = Self::spawn_with(config).await;
        let admin = app.user(&admin_name).await;
        (app, admin)
    }

    /// `user`'s report of a `kind` target, filed once moderation knows the target (it
    /// learns new posts, comments and users from their events: a 404 until then); the
    /// answer that was not a 404.
    pub async fn report_when_known(
        &self,
        user: &User,
        kind: &str,
        id: &str,
        reason: &str,
    ) -> Answer {
        let body = json!({"target": {"type": kind, "id": id}, "reason": reason});
        eventually(
            "moderation to know the target",
            Duration::from_secs(90),
            || async {
                let answer = self
                    .call(
                        Method::POST,
                        "/v1/reports",
                        Some(&user.access_token),
                        Some(body.clone()),
                    )
                    .await;
                (answer.status != StatusCode::NOT_FOUND).then_some(answer)
            },
        )
        .await
    }

    /// The devstack shared by every story of this test binary, for as long as this story
    /// runs (stories take turns). The first caller starts it on a runtime of its own,
    /// which lives as long as the process: each `#[tokio::test]` has its own runtime,
    /// which ends with its test. Its servers and functions stop when the process exits
    /// (each watches its standard input or the devstack's Runtime API).
    pub async fn shared() -> Self {
        let turn = TURN.lock().await;
        let stack = tokio::task::spawn_blocking(|| {
            SHARED
                .get_or_init(|| {
                    let (sent, started) = std::sync::mpsc::channel();
                    std::thread::Builder::new()
                        .name("shared-devstack".to_owned())
                        .spawn(move || {
                            let runtime = tokio::runtime::Builder::new_multi_thread()
                                .worker_threads(2)
                                .enable_all()
                                .build()
                                .expect("a runtime for the shared devstack");
                            runtime.block_on(async move {
                                let stack = Devstack::start(shared_config()).await;
                                let _ = sent.send(stack.map(Arc::new));
                                std::future::pending::<()>().await;
                            });
                        })
                        .expect("a thread for the shared devstack");
                    match started.recv() {
                        Ok(Ok(stack)) => {
                            if let Some(workdir) = stack.log_dir().parent() {
                                remove_at_exit(workdir);
                            }
                            stack
                        }
                        Ok(Err(err)) => panic!("{START_HINT}: {err}"),
                        Err(_) => panic!("{START_HINT}"),
                    }
                })
                .clone()
        })
        .await
        .expect("the shared devstack");
        Self {
            stack,
            http: reqwest::Client::new(),
            _turn: Some(turn),
            apart: None,
        }
    }

    /// Stops a devstack of this test's own; a shared one stops with the process.
    pub async fn stop(self) {
        let Ok(stack) = Arc::try_unwrap(self.stack) else {
            return;
        };
        match self.apart {
            Some(apart) => {
                let _ = apart.runtime.spawn(stack.stop()).await;
            }
            None => stack.stop().await,
        }
    }

    /// [`TestApp::spawn_with`], the devstack on a runtime of its own (two worker
    /// threads, as the devstack binary has on a two-core machine), as if it were another
    /// process: a story about the devstack stalling then sees its requests time out,
    /// instead of stalling with it.
    pub async fn spawn_apart(config: devstack::DevstackConfig) -> Self {
        let (started, stack) = tokio::sync::oneshot::channel();
        let (running, stopped) = tokio::sync::oneshot::channel::<()>();
        std::thread::Builder::new()
            .name("devstack-apart".to_owned())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .expect("a runtime for the devstack");
                let handle = runtime.handle().clone();
                runtime.block_on(async move {
                    let stack = Devstack::start(config).await;
                    let _ = started.send(stack.map(|s| (Arc::new(s), handle)));
                    let _ = stopped.await;
                });
            })
            .expect("a thread for the devstack");
        let (stack, runtime) = match stack.await {
            Ok(Ok(started)) => started,
            Ok(Err(err)) => panic!("{START_HINT}: {err}"),
            Err(_) => panic!("{START_HINT}"),
        };
        Self {
            stack,
            http: reqwest::Client::new(),
            _turn: None,
            apart: Some(Apart {
                runtime,
                _running: running,
            }),
        }
    }

    /// A username no other story of this devstack uses: `prefix` and a few letters.
    pub fn unique(prefix: &str) -> String {
        let id = shutter_core::new_id().to_ascii_lowercase();
        let tail = &id[id.len() - 6..];
        format!("{prefix}_{tail}")
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.stack.base_url())
    }

    /// Sends `body` (JSON, or nothing) with an optional bearer token.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Answer {
        let mut req = self.http.request(method, self.url(path));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        Self::answer(req.send().await.expect("request reaches the gateway")).await
    }

    /// Sends raw bytes with a content type.
    pub async fn call_raw(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        content_type: &str,
        body: Vec<u8>,
    ) -> Answer {
        let mut req = self
            .http
            .request(method, self.url(path))
            .header("content-type", content_type)
            .body(body);
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        Self::answer(req.send().await.expect("request reaches the gateway")).await
    }

    pub async fn answer(resp: reqwest::Response) -> Answer {
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp.bytes().await.unwrap_or_default();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Answer {
            status,
            headers,
            body,
        }
    }

    pub async fn register(&self, username: &str) -> Answer {
        let body = json!({"username": username, "email": format!("{username}@example.com"), "password": PASSWORD});
        self.call(Method::POST, "/v1/auth/register", None, Some(body))
            .await
    }

    pub async fn login(&self, login: &str, password: &str) -> Answer {
        self.call(
            Method::POST,
            "/v1/auth/login",
            None,
            Some(json!({"login": login, "password": password})),
        )
        .await
    }

    /// Registers and logs in `username`. Registration answers no id (it answers a taken
    /// email as a new one): the id is the access token's `sub`.
    pub async fn user(&self, username: &str) -> User {
        let registered = self.register(username).await;
        assert_eq!(
            registered.status,
            StatusCode::ACCEPTED,
            "register {username}: {:?}",
            registered.body
        );
        let tokens = self.login(username, PASSWORD).await;
        assert_eq!(
            tokens.status,
            StatusCode::OK,
            "login {username}: {:?}",
            tokens.body
        );
        User {
            id: token_subject(tokens.body["access_token"].as_str().unwrap_or_default()),
            username: username.to_owned(),
            access_token: tokens.body["access_token"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            refresh_token: tokens.body["refresh_token"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        }
    }

    /// Sends `bytes` with a pre-signed POST form (`{url, fields}`) as a browser would;
    /// the status S3 answered.
    pub async fn upload(&self, form: &Value, bytes: &[u8]) -> StatusCode {
        let mut multipart = reqwest::multipart::Form::new();
        for (k, v) in form["fields"].as_object().into_iter().flatten() {
            multipart = multipart.text(k.clone(), v.as_str().unwrap_or_default().to_owned());
        }
        multipart = multipart.part(
            "file",
            reqwest::multipart::Part::bytes(bytes.to_vec()).file_name("upload"),
        );
        self.http
            .post(form["url"].as_str().unwrap_or_default())
            .multipart(multipart)
            .send()
            .await
            .expect("S3 answers")
            .status()
    }

    /// Creates a post with one PNG, uploads it and waits until it is published; its id.
    pub async fn published_post(&self, author: &User) -> String {
        let created = self
            .call(
                Method::POST,
                "/v1/posts",
                Some(&author.access_token),
                Some(json!({"caption": "a post #test", "media": [{"content_type": "image/png", "size": PNG.len()}]})),
            )
            .await;
        assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
        let id = created.body["post"]["id"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let status = self
            .upload(&created.body["uploads"][0]["upload"], PNG)
            .await;
        assert!(status.is_success(), "S3 took the upload: {status}");
        let path = format!("/v1/posts/{id}");
        eventually(
            "the post to be published",
            Duration::from_secs(60),
            || async {
                let post = self
                    .call(Method::GET, &path, Some(&author.access_token), None)
                    .await;
                (post.body["status"] == "published").then_some(())
            },
        )
        .await;
        id
    }

    /// The events on `topic` keyed by `key`, read from the start as a consumer would
    /// (each event once by its id: publishing is at least once), until `expected`
    /// arrived and then 3 quiet seconds passed (so an extra one would show), or a minute.
    pub async fn events_keyed(&self, topic: &str, key: &str, expected: usize) -> Vec<Value> {
        use rdkafka::config::ClientConfig;
        use rdkafka::consumer::{BaseConsumer, Consumer};
        use rdkafka::message::Message;
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", self.stack.kafka_bootstrap())
            .set("group.id", format!("e2e-{}", shutter_core::new_id()))
            .set("auto.offset.reset", "earliest")
            .set("enable.auto.commit", "false")
            .create()
            .expect("a Kafka consumer");
        consumer.subscribe(&[topic]).expect("subscribed");
        let mut events = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut idle = 0;
        while Instant::now() < deadline && !(events.len() >= expected && idle >= 15) {
            match consumer.poll(Duration::from_millis(200)) {
                Some(Ok(msg)) => {
                    idle = 0;
                    if msg.key() == Some(key.as_bytes())
                        && let Some(value) = msg
                            .payload()
                            .and_then(|p| serde_json::from_slice::<Value>(p).ok())
                        && !events.iter().any(|e: &Value| e["id"] == value["id"])
                    {
                        events.push(value);
                    }
                }
                _ => idle += 1,
            }
        }
        events
    }

    /// Sends `events` to their topics as the outbox publisher would (keyed by their
    /// aggregate, as JSON): for stories that play another service's part.
    /// [`TestApp::call`] with `user`'s access token.
    pub async fn call_as(
        &self,
        user: &User,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Answer {
        self.call(method, path, Some(&user.access_token), body)
            .await
    }

    /// Produces `event` (by `actor`) twice in a row, as a redelivery would.
    pub async fn produce_twice(&self, event: shutter_events::Event, actor: &shutter_core::UserId) {
        let envelope = shutter_events::Envelope::new(event, Some(actor), "e2e-redelivered");
        self.produce(&[envelope.clone(), envelope]).await;
    }

    pub async fn produce(&self, events: &[shutter_events::Envelope]) {
        use rdkafka::config::ClientConfig;
        use rdkafka::producer::{FutureProducer, FutureRecord};
        let producer: FutureProducer = ClientConfig::new()
            .set("bootstrap.servers", self.stack.kafka_bootstrap())
            .set("compression.type", "none")
            .set("linger.ms", "5")
            .create()
            .expect("a Kafka producer");
        let payloads: Vec<String> = events
            .iter()
            .map(|e| e.to_json().expect("an event serialises"))
            .collect();
        let sends = events.iter().zip(&payloads).map(|(event, payload)| {
            producer.send(
                FutureRecord::to(event.topic().name())
                    .key(&event.aggregate_id)
                    .payload(payload),
                Duration::from_secs(30),
            )
        });
        for sent in futures::future::join_all(sends).await {
            if let Err((err, _)) = sent {
                panic!("the event reaches the broker: {err}");
            }
        }
    }

    /// A client for the local AWS (moto).
    pub async fn aws(&self) -> aws_config::SdkConfig {
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .http_client(shutter_store::https_client())
            .endpoint_url(self.stack.moto_url())
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
                "test", "test", None, None, "tests",
            ))
            .load()
            .await
    }
}

/// The `sub` claim of an access token (read, not verified: the test just received it).
pub fn token_subject(token: &str) -> String {
    use base64::Engine;
    let claims = token
        .split('.')
        .nth(1)
        .and_then(|part| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(part)
                .ok()
        })
        .and_then(|json| serde_json::from_slice::<Value>(&json).ok())
        .unwrap_or_default();
    claims["sub"].as_str().unwrap_or_default().to_owned()
}

/// Polls `check` until it yields a value or `timeout` passes. Waits for an effect, never
/// sleeps blindly.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Processes stopped (SIGSTOP) for as long as this lives: however the test ends (a failed
/// assertion included), they resume. The fault stories freeze the devstack's broker, or
/// hold a function's environments, with it.
pub struct Stopped(pub Vec<u32>);

impl Stopped {
    pub fn new(pids: Vec<u32>) -> Self {
        for pid in &pids {
            assert!(signal("STOP", *pid), "{pid} stops");
        }
        Self(pids)
    }
}

impl Drop for Stopped {
    fn drop(&mut self) {
        for pid in &self.0 {
            if !signal("CONT", *pid) {
                eprintln!("{pid} did not take SIGCONT");
            }
        }
    }
}

/// Sends signal `name` (`STOP`, `CONT`, `KILL`, ...) to `pid`; whether it was delivered.
pub fn signal(name: &str, pid: u32) -> bool {
    std::process::Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .status()
        .is_ok_and(|s| s.success())
}

/// What the bench binaries (`src/bin/*-bench.rs`) share: their arguments and the DynamoDB
/// requests the devstack's moto counted.
pub mod bench {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use crate::TestApp;

    /// Positional argument `n` as a number, or `default`.
    pub fn arg(n: usize, default: usize) -> usize {
        std::env::args()
            .nth(n)
            .and_then(|a| a.parse().ok())
            .unwrap_or(default)
    }

    /// DynamoDB requests by operation. (A count line in moto's log can run into an access
    /// log line written at the same moment: the operation is its leading letters.)
    pub fn requests(app: &TestApp) -> BTreeMap<String, u64> {
        let mut counts = BTreeMap::new();
        for (op, count) in app.stack.dynamodb_requests() {
            let op: String = op.chars().take_while(char::is_ascii_alphabetic).collect();
            *counts.entry(op).or_insert(0) += count;
        }
        counts
    }

    /// DynamoDB request counts once they stop moving (the consumers are done with the
    /// set-up).
    pub async fn settled(app: &TestApp) -> BTreeMap<String, u64> {
        let mut last = requests(app);
        loop {
            tokio::time::sleep(Duration::from_secs(2)).await;
            let now = requests(app);
            if now == last {
                return now;
            }
            last = now;
        }
    }
}
