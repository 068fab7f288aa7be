//! `GET /v1/search/users`.
#[tokio::main]
async fn main() -> Result<(), shutter_http::lambda_http::Error> {
    use shutter_search::{Live, http};
    shutter_http::serve(Live::without_cursors, http::search_users).await
}
