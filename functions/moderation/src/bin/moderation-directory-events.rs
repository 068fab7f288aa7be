//! `moderation-directory-events`: the service's copy of users, posts, follows, blocks and
//! comments.
#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    use shutter_moderation::{Live, consumer};
    shutter_events::run_consumer(
        &consumer::DIRECTORY_EVENTS,
        Live::for_writes,
        consumer::apply,
    )
    .await
}
