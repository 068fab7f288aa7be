//! `DELETE /v1/users/{username}/follow`.
// Counted against the caller by the template's rate limits (`RATE_LIMITS`).
#[tokio::main]
async fn main() -> Result<(), shutter_http::lambda_http::Error> {
    shutter_ratelimit::serve(
        shutter_follows::Live::for_writes,
        shutter_follows::http::unfollow,
    )
    .await
}
