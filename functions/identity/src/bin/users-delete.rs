//! `DELETE /v1/users/me`.
#[tokio::main]
async fn main() -> Result<(), shutter_http::lambda_http::Error> {
    use shutter_identity::{Live, http};
    // A password check: counted against the account and the source address.
    shutter_ratelimit::serve(Live::without_keys, http::account::delete_me).await
}
