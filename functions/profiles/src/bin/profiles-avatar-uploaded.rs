use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::{LambdaEvent, service_fn};
use shutter_profiles::avatar::S3MediaStore;
use shutter_profiles::consumers::avatar_uploaded;
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
    let (store, media) = (&store, &media);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        Ok::<_, lambda_runtime::Error>(avatar_uploaded(store, media, &event.payload).await)
    }))
    .await
}
