//! `comments-directory-events`: the directory; hands on the comments of deleted posts and
//! users.
#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    use shutter_comments::{Live, consumer};
    shutter_events::run_consumer(
        &consumer::DIRECTORY_EVENTS,
        Live::with_work,
        consumer::apply,
    )
    .await
}
