//! `outbox-publisher`: every outbox item of a service table's stream, to its Kafka topic.
// rskafka's nested futures need a deeper query limit than the default 128.
#![recursion_limit = "256"]

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    use shutter_outbox::{Relay, publisher};
    shutter_events::run_function(Relay::from_env, publisher::on_stream).await
}
