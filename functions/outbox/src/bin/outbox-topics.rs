//! `outbox-topics`: the custom resource that creates the Kafka topics it is given.
// rskafka's nested futures need a deeper query limit than the default 128.
#![recursion_limit = "256"]

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    use shutter_outbox::topics;
    shutter_events::run_function(topics::Live::from_env, topics::handle).await
}
