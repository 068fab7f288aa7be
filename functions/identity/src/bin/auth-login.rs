//! `POST /v1/auth/login`.
#[tokio::main]
async fn main() -> Result<(), shutter_http::lambda_http::Error> {
    use shutter_identity::{Live, http};
    // A password check: counted against the account named and the source address.
    shutter_ratelimit::serve_scoped(
        shutter_ratelimit::Audience::Anyone,
        Live::from_env,
        http::auth::login_rate_scope,
        http::auth::login,
    )
    .await
}
