//! The moderation panel: a plain page for moderators at `/admin`, with its script and
//! style at `/admin/app.js` and `/admin/app.css`.
//!
//! The routes are public and read no store and no secret: the page signs in with the
//! normal login (`POST /v1/auth/login`) and calls the `/v1/admin/` API with the access
//! token it keeps in memory, so the gateway's scopes guard the data, not this function.
//! They are not API operations: the OpenAPI document does not list them (as the docs
//! function's routes).
//!
//! Every answer, the 404 too, carries a strict Content-Security-Policy: scripts, styles and
//! API calls from this origin only, no inline script or style, no eval, no frames, no
//! forms posted anywhere; images from this origin, `data:` and the media bucket's origin,
//! where the pre-signed thumbnail URLs of the queue's previews point. The page builds its
//! DOM with `textContent` and `createElement` only: previews are user content.

use shutter_core::ApiError;
use shutter_http::ApiRequest;
use shutter_http::lambda_http::http::{HeaderValue, StatusCode, header};
use shutter_http::lambda_http::{Body, Request, RequestExt, Response};
use shutter_store::{ConfigError, SdkConfig};

/// The page. Its script and style are named relative to it (`admin/app.js`), so it works
/// under any stage or path prefix the API is served at.
pub const INDEX_HTML: &str = include_str!("../assets/index.html");
pub const APP_JS: &str = include_str!("../assets/app.js");
pub const APP_CSS: &str = include_str!("../assets/app.css");

/// The variable naming the media bucket's origin (`https://<bucket>.s3.<region>.amazonaws.com`).
pub const MEDIA_ORIGIN_VAR: &str = "MEDIA_ORIGIN";

/// What the function serves, made once per cold start: the policy naming the media origin.
#[derive(Debug)]
pub struct Page {
    csp: HeaderValue,
}

impl Page {
    /// The media origin the pre-signed URLs point at: the AWS endpoint's when one is set
    /// (the devstack's moto, where `shutter_media` signs path-style URLs), else
    /// `MEDIA_ORIGIN` (the bucket's virtual-hosted origin, from the template). The same
    /// choice `shutter_media::S3MediaStore` makes when it signs them.
    pub async fn from_env(aws: &SdkConfig) -> Result<Self, ConfigError> {
        let origin = match aws.endpoint_url() {
            Some(endpoint) => origin_of(endpoint).ok_or_else(|| ConfigError::Invalid {
                name: "AWS_ENDPOINT_URL",
                reason: "not an http(s) URL".into(),
            })?,
            None => shutter_store::env("MEDIA_ORIGIN")?,
        };
        Self::new(&origin)
    }

    /// The page with images allowed from `media_origin` (`scheme://host[:port]`).
    pub fn new(media_origin: &str) -> Result<Self, ConfigError> {
        let invalid = |reason: &str| ConfigError::Invalid {
            name: MEDIA_ORIGIN_VAR,
            reason: reason.into(),
        };
        let origin = origin_of(media_origin)
            .filter(|o| o == media_origin.trim_end_matches('/'))
            .ok_or_else(|| invalid("an origin, scheme://host[:port], is expected"))?;
        let csp =
            HeaderValue::from_str(&policy(&origin)).map_err(|_| invalid("not a header value"))?;
        Ok(Self { csp })
    }

    /// The Content-Security-Policy of every answer.
    pub fn csp(&self) -> &str {
        self.csp.to_str().unwrap_or_default()
    }
}

/// The policy: nothing but what the page uses.
fn policy(media_origin: &str) -> String {
    format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: {media_origin}; \
         connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )
}

/// `scheme://host[:port]` of an http(s) URL, `None` for anything else (a policy source
/// must not smuggle a `;` or a space into the header).
fn origin_of(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "http" && scheme != "https" {
        return None;
    }
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let plain = !host.is_empty()
        && !host.contains('@')
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'));
    plain.then(|| format!("{scheme}://{}", host.to_ascii_lowercase()))
}

/// Pages and files change with a deploy, and their names do not: revalidate each time.
const CACHE: &str = "no-cache";

/// `GET /admin` and `GET /admin/{asset}`; every answer with the panel's headers.
pub async fn serve_admin(page: &Page, req: Request) -> Result<Response<Body>, ApiError> {
    let mut resp = match route(&req) {
        Ok(resp) => resp,
        Err(err) => shutter_http::problem_response(&err, &req.request_id()),
    };
    let headers = resp.headers_mut();
    headers.insert("content-security-policy", page.csp.clone());
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(CACHE));
    // A panel that signs in has no business in another site's window or process.
    headers.insert(
        "cross-origin-opener-policy",
        HeaderValue::from_static("same-origin"),
    );
    Ok(resp)
}

fn route(req: &Request) -> Result<Response<Body>, ApiError> {
    let asset = req
        .path_parameters_ref()
        .and_then(|p| p.first("asset"))
        .map(str::to_owned);
    match asset.as_deref() {
        Some("app.js") => text(APP_JS, "text/javascript; charset=utf-8"),
        Some("app.css") => text(APP_CSS, "text/css; charset=utf-8"),
        Some("") | None if request_path(req).ends_with('/') => {
            // `/admin/`: the page's relative names would resolve under `/admin/admin/`.
            redirect("../admin")
        }
        Some("") | None => text(INDEX_HTML, "text/html; charset=utf-8"),
        Some(_) => Err(ApiError::NotFound("file")),
    }
}

/// The path the client asked for: the event's raw path, else the URI's.
fn request_path(req: &Request) -> String {
    let raw = req.raw_http_path();
    if raw.is_empty() {
        req.uri().path().to_owned()
    } else {
        raw.to_owned()
    }
}

fn text(body: &'static str, content_type: &'static str) -> Result<Response<Body>, ApiError> {
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, content_type)
        .body(Body::Text(body.to_owned()))
        .map_err(ApiError::internal)
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
    use shutter_http::lambda_http::request::RequestContext;

    use super::*;

    const MEDIA: &str = "https://media-bucket.s3.eu-west-1.amazonaws.com";

    fn request(raw_path: &str, asset: Option<&str>) -> Request {
        let mut ctx = ApiGatewayV2httpRequestContext::default();
        ctx.request_id = Some("test-request".to_owned());
        let params: HashMap<String, String> = asset
            .map(|a| HashMap::from([("asset".to_owned(), a.to_owned())]))
            .unwrap_or_default();
        shutter_http::lambda_http::http::Request::builder()
            .method("GET")
            .uri(format!("https://api.test{raw_path}"))
            .body(Body::Empty)
            .unwrap()
            .with_raw_http_path(raw_path)
            .with_path_parameters(params)
            .with_request_context(RequestContext::ApiGatewayV2(ctx))
    }

    async fn get(raw_path: &str, asset: Option<&str>) -> Response<Body> {
        let page = Page::new(MEDIA).unwrap();
        shutter_http::respond(
            |r| async move { serve_admin(&page, r).await },
            request(raw_path, asset),
        )
        .await
    }

    fn header_of<'a>(resp: &'a Response<Body>, name: &str) -> &'a str {
        resp.headers()
            .get(name)
            .unwrap_or_else(|| panic!("no {name}"))
            .to_str()
            .unwrap()
    }

    fn body(resp: &Response<Body>) -> String {
        String::from_utf8(resp.body().as_ref().to_vec()).unwrap()
    }

    /// The headers every answer carries, whatever its status.
    fn assert_strict(resp: &Response<Body>) {
        let csp = header_of(resp, "content-security-policy");
        assert_eq!(
            csp,
            "default-src 'none'; script-src 'self'; style-src 'self'; \
             img-src 'self' data: https://media-bucket.s3.eu-west-1.amazonaws.com; \
             connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
        );
        for loose in ["unsafe-inline", "unsafe-eval", "*", "http:", "https: "] {
            assert!(!csp.contains(loose), "{loose} in {csp}");
        }
        assert_eq!(header_of(resp, "x-content-type-options"), "nosniff");
        assert_eq!(header_of(resp, "referrer-policy"), "no-referrer");
        assert_eq!(header_of(resp, "cache-control"), "no-cache");
    }

    #[tokio::test]
    async fn the_page_and_its_files_come_with_their_types_and_a_strict_policy() {
        for (path, asset, content_type, text) in [
            ("/admin", None, "text/html; charset=utf-8", INDEX_HTML),
            (
                "/dev/admin/app.js",
                Some("app.js"),
                "text/javascript; charset=utf-8",
                APP_JS,
            ),
            (
                "/admin/app.css",
                Some("app.css"),
                "text/css; charset=utf-8",
                APP_CSS,
            ),
        ] {
            let resp = get(path, asset).await;
            assert_eq!(resp.status(), 200, "{path}");
            assert_eq!(header_of(&resp, "content-type"), content_type, "{path}");
            assert_eq!(body(&resp), text, "{path}");
            assert_strict(&resp);
        }
    }

    #[tokio::test]
    async fn an_unknown_file_is_a_404_with_the_same_headers() {
        for asset in ["index.html", "../../etc/passwd", "app.js.map", "APP.JS"] {
            let resp = get(&format!("/admin/{asset}"), Some(asset)).await;
            assert_eq!(resp.status(), 404, "{asset}");
            assert_eq!(header_of(&resp, "content-type"), "application/problem+json");
            assert!(body(&resp).contains("\"not_found\""));
            assert_strict(&resp);
        }
        // `/admin/` moves to the page, whose relative names then resolve under `/admin/`.
        let moved = get("/admin/", Some("")).await;
        assert_eq!(moved.status(), 308);
        assert_eq!(header_of(&moved, "location"), "../admin");
        assert_strict(&moved);
    }

    #[test]
    fn the_page_loads_only_its_own_files_and_nothing_inline() {
        assert!(INDEX_HTML.contains(r#"<script src="admin/app.js" defer></script>"#));
        assert!(INDEX_HTML.contains(r#"<link rel="stylesheet" href="admin/app.css">"#));
        let lower = INDEX_HTML.to_ascii_lowercase();
        assert_eq!(lower.matches("<script").count(), 1, "one script, by src");
        for inline in [
            "<style",
            " style=",
            " onclick=",
            " onload=",
            " onsubmit=",
            "javascript:",
        ] {
            assert!(!lower.contains(inline), "{inline} on the page");
        }
        // The script builds its DOM from text, never from markup (previews are user content).
        for sink in [
            "innerHTML",
            "outerHTML",
            "insertAdjacentHTML",
            "document.write",
            "eval(",
            "new Function",
        ] {
            assert!(!APP_JS.contains(sink), "{sink} in app.js");
        }
        // The token stays in the page's memory: no cookie, no storage that outlives the tab.
        for store in ["document.cookie", "localStorage"] {
            assert!(!APP_JS.contains(store), "{store} in app.js");
        }
    }

    #[test]
    fn the_media_origin_is_an_origin_and_nothing_more() {
        assert!(Page::new(MEDIA).is_ok());
        assert!(Page::new("http://127.0.0.1:45123").is_ok());
        assert_eq!(
            Page::new("http://127.0.0.1:45123/").unwrap().csp(),
            policy("http://127.0.0.1:45123")
        );
        for bad in [
            "",
            "media.example",
            "ftp://media.example",
            "https://media.example/path",
            "https://media.example; script-src *",
            "https://a b",
            "https://user@media.example",
        ] {
            assert!(Page::new(bad).is_err(), "{bad}");
        }
    }

    #[tokio::test]
    async fn locally_images_come_from_the_aws_endpoint() {
        let local = SdkConfig::builder()
            .endpoint_url("http://127.0.0.1:5000/")
            .build();
        let page = Page::from_env(&local).await.unwrap();
        assert!(
            page.csp()
                .contains("img-src 'self' data: http://127.0.0.1:5000;")
        );
    }
}
