//! `POST /v1/auth/register`.
#[tokio::main]
async fn main() -> Result<(), shutter_http::lambda_http::Error> {
    use shutter_identity::{Live, http};
    // Counted by source address: `RegistrationsPerAddressPerHour`.
    shutter_ratelimit::serve_scoped(
        shutter_ratelimit::Audience::Anyone,
        Live::without_keys,
        http::auth::register_rate_scope,
        http::auth::register,
    )
    .await
}
