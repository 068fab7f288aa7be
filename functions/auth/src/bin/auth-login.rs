use shutter_auth::handlers::login;
use shutter_auth::keys::{RsaTokenIssuer, SigningKeys, TokenSettings};
use shutter_auth::store::dynamo::DynamoIdentityStore;
use shutter_store::Table;

#[tokio::main]
async fn main() -> Result<(), shutter_http::lambda_http::Error> {
    shutter_http::init_tracing();
    let aws = shutter_store::aws_config().await;
    let store = DynamoIdentityStore {
        table: Table::from_env(&aws, "IDENTITY_TABLE")?,
    };
    let keys = SigningKeys::from_secret(
        &shutter_store::secret_string(&aws, "SIGNING_KEY_SECRET_ARN").await?,
    )?;
    let tokens = RsaTokenIssuer {
        keys,
        settings: TokenSettings::from_env()?,
    };
    shutter_http::run((store, tokens), |(store, tokens), req| {
        login(store, tokens, req)
    })
    .await
}
