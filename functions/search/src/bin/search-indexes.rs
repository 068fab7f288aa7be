use lambda_runtime::{LambdaEvent, service_fn};
use shutter_search::client::OpenSearch;
use shutter_search::setup::{CustomResourceRequest, HttpResponder, handle};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    shutter_http::init_tracing();
    let aws = shutter_store::aws_config().await;
    let search = OpenSearch::from_env(&aws)?;
    let responder = HttpResponder::default();
    let (search, responder) = (&search, &responder);
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<CustomResourceRequest>| async move {
            handle(search, responder, &event.payload)
                .await
                .map_err(lambda_runtime::Error::from)
        },
    ))
    .await
}
