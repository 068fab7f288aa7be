//! `comments-cascade-worker`: deletes deleted accounts' comments and takes back their
//! comment likes, and erases deleted posts' comments, a page a chunk (SQS consumer of
//! `CommentsCascadeQueue`).
#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    use shutter_comments::{Live, worker};
    shutter_events::work::run_worker(Live::with_work, worker::chunk).await
}
