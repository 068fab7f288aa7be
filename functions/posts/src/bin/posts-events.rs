//! `posts-events`: the counters, the directory; hands on the posts of deleted accounts.
#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    use shutter_posts::{Live, counters};
    shutter_events::run_batch_consumer(&counters::EVENTS, Live::with_work, counters::apply).await
}
