//! The HTTP edge shared by every endpoint Lambda.
//!
//! A handler is `async fn(&Deps, Request) -> Result<Response<Body>, ApiError>`; [`run`]
//! turns its errors into problem+json with the request id, so no handler builds an error
//! response by hand. Identity comes only from [`Caller::from_request`], which reads the
//! claims API Gateway's JWT authorizer verified.

#[cfg(feature = "custom-resource")]
pub mod custom_resource;

use std::future::Future;

use lambda_http::http::{HeaderValue, StatusCode, header};
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response, service_fn};
use serde::Serialize;
use serde::de::DeserializeOwned;
use shutter_core::error::PROBLEM_CONTENT_TYPE;
use shutter_core::validate::parse_json_body;
use shutter_core::{ApiError, PageRequest};

pub use lambda_http;
pub use shutter_store::init_tracing;
use shutter_store::{ConfigError, SdkConfig, StoreError};

/// The authenticated user, as the JWT authorizer verified them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub user_id: shutter_core::UserId,
    pub username: String,
    pub scopes: Vec<String>,
}

impl Caller {
    /// Reads `requestContext.authorizer.jwt.claims`. Never reads a body, query or header.
    pub fn from_request(req: &Request) -> Result<Self, ApiError> {
        let missing = || ApiError::Unauthorized("this route needs a verified access token");
        let claims = match req.request_context_ref() {
            Some(RequestContext::ApiGatewayV2(ctx)) => ctx
                .authorizer
                .as_ref()
                .and_then(|a| a.jwt.as_ref())
                .map(|jwt| &jwt.claims)
                .ok_or_else(missing)?,
            _ => return Err(missing()),
        };
        let sub = claims.get("sub").ok_or_else(missing)?;
        let user_id = shutter_core::UserId::parse("sub", sub).map_err(|_| missing())?;
        let scopes = claims
            .get("scope")
            .map(|s| parse_scope_claim(s))
            .unwrap_or_default();
        Ok(Self {
            user_id,
            username: claims.get("username").cloned().unwrap_or_default(),
            scopes,
        })
    }

    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }

    /// Moderators and admins may act on other people's resources.
    pub fn is_staff(&self) -> bool {
        self.has_scope("moderator") || self.has_scope("admin")
    }
}

/// API Gateway hands a space-separated `scope` through as is; an array claim arrives as
/// `[a b]`. Accept both.
fn parse_scope_claim(raw: &str) -> Vec<String> {
    raw.trim_matches(|c| c == '[' || c == ']')
        .split([' ', ','])
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Request helpers that turn every kind of bad input into a 4xx naming the problem.
pub trait ApiRequest {
    /// The body as `T`: 415 unless JSON, 413 above 64 KiB, 400 naming the field otherwise.
    fn json<T: DeserializeOwned>(&self) -> Result<T, ApiError>;
    fn path_param(&self, name: &str) -> Result<String, ApiError>;
    fn query(&self, name: &str) -> Option<String>;
    fn page_request(&self) -> Result<PageRequest, ApiError>;
    fn request_id(&self) -> String;
    /// The caller's `x-correlation-id` when it is sane, else the request id.
    fn correlation_id(&self) -> String;
}

impl ApiRequest for Request {
    fn json<T: DeserializeOwned>(&self) -> Result<T, ApiError> {
        let content_type = self
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let body: &[u8] = self.body().as_ref();
        if !body.is_empty() && !content_type.is_empty() {
            let mime = content_type.split(';').next().unwrap_or("").trim();
            if !(mime.eq_ignore_ascii_case("application/json") || mime.ends_with("+json")) {
                return Err(ApiError::UnsupportedMediaType);
            }
        }
        parse_json_body(body)
    }

    fn path_param(&self, name: &str) -> Result<String, ApiError> {
        self.path_parameters_ref()
            .and_then(|p| p.first(name))
            .map(str::to_owned)
            .ok_or_else(|| ApiError::invalid(name, "is required in the path"))
    }

    fn query(&self, name: &str) -> Option<String> {
        self.query_string_parameters_ref()
            .and_then(|q| q.first(name))
            .map(str::to_owned)
    }

    fn page_request(&self) -> Result<PageRequest, ApiError> {
        PageRequest::parse(
            self.query("limit").as_deref(),
            self.query("cursor").as_deref(),
        )
    }

    fn request_id(&self) -> String {
        match self.request_context_ref() {
            Some(RequestContext::ApiGatewayV2(ctx)) => ctx.request_id.clone(),
            _ => None,
        }
        .or_else(|| self.lambda_context_ref().map(|c| c.request_id.clone()))
        .unwrap_or_default()
    }

    fn correlation_id(&self) -> String {
        self.headers()
            .get("x-correlation-id")
            .and_then(|v| v.to_str().ok())
            .filter(|v| {
                !v.is_empty()
                    && v.len() <= 64
                    && v.chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            })
            .map(str::to_owned)
            .unwrap_or_else(|| self.request_id())
    }
}

/// A JSON response with `status`.
pub fn json<T: Serialize>(status: StatusCode, body: &T) -> Result<Response<Body>, ApiError> {
    let bytes = serde_json::to_vec(body).map_err(ApiError::internal)?;
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::Binary(bytes))
        .map_err(ApiError::internal)
}

pub fn no_content() -> Result<Response<Body>, ApiError> {
    Response::builder()
        .status(StatusCode::NO_CONTENT)
        .body(Body::Empty)
        .map_err(ApiError::internal)
}

/// The problem+json answer for `err`. Internal errors are logged with their cause here
/// and answered opaquely with the request id.
pub fn problem_response(err: &ApiError, request_id: &str) -> Response<Body> {
    if err.status() >= 500 {
        tracing::error!(error = %err, source = ?std::error::Error::source(err), "request failed");
    } else {
        tracing::info!(status = err.status(), error = %err, "request rejected");
    }
    let mut problem = err.problem();
    if !request_id.is_empty() {
        problem.request_id = Some(request_id.to_owned());
    }
    let body = serde_json::to_vec(&problem).unwrap_or_default();
    let mut resp = Response::new(Body::Binary(body));
    *resp.status_mut() =
        StatusCode::from_u16(problem.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(PROBLEM_CONTENT_TYPE),
    );
    if matches!(
        err,
        ApiError::Unauthorized(_) | ApiError::InvalidCredentials
    ) {
        resp.headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    if let ApiError::RateLimited { retry_after, .. } = err {
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(*retry_after));
    }
    resp
}

/// Answers a request with `handler`, mapping its error to problem+json.
pub async fn respond<F, Fut>(handler: F, req: Request) -> Response<Body>
where
    F: FnOnce(Request) -> Fut,
    Fut: Future<Output = Result<Response<Body>, ApiError>>,
{
    let request_id = req.request_id();
    let span = tracing::info_span!("request", request_id = %request_id, correlation_id = %req.correlation_id());
    match tracing::Instrument::instrument(handler(req), span).await {
        Ok(resp) => resp,
        Err(err) => problem_response(&err, &request_id),
    }
}

/// Runs an endpoint on the Lambda runtime: logs set up, its dependencies built once per
/// cold start by `build` from the AWS configuration, then every request answered by
/// `handler`, its errors as problem+json. A main is one call of this.
pub async fn serve<D, B, F, Fut>(build: B, handler: F) -> Result<(), lambda_http::Error>
where
    D: Sync + 'static,
    B: AsyncFnOnce(&SdkConfig) -> Result<D, ConfigError>,
    F: Fn(&'static D, Request) -> Fut + Sync,
    Fut: Future<Output = Result<Response<Body>, ApiError>> + Send,
{
    init_tracing();
    let aws = shutter_store::aws_config().await;
    let deps = build(&aws).await?;
    run(deps, handler).await
}

/// A storage failure as the client sees it: a failed condition becomes what `conflict`
/// makes of its label (each service maps its own labels, in one place), anything else an
/// opaque 500 (its cause logged).
pub fn store_error(err: StoreError, conflict: impl FnOnce(&'static str) -> ApiError) -> ApiError {
    match err {
        StoreError::Conflict(label) => conflict(label),
        other => ApiError::internal(other),
    }
}

/// Runs an endpoint on the Lambda runtime. `deps` is built once per cold start and lives
/// as long as the process, so handlers may borrow it across awaits.
pub async fn run<D, F, Fut>(deps: D, handler: F) -> Result<(), lambda_http::Error>
where
    D: Sync + 'static,
    F: Fn(&'static D, Request) -> Fut + Sync,
    Fut: Future<Output = Result<Response<Body>, ApiError>> + Send,
{
    let deps: &'static D = Box::leak(Box::new(deps));
    let handler = &handler;
    lambda_http::run(service_fn(move |req: Request| async move {
        Ok::<_, std::convert::Infallible>(respond(|r| handler(deps, r), req).await)
    }))
    .await
}

/// Builds requests as API Gateway would hand them over, for handler unit tests.
pub mod test_support {
    use std::collections::HashMap;

    use lambda_http::aws_lambda_events::apigw::{
        ApiGatewayRequestAuthorizer, ApiGatewayRequestAuthorizerJwtDescription,
        ApiGatewayV2httpRequestContext,
    };
    use lambda_http::request::RequestContext;
    use lambda_http::{Body, Request, RequestExt};

    /// A request with `body`, path parameters and, when `sub` is given, verified claims.
    pub fn api_request(
        method: &str,
        path: &str,
        params: &[(&str, &str)],
        body: &str,
        claims: Option<(&str, &str, &str)>,
    ) -> Request {
        let mut ctx = ApiGatewayV2httpRequestContext::default();
        ctx.request_id = Some("test-request".to_owned());
        if let Some((sub, username, scope)) = claims {
            let mut jwt = ApiGatewayRequestAuthorizerJwtDescription::default();
            jwt.claims = HashMap::from([
                ("sub".to_owned(), sub.to_owned()),
                ("username".to_owned(), username.to_owned()),
                ("scope".to_owned(), scope.to_owned()),
            ]);
            let mut authorizer = ApiGatewayRequestAuthorizer::default();
            authorizer.jwt = Some(jwt);
            ctx.authorizer = Some(authorizer);
        }
        let body = if body.is_empty() {
            Body::Empty
        } else {
            Body::Text(body.to_owned())
        };
        let mut req = lambda_http::http::Request::builder()
            .method(method)
            .uri(format!("https://api.test{path}"))
            .header("content-type", "application/json")
            .body(body)
            .unwrap_or_default();
        let params: HashMap<String, String> = params
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        req = req
            .with_path_parameters(params)
            .with_request_context(RequestContext::ApiGatewayV2(ctx));
        req
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_claims_in_either_form() {
        assert_eq!(
            parse_scope_claim("user moderator"),
            vec!["user", "moderator"]
        );
        assert_eq!(parse_scope_claim("[user admin]"), vec!["user", "admin"]);
        assert!(parse_scope_claim("").is_empty());
    }

    #[test]
    fn caller_comes_only_from_verified_claims() {
        let id = shutter_core::new_id();
        let req = test_support::api_request(
            "GET",
            "/v1/users/me",
            &[],
            "",
            Some((&id, "alice", "user admin")),
        );
        let caller = Caller::from_request(&req).unwrap();
        assert_eq!(caller.user_id, id);
        assert!(caller.is_staff());

        let anonymous = test_support::api_request("GET", "/v1/users/me", &[], "", None);
        assert_eq!(Caller::from_request(&anonymous).unwrap_err().status(), 401);

        let bad_sub =
            test_support::api_request("GET", "/", &[], "", Some(("not-an-id", "x", "user")));
        assert_eq!(Caller::from_request(&bad_sub).unwrap_err().status(), 401);
    }

    #[test]
    fn json_bodies_must_be_json() {
        let mut req = test_support::api_request("POST", "/", &[], "{}", None);
        req.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        assert_eq!(req.json::<serde_json::Value>().unwrap_err().status(), 415);
    }

    #[tokio::test]
    async fn errors_become_problem_json_with_the_request_id() {
        let req = test_support::api_request("GET", "/", &[], "", None);
        let resp = respond(|_| async { Err(ApiError::NotFound("profile")) }, req).await;
        assert_eq!(resp.status(), 404);
        assert_eq!(resp.headers()[header::CONTENT_TYPE], PROBLEM_CONTENT_TYPE);
        let body: serde_json::Value = serde_json::from_slice(resp.body().as_ref()).unwrap();
        assert_eq!(body["code"], "not_found");
        assert_eq!(body["request_id"], "test-request");
    }
}
