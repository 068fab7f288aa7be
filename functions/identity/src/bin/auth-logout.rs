//! `POST /v1/auth/logout` (no signing key: it signs nothing).
#[tokio::main]
async fn main() -> Result<(), shutter_http::lambda_http::Error> {
    use shutter_identity::{Live, http};
    shutter_http::serve(Live::without_keys, http::auth::logout).await
}
