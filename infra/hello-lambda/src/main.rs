//! The smallest useful `lambda_http` function, the floor of `coldstart-bench`: the same
//! runtime (tokio's multi-threaded runtime, as the functions use) and release profile,
//! no AWS client, no configuration.
use lambda_http::{Body, Error, Request, Response, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_http::run(service_fn(|_req: Request| async {
        Response::builder()
            .status(200)
            .header("content-type", "text/plain")
            .body(Body::from("hello"))
            .map_err(Error::from)
    }))
    .await
}
