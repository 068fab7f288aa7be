use lambda_runtime::{LambdaEvent, service_fn};
use shutter_events::{KafkaEvent, SqsPoisonQueue};
use shutter_profiles::counters::dynamo::DynamoCountersStore;
use shutter_profiles::counters::{GRAPH_CONSUMER, graph_events};
use shutter_store::Table;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    shutter_http::init_tracing();
    let aws = shutter_store::aws_config().await;
    let store = DynamoCountersStore {
        table: Table::from_env(&aws, "PROFILES_TABLE")?,
    };
    let poison = SqsPoisonQueue::from_env(&aws, GRAPH_CONSUMER)?;
    let (store, poison) = (&store, &poison);
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<KafkaEvent>| async move {
            graph_events(store, poison, &event.payload)
                .await
                .map_err(lambda_runtime::Error::from)
        },
    ))
    .await
}
