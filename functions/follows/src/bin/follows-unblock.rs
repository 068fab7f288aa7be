use shutter_directory::legacy::DynamoDirectory;
use shutter_follows::handlers::unblock;
use shutter_follows::store::dynamo::DynamoFollowsStore;
use shutter_store::Table;

#[tokio::main]
async fn main() -> Result<(), shutter_http::lambda_http::Error> {
    shutter_http::init_tracing();
    let aws = shutter_store::aws_config().await;
    let table = Table::from_env(&aws, "FOLLOWS_TABLE")?;
    let dir = DynamoDirectory {
        table: table.clone(),
    };
    let store = DynamoFollowsStore { table };
    shutter_http::run((dir, store), |(dir, store), req| unblock(dir, store, req)).await
}
