//! Sends outbox messages to Kafka with an idempotent producer, keyed by aggregate id.
//!
//! Locally `KAFKA_BOOTSTRAP_SERVERS` points at tansu (plaintext). In AWS the brokers come
//! from the MSK cluster and the connection uses TLS with IAM auth (see `KafkaSettings`).

use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};

use crate::OutboxMessage;

/// How to reach the brokers.
#[derive(Debug, Clone)]
pub struct KafkaSettings {
    pub bootstrap_servers: String,
    /// `PLAINTEXT` locally; `SASL_SSL` on MSK.
    pub security_protocol: String,
}

impl KafkaSettings {
    /// From `KAFKA_BOOTSTRAP_SERVERS` (and optional `KAFKA_SECURITY_PROTOCOL`).
    pub fn from_env() -> Result<Self, shutter_store::ConfigError> {
        Ok(Self {
            bootstrap_servers: shutter_store::env("KAFKA_BOOTSTRAP_SERVERS")?,
            security_protocol: std::env::var("KAFKA_SECURITY_PROTOCOL")
                .unwrap_or_else(|_| "PLAINTEXT".to_owned()),
        })
    }
}

#[derive(Debug, thiserror::Error)]
#[error("kafka delivery failed: {0}")]
pub struct PublishError(#[from] rdkafka::error::KafkaError);

/// A long-lived producer: build it once per cold start.
pub struct KafkaPublisher {
    producer: FutureProducer,
}

impl std::fmt::Debug for KafkaPublisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KafkaPublisher")
    }
}

impl KafkaPublisher {
    pub fn new(settings: &KafkaSettings) -> Result<Self, PublishError> {
        let producer = ClientConfig::new()
            .set("bootstrap.servers", &settings.bootstrap_servers)
            .set("security.protocol", &settings.security_protocol)
            // Retries inside the producer must not duplicate or reorder records.
            .set("enable.idempotence", "true")
            .set("acks", "all")
            // tansu's SQLite engine cannot read snappy; lz4 works on both tansu and MSK.
            .set("compression.type", "lz4")
            .set("message.timeout.ms", "15000")
            .set("linger.ms", "5")
            .create()?;
        Ok(Self { producer })
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
