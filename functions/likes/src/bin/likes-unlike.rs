//! `DELETE /v1/posts/{id}/like`.
#[tokio::main]
async fn main() -> Result<(), shutter_http::lambda_http::Error> {
    shutter_http::serve(shutter_likes::Live::for_writes, shutter_likes::http::unlike).await
}
