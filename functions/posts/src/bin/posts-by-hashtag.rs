//! `GET /v1/hashtags/{tag}/posts`.
#[tokio::main]
async fn main() -> Result<(), shutter_http::lambda_http::Error> {
    shutter_http::serve(
        shutter_posts::Live::from_env,
        shutter_posts::http::posts_by_hashtag,
    )
    .await
}
