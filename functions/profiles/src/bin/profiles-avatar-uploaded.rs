//! `profiles-avatar-uploaded`: verifies uploaded avatars (S3 notifications via SQS).
#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    use shutter_profiles::{Live, avatar};
    shutter_events::run_function(Live::from_env, avatar::on_uploads).await
}
