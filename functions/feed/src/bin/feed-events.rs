// The consumer's nested async state machine is deeper than the default limit allows.
#![recursion_limit = "256"]

use lambda_runtime::{LambdaEvent, service_fn};
use shutter_directory::legacy::DynamoDirectory;
use shutter_events::{KafkaEvent, SqsPoisonQueue};
use shutter_feed::fanout::{CONSUMER, FanOut, feed_events};
use shutter_feed::store::FeedStore;
use shutter_store::Table;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    shutter_http::init_tracing();
    let aws = shutter_store::aws_config().await;
    let table = Table::from_env(&aws, "FEED_TABLE")?;
    let settings = FanOut::from_env()?;
    let dir = DynamoDirectory {
        table: table.clone(),
    };
    let store = FeedStore::new(table);
    let poison = SqsPoisonQueue::from_env(&aws, CONSUMER)?;
    let (dir, store, poison) = (&dir, &store, &poison);
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<KafkaEvent>| async move {
            feed_events(dir, store, settings, poison, &event.payload)
                .await
                .map_err(lambda_runtime::Error::from)
        },
    ))
    .await
}
