//! The local stand-ins for AWS, started as child processes on free loopback ports:
//! moto server (DynamoDB, Streams, S3, SQS, Secrets Manager), tansu (Kafka, for MSK) and
//! osmem-server (OpenSearch). Each exits when its handle drops (its standard input closes,
//! or it is killed), so a panicking test leaves nothing running.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};

use crate::Error;

/// A port nobody listens on right now.
pub fn free_port() -> Result<u16, Error> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")
        .map_err(|e| Error::Service(format!("no free port: {e}")))?;
    Ok(listener
        .local_addr()
        .map_err(|e| Error::Service(e.to_string()))?
        .port())
}

/// `external` when given (a service someone else runs), else the one `start` starts:
/// (its URL, the started service if any).
pub async fn start_unless<F, Fut>(
    external: Option<&str>,
    start: F,
) -> Result<(String, Option<Service>), Error>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<Service, Error>>,
{
    match external {
        Some(url) => Ok((url.trim_end_matches('/').to_owned(), None)),
        None => {
            let service = start().await?;
            Ok((service.url.clone(), Some(service)))
        }
    }
}

/// A started server: its process and where it listens.
#[derive(Debug)]
pub struct Service {
    pub name: &'static str,
    pub url: String,
    child: Child,
    // Every server here exits when its standard input closes: holding it keeps it alive.
    _stdin: Option<ChildStdin>,
}

impl Service {
    /// The process started: the server, or for tansu the shell watching it.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Closes its standard input (each server, or its watchdog, exits on that), then
    /// kills whatever is left.
    pub async fn stop(mut self) {
        drop(self._stdin.take());
        if tokio::time::timeout(Duration::from_secs(5), self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.start_kill();
            let _ = tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await;
        }
    }
}

fn log_file(log_dir: &Path, name: &str) -> Result<Stdio, Error> {
    let file = std::fs::File::create(log_dir.join(format!("{name}.log"))).map_err(|e| {
        Error::Service(format!(
            "cannot create {name}.log in {}: {e}",
            log_dir.display()
        ))
    })?;
    Ok(Stdio::from(file))
}

fn spawn_error(what: &str, hint: &str) -> impl FnOnce(std::io::Error) -> Error {
    let (what, hint) = (what.to_owned(), hint.to_owned());
    move |e| Error::Service(format!("cannot start {what}: {e}. {hint}"))
}

const INSTALL_HINT: &str = "Install the pinned tools with `bash scripts/dev.sh` or `bash scripts/test.sh` (scripts/tools.sh).";

async fn wait_until(
    name: &str,
    deadline: Duration,
    mut ready: impl AsyncFnMut() -> bool,
    child: &mut Child,
) -> Result<(), Error> {
    let start = Instant::now();
    loop {
        if ready().await {
            return Ok(());
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(Error::Service(format!(
                "{name} exited during start-up ({status}); see its log"
            )));
        }
        if start.elapsed() > deadline {
            return Err(Error::Service(format!(
                "{name} was not ready after {deadline:?}"
            )));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// moto server with DynamoDB transactions made atomic, exiting when its standard input
/// closes (see the script for why).
const MOTO_SERVER: &str = include_str!("moto_server.py");

/// moto server, the local AWS.
pub async fn start_moto(log_dir: &Path) -> Result<Service, Error> {
    let port = free_port()?;
    let mut child = Command::new(python())
        .args(["-c", MOTO_SERVER, &port.to_string()])
        .stdin(Stdio::piped())
        .stdout(log_file(log_dir, "moto")?)
        .stderr(log_file(log_dir, "moto.err")?)
        .kill_on_drop(true)
        .spawn()
        .map_err(spawn_error("moto server", INSTALL_HINT))?;
    let stdin = child.stdin.take();
    let url = format!("http://127.0.0.1:{port}");
    let probe = reqwest::Client::new();
    let health = format!("{url}/moto-api/data.json");
    wait_until(
        "moto server",
        Duration::from_secs(60),
        async || {
            probe
                .get(&health)
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
        },
        &mut child,
    )
    .await?;
    Ok(Service {
        name: "moto",
        url,
        child,
        _stdin: stdin,
    })
}

/// Where the shell that runs tansu writes tansu's process id, in its data directory.
const TANSU_PID_FILE: &str = "tansu.pid";

/// The process id of the tansu started in `data_dir`.
pub fn tansu_pid(data_dir: &Path) -> Option<u32> {
    std::fs::read_to_string(data_dir.join(TANSU_PID_FILE))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// tansu, the local Kafka, on its SQLite engine in `data_dir` (its in-memory engine loses
/// the rest of a batch when a consumer resumes inside it). tansu does not watch its
/// parent, so a shell runs it and stops it when its standard input closes; the shell
/// writes tansu's pid to `tansu.pid` there ([`tansu_pid`]).
pub async fn start_tansu(log_dir: &Path, data_dir: &Path) -> Result<Service, Error> {
    let port = free_port()?;
    std::fs::create_dir_all(data_dir.join("data"))
        .map_err(|e| Error::Service(format!("tansu data dir: {e}")))?;
    let listener = format!("tcp://127.0.0.1:{port}");
    let mut child = Command::new("sh")
        .args([
            "-c",
            "\"$0\" \"$@\" </dev/null & pid=$!; echo $pid >tansu.pid; cat >/dev/null; kill $pid 2>/dev/null; wait $pid",
        ])
        .arg(tansu_binary())
        .args([
            "broker",
            "--listener-url",
            &listener,
            "--advertised-listener-url",
            &listener,
        ])
        .args(["--storage-engine", "sqlite://data/tansu.db"])
        .current_dir(data_dir)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(log_file(log_dir, "tansu")?)
        .stderr(log_file(log_dir, "tansu.err")?)
        // Not killed on drop: a killed shell would leave tansu running. Dropping the
        // handle closes the shell's standard input, and the shell stops tansu.
        .spawn()
        .map_err(spawn_error("tansu", INSTALL_HINT))?;
    let stdin = child.stdin.take();
    let addr = format!("127.0.0.1:{port}");
    wait_until(
        "tansu",
        Duration::from_secs(30),
        async || tokio::net::TcpStream::connect(&addr).await.is_ok(),
        &mut child,
    )
    .await?;
    Ok(Service {
        name: "tansu",
        url: addr,
        child,
        _stdin: stdin,
    })
}

/// osmem-server, the local OpenSearch. Its first line of output is JSON naming its URL.
pub async fn start_osmem(log_dir: &Path) -> Result<Service, Error> {
    let binary = osmem_binary().await?;
    let mut child = Command::new(&binary)
        .args(["--addr", "127.0.0.1:0"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(log_file(log_dir, "osmem")?)
        .kill_on_drop(true)
        .spawn()
        .map_err(spawn_error("osmem-server", INSTALL_HINT))?;
    let stdin = child.stdin.take();
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| Error::Service("osmem-server has no stdout".into()))?;
    let mut lines = BufReader::new(stdout).lines();
    let first = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .map_err(|_| {
            Error::Service("osmem-server did not say where it listens within 30 s".into())
        })?
        .map_err(|e| Error::Service(format!("osmem-server output: {e}")))?
        .ok_or_else(|| {
            Error::Service("osmem-server exited during start-up; see osmem.log".into())
        })?;
    let url = serde_json::from_str::<serde_json::Value>(&first)
        .ok()
        .and_then(|v| {
            v["url"]
                .as_str()
                .map(|u| u.trim_end_matches('/').to_owned())
        })
        .ok_or_else(|| {
            Error::Service(format!(
                "osmem-server's first line is not JSON with a url: {first}"
            ))
        })?;
    // Keep draining its output so it never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Ok(Service {
        name: "osmem",
        url,
        child,
        _stdin: stdin,
    })
}

fn python() -> String {
    std::env::var("SHUTTER_PYTHON").unwrap_or_else(|_| "python3".to_owned())
}

/// `tansu` on PATH, else where `cargo install` puts it.
fn tansu_binary() -> PathBuf {
    if let Ok(p) = std::env::var("SHUTTER_TANSU") {
        return PathBuf::from(p);
    }
    let on_path = std::env::var_os("PATH")
        .map(|paths| {
            std::env::split_paths(&paths)
                .map(|d| d.join("tansu"))
                .find(|p| p.is_file())
        })
        .unwrap_or_default();
    on_path.unwrap_or_else(|| {
        let cargo_home = std::env::var_os("CARGO_HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cargo")
            });
        cargo_home.join("bin/tansu")
    })
}

async fn osmem_binary() -> Result<PathBuf, Error> {
    let out = Command::new(python())
        .args([
            "-c",
            "import osmem_server; print(osmem_server.resolve_binary())",
        ])
        .output()
        .await
        .map_err(spawn_error("python3", INSTALL_HINT))?;
    if !out.status.success() {
        return Err(Error::Service(format!(
            "osmem-server is not installed for python3 ({}). {INSTALL_HINT}",
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .last()
                .unwrap_or_default()
        )));
    }
    Ok(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
}
