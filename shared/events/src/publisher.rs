//! Sends outbox messages to Kafka with an idempotent producer, keyed by aggregate id.
//!
//! Locally `KAFKA_BOOTSTRAP_SERVERS` points at tansu (plaintext). In AWS it is unset and
//! the publisher asks MSK for the IAM brokers of `MSK_CLUSTER_ARN`, then connects over TLS
//! with SASL/OAUTHBEARER tokens signed with the function's IAM role.

use std::time::Duration;

use aws_msk_iam_sasl_signer::generate_auth_token_from_credentials_provider;
use rdkafka::client::OAuthToken;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, ProducerContext};
use rdkafka::{ClientConfig, ClientContext};
use shutter_store::{ConfigError, SdkConfig};

use crate::OutboxMessage;

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
}

/// Supplies IAM auth tokens to librdkafka when it asks (MSK only).
pub struct IamContext {
    aws: Option<SdkConfig>,
    runtime: tokio::runtime::Handle,
}

impl ClientContext for IamContext {
    const ENABLE_REFRESH_OAUTH_TOKEN: bool = true;

    fn generate_oauth_token(
        &self,
        _config: Option<&str>,
    ) -> Result<OAuthToken, Box<dyn std::error::Error>> {
        let aws = self.aws.clone().ok_or("IAM auth is not configured")?;
        let region = aws.region().cloned().ok_or("no AWS region")?;
        let provider = aws
            .credentials_provider()
            .ok_or("no AWS credentials provider")?;
        let runtime = self.runtime.clone();
        // librdkafka calls this from its own thread; sign on the runtime and wait.
        let (token, lifetime_ms) = std::thread::spawn(move || {
            runtime.block_on(async {
                tokio::time::timeout(
                    Duration::from_secs(10),
                    generate_auth_token_from_credentials_provider(region, provider),
                )
                .await
            })
        })
        .join()
        .map_err(|_| "token signer panicked")???;
        Ok(OAuthToken {
            token,
            principal_name: String::new(),
            lifetime_ms,
        })
    }
}

impl ProducerContext for IamContext {
    type DeliveryOpaque = ();
    fn delivery(&self, _: &rdkafka::producer::DeliveryResult<'_>, _: Self::DeliveryOpaque) {}
}

#[derive(Debug, thiserror::Error)]
#[error("kafka delivery failed: {0}")]
pub struct PublishError(#[from] rdkafka::error::KafkaError);

/// A long-lived producer: build it once per cold start.
pub struct KafkaPublisher {
    producer: FutureProducer<IamContext>,
}

impl std::fmt::Debug for KafkaPublisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KafkaPublisher")
    }
}

impl KafkaPublisher {
    pub fn new(settings: &KafkaSettings, aws: &SdkConfig) -> Result<Self, PublishError> {
        let mut config = ClientConfig::new();
        config
            // Retries inside the producer must not duplicate or reorder records.
            .set("enable.idempotence", "true")
            .set("acks", "all")
            // tansu's SQLite engine cannot read snappy; lz4 works on both tansu and MSK.
            .set("compression.type", "lz4")
            .set("message.timeout.ms", "15000")
            .set("linger.ms", "5");
        let aws = match settings {
            KafkaSettings::Plaintext { bootstrap_servers } => {
                config
                    .set("bootstrap.servers", bootstrap_servers)
                    .set("security.protocol", "PLAINTEXT");
                None
            }
            KafkaSettings::MskIam { bootstrap_servers } => {
                config
                    .set("bootstrap.servers", bootstrap_servers)
                    .set("security.protocol", "SASL_SSL")
                    .set("sasl.mechanism", "OAUTHBEARER");
                Some(aws.clone())
            }
        };
        let context = IamContext {
            aws,
            runtime: tokio::runtime::Handle::current(),
        };
        Ok(Self {
            producer: config.create_with_context(context)?,
        })
    }

    /// Sends one message and waits for the broker's acknowledgement.
    pub async fn publish(&self, msg: &OutboxMessage) -> Result<(), PublishError> {
        let headers = OwnedHeaders::new()
            .insert(Header {
                key: "event_id",
                value: Some(msg.event_id.as_bytes()),
            })
            .insert(Header {
                key: "event_type",
                value: Some(msg.event_type.as_bytes()),
            })
            .insert(Header {
                key: "correlation_id",
                value: Some(msg.correlation_id.as_bytes()),
            });
        let record = FutureRecord::to(&msg.topic)
            .key(&msg.key)
            .payload(&msg.payload)
            .headers(headers);
        self.producer
            .send(record, Duration::from_secs(15))
            .await
            .map(|_| ())
            .map_err(|(err, _)| PublishError(err))
    }
}
