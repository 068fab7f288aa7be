//! The Lambda Runtime API, so each function's real binary runs exactly as on Lambda: it
//! long-polls `/runtime/invocation/next`, handles the event with `lambda_runtime`, and
//! posts a response or an error. Each execution environment is a child process with its
//! own runtime endpoint; a function scales out to more environments when every one is
//! busy, an environment that overruns its timeout is killed, and one that dies fails its
//! invocation as Lambda reports it (`Runtime.ExitError`).

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::{Mutex, mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::template::{ACCOUNT, FunctionSpec, REGION};

/// Why an invocation did not return a result.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum InvokeError {
    #[error("{error_type}: {error_message}")]
    Function {
        error_type: String,
        error_message: String,
    },
    #[error("Task timed out after {0} seconds")]
    Timeout(u64),
    #[error("Runtime.ExitError: {0}")]
    Exited(String),
    #[error("no function named {0} in template.yaml")]
    UnknownFunction(String),
    #[error("the devstack is stopping")]
    Stopped,
}

type Reply = oneshot::Sender<Result<Value, InvokeError>>;

struct Pending {
    id: String,
    payload: Bytes,
    reply: Reply,
}

/// Where function output goes.
#[derive(Debug, Clone)]
pub enum LogSink {
    /// Each line on the devstack's standard error, prefixed with the function's name.
    Stderr,
    /// One file per function in this directory.
    Dir(PathBuf),
}

/// One function of the template and its execution environments.
pub struct Function {
    pub spec: FunctionSpec,
    binary: PathBuf,
    env: Vec<(String, String)>,
    queue: mpsc::UnboundedSender<Pending>,
    next: Mutex<mpsc::UnboundedReceiver<Pending>>,
    inflight: std::sync::Mutex<HashMap<String, (usize, Reply)>>,
    instances: std::sync::Mutex<HashMap<usize, CancellationToken>>,
    idle: AtomicUsize,
    counter: AtomicUsize,
    completed: AtomicU64,
    /// The last event an environment took: what `coldstart-bench` replays to cold starts.
    last_payload: std::sync::Mutex<Option<Bytes>>,
    max_instances: usize,
    logs: LogSink,
    stop: CancellationToken,
}

impl std::fmt::Debug for Function {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Function({})", self.spec.name)
    }
}

impl Function {
    pub fn new(
        spec: FunctionSpec,
        binary: PathBuf,
        env: Vec<(String, String)>,
        max_instances: usize,
        logs: LogSink,
        stop: CancellationToken,
    ) -> Arc<Self> {
        let (queue, next) = mpsc::unbounded_channel();
        Arc::new(Self {
            spec,
            binary,
            env,
            queue,
            next: Mutex::new(next),
            inflight: Default::default(),
            instances: Default::default(),
            idle: AtomicUsize::new(0),
            counter: AtomicUsize::new(0),
            completed: AtomicU64::new(0),
            last_payload: Default::default(),
            max_instances: max_instances.max(1),
            logs,
            stop,
        })
    }

    /// Invocations that ended so far, whatever their outcome.
    pub fn completed_invocations(&self) -> u64 {
        self.completed.load(Ordering::SeqCst)
    }

    /// The binary and the environment each execution environment starts with (without
    /// `AWS_LAMBDA_RUNTIME_API`), for tools that start it themselves (`coldstart-bench`).
    pub fn launch(&self) -> (&std::path::Path, &[(String, String)]) {
        (&self.binary, &self.env)
    }

    /// The event the function was last given, if any.
    pub fn last_payload(&self) -> Option<Bytes> {
        self.last_payload.lock().ok().and_then(|p| p.clone())
    }

    fn instance_count(&self) -> usize {
        self.instances.lock().map(|i| i.len()).unwrap_or(0)
    }

    /// Starts one environment and waits until it asks for its first event (its init
    /// finished), so configuration errors show at start-up, not on the first request.
    pub async fn warm_up(self: &Arc<Self>, within: Duration) -> Result<(), String> {
        self.spawn_instance().await?;
        let start = std::time::Instant::now();
        while self.idle.load(Ordering::SeqCst) == 0 {
            if self.instance_count() == 0 {
                return Err(format!(
                    "{} exited during its init; see its log",
                    self.spec.name
                ));
            }
            if start.elapsed() > within {
                return Err(format!(
                    "{} did not finish its init within {within:?}",
                    self.spec.name
                ));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(())
    }

    /// Runs one invocation (`RequestResponse`) and returns the function's result.
    pub async fn invoke(self: &Arc<Self>, payload: &Value) -> Result<Value, InvokeError> {
        if self.stop.is_cancelled() {
            return Err(InvokeError::Stopped);
        }
        let id = ulid::Ulid::new().to_string().to_lowercase();
        let (reply, answer) = oneshot::channel();
        let payload = Bytes::from(serde_json::to_vec(payload).unwrap_or_default());
        self.queue
            .send(Pending {
                id: id.clone(),
                payload,
                reply,
            })
            .map_err(|_| InvokeError::Stopped)?;
        if self.idle.load(Ordering::SeqCst) == 0
            && self.instance_count() < self.max_instances
            && let Err(e) = self.spawn_instance().await
        {
            tracing::warn!("{e}");
        }
        // The function's timeout runs from when an environment takes the event (see
        // `next`); this bound only stops a caller waiting forever for a free environment.
        let limit = Duration::from_secs(self.spec.timeout_s) + Duration::from_secs(60);
        let result = match tokio::time::timeout(limit, answer).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(InvokeError::Stopped),
            Err(_) => Err(InvokeError::Timeout(self.spec.timeout_s)),
        };
        self.completed.fetch_add(1, Ordering::SeqCst);
        result
    }

    /// Cuts an invocation off at the function's timeout: the caller gets the timeout and
    /// the environment is killed, as Lambda does.
    fn start_deadline(self: &Arc<Self>, id: String) {
        let function = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(function.spec.timeout_s)).await;
            let expired = function
                .inflight
                .lock()
                .ok()
                .and_then(|mut m| m.remove(&id));
            if let Some((instance, reply)) = expired {
                tracing::warn!(
                    "{}: task timed out after {} seconds",
                    function.spec.name,
                    function.spec.timeout_s
                );
                let _ = reply.send(Err(InvokeError::Timeout(function.spec.timeout_s)));
                function.kill_instance(instance);
            }
        });
    }

    fn kill_instance(&self, instance: usize) {
        if let Some(token) = self
            .instances
            .lock()
            .ok()
            .and_then(|m| m.get(&instance).cloned())
        {
            token.cancel();
        }
    }

    async fn spawn_instance(self: &Arc<Self>) -> Result<(), String> {
        let instance = self.counter.fetch_add(1, Ordering::SeqCst);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| format!("{}: no port for the runtime API: {e}", self.spec.name))?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        let state = Env {
            function: self.clone(),
            instance,
        };
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route(
                "/2018-06-01/runtime/invocation/{id}/response",
                post(response),
            )
            .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(state);
        let token = self.stop.child_token();
        let server_token = token.clone();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(server_token.cancelled_owned())
                .await;
        });

        let mut cmd = tokio::process::Command::new(&self.binary);
        cmd.env_clear()
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .env("AWS_LAMBDA_RUNTIME_API", addr.to_string())
            .env("AWS_LAMBDA_LOG_STREAM_NAME", format!("local/{instance}"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        // Registered before the process exists, so that its first `next` finds it alive.
        if let Ok(mut m) = self.instances.lock() {
            m.insert(instance, token.clone());
        }
        let mut child = cmd.spawn().map_err(|e| {
            token.cancel();
            if let Ok(mut m) = self.instances.lock() {
                m.remove(&instance);
            }
            format!(
                "cannot start {} ({}): {e}. Build the functions first: cargo build --workspace --bins",
                self.spec.name,
                self.binary.display()
            )
        })?;
        self.forward_logs(child.stdout.take(), child.stderr.take())
            .await;
        let function = self.clone();
        tokio::spawn(async move {
            let status = tokio::select! {
                status = child.wait() => status.map(|s| s.to_string()).unwrap_or_else(|e| e.to_string()),
                _ = token.cancelled() => {
                    let _ = child.kill().await;
                    "killed".to_owned()
                }
            };
            token.cancel();
            if let Ok(mut m) = function.instances.lock() {
                m.remove(&instance);
            }
            // Whatever it was running is lost, as when a Lambda environment dies.
            let orphans: Vec<Reply> = function
                .inflight
                .lock()
                .map(|mut m| {
                    let ids: Vec<String> = m
                        .iter()
                        .filter(|(_, (i, _))| *i == instance)
                        .map(|(id, _)| id.clone())
                        .collect();
                    ids.into_iter()
                        .filter_map(|id| m.remove(&id))
                        .map(|(_, r)| r)
                        .collect()
                })
                .unwrap_or_default();
            for reply in orphans {
                let _ = reply.send(Err(InvokeError::Exited(format!(
                    "{} exited ({status})",
                    function.spec.name
                ))));
            }
            if !function.stop.is_cancelled() && status != "killed" {
                tracing::warn!(
                    "{} environment {instance} exited: {status}",
                    function.spec.name
                );
            }
        });
        Ok(())
    }

    async fn forward_logs(
        &self,
        stdout: Option<tokio::process::ChildStdout>,
        stderr: Option<tokio::process::ChildStderr>,
    ) {
        let name = self.spec.name.clone();
        let file = match &self.logs {
            LogSink::Stderr => None,
            LogSink::Dir(dir) => tokio::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(dir.join(format!("{name}.log")))
                .await
                .ok()
                .map(|f| Arc::new(Mutex::new(f))),
        };
        let pipe = |reader: Box<dyn tokio::io::AsyncRead + Unpin + Send>| {
            let (name, file) = (name.clone(), file.clone());
            tokio::spawn(async move {
                let mut lines = BufReader::new(reader).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    match &file {
                        Some(f) => {
                            let mut f = f.lock().await;
                            let _ = f.write_all(format!("{line}\n").as_bytes()).await;
                        }
                        None => eprintln!("[{name}] {line}"),
                    }
                }
            });
        };
        if let Some(out) = stdout {
            pipe(Box::new(out));
        }
        if let Some(err) = stderr {
            pipe(Box::new(err));
        }
    }
}

#[derive(Clone)]
struct Env {
    function: Arc<Function>,
    instance: usize,
}

fn now_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0)
}

/// Counts an environment as idle while it waits in `next`, however the wait ends: an
/// environment that dies while waiting must stop counting, or `invoke` would wait for it
/// instead of starting another (and after a kill of every environment, nothing would run).
struct Idle<'a>(&'a AtomicUsize);

impl<'a> Idle<'a> {
    fn new(count: &'a AtomicUsize) -> Self {
        count.fetch_add(1, Ordering::SeqCst);
        Self(count)
    }
}

impl Drop for Idle<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn next(State(env): State<Env>) -> Response {
    let f = &env.function;
    // Cancelled when the environment's process exits: a dead environment takes no event
    // (it would be lost with it until the function's timeout).
    let Some(alive) = f
        .instances
        .lock()
        .ok()
        .and_then(|m| m.get(&env.instance).cloned())
    else {
        return StatusCode::GONE.into_response();
    };
    let pending = {
        let _idle = Idle::new(&f.idle);
        let mut rx = tokio::select! {
            biased;
            () = alive.cancelled() => return StatusCode::GONE.into_response(),
            rx = f.next.lock() => rx,
        };
        loop {
            tokio::select! {
                biased;
                () = alive.cancelled() => break None,
                // (recv is cancel safe: an event not taken stays queued for another)
                received = rx.recv() => match received {
                    // The caller gave up (timed out) before any environment took it.
                    Some(p) if p.reply.is_closed() => continue,
                    other => break other,
                },
            }
        }
    };
    let Some(pending) = pending else {
        return StatusCode::GONE.into_response();
    };
    if let Ok(mut m) = f.inflight.lock() {
        m.insert(pending.id.clone(), (env.instance, pending.reply));
    }
    if let Ok(mut last) = f.last_payload.lock() {
        *last = Some(pending.payload.clone());
    }
    f.start_deadline(pending.id.clone());
    let deadline = now_ms() + u128::from(f.spec.timeout_s) * 1000;
    let mut headers = HeaderMap::new();
    let mut set = |k: &'static str, v: String| {
        if let Ok(v) = HeaderValue::from_str(&v) {
            headers.insert(k, v);
        }
    };
    set("lambda-runtime-aws-request-id", pending.id.clone());
    set("lambda-runtime-deadline-ms", deadline.to_string());
    set(
        "lambda-runtime-invoked-function-arn",
        format!("arn:aws:lambda:{REGION}:{ACCOUNT}:function:{}", f.spec.name),
    );
    set(
        "lambda-runtime-trace-id",
        format!(
            "Root=1-{:08x}-{};Sampled=0",
            now_ms() / 1000,
            &pending.id[..24.min(pending.id.len())]
        ),
    );
    set("content-type", "application/json".to_owned());
    (StatusCode::OK, headers, pending.payload).into_response()
}

fn take(env: &Env, id: &str) -> Option<Reply> {
    env.function
        .inflight
        .lock()
        .ok()
        .and_then(|mut m| m.remove(id))
        .map(|(_, r)| r)
}

async fn response(State(env): State<Env>, Path(id): Path<String>, body: Bytes) -> StatusCode {
    let Some(reply) = take(&env, &id) else {
        return StatusCode::NOT_FOUND;
    };
    let value = if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&body)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()))
    };
    let _ = reply.send(Ok(value));
    StatusCode::ACCEPTED
}

async fn error(State(env): State<Env>, Path(id): Path<String>, body: Bytes) -> StatusCode {
    let Some(reply) = take(&env, &id) else {
        return StatusCode::NOT_FOUND;
    };
    let parsed: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let _ = reply.send(Err(InvokeError::Function {
        error_type: parsed["errorType"]
            .as_str()
            .unwrap_or("Unhandled")
            .to_owned(),
        error_message: parsed["errorMessage"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    }));
    StatusCode::ACCEPTED
}

async fn init_error(State(env): State<Env>, body: Bytes) -> StatusCode {
    tracing::error!(
        "{} failed its init: {}",
        env.function.spec.name,
        String::from_utf8_lossy(&body)
    );
    env.function.kill_instance(env.instance);
    StatusCode::ACCEPTED
}
