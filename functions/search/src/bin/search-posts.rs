//! `GET /v1/search/posts`.
#[tokio::main]
async fn main() -> Result<(), shutter_http::lambda_http::Error> {
    use shutter_search::{Live, http};
    shutter_http::serve(Live::from_env, http::search_posts).await
}
