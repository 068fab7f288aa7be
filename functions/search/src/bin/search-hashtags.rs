use shutter_search::client::OpenSearch;
use shutter_search::handlers::search_hashtags;

#[tokio::main]
async fn main() -> Result<(), shutter_http::lambda_http::Error> {
    shutter_http::init_tracing();
    let aws = shutter_store::aws_config().await;
    let search = OpenSearch::from_env(&aws)?;
    shutter_http::run(search, search_hashtags).await
}
