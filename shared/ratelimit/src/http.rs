//! The wrapper a limited function's main serves its handler with: the request is counted
//! before the handler runs, a refused one is answered 429 without running it, and every
//! answer carries the `RateLimit-Policy` and `RateLimit` fields.

use std::future::Future;

use shutter_core::ApiError;
use shutter_http::lambda_http::http::HeaderValue;
use shutter_http::lambda_http::request::RequestContext;
use shutter_http::lambda_http::{self, Body, Request, RequestExt, Response};
use shutter_http::{ApiRequest, Caller, problem_response};
use shutter_store::{ConfigError, SdkConfig};

use crate::model::{policy_field, remaining_field};
use crate::store::Counters;
use crate::{Decision, Limiter, Who};

pub type ApiResult = Result<Response<Body>, ApiError>;

/// What a request is counted as, when its function decides from the request itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Not counted (a `PATCH /v1/users/me` that checks no password).
    Skip,
    /// Counted: against `user` rather than the token's `sub` when given (the account a
    /// login names), at `costs` other than 1 per policy.
    Count {
        user: Option<String>,
        costs: Vec<(String, u64)>,
    },
}

impl Scope {
    /// Counted as usual: the token's `sub`, the source address, 1 each.
    pub fn usual() -> Self {
        Self::Count {
            user: None,
            costs: Vec::new(),
        }
    }
}

/// The address API Gateway received the request from (`requestContext.http.sourceIp`).
/// Never `X-Forwarded-For` or any other header: a client writes those.
pub fn source_address(req: &Request) -> Option<String> {
    match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(ctx)) => ctx
            .http
            .source_ip
            .clone()
            .filter(|ip| !ip.trim().is_empty()),
        _ => None,
    }
}

/// Whom `req` is counted against under `scope`; `None` when it is not counted.
pub fn who(req: &Request, scope: Scope) -> Option<Who> {
    who_of(req, Caller::from_request(req).ok(), scope)
}

/// [`who`], with the request's verified caller already read.
fn who_of(req: &Request, caller: Option<Caller>, scope: Scope) -> Option<Who> {
    let Scope::Count { user, costs } = scope else {
        return None;
    };
    Some(Who {
        user: user.or_else(|| caller.map(|c| c.user_id.as_str().to_owned())),
        address: source_address(req),
        costs,
    })
}

/// Adds the IETF `RateLimit-Policy` and `RateLimit` fields of `decision` to `resp`.
pub fn with_headers(mut resp: Response<Body>, decision: &Decision) -> Response<Body> {
    let usage = decision.usage();
    if usage.is_empty() {
        return resp;
    }
    let headers = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&policy_field(usage)) {
        headers.insert("ratelimit-policy", v);
    }
    if let Some(v) = remaining_field(usage).and_then(|r| HeaderValue::from_str(&r).ok()) {
        headers.insert("ratelimit", v);
    }
    resp
}

/// Counts `req` (as `who`; `None`: not at all), then answers it with `handler`, or with
/// a 429 that never reaches it. Every answer, error or not, carries the rate fields.
pub async fn limited<C, F, Fut>(
    limiter: &Limiter<C>,
    who: Option<Who>,
    req: Request,
    handler: F,
) -> ApiResult
where
    C: Counters,
    F: FnOnce(Request) -> Fut,
    Fut: Future<Output = ApiResult>,
{
    let Some(who) = who else {
        return handler(req).await;
    };
    let decision = limiter.check(&who).await;
    let request_id = req.request_id();
    let resp = match &decision {
        Decision::Refused { error, .. } => problem_response(error, &request_id),
        Decision::Allowed(_) => match handler(req).await {
            Ok(resp) => resp,
            Err(err) => problem_response(&err, &request_id),
        },
    };
    Ok(with_headers(resp, &decision))
}

/// [`shutter_http::serve`] with the function's rate limits (`RATE_LIMITS`) counted on
/// every request of a signed-in caller, by the token's `sub` and the source address.
pub async fn serve<D, B, F, Fut>(build: B, handler: F) -> Result<(), lambda_http::Error>
where
    D: Sync + 'static,
    B: AsyncFnOnce(&SdkConfig) -> Result<D, ConfigError>,
    F: Fn(&'static D, Request) -> Fut + Sync + 'static,
    Fut: Future<Output = ApiResult> + Send,
{
    serve_scoped(Audience::SignedIn, build, usual, handler).await
}

async fn usual<D>(_: &'static D, _: Vec<u8>) -> Result<Scope, ApiError> {
    Ok(Scope::usual())
}

/// Who may be counted on a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    /// Behind the JWT authorizer: a request without a verified caller is not counted. It
    /// reaches nothing a limit protects (the handler answers 401), and in production the
    /// authorizer refuses it before the function; counting it would only cost a write.
    SignedIn,
    /// Open to anyone (login, registration): counted as its scope says, by the source
    /// address when there is no caller.
    Anyone,
}

/// [`serve`], on a route open to `audience`, with `scope` deciding from the request's body
/// whether and how it is counted: an email change is counted as a password check and a
/// settings change is not ([`Audience::SignedIn`]); a login is counted against the account
/// it names and its source address ([`Audience::Anyone`]).
pub async fn serve_scoped<D, B, S, SFut, F, Fut>(
    audience: Audience,
    build: B,
    scope: S,
    handler: F,
) -> Result<(), lambda_http::Error>
where
    D: Sync + 'static,
    B: AsyncFnOnce(&SdkConfig) -> Result<D, ConfigError>,
    S: Fn(&'static D, Vec<u8>) -> SFut + Sync + 'static,
    SFut: Future<Output = Result<Scope, ApiError>> + Send,
    F: Fn(&'static D, Request) -> Fut + Sync + 'static,
    Fut: Future<Output = ApiResult> + Send,
{
    shutter_http::init_tracing();
    let aws = shutter_store::aws_config().await;
    let deps = build(&aws).await?;
    let limiter: &'static Limiter = Box::leak(Box::new(Limiter::from_env(&aws)?));
    let handler: &'static F = Box::leak(Box::new(handler));
    let scope: &'static S = Box::leak(Box::new(scope));
    shutter_http::run(deps, move |deps: &'static D, req: Request| async move {
        let who = counted_as(audience, &req, |body| scope(deps, body)).await?;
        limited(limiter, who, req, |req| handler(deps, req)).await
    })
    .await
}

/// Whom `req` is counted against on a route for `audience`, its body's `scope` asked only
/// when the request may be counted at all.
pub async fn counted_as<S, SFut>(
    audience: Audience,
    req: &Request,
    scope: S,
) -> Result<Option<Who>, ApiError>
where
    S: FnOnce(Vec<u8>) -> SFut,
    SFut: Future<Output = Result<Scope, ApiError>>,
{
    let caller = Caller::from_request(req).ok();
    if audience == Audience::SignedIn && caller.is_none() {
        return Ok(None);
    }
    let scope = scope(req.body().as_ref().to_vec()).await?;
    Ok(who_of(req, caller, scope))
}

/// The policy that counts bytes of media uploads.
pub const MEDIA_BYTES: &str = "media_bytes";

/// The bytes a request asks upload forms for: its `size` and each `media[].size` (a form
/// allows no more than the size it was asked for). Values that are not sizes count
/// nothing: the handler refuses them.
pub fn declared_bytes(body: &[u8]) -> u64 {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) else {
        return 0;
    };
    let media = value["media"].as_array().into_iter().flatten();
    std::iter::once(&value)
        .chain(media)
        .filter_map(|v| v["size"].as_u64())
        .fold(0u64, u64::saturating_add)
}

/// A scope for [`serve_scoped`]: counted as usual, and [`MEDIA_BYTES`] by the bytes the
/// request's upload forms allow ([`declared_bytes`]).
pub async fn declared_media_bytes<D>(_: &'static D, body: Vec<u8>) -> Result<Scope, ApiError> {
    Ok(Scope::Count {
        user: None,
        costs: vec![(MEDIA_BYTES.to_owned(), declared_bytes(&body))],
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::sync::Arc;

    use shutter_http::lambda_http::aws_lambda_events::apigw::ApiGatewayV2httpRequestContext;
    use shutter_http::lambda_http::http::StatusCode;
    use shutter_http::test_support::api_request;

    use super::*;
    use crate::model::parse_policies;
    use crate::store::MemoryCounters;

    fn from(req: Request, ip: &str) -> Request {
        let Some(RequestContext::ApiGatewayV2(mut ctx)) = req.request_context_ref().cloned() else {
            return req.with_request_context(RequestContext::ApiGatewayV2(
                ApiGatewayV2httpRequestContext::default(),
            ));
        };
        ctx.http.source_ip = Some(ip.to_owned());
        req.with_request_context(RequestContext::ApiGatewayV2(ctx))
    }

    fn like(user: &str, ip: &str, forwarded_for: &str) -> Request {
        let mut req = from(
            api_request(
                "PUT",
                "/v1/posts/x/like",
                &[],
                "",
                Some((user, "u", "user")),
            ),
            ip,
        );
        req.headers_mut().insert(
            "x-forwarded-for",
            HeaderValue::from_str(forwarded_for).unwrap(),
        );
        req
    }

    async fn ok(_: Request) -> ApiResult {
        shutter_http::json(StatusCode::OK, &serde_json::json!({"liked": true}))
    }

    #[tokio::test]
    async fn the_429_says_which_limit_when_to_retry_and_never_runs_the_handler() {
        let limiter = Limiter {
            counters: MemoryCounters::default(),
            policies: parse_policies("likes@user=1/3600").unwrap(),
        };
        let user = shutter_core::new_id();
        let req = like(&user, "203.0.113.7", "1.2.3.4");
        let first = limited(&limiter, who(&req, Scope::usual()), req, ok)
            .await
            .unwrap();
        assert_eq!(first.status(), 200);
        assert!(
            first.headers()["ratelimit-policy"]
                .to_str()
                .unwrap()
                .starts_with("\"likes-1h\";q=1;w=3600")
        );
        assert!(
            first.headers()["ratelimit"]
                .to_str()
                .unwrap()
                .starts_with("\"likes-1h\";r=0;t=")
        );

        let ran = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let seen = ran.clone();
        let req = like(&user, "203.0.113.7", "9.9.9.9");
        let second = limited(&limiter, who(&req, Scope::usual()), req, |_| async move {
            seen.store(true, std::sync::atomic::Ordering::SeqCst);
            ok(Request::default()).await
        })
        .await
        .unwrap();
        assert!(!ran.load(std::sync::atomic::Ordering::SeqCst));
        assert_eq!(second.status(), 429);
        assert_eq!(second.headers()["content-type"], "application/problem+json");
        let retry: u64 = second.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=3600).contains(&retry));
        assert!(second.headers().contains_key("ratelimit"));
        let body: serde_json::Value = serde_json::from_slice(second.body().as_ref()).unwrap();
        assert_eq!(body["code"], "rate_limited");
        assert_eq!(body["limit"], "likes");
        assert_eq!(body["window_seconds"], 3600);
        assert_eq!(body["retry_after"], retry);
        assert_eq!(body["request_id"], "test-request");
    }

    #[test]
    fn upload_requests_count_the_bytes_they_declare() {
        assert_eq!(
            declared_bytes(br#"{"media": [{"size": 2048}, {"size": 4096}], "caption": "x"}"#),
            6144
        );
        assert_eq!(
            declared_bytes(br#"{"content_type": "image/png", "size": 10}"#),
            10
        );
        assert_eq!(
            declared_bytes(br#"{"media": [{"size": -1}, {"size": "9"}]}"#),
            0
        );
        assert_eq!(declared_bytes(b"not json"), 0);
    }

    #[test]
    fn the_address_is_api_gateways_never_a_header() {
        let req = like(&shutter_core::new_id(), "203.0.113.7", "198.51.100.1");
        assert_eq!(source_address(&req).as_deref(), Some("203.0.113.7"));
        let who = who(&req, Scope::usual()).unwrap();
        assert_eq!(who.address.as_deref(), Some("203.0.113.7"));
        assert!(who.user.is_some());
        assert_eq!(super::who(&req, Scope::Skip), None);
    }

    #[tokio::test]
    async fn a_request_without_a_verified_caller_is_counted_only_on_a_public_route() {
        let usual = |_: Vec<u8>| async { Ok(Scope::usual()) };
        let anonymous = from(
            api_request("DELETE", "/v1/users/me", &[], "{}", None),
            "203.0.113.7",
        );
        assert_eq!(
            counted_as(Audience::SignedIn, &anonymous, usual)
                .await
                .unwrap(),
            None
        );
        let who = counted_as(Audience::Anyone, &anonymous, usual)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(who.address.as_deref(), Some("203.0.113.7"));
        assert_eq!(who.user, None);

        let user = shutter_core::new_id();
        let signed_in = like(&user, "203.0.113.7", "1.2.3.4");
        let who = counted_as(Audience::SignedIn, &signed_in, usual)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(who.user.as_deref(), Some(user.as_str()));
        assert_eq!(who.address.as_deref(), Some("203.0.113.7"));
        // The body's scope still decides for a signed-in caller.
        let skip = |_: Vec<u8>| async { Ok(Scope::Skip) };
        assert_eq!(
            counted_as(Audience::SignedIn, &signed_in, skip)
                .await
                .unwrap(),
            None
        );
    }

    #[test]
    fn a_login_counts_against_the_account_it_names() {
        let anonymous = from(
            api_request("POST", "/v1/auth/login", &[], "{}", None),
            "203.0.113.7",
        );
        let who = who(
            &anonymous,
            Scope::Count {
                user: Some("01ACCOUNT".to_owned()),
                costs: Vec::new(),
            },
        )
        .unwrap();
        assert_eq!(who.user.as_deref(), Some("01ACCOUNT"));
        assert_eq!(who.address.as_deref(), Some("203.0.113.7"));
    }
}
