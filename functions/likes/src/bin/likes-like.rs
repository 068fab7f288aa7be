use shutter_directory::legacy::DynamoDirectory;
use shutter_likes::cache::{self, CachedDirectory};
use shutter_likes::handlers::like;
use shutter_likes::store::dynamo::DynamoLikesStore;
use shutter_store::Table;

#[tokio::main]
async fn main() -> Result<(), shutter_http::lambda_http::Error> {
    shutter_http::init_tracing();
    let aws = shutter_store::aws_config().await;
    let table = Table::from_env(&aws, "LIKES_TABLE")?;
    let dir = CachedDirectory::new(
        DynamoDirectory {
            table: table.clone(),
        },
        cache::TTL,
    );
    let store = DynamoLikesStore { table };
    shutter_http::run((dir, store), |(dir, store), req| like(dir, store, req)).await
}
