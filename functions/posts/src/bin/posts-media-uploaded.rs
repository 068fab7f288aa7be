// The processing future (S3, image decoding, the post's transaction) nests deeply.
#![recursion_limit = "256"]

use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::{LambdaEvent, service_fn};
use shutter_media::S3MediaStore;
use shutter_posts::media::media_uploaded;
use shutter_posts::store::PostsStore;
use shutter_store::Table;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    shutter_http::init_tracing();
    let aws = shutter_store::aws_config().await;
    let store = PostsStore {
        table: Table::from_env(&aws, "POSTS_TABLE")?,
    };
    let media = S3MediaStore::from_env(&aws)?;
    let (store, media) = (&store, &media);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        Ok::<_, lambda_runtime::Error>(media_uploaded(store, media, &event.payload).await)
    }))
    .await
}
