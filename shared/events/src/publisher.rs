//! Sends outbox messages to Kafka, keyed by aggregate id, with rskafka (pure Rust: no
//! librdkafka or OpenSSL in the Lambda binary).
//!
//! Locally `KAFKA_BOOTSTRAP_SERVERS` points at tansu (plaintext). In AWS it is unset and
//! the publisher asks MSK for the IAM brokers of `MSK_CLUSTER_ARN`, then connects over TLS
//! with SASL/OAUTHBEARER tokens signed with the function's IAM role.
//!
//! Delivery is at least once: a produce whose acknowledgement is lost is sent again, and
//! consumers drop the duplicate by its `event_id`. A key always maps to the same partition
//! (Kafka's own murmur2 partitioner, as Java clients and MSK Connect use), so one
//! aggregate's events stay in order.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_msk_iam_sasl_signer::generate_auth_token_from_credentials_provider;
use rskafka::BackoffConfig;
use rskafka::client::partition::{Compression, PartitionClient, UnknownTopicHandling};
use rskafka::client::{Client, ClientBuilder, SaslConfig};
use rskafka::record::Record;
use shutter_store::{ConfigError, SdkConfig};
use tokio::sync::OnceCell;

use crate::OutboxMessage;

/// How long one message may take, retries included, before the batch is failed and left
/// to Lambda's own retry.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(15);

/// How to reach the brokers.
#[derive(Debug, Clone)]
pub enum KafkaSettings {
    /// A broker list reached without auth (tansu, Redpanda).
    Plaintext { bootstrap_servers: String },
    /// MSK with IAM auth.
    MskIam { bootstrap_servers: String },
}

impl KafkaSettings {
    /// `KAFKA_BOOTSTRAP_SERVERS` when set, else the IAM brokers of `MSK_CLUSTER_ARN`.
    pub async fn from_env(aws: &SdkConfig) -> Result<Self, ConfigError> {
        if let Ok(servers) = shutter_store::env("KAFKA_BOOTSTRAP_SERVERS") {
            return Ok(Self::Plaintext {
                bootstrap_servers: servers,
            });
        }
        let arn = shutter_store::env("MSK_CLUSTER_ARN")?;
        let brokers = aws_sdk_kafka::Client::new(aws)
            .get_bootstrap_brokers()
            .cluster_arn(&arn)
            .send()
            .await
            .map_err(|e| ConfigError::Invalid {
                name: "MSK_CLUSTER_ARN",
                reason: aws_sdk_kafka::error::DisplayErrorContext(e).to_string(),
            })?;
        let servers = brokers
            .bootstrap_broker_string_sasl_iam()
            .ok_or(ConfigError::Invalid {
                name: "MSK_CLUSTER_ARN",
                reason: "the cluster has no IAM-authenticated listener".to_owned(),
            })?;
        Ok(Self::MskIam {
            bootstrap_servers: servers.to_owned(),
        })
    }

    fn bootstrap_servers(&self) -> Vec<String> {
        let (Self::Plaintext { bootstrap_servers } | Self::MskIam { bootstrap_servers }) = self;
        bootstrap_servers
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("kafka: {0}")]
    Kafka(#[from] rskafka::client::error::Error),
    #[error("kafka: topic {0} does not exist")]
    NoSuchTopic(String),
    #[error("kafka: no acknowledgement within {0:?}")]
    Timeout(Duration),
    #[error("kafka: {0}")]
    Setup(String),
}

/// A record read back from a topic by [`KafkaPublisher::fetch`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchedRecord {
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
}

/// A long-lived producer: build it once per cold start. It connects on first use, so a
/// cold start does not fail while the brokers are briefly unreachable.
pub struct KafkaPublisher {
    settings: KafkaSettings,
    aws: SdkConfig,
    client: OnceCell<Client>,
    partitions: Mutex<HashMap<String, Arc<TopicPartitions>>>,
}

/// A topic's partition clients, made once each.
struct TopicPartitions {
    clients: Vec<OnceCell<Arc<PartitionClient>>>,
}

impl std::fmt::Debug for KafkaPublisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaPublisher")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl KafkaPublisher {
    pub fn new(settings: &KafkaSettings, aws: &SdkConfig) -> Result<Self, PublishError> {
        if settings.bootstrap_servers().is_empty() {
            return Err(PublishError::Setup("no bootstrap servers".to_owned()));
        }
        Ok(Self {
            settings: settings.clone(),
            aws: aws.clone(),
            client: OnceCell::new(),
            partitions: Mutex::new(HashMap::new()),
        })
    }

    /// Sends one message and waits for every in-sync replica to acknowledge it.
    pub async fn publish(&self, msg: &OutboxMessage) -> Result<(), PublishError> {
        tokio::time::timeout(DELIVERY_TIMEOUT, self.send(msg))
            .await
            .map_err(|_| PublishError::Timeout(DELIVERY_TIMEOUT))?
    }

    async fn send(&self, msg: &OutboxMessage) -> Result<(), PublishError> {
        let partition = self.partition_for(&msg.topic, msg.key.as_bytes()).await?;
        let headers = BTreeMap::from([
            ("event_id".to_owned(), msg.event_id.as_bytes().to_vec()),
            ("event_type".to_owned(), msg.event_type.as_bytes().to_vec()),
            (
                "correlation_id".to_owned(),
                msg.correlation_id.as_bytes().to_vec(),
            ),
        ]);
        let record = Record {
            key: Some(msg.key.as_bytes().to_vec()),
            value: Some(msg.payload.as_bytes().to_vec()),
            headers,
            timestamp: chrono::Utc::now(),
        };
        partition
            .produce(vec![record], Compression::NoCompression)
            .await?;
        Ok(())
    }

    /// The records of `topic`'s `partition` from offset `first` to `last` (both included),
    /// as (offset, key, value): to replay a batch that a consumer's mapping gave up on.
    /// Records that the broker no longer keeps are simply not there.
    pub async fn fetch(
        &self,
        topic: &str,
        partition: i32,
        first: i64,
        last: i64,
    ) -> Result<Vec<FetchedRecord>, PublishError> {
        let client = self.client().await?;
        let partition = client
            .partition_client(topic, partition, UnknownTopicHandling::Error)
            .await?;
        let mut out = Vec::new();
        let mut next = first;
        while next <= last {
            let (records, _high_watermark) = tokio::time::timeout(
                DELIVERY_TIMEOUT,
                partition.fetch_records(next, 1..4_000_000, 1_000),
            )
            .await
            .map_err(|_| PublishError::Timeout(DELIVERY_TIMEOUT))??;
            let Some(after) = records.iter().map(|r| r.offset).max() else {
                break;
            };
            out.extend(
                records
                    .into_iter()
                    .filter(|r| (first..=last).contains(&r.offset))
                    .map(|r| FetchedRecord {
                        offset: r.offset,
                        key: r.record.key,
                        value: r.record.value,
                    }),
            );
            next = after + 1;
        }
        out.sort_by_key(|r| r.offset);
        out.dedup_by_key(|r| r.offset);
        Ok(out)
    }

    /// Creates a topic; `Ok(false)` when it already exists (whatever its partitions).
    pub async fn create_topic(
        &self,
        name: &str,
        partitions: i32,
        replication_factor: i16,
    ) -> Result<bool, PublishError> {
        let client = self.client().await?;
        // Looked up first: asking the controller to create a topic that exists makes
        // rskafka log the refusal as an error on every deploy (and every devstack start).
        if client.list_topics().await?.iter().any(|t| t.name == name) {
            return Ok(false);
        }
        // A topic made meanwhile by someone else still answers "already there".
        match client
            .controller_client()?
            .create_topic(name, partitions, replication_factor, 10_000)
            .await
        {
            Ok(()) => Ok(true),
            Err(rskafka::client::error::Error::ServerError {
                protocol_error: rskafka::client::error::ProtocolError::TopicAlreadyExists,
                ..
            }) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    async fn client(&self) -> Result<&Client, PublishError> {
        self.client
            .get_or_try_init(|| async {
                let mut builder = ClientBuilder::new(self.settings.bootstrap_servers())
                    .client_id("shutter-outbox-publisher")
                    .backoff_config(BackoffConfig {
                        deadline: Some(DELIVERY_TIMEOUT),
                        max_backoff: Duration::from_secs(2),
                        ..BackoffConfig::default()
                    });
                if let KafkaSettings::MskIam { .. } = self.settings {
                    builder = builder
                        .tls_config(Arc::new(tls_config()?))
                        .sasl_config(iam_sasl(&self.aws)?);
                }
                Ok(builder.build().await?)
            })
            .await
    }

    /// The partition client for the key's partition, as Kafka's default partitioner picks it.
    async fn partition_for(
        &self,
        topic: &str,
        key: &[u8],
    ) -> Result<Arc<PartitionClient>, PublishError> {
        let client = self.client().await?;
        let known = self.lock_partitions().get(topic).cloned();
        let partitions = match known {
            Some(p) => p,
            None => {
                let count = client
                    .list_topics()
                    .await?
                    .into_iter()
                    .find(|t| t.name == topic)
                    .map(|t| t.partitions.len())
                    .filter(|n| *n > 0)
                    .ok_or_else(|| PublishError::NoSuchTopic(topic.to_owned()))?;
                let made = Arc::new(TopicPartitions {
                    clients: (0..count).map(|_| OnceCell::new()).collect(),
                });
                Arc::clone(
                    self.lock_partitions()
                        .entry(topic.to_owned())
                        .or_insert(made),
                )
            }
        };
        let index = partition_of(key, partitions.clients.len());
        let cell = &partitions.clients[index];
        let partition = cell
            .get_or_try_init(|| async {
                let id = i32::try_from(index)
                    .map_err(|_| PublishError::Setup(format!("partition {index}")))?;
                let made = client
                    .partition_client(topic, id, UnknownTopicHandling::Error)
                    .await?;
                Ok::<_, PublishError>(Arc::new(made))
            })
            .await?;
        Ok(Arc::clone(partition))
    }

    fn lock_partitions(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<TopicPartitions>>> {
        // The map is only ever inserted into: a panic elsewhere cannot leave it half-made.
        self.partitions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// TLS to MSK with trust anchors compiled in (webpki-roots; MSK brokers' certificates chain
/// to Amazon's public roots) and ring, the one crypto provider in the functions' tree. Not
/// the platform's store: reading and parsing it cost milliseconds of every cold start.
fn tls_config() -> Result<rustls::ClientConfig, PublishError> {
    let roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    Ok(rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| PublishError::Setup(e.to_string()))?
    .with_root_certificates(roots)
    .with_no_client_auth())
}

/// SASL/OAUTHBEARER with MSK IAM tokens, signed afresh for each connection.
fn iam_sasl(aws: &SdkConfig) -> Result<SaslConfig, PublishError> {
    let region = aws
        .region()
        .cloned()
        .ok_or_else(|| PublishError::Setup("no AWS region".to_owned()))?;
    let provider = aws
        .credentials_provider()
        .ok_or_else(|| PublishError::Setup("no AWS credentials provider".to_owned()))?;
    Ok(SaslConfig::Oauthbearer(
        rskafka::client::OauthBearerCredentials {
            callback: Arc::new(move || {
                let region = region.clone();
                let provider = provider.clone();
                Box::pin(async move {
                    generate_auth_token_from_credentials_provider(region, provider)
                        .await
                        .map(|(token, _expires_ms)| token)
                        .map_err(Into::into)
                })
            }),
            authz_id: None,
            bearer_kvs: Vec::new(),
        },
    ))
}

/// Kafka's default partitioner for keyed records: murmur2 of the key, made positive,
/// modulo the partition count.
pub fn partition_of(key: &[u8], partitions: usize) -> usize {
    (murmur2(key) & 0x7fff_ffff) as usize % partitions
}

/// Kafka's murmur2 (`org.apache.kafka.common.utils.Utils.murmur2`).
fn murmur2(data: &[u8]) -> u32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let mut h = SEED ^ data.len() as u32;
    let mut chunks = data.chunks_exact(4);
    for chunk in &mut chunks {
        let mut k = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let tail = chunks.remainder();
    if tail.len() >= 3 {
        h ^= u32::from(tail[2]) << 16;
    }
    if tail.len() >= 2 {
        h ^= u32::from(tail[1]) << 8;
    }
    if !tail.is_empty() {
        h ^= u32::from(tail[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn murmur2_matches_kafka() {
        // The cases of Kafka's own UtilsTest.testMurmur2.
        let cases: [(&[u8], i32); 6] = [
            (b"21", -973_932_308),
            (b"foobar", -790_332_482),
            (b"a-little-bit-long-string", -985_981_536),
            (b"a-little-bit-longer-string", -1_486_304_829),
            (
                b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
                -58_897_971,
            ),
            (b"abc", 479_470_107),
        ];
        for (key, expected) in cases {
            assert_eq!(
                murmur2(key) as i32,
                expected,
                "{}",
                String::from_utf8_lossy(key)
            );
        }
    }

    #[test]
    fn a_key_always_lands_on_one_partition_within_range() {
        for n in 1..=12 {
            for key in ["user-1", "01JAAAAAAAAAAAAAAAAAAAAAAA", ""] {
                let p = partition_of(key.as_bytes(), n);
                assert!(p < n);
                assert_eq!(p, partition_of(key.as_bytes(), n));
            }
        }
    }
}
