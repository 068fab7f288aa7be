//! Domain events on the wire: the catalogue's typed events ([`Event`], [`Envelope`]),
//! written to an outbox item in the same DynamoDB transaction as the state change they
//! report ([`outbox`]), published to Kafka from the table's stream (`publisher`), and
//! decoded from the MSK events that consumers receive ([`consumer`]); work that grows with
//! data goes on in bounded chunks through a service's own SQS queue ([`work`]).

pub mod consumer;
pub mod outbox;
#[cfg(feature = "publisher")]
pub mod publisher;
pub mod work;

pub use aws_lambda_events::kafka::{KafkaEvent, KafkaRecord};
pub use consumer::{
    Batch, BatchReport, ConsumeError, MemoryPoisonQueue, PoisonQueue, QueueError, Record,
    SqsPoisonQueue, consume, run_batch_consumer, run_consumer, run_function,
};
pub use outbox::{OutboxMessage, outbox_write, processed};
pub use shutter_catalogue::*;
