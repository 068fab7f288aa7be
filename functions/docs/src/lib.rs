//! The docs service: the deployed API documents itself, as the devstack does.
//!
//! - `GET /openapi.json`: the checked-in `docs/openapi.json` (generated from the handlers by
//!   `cargo run -p shutter-apidocs`), with `servers` set to the origin and path prefix the
//!   request came to (`https://<api domain>/<stage>`, `http://127.0.0.1:8080` locally), so
//!   Swagger UI's "Try it out" calls the API that served it.
//! - `GET /docs`: Swagger UI reading that document; its files under `/docs/{proxy+}`.
//!
//! The routes are public, read no store and no secret. They are not API operations: the
//! OpenAPI document does not list them (the API contract test leaves the docs function's
//! routes out). Swagger UI's files are the vendored release utoipa-swagger-ui uses, only
//! those the page loads, gzipped at build time (`build.rs`).

use std::borrow::Cow;
use std::io::Read;

use serde_json::{Map, Value};
use shutter_core::ApiError;
use shutter_http::lambda_http::http::{HeaderValue, StatusCode, header};
use shutter_http::lambda_http::request::RequestContext;
use shutter_http::lambda_http::{Body, Request, RequestExt, Response};
use shutter_store::{ConfigError, SdkConfig};

/// The OpenAPI document, as checked in.
pub const OPENAPI: &str = include_str!("../../../docs/openapi.json");

/// One of Swagger UI's files.
#[derive(Debug)]
pub struct Asset {
    pub name: &'static str,
    pub content_type: &'static str,
    pub gzip: &'static [u8],
}

mod assets {
    use super::Asset;
    include!(concat!(env!("OUT_DIR"), "/assets.rs"));
}
pub use assets::FILES;

/// Swagger UI's page. Its files and the document are named relative to `/docs/`, so the
/// page works under any stage or path prefix the API is served at.
pub const INDEX_HTML: &str = r#"<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Shutter API</title>
  <link rel="stylesheet" href="swagger-ui.css">
  <link rel="stylesheet" href="index.css">
  <link rel="icon" type="image/png" href="favicon-32x32.png" sizes="32x32">
  <link rel="icon" type="image/png" href="favicon-16x16.png" sizes="16x16">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="swagger-ui-bundle.js"></script>
  <script src="swagger-ui-standalone-preset.js"></script>
  <script src="swagger-initializer.js"></script>
</body>
</html>
"#;

/// Swagger UI's configuration: the document beside `/docs`, and the access token kept
/// across reloads once entered under "Authorize".
pub const INITIALIZER_JS: &str = r##"window.onload = function () {
  window.ui = SwaggerUIBundle({
    url: "../openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    persistAuthorization: true,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
    plugins: [SwaggerUIBundle.plugins.DownloadUrl],
    layout: "StandaloneLayout"
  });
};
"##;

/// The checked-in document as build.rs prepared it: without `servers`, compact.
pub const PREPARED: &str = include_str!(concat!(env!("OUT_DIR"), "/openapi.json"));

/// What the function serves.
#[derive(Debug)]
pub struct Docs {
    /// The document without `servers`, serialised: `{"openapi":...}`.
    document: Cow<'static, str>,
}

impl Docs {
    /// The checked-in document, prepared at build time: no AWS call, nothing parsed at
    /// init or on the first request (parsing its 200 KB took milliseconds).
    pub async fn from_env(_aws: &SdkConfig) -> Result<Self, ConfigError> {
        Ok(Self {
            document: Cow::Borrowed(PREPARED),
        })
    }

    /// `document`, checked and prepared now.
    pub fn new(document: &str) -> Result<Self, ConfigError> {
        Ok(Self {
            document: Cow::Owned(prepare(document)?),
        })
    }

    /// The document, its `servers` the one at `server_url` when there is one.
    pub fn document(&self, server_url: Option<&str>) -> String {
        match server_url {
            // `document` is a non-empty object: `{` and at least one member follow.
            Some(url) => format!(
                "{{\"servers\":[{{\"url\":{}}}],{}",
                Value::String(url.to_owned()),
                &self.document[1..]
            ),
            None => self.document.clone().into_owned(),
        }
    }
}

/// `document` without `servers`, serialised.
fn prepare(document: &str) -> Result<String, ConfigError> {
    let invalid = |reason: String| ConfigError::Invalid {
        name: "docs/openapi.json",
        reason,
    };
    let mut doc: Map<String, Value> =
        serde_json::from_str(document).map_err(|e| invalid(e.to_string()))?;
    doc.remove("servers");
    if doc.is_empty() {
        return Err(invalid("an empty document".into()));
    }
    serde_json::to_string(&doc).map_err(|e| invalid(e.to_string()))
}

/// `GET /openapi.json`, `GET /docs` and `GET /docs/{proxy+}`.
pub async fn serve_docs(docs: &Docs, req: Request) -> Result<Response<Body>, ApiError> {
    let path = request_path(&req);
    if let Some(file) = req
        .path_parameters_ref()
        .and_then(|p| p.first("proxy"))
        .filter(|f| !f.is_empty())
    {
        return match file {
            "index.html" => text(INDEX_HTML, "text/html; charset=utf-8", NO_CACHE),
            "swagger-initializer.js" => {
                text(INITIALIZER_JS, "text/javascript; charset=utf-8", NO_CACHE)
            }
            _ => asset(file, accepts_gzip(&req)),
        };
    }
    if let Some(prefix) = path.strip_suffix("/openapi.json") {
        let server = server_url(&req, prefix);
        return text(
            &docs.document(server.as_deref()),
            "application/json",
            NO_CACHE,
        );
    }
    // `/docs/` (API Gateway routes it to `/docs`) is the page; `/docs` moves there, so the
    // page's relative links resolve under `/docs/`.
    if path.ends_with('/') {
        text(INDEX_HTML, "text/html; charset=utf-8", NO_CACHE)
    } else {
        redirect("docs/")
    }
}

/// The path the client asked for: the event's raw path (with the stage, when the API is
/// called at a named stage), else the URI's.
fn request_path(req: &Request) -> String {
    let raw = req.raw_http_path();
    if raw.is_empty() {
        req.uri().path().to_owned()
    } else {
        raw.to_owned()
    }
}

/// `scheme://host/prefix` of the request: `x-forwarded-proto` (API Gateway always sets it;
/// without a proxy in front the request is plain HTTP), the `Host` header (else the
/// request context's domain name), and the path before `/openapi.json`. `None` when any
/// part is missing or not plainly a URL part.
fn server_url(req: &Request, prefix: &str) -> Option<String> {
    let header_str = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
    let scheme = match header_str("x-forwarded-proto") {
        None => "http",
        Some(p) if p.eq_ignore_ascii_case("https") => "https",
        Some(p) if p.eq_ignore_ascii_case("http") => "http",
        Some(_) => return None,
    };
    let domain = match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(ctx)) => ctx.domain_name.clone(),
        _ => None,
    };
    let host = header_str("host").map(str::to_owned).or(domain)?;
    let host_ok = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'));
    let prefix_ok = prefix
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '-' | '_' | '.' | '~' | '%' | '$'));
    (host_ok && prefix_ok).then(|| format!("{scheme}://{host}{prefix}"))
}

/// Whether `Accept-Encoding` takes gzip (or anything) with a quality above zero.
pub fn accepts_gzip(req: &Request) -> bool {
    req.headers()
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|item| {
            let mut parts = item.split(';').map(str::trim);
            let coding = parts.next().unwrap_or_default();
            let refused = parts.any(|p| {
                p.strip_prefix("q=")
                    .is_some_and(|q| q.parse::<f32>().is_ok_and(|q| q <= 0.0))
            });
            (coding.eq_ignore_ascii_case("gzip") || coding == "*") && !refused
        })
}

const NO_CACHE: &str = "no-cache";
/// The files change only with the vendored release, i.e. with a deploy.
const CACHE_A_DAY: &str = "public, max-age=86400";

fn text(body: &str, content_type: &str, cache: &str) -> Result<Response<Body>, ApiError> {
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, content_type)
        .header(header::CACHE_CONTROL, cache)
        .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff")
        .body(Body::Text(body.to_owned()))
        .map_err(ApiError::internal)
}

/// One of Swagger UI's files: as stored (gzip) to clients that take it, inflated for the
/// others.
fn asset(name: &str, gzip: bool) -> Result<Response<Body>, ApiError> {
    let file = FILES
        .iter()
        .find(|f| f.name == name)
        .ok_or(ApiError::NotFound("file"))?;
    let mut resp = Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, file.content_type)
        .header(header::CACHE_CONTROL, CACHE_A_DAY)
        .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff")
        .header(header::VARY, "accept-encoding");
    let body = if gzip {
        resp = resp.header(header::CONTENT_ENCODING, "gzip");
        file.gzip.to_vec()
    } else {
        let mut plain = Vec::new();
        flate2::read::GzDecoder::new(file.gzip)
            .read_to_end(&mut plain)
            .map_err(ApiError::internal)?;
        plain
    };
    resp.body(Body::Binary(body)).map_err(ApiError::internal)
}

fn redirect(location: &'static str) -> Result<Response<Body>, ApiError> {
    let mut resp = Response::new(Body::Empty);
    *resp.status_mut() = StatusCode::PERMANENT_REDIRECT;
    resp.headers_mut()
        .insert(header::LOCATION, HeaderValue::from_static(location));
    Ok(resp)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::collections::HashMap;

    use shutter_http::lambda_http::aws_lambda_events::apigw::ApiGatewayV2httpRequestContext;

    use super::*;

    /// A request as API Gateway hands it over: raw path, headers, path parameters.
    fn request(raw_path: &str, headers: &[(&str, &str)], proxy: Option<&str>) -> Request {
        let mut ctx = ApiGatewayV2httpRequestContext::default();
        ctx.request_id = Some("test-request".to_owned());
        ctx.domain_name = Some("context.example".to_owned());
        let mut builder = shutter_http::lambda_http::http::Request::builder()
            .method("GET")
            .uri(format!("https://api.test{raw_path}"));
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let params: HashMap<String, String> = proxy
            .map(|p| HashMap::from([("proxy".to_owned(), p.to_owned())]))
            .unwrap_or_default();
        builder
            .body(Body::Empty)
            .unwrap()
            .with_raw_http_path(raw_path)
            .with_path_parameters(params)
            .with_request_context(RequestContext::ApiGatewayV2(ctx))
    }

    fn docs() -> Docs {
        Docs::new(OPENAPI).unwrap()
    }

    async fn get(raw_path: &str, headers: &[(&str, &str)], proxy: Option<&str>) -> Response<Body> {
        let docs = docs();
        shutter_http::respond(
            |r| async move { serve_docs(&docs, r).await },
            request(raw_path, headers, proxy),
        )
        .await
    }

    fn json_body(resp: &Response<Body>) -> Value {
        serde_json::from_slice(resp.body().as_ref()).unwrap()
    }

    #[tokio::test]
    async fn the_document_names_the_origin_it_was_asked_at() {
        // GIVEN a request through API Gateway at the `dev` stage
        let resp = get(
            "/dev/openapi.json",
            &[
                ("host", "abc.execute-api.eu-west-1.amazonaws.com"),
                ("x-forwarded-proto", "https"),
            ],
            None,
        )
        .await;
        // THEN the checked-in document comes back with that stage as its server
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.headers()[header::CONTENT_TYPE], "application/json");
        let doc = json_body(&resp);
        assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
        assert_eq!(
            doc["servers"],
            serde_json::json!([{"url": "https://abc.execute-api.eu-west-1.amazonaws.com/dev"}])
        );
        assert!(doc["paths"]["/v1/users/me"]["get"].is_object());

        // AND locally (no proxy in front, $default stage) it is plain HTTP at the root
        let local = get("/openapi.json", &[("host", "127.0.0.1:8080")], None).await;
        assert_eq!(
            json_body(&local)["servers"][0]["url"],
            "http://127.0.0.1:8080"
        );
    }

    #[tokio::test]
    async fn the_document_falls_back_to_the_context_domain_and_refuses_odd_origins() {
        let from_context = get("/openapi.json", &[("x-forwarded-proto", "https")], None).await;
        assert_eq!(
            json_body(&from_context)["servers"][0]["url"],
            "https://context.example"
        );
        for headers in [
            [
                ("host", "evil.example\"><script>"),
                ("x-forwarded-proto", "https"),
            ],
            [("host", "api.example"), ("x-forwarded-proto", "javascript")],
        ] {
            let doc = json_body(&get("/openapi.json", &headers, None).await);
            assert!(
                doc.get("servers").is_none(),
                "{headers:?}: {:?}",
                doc.get("servers")
            );
            assert!(doc["paths"].is_object());
        }
    }

    #[tokio::test]
    async fn the_deployed_function_serves_the_document_build_rs_prepared() {
        let deployed = Docs::from_env(&SdkConfig::builder().build()).await.unwrap();
        assert!(
            matches!(deployed.document, Cow::Borrowed(_)),
            "nothing prepared at run time"
        );
        let at_run_time = Docs::new(OPENAPI).unwrap();
        for server in [None, Some("https://x")] {
            assert_eq!(deployed.document(server), at_run_time.document(server));
        }
    }

    #[test]
    fn the_document_is_the_checked_in_one_whatever_servers_it_had() {
        let with_servers = r#"{"openapi":"3.1.0","servers":[{"url":"https://old"}],"paths":{}}"#;
        let docs = Docs::new(with_servers).unwrap();
        let doc: Value = serde_json::from_str(&docs.document(None)).unwrap();
        assert!(doc.get("servers").is_none());
        let doc: Value = serde_json::from_str(&docs.document(Some("https://new"))).unwrap();
        assert_eq!(doc["servers"], serde_json::json!([{"url": "https://new"}]));
        assert_eq!(doc["openapi"], "3.1.0");
        assert!(Docs::new("not json").is_err());
        assert!(Docs::new("{}").is_err());

        // The checked-in document lists API operations only, not the docs' own routes.
        let checked_in: Value = serde_json::from_str(OPENAPI).unwrap();
        for own in ["/openapi.json", "/docs", "/docs/{proxy+}"] {
            assert!(
                checked_in["paths"].get(own).is_none(),
                "{own} is documented"
            );
        }
    }

    #[tokio::test]
    async fn docs_is_the_swagger_ui_page_and_moves_to_its_slash() {
        let page = get("/docs/", &[], None).await;
        assert_eq!(page.status(), 200);
        assert!(
            page.headers()[header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
        let html = std::str::from_utf8(page.body().as_ref())
            .unwrap()
            .to_owned();
        assert!(html.contains("swagger-ui"));
        assert!(html.contains("src=\"swagger-initializer.js\""));

        let moved = get("/dev/docs", &[], None).await;
        assert_eq!(moved.status(), 308);
        // Relative: /dev/docs moves to /dev/docs/, /docs to /docs/.
        assert_eq!(moved.headers()[header::LOCATION], "docs/");

        let named = get("/docs/index.html", &[], Some("index.html")).await;
        assert_eq!(named.body().as_ref(), INDEX_HTML.as_bytes());
        let init = get(
            "/docs/swagger-initializer.js",
            &[],
            Some("swagger-initializer.js"),
        )
        .await;
        let js = std::str::from_utf8(init.body().as_ref())
            .unwrap()
            .to_owned();
        assert!(js.contains("url: \"../openapi.json\""));
    }

    #[tokio::test]
    async fn assets_are_gzipped_for_clients_that_take_it_and_plain_for_others() {
        for file in FILES {
            assert!(
                INDEX_HTML.contains(file.name),
                "{} is not on the page",
                file.name
            );
        }
        let path = "/docs/swagger-ui-bundle.js";
        let zipped = get(
            path,
            &[("accept-encoding", "gzip, deflate, br")],
            Some("swagger-ui-bundle.js"),
        )
        .await;
        assert_eq!(zipped.status(), 200);
        assert_eq!(zipped.headers()[header::CONTENT_ENCODING], "gzip");
        assert!(
            zipped.headers()[header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("text/javascript")
        );
        let plain = get(path, &[], Some("swagger-ui-bundle.js")).await;
        assert!(plain.headers().get(header::CONTENT_ENCODING).is_none());
        let mut inflated = Vec::new();
        flate2::read::GzDecoder::new(zipped.body().as_ref())
            .read_to_end(&mut inflated)
            .unwrap();
        assert_eq!(inflated, plain.body().as_ref());
        assert!(
            std::str::from_utf8(&inflated)
                .unwrap()
                .contains("SwaggerUIBundle")
        );
        let refused = get(
            path,
            &[("accept-encoding", "gzip;q=0, identity")],
            Some("swagger-ui-bundle.js"),
        )
        .await;
        assert!(refused.headers().get(header::CONTENT_ENCODING).is_none());

        let css = get(
            "/docs/swagger-ui.css",
            &[("accept-encoding", "*")],
            Some("swagger-ui.css"),
        )
        .await;
        assert_eq!(
            css.headers()[header::CONTENT_TYPE],
            "text/css; charset=utf-8"
        );

        let missing = get("/docs/../../etc/passwd", &[], Some("../../etc/passwd")).await;
        assert_eq!(missing.status(), 404);
        assert_eq!(json_body(&missing)["code"], "not_found");
    }

    #[test]
    fn the_assets_stay_small() {
        let total: usize = FILES.iter().map(|f| f.gzip.len()).sum();
        assert!(
            total < 700_000,
            "Swagger UI's files take {total} bytes gzipped"
        );
    }
}
