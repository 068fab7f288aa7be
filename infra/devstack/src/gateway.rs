//! The local API Gateway HTTP API: routes from the template's `HttpApi` events, the JWT
//! authorizer enforced as API Gateway enforces it, and payload format 2.0 events handed to
//! the functions' real binaries.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value, json};
use tokio::sync::RwLock;

use crate::Error;
use crate::runtime::{Function, InvokeError};
use crate::template::{ACCOUNT, FunctionSpec, Resolver, Template};

/// API Gateway's payload limit.
const MAX_PAYLOAD: usize = 10 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq)]
enum Segment {
    Literal(String),
    Param(String),
    Greedy(String),
}

/// One route of the template.
#[derive(Debug, Clone)]
pub struct Route {
    pub method: String,
    pub path: String,
    pub function: String,
    pub authorizer: Option<String>,
    pub scopes: Vec<String>,
    segments: Vec<Segment>,
}

impl Route {
    pub fn new(
        method: &str,
        path: &str,
        function: &str,
        authorizer: Option<String>,
        scopes: Vec<String>,
    ) -> Self {
        let segments = path
            .split('/')
            .filter(|s| !s.is_empty())
            .map(
                |s| match s.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                    Some(name) => match name.strip_suffix('+') {
                        Some(greedy) => Segment::Greedy(greedy.to_owned()),
                        None => Segment::Param(name.to_owned()),
                    },
                    None => Segment::Literal(s.to_owned()),
                },
            )
            .collect();
        Self {
            method: method.to_uppercase(),
            path: path.to_owned(),
            function: function.to_owned(),
            authorizer,
            scopes,
            segments,
        }
    }

    pub fn route_key(&self) -> String {
        format!("{} {}", self.method, self.path)
    }

    /// Path parameters when `path` matches, with a specificity score: literal segments
    /// beat parameters, which beat a greedy tail.
    fn matches(&self, path: &str) -> Option<(u32, HashMap<String, String>)> {
        let parts: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        let mut params = HashMap::new();
        let mut score = 0;
        for (i, seg) in self.segments.iter().enumerate() {
            match seg {
                Segment::Greedy(name) => {
                    if i >= parts.len() {
                        return None;
                    }
                    params.insert(name.clone(), decode(&parts[i..].join("/")));
                    return Some((score, params));
                }
                Segment::Literal(lit) => {
                    if parts.get(i) != Some(&lit.as_str()) {
                        return None;
                    }
                    score += 1000;
                }
                Segment::Param(name) => {
                    let part = parts.get(i)?;
                    params.insert(name.clone(), decode(part));
                    score += 10;
                }
            }
        }
        (parts.len() == self.segments.len()).then_some((score, params))
    }
}

#[cfg(test)]
mod throttle_tests {
    use super::*;

    #[test]
    fn a_bucket_lets_a_burst_through_then_its_rate() {
        let t = Throttle::new(ThrottleSettings {
            rate: 1.0,
            burst: 3.0,
        });
        assert!((0..3).all(|_| t.admit()));
        assert!(!t.admit());
        std::thread::sleep(Duration::from_millis(1100));
        assert!(t.admit());
        assert!(!t.admit());
    }

    #[test]
    fn settings_are_read_as_the_template_resolves_them() {
        let s = ThrottleSettings::from_props(
            &json!({"ThrottlingRateLimit": "20", "ThrottlingBurstLimit": 40}),
        );
        assert_eq!(
            s,
            Some(ThrottleSettings {
                rate: 20.0,
                burst: 40.0
            })
        );
        assert_eq!(ThrottleSettings::from_props(&Value::Null), None);
    }
}

fn decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

/// The gateway of every `AWS::Serverless::HttpApi` in the template: its routes (from the
/// functions' `HttpApi` events), JWT authorizers and CORS configuration.
pub fn from_template(
    template: &Template,
    resolver: &Resolver,
    specs: &[FunctionSpec],
    functions: HashMap<String, Arc<Function>>,
) -> Result<Gateway, Error> {
    let mut authorizers = HashMap::new();
    let mut defaults = HashMap::new();
    let mut cors = None;
    let mut default_throttle = None;
    let mut route_throttles = HashMap::new();
    for (id, raw) in template.resources_of("AWS::Serverless::HttpApi") {
        // Only what the local gateway enforces: the rest (access logs, stages, domains)
        // names resources that have no local stand-in.
        let props = json!({
            "Auth": resolver.resolve(&raw["Auth"])?,
            "CorsConfiguration": resolver.resolve(&raw["CorsConfiguration"])?,
            "DefaultRouteSettings": resolver.resolve(&raw["DefaultRouteSettings"])?,
            "RouteSettings": resolver.resolve(&raw["RouteSettings"])?,
        });
        default_throttle = ThrottleSettings::from_props(&props["DefaultRouteSettings"]);
        for (key, settings) in props["RouteSettings"].as_object().into_iter().flatten() {
            if let Some(t) = ThrottleSettings::from_props(settings) {
                route_throttles.insert(key.clone(), t);
            }
        }
        for (name, auth) in props["Auth"]["Authorizers"]
            .as_object()
            .into_iter()
            .flatten()
        {
            let jwt = &auth["JwtConfiguration"];
            let issuer = jwt["issuer"]
                .as_str()
                .ok_or_else(|| Error::Template(format!("{id}: authorizer {name} has no issuer")))?;
            let audience = jwt["audience"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|a| a.as_str().map(str::to_owned))
                .collect();
            authorizers.insert(name.clone(), JwtAuthorizer::new(issuer, audience));
        }
        if let Some(default) = props["Auth"]["DefaultAuthorizer"].as_str() {
            defaults.insert(id.to_owned(), default.to_owned());
        }
        if props["CorsConfiguration"].is_object() {
            cors = Some(Cors::from_props(&props["CorsConfiguration"]));
        }
    }
    let mut routes = Vec::new();
    for f in specs {
        for (name, ty, props) in &f.events {
            if ty != "HttpApi" {
                continue;
            }
            let method = props["Method"].as_str().unwrap_or("ANY");
            let path = props["Path"].as_str().ok_or_else(|| {
                Error::Template(format!("{}.{name}: HttpApi event without Path", f.name))
            })?;
            let api = props["ApiId"].as_str().unwrap_or_default();
            let default = defaults
                .get(api)
                .or_else(|| defaults.values().next())
                .cloned();
            let authorizer = match props["Auth"]["Authorizer"].as_str() {
                Some("NONE") => None,
                Some(named) => Some(named.to_owned()),
                None => default,
            };
            if let Some(a) = &authorizer
                && !authorizers.contains_key(a)
            {
                return Err(Error::Template(format!(
                    "{}.{name}: unknown authorizer {a}",
                    f.name
                )));
            }
            let scopes = props["Auth"]["AuthorizationScopes"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect();
            routes.push(Route::new(method, path, &f.name, authorizer, scopes));
        }
    }
    // One bucket per route, as API Gateway keeps them: the route's own settings, else the
    // stage's default.
    let throttles = routes
        .iter()
        .filter_map(|r| {
            let key = r.route_key();
            let settings = route_throttles.get(&key).copied().or(default_throttle)?;
            Some((key, Throttle::new(settings)))
        })
        .collect();
    Ok(Gateway {
        routes,
        authorizers,
        functions,
        cors,
        throttles,
    })
}

/// A route's throttle as the template sets it (`ThrottlingRateLimit` requests a second,
/// `ThrottlingBurstLimit` at once).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ThrottleSettings {
    pub rate: f64,
    pub burst: f64,
}

impl ThrottleSettings {
    fn from_props(p: &Value) -> Option<Self> {
        let number = |k: &str| match &p[k] {
            Value::Number(n) => n.as_f64(),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        };
        match (
            number("ThrottlingRateLimit"),
            number("ThrottlingBurstLimit"),
        ) {
            (None, None) => None,
            (rate, burst) => Some(Self {
                rate: rate.unwrap_or(f64::INFINITY),
                burst: burst.unwrap_or(f64::INFINITY),
            }),
        }
    }
}

/// API Gateway's throttle of one route: a token bucket holding at most `burst` tokens,
/// refilled at `rate` a second; a request takes one or is refused 429 before any
/// authorizer or function runs.
#[derive(Debug)]
pub struct Throttle {
    settings: ThrottleSettings,
    /// (tokens, when they were counted)
    bucket: std::sync::Mutex<(f64, Instant)>,
}

impl Throttle {
    pub fn new(settings: ThrottleSettings) -> Self {
        Self {
            settings,
            bucket: std::sync::Mutex::new((settings.burst, Instant::now())),
        }
    }

    /// Takes a token if there is one.
    pub fn admit(&self) -> bool {
        let Ok(mut bucket) = self.bucket.lock() else {
            return true;
        };
        let (tokens, at) = *bucket;
        let now = Instant::now();
        let refilled = (tokens + now.duration_since(at).as_secs_f64() * self.settings.rate)
            .min(self.settings.burst);
        if refilled >= 1.0 {
            *bucket = (refilled - 1.0, now);
            true
        } else {
            *bucket = (refilled, now);
            false
        }
    }
}

/// The HttpApi's CORS configuration; API Gateway answers preflights itself.
#[derive(Debug, Clone)]
pub struct Cors {
    origins: Vec<String>,
    headers: String,
    methods: String,
}

impl Cors {
    fn from_props(p: &Value) -> Self {
        let list = |k: &str| {
            p[k].as_array()
                .into_iter()
                .flatten()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect::<Vec<_>>()
        };
        Self {
            origins: list("AllowOrigins"),
            headers: list("AllowHeaders").join(","),
            methods: list("AllowMethods").join(","),
        }
    }

    fn allow_origin(&self, origin: &str) -> Option<String> {
        if self.origins.iter().any(|o| o == "*") {
            Some("*".to_owned())
        } else {
            self.origins
                .iter()
                .any(|o| o == origin)
                .then(|| origin.to_owned())
        }
    }
}

/// Why a token was refused.
#[derive(Debug, PartialEq)]
pub enum Denied {
    Unauthorized(String),
    Forbidden,
}

/// API Gateway's JWT authorizer: RS256 only, the key found by `kid` in the issuer's JWKS
/// (from its OpenID configuration), `iss`, `aud`, `exp`, `nbf` and `iat` checked, then the
/// route's scopes against `scope`/`scp`.
#[derive(Debug)]
pub struct JwtAuthorizer {
    issuer: String,
    audience: Vec<String>,
    jwks: RwLock<Option<(JwkSet, Instant)>>,
    http: reqwest::Client,
}

impl JwtAuthorizer {
    pub fn new(issuer: &str, audience: Vec<String>) -> Self {
        Self {
            issuer: issuer.to_owned(),
            audience,
            jwks: RwLock::new(None),
            http: reqwest::Client::new(),
        }
    }

    async fn fetch_jwks(&self) -> Result<JwkSet, String> {
        let discovery = format!(
            "{}/.well-known/openid-configuration",
            self.issuer.trim_end_matches('/')
        );
        let config: Value = crate::json_answer(self.http.get(&discovery)).await?;
        let jwks_uri = config["jwks_uri"]
            .as_str()
            .ok_or("the OpenID configuration has no jwks_uri")?;
        crate::json_answer(self.http.get(jwks_uri)).await
    }

    /// The key for `kid`, fetching the JWKS when it is unknown (a rotation), at most
    /// once every few seconds.
    async fn key(&self, kid: &str) -> Result<DecodingKey, Denied> {
        let find = |set: &JwkSet| {
            set.find(kid)
                .and_then(|jwk| DecodingKey::from_jwk(jwk).ok())
        };
        if let Some((set, fetched)) = &*self.jwks.read().await {
            if let Some(key) = find(set) {
                return Ok(key);
            }
            if fetched.elapsed() < Duration::from_secs(5) {
                return Err(Denied::Unauthorized("unknown kid".into()));
            }
        }
        let set = self
            .fetch_jwks()
            .await
            .map_err(|e| Denied::Unauthorized(format!("cannot read the issuer's JWKS: {e}")))?;
        let key = find(&set);
        *self.jwks.write().await = Some((set, Instant::now()));
        key.ok_or_else(|| Denied::Unauthorized("unknown kid".into()))
    }

    /// The verified claims, or why not.
    pub async fn verify(
        &self,
        authorization: Option<&str>,
        scopes: &[String],
    ) -> Result<Map<String, Value>, Denied> {
        let raw = authorization
            .ok_or_else(|| Denied::Unauthorized("no token".into()))?
            .trim();
        let token = raw
            .strip_prefix("Bearer ")
            .or_else(|| raw.strip_prefix("bearer "))
            .unwrap_or(raw)
            .trim();
        let header = jsonwebtoken::decode_header(token)
            .map_err(|e| Denied::Unauthorized(format!("malformed token: {e}")))?;
        if header.alg != Algorithm::RS256 {
            return Err(Denied::Unauthorized("only RS256 is accepted".into()));
        }
        let kid = header
            .kid
            .ok_or_else(|| Denied::Unauthorized("no kid".into()))?;
        let key = self.key(&kid).await?;
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&self.audience);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        validation.validate_nbf = true;
        validation.leeway = 5;
        let data = jsonwebtoken::decode::<Map<String, Value>>(token, &key, &validation)
            .map_err(|e| Denied::Unauthorized(format!("invalid token: {e}")))?;
        let claims = data.claims;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        if claims
            .get("iat")
            .and_then(Value::as_u64)
            .is_some_and(|iat| iat > now + 5)
        {
            return Err(Denied::Unauthorized("issued in the future".into()));
        }
        if !scopes_allow(&claims, scopes) {
            return Err(Denied::Forbidden);
        }
        Ok(claims)
    }
}

/// Whether a token's `scope` (space-separated) or `scp` (an array) grants a route whose
/// `AuthorizationScopes` are `scopes`: as API Gateway does, ANY one of them suffices (a
/// route listing `[moderator, admin]` admits either); a route without scopes admits all.
fn scopes_allow(claims: &Map<String, Value>, scopes: &[String]) -> bool {
    if scopes.is_empty() {
        return true;
    }
    let granted: Vec<String> = match claims.get("scope").or_else(|| claims.get("scp")) {
        Some(Value::String(s)) => s.split_whitespace().map(str::to_owned).collect(),
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    };
    scopes.iter().any(|s| granted.contains(s))
}

/// Claims as API Gateway hands them to the function: every value a string, arrays as
/// `[a b]`.
fn claims_as_strings(claims: &Map<String, Value>) -> Value {
    Value::Object(
        claims
            .iter()
            .map(|(k, v)| {
                let s = match v {
                    Value::String(s) => s.clone(),
                    Value::Array(a) => format!(
                        "[{}]",
                        a.iter()
                            .map(|i| i
                                .as_str()
                                .map(str::to_owned)
                                .unwrap_or_else(|| i.to_string()))
                            .collect::<Vec<_>>()
                            .join(" ")
                    ),
                    other => other.to_string(),
                };
                (k.clone(), Value::String(s))
            })
            .collect(),
    )
}

/// The gateway's state.
#[derive(Debug)]
pub struct Gateway {
    pub routes: Vec<Route>,
    pub authorizers: HashMap<String, JwtAuthorizer>,
    pub functions: HashMap<String, Arc<Function>>,
    pub cors: Option<Cors>,
    /// Each route's throttle, by route key (`POST /v1/auth/login`).
    pub throttles: HashMap<String, Throttle>,
}

fn plain(status: StatusCode, body: Value, extra: &[(&str, String)]) -> Response {
    let mut resp = (
        status,
        [("content-type", "application/json")],
        body.to_string(),
    )
        .into_response();
    for (k, v) in extra {
        if let (Ok(k), Ok(v)) = (HeaderName::try_from(*k), HeaderValue::from_str(v)) {
            resp.headers_mut().insert(k, v);
        }
    }
    resp
}

fn problem(status: StatusCode, code: &str, detail: String, extra: &[(&str, String)]) -> Response {
    let body = json!({
        "type": format!("https://shutter.dev/problems/{code}"),
        "title": status.canonical_reason().unwrap_or("Error"),
        "status": status.as_u16(),
        "code": code,
        "detail": detail,
    });
    let mut resp = plain(status, body, extra);
    resp.headers_mut().insert(
        "content-type",
        HeaderValue::from_static("application/problem+json"),
    );
    resp
}

fn is_text(content_type: &str) -> bool {
    let ct = content_type.to_ascii_lowercase();
    ct.starts_with("text/")
        || ["json", "xml", "javascript", "x-www-form-urlencoded"]
            .iter()
            .any(|t| ct.contains(t))
}

pub async fn handle(State(gw): State<Arc<Gateway>>, req: Request) -> Response {
    let request_id = ulid::Ulid::new().to_string();
    let mut resp = serve(&gw, req, &request_id).await;
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        resp.headers_mut().insert("apigw-requestid", v);
    }
    resp
}

async fn serve(gw: &Gateway, req: Request, request_id: &str) -> Response {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_owned();
    let origin = parts
        .headers
        .get("origin")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let cors_origin = gw
        .cors
        .as_ref()
        .zip(origin.as_deref())
        .and_then(|(c, o)| c.allow_origin(o));

    if parts.method == Method::OPTIONS
        && parts.headers.contains_key("access-control-request-method")
        && let (Some(cors), Some(allow)) = (&gw.cors, &cors_origin)
    {
        return plain(
            StatusCode::NO_CONTENT,
            Value::Null,
            &[
                ("access-control-allow-origin", allow.clone()),
                ("access-control-allow-methods", cors.methods.clone()),
                ("access-control-allow-headers", cors.headers.clone()),
                ("access-control-max-age", "600".into()),
            ],
        )
        .map(|_| Body::empty());
    }

    let mut candidates: Vec<(u32, &Route, HashMap<String, String>)> = gw
        .routes
        .iter()
        .filter_map(|r| r.matches(&path).map(|(s, p)| (s, r, p)))
        .collect();
    if candidates.is_empty() {
        return problem(
            StatusCode::NOT_FOUND,
            "route_not_found",
            format!("no route matches {} {path}", parts.method),
            &[],
        );
    }
    candidates.sort_by_key(|c| std::cmp::Reverse(c.0));
    let method = parts.method.as_str();
    let Some((_, route, params)) = candidates
        .iter()
        .find(|(_, r, _)| r.method == method || r.method == "ANY")
    else {
        // The methods of the most specific path template that matches, as documented.
        let best = candidates[0].0;
        let mut allowed: Vec<&str> = candidates
            .iter()
            .filter(|(score, _, _)| *score == best)
            .map(|(_, r, _)| r.method.as_str())
            .collect();
        allowed.sort();
        allowed.dedup();
        return problem(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            format!("{path} does not accept {method}"),
            &[("allow", allowed.join(", "))],
        );
    };

    // Throttled before the authorizer, as API Gateway does.
    if let Some(throttle) = gw.throttles.get(&route.route_key())
        && !throttle.admit()
    {
        return plain(
            StatusCode::TOO_MANY_REQUESTS,
            json!({"message": "Too Many Requests"}),
            &[],
        );
    }

    let mut authorizer_context = Value::Null;
    if let Some(name) = &route.authorizer {
        let authorizer = &gw.authorizers[name];
        let header = parts
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok());
        match authorizer.verify(header, &route.scopes).await {
            Ok(claims) => {
                let scopes = if route.scopes.is_empty() {
                    Value::Null
                } else {
                    json!(route.scopes)
                };
                authorizer_context =
                    json!({"jwt": {"claims": claims_as_strings(&claims), "scopes": scopes}});
            }
            Err(Denied::Unauthorized(why)) => {
                tracing::debug!("401 {}: {why}", route.route_key());
                let challenge = if header.is_none() {
                    "Bearer".to_owned()
                } else {
                    "Bearer error=\"invalid_token\"".to_owned()
                };
                return plain(
                    StatusCode::UNAUTHORIZED,
                    json!({"message": "Unauthorized"}),
                    &[("www-authenticate", challenge)],
                );
            }
            Err(Denied::Forbidden) => {
                return plain(StatusCode::FORBIDDEN, json!({"message": "Forbidden"}), &[]);
            }
        }
    }

    let Ok(body) = axum::body::to_bytes(body, MAX_PAYLOAD).await else {
        return problem(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "the request body exceeds API Gateway's 10 MB".into(),
            &[],
        );
    };
    let event = event_v2(
        &parts.method,
        &parts.uri,
        &parts.headers,
        &body,
        route,
        params,
        authorizer_context,
        request_id,
    );
    let Some(function) = gw.functions.get(&route.function) else {
        return plain(
            StatusCode::INTERNAL_SERVER_ERROR,
            json!({"message": "Internal Server Error"}),
            &[],
        );
    };
    let mut resp = match function.invoke(&event).await {
        Ok(out) => to_response(out),
        Err(InvokeError::Timeout(_)) => plain(
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"message": "Service Unavailable"}),
            &[],
        ),
        Err(e) => {
            tracing::warn!("{} failed: {e}", route.function);
            plain(
                StatusCode::INTERNAL_SERVER_ERROR,
                json!({"message": "Internal Server Error"}),
                &[],
            )
        }
    };
    if let Some(allow) = cors_origin.and_then(|a| HeaderValue::from_str(&a).ok()) {
        resp.headers_mut()
            .insert("access-control-allow-origin", allow);
    }
    resp
}

#[allow(clippy::too_many_arguments)]
fn event_v2(
    method: &Method,
    uri: &axum::http::Uri,
    headers: &HeaderMap,
    body: &Bytes,
    route: &Route,
    params: &HashMap<String, String>,
    authorizer: Value,
    request_id: &str,
) -> Value {
    let mut hdrs: Map<String, Value> = Map::new();
    let mut cookies = Vec::new();
    for (name, value) in headers {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        if name == "cookie" {
            cookies.extend(value.split(';').map(|c| json!(c.trim())));
            continue;
        }
        hdrs.entry(name.as_str().to_owned())
            .and_modify(|v| *v = json!(format!("{},{}", v.as_str().unwrap_or_default(), value)))
            .or_insert(json!(value));
    }
    let raw_query = uri.query().unwrap_or_default();
    let mut query: Map<String, Value> = Map::new();
    for (k, v) in url::form_urlencoded::parse(raw_query.as_bytes()) {
        query
            .entry(k.into_owned())
            .and_modify(|old| *old = json!(format!("{},{}", old.as_str().unwrap_or_default(), v)))
            .or_insert(json!(v.into_owned()));
    }
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let (body, b64) = if body.is_empty() {
        (Value::Null, false)
    } else if is_text(content_type) {
        match std::str::from_utf8(body) {
            Ok(s) => (json!(s), false),
            Err(_) => (
                json!(base64::engine::general_purpose::STANDARD.encode(body)),
                true,
            ),
        }
    } else {
        (
            json!(base64::engine::general_purpose::STANDARD.encode(body)),
            true,
        )
    };
    let now = time::OffsetDateTime::now_utc();
    let clf = time::macros::format_description!(
        "[day]/[month repr:short]/[year]:[hour]:[minute]:[second] +0000"
    );
    let mut authorizer = authorizer;
    if let Some(obj) = authorizer.as_object_mut() {
        obj.insert("jwt".into(), obj.get("jwt").cloned().unwrap_or(Value::Null));
    }
    let mut event = json!({
        "version": "2.0",
        "routeKey": route.route_key(),
        "rawPath": uri.path(),
        "rawQueryString": raw_query,
        "headers": hdrs,
        "requestContext": {
            "accountId": ACCOUNT,
            "apiId": "local",
            "domainName": headers.get("host").and_then(|h| h.to_str().ok()).unwrap_or("127.0.0.1"),
            "domainPrefix": "local",
            "http": {
                "method": method.as_str(),
                "path": uri.path(),
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": headers.get("user-agent").and_then(|h| h.to_str().ok()).unwrap_or_default(),
            },
            "requestId": request_id,
            "routeKey": route.route_key(),
            "stage": "$default",
            "time": now.format(&clf).unwrap_or_default(),
            "timeEpoch": (now.unix_timestamp_nanos() / 1_000_000) as i64,
        },
        "isBase64Encoded": b64,
    });
    if !cookies.is_empty() {
        event["cookies"] = json!(cookies);
    }
    if !query.is_empty() {
        event["queryStringParameters"] = Value::Object(query);
    }
    if !params.is_empty() {
        event["pathParameters"] = json!(params);
    }
    if !authorizer.is_null() {
        event["requestContext"]["authorizer"] = authorizer;
    }
    if !body.is_null() {
        event["body"] = body;
    }
    event
}

/// The function's payload 2.0 response as HTTP.
fn to_response(out: Value) -> Response {
    if out.get("statusCode").is_none() {
        // Lambda's inferred format: any JSON is a 200 application/json body.
        return plain(StatusCode::OK, out, &[]);
    }
    let status = out["statusCode"]
        .as_u64()
        .and_then(|s| StatusCode::from_u16(s as u16).ok())
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = match out["body"].as_str() {
        Some(b) if out["isBase64Encoded"] == json!(true) => {
            base64::engine::general_purpose::STANDARD
                .decode(b)
                .unwrap_or_default()
        }
        Some(b) => b.as_bytes().to_vec(),
        None => Vec::new(),
    };
    let mut resp = Response::new(Body::from(body));
    *resp.status_mut() = status;
    let headers = resp.headers_mut();
    for (k, v) in out["headers"].as_object().into_iter().flatten() {
        if let (Ok(k), Ok(v)) = (
            HeaderName::try_from(k.as_str()),
            HeaderValue::from_str(&crate::template::scalar_string(v)),
        ) {
            headers.insert(k, v);
        }
    }
    for (k, vs) in out["multiValueHeaders"].as_object().into_iter().flatten() {
        for v in vs.as_array().into_iter().flatten() {
            if let (Ok(k), Ok(v)) = (
                HeaderName::try_from(k.as_str()),
                HeaderValue::from_str(&crate::template::scalar_string(v)),
            ) {
                headers.append(k, v);
            }
        }
    }
    for c in out["cookies"].as_array().into_iter().flatten() {
        if let Some(v) = c.as_str().and_then(|c| HeaderValue::from_str(c).ok()) {
            headers.append("set-cookie", v);
        }
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_segments_beat_parameters() {
        let me = Route::new("GET", "/v1/users/me", "Me", None, vec![]);
        let by_name = Route::new("GET", "/v1/users/{username}", "ByName", None, vec![]);
        let (me_score, _) = me.matches("/v1/users/me").unwrap();
        let (param_score, params) = by_name.matches("/v1/users/me").unwrap();
        assert!(me_score > param_score);
        assert_eq!(params["username"], "me");
        assert_eq!(
            by_name.matches("/v1/users/a%20b").unwrap().1["username"],
            "a b"
        );
        assert!(by_name.matches("/v1/users").is_none());
        assert!(by_name.matches("/v1/users/a/b").is_none());
    }

    #[test]
    fn greedy_paths_take_the_rest() {
        let r = Route::new("ANY", "/files/{proxy+}", "F", None, vec![]);
        assert_eq!(r.matches("/files/a/b/c").unwrap().1["proxy"], "a/b/c");
        assert!(r.matches("/files").is_none());
    }

    #[test]
    fn a_route_with_several_scopes_admits_a_token_with_any_of_them() {
        let staff = ["moderator".to_owned(), "admin".to_owned()];
        let claims = |v: Value| v.as_object().cloned().unwrap_or_default();
        assert!(scopes_allow(
            &claims(json!({"scope": "user moderator"})),
            &staff
        ));
        assert!(scopes_allow(&claims(json!({"scope": "admin"})), &staff));
        assert!(scopes_allow(
            &claims(json!({"scp": ["user", "admin"]})),
            &staff
        ));
        assert!(!scopes_allow(&claims(json!({"scope": "user"})), &staff));
        assert!(!scopes_allow(
            &claims(json!({"scope": "moderators"})),
            &staff
        ));
        assert!(!scopes_allow(&claims(json!({})), &staff));
        assert!(scopes_allow(&claims(json!({})), &[]));
    }

    #[test]
    fn claims_reach_functions_as_strings() {
        let claims = json!({"sub": "u1", "exp": 17, "aud": ["a", "b"], "admin": true});
        let s = claims_as_strings(claims.as_object().unwrap());
        assert_eq!(
            s,
            json!({"sub": "u1", "exp": "17", "aud": "[a b]", "admin": "true"})
        );
    }

    #[test]
    fn structured_responses_keep_status_headers_and_cookies() {
        let resp = to_response(json!({
            "statusCode": 201, "headers": {"content-type": "application/json"},
            "cookies": ["a=1", "b=2"], "body": "{}", "isBase64Encoded": false
        }));
        assert_eq!(resp.status(), StatusCode::CREATED);
        assert_eq!(resp.headers().get_all("set-cookie").iter().count(), 2);
    }
}
