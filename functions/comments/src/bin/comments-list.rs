//! `GET /v1/posts/{id}/comments`: a post's comments, threads in order.
#[tokio::main]
async fn main() -> Result<(), shutter_http::lambda_http::Error> {
    use shutter_comments::{Live, http};
    shutter_http::serve(Live::for_list, http::list_comments).await
}
