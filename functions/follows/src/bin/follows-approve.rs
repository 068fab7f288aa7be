//! `POST /v1/follow-requests/{id}/approve`.
#[tokio::main]
async fn main() -> Result<(), shutter_http::lambda_http::Error> {
    shutter_http::serve(
        shutter_follows::Live::for_writes,
        shutter_follows::http::approve,
    )
    .await
}
