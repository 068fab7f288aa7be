use shutter_auth::handlers::well_known;
use shutter_auth::keys::{SigningKeys, TokenSettings};

#[tokio::main]
async fn main() -> Result<(), shutter_http::lambda_http::Error> {
    shutter_http::init_tracing();
    let aws = shutter_store::aws_config().await;
    let keys = SigningKeys::from_secret(
        &shutter_store::secret_string(&aws, "SIGNING_KEY_SECRET_ARN").await?,
    )?;
    let settings = TokenSettings::from_env()?;
    shutter_http::run((keys, settings), |(keys, settings), req| {
        well_known(keys, settings, req)
    })
    .await
}
