//! The outbox service: the two functions that carry events from the services' tables to
//! Kafka.
//!
//! - [`publisher`] (`outbox-publisher`): reads the INSERTs of outbox items from a service
//!   table's stream and sends each event to its topic, keyed by its aggregate, in order;
//! - [`topics`] (`outbox-topics`): the CloudFormation custom resource that creates the
//!   Kafka topics it is given.
//!
//! Both work with one Kafka client ([`kafka`]), built once per cold start, and run on the
//! Lambda runtime through `shutter_events::run_function`.

pub mod publisher;
pub mod topics;

use shutter_events::publisher::{KafkaPublisher, KafkaSettings, PublishError};
use shutter_store::{ConfigError, SdkConfig};

/// Why a function cannot start: it refuses to, and Lambda reports the cold start failed.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Kafka(#[from] PublishError),
}

/// The Kafka client of both functions: MSK with IAM in AWS, the devstack's broker
/// locally. It connects on first use, so a cold start does not fail while the brokers
/// are briefly unreachable.
pub async fn kafka(aws: &SdkConfig) -> Result<KafkaPublisher, SetupError> {
    Ok(KafkaPublisher::new(
        &KafkaSettings::from_env(aws).await?,
        aws,
    )?)
}
