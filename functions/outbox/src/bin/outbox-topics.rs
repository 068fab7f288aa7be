// rskafka's nested futures need a deeper query limit than the default 128.
#![recursion_limit = "256"]

use lambda_runtime::{LambdaEvent, service_fn};
use shutter_events::publisher::{KafkaPublisher, KafkaSettings};
use shutter_http::custom_resource::{CustomResourceRequest, HttpResponder};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    shutter_http::init_tracing();
    let aws = shutter_store::aws_config().await;
    let kafka = KafkaPublisher::new(&KafkaSettings::from_env(&aws).await?, &aws)?;
    let responder = HttpResponder::default();
    let (kafka, responder) = (&kafka, &responder);
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<CustomResourceRequest>| async move {
            shutter_outbox::topics::handle(kafka, responder, &event.payload)
                .await
                .map_err(lambda_runtime::Error::from)
        },
    ))
    .await
}
