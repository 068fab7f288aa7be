//! `PATCH /v1/users/me`.
#[tokio::main]
async fn main() -> Result<(), shutter_http::lambda_http::Error> {
    use shutter_identity::{Live, http};
    // An email change checks the password: counted as one; a settings change is not.
    shutter_ratelimit::serve_scoped(
        shutter_ratelimit::Audience::SignedIn,
        Live::without_keys,
        http::account::update_rate_scope,
        http::account::update_me,
    )
    .await
}
