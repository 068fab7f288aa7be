//! `feed-events`: home timelines, from the posts, follows, likes, identity and profiles
//! topics.
// The consumer's nested async state machine is deeper than the default limit allows.
#![recursion_limit = "256"]

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    use shutter_feed::{LiveTimelines, fanout};
    shutter_events::run_consumer(&fanout::EVENTS, LiveTimelines::with_work, fanout::apply).await
}
