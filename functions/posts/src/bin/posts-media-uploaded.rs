//! `posts-media-uploaded`: checks and processes uploads, and publishes their posts.
// The processing future (S3, image decoding, the post's transaction) nests deeply.
#![recursion_limit = "256"]

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    use shutter_posts::{Live, media};
    shutter_events::run_function(Live::without_cursors, media::on_uploads).await
}
