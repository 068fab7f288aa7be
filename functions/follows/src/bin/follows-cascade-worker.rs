//! `follows-cascade-worker`: ends deleted accounts' follows and blocks, and approves the
//! requests of accounts that turned public, a page a chunk (SQS consumer of
//! `FollowsCascadeQueue`).
#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    use shutter_follows::{Live, worker};
    shutter_events::work::run_worker(Live::with_work, worker::chunk).await
}
