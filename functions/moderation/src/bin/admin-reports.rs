//! `GET /v1/admin/reports`.
#[tokio::main]
async fn main() -> Result<(), shutter_http::lambda_http::Error> {
    shutter_http::serve(
        shutter_moderation::Live::for_queue,
        shutter_moderation::http::reports,
    )
    .await
}
