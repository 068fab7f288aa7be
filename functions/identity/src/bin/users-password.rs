//! `POST /v1/users/me/password`.
#[tokio::main]
async fn main() -> Result<(), shutter_http::lambda_http::Error> {
    use shutter_identity::{Live, http};
    shutter_http::serve(Live::without_keys, http::account::change_password).await
}
