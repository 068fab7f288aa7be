//! `search-indexer`: the indexes in step with the events (DLQ: `EVENTS_DLQ_URL`).
#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    use shutter_search::{Live, consumer};
    shutter_events::run_batch_consumer(&consumer::INDEXER, Live::without_cursors, consumer::apply)
        .await
}
