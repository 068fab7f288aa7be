use shutter_directory::legacy::DynamoDirectory;
use shutter_follows::handlers::followers;
use shutter_follows::store::dynamo::DynamoFollowsStore;
use shutter_store::Table;

#[tokio::main]
async fn main() -> Result<(), shutter_http::lambda_http::Error> {
    shutter_http::init_tracing();
    let aws = shutter_store::aws_config().await;
    let table = Table::from_env(&aws, "FOLLOWS_TABLE")?;
    let signer = shutter_store::cursor_signer(&aws).await?;
    let dir = DynamoDirectory {
        table: table.clone(),
    };
    let store = DynamoFollowsStore { table };
    shutter_http::run((dir, store, signer), |(dir, store, signer), req| {
        followers(dir, store, signer, req)
    })
    .await
}
