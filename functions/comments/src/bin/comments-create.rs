use shutter_comments::handlers::{SqsWriteQueue, create_comment};
use shutter_comments::store::dynamo::DynamoCommentsStore;
use shutter_directory::legacy::DynamoDirectory;
use shutter_store::Table;

#[tokio::main]
async fn main() -> Result<(), shutter_http::lambda_http::Error> {
    shutter_http::init_tracing();
    let aws = shutter_store::aws_config().await;
    let table = Table::from_env(&aws, "COMMENTS_TABLE")?;
    let store = DynamoCommentsStore {
        table: table.clone(),
    };
    let directory = DynamoDirectory { table };
    let queue = SqsWriteQueue::from_env(&aws)?;
    shutter_http::run(
        (store, directory, queue),
        |(store, directory, queue), req| create_comment(store, directory, queue, req),
    )
    .await
}
