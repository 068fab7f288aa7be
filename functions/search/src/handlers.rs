//! The search endpoints. The caller's text only ever reaches OpenSearch as the *value* of
//! a `match`, `match_bool_prefix`, `term` or `prefix` query, never as query syntax
//! (no `query_string`), so `title:(a OR b) AND *` is searched for as words.
//!
//! Privacy and blocks are applied inside the query (tombstones, blocked authors both
//! ways, private authors unless the viewer is them, staff or an approved follower) and
//! checked again on the authors of the page, read fresh.

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
#[allow(unused_imports)] // the OpenAPI attributes name it
use shutter_core::Problem;
use shutter_core::{ApiError, CursorSigner};
use shutter_http::lambda_http::http::StatusCode;
use shutter_http::lambda_http::{Body, Request, Response};
use shutter_http::{ApiRequest, Caller, json};
use utoipa::ToSchema;

use crate::docs::{POSTS_INDEX, USERS_INDEX, UserDoc};

type ApiResult = Result<Response<Body>, ApiError>;

/// Longest query text, in characters.
pub const MAX_QUERY_CHARS: usize = 100;
/// Authors whose name matches a posts query that join its results.
const AUTHOR_MATCHES: usize = 20;
/// Words of a posts query also tried as hashtags.
const MAX_WORDS: usize = 10;
/// Buckets read to find the hashtags that start with the query.
const HASHTAG_BUCKETS: usize = 200;

/// What the search endpoints need of OpenSearch.
#[async_trait]
pub trait SearchStore: Send + Sync {
    /// The viewer's blocks (both ways) and approved follows.
    async fn relations(&self, viewer: &str) -> Result<Relations, ApiError>;
    /// A raw `_search` of `index` (the body is built here, from values only).
    async fn search(&self, index: &str, body: &Value) -> Result<Value, ApiError>;
    /// User documents by id (missing ones are left out).
    async fn users(&self, ids: &HashSet<String>) -> Result<HashMap<String, UserDoc>, ApiError>;
}

/// Who the viewer must not see, and whom they follow.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Relations {
    /// Users the viewer blocked or who blocked the viewer.
    pub hidden: HashSet<String>,
    /// Users the viewer follows (approved).
    pub following: HashSet<String>,
}

/// The verified caller as a searcher.
struct Viewer {
    user_id: String,
    staff: bool,
    relations: Relations,
}

impl Viewer {
    async fn of<S: SearchStore>(store: &S, caller: &Caller) -> Result<Self, ApiError> {
        Ok(Self {
            user_id: caller.user_id.to_string(),
            staff: caller.is_staff(),
            relations: store.relations(&caller.user_id).await?,
        })
    }

    fn may_see(&self, author: &UserDoc) -> bool {
        !author.deleted
            && !self.relations.hidden.contains(&author.user_id)
            && (!author.private
                || self.staff
                || author.user_id == self.user_id
                || self.relations.following.contains(&author.user_id))
    }

    fn hidden(&self) -> Vec<&String> {
        let mut v: Vec<&String> = self.relations.hidden.iter().collect();
        v.sort();
        v
    }

    /// The filter that keeps a private author's posts for those who may see them.
    fn posts_filter(&self) -> Vec<Value> {
        let mut filters = vec![json!({"term": {"deleted": false}})];
        if !self.staff {
            let mut allowed: Vec<&String> = self.relations.following.iter().collect();
            allowed.push(&self.user_id);
            allowed.sort();
            filters.push(json!({"bool": {"should": [
                {"term": {"author_private": false}},
                {"terms": {"author_id": allowed}}
            ], "minimum_should_match": 1}}));
        }
        filters
    }
}

/// The `q` parameter: 1 to 100 characters, not only blanks, no control characters.
pub fn query_text(req: &Request) -> Result<String, ApiError> {
    let q = req
        .query("q")
        .ok_or_else(|| ApiError::invalid("q", "is required"))?;
    check_query(&q)?;
    Ok(q)
}

pub fn check_query(q: &str) -> Result<(), ApiError> {
    let n = q.chars().count();
    if n == 0 || n > MAX_QUERY_CHARS {
        return Err(ApiError::invalid(
            "q",
            format!("must be 1 to {MAX_QUERY_CHARS} characters"),
        ));
    }
    if q.trim().is_empty() {
        return Err(ApiError::invalid("q", "must not be only blanks"));
    }
    if q.chars().any(char::is_control) {
        return Err(ApiError::invalid(
            "q",
            "must not contain control characters",
        ));
    }
    Ok(())
}

/// The words of `q` as hashtag values: `#` dropped, lower-cased, letters, digits and `_`.
fn hashtag_words(q: &str) -> Vec<String> {
    let mut words: Vec<String> = q
        .split_whitespace()
        .map(|w| {
            w.trim_start_matches('#')
                .chars()
                .filter(|c| c.is_alphanumeric() || *c == '_')
                .collect::<String>()
                .to_lowercase()
        })
        .filter(|w| !w.is_empty())
        .collect();
    words.dedup();
    words.truncate(MAX_WORDS);
    words
}

fn hits(response: &Value) -> impl Iterator<Item = &Value> {
    response["hits"]["hits"].as_array().into_iter().flatten()
}

// ---------------------------------------------------------------------------------------
// Posts

/// A post found by a search.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PostHit {
    pub id: String,
    pub author: AuthorHit,
    pub caption: String,
    pub location: Option<String>,
    pub hashtags: Vec<String>,
    pub like_count: i64,
    pub created_at: Option<String>,
}

/// The author of a post found.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AuthorHit {
    pub id: String,
    pub username: String,
    pub display_name: String,
}

/// A page of posts, best first.
#[derive(Debug, Serialize, ToSchema)]
pub struct PostHitsPage {
    pub items: Vec<PostHit>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// Where a posts search resumes: the sort values of the last hit, and the instant the
/// first page was ranked at (so recency scores, and the order, hold across pages).
/// `tied` are the hits of the page whose score ties the last one's: they are left out of
/// the next page, so an engine that does not give back a score exactly as it printed it
/// (osmem keeps some in 64 bits, prints 32) cannot show a hit twice.
#[derive(Debug, Serialize, Deserialize)]
struct PostsPosition {
    at: i64,
    after: Vec<Value>,
    #[serde(default)]
    tied: Vec<String>,
}

fn posts_scope(q: &str) -> String {
    format!("search:posts:{q}")
}

/// The body of a posts search: words over captions and locations, the words as hashtags,
/// and the posts of authors whose names start with the text; blended with recency (half
/// the boost at a week old) and popularity (log of likes), newest first among equals.
fn posts_query(
    q: &str,
    viewer: &Viewer,
    authors: &[String],
    at_millis: i64,
    after: Option<&PostsPosition>,
    size: usize,
) -> Value {
    let words = hashtag_words(q);
    let mut should = vec![
        json!({"match": {"caption": {"query": q, "boost": 2.0}}}),
        json!({"match": {"location": {"query": q}}}),
    ];
    if !words.is_empty() {
        should.push(json!({"terms": {"hashtags": words, "boost": 3.0}}));
    }
    if !authors.is_empty() {
        should.push(json!({"terms": {"author_id": authors, "boost": 1.5}}));
    }
    let mut body = json!({
        "size": size,
        "track_total_hits": false,
        "query": {"bool": {
            "must": [{"bool": {"should": should, "minimum_should_match": 1}}],
            // Added to the text score: recency (1 for now, 1/2 a week ago) and popularity
            // (the log of likes). Both are cheap to rank by (no script, no per-hit function).
            "should": [
                {"distance_feature": {"field": "created_at", "origin": at_millis, "pivot": "7d", "boost": 1.0}},
                {"rank_feature": {"field": "popularity", "log": {"scaling_factor": 1}, "boost": 0.5}}
            ],
            "filter": viewer.posts_filter(),
            "must_not": [{"terms": {"author_id": viewer.hidden()}}]
        }},
        "sort": [{"_score": "desc"}, {"created_at": "desc"}, {"post_id": "asc"}]
    });
    if let Some(position) = after {
        body["search_after"] = json!(position.after);
        if !position.tied.is_empty() {
            body["query"]["bool"]["must_not"]
                .as_array_mut()
                .into_iter()
                .for_each(|m| m.push(json!({"ids": {"values": position.tied}})));
        }
    }
    body
}

/// Users whose username or display name starts with `q` (for typeahead and for finding
/// posts by author), blocked ones left out.
fn users_query(q: &str, viewer: &Viewer, size: usize) -> Value {
    let lower = q.trim().to_lowercase();
    json!({
        "size": size,
        "track_total_hits": false,
        "query": {"bool": {
            "should": [
                {"term": {"username": {"value": lower, "boost": 10.0}}},
                {"prefix": {"username": {"value": lower, "boost": 4.0}}},
                {"match_bool_prefix": {"display_name": {"query": q}}}
            ],
            "minimum_should_match": 1,
            "filter": [{"term": {"deleted": false}}],
            "must_not": [{"terms": {"user_id": viewer.hidden()}}]
        }},
        "sort": [{"_score": "desc"}, {"username": "asc"}]
    })
}

fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
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
        (status = 400, description = "`q`, `limit` or `cursor` is invalid (named in `field`)", body = Problem, content_type = "application/problem+json")
    )
)]
#[tracing::instrument(skip_all)]
pub async fn search_posts<S: SearchStore>(
    store: &S,
    signer: &CursorSigner,
    req: Request,
) -> ApiResult {
    let caller = Caller::from_request(&req)?;
    let q = query_text(&req)?;
    let page = req.page_request()?;
    let scope = posts_scope(&q);
    let position: Option<PostsPosition> = match &page.cursor {
        Some(c) => {
            let p: PostsPosition = signer.verify(&scope, c)?;
            if p.after.len() != 3 {
                return Err(ApiError::invalid(
                    "cursor",
                    "is not a cursor this server issued",
                ));
            }
            Some(p)
        }
        None => None,
    };
    let at = position.as_ref().map_or_else(now_millis, |p| p.at);
    // The viewer's edges and the authors named by the text, at once: the authors' query
    // needs no edges (the posts query leaves hidden authors out).
    let anyone = Viewer {
        user_id: caller.user_id.to_string(),
        staff: caller.is_staff(),
        relations: Relations::default(),
    };
    let author_query = users_query(&q, &anyone, AUTHOR_MATCHES);
    let (viewer, named) = futures::try_join!(
        Viewer::of(store, &caller),
        store.search(USERS_INDEX, &author_query)
    )?;
    let authors: Vec<String> = hits(&named)
        .filter_map(|h| h["_id"].as_str().map(str::to_owned))
        .collect();
    let limit = usize::from(page.limit);
    let body = posts_query(&q, &viewer, &authors, at, position.as_ref(), limit + 1);
    let response = store.search(POSTS_INDEX, &body).await?;
    let mut found: Vec<&Value> = hits(&response).collect();
    let next_cursor = if found.len() > limit {
        found.truncate(limit);
        found.last().map(|last| {
            let tied = found
                .iter()
                .filter(|h| h["sort"][0] == last["sort"][0])
                .filter_map(|h| h["_id"].as_str().map(str::to_owned))
                .collect();
            signer.sign(
                &scope,
                &PostsPosition {
                    at,
                    after: last["sort"].as_array().cloned().unwrap_or_default(),
                    tied,
                },
            )
        })
    } else {
        None
    };
    let author_ids: HashSet<String> = found
        .iter()
        .filter_map(|h| h["_source"]["author_id"].as_str().map(str::to_owned))
        .collect();
    let known = store.users(&author_ids).await?;
    let items = found
        .into_iter()
        .filter_map(|h| {
            let s = &h["_source"];
            let author = known.get(s["author_id"].as_str()?)?;
            // Checked again on fresh author documents: a privacy change or a block that
            // has not reached every post document yet still hides them.
            if !viewer.may_see(author) {
                return None;
            }
            Some(PostHit {
                id: s["post_id"].as_str()?.to_owned(),
                author: AuthorHit {
                    id: author.user_id.clone(),
                    username: author.username.clone(),
                    display_name: author.display_name.clone(),
                },
                caption: s["caption"].as_str().unwrap_or_default().to_owned(),
                location: s["location"].as_str().map(str::to_owned),
                hashtags: serde_json::from_value(s["hashtags"].clone()).unwrap_or_default(),
                like_count: s["like_count"].as_i64().unwrap_or(0).max(0),
                created_at: s["created_at"].as_str().map(str::to_owned),
            })
        })
        .collect();
    json(StatusCode::OK, &PostHitsPage { items, next_cursor })
}

// ---------------------------------------------------------------------------------------
// Users

/// A user found by a search.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct UserHit {
    pub id: String,
    pub username: String,
    pub display_name: String,
    pub private: bool,
}

/// The users that match best (typeahead: one page).
#[derive(Debug, Serialize, ToSchema)]
pub struct UserHitsPage {
    pub items: Vec<UserHit>,
    /// Always `null`: a typeahead answers its best matches only.
    pub next_cursor: Option<String>,
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
        (status = 400, description = "`q` or `limit` is invalid (named in `field`)", body = Problem, content_type = "application/problem+json")
    )
)]
#[tracing::instrument(skip_all)]
pub async fn search_users<S: SearchStore>(store: &S, req: Request) -> ApiResult {
    let caller = Caller::from_request(&req)?;
    let q = query_text(&req)?;
    let page = shutter_core::PageRequest::parse(req.query("limit").as_deref(), None)?;
    let viewer = Viewer::of(store, &caller).await?;
    let response = store
        .search(
            USERS_INDEX,
            &users_query(&q, &viewer, usize::from(page.limit)),
        )
        .await?;
    let items = hits(&response)
        .filter_map(|h| serde_json::from_value::<UserDoc>(h["_source"].clone()).ok())
        .filter(|u| !u.deleted && !viewer.relations.hidden.contains(&u.user_id))
        .map(|u| UserHit {
            id: u.user_id,
            username: u.username,
            display_name: u.display_name,
            private: u.private,
        })
        .collect();
    json(
        StatusCode::OK,
        &UserHitsPage {
            items,
            next_cursor: None,
        },
    )
}

// ---------------------------------------------------------------------------------------
// Hashtags

/// A hashtag and how many posts you may see carry it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct HashtagHit {
    pub tag: String,
    pub post_count: i64,
}

/// The hashtags that match best (one page).
#[derive(Debug, Serialize, ToSchema)]
pub struct HashtagHitsPage {
    pub items: Vec<HashtagHit>,
    /// Always `null`: the most used matches only.
    pub next_cursor: Option<String>,
}

/// `q` as a hashtag prefix: one leading `#` dropped, lower-cased; letters, digits and `_`.
pub fn hashtag_prefix(q: &str) -> Result<String, ApiError> {
    let tag = q.strip_prefix('#').unwrap_or(q).to_lowercase();
    if tag.is_empty() || !tag.chars().all(|c| c.is_alphanumeric() || c == '_') {
        return Err(ApiError::invalid(
            "q",
            "must be a hashtag or its beginning: letters, digits and _ after an optional #",
        ));
    }
    Ok(tag)
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
        (status = 400, description = "`q` or `limit` is invalid (named in `field`)", body = Problem, content_type = "application/problem+json")
    )
)]
#[tracing::instrument(skip_all)]
pub async fn search_hashtags<S: SearchStore>(store: &S, req: Request) -> ApiResult {
    let caller = Caller::from_request(&req)?;
    let q = query_text(&req)?;
    let tag = hashtag_prefix(&q)?;
    let page = shutter_core::PageRequest::parse(req.query("limit").as_deref(), None)?;
    let viewer = Viewer::of(store, &caller).await?;
    let mut filter = viewer.posts_filter();
    filter.push(json!({"prefix": {"hashtags": {"value": tag}}}));
    let body = json!({
        "size": 0,
        "query": {"bool": {"filter": filter, "must_not": [{"terms": {"author_id": viewer.hidden()}}]}},
        "aggs": {"tags": {"terms": {"field": "hashtags", "size": HASHTAG_BUCKETS}}}
    });
    let response = store.search(POSTS_INDEX, &body).await?;
    // A post's other hashtags are in the buckets too: keep those that match.
    let mut items: Vec<HashtagHit> = response["aggregations"]["tags"]["buckets"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|b| {
            Some(HashtagHit {
                tag: b["key"].as_str()?.to_owned(),
                post_count: b["doc_count"].as_i64()?,
            })
        })
        .filter(|h| h.tag.starts_with(&tag))
        .collect();
    items.sort_by(|a, b| {
        b.post_count
            .cmp(&a.post_count)
            .then_with(|| a.tag.cmp(&b.tag))
    });
    items.truncate(usize::from(page.limit));
    json(
        StatusCode::OK,
        &HashtagHitsPage {
            items,
            next_cursor: None,
        },
    )
}

// ---------------------------------------------------------------------------------------

/// A [`SearchStore`] that answers canned responses and keeps the bodies it was sent.
pub mod memory {
    use std::collections::{HashMap, HashSet};
    use std::sync::Mutex;

    use async_trait::async_trait;
    use serde_json::Value;
    use shutter_core::ApiError;

    use super::{Relations, SearchStore};
    use crate::docs::UserDoc;

    #[derive(Debug, Default)]
    pub struct CannedSearch {
        pub relations: Relations,
        /// Index -> the response every search of it gets.
        pub responses: HashMap<String, Value>,
        pub users: HashMap<String, UserDoc>,
        pub sent: Mutex<Vec<(String, Value)>>,
    }

    #[async_trait]
    impl SearchStore for CannedSearch {
        async fn relations(&self, _viewer: &str) -> Result<Relations, ApiError> {
            Ok(self.relations.clone())
        }

        async fn search(&self, index: &str, body: &Value) -> Result<Value, ApiError> {
            if let Ok(mut sent) = self.sent.lock() {
                sent.push((index.to_owned(), body.clone()));
            }
            Ok(self.responses.get(index).cloned().unwrap_or(Value::Null))
        }

        async fn users(&self, ids: &HashSet<String>) -> Result<HashMap<String, UserDoc>, ApiError> {
            Ok(ids
                .iter()
                .filter_map(|id| Some((id.clone(), self.users.get(id)?.clone())))
                .collect())
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::memory::CannedSearch;
    use super::*;
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
        }
    }

    fn post_hit(id: &str, author: &str, sort: i64) -> Value {
        json!({"_id": id, "_source": {"post_id": id, "author_id": author, "caption": "c", "hashtags": ["x"], "like_count": 1,
               "created_at": "2026-11-29T00:00:00.000Z"}, "sort": [1.5, sort, id]})
    }

    fn store(posts: Vec<Value>) -> CannedSearch {
        let mut s = CannedSearch::default();
        s.responses
            .insert(POSTS_INDEX.into(), json!({"hits": {"hits": posts}}));
        s.responses.insert(
            USERS_INDEX.into(),
            json!({"hits": {"hits": [{"_id": "A"}]}}),
        );
        s.users.insert("A".into(), user("A", false));
        s.users.insert("P".into(), user("P", true));
        s.relations.hidden.insert("B".into());
        s
    }

    #[tokio::test]
    async fn the_query_text_is_bounded_and_named_in_errors() {
        let s = store(vec![]);
        let signer = CursorSigner::new(b"k".to_vec());
        for bad in ["", "   ", &"x".repeat(101), "a\u{0}b"] {
            let (status, p) =
                body(search_posts(&s, &signer, get("/v1/search/posts", &[("q", bad)])).await).await;
            assert_eq!((status, p["field"].as_str()), (400, Some("q")), "{bad:?}");
        }
        let (status, p) = body(search_users(&s, get("/v1/search/users", &[])).await).await;
        assert_eq!((status, p["field"].as_str()), (400, Some("q")));
        let (status, p) =
            body(search_hashtags(&s, get("/v1/search/hashtags", &[("q", "a b")])).await).await;
        assert_eq!((status, p["field"].as_str()), (400, Some("q")));
        assert!(
            s.sent.lock().unwrap().is_empty(),
            "nothing reached OpenSearch"
        );
    }

    #[tokio::test]
    async fn query_syntax_is_only_ever_a_value() {
        let s = store(vec![]);
        let signer = CursorSigner::new(b"k".to_vec());
        let q = r#""title:(a OR b) AND * {"match_all":{}} \ ""#;
        let (status, _) =
            body(search_posts(&s, &signer, get("/v1/search/posts", &[("q", q)])).await).await;
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
        for (_, sent) in s.sent.lock().unwrap().iter() {
            let mut found = Vec::new();
            keys(sent, &mut found);
            assert!(
                !found
                    .iter()
                    .any(|k| k == "query_string" || k == "match_all"),
                "{sent}"
            );
        }
        let sent = s.sent.lock().unwrap();
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
        let signer = CursorSigner::new(b"k".to_vec());
        let (status, page) =
            body(search_posts(&s, &signer, get("/v1/search/posts", &[("q", "c")])).await).await;
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
        let sent = s.sent.lock().unwrap();
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
        s.relations.following.insert("P".into());
        let signer = CursorSigner::new(b"k".to_vec());
        let (_, page) =
            body(search_posts(&s, &signer, get("/v1/search/posts", &[("q", "c")])).await).await;
        assert_eq!(page["items"].as_array().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn cursors_are_signed_bound_to_the_query_and_resume_after_the_last_hit() {
        let s = store(vec![
            post_hit("p1", "A", 3),
            post_hit("p2", "A", 2),
            post_hit("p3", "A", 1),
        ]);
        let signer = CursorSigner::new(b"k".to_vec());
        let (_, page) = body(
            search_posts(
                &s,
                &signer,
                get("/v1/search/posts", &[("q", "c"), ("limit", "2")]),
            )
            .await,
        )
        .await;
        assert_eq!(page["items"].as_array().unwrap().len(), 2);
        let cursor = page["next_cursor"].as_str().unwrap().to_owned();
        let (status, _) = body(
            search_posts(
                &s,
                &signer,
                get("/v1/search/posts", &[("q", "c"), ("cursor", &cursor)]),
            )
            .await,
        )
        .await;
        assert_eq!(status, 200);
        let last = s.sent.lock().unwrap().last().unwrap().1.clone();
        assert_eq!(last["search_after"], json!([1.5, 2, "p2"]));
        // The hits that tie the last one's score are left out of the next page.
        assert_eq!(
            last["query"]["bool"]["must_not"][1],
            json!({"ids": {"values": ["p1", "p2"]}})
        );
        for (q, c) in [("other", cursor.as_str()), ("c", "forged.cursor")] {
            let (status, p) = body(
                search_posts(
                    &s,
                    &signer,
                    get("/v1/search/posts", &[("q", q), ("cursor", c)]),
                )
                .await,
            )
            .await;
            assert_eq!((status, p["field"].as_str()), (400, Some("cursor")));
        }
    }

    #[tokio::test]
    async fn users_are_found_by_prefix_without_the_blocked() {
        let mut s = CannedSearch::default();
        s.relations.hidden.insert("B".into());
        let doc = |id: &str| json!({"_id": id, "_source": user(id, id == "P")});
        s.responses.insert(
            USERS_INDEX.into(),
            json!({"hits": {"hits": [doc("A"), doc("B"), doc("P")]}}),
        );
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
        let sent = s.sent.lock().unwrap();
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
        let (status, page) =
            body(search_hashtags(&s, get("/v1/search/hashtags", &[("q", "#Sun")])).await).await;
        assert_eq!(status, 200);
        assert_eq!(
            page["items"],
            json!([{"tag": "sun", "post_count": 5}, {"tag": "sunset", "post_count": 3}])
        );
    }
}
