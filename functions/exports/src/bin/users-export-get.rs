//! `GET /v1/users/me/export`.
#[tokio::main]
async fn main() -> Result<(), shutter_http::lambda_http::Error> {
    shutter_http::serve(
        shutter_exports::Live::from_env,
        shutter_exports::http::status,
    )
    .await
}
