use shutter_posts::deps::endpoint_deps;
use shutter_posts::handlers::delete_post;

#[tokio::main]
async fn main() -> Result<(), shutter_http::lambda_http::Error> {
    shutter_http::init_tracing();
    shutter_http::run(endpoint_deps().await?, delete_post).await
}
