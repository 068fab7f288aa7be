//! The HTTP adapters: each reads the caller and the request into typed values, calls one
//! use case and answers with its JSON. No rule and no storage here; the `#[utoipa::path]`
//! attributes are the source of the OpenAPI document (`shared/openapi`).

use shutter_core::Problem;
use shutter_core::validate::Username;
use shutter_core::{ApiError, UserId};
use shutter_directory::Directory;
use shutter_http::lambda_http::http::StatusCode;
use shutter_http::lambda_http::{Body, Request, Response};
use shutter_http::{ApiRequest, Caller, json};

use crate::App;
use crate::model::{BlockStatus, FollowPage, FollowRequestPage, FollowStatus};
use crate::store::FollowsStore;

type ApiResult = Result<Response<Body>, ApiError>;

/// The path's `{username}`: a 400 naming it unless it is a valid username.
fn username(req: &Request) -> Result<Username, ApiError> {
    let raw = req.path_param("username")?;
    Username::try_from(raw).map_err(|why| ApiError::invalid("username", why))
}

/// The path's `{id}` of a follow request: the requester's user id.
fn requester(req: &Request) -> Result<UserId, ApiError> {
    UserId::parse("id", &req.path_param("id")?)
}

const USERNAME_PARAM: &str = "The other user's username";

const REQUEST_ID_PARAM: &str = "The request's id: the requester's user id (a ULID)";

/// `PUT /v1/users/{username}/follow`: follow a user, or ask to if their account is private.
#[utoipa::path(
    put, path = "/v1/users/{username}/follow", tag = "follows", security(("bearer" = ["user"])),
    summary = "Follow a user (a request, if their account is private)",
    description = "Idempotent: following someone you follow, or have asked to, changes nothing. Emits `FollowStarted` (public account) or `FollowRequested` (private account). A deleted account's token is refused (401 `unauthorized`).",
    params(("username" = String, Path, description = USERNAME_PARAM)),
    responses(
        (status = 200, description = "Where you stand now: `following` or `requested`", body = FollowStatus, example = json!({"user_id": "01JD0000000000000000B0B002", "username": "bob", "state": "following"})),
        (status = 400, description = "`invalid`: not a username, or your own", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`account_suspended`: your account is suspended (`until` says until when) or banned; nothing changed", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such user (or one who blocks you, or who is banned)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`blocked`: you block this user; or `concurrent_update`: retry", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "`rate_limited`: too many follows and unfollows this hour or day (`follows`); nothing changed", body = Problem, content_type = "application/problem+json", headers(("Retry-After" = u64, description = "Seconds until a retry can pass"), ("RateLimit-Policy" = String, description = "This route's limits, each `\"name-window\";q=quota;w=seconds` (IETF RateLimit fields; on every answer of the route)"), ("RateLimit" = String, description = "What remains of each limit and when it resets, `\"name-window\";r=remaining;t=seconds`")))
    )
)]
#[tracing::instrument(skip_all)]
pub async fn follow<S: FollowsStore, D: Directory, C>(
    app: &App<S, D, C>,
    req: Request,
) -> ApiResult {
    let caller = Caller::from_request(&req)?;
    let username = username(&req)?;
    let status = app
        .follow(&caller, &username, &req.correlation_id())
        .await?;
    json(StatusCode::OK, &status)
}

/// `DELETE /v1/users/{username}/follow`: stop following, or withdraw a request.
#[utoipa::path(
    delete, path = "/v1/users/{username}/follow", tag = "follows", security(("bearer" = ["user"])),
    summary = "Unfollow a user, or withdraw your request",
    description = "Idempotent. Emits `FollowEnded` (or `FollowRequestCancelled` for a pending request) when something was there.",
    params(("username" = String, Path, description = USERNAME_PARAM)),
    responses(
        (status = 200, description = "You neither follow nor ask to follow the user", body = FollowStatus, example = json!({"user_id": "01JD0000000000000000B0B002", "username": "bob", "state": "none"})),
        (status = 400, description = "`invalid`: not a username, or your own", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`account_suspended`: your account is suspended (`until` says until when) or banned; nothing changed", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such user", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`concurrent_update`: retry", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "`rate_limited`: too many follows and unfollows this hour or day (`follows`); nothing changed", body = Problem, content_type = "application/problem+json", headers(("Retry-After" = u64, description = "Seconds until a retry can pass"), ("RateLimit-Policy" = String, description = "This route's limits, each `\"name-window\";q=quota;w=seconds` (IETF RateLimit fields; on every answer of the route)"), ("RateLimit" = String, description = "What remains of each limit and when it resets, `\"name-window\";r=remaining;t=seconds`")))
    )
)]
#[tracing::instrument(skip_all)]
pub async fn unfollow<S: FollowsStore, D: Directory, C>(
    app: &App<S, D, C>,
    req: Request,
) -> ApiResult {
    let caller = Caller::from_request(&req)?;
    let username = username(&req)?;
    let status = app
        .unfollow(&caller, &username, &req.correlation_id())
        .await?;
    json(StatusCode::OK, &status)
}

/// `POST /v1/follow-requests/{id}/approve`.
#[utoipa::path(
    post, path = "/v1/follow-requests/{id}/approve", tag = "follows", security(("bearer" = ["user"])),
    summary = "Approve a request to follow you",
    description = "The requester now follows you and sees your posts. Emits `FollowStarted`.",
    params(("id" = String, Path, description = REQUEST_ID_PARAM, pattern = "^[0-7][0-9A-HJKMNP-TV-Za-hjkmnp-tv-z]{25}$")),
    responses(
        (status = 200, description = "The requester's state towards you: `following`", body = FollowStatus),
        (status = 403, description = "`account_suspended`: your account is suspended (`until` says until when) or banned; nothing changed", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No pending request from this user", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`concurrent_update`: retry", body = Problem, content_type = "application/problem+json")
    )
)]
#[tracing::instrument(skip_all)]
pub async fn approve<S: FollowsStore, D: Directory, C>(
    app: &App<S, D, C>,
    req: Request,
) -> ApiResult {
    let caller = Caller::from_request(&req)?;
    let requester = requester(&req)?;
    let status = app
        .approve(&caller, &requester, &req.correlation_id())
        .await?;
    json(StatusCode::OK, &status)
}

/// `POST /v1/follow-requests/{id}/decline`.
#[utoipa::path(
    post, path = "/v1/follow-requests/{id}/decline", tag = "follows", security(("bearer" = ["user"])),
    summary = "Decline a request to follow you",
    description = "Emits `FollowRequestCancelled` with reason `declined`. The requester may ask again.",
    params(("id" = String, Path, description = REQUEST_ID_PARAM, pattern = "^[0-7][0-9A-HJKMNP-TV-Za-hjkmnp-tv-z]{25}$")),
    responses(
        (status = 200, description = "The requester's state towards you: `none`", body = FollowStatus),
        (status = 403, description = "`account_suspended`: your account is suspended (`until` says until when) or banned; nothing changed", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No pending request from this user", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`concurrent_update`: retry", body = Problem, content_type = "application/problem+json")
    )
)]
#[tracing::instrument(skip_all)]
pub async fn decline<S: FollowsStore, D: Directory, C>(
    app: &App<S, D, C>,
    req: Request,
) -> ApiResult {
    let caller = Caller::from_request(&req)?;
    let requester = requester(&req)?;
    let status = app
        .decline(&caller, &requester, &req.correlation_id())
        .await?;
    json(StatusCode::OK, &status)
}

/// `PUT /v1/users/{username}/block`.
#[utoipa::path(
    put, path = "/v1/users/{username}/block", tag = "follows", security(("bearer" = ["user"])),
    summary = "Block a user",
    description = "Idempotent. Ends follows and requests both ways (emitting their `FollowEnded` / `FollowRequestCancelled` with reason `blocked`) and emits `UserBlocked`. Neither of you sees the other's profile lists, posts, comments or search results, and neither can follow the other until you unblock. A deleted account's token is refused (401 `unauthorized`).",
    params(("username" = String, Path, description = USERNAME_PARAM)),
    responses(
        (status = 200, description = "You block the user", body = BlockStatus, example = json!({"user_id": "01JD0000000000000000B0B002", "username": "bob", "blocked": true})),
        (status = 400, description = "`invalid`: not a username, or your own", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`account_suspended`: your account is suspended (`until` says until when) or banned; nothing changed", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such user", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`concurrent_update`: retry", body = Problem, content_type = "application/problem+json")
    )
)]
#[tracing::instrument(skip_all)]
pub async fn block<S: FollowsStore, D: Directory, C>(
    app: &App<S, D, C>,
    req: Request,
) -> ApiResult {
    let caller = Caller::from_request(&req)?;
    let username = username(&req)?;
    let status = app.block(&caller, &username, &req.correlation_id()).await?;
    json(StatusCode::OK, &status)
}

/// `DELETE /v1/users/{username}/block`.
#[utoipa::path(
    delete, path = "/v1/users/{username}/block", tag = "follows", security(("bearer" = ["user"])),
    summary = "Unblock a user",
    description = "Idempotent. Emits `UserUnblocked`. Follows ended by the block do not come back.",
    params(("username" = String, Path, description = USERNAME_PARAM)),
    responses(
        (status = 200, description = "You do not block the user", body = BlockStatus, example = json!({"user_id": "01JD0000000000000000B0B002", "username": "bob", "blocked": false})),
        (status = 400, description = "`invalid`: not a username, or your own", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`account_suspended`: your account is suspended (`until` says until when) or banned; nothing changed", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such user", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`concurrent_update`: retry", body = Problem, content_type = "application/problem+json")
    )
)]
#[tracing::instrument(skip_all)]
pub async fn unblock<S: FollowsStore, D: Directory, C>(
    app: &App<S, D, C>,
    req: Request,
) -> ApiResult {
    let caller = Caller::from_request(&req)?;
    let username = username(&req)?;
    let status = app
        .unblock(&caller, &username, &req.correlation_id())
        .await?;
    json(StatusCode::OK, &status)
}

/// `GET /v1/users/{username}/followers`.
#[utoipa::path(
    get, path = "/v1/users/{username}/followers", tag = "follows", security(("bearer" = ["user"])),
    summary = "Who follows a user, newest first",
    description = "Each entry carries your own follow state towards that user. A private account's lists show only to the account, its approved followers and staff. Users you block or who block you, and banned users, are left out, so a page can be shorter than `limit`; follow `next_cursor` until it is null. A banned user's own lists are a 404 to others.",
    params(
        ("username" = String, Path, description = "The user whose followers to list"),
        ("limit" = Option<u16>, Query, description = "Page size, 1 to 100 (default 20)", minimum = 1, maximum = 100),
        ("cursor" = Option<String>, Query, description = "The `next_cursor` of the previous page")
    ),
    responses(
        (status = 200, description = "A page of followers", body = FollowPage),
        (status = 400, description = "`invalid`: a bad username, limit or cursor", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "A private account you do not follow", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such user (or one who blocks you, or who is banned)", body = Problem, content_type = "application/problem+json")
    )
)]
#[tracing::instrument(skip_all)]
pub async fn followers<S: FollowsStore, D: Directory>(app: &App<S, D>, req: Request) -> ApiResult {
    let caller = Caller::from_request(&req)?;
    let username = username(&req)?;
    let page = app
        .followers(&caller, &username, &req.page_request()?)
        .await?;
    json(StatusCode::OK, &page)
}

/// `GET /v1/users/{username}/following`.
#[utoipa::path(
    get, path = "/v1/users/{username}/following", tag = "follows", security(("bearer" = ["user"])),
    summary = "Whom a user follows, newest first",
    description = "As the followers list: your own follow state on each entry, the same privacy and block rules.",
    params(
        ("username" = String, Path, description = "The user whose follows to list"),
        ("limit" = Option<u16>, Query, description = "Page size, 1 to 100 (default 20)", minimum = 1, maximum = 100),
        ("cursor" = Option<String>, Query, description = "The `next_cursor` of the previous page")
    ),
    responses(
        (status = 200, description = "A page of followed users", body = FollowPage),
        (status = 400, description = "`invalid`: a bad username, limit or cursor", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "A private account you do not follow", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such user (or one who blocks you, or who is banned)", body = Problem, content_type = "application/problem+json")
    )
)]
#[tracing::instrument(skip_all)]
pub async fn following<S: FollowsStore, D: Directory>(app: &App<S, D>, req: Request) -> ApiResult {
    let caller = Caller::from_request(&req)?;
    let username = username(&req)?;
    let page = app
        .following(&caller, &username, &req.page_request()?)
        .await?;
    json(StatusCode::OK, &page)
}

/// `GET /v1/follow-requests`: pending requests to follow the caller, newest first.
#[utoipa::path(
    get, path = "/v1/follow-requests", tag = "follows", security(("bearer" = ["user"])),
    summary = "Pending requests to follow you, newest first",
    params(
        ("limit" = Option<u16>, Query, description = "Page size, 1 to 100 (default 20)", minimum = 1, maximum = 100),
        ("cursor" = Option<String>, Query, description = "The `next_cursor` of the previous page")
    ),
    responses(
        (status = 200, description = "A page of requests", body = FollowRequestPage),
        (status = 400, description = "`invalid`: a bad limit or cursor", body = Problem, content_type = "application/problem+json")
    )
)]
#[tracing::instrument(skip_all)]
pub async fn follow_requests<S: FollowsStore, D: Directory>(
    app: &App<S, D>,
    req: Request,
) -> ApiResult {
    let caller = Caller::from_request(&req)?;
    let page = app.follow_requests(&caller, &req.page_request()?).await?;
    json(StatusCode::OK, &page)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use shutter_http::lambda_http::RequestExt;
    use shutter_http::test_support::api_request;

    use super::*;
    use crate::testing::{World, world};

    impl World {
        /// A request as API Gateway hands it over, from `as_user` (none: no token).
        fn req(
            &self,
            as_user: Option<&str>,
            params: &[(&str, &str)],
            query: &[(&str, &str)],
        ) -> Request {
            let claims = as_user.map(|name| (self.ids[name].as_str(), name, "user"));
            let query: std::collections::HashMap<String, String> = query
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect();
            api_request("PUT", "/", params, "", claims).with_query_string_parameters(query)
        }
    }

    fn body(resp: Response<Body>) -> serde_json::Value {
        serde_json::from_slice(resp.body().as_ref()).unwrap()
    }

    fn invalid(result: ApiResult, name: &str) -> bool {
        matches!(result, Err(ApiError::Invalid { ref field, .. }) if field == name)
    }

    #[tokio::test]
    async fn answers_are_json_with_the_new_state() {
        let w = world(&[("ann", false), ("bob", true)]);
        let resp = follow(&w.app, w.req(Some("ann"), &[("username", "bob")], &[]))
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(resp.headers()["content-type"], "application/json");
        assert_eq!(
            body(resp),
            serde_json::json!({"user_id": w.ids["bob"].as_str(), "username": "bob", "state": "requested"})
        );
        let ann = w.ids["ann"].to_string();
        let resp = approve(&w.app, w.req(Some("bob"), &[("id", &ann)], &[]))
            .await
            .unwrap();
        assert_eq!(
            body(resp),
            serde_json::json!({"user_id": ann, "username": "ann", "state": "following"})
        );
        let resp = block(&w.app, w.req(Some("bob"), &[("username", "ann")], &[]))
            .await
            .unwrap();
        assert_eq!(body(resp)["blocked"], true);
    }

    #[tokio::test]
    async fn bad_input_is_refused_and_changes_nothing() {
        let w = world(&[("ann", false)]);
        let as_ann = |params: &[(&str, &str)]| w.req(Some("ann"), params, &[]);
        assert!(invalid(
            follow(&w.app, as_ann(&[("username", "ann")])).await,
            "username"
        ));
        assert!(invalid(
            follow(&w.app, as_ann(&[("username", "no such!")])).await,
            "username"
        ));
        assert!(invalid(follow(&w.app, as_ann(&[])).await, "username"));
        assert!(matches!(
            follow(&w.app, as_ann(&[("username", "nobody")])).await,
            Err(ApiError::NotFound("user"))
        ));
        assert!(invalid(
            approve(&w.app, as_ann(&[("id", "not-an-id")])).await,
            "id"
        ));
        assert!(invalid(
            decline(&w.app, as_ann(&[("id", "not-an-id")])).await,
            "id"
        ));
        assert!(w.events().is_empty());
    }

    #[tokio::test]
    async fn every_endpoint_needs_a_verified_caller() {
        let w = world(&[("ann", false), ("bob", false)]);
        let anonymous = || w.req(None, &[("username", "bob")], &[]);
        let unauthorized = |r: ApiResult| matches!(r, Err(ApiError::Unauthorized(_)));
        assert!(unauthorized(follow(&w.app, anonymous()).await));
        assert!(unauthorized(unfollow(&w.app, anonymous()).await));
        assert!(unauthorized(block(&w.app, anonymous()).await));
        assert!(unauthorized(unblock(&w.app, anonymous()).await));
        assert!(unauthorized(approve(&w.app, anonymous()).await));
        assert!(unauthorized(decline(&w.app, anonymous()).await));
        assert!(unauthorized(followers(&w.app, anonymous()).await));
        assert!(unauthorized(following(&w.app, anonymous()).await));
        assert!(unauthorized(follow_requests(&w.app, anonymous()).await));
        assert!(w.events().is_empty());
    }

    #[tokio::test]
    async fn lists_refuse_bad_limits_and_cursors() {
        let w = world(&[("ann", false)]);
        let list = |query: &[(&str, &str)]| w.req(Some("ann"), &[("username", "ann")], query);
        for limit in ["0", "101", "ten", "-1"] {
            assert!(invalid(
                followers(&w.app, list(&[("limit", limit)])).await,
                "limit"
            ));
        }
        assert!(invalid(
            following(&w.app, list(&[("cursor", "forged.cursor")])).await,
            "cursor"
        ));
        assert!(invalid(
            follow_requests(&w.app, list(&[("cursor", "abc")])).await,
            "cursor"
        ));
        let resp = followers(&w.app, list(&[("limit", "100")])).await.unwrap();
        assert_eq!(
            body(resp),
            serde_json::json!({"items": [], "next_cursor": null})
        );
    }

    #[derive(utoipa::OpenApi)]
    #[openapi(paths(
        follow,
        unfollow,
        approve,
        decline,
        block,
        unblock,
        followers,
        following,
        follow_requests
    ))]
    struct Doc;

    #[test]
    fn every_endpoint_is_documented_with_its_answer() {
        let doc = serde_json::to_value(<Doc as utoipa::OpenApi>::openapi()).unwrap();
        let routes = [
            ("/v1/users/{username}/follow", "put"),
            ("/v1/users/{username}/follow", "delete"),
            ("/v1/follow-requests/{id}/approve", "post"),
            ("/v1/follow-requests/{id}/decline", "post"),
            ("/v1/users/{username}/block", "put"),
            ("/v1/users/{username}/block", "delete"),
            ("/v1/users/{username}/followers", "get"),
            ("/v1/users/{username}/following", "get"),
            ("/v1/follow-requests", "get"),
        ];
        for (path, method) in routes {
            let op = &doc["paths"][path][method];
            assert!(op["responses"]["200"].is_object(), "{method} {path}");
        }
        let schemas = &doc["components"]["schemas"];
        for name in [
            "FollowStatus",
            "BlockStatus",
            "FollowPage",
            "FollowRequestPage",
        ] {
            assert!(schemas[name].is_object(), "{name} is documented");
        }
    }
}
