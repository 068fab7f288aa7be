//! `search-indexes`: the custom resource that applies the index mappings on deploy.
#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    use shutter_search::{Live, setup};
    shutter_events::run_function(Live::without_cursors, setup::on_request).await
}
