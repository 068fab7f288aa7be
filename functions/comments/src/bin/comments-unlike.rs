//! `DELETE /v1/comments/{id}/like`.
// Counted against the caller by the template's rate limits (`RATE_LIMITS`).
#[tokio::main]
async fn main() -> Result<(), shutter_http::lambda_http::Error> {
    use shutter_comments::{Live, http};
    shutter_ratelimit::serve(Live::from_env, http::unlike_comment).await
}
