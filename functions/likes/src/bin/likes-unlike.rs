//! `DELETE /v1/posts/{id}/like`.
// Counted against the caller by the template's rate limits (`RATE_LIMITS`).
#[tokio::main]
async fn main() -> Result<(), shutter_http::lambda_http::Error> {
    shutter_ratelimit::serve(shutter_likes::Live::for_writes, shutter_likes::http::unlike).await
}
