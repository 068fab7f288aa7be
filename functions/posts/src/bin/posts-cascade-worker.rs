//! `posts-cascade-worker`: deletes deleted accounts' posts, each with its `PostDeleted`, a
//! page a chunk (SQS consumer of `PostsCascadeQueue`).
#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    use shutter_posts::{Live, worker};
    shutter_events::work::run_worker(Live::with_work, worker::chunk).await
}
