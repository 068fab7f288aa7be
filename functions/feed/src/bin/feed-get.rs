use shutter_feed::handlers::feed;
use shutter_feed::store::FeedStore;
use shutter_media::S3MediaStore;
use shutter_store::Table;

#[tokio::main]
async fn main() -> Result<(), shutter_http::lambda_http::Error> {
    shutter_http::init_tracing();
    let aws = shutter_store::aws_config().await;
    let store = FeedStore::new(Table::from_env(&aws, "FEED_TABLE")?);
    let media = S3MediaStore::from_env(&aws)?;
    let signer = shutter_store::cursor_signer(&aws).await?;
    shutter_http::run((store, media, signer), |(store, media, signer), req| {
        feed(store, media, signer, req)
    })
    .await
}
