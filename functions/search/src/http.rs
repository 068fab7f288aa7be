//! The HTTP adapters of the three searches: request -> checked query -> use case ->
//! response. The `#[utoipa::path]` attributes here make the OpenAPI document.

#[allow(unused_imports)] // the OpenAPI attributes name it
use shutter_core::Problem;
use shutter_core::{ApiError, PageRequest};
use shutter_http::lambda_http::http::StatusCode;
use shutter_http::lambda_http::{Body, Request, Response};
use shutter_http::{ApiRequest, Caller, json};
use shutter_store::CursorKey;

use crate::App;
use crate::model::{HashtagPrefix, QueryText};
#[allow(unused_imports)] // the OpenAPI attributes name them
use crate::service::{HashtagHitsPage, PostHitsPage, UserHitsPage};
use crate::store::SearchIndex;

type ApiResult = Result<Response<Body>, ApiError>;

/// The `q` parameter, checked; a 400 naming it otherwise.
fn query_text(req: &Request) -> Result<QueryText, ApiError> {
    let q = req
        .query("q")
        .ok_or_else(|| ApiError::invalid("q", "is required"))?;
    QueryText::parse(&q)
}

/// `limit` alone: these searches answer one page, so a `cursor` is ignored.
fn limit(req: &Request) -> Result<u16, ApiError> {
    Ok(PageRequest::parse(req.query("limit").as_deref(), None)?.limit)
}

/// `GET /v1/search/posts?q=&limit=&cursor=`.
#[utoipa::path(
    get, path = "/v1/search/posts", tag = "search", security(("bearer" = ["user"])),
    summary = "Search posts",
    description = "Full text over captions, locations and hashtags, and the posts of authors whose names start with `q`; best matches first, blending relevance, recency and likes. Posts you may not see (a private account's you do not follow, anyone's you blocked or who blocked you) are left out, so a page can be shorter than `limit`; follow `next_cursor` until it is null. `q` is searched for as text, never as query syntax.",
    params(
        ("q" = String, Query, description = "1 to 100 characters", min_length = 1, max_length = 100),
        ("limit" = Option<u16>, Query, description = "Page size, 1 to 100 (default 20)", minimum = 1, maximum = 100),
        ("cursor" = Option<String>, Query, description = "The `next_cursor` of the previous page")
    ),
    responses(
        (status = 200, description = "A page of posts", body = PostHitsPage),
        (status = 400, description = "`q`, `limit` or `cursor` is invalid (named in `field`)", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "`rate_limited`: too many searches this minute (`searches`)", body = Problem, content_type = "application/problem+json", headers(("Retry-After" = u64, description = "Seconds until a retry can pass"), ("RateLimit-Policy" = String, description = "This route's limits, each `\"name-window\";q=quota;w=seconds` (IETF RateLimit fields; on every answer of the route)"), ("RateLimit" = String, description = "What remains of each limit and when it resets, `\"name-window\";r=remaining;t=seconds`")))
    )
)]
#[tracing::instrument(skip_all)]
pub async fn search_posts<S: SearchIndex>(app: &App<S, CursorKey>, req: Request) -> ApiResult {
    let caller = Caller::from_request(&req)?;
    let q = query_text(&req)?;
    let page = req.page_request()?;
    let found = app.search_posts(&caller, &q, &page).await?;
    json(StatusCode::OK, &found)
}

/// `GET /v1/search/users?q=&limit=`.
#[utoipa::path(
    get, path = "/v1/search/users", tag = "search", security(("bearer" = ["user"])),
    summary = "Find users as you type",
    description = "Users whose username or display name starts with `q` (an exact username first). Private accounts are listed (their posts stay hidden); users you blocked or who blocked you are not.",
    params(
        ("q" = String, Query, description = "1 to 100 characters", min_length = 1, max_length = 100),
        ("limit" = Option<u16>, Query, description = "How many, 1 to 100 (default 20)", minimum = 1, maximum = 100)
    ),
    responses(
        (status = 200, description = "The best matches", body = UserHitsPage),
        (status = 400, description = "`q` or `limit` is invalid (named in `field`)", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "`rate_limited`: too many searches this minute (`searches`)", body = Problem, content_type = "application/problem+json", headers(("Retry-After" = u64, description = "Seconds until a retry can pass"), ("RateLimit-Policy" = String, description = "This route's limits, each `\"name-window\";q=quota;w=seconds` (IETF RateLimit fields; on every answer of the route)"), ("RateLimit" = String, description = "What remains of each limit and when it resets, `\"name-window\";r=remaining;t=seconds`")))
    )
)]
#[tracing::instrument(skip_all)]
pub async fn search_users<S: SearchIndex, C: Sync>(app: &App<S, C>, req: Request) -> ApiResult {
    let caller = Caller::from_request(&req)?;
    let q = query_text(&req)?;
    let limit = limit(&req)?;
    let found = app.search_users(&caller, &q, limit).await?;
    json(StatusCode::OK, &found)
}

/// `GET /v1/search/hashtags?q=&limit=`.
#[utoipa::path(
    get, path = "/v1/search/hashtags", tag = "search", security(("bearer" = ["user"])),
    summary = "Find hashtags by their beginning, with post counts",
    description = "Hashtags that start with `q` (an optional leading `#` is ignored), most used first, counting the posts you may see.",
    params(
        ("q" = String, Query, description = "1 to 100 characters: letters, digits and _ after an optional #", min_length = 1, max_length = 100),
        ("limit" = Option<u16>, Query, description = "How many, 1 to 100 (default 20)", minimum = 1, maximum = 100)
    ),
    responses(
        (status = 200, description = "The most used matching hashtags", body = HashtagHitsPage),
        (status = 400, description = "`q` or `limit` is invalid (named in `field`)", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "`rate_limited`: too many searches this minute (`searches`)", body = Problem, content_type = "application/problem+json", headers(("Retry-After" = u64, description = "Seconds until a retry can pass"), ("RateLimit-Policy" = String, description = "This route's limits, each `\"name-window\";q=quota;w=seconds` (IETF RateLimit fields; on every answer of the route)"), ("RateLimit" = String, description = "What remains of each limit and when it resets, `\"name-window\";r=remaining;t=seconds`")))
    )
)]
#[tracing::instrument(skip_all)]
pub async fn search_hashtags<S: SearchIndex, C: Sync>(app: &App<S, C>, req: Request) -> ApiResult {
    let caller = Caller::from_request(&req)?;
    let q = query_text(&req)?;
    let tag = HashtagPrefix::parse(&q)?;
    let limit = limit(&req)?;
    let found = app.search_hashtags(&caller, &tag, limit).await?;
    json(StatusCode::OK, &found)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::collections::HashMap;

    use super::*;
    use crate::docs::{POSTS_INDEX, USERS_INDEX, UserDoc};
    use crate::store::EdgeSide;
    use crate::store::memory::CannedSearch;
    use serde_json::{Value, json};
    use shutter_core::UserId;
    use shutter_http::test_support::api_request;

    const VIEWER: &str = "01JD0000000000000000VWR001";

    fn get(path: &str, query: &[(&str, &str)]) -> Request {
        use shutter_http::lambda_http::RequestExt;
        let q: HashMap<String, String> = query
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect();
        api_request("GET", path, &[], "", Some((VIEWER, "viewer", "user")))
            .with_query_string_parameters(q)
    }

    async fn body(resp: ApiResult) -> (u16, Value) {
        match resp {
            Ok(r) => (
                r.status().as_u16(),
                serde_json::from_slice(r.body().as_ref()).unwrap(),
            ),
            Err(e) => (e.status(), serde_json::to_value(e.problem()).unwrap()),
        }
    }

    fn user(id: &str, private: bool) -> UserDoc {
        UserDoc {
            user_id: id.into(),
            username: id.to_lowercase(),
            display_name: id.into(),
            private,
            deleted: false,
            ..UserDoc::default()
        }
    }

    fn post_hit(id: &str, author: &str, sort: i64) -> Value {
        json!({"_id": id, "_source": {"post_id": id, "author_id": author, "caption": "c", "hashtags": ["x"], "like_count": 1,
               "created_at": "2026-11-29T00:00:00.000Z"}, "sort": [1.5, sort, id]})
    }

    fn app(search: CannedSearch) -> App<CannedSearch, CursorKey> {
        App {
            search,
            cursors: CursorKey::ready(shutter_core::CursorSigner::new(b"k".to_vec())),
        }
    }

    fn store(posts: Vec<Value>) -> App<CannedSearch, CursorKey> {
        let mut s = CannedSearch::default();
        s.responses
            .insert(POSTS_INDEX.into(), json!({"hits": {"hits": posts}}));
        s.responses.insert(
            USERS_INDEX.into(),
            json!({"hits": {"hits": [{"_id": "A"}]}}),
        );
        s.users.insert(UserId::trusted("A"), user("A", false));
        s.users.insert(UserId::trusted("P"), user("P", true));
        s.add_edges(EdgeSide::Blocking, [UserId::trusted("B")]);
        app(s)
    }

    #[test]
    fn the_openapi_document_has_the_three_searches_and_their_bodies() {
        use utoipa::OpenApi;
        #[derive(OpenApi)]
        #[openapi(paths(search_posts, search_users, search_hashtags))]
        struct Doc;
        let doc = serde_json::to_value(Doc::openapi()).unwrap();
        for (path, body) in [
            ("/v1/search/posts", "PostHitsPage"),
            ("/v1/search/users", "UserHitsPage"),
            ("/v1/search/hashtags", "HashtagHitsPage"),
        ] {
            let op = &doc["paths"][path]["get"];
            assert_eq!(
                op["responses"]["200"]["content"]["application/json"]["schema"]["$ref"],
                format!("#/components/schemas/{body}"),
                "{path}"
            );
            assert_eq!(
                op["responses"]["400"]["content"]["application/problem+json"]["schema"]["$ref"],
                "#/components/schemas/Problem"
            );
            assert!(doc["components"]["schemas"][body].is_object(), "{body}");
        }
        assert_eq!(
            doc["paths"]["/v1/search/posts"]["get"]["parameters"]
                .as_array()
                .unwrap()
                .len(),
            3
        );
    }

    #[tokio::test]
    async fn the_query_text_is_bounded_and_named_in_errors() {
        let s = store(vec![]);
        for bad in ["", "   ", &"x".repeat(101), "a\u{0}b"] {
            let (status, p) =
                body(search_posts(&s, get("/v1/search/posts", &[("q", bad)])).await).await;
            assert_eq!((status, p["field"].as_str()), (400, Some("q")), "{bad:?}");
        }
        let (status, p) = body(search_users(&s, get("/v1/search/users", &[])).await).await;
        assert_eq!((status, p["field"].as_str()), (400, Some("q")));
        let (status, p) =
            body(search_hashtags(&s, get("/v1/search/hashtags", &[("q", "a b")])).await).await;
        assert_eq!((status, p["field"].as_str()), (400, Some("q")));
        for (path, limit) in [("/v1/search/users", "0"), ("/v1/search/hashtags", "101")] {
            let (status, p) = body(if path.ends_with("users") {
                search_users(&s, get(path, &[("q", "a"), ("limit", limit)])).await
            } else {
                search_hashtags(&s, get(path, &[("q", "a"), ("limit", limit)])).await
            })
            .await;
            assert_eq!(
                (status, p["field"].as_str()),
                (400, Some("limit")),
                "{path}"
            );
        }
        assert!(s.search.sent().is_empty(), "nothing reached OpenSearch");
    }

    #[tokio::test]
    async fn a_request_without_verified_claims_is_refused() {
        let s = store(vec![]);
        let req = api_request("GET", "/v1/search/users", &[], "", None);
        let (status, _) = body(search_users(&s, req).await).await;
        assert_eq!(status, 401);
        assert!(s.search.sent().is_empty());
    }

    #[tokio::test]
    async fn query_syntax_is_only_ever_a_value() {
        let s = store(vec![]);
        let q = r#""title:(a OR b) AND * {"match_all":{}} \ ""#;
        let (status, _) = body(search_posts(&s, get("/v1/search/posts", &[("q", q)])).await).await;
        assert_eq!(status, 200);
        fn keys(v: &Value, out: &mut Vec<String>) {
            match v {
                Value::Object(m) => m.iter().for_each(|(k, v)| {
                    out.push(k.clone());
                    keys(v, out);
                }),
                Value::Array(a) => a.iter().for_each(|v| keys(v, out)),
                _ => {}
            }
        }
        let sent = s.search.sent();
        for (_, sent) in &sent {
            let mut found = Vec::new();
            keys(sent, &mut found);
            assert!(
                !found
                    .iter()
                    .any(|k| k == "query_string" || k == "match_all"),
                "{sent}"
            );
        }
        let posts = &sent.iter().find(|(i, _)| i == POSTS_INDEX).unwrap().1;
        assert_eq!(
            posts["query"]["bool"]["must"][0]["bool"]["should"][0]["match"]["caption"]["query"],
            q
        );
    }

    #[tokio::test]
    async fn blocked_and_private_authors_are_filtered_in_the_query_and_on_the_page() {
        let s = store(vec![
            post_hit("p1", "A", 3),
            post_hit("p2", "P", 2),
            post_hit("p3", "B", 1),
        ]);
        let (status, page) =
            body(search_posts(&s, get("/v1/search/posts", &[("q", "c")])).await).await;
        assert_eq!(status, 200);
        let ids: Vec<&str> = page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["id"].as_str().unwrap())
            .collect();
        assert_eq!(
            ids,
            ["p1"],
            "a private author not followed and an unknown one are left out"
        );
        assert_eq!(page["items"][0]["author"]["username"], "a");
        let sent = s.search.sent();
        let q = &sent.iter().find(|(i, _)| i == POSTS_INDEX).unwrap().1["query"]["bool"];
        assert_eq!(q["must_not"][0]["terms"]["author_id"], json!(["B"]));
        assert_eq!(
            q["filter"][1]["bool"]["should"][1]["terms"]["author_id"],
            json!([VIEWER])
        );
        assert_eq!(
            q["must"][0]["bool"]["should"][3]["terms"]["author_id"],
            json!(["A"]),
            "authors found by name join"
        );
    }

    #[tokio::test]
    async fn followers_see_a_private_authors_posts() {
        let mut s = store(vec![post_hit("p2", "P", 2)]);
        s.search
            .add_edges(EdgeSide::Following, [UserId::trusted("P")]);
        let (_, page) = body(search_posts(&s, get("/v1/search/posts", &[("q", "c")])).await).await;
        assert_eq!(page["items"].as_array().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn cursors_are_signed_bound_to_the_query_and_resume_after_the_last_hit() {
        let s = store(vec![
            post_hit("p1", "A", 3),
            post_hit("p2", "A", 2),
            post_hit("p3", "A", 1),
        ]);
        let (_, page) =
            body(search_posts(&s, get("/v1/search/posts", &[("q", "c"), ("limit", "2")])).await)
                .await;
        assert_eq!(page["items"].as_array().unwrap().len(), 2);
        let cursor = page["next_cursor"].as_str().unwrap().to_owned();
        let (status, _) = body(
            search_posts(
                &s,
                get("/v1/search/posts", &[("q", "c"), ("cursor", &cursor)]),
            )
            .await,
        )
        .await;
        assert_eq!(status, 200);
        let last = s.search.sent().last().unwrap().1.clone();
        assert_eq!(last["search_after"], json!([1.5, 2, "p2"]));
        // The hits that tie the last one's score are left out of the next page.
        assert_eq!(
            last["query"]["bool"]["must_not"][1],
            json!({"ids": {"values": ["p1", "p2"]}})
        );
        for (q, c) in [("other", cursor.as_str()), ("c", "forged.cursor")] {
            let (status, p) =
                body(search_posts(&s, get("/v1/search/posts", &[("q", q), ("cursor", c)])).await)
                    .await;
            assert_eq!((status, p["field"].as_str()), (400, Some("cursor")));
        }
    }

    #[tokio::test]
    async fn users_are_found_by_prefix_without_the_blocked() {
        let mut s = CannedSearch::default();
        s.add_edges(EdgeSide::Blocking, [UserId::trusted("B")]);
        let doc = |id: &str| json!({"_id": id, "_source": user(id, id == "P")});
        s.responses.insert(
            USERS_INDEX.into(),
            json!({"hits": {"hits": [doc("A"), doc("B"), doc("P")]}}),
        );
        let s = App {
            search: s,
            cursors: (),
        };
        let (status, page) =
            body(search_users(&s, get("/v1/search/users", &[("q", "Al")])).await).await;
        assert_eq!(status, 200);
        let names: Vec<&str> = page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["username"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["a", "p"]);
        assert!(page["next_cursor"].is_null());
        let sent = s.search.sent();
        assert_eq!(
            sent[0].1["query"]["bool"]["should"][1]["prefix"]["username"]["value"],
            "al"
        );
    }

    #[tokio::test]
    async fn hashtags_are_counted_and_only_matching_ones_kept() {
        let mut s = CannedSearch::default();
        s.responses.insert(POSTS_INDEX.into(), json!({"aggregations": {"tags": {"buckets": [
            {"key": "sunset", "doc_count": 3}, {"key": "beach", "doc_count": 5}, {"key": "sun", "doc_count": 5}
        ]}}}));
        let s = App {
            search: s,
            cursors: (),
        };
        let (status, page) =
            body(search_hashtags(&s, get("/v1/search/hashtags", &[("q", "#Sun")])).await).await;
        assert_eq!(status, 200);
        assert_eq!(
            page["items"],
            json!([{"tag": "sun", "post_count": 5}, {"tag": "sunset", "post_count": 3}])
        );
    }
}
