//! `PATCH /v1/comments/{id}`: the author edits their comment.
#[tokio::main]
async fn main() -> Result<(), shutter_http::lambda_http::Error> {
    use shutter_comments::{Live, http};
    shutter_http::serve(Live::from_env, http::edit_comment).await
}
