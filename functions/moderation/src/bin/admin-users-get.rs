//! `GET /v1/admin/users/{username}`.
#[tokio::main]
async fn main() -> Result<(), shutter_http::lambda_http::Error> {
    shutter_http::serve(
        shutter_moderation::Live::for_writes,
        shutter_moderation::http::lookup,
    )
    .await
}
