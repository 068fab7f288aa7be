//! `GET /v1/users/{username}/following`.
#[tokio::main]
async fn main() -> Result<(), shutter_http::lambda_http::Error> {
    shutter_http::serve(
        shutter_follows::Live::from_env,
        shutter_follows::http::following,
    )
    .await
}
