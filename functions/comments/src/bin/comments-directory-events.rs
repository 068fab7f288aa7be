use lambda_runtime::{LambdaEvent, service_fn};
use shutter_comments::consumers::{DIRECTORY_CONSUMER, directory_events};
use shutter_comments::store::dynamo::DynamoCommentsStore;
use shutter_directory::legacy::DynamoDirectory;
use shutter_events::{KafkaEvent, SqsPoisonQueue};
use shutter_store::Table;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    shutter_http::init_tracing();
    let aws = shutter_store::aws_config().await;
    let table = Table::from_env(&aws, "COMMENTS_TABLE")?;
    let store = DynamoCommentsStore {
        table: table.clone(),
    };
    let directory = DynamoDirectory { table };
    let poison = SqsPoisonQueue::from_env(&aws, DIRECTORY_CONSUMER)?;
    let (store, directory, poison) = (&store, &directory, &poison);
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<KafkaEvent>| async move {
            directory_events(store, directory, poison, &event.payload)
                .await
                .map_err(lambda_runtime::Error::from)
        },
    ))
    .await
}
