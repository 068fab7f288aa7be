//! `POST /v1/auth/register`.
#[tokio::main]
async fn main() -> Result<(), shutter_http::lambda_http::Error> {
    use shutter_identity::{Live, http};
    shutter_http::serve(Live::without_keys, http::auth::register).await
}
