//! `comments-writer`: stores the comments `comments-create` queued (SQS consumer).
#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    use shutter_comments::{Live, writer};
    shutter_events::run_function(Live::from_env, writer::on_messages).await
}
