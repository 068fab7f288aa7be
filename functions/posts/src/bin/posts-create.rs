//! `POST /v1/posts`.
#[tokio::main]
async fn main() -> Result<(), shutter_http::lambda_http::Error> {
    shutter_http::serve(
        shutter_posts::Live::without_cursors,
        shutter_posts::http::create_post,
    )
    .await
}
