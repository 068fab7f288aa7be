//! `POST /v1/profiles/me/avatar`: signs upload forms (it reads the table only for the
//! caller's standing).
#[tokio::main]
async fn main() -> Result<(), shutter_http::lambda_http::Error> {
    // Counted against the caller: the bytes its upload form allows.
    shutter_ratelimit::serve_scoped(
        shutter_ratelimit::Audience::SignedIn,
        shutter_profiles::Live::for_uploads,
        shutter_profiles::http::avatar_rate_scope,
        shutter_profiles::http::avatar_upload,
    )
    .await
}
