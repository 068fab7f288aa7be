// rskafka's nested futures need a deeper query limit than the default 128.
#![recursion_limit = "256"]

use lambda_runtime::{LambdaEvent, service_fn};
use shutter_events::publisher::{KafkaPublisher, KafkaSettings};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    shutter_http::init_tracing();
    let aws = shutter_store::aws_config().await;
    let publisher = KafkaPublisher::new(&KafkaSettings::from_env(&aws).await?, &aws)?;
    let publisher = &publisher;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<serde_json::Value>| async move {
            Ok::<_, lambda_runtime::Error>(shutter_outbox::handle(publisher, &event.payload).await)
        },
    ))
    .await
}
