//! `GET /admin` and `GET /admin/{asset}`: the moderation panel's page, script and style.
#[tokio::main]
async fn main() -> Result<(), shutter_http::lambda_http::Error> {
    shutter_http::serve(shutter_admin::Page::from_env, shutter_admin::serve_admin).await
}
