//! `users-export-worker`: builds account exports, a page a chunk (SQS consumer of
//! `ExportQueue`).
#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    use shutter_exports::{LiveWorker, worker};
    shutter_events::work::run_worker(LiveWorker::with_work, worker::chunk).await
}
