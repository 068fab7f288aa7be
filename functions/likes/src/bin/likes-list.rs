//! `GET /v1/posts/{id}/likes`: the only likes function that reads the cursor key.
#[tokio::main]
async fn main() -> Result<(), shutter_http::lambda_http::Error> {
    shutter_http::serve(shutter_likes::Live::from_env, shutter_likes::http::likers).await
}
