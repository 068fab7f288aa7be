//! `GET /openapi.json`, `GET /docs` and `GET /docs/{proxy+}`: the API's own document and
//! Swagger UI.
#[tokio::main]
async fn main() -> Result<(), shutter_http::lambda_http::Error> {
    shutter_http::serve(shutter_docs::Docs::from_env, shutter_docs::serve_docs).await
}
