//! `outbox-sweeper`: on a schedule, every outbox item still pending after the grace period,
//! to its Kafka topic.
// rskafka's nested futures need a deeper query limit than the default 128.
#![recursion_limit = "256"]

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    use shutter_outbox::{Sweeper, sweeper};
    shutter_events::run_function(Sweeper::from_env, sweeper::on_schedule).await
}
