//! `feed-fanout-worker`: fan-outs, deleted posts, promotions and cleared timelines, a page
//! a chunk (SQS consumer of `FeedFanoutQueue`).

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    use shutter_feed::{LiveTimelines, worker};
    shutter_events::work::run_worker(LiveTimelines::with_work, worker::chunk).await
}
