use shutter_profiles::avatar::S3MediaStore;
use shutter_profiles::handlers::update_profile;
use shutter_profiles::store::dynamo::DynamoProfilesStore;
use shutter_store::Table;

#[tokio::main]
async fn main() -> Result<(), shutter_http::lambda_http::Error> {
    shutter_http::init_tracing();
    let aws = shutter_store::aws_config().await;
    let store = DynamoProfilesStore {
        table: Table::from_env(&aws, "PROFILES_TABLE")?,
    };
    let media = S3MediaStore::from_env(&aws)?;
    shutter_http::run((store, media), |(store, media), req| {
        update_profile(store, media, req)
    })
    .await
}
