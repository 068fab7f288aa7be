use lambda_runtime::{LambdaEvent, service_fn};
use shutter_events::{KafkaEvent, SqsPoisonQueue};
use shutter_search::INDEXER;
use shutter_search::client::OpenSearch;
use shutter_search::indexer::index_events;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    shutter_http::init_tracing();
    let aws = shutter_store::aws_config().await;
    let search = OpenSearch::from_env(&aws)?;
    let poison = SqsPoisonQueue::from_env(&aws, INDEXER)?;
    let (search, poison) = (&search, &poison);
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<KafkaEvent>| async move {
            index_events(search, poison, &event.payload)
                .await
                .map(|_| ())
                .map_err(lambda_runtime::Error::from)
        },
    ))
    .await
}
