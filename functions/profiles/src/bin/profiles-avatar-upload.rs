use shutter_profiles::avatar::S3MediaStore;
use shutter_profiles::handlers::avatar_upload;

#[tokio::main]
async fn main() -> Result<(), shutter_http::lambda_http::Error> {
    shutter_http::init_tracing();
    let aws = shutter_store::aws_config().await;
    let media = S3MediaStore::from_env(&aws)?;
    shutter_http::run(media, avatar_upload).await
}
