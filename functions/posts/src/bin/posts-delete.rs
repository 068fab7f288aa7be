//! `DELETE /v1/posts/{id}`.
#[tokio::main]
async fn main() -> Result<(), shutter_http::lambda_http::Error> {
    shutter_http::serve(
        shutter_posts::Live::without_cursors,
        shutter_posts::http::delete_post,
    )
    .await
}
