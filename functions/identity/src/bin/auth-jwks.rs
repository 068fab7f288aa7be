//! `GET /.well-known/jwks.json` and `GET /.well-known/openid-configuration` (no table; it
//! reads the public JWKS secret, never the signing keys).
#[tokio::main]
async fn main() -> Result<(), shutter_http::lambda_http::Error> {
    use shutter_identity::{http, keys::WellKnown};
    shutter_http::serve(WellKnown::from_env, http::auth::well_known).await
}
