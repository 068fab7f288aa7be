//! `likes-directory-events`: the directory; hands on the likes of deleted accounts and
//! posts.
#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    use shutter_likes::{Live, consumer};
    shutter_events::run_consumer(
        &consumer::DIRECTORY_EVENTS,
        Live::with_work,
        consumer::apply,
    )
    .await
}
