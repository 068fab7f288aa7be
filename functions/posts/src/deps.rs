//! What the endpoint functions build once per cold start.

use shutter_directory::legacy::DynamoDirectory;
use shutter_media::S3MediaStore;
use shutter_store::Table;

use crate::handlers::Posts;
use crate::store::PostsStore;

/// The posts table, media bucket (endpoints only sign URLs, so the store never makes its
/// connection for object calls), directory and cursor signer, from the environment.
pub async fn endpoint_deps()
-> Result<Posts<S3MediaStore, DynamoDirectory>, shutter_store::ConfigError> {
    let aws = shutter_store::aws_config().await;
    let table = Table::from_env(&aws, "POSTS_TABLE")?;
    Ok(Posts {
        store: PostsStore {
            table: table.clone(),
        },
        media: S3MediaStore::from_env(&aws)?,
        directory: DynamoDirectory { table },
        cursors: shutter_store::cursor_signer(&aws).await?,
    })
}
