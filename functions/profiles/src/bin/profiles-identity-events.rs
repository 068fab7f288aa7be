//! `profiles-identity-events`: creates and erases profiles from the identity topic.
#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    use shutter_profiles::{Live, identity};
    shutter_events::run_consumer(&identity::IDENTITY_EVENTS, Live::from_env, identity::apply).await
}
