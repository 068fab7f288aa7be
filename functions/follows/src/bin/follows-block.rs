//! `PUT /v1/users/{username}/block`.
#[tokio::main]
async fn main() -> Result<(), shutter_http::lambda_http::Error> {
    shutter_http::serve(
        shutter_follows::Live::for_writes,
        shutter_follows::http::block,
    )
    .await
}
