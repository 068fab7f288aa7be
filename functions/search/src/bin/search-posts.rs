use shutter_search::client::OpenSearch;
use shutter_search::handlers::search_posts;

#[tokio::main]
async fn main() -> Result<(), shutter_http::lambda_http::Error> {
    shutter_http::init_tracing();
    let aws = shutter_store::aws_config().await;
    let search = OpenSearch::from_env(&aws)?;
    let signer = shutter_store::cursor_signer(&aws).await?;
    shutter_http::run((search, signer), |(search, signer), req| {
        search_posts(search, signer, req)
    })
    .await
}
