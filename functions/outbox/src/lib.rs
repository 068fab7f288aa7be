//! The outbox service: the functions that carry events from the services' tables to
//! Kafka, and make sure every one gets there.
//!
//! - [`publisher`] (`outbox-publisher`): reads the INSERTs of outbox items from a service
//!   table's stream, sends each event to its topic, keyed by its aggregate, in order, and
//!   marks its item published;
//! - [`sweeper`] (`outbox-sweeper`, on a schedule): publishes what is still pending after
//!   a grace period (the broker was down, a publisher died before marking), in order per
//!   aggregate;
//! - [`replay`] (`dlq-replay`, a command for operators): sends again what reached a
//!   dead-letter queue;
//! - [`topics`] (`outbox-topics`): the CloudFormation custom resource that creates the
//!   Kafka topics it is given.
//!
//! They work with one Kafka client ([`kafka`]), built once per cold start, and the
//! outbox items of every service table ([`store`]).

pub mod publisher;
pub mod replay;
pub mod store;
pub mod sweeper;
pub mod topics;

use shutter_events::SqsPoisonQueue;
use shutter_events::publisher::{KafkaPublisher, KafkaSettings, PublishError};
use shutter_store::{ConfigError, SdkConfig};

use crate::store::DynamoOutbox;
use crate::sweeper::SweepConfig;

/// Why a function cannot start: it refuses to, and Lambda reports the cold start failed.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Kafka(#[from] PublishError),
}

/// The Kafka client of the functions: MSK with IAM in AWS, the devstack's broker locally.
/// It connects on first use, so a cold start does not fail while the brokers are briefly
/// unreachable.
pub async fn kafka(aws: &SdkConfig) -> Result<KafkaPublisher, SetupError> {
    Ok(KafkaPublisher::new(
        &KafkaSettings::from_env(aws).await?,
        aws,
    )?)
}

/// What `outbox-publisher` works with: Kafka, and the tables whose items it marks.
pub struct Relay {
    pub kafka: KafkaPublisher,
    pub outbox: DynamoOutbox,
}

impl Relay {
    pub async fn from_env(aws: &SdkConfig) -> Result<Self, SetupError> {
        Ok(Self {
            kafka: kafka(aws).await?,
            outbox: DynamoOutbox::new(aws),
        })
    }
}

/// What `outbox-sweeper` works with: Kafka, the tables of `OUTBOX_TABLES`, and the
/// dead-letter queue of `EVENTS_DLQ_URL` for items that can never be published.
pub struct Sweeper {
    pub kafka: KafkaPublisher,
    pub outbox: DynamoOutbox,
    pub dlq: SqsPoisonQueue,
    pub config: SweepConfig,
}

impl Sweeper {
    pub async fn from_env(aws: &SdkConfig) -> Result<Self, SetupError> {
        Ok(Self {
            kafka: kafka(aws).await?,
            outbox: DynamoOutbox::new(aws),
            dlq: SqsPoisonQueue::from_env(aws, "outbox-sweeper")?,
            config: SweepConfig::from_env()?,
        })
    }
}

#[cfg(test)]
pub(crate) mod test_support {
    //! Fakes and builders shared by the unit tests.
    #![allow(clippy::unwrap_used)]

    use std::sync::Mutex;

    use shutter_core::UserId;
    use shutter_events::{Envelope, Event, OutboxMessage, UserEmailChanged};

    use crate::publisher::Sink;
    use crate::store::PendingItem;

    /// A sink that records what it was sent, and fails as told.
    #[derive(Default)]
    pub struct Recorder {
        sent: Mutex<Vec<String>>,
        failing: Vec<String>,
        down: bool,
    }

    impl Recorder {
        /// Fails the messages of these event ids.
        pub fn failing_on(ids: &[&str]) -> Self {
            Self {
                failing: ids.iter().map(|s| (*s).to_owned()).collect(),
                ..Self::default()
            }
        }

        /// Fails everything, as a broker that is down.
        pub fn down() -> Self {
            Self {
                down: true,
                ..Self::default()
            }
        }

        /// The event ids sent, in order.
        pub fn sent(&self) -> Vec<String> {
            self.sent.lock().unwrap().clone()
        }
    }

    impl Sink for Recorder {
        async fn send(&self, msg: &OutboxMessage) -> Result<(), String> {
            if self.down || self.failing.contains(&msg.event_id) {
                return Err("broker down".into());
            }
            self.sent.lock().unwrap().push(msg.event_id.clone());
            Ok(())
        }
    }

    /// An event of aggregate `aggregate` (a user).
    pub fn envelope(aggregate: &str) -> Envelope {
        let user = UserId::trusted(aggregate);
        Envelope::new(
            Event::UserEmailChanged(UserEmailChanged {
                user_id: user.clone(),
            }),
            Some(&user),
            "c",
        )
    }

    /// `env` as a pending item of `table`, written at `written_at`.
    pub fn pending(table: &str, env: &Envelope, written_at: i64) -> PendingItem {
        let payload = env.to_json().unwrap();
        PendingItem {
            table: table.to_owned(),
            event_id: env.id.to_string(),
            written_at,
            message: Ok(OutboxMessage::from_envelope_json(env.topic().name(), &payload).unwrap()),
            raw: payload,
        }
    }
}
