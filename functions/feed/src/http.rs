//! The HTTP adapter of `GET /v1/feed`: the request as a viewer and a page request, the
//! answer as JSON.

use shutter_core::ApiError;
#[allow(unused_imports)] // the OpenAPI attributes name it
use shutter_core::Problem;
use shutter_http::lambda_http::http::StatusCode;
use shutter_http::lambda_http::{Body, Request, Response};
use shutter_http::{ApiRequest, Caller, json};
use shutter_media::MediaStore;

use crate::App;
#[allow(unused_imports)] // the OpenAPI attributes name it
use crate::model::FeedPage;
use crate::store::FeedReader;

/// `GET /v1/feed?limit=&cursor=`.
#[utoipa::path(
    get, path = "/v1/feed", tag = "feed", security(("bearer" = ["user"])),
    summary = "Your home feed, newest first",
    description = "Posts of the people you follow (and your own), each with its author's name and avatar, its counts and whether you like it. Posts deleted since they reached your feed are left out, so a page can be shorter than `limit`; follow `next_cursor` until it is null. A cursor is bound to you: a forged or another user's cursor is a 400.",
    params(
        ("limit" = Option<u16>, Query, description = "Page size, 1 to 100 (default 20)", minimum = 1, maximum = 100),
        ("cursor" = Option<String>, Query, description = "The `next_cursor` of the previous page")
    ),
    responses(
        (status = 200, description = "A page of your feed", body = FeedPage),
        (status = 400, description = "`invalid`: a bad limit or cursor", body = Problem, content_type = "application/problem+json")
    )
)]
#[tracing::instrument(skip_all)]
pub async fn feed<S: FeedReader, M: MediaStore>(
    app: &App<S, M>,
    req: Request,
) -> Result<Response<Body>, ApiError> {
    let caller = Caller::from_request(&req)?;
    let page = req.page_request()?;
    let page = app.feed(&caller.user_id, page).await?;
    json(StatusCode::OK, &page)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::collections::HashMap;

    use shutter_core::{CursorSigner, UserId};
    use shutter_http::lambda_http::RequestExt;
    use shutter_http::test_support::api_request;
    use shutter_media::MemoryMedia;

    use super::*;
    use crate::store::MemoryFeedStore;

    fn app() -> App<MemoryFeedStore, MemoryMedia> {
        App {
            store: MemoryFeedStore::default(),
            media: MemoryMedia::default(),
            cursors: shutter_store::CursorKey::ready(CursorSigner::new(b"test-key".to_vec())),
        }
    }

    fn get(viewer: Option<&UserId>, query: &[(&str, &str)]) -> Request {
        let claims = viewer.map(|v| (v.as_str(), "bob", "user"));
        let query: HashMap<String, String> = query
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        api_request("GET", "/v1/feed", &[], "", claims).with_query_string_parameters(query)
    }

    #[tokio::test]
    async fn an_empty_feed_is_an_empty_last_page() {
        let bob = UserId::generate();
        let resp = feed(&app(), get(Some(&bob), &[])).await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        let body: serde_json::Value = serde_json::from_slice(resp.body().as_ref()).unwrap();
        assert_eq!(body, serde_json::json!({"items": [], "next_cursor": null}));
    }

    #[tokio::test]
    async fn bad_limits_and_cursors_are_400s_naming_the_field() {
        let bob = UserId::generate();
        for (name, value) in [
            ("limit", "0"),
            ("limit", "101"),
            ("limit", "ten"),
            ("cursor", "forged"),
            ("cursor", "eyJiZWZvcmUiOiJ4In0.AAAA"),
        ] {
            let err = feed(&app(), get(Some(&bob), &[(name, value)]))
                .await
                .unwrap_err();
            assert_eq!(err.status(), 400, "{name}={value}");
            assert_eq!(err.problem().field.as_deref(), Some(name), "{name}={value}");
        }
    }

    #[tokio::test]
    async fn the_feed_needs_a_verified_caller() {
        let err = feed(&app(), get(None, &[])).await.unwrap_err();
        assert_eq!(err.status(), 401);
    }
}
