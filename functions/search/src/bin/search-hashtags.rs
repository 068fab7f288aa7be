//! `GET /v1/search/hashtags`.
// Counted against the caller by the template's rate limits (`RATE_LIMITS`).
#[tokio::main]
async fn main() -> Result<(), shutter_http::lambda_http::Error> {
    use shutter_search::{Live, http};
    shutter_ratelimit::serve(Live::without_cursors, http::search_hashtags).await
}
