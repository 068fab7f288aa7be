//! `follows-directory-events`: the directory of users; hands on the requests of accounts
//! that turn public, and the follows and blocks of deleted accounts.
#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    use shutter_follows::{Live, consumer};
    shutter_events::run_consumer(
        &consumer::DIRECTORY_EVENTS,
        Live::with_work,
        consumer::apply,
    )
    .await
}
