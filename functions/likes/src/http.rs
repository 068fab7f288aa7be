//! The like endpoints: parse the request into typed values, call the use case, answer.

use shutter_core::{ApiError, PostId, Problem};
use shutter_directory::Directory;
use shutter_http::lambda_http::http::StatusCode;
use shutter_http::lambda_http::{Body, Request, Response};
use shutter_http::{ApiRequest, Caller, json};

use crate::App;
use crate::model::{LikeStatus, LikersPage};
use crate::store::LikesStore;

type ApiResult = Result<Response<Body>, ApiError>;

/// The `{id}` of the path as a canonical ULID (400 naming `id` otherwise).
fn post_id(req: &Request) -> Result<PostId, ApiError> {
    PostId::parse("id", &req.path_param("id")?)
}

/// `PUT /v1/posts/{id}/like`: the caller likes the post, once however often they ask.
#[utoipa::path(
    put, path = "/v1/posts/{id}/like", tag = "likes", security(("bearer" = ["user"])),
    summary = "Like a post",
    description = "Idempotent: liking a post you already like changes nothing. Emits `LikeAdded` when the like is new.",
    params(("id" = String, Path, description = "The post id (a ULID)", pattern = "^[0-7][0-9A-HJKMNP-TV-Za-hjkmnp-tv-z]{25}$")),
    responses(
        (status = 200, description = "You like the post", body = LikeStatus, example = json!({"post_id": "01JD0000000000000000PST001", "liked": true})),
        (status = 403, description = "`account_suspended`: your account is suspended (`until`: when it ends) or banned; nothing changed", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such published post (or one staff removed), or one you may not see (a banned author's included)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`concurrent_update`: the like kept changing meanwhile; retry", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "`rate_limited`: too many likes and unlikes this hour (`likes`); nothing changed", body = Problem, content_type = "application/problem+json", headers(("Retry-After" = u64, description = "Seconds until a retry can pass"), ("RateLimit-Policy" = String, description = "This route's limits, each `\"name-window\";q=quota;w=seconds` (IETF RateLimit fields; on every answer of the route)"), ("RateLimit" = String, description = "What remains of each limit and when it resets, `\"name-window\";r=remaining;t=seconds`")))
    )
)]
#[tracing::instrument(skip_all)]
pub async fn like<S: LikesStore, D: Directory>(app: &App<S, D>, req: Request) -> ApiResult {
    let caller = Caller::from_request(&req)?;
    let post_id = post_id(&req)?;
    let status = app.like(&caller, post_id, &req.correlation_id()).await?;
    json(StatusCode::OK, &status)
}

/// `DELETE /v1/posts/{id}/like`: the caller no longer likes the post.
#[utoipa::path(
    delete, path = "/v1/posts/{id}/like", tag = "likes", security(("bearer" = ["user"])),
    summary = "Take back your like of a post",
    description = "Idempotent: unliking a post you do not like changes nothing. Emits `LikeRemoved` when a like existed. A like can always be taken back, even from a post you may no longer see.",
    params(("id" = String, Path, description = "The post id (a ULID)", pattern = "^[0-7][0-9A-HJKMNP-TV-Za-hjkmnp-tv-z]{25}$")),
    responses(
        (status = 200, description = "You do not like the post", body = LikeStatus, example = json!({"post_id": "01JD0000000000000000PST001", "liked": false})),
        (status = 403, description = "`account_suspended`: your account is suspended (`until`: when it ends) or banned; nothing changed", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such published post (or one staff removed), or one you may not see (a banned author's included)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`concurrent_update`: the like kept changing meanwhile; retry", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "`rate_limited`: too many likes and unlikes this hour (`likes`); nothing changed", body = Problem, content_type = "application/problem+json", headers(("Retry-After" = u64, description = "Seconds until a retry can pass"), ("RateLimit-Policy" = String, description = "This route's limits, each `\"name-window\";q=quota;w=seconds` (IETF RateLimit fields; on every answer of the route)"), ("RateLimit" = String, description = "What remains of each limit and when it resets, `\"name-window\";r=remaining;t=seconds`")))
    )
)]
#[tracing::instrument(skip_all)]
pub async fn unlike<S: LikesStore, D: Directory>(app: &App<S, D>, req: Request) -> ApiResult {
    let caller = Caller::from_request(&req)?;
    let post_id = post_id(&req)?;
    let status = app.unlike(&caller, post_id, &req.correlation_id()).await?;
    json(StatusCode::OK, &status)
}

/// `GET /v1/posts/{id}/likes?limit=&cursor=`: who likes the post, newest first.
#[utoipa::path(
    get, path = "/v1/posts/{id}/likes", tag = "likes", security(("bearer" = ["user"])),
    summary = "Who likes a post, newest first",
    description = "Someone who blocks you or whom you block is left out, so a page can be shorter than `limit` (even empty) while `next_cursor` says more may follow.",
    params(
        ("id" = String, Path, description = "The post id (a ULID)", pattern = "^[0-7][0-9A-HJKMNP-TV-Za-hjkmnp-tv-z]{25}$"),
        ("limit" = Option<u16>, Query, description = "Page size, 1 to 100 (default 20)", minimum = 1, maximum = 100),
        ("cursor" = Option<String>, Query, description = "The `next_cursor` of the previous page")
    ),
    responses(
        (status = 200, description = "A page of likers", body = LikersPage),
        (status = 404, description = "No such published post, or one you may not see", body = Problem, content_type = "application/problem+json")
    )
)]
#[tracing::instrument(skip_all)]
pub async fn likers<S: LikesStore, D: Directory>(app: &App<S, D>, req: Request) -> ApiResult {
    let caller = Caller::from_request(&req)?;
    let post_id = post_id(&req)?;
    let page = req.page_request()?;
    let page = app.likers(&caller, &post_id, &page).await?;
    json(StatusCode::OK, &page)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use shutter_core::{CursorSigner, UserId};
    use shutter_events::Event;
    use shutter_http::lambda_http::RequestExt;
    use shutter_http::test_support::api_request;

    use super::*;
    use crate::service::{Position, cursor_scope};
    use crate::testing::{World, author, like_events, signer, world};

    fn as_user(user: &str, scope: &str, method: &str, post: &str, query: &str) -> Request {
        let req = api_request(
            method,
            &format!("/v1/posts/{post}/like"),
            &[("id", post)],
            "",
            Some((user, "someone", scope)),
        );
        if query.is_empty() {
            return req;
        }
        let params: std::collections::HashMap<String, String> = query
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        req.with_query_string_parameters(params)
    }

    fn body(resp: Response<Body>) -> serde_json::Value {
        assert_eq!(resp.status(), 200);
        serde_json::from_slice(resp.body().as_ref()).unwrap()
    }

    impl World {
        async fn put(&self, user: &UserId) -> Result<serde_json::Value, ApiError> {
            like(&self.app, as_user(user, "user", "PUT", &self.post, ""))
                .await
                .map(body)
        }
        async fn delete(&self, user: &UserId) -> Result<serde_json::Value, ApiError> {
            unlike(&self.app, as_user(user, "user", "DELETE", &self.post, ""))
                .await
                .map(body)
        }
        async fn get(&self, user: &UserId, query: &str) -> Result<serde_json::Value, ApiError> {
            likers(&self.app, as_user(user, "user", "GET", &self.post, query))
                .await
                .map(body)
        }
    }

    #[tokio::test]
    async fn like_and_unlike_answer_the_status_and_carry_the_requests_correlation_id() {
        let w = world(false);
        let bob = UserId::generate();
        let j = w.put(&bob).await.unwrap();
        assert_eq!(
            j,
            serde_json::json!({"post_id": w.post.as_str(), "liked": true})
        );
        let j = w.delete(&bob).await.unwrap();
        assert_eq!(
            j,
            serde_json::json!({"post_id": w.post.as_str(), "liked": false})
        );
        let events = w.app.store.events();
        assert_eq!(events.len(), 2);
        assert!(events.iter().all(|e| e.correlation_id == "test-request"));
        assert!(matches!(events[1].event, Event::LikeRemoved(_)));
    }

    #[tokio::test]
    async fn a_private_accounts_posts_are_404_to_others_but_not_to_the_author_or_staff() {
        let w = world(true);
        let mallory = UserId::generate();
        assert_eq!(w.put(&mallory).await.unwrap_err().status(), 404);
        assert_eq!(w.get(&mallory, "").await.unwrap_err().status(), 404);
        assert_eq!(w.delete(&mallory).await.unwrap_err().status(), 404);
        assert!(w.app.store.events().is_empty());
        w.put(&w.author).await.unwrap();
        let moderator = UserId::generate();
        let req = as_user(&moderator, "user moderator", "GET", &w.post, "");
        let page = body(likers(&w.app, req).await.unwrap());
        assert_eq!(page["items"][0]["user_id"], w.author.as_str());
        assert_eq!(page["items"][0]["display_name"], "ANN");
    }

    #[tokio::test]
    async fn unknown_or_unpublished_posts_are_404_and_bad_ids_400() {
        let w = world(false);
        let bob = UserId::generate();
        let unknown = PostId::generate();
        let err = like(&w.app, as_user(&bob, "user", "PUT", &unknown, ""))
            .await
            .unwrap_err();
        assert_eq!(err.status(), 404);
        for bad in ["not-a-ulid", "", "01JD00000000000000000000000000"] {
            for method in ["PUT", "DELETE", "GET"] {
                let req = as_user(&bob, "user", method, bad, "");
                let err = match method {
                    "PUT" => like(&w.app, req).await,
                    "DELETE" => unlike(&w.app, req).await,
                    _ => likers(&w.app, req).await,
                }
                .unwrap_err();
                assert_eq!(
                    (err.status(), err.problem().field.as_deref()),
                    (400, Some("id")),
                    "{method} {bad:?}"
                );
            }
        }
        let anonymous = api_request("PUT", "/", &[("id", w.post.as_str())], "", None);
        assert_eq!(like(&w.app, anonymous).await.unwrap_err().status(), 401);
        assert!(w.app.store.events().is_empty());
    }

    #[tokio::test]
    async fn likers_are_paged_newest_first_with_signed_cursors() {
        let w = world(false);
        let users: Vec<UserId> = (0..5).map(|_| UserId::generate()).collect();
        for u in &users {
            w.put(u).await.unwrap();
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
        w.app.directory.add_author(author(&users[4], "eve", false));
        let mut seen = Vec::new();
        let mut query = "limit=2".to_owned();
        loop {
            let page = w.get(&users[0], &query).await.unwrap();
            for item in page["items"].as_array().unwrap() {
                seen.push(item["user_id"].as_str().unwrap().to_owned());
            }
            match page["next_cursor"].as_str() {
                Some(c) => query = format!("limit=2&cursor={c}"),
                None => break,
            }
        }
        let newest_first: Vec<String> = users.iter().rev().map(|u| u.to_string()).collect();
        assert_eq!(seen, newest_first);
        let first = w.get(&users[0], "limit=1").await.unwrap();
        assert_eq!(
            first["items"][0]["username"], "eve",
            "names come from the directory"
        );
        assert_eq!(first["items"][1], serde_json::Value::Null);

        // A forged cursor, a cursor of another post's list, one signed over a position
        // that is not a list position, and a bad limit are 400s.
        let other = signer().sign(
            &cursor_scope(&PostId::generate()),
            &Position {
                after: "LIKED#X".into(),
            },
        );
        let forged = CursorSigner::new(b"not our key".to_vec()).sign(
            &cursor_scope(&w.post),
            &Position {
                after: "LIKED#X".into(),
            },
        );
        let elsewhere = signer().sign(
            &cursor_scope(&w.post),
            &Position {
                after: "POST#X".into(),
            },
        );
        for (query, field) in [
            (format!("cursor={forged}"), "cursor"),
            (format!("cursor={other}"), "cursor"),
            (format!("cursor={elsewhere}"), "cursor"),
            ("cursor=garbage".to_owned(), "cursor"),
            ("limit=0".to_owned(), "limit"),
            ("limit=101".to_owned(), "limit"),
        ] {
            let err = w.get(&users[0], &query).await.unwrap_err();
            assert_eq!(
                (err.status(), err.problem().field.as_deref()),
                (400, Some(field)),
                "{query}"
            );
        }
        assert_eq!(like_events(&w.app.store).len(), 5);
    }
}
