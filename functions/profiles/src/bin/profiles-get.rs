//! `GET /v1/profiles/{username}` and `GET /v1/profiles/me`.
#[tokio::main]
async fn main() -> Result<(), shutter_http::lambda_http::Error> {
    shutter_http::serve(
        shutter_profiles::Live::from_env,
        shutter_profiles::http::get_profile,
    )
    .await
}
