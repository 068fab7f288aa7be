//! `GET /v1/feed`: the viewer's home timeline merged with their celebrities' recent posts.
#[tokio::main]
async fn main() -> Result<(), shutter_http::lambda_http::Error> {
    shutter_http::serve(shutter_feed::Live::from_env, shutter_feed::http::feed).await
}
