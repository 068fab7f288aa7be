//! `profiles-graph-events`: follower, following and post counts, and blocks.
#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    use shutter_profiles::{Live, counters};
    shutter_events::run_consumer(&counters::GRAPH_EVENTS, Live::for_counters, counters::apply).await
}
