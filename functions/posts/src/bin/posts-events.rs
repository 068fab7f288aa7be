use lambda_runtime::{LambdaEvent, service_fn};
use shutter_directory::legacy::DynamoDirectory;
use shutter_events::{KafkaEvent, SqsPoisonQueue};
use shutter_media::S3MediaStore;
use shutter_posts::counters::posts_events;
use shutter_posts::store::PostsStore;
use shutter_store::Table;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    shutter_http::init_tracing();
    let aws = shutter_store::aws_config().await;
    let table = Table::from_env(&aws, "POSTS_TABLE")?;
    let store = PostsStore {
        table: table.clone(),
    };
    let directory = DynamoDirectory { table };
    let media = S3MediaStore::from_env(&aws)?;
    let poison = SqsPoisonQueue::from_env(&aws, "posts-events")?;
    let (store, media, directory, poison) = (&store, &media, &directory, &poison);
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<KafkaEvent>| async move {
            posts_events(store, media, directory, poison, &event.payload)
                .await
                .map_err(lambda_runtime::Error::from)
        },
    ))
    .await
}
