use shutter_directory::legacy::DynamoDirectory;
use shutter_likes::cache::{self, CachedDirectory};
use shutter_likes::handlers::likers;
use shutter_likes::store::dynamo::DynamoLikesStore;
use shutter_store::Table;

#[tokio::main]
async fn main() -> Result<(), shutter_http::lambda_http::Error> {
    shutter_http::init_tracing();
    let aws = shutter_store::aws_config().await;
    let table = Table::from_env(&aws, "LIKES_TABLE")?;
    let signer = shutter_store::cursor_signer(&aws).await?;
    let dir = CachedDirectory::new(
        DynamoDirectory {
            table: table.clone(),
        },
        cache::TTL,
    );
    let store = DynamoLikesStore { table };
    shutter_http::run((dir, store, signer), |(dir, store, signer), req| {
        likers(dir, store, signer, req)
    })
    .await
}
