//! `POST /v1/posts/{id}/comments`: accepts a comment and queues it for `comments-writer`.
// Counted against the caller by the template's rate limits (`RATE_LIMITS`).
#[tokio::main]
async fn main() -> Result<(), shutter_http::lambda_http::Error> {
    use shutter_comments::{Live, http};
    shutter_ratelimit::serve(Live::for_create, http::create_comment).await
}
