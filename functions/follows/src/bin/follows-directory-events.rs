use lambda_runtime::{LambdaEvent, service_fn};
use shutter_directory::legacy::DynamoDirectory;
use shutter_events::{KafkaEvent, SqsPoisonQueue};
use shutter_follows::DIRECTORY_CONSUMER;
use shutter_follows::consumer::directory_events;
use shutter_follows::store::dynamo::DynamoFollowsStore;
use shutter_store::Table;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    shutter_http::init_tracing();
    let aws = shutter_store::aws_config().await;
    let table = Table::from_env(&aws, "FOLLOWS_TABLE")?;
    let dir = DynamoDirectory {
        table: table.clone(),
    };
    let store = DynamoFollowsStore { table };
    let poison = SqsPoisonQueue::from_env(&aws, DIRECTORY_CONSUMER)?;
    let (dir, store, poison) = (&dir, &store, &poison);
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<KafkaEvent>| async move {
            directory_events(dir, store, poison, &event.payload)
                .await
                .map_err(lambda_runtime::Error::from)
        },
    ))
    .await
}
