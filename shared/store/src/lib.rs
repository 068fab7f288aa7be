//! The storage layer every service shares: configuration read and validated at cold
//! start, the AWS SDK configuration (which honours `AWS_ENDPOINT_URL`, so the same code
//! talks to moto locally), and one DynamoDB layer: [`Table`] reads, writes, batches and
//! queries; [`Write`] builds puts, updates, deletes and checks with labelled conditions;
//! [`StoreError`] says what failed in storage terms (never in HTTP terms).

use serde::Serialize;
use serde::de::DeserializeOwned;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

mod client;
mod error;
mod table;
mod write;

pub use aws_config::SdkConfig;
pub use aws_sdk_dynamodb as dynamodb;
pub use aws_sdk_dynamodb::types::AttributeValue;
pub use client::SdkClient;
pub use error::{Cause, StoreError, StoreResult};
pub use serde_dynamo;
pub use table::{Consistency, MAX_TRANSACTION_WRITES, Query, RetryPolicy, SortKeys, Table};
pub use write::Write;

pub type Item = HashMap<String, AttributeValue>;

/// A configuration problem found at cold start: the function refuses to start.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("environment variable {0} must be set")]
    Missing(&'static str),
    #[error("secret {name} could not be read: {reason}")]
    Secret { name: &'static str, reason: String },
    #[error("{name} is invalid: {reason}")]
    Invalid { name: &'static str, reason: String },
}

/// Sets up logs once per cold start, as Lambda's advanced logging controls ask: JSON when
/// `AWS_LAMBDA_LOG_FORMAT` is `JSON`, at the level of `AWS_LAMBDA_LOG_LEVEL`, else
/// `RUST_LOG` (one level: `debug`, `info`...), else `INFO`. Lambda stamps the time.
pub fn init_tracing() {
    let level = ["AWS_LAMBDA_LOG_LEVEL", "RUST_LOG"]
        .into_iter()
        .find_map(|name| std::env::var(name).ok())
        .and_then(|value| value.trim().parse::<tracing::Level>().ok())
        .unwrap_or(tracing::Level::INFO);
    let json = std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    let logs = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_target(false)
        .with_ansi(false)
        .without_time();
    // A second call (tests that start several handlers) keeps the first subscriber.
    let _ = if json {
        logs.json().try_init()
    } else {
        logs.try_init()
    };
}

/// A required environment variable.
pub fn env(name: &'static str) -> Result<String, ConfigError> {
    std::env::var(name)
        .ok()
        .filter(|v| !v.trim().is_empty())
        .ok_or(ConfigError::Missing(name))
}

/// The shared AWS configuration (region, credentials, endpoint) from the environment.
///
/// Lambda hands a function its region and its role's credentials as environment variables
/// (the devstack does the same, plus `AWS_ENDPOINT_URL`), so only those are read. The SDK's
/// full provider chain (profile files, SSO, STS web identity, container and instance
/// metadata) would add about half a megabyte of code to every binary for sources a
/// function never has. Retries, timeouts and stalled-stream protection are the SDK's
/// defaults for the latest behaviour version.
pub async fn aws_config() -> SdkConfig {
    let region = ["AWS_REGION", "AWS_DEFAULT_REGION"]
        .into_iter()
        .find_map(|name| std::env::var(name).ok().filter(|v| !v.trim().is_empty()));
    let mut config = SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .region(region.map(aws_config::Region::new))
        .credentials_provider(
            aws_credential_types::provider::SharedCredentialsProvider::new(
                aws_config::environment::EnvironmentVariableCredentialsProvider::new(),
            ),
        )
        .http_client(https_client());
    if let Ok(url) = std::env::var("AWS_ENDPOINT_URL")
        && !url.trim().is_empty()
    {
        config = config.endpoint_url(url);
    }
    config.build()
}

/// The roots every AWS endpoint's certificate chains to (Amazon Trust Services: Amazon Root
/// CA 1 to 4 and the Starfield Services G2 root that cross-signs them), compiled in.
pub const AWS_ROOTS_PEM: &str = include_str!("aws-roots.pem");

/// The SDKs' HTTPS client: rustls with ring, the crypto provider the rest of a function
/// already links (the SDK's default would add aws-lc, about a megabyte per binary).
///
/// Its trust anchors are [`AWS_ROOTS_PEM`], not the platform's store: loading that reads the
/// CA bundle and every file in the certificate directory and parses them all, at each
/// client's construction, which was most of a cold start (issue 14). The SDK's TLS context
/// takes roots only as PEM, so these five are parsed (microseconds); certificates are still
/// verified, against the roots AWS endpoints actually use.
pub fn https_client() -> aws_sdk_dynamodb::config::SharedHttpClient {
    use aws_smithy_http_client::tls;
    let roots = tls::TrustStore::empty()
        .with_native_roots(false)
        .with_pem_certificate(AWS_ROOTS_PEM.as_bytes());
    aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::Ring,
        ))
        .tls_context(
            tls::TlsContext::builder()
                .with_trust_store(roots)
                .build()
                .expect("building a TLS context cannot fail"),
        )
        .build_https()
}

/// Reads a Secrets Manager secret's string value (one `GetSecretValue`).
pub async fn secret_string(
    config: &SdkConfig,
    env_name: &'static str,
) -> Result<String, ConfigError> {
    let arn = env(env_name)?;
    let client = aws_sdk_secretsmanager::Client::new(config);
    let out = client
        .get_secret_value()
        .secret_id(&arn)
        .send()
        .await
        .map_err(|e| ConfigError::Secret {
            name: env_name,
            reason: aws_sdk_secretsmanager::error::DisplayErrorContext(e).to_string(),
        })?;
    out.secret_string.ok_or(ConfigError::Secret {
        name: env_name,
        reason: "secret has no string value".to_owned(),
    })
}

/// A value read from AWS once per execution environment, but not before init ends (issue
/// 14): [`Fetched::get`] returns it, reading it if nobody has yet, and concurrent callers
/// wait for the one read. [`Fetched::prefetch`] starts that read in the background at cold
/// start, for a value most requests need (a signing key): init does not wait for it, the
/// runtime asks for the first event meanwhile, and that event waits only for what is left
/// of the read, or not at all if it needs no value (a malformed request). A failed read
/// leaves nothing behind: the next `get` tries again, and the request that saw the failure
/// gets a 500, not the environment a failed init.
pub struct Fetched<T> {
    value: Arc<tokio::sync::OnceCell<T>>,
    read: Option<Read<T>>,
}

type Read<T> =
    Arc<dyn Fn() -> Pin<Box<dyn Future<Output = Result<T, ConfigError>> + Send>> + Send + Sync>;

impl<T> Clone for Fetched<T> {
    fn clone(&self) -> Self {
        Self {
            value: Arc::clone(&self.value),
            read: self.read.clone(),
        }
    }
}

impl<T> std::fmt::Debug for Fetched<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = if self.value.initialized() {
            "read"
        } else {
            "not read yet"
        };
        write!(f, "Fetched({state})")
    }
}

impl<T: Send + Sync + 'static> Fetched<T> {
    /// A value `read` returns when first needed.
    pub fn on_first_use<F, Fut>(read: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<T, ConfigError>> + Send + 'static,
    {
        Self {
            value: Arc::new(tokio::sync::OnceCell::new()),
            read: Some(Arc::new(move || Box::pin(read()))),
        }
    }

    /// The parsed string of the secret named by `env_name`, read when first needed. The
    /// variable itself is checked now, so a misconfigured function still fails its init.
    pub fn secret<F>(
        config: &SdkConfig,
        env_name: &'static str,
        parse: F,
    ) -> Result<Self, ConfigError>
    where
        F: Fn(&str) -> Result<T, ConfigError> + Send + Sync + 'static,
    {
        env(env_name)?;
        let config = config.clone();
        let parse = Arc::new(parse);
        Ok(Self::on_first_use(move || {
            let (config, parse) = (config.clone(), Arc::clone(&parse));
            async move { parse(&secret_string(&config, env_name).await?) }
        }))
    }

    /// A value known already (tests, and values that need no read).
    pub fn ready(value: T) -> Self {
        Self {
            value: Arc::new(tokio::sync::OnceCell::new_with(Some(value))),
            read: None,
        }
    }

    /// Starts the read now, in the background (on the current Tokio runtime); a failure
    /// is logged and left for the next `get` to retry.
    pub fn prefetch(self) -> Self {
        let fetched = self.clone();
        let read = async move {
            if let Err(error) = fetched.get().await {
                tracing::warn!(%error, "prefetch failed; the first request that needs it retries");
            }
        };
        // A plain spawn: spawning from another thread (so that an idle worker, not the init's
        // own, takes the first poll) measured no better, 1.55x to 1.87x the floor for
        // auth-login against 1.58x to 1.63x (README, cold starts).
        tokio::spawn(read);
        self
    }

    /// The value, read if this is its first use.
    pub async fn get(&self) -> Result<&T, ConfigError> {
        self.value
            .get_or_try_init(|| async {
                match &self.read {
                    Some(read) => read().await,
                    None => Err(ConfigError::Invalid {
                        name: "value",
                        reason: "neither ready nor readable".to_owned(),
                    }),
                }
            })
            .await
    }
}

/// The cursor key of a list function, read on its first use rather than at cold start
/// (issue 14): a list's first page without a cursor that fits in one page needs no key, so
/// a cold start's first request of that kind does not wait for Secrets Manager. Read once
/// per environment (a failed read is tried again by the next request).
#[derive(Debug)]
pub struct CursorKey(Fetched<shutter_core::CursorSigner>);

impl CursorKey {
    /// The key of `CURSOR_KEY_SECRET_ARN`, read when first needed. The variable itself is
    /// checked now, so a misconfigured function still fails its init.
    pub fn from_env(config: &SdkConfig) -> Result<Self, ConfigError> {
        Fetched::secret(config, "CURSOR_KEY_SECRET_ARN", |key| {
            Ok(shutter_core::CursorSigner::new(key.as_bytes().to_vec()))
        })
        .map(Self)
    }

    /// A key known already (tests).
    pub fn ready(signer: shutter_core::CursorSigner) -> Self {
        Self(Fetched::ready(signer))
    }

    /// The signer, reading the key if this is its first use.
    pub async fn signer(&self) -> Result<&shutter_core::CursorSigner, shutter_core::ApiError> {
        self.0.get().await.map_err(shutter_core::ApiError::internal)
    }
}

/// Where the next page of a query read `limit` at a time resumes: the sort key of the last
/// item when the page came back full (there may be more), `None` when it did not.
pub fn next_position(items: &[Item], limit: usize) -> Option<String> {
    (items.len() >= limit)
        .then(|| items.last().and_then(|i| string_attr(i, "sk")))
        .flatten()
        .map(str::to_owned)
}

/// The key of an item: `pk` and `sk`.
pub fn key(pk: impl Into<String>, sk: impl Into<String>) -> Item {
    HashMap::from([("pk".to_owned(), s(pk)), ("sk".to_owned(), s(sk))])
}

/// A string attribute.
pub fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

/// A number attribute.
pub fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// `value` as an item (its key is added by the caller).
pub fn to_item<T: Serialize>(value: &T) -> StoreResult<Item> {
    serde_dynamo::to_item(value).map_err(StoreError::corrupt)
}

/// A stored item as `T`.
pub fn from_item<T: DeserializeOwned>(item: Item) -> StoreResult<T> {
    serde_dynamo::from_item(item).map_err(StoreError::corrupt)
}

/// String attribute `name` of `item`, if it is one.
pub fn string_attr<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    match item.get(name) {
        Some(AttributeValue::S(v)) => Some(v),
        _ => None,
    }
}

/// Number attribute `name` of `item`, if it is one that fits `T`.
pub fn number_attr<T: std::str::FromStr>(item: &Item, name: &str) -> Option<T> {
    match item.get(name) {
        Some(AttributeValue::N(v)) => v.parse().ok(),
        _ => None,
    }
}

/// Boolean attribute `name` of `item`, false when absent.
pub fn bool_attr(item: &Item, name: &str) -> bool {
    matches!(item.get(name), Some(AttributeValue::Bool(true)))
}

/// Seconds since the epoch, for `ttl` attributes.
pub fn epoch_seconds() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_cursor_key_known_already_signs_and_verifies_without_any_read() {
        let key = CursorKey::ready(shutter_core::CursorSigner::new(b"k".to_vec()));
        let cursor = key.signer().await.unwrap().sign("scope", &7);
        let position: i32 = key
            .signer()
            .await
            .unwrap()
            .verify("scope", &cursor)
            .unwrap();
        assert_eq!(position, 7);
    }

    /// A read that takes `delay_ms`, fails `failures` times, then returns how many reads
    /// there were.
    fn counted_read(
        delay_ms: u64,
        failures: usize,
    ) -> (Fetched<usize>, Arc<std::sync::atomic::AtomicUsize>) {
        let reads = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = Arc::clone(&reads);
        let fetched = Fetched::on_first_use(move || {
            let counter = Arc::clone(&counter);
            async move {
                tokio::time::sleep(std::time::Duration::from_millis(delay_ms)).await;
                let n = counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
                if n <= failures {
                    Err(ConfigError::Missing("SECRET_THAT_FAILED"))
                } else {
                    Ok(n)
                }
            }
        });
        (fetched, reads)
    }

    #[tokio::test]
    async fn a_prefetched_value_is_read_once_however_many_wait_for_it() {
        // GIVEN a value prefetched at cold start, and three requests wanting it at once
        // (a read slow enough for them to overlap with it)
        let (fetched, reads) = counted_read(20, 0);
        let fetched = fetched.prefetch();
        let (a, b, c) = tokio::join!(fetched.get(), fetched.get(), fetched.get());
        // THEN all three got the one read's value, and it was read once
        assert_eq!((*a.unwrap(), *b.unwrap(), *c.unwrap()), (1, 1, 1));
        assert_eq!(reads.load(std::sync::atomic::Ordering::SeqCst), 1);
        assert_eq!(*fetched.get().await.unwrap(), 1);
        assert_eq!(reads.load(std::sync::atomic::Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_failed_read_is_tried_again_by_the_next_request() {
        // GIVEN a value whose first read fails (the prefetch's)
        let (fetched, reads) = counted_read(0, 1);
        let fetched = fetched.prefetch();
        while reads.load(std::sync::atomic::Ordering::SeqCst) == 0 {
            tokio::task::yield_now().await;
        }
        // WHEN a request needs it: it is read again, and kept
        assert_eq!(*fetched.get().await.unwrap(), 2);
        assert_eq!(*fetched.get().await.unwrap(), 2);
        assert_eq!(reads.load(std::sync::atomic::Ordering::SeqCst), 2);
        // A value never read says so, and a ready one needs no read
        let (unread, _) = counted_read(0, 0);
        assert_eq!(format!("{unread:?}"), "Fetched(not read yet)");
        assert_eq!(*Fetched::ready(7).get().await.unwrap(), 7);
    }

    #[test]
    fn a_cursor_key_needs_its_secrets_name_at_init() {
        // The name is checked at cold start (a misconfigured function fails its init);
        // only the read waits for the first use.
        // (No test of this crate sets the variable.)
        assert!(std::env::var_os("CURSOR_KEY_SECRET_ARN").is_none());
        let config = SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .build();
        assert!(matches!(
            CursorKey::from_env(&config),
            Err(ConfigError::Missing("CURSOR_KEY_SECRET_ARN"))
        ));
    }

    #[test]
    fn the_compiled_in_roots_are_amazons_five() {
        assert_eq!(
            AWS_ROOTS_PEM.matches("-----BEGIN CERTIFICATE-----").count(),
            5
        );
        assert_eq!(
            AWS_ROOTS_PEM.matches("-----END CERTIFICATE-----").count(),
            5
        );
    }

    #[test]
    fn a_client_builds_its_tls_connector_from_the_compiled_in_roots() {
        // Building a client builds its connector, which parses the roots (and panics on
        // one that does not parse), without reading the platform's store.
        let config = SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("eu-west-1"))
            .http_client(https_client())
            .build();
        let _ = aws_sdk_dynamodb::Client::new(&config);
    }

    #[test]
    fn missing_configuration_names_the_variable() {
        let err = env("SHUTTER_SURELY_UNSET_VARIABLE").unwrap_err();
        assert_eq!(
            err.to_string(),
            "environment variable SHUTTER_SURELY_UNSET_VARIABLE must be set"
        );
    }
}
