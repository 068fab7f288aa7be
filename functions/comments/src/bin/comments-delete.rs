//! `DELETE /v1/comments/{id}`: a comment and its replies.
#[tokio::main]
async fn main() -> Result<(), shutter_http::lambda_http::Error> {
    use shutter_comments::{Live, http};
    shutter_http::serve(Live::from_env, http::delete_comment).await
}
