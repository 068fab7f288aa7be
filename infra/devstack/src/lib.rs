//! Shutter's local runtime, with no Docker: everything comes from template.yaml.
//!
//! [`Devstack::start`] starts moto server, tansu and osmem-server as child processes on
//! free loopback ports, creates every secret, table, queue, bucket and topic the template
//! declares, runs each function's real binary behind the Lambda Runtime API, serves the
//! HTTP API with API Gateway's JWT authorizer, and runs the event source mappings. The CLI
//! (`devstack --port N --demo-data`) and the end-to-end tests both use it.

pub mod aws;
pub mod custom_resources;
pub mod gateway;
pub mod mappings;
pub mod provision;
pub mod runtime;
pub mod services;
pub mod template;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use mappings::Delivery;
pub use runtime::Function;
pub use runtime::{InvokeError, LogSink};
use template::{FunctionSpec, REGION, Template};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("template.yaml: {0}")]
    Template(String),
    #[error("local service: {0}")]
    Service(String),
    #[error("local AWS (moto): {0}")]
    Aws(String),
    #[error("Kafka (tansu): {0}")]
    Kafka(String),
    #[error("functions: {0}")]
    Functions(String),
}

/// How to start the stack.
#[derive(Debug, Clone)]
pub struct DevstackConfig {
    /// The SAM template to run.
    pub template: PathBuf,
    /// Where the functions' binaries are (`$CARGO_TARGET_DIR/debug`, or `DEVSTACK_BIN_DIR`).
    pub bin_dir: PathBuf,
    /// The gateway's port; 0 picks a free one.
    pub port: u16,
    /// Parameter values that beat the template's defaults and the local stand-ins.
    pub parameters: HashMap<String, String>,
    /// Where the functions' output goes.
    pub function_logs: LogSink,
    /// Print progress lines on standard error while preparing.
    pub progress: bool,
    /// Execution environments per function, at most (Lambda's concurrency).
    pub max_instances: usize,
    /// Overrides the template's `LoggingConfig.LogFormat` (`Text` reads better in a terminal).
    pub function_log_format: Option<String>,
    /// Services already running elsewhere (LocalStack, Redpanda, OpenSearch from
    /// `infra/docker-compose.yml`) to use instead of starting moto, tansu or osmem-server.
    pub external: ExternalServices,
    /// How the event source mappings deliver batches; `None` reads `DEVSTACK_DELIVERY`
    /// ([`Delivery::ENV`]) when the stack starts.
    pub delivery: Option<Delivery>,
}

/// Endpoints of services the devstack uses rather than starts; `None` starts its own.
#[derive(Debug, Clone, Default)]
pub struct ExternalServices {
    /// The AWS endpoint (`AWS_ENDPOINT_URL`), e.g. LocalStack's `http://localhost:4566`.
    pub aws: Option<String>,
    /// Kafka bootstrap servers (`KAFKA_BOOTSTRAP_SERVERS`), e.g. Redpanda's `localhost:19092`.
    pub kafka: Option<String>,
    /// The OpenSearch URL (`OPENSEARCH_URL`).
    pub opensearch: Option<String>,
}

/// The variables that point a function at its AWS endpoint, Kafka and OpenSearch, beside
/// what template.yaml gives it; `infra/docker-compose.yml` names the same ones.
pub const ENDPOINT_VARIABLES: [&str; 6] = [
    "AWS_ENDPOINT_URL",
    "AWS_REGION",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "KAFKA_BOOTSTRAP_SERVERS",
    "OPENSEARCH_URL",
];

impl DevstackConfig {
    /// For a checkout whose root is `root`: its template.yaml and the debug binaries of
    /// the shared target directory.
    pub fn for_workspace(root: &Path) -> Self {
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| root.join("target"));
        Self {
            template: root.join("template.yaml"),
            // `DEVSTACK_BIN_DIR` runs other builds, e.g. `$CARGO_TARGET_DIR/release`.
            bin_dir: std::env::var_os("DEVSTACK_BIN_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| target.join("debug")),
            port: 0,
            parameters: HashMap::new(),
            function_logs: LogSink::Stderr,
            progress: false,
            max_instances: 4,
            function_log_format: None,
            external: ExternalServices::default(),
            delivery: None,
        }
    }

    /// For the end-to-end tests: this repository, a free port, function output in files
    /// (their path is printed at start).
    pub fn for_tests() -> Self {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let root = root.canonicalize().unwrap_or(root);
        let mut config = Self {
            function_logs: LogSink::Dir(PathBuf::new()),
            ..Self::for_workspace(&root)
        };
        config.parameters.extend(
            UNLIMITED_FOR_TESTS
                .iter()
                .map(|(name, value)| ((*name).to_owned(), (*value).to_owned())),
        );
        config
    }
}

/// The rate limits and route throttles raised out of reach, as [`DevstackConfig::for_tests`]
/// sets them: suites register many users from one loopback address and post, like and
/// log in far faster than any person. A story about a limit lowers its own again.
pub const UNLIMITED_FOR_TESTS: [(&str, &str); 18] = [
    ("PostsPerHour", "1000000"),
    ("PostsPerDay", "1000000"),
    ("CommentsPerHour", "1000000"),
    ("LikesPerHour", "1000000"),
    ("FollowsPerHour", "1000000"),
    ("ReportsPerDay", "1000000"),
    ("FollowsPerDay", "1000000"),
    ("SearchesPerMinute", "1000000"),
    ("MediaBytesPerDay", "1000000000000000"),
    ("RegistrationsPerAddressPerHour", "1000000"),
    ("PasswordChecksPerAccount", "1000000"),
    ("PasswordChecksPerAddress", "1000000"),
    ("PasswordCheckWindowSeconds", "900"),
    ("PasswordCheckBackoffTiers", "1"),
    ("ApiThrottleRate", "1000000"),
    ("ApiThrottleBurst", "1000000"),
    ("AuthThrottleRate", "1000000"),
    ("AuthThrottleBurst", "1000000"),
];

/// A running local Shutter. Dropping it kills everything it started; [`Devstack::stop`]
/// does so gracefully.
pub struct Devstack {
    base_url: String,
    moto_url: String,
    kafka: String,
    opensearch: String,
    services: Vec<services::Service>,
    provisioned: provision::Provisioned,
    functions: HashMap<String, Arc<Function>>,
    stop: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
    workdir: tempfile::TempDir,
    started_in: Duration,
}

impl std::fmt::Debug for Devstack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Devstack")
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

/// Sends `request` and reads its answer as JSON; any failure as a message.
pub async fn json_answer<T: serde::de::DeserializeOwned>(
    request: reqwest::RequestBuilder,
) -> Result<T, String> {
    request
        .send()
        .await
        .map_err(|e| e.to_string())?
        .json()
        .await
        .map_err(|e| e.to_string())
}

/// SDK configuration for the local AWS.
pub async fn sdk_config(moto_url: &str) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(moto_url)
        .region(aws_config::Region::new(REGION))
        .credentials_provider(aws_credential_types::Credentials::new(
            "test", "test", None, None, "devstack",
        ))
        .load()
        .await
}

impl Devstack {
    pub async fn start(config: DevstackConfig) -> Result<Self, Error> {
        let started = Instant::now();
        let delivery = match config.delivery {
            Some(d) => d,
            None => Delivery::from_env().map_err(Error::Service)?,
        };
        let progress_on = config.progress;
        let progress = move |msg: &str| {
            if progress_on {
                eprintln!("[devstack] {msg}");
            }
        };
        let template = Template::load(&config.template)?;
        let mut workdir = tempfile::Builder::new()
            .prefix("shutter-devstack-")
            .tempdir()
            .map_err(|e| Error::Service(format!("temporary directory: {e}")))?;
        if std::env::var_os("DEVSTACK_KEEP_LOGS").is_some() {
            // For post-mortems: the logs outlive the stack.
            workdir.disable_cleanup(true);
        }
        let logs = workdir.path().join("logs");
        std::fs::create_dir_all(&logs).map_err(|e| Error::Service(e.to_string()))?;

        let function_specs_missing = missing_binaries(&template, &config.bin_dir);
        if !function_specs_missing.is_empty() {
            return Err(Error::Functions(format!(
                "no binary for {} in {}. Build them first: cargo build --workspace --bins",
                function_specs_missing.join(", "),
                config.bin_dir.display()
            )));
        }

        progress(
            "starting the local services (moto server, tansu, osmem-server) not given as external",
        );
        let external = &config.external;
        let (moto, tansu, osmem) = tokio::try_join!(
            services::start_unless(external.aws.as_deref(), || services::start_moto(&logs)),
            services::start_unless(external.kafka.as_deref(), || {
                services::start_tansu(&logs, workdir.path())
            }),
            services::start_unless(external.opensearch.as_deref(), || services::start_osmem(
                &logs
            )),
        )?;
        let (moto_url, kafka, opensearch) = (moto.0, tansu.0, osmem.0);
        let services: Vec<services::Service> =
            [moto.1, tansu.1, osmem.1].into_iter().flatten().collect();

        let listener = tokio::net::TcpListener::bind(("127.0.0.1", config.port))
            .await
            .map_err(|e| {
                Error::Service(format!("cannot listen on 127.0.0.1:{}: {e}", config.port))
            })?;
        let port = listener
            .local_addr()
            .map_err(|e| Error::Service(e.to_string()))?
            .port();
        let base_url = format!("http://127.0.0.1:{port}");

        // The gateway is the token issuer: every parameter an authorizer takes its issuer
        // from points here.
        let mut overrides = config.parameters.clone();
        for param in issuer_parameters(&template) {
            overrides.entry(param).or_insert_with(|| base_url.clone());
        }
        let moto_json = aws::MotoJson::new(&moto_url);
        let provisioned = provision::provision(&provision::Context {
            template: &template,
            moto: &moto_json,
            moto_url: &moto_url,
            kafka_bootstrap: &kafka,
            overrides: &overrides,
            progress: &progress,
        })
        .await?;

        let stop = CancellationToken::new();
        let function_logs = match &config.function_logs {
            LogSink::Dir(d) if d.as_os_str().is_empty() => {
                let dir = logs.join("functions");
                std::fs::create_dir_all(&dir).map_err(|e| Error::Service(e.to_string()))?;
                LogSink::Dir(dir)
            }
            other => other.clone(),
        };
        let mut specs = Vec::new();
        for (id, _) in template.resources_of("AWS::Serverless::Function") {
            specs.push(FunctionSpec::from_template(
                &template,
                &provisioned.resolver,
                id,
            )?);
        }
        let mut functions = HashMap::new();
        for spec in &specs {
            let mut env = function_env(spec, &moto_url, &kafka, &opensearch, &config.bin_dir);
            if let Some(format) = &config.function_log_format {
                env.push(("AWS_LAMBDA_LOG_FORMAT".into(), format.clone()));
            }
            let binary = config.bin_dir.join(&spec.binary);
            let f = Function::new(
                spec.clone(),
                binary,
                env,
                // As Lambda does, a function's reserved concurrency caps its environments
                // (more invocations wait for one, as throttled asynchronous ones are
                // retried).
                spec.reserved_concurrency.map_or(config.max_instances, |r| {
                    config
                        .max_instances
                        .min(usize::try_from(r).unwrap_or(usize::MAX))
                }),
                function_logs.clone(),
                stop.child_token(),
            );
            functions.insert(spec.name.clone(), f);
        }
        progress(&format!("starting {} functions", functions.len()));
        let warmups = functions
            .values()
            .map(|f| f.warm_up(Duration::from_secs(60)));
        let failures: Vec<String> = futures::future::join_all(warmups)
            .await
            .into_iter()
            .filter_map(Result::err)
            .collect();
        if !failures.is_empty() {
            stop.cancel();
            return Err(Error::Functions(format!(
                "{} (logs in {})",
                failures.join("; "),
                logs.display()
            )));
        }

        // As on a first deploy: custom resources run once everything they may need
        // exists, before any route or event source mapping.
        let created =
            custom_resources::create_all(&template, &provisioned.resolver, &functions, &progress)
                .await
                .map_err(|e| {
                    stop.cancel();
                    match e {
                        Error::Functions(why) => {
                            Error::Functions(format!("{why} (logs in {})", logs.display()))
                        }
                        other => other,
                    }
                })?;
        if !created.is_empty() {
            progress(&format!("created custom resources {}", created.join(", ")));
        }

        let gw = Arc::new(gateway::from_template(
            &template,
            &provisioned.resolver,
            &specs,
            functions.clone(),
        )?);
        progress(&format!("serving {} routes", gw.routes.len()));
        // Every path is a route of the template, `/openapi.json` and `/docs` included (the
        // docs function serves them, as in AWS).
        let app = axum::Router::new().fallback(gateway::handle).with_state(gw);
        let serve_stop = stop.clone();
        let mut tasks = vec![tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(serve_stop.cancelled_owned())
                .await;
        })];

        let all: Vec<Arc<Function>> = functions.values().cloned().collect();
        tasks.extend(mappings::start_all(
            &all,
            &provisioned,
            &moto_json,
            &kafka,
            &stop,
            delivery,
        )?);
        if delivery != Delivery::default() {
            progress(&format!("event source mappings deliver {delivery}"));
        }
        progress(&format!("logs in {}", logs.display()));
        Ok(Self {
            base_url,
            moto_url,
            kafka,
            opensearch,
            services,
            provisioned,
            functions,
            stop,
            tasks,
            workdir,
            started_in: started.elapsed(),
        })
    }

    /// The HTTP API, e.g. `http://127.0.0.1:8080`. It is also the tokens' issuer.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The local AWS endpoint (moto).
    pub fn moto_url(&self) -> &str {
        &self.moto_url
    }

    /// The local Kafka bootstrap server (tansu).
    pub fn kafka_bootstrap(&self) -> &str {
        &self.kafka
    }

    /// The process id of the Kafka broker the devstack started (tansu), for fault tests
    /// that stop and resume it; `None` when Kafka is external.
    pub fn broker_pid(&self) -> Option<u32> {
        self.services.iter().find(|s| s.name == "tansu")?;
        services::tansu_pid(self.workdir.path())
    }

    /// How many invocations of `function` (a logical id of the template) have ended so
    /// far, whatever their outcome: tests wait on it to know a mapping is at work.
    pub fn invocations(&self, function: &str) -> u64 {
        self.functions
            .get(function)
            .map_or(0, |f| f.completed_invocations())
    }

    /// The local OpenSearch endpoint (osmem-server).
    pub fn opensearch_url(&self) -> &str {
        &self.opensearch
    }

    /// How long [`Devstack::start`] took.
    pub fn startup_time(&self) -> Duration {
        self.started_in
    }

    /// Where the servers' and functions' logs are.
    pub fn log_dir(&self) -> PathBuf {
        self.workdir.path().join("logs")
    }

    /// The local name of a table, queue or bucket, by its logical id in the template.
    pub fn table_name(&self, logical_id: &str) -> String {
        self.physical_name(logical_id)
    }

    pub fn bucket_name(&self, logical_id: &str) -> String {
        self.physical_name(logical_id)
    }

    pub fn queue_url(&self, logical_id: &str) -> String {
        self.provisioned
            .resolver
            .attr(logical_id, "QueueUrl")
            .unwrap_or_default()
            .to_owned()
    }

    fn physical_name(&self, logical_id: &str) -> String {
        self.provisioned
            .names
            .get(logical_id)
            .cloned()
            .unwrap_or_else(|| logical_id.to_owned())
    }

    /// Invokes a function directly (`RequestResponse`), as `aws lambda invoke` would.
    pub async fn invoke(&self, function: &str, payload: Value) -> Result<Value, InvokeError> {
        let f = self
            .functions
            .get(function)
            .ok_or_else(|| InvokeError::UnknownFunction(function.to_owned()))?;
        f.invoke(&payload).await
    }

    /// Stops the pollers, the functions and the servers, and removes the working files.
    pub async fn stop(mut self) {
        self.stop.cancel();
        for task in self.tasks.drain(..) {
            let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
        }
        for service in self.services.drain(..) {
            service.stop().await;
        }
    }
}

impl Drop for Devstack {
    fn drop(&mut self) {
        self.stop.cancel();
        if std::thread::panicking() {
            // A test failed with the stack running: its logs are the post-mortem (in CI,
            // the only one), and they go with the failure's output.
            eprintln!("{}", self.log_tails(30));
        }
    }
}

impl Devstack {
    /// How many functions it runs.
    pub fn function_count(&self) -> usize {
        self.functions.len()
    }

    /// The functions it runs, by name.
    pub fn functions(&self) -> &HashMap<String, Arc<Function>> {
        &self.functions
    }

    /// DynamoDB requests served so far, by operation (`PutItem`, `TransactWriteItems`, ...),
    /// as moto counted them (in moto.err.log): the functions' and the devstack's own, not the stream
    /// polling. Benchmarks take the difference around what they measure.
    pub fn dynamodb_requests(&self) -> std::collections::BTreeMap<String, u64> {
        let text = std::fs::read_to_string(self.log_dir().join("moto.err.log")).unwrap_or_default();
        let mut counts = std::collections::BTreeMap::new();
        for op in text
            .lines()
            .filter_map(|l| l.strip_prefix("shutter-dynamodb-request "))
        {
            *counts.entry(op.trim().to_owned()).or_insert(0) += 1;
        }
        counts
    }

    /// The last `lines` lines of every non-empty log: the local services' and each
    /// function's.
    pub fn log_tails(&self, lines: usize) -> String {
        let logs = self.log_dir();
        let mut files: Vec<PathBuf> = [logs.clone(), logs.join("functions")]
            .iter()
            .flat_map(|dir| std::fs::read_dir(dir).into_iter().flatten())
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file())
            .collect();
        files.sort();
        let mut out = String::new();
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap_or_default();
            if text.trim().is_empty() {
                continue;
            }
            // Request lines (werkzeug's access log, the DynamoDB request counter) say
            // nothing a post-mortem needs.
            let all: Vec<&str> = text
                .lines()
                .filter(|l| !l.contains(" - - [") && !l.starts_with("shutter-dynamodb-request "))
                .collect();
            if all.is_empty() {
                continue;
            }
            let tail = &all[all.len().saturating_sub(lines)..];
            out.push_str(&format!(
                "----- {} (last {} lines)\n",
                file.display(),
                tail.len()
            ));
            for line in tail {
                out.push_str(line);
                out.push('\n');
            }
        }
        out
    }
}

/// Parameters that an HttpApi JWT authorizer takes its issuer from (`issuer: !Ref P`).
fn issuer_parameters(template: &Template) -> Vec<String> {
    template
        .resources_of("AWS::Serverless::HttpApi")
        .flat_map(|(_, props)| {
            props["Auth"]["Authorizers"]
                .as_object()
                .into_iter()
                .flatten()
        })
        .filter_map(|(_, a)| {
            a["JwtConfiguration"]["issuer"]["Ref"]
                .as_str()
                .map(str::to_owned)
        })
        .collect()
}

fn missing_binaries(template: &Template, bin_dir: &Path) -> Vec<String> {
    let mut missing: Vec<String> = template
        .resources_of("AWS::Serverless::Function")
        .filter_map(|(id, _)| {
            template.resource(id)["Metadata"]["BuildProperties"]["Binary"].as_str()
        })
        .filter(|bin| !bin_dir.join(bin).is_file())
        .map(str::to_owned)
        .collect();
    missing.sort();
    missing.dedup();
    missing
}

/// What Lambda sets in a function's environment, pointed at the local services, then the
/// template's variables (Globals and the function's own).
fn function_env(
    spec: &FunctionSpec,
    moto: &str,
    kafka: &str,
    opensearch: &str,
    bin_dir: &Path,
) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = Vec::new();
    let mut set = |k: &str, v: &str| env.push((k.to_owned(), v.to_owned()));
    for inherited in ["PATH", "LANG"] {
        if let Ok(v) = std::env::var(inherited) {
            set(inherited, &v);
        }
    }
    set("AWS_REGION", REGION);
    set("AWS_DEFAULT_REGION", REGION);
    set("AWS_ACCESS_KEY_ID", "test");
    set("AWS_SECRET_ACCESS_KEY", "test");
    set("AWS_ENDPOINT_URL", moto);
    set("AWS_EC2_METADATA_DISABLED", "true");
    set("KAFKA_BOOTSTRAP_SERVERS", kafka);
    set("OPENSEARCH_URL", opensearch);
    set("AWS_LAMBDA_FUNCTION_NAME", &spec.name);
    set("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST");
    set(
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
        &spec.memory_mb.to_string(),
    );
    set(
        "AWS_LAMBDA_LOG_GROUP_NAME",
        &format!("/aws/lambda/{}", spec.name),
    );
    set("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand");
    set("LAMBDA_TASK_ROOT", &bin_dir.display().to_string());
    set("_HANDLER", "bootstrap");
    set("TZ", ":UTC");
    if let Some(format) = &spec.log_format {
        set("AWS_LAMBDA_LOG_FORMAT", format);
    }
    for (k, v) in &spec.environment {
        // The local endpoints win over the template's (e.g. OPENSEARCH_URL built from
        // the OpenSearchEndpoint parameter): they are what "the cloud" is here.
        if ENDPOINT_VARIABLES.contains(&k.as_str()) {
            continue;
        }
        set(k, v);
    }
    env
}
