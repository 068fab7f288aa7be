//! `POST /v1/posts`.
#[tokio::main]
async fn main() -> Result<(), shutter_http::lambda_http::Error> {
    // Counted against the caller: a post, and the media bytes its upload forms allow.
    shutter_ratelimit::serve_scoped(
        shutter_ratelimit::Audience::SignedIn,
        shutter_posts::Live::without_cursors,
        shutter_ratelimit::http::declared_media_bytes,
        shutter_posts::http::create_post,
    )
    .await
}
