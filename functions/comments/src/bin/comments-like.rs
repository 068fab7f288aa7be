//! `POST /v1/comments/{id}/like`.
#[tokio::main]
async fn main() -> Result<(), shutter_http::lambda_http::Error> {
    use shutter_comments::{Live, http};
    shutter_http::serve(Live::from_env, http::like_comment).await
}
