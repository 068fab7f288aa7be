//! `POST /v1/reports`.
// Counted against the caller by the template's rate limits (`RATE_LIMITS`).
#[tokio::main]
async fn main() -> Result<(), shutter_http::lambda_http::Error> {
    shutter_ratelimit::serve(
        shutter_moderation::Live::for_writes,
        shutter_moderation::http::report,
    )
    .await
}
