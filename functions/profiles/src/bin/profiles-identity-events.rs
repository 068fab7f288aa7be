use lambda_runtime::{LambdaEvent, service_fn};
use shutter_events::KafkaEvent;
use shutter_profiles::avatar::S3MediaStore;
use shutter_profiles::consumers::{IDENTITY_CONSUMER, SqsPoisonQueue, identity_events};
use shutter_profiles::store::dynamo::DynamoProfilesStore;
use shutter_store::Table;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    shutter_http::init_tracing();
    let aws = shutter_store::aws_config().await;
    let store = DynamoProfilesStore {
        table: Table::from_env(&aws, "PROFILES_TABLE")?,
    };
    let media = S3MediaStore::from_env(&aws)?;
    let poison = SqsPoisonQueue::from_env(&aws, IDENTITY_CONSUMER)?;
    let (store, media, poison) = (&store, &media, &poison);
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<KafkaEvent>| async move {
            identity_events(store, media, poison, &event.payload)
                .await
                .map_err(lambda_runtime::Error::from)
        },
    ))
    .await
}
