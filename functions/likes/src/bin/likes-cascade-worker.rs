//! `likes-cascade-worker`: erases deleted accounts' likes and drops deleted posts' likes,
//! a page a chunk (SQS consumer of `LikesCascadeQueue`).
#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    use shutter_likes::{Live, worker};
    shutter_events::work::run_worker(Live::with_work, worker::chunk).await
}
