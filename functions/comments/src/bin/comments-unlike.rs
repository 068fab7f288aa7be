use shutter_comments::handlers::unlike_comment;
use shutter_comments::store::dynamo::DynamoCommentsStore;
use shutter_store::Table;

#[tokio::main]
async fn main() -> Result<(), shutter_http::lambda_http::Error> {
    shutter_http::init_tracing();
    let aws = shutter_store::aws_config().await;
    let store = DynamoCommentsStore {
        table: Table::from_env(&aws, "COMMENTS_TABLE")?,
    };
    shutter_http::run(store, unlike_comment).await
}
