use shutter_auth::store::dynamo::DynamoIdentityStore;
use shutter_store::Table;

#[tokio::main]
async fn main() -> Result<(), shutter_http::lambda_http::Error> {
    shutter_http::init_tracing();
    let aws = shutter_store::aws_config().await;
    let store = DynamoIdentityStore {
        table: Table::from_env(&aws, "IDENTITY_TABLE")?,
    };
    shutter_http::run(store, shutter_users::update_me).await
}
