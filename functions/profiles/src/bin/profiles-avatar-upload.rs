//! `POST /v1/profiles/me/avatar`: signs upload forms only, so it builds no table client.
#[tokio::main]
async fn main() -> Result<(), shutter_http::lambda_http::Error> {
    shutter_http::serve(
        shutter_profiles::Live::for_uploads,
        shutter_profiles::http::avatar_upload,
    )
    .await
}
