use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::{LambdaEvent, service_fn};
use shutter_comments::consumers::comment_writes;
use shutter_comments::store::dynamo::DynamoCommentsStore;
use shutter_directory::legacy::DynamoDirectory;
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
    let (store, directory) = (&store, &directory);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        Ok::<_, lambda_runtime::Error>(comment_writes(store, directory, &event.payload).await)
    }))
    .await
}
