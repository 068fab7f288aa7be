use shutter_comments::handlers::edit_comment;
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
    shutter_http::run((store, directory), |(store, directory), req| {
        edit_comment(store, directory, req)
    })
    .await
}
