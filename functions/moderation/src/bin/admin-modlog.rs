//! `GET /v1/admin/modlog`.
#[tokio::main]
async fn main() -> Result<(), shutter_http::lambda_http::Error> {
    shutter_http::serve(
        shutter_moderation::Live::from_env,
        shutter_moderation::http::modlog,
    )
    .await
}
