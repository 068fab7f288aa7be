//! `POST /v1/auth/refresh`.
#[tokio::main]
async fn main() -> Result<(), shutter_http::lambda_http::Error> {
    use shutter_identity::{Live, http};
    shutter_http::serve(Live::from_env, http::auth::refresh).await
}
