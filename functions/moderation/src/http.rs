//! The moderation endpoints: parse the request into typed values, call the use case,
//! answer.

use shutter_core::{ApiError, Page, Problem};
use shutter_directory::Directory;
use shutter_http::lambda_http::http::StatusCode;
use shutter_http::lambda_http::{Body, Request, Response};
use shutter_http::{ApiRequest, Caller, json};

use crate::App;
use crate::model::{ModlogEntry, ModlogFilter, QueueEntry, QueueItem, Report, ReportStatus, Role};
use crate::service::{
    AccountRoles, NewReport, ResolveRequest, RoleChangeReason, UnsuspendRequest, UserStanding,
};
use crate::store::ModerationStore;

type ApiResult = Result<Response<Body>, ApiError>;

/// A page of the report queue.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ReportQueuePage {
    pub items: Vec<QueueItem>,
    /// Where the next page starts; absent on the last page
    pub next_cursor: Option<String>,
}

/// A page of the modlog.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ModlogPage {
    pub items: Vec<ModlogEntry>,
    /// Where the next page starts; absent on the last page
    pub next_cursor: Option<String>,
}

/// The optional `{reason}` body of a role change (an empty body is no reason).
fn role_reason(req: &Request) -> Result<Option<String>, ApiError> {
    if req.body().as_ref().is_empty() {
        return Ok(None);
    }
    Ok(req.json::<RoleChangeReason>()?.reason)
}

async fn change_role<S: ModerationStore, D: Directory>(
    app: &App<S, D>,
    req: Request,
    grant: bool,
) -> ApiResult {
    let caller = Caller::from_request(&req)?;
    let username = req.path_param("username")?;
    let role = Role::parse(&req.path_param("role")?)?;
    let reason = role_reason(&req)?;
    let roles = app
        .change_role(&caller, &username, role, grant, reason)
        .await?;
    json(StatusCode::OK, &roles)
}

/// `PUT /v1/admin/users/{username}/roles/{role}`.
#[utoipa::path(
    put, path = "/v1/admin/users/{username}/roles/{role}", tag = "moderation", security(("bearer" = ["admin"])),
    summary = "Grant a staff role (admins only)",
    description = "Idempotent: granting a role the account holds changes nothing and logs nothing. The role reaches the account's access token as a scope at its next refresh. Logged in the modlog (`grant_role`).",
    params(
        ("username" = String, Path, description = "The account's username"),
        ("role" = String, Path, description = "`moderator` or `admin`")
    ),
    request_body(content = Option<RoleChangeReason>, description = "Optional: why, for the modlog"),
    responses(
        (status = 200, description = "The account's roles now", body = AccountRoles),
        (status = 400, description = "`invalid_input`: an unknown role (`role`) or a malformed username", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin (refused by the gateway)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such user", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`concurrent_update`: the roles kept changing; retry", body = Problem, content_type = "application/problem+json")
    )
)]
#[tracing::instrument(skip_all)]
pub async fn grant_role<S: ModerationStore, D: Directory>(
    app: &App<S, D>,
    req: Request,
) -> ApiResult {
    change_role(app, req, true).await
}

/// `DELETE /v1/admin/users/{username}/roles/{role}`.
#[utoipa::path(
    delete, path = "/v1/admin/users/{username}/roles/{role}", tag = "moderation", security(("bearer" = ["admin"])),
    summary = "Revoke a staff role (admins only)",
    description = "Idempotent: revoking a role the account does not hold changes nothing and logs nothing. An admin cannot revoke their own admin role. Takes effect at the account's next refresh; an account named in the `AdminUsernames` parameter gets the admin scope back from it. Logged in the modlog (`revoke_role`).",
    params(
        ("username" = String, Path, description = "The account's username"),
        ("role" = String, Path, description = "`moderator` or `admin`")
    ),
    request_body(content = Option<RoleChangeReason>, description = "Optional: why, for the modlog"),
    responses(
        (status = 200, description = "The account's roles now", body = AccountRoles),
        (status = 400, description = "`invalid_input`: an unknown role (`role`) or a malformed username", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin (refused by the gateway)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such user", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`own_admin_role`: an admin cannot revoke their own admin role; `concurrent_update`: retry", body = Problem, content_type = "application/problem+json")
    )
)]
#[tracing::instrument(skip_all)]
pub async fn revoke_role<S: ModerationStore, D: Directory>(
    app: &App<S, D>,
    req: Request,
) -> ApiResult {
    change_role(app, req, false).await
}

/// `POST /v1/reports`.
#[utoipa::path(
    post, path = "/v1/reports", tag = "moderation", security(("bearer" = ["user"])),
    summary = "Report a post, comment or user",
    description = "One report per reporter and target: reporting it again answers the same report (200) and changes nothing. You can report only what you can see (otherwise 404, as if it did not exist), and not yourself or your own content. A deleted account's still-valid token gets 401.",
    request_body = NewReport,
    responses(
        (status = 201, description = "Reported", body = Report),
        (status = 200, description = "You had reported it already: that report", body = Report),
        (status = 400, description = "`invalid_input` naming the field (`target.id`, `note`, `target` for yourself), or `malformed_json`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`account_suspended`: the caller's account is suspended or banned", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such target, or one you may not see", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "`rate_limited`: too many reports today (`reports`); nothing was filed", body = Problem, content_type = "application/problem+json", headers(("Retry-After" = u64, description = "Seconds until a retry can pass"), ("RateLimit-Policy" = String, description = "This route's limits, each `\"name-window\";q=quota;w=seconds` (IETF RateLimit fields; on every answer of the route)"), ("RateLimit" = String, description = "What remains of each limit and when it resets, `\"name-window\";r=remaining;t=seconds`")))
    )
)]
#[tracing::instrument(skip_all)]
pub async fn report<S: ModerationStore, D: Directory>(app: &App<S, D>, req: Request) -> ApiResult {
    let caller = Caller::from_request(&req)?;
    let new: NewReport = req.json()?;
    let (report, created) = app.file_report(&caller, new).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    json(status, &report)
}

/// `GET /v1/admin/reports?status=&limit=&cursor=`.
#[utoipa::path(
    get, path = "/v1/admin/reports", tag = "moderation", security(("bearer" = ["moderator", "admin"])),
    summary = "The report queue (moderators)",
    description = "One entry per reported target with its report count, reasons and a preview of the target (a post's caption and thumbnail link, a comment's text, a user's profile; absent when the target is gone). Open entries oldest first report first; resolved ones newest resolution first, with their `resolution`.",
    params(
        ("status" = Option<String>, Query, description = "`open` (default) or `resolved`"),
        ("limit" = Option<u16>, Query, description = "Page size, 1 to 100 (default 20)", minimum = 1, maximum = 100),
        ("cursor" = Option<String>, Query, description = "The `next_cursor` of the previous page")
    ),
    responses(
        (status = 200, description = "A page of the queue", body = ReportQueuePage),
        (status = 400, description = "`invalid_input` naming `status`, `limit` or `cursor`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not a moderator or admin (refused by the gateway)", body = Problem, content_type = "application/problem+json")
    )
)]
#[tracing::instrument(skip_all)]
pub async fn reports<S: ModerationStore, D: Directory>(app: &App<S, D>, req: Request) -> ApiResult {
    let caller = Caller::from_request(&req)?;
    let status = ReportStatus::parse(req.query("status").as_deref())?;
    let page = req.page_request()?;
    let Page { items, next_cursor } = app.reports(&caller, status, &page).await?;
    json(StatusCode::OK, &ReportQueuePage { items, next_cursor })
}

/// `GET /v1/admin/modlog?moderator=|target_type=&target_id=&limit=&cursor=`.
#[utoipa::path(
    get, path = "/v1/admin/modlog", tag = "moderation", security(("bearer" = ["moderator", "admin"])),
    summary = "The modlog (moderators)",
    description = "Every staff action, newest first; append-only. Filter by moderator, or by target (type and id), not both.",
    params(
        ("moderator" = Option<String>, Query, description = "Only this moderator's actions (a user id)"),
        ("target_type" = Option<String>, Query, description = "`post`, `comment` or `user`, with `target_id`"),
        ("target_id" = Option<String>, Query, description = "Only actions on this target (a ULID), with `target_type`"),
        ("limit" = Option<u16>, Query, description = "Page size, 1 to 100 (default 20)", minimum = 1, maximum = 100),
        ("cursor" = Option<String>, Query, description = "The `next_cursor` of the previous page")
    ),
    responses(
        (status = 200, description = "A page of the modlog", body = ModlogPage),
        (status = 400, description = "`invalid_input` naming the filter, `limit` or `cursor`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not a moderator or admin (refused by the gateway)", body = Problem, content_type = "application/problem+json")
    )
)]
#[tracing::instrument(skip_all)]
pub async fn modlog<S: ModerationStore, D: Directory>(app: &App<S, D>, req: Request) -> ApiResult {
    let caller = Caller::from_request(&req)?;
    let filter = ModlogFilter::parse(
        req.query("moderator").as_deref(),
        req.query("target_type").as_deref(),
        req.query("target_id").as_deref(),
    )?;
    let page = req.page_request()?;
    let Page { items, next_cursor } = app.modlog(&caller, &filter, &page).await?;
    json(StatusCode::OK, &ModlogPage { items, next_cursor })
}

/// `POST /v1/admin/reports/{id}/resolve`.
#[utoipa::path(
    post, path = "/v1/admin/reports/{id}/resolve", tag = "moderation", security(("bearer" = ["moderator", "admin"])),
    summary = "Resolve a report (moderators)",
    description = "Closes the target's open entry with an action, logged in the modlog. `dismiss` does nothing else. `remove_content` hides the post or comment from everyone but its author, who sees the note (`ContentRemoved`). `suspend` (with `duration_hours`) and `ban` act on the target's author (or the user): login and refresh answer 403 `account_suspended` at once and every session ends; the account's still-valid access tokens are refused on every write once the services have the `UserSuspended` event (seconds); a ban also hides the account's posts, comments and profile from others. Only admins may suspend staff; nobody suspends themselves. A later report of the target opens a new entry.",
    params(("id" = String, Path, description = "The queue entry's `id` (`<type>-<target id>`)")),
    request_body = ResolveRequest,
    responses(
        (status = 200, description = "The resolved entry", body = QueueEntry),
        (status = 400, description = "`invalid_input` naming `note`, `action` or `duration_hours`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not a moderator or admin (refused by the gateway), or a moderator suspending staff", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such entry (never reported)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`already_resolved`, `target_gone` (deleted meanwhile: dismiss it) or `concurrent_update`", body = Problem, content_type = "application/problem+json")
    )
)]
#[tracing::instrument(skip_all)]
pub async fn resolve<S: ModerationStore, D: Directory>(app: &App<S, D>, req: Request) -> ApiResult {
    let caller = Caller::from_request(&req)?;
    let id = req.path_param("id")?;
    let body: ResolveRequest = req.json()?;
    let resolved = app.resolve(&caller, &id, body).await?;
    json(StatusCode::OK, &resolved)
}

/// `POST /v1/admin/users/{username}/unsuspend`.
#[utoipa::path(
    post, path = "/v1/admin/users/{username}/unsuspend", tag = "moderation", security(("bearer" = ["moderator", "admin"])),
    summary = "Lift a suspension or ban (moderators)",
    description = "The account may log in again at once (its old sessions stay ended) and write again once the services have the `UserReinstated` event; a banned account's content shows again. Logged in the modlog (`unsuspend`).",
    params(("username" = String, Path, description = "The account's username")),
    request_body = UnsuspendRequest,
    responses(
        (status = 200, description = "The account's standing after", body = UserStanding),
        (status = 400, description = "`invalid_input` naming `note` or `username`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not a moderator or admin (refused by the gateway)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such user", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`not_suspended`", body = Problem, content_type = "application/problem+json")
    )
)]
#[tracing::instrument(skip_all)]
pub async fn unsuspend<S: ModerationStore, D: Directory>(
    app: &App<S, D>,
    req: Request,
) -> ApiResult {
    let caller = Caller::from_request(&req)?;
    let username = req.path_param("username")?;
    let body: UnsuspendRequest = req.json()?;
    let standing = app.unsuspend(&caller, &username, body).await?;
    json(StatusCode::OK, &standing)
}

/// `GET /v1/admin/users/{username}`.
#[utoipa::path(
    get, path = "/v1/admin/users/{username}", tag = "moderation", security(("bearer" = ["moderator", "admin"])),
    summary = "Look a user up (moderators)",
    description = "The account's roles, the suspension or ban that holds (if any), and the newest 20 staff actions on it.",
    params(("username" = String, Path, description = "The account's username")),
    responses(
        (status = 200, description = "The account's standing", body = UserStanding),
        (status = 400, description = "`invalid_input` naming `username`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not a moderator or admin (refused by the gateway)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such user", body = Problem, content_type = "application/problem+json")
    )
)]
#[tracing::instrument(skip_all)]
pub async fn lookup<S: ModerationStore, D: Directory>(app: &App<S, D>, req: Request) -> ApiResult {
    let caller = Caller::from_request(&req)?;
    let username = req.path_param("username")?;
    let standing = app.lookup(&caller, &username).await?;
    json(StatusCode::OK, &standing)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use shutter_core::UserId;
    use shutter_directory::MemoryDirectory;
    use shutter_http::lambda_http::RequestExt;
    use shutter_http::test_support::api_request;

    use super::*;
    use crate::store::memory::MemoryModerationStore;

    fn app() -> App<MemoryModerationStore, MemoryDirectory> {
        App {
            store: MemoryModerationStore::default(),
            directory: MemoryDirectory::default(),
            cursors: Some(shutter_store::CursorKey::ready(
                shutter_core::CursorSigner::new(b"k".to_vec()),
            )),
            media: None,
        }
    }

    fn post(body: &str) -> Request {
        let me = UserId::generate();
        api_request("POST", "/v1/reports", &[], body, Some((&me, "me", "user")))
    }

    #[tokio::test]
    async fn bad_report_bodies_are_400s_naming_the_field_and_store_nothing() {
        let app = app();
        let id = UserId::generate();
        for (body, field) in [
            (
                format!(r#"{{"target":{{"type":"story","id":"{id}"}},"reason":"spam"}}"#),
                "target.type",
            ),
            (
                format!(r#"{{"target":{{"type":"user","id":"{id}"}},"reason":"boring"}}"#),
                "reason",
            ),
            (
                r#"{"target":{"type":"user","id":"nope"},"reason":"spam"}"#.to_owned(),
                "target.id",
            ),
            (
                format!(r#"{{"target":{{"type":"user","id":"{id}"}},"reason":"spam","extra":1}}"#),
                "extra",
            ),
            (
                format!(
                    r#"{{"target":{{"type":"user","id":"{id}"}},"reason":"spam","note":"{}"}}"#,
                    "x".repeat(1001)
                ),
                "note",
            ),
        ] {
            let err = report(&app, post(&body)).await.unwrap_err();
            assert_eq!(err.status(), 400, "{body}");
            let problem = err.problem();
            assert!(
                problem.field.as_deref().is_some_and(|f| f.contains(field))
                    || problem.detail.as_deref().is_some_and(|d| d.contains(field)),
                "{body}: {problem:?}"
            );
        }
        assert_eq!(report(&app, post("{")).await.unwrap_err().status(), 400);
        assert_eq!(app.store.report_count(), 0);
    }

    #[tokio::test]
    async fn role_routes_parse_the_role_and_refuse_non_admins() {
        let app = app();
        let admin = UserId::generate();
        let req = |role: &str, scope: &str| {
            api_request(
                "PUT",
                "/v1/admin/users/alice/roles/x",
                &[("username", "alice"), ("role", role)],
                "",
                Some((&admin, "root", scope)),
            )
        };
        let err = grant_role(&app, req("superuser", "user admin"))
            .await
            .unwrap_err();
        assert_eq!(err.problem().field.as_deref(), Some("role"));
        let err = grant_role(&app, req("moderator", "user moderator"))
            .await
            .unwrap_err();
        assert_eq!(err.status(), 403);
        let err = revoke_role(&app, req("moderator", "user admin"))
            .await
            .unwrap_err();
        assert_eq!(err.status(), 404);
    }

    #[tokio::test]
    async fn list_queries_are_checked_and_forged_cursors_refused() {
        let app = app();
        let me = UserId::generate();
        let get = |path: &str, query: &[(&str, &str)]| {
            api_request("GET", path, &[], "", Some((&me, "m", "user moderator")))
                .with_query_string_parameters(
                    query
                        .iter()
                        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                        .collect::<std::collections::HashMap<_, _>>(),
                )
        };
        let err = reports(&app, get("/v1/admin/reports", &[("status", "closed")]))
            .await
            .unwrap_err();
        assert_eq!(err.problem().field.as_deref(), Some("status"));
        let err = reports(&app, get("/v1/admin/reports", &[("cursor", "forged")]))
            .await
            .unwrap_err();
        assert_eq!(err.problem().field.as_deref(), Some("cursor"));
        let err = modlog(&app, get("/v1/admin/modlog", &[("moderator", "bob")]))
            .await
            .unwrap_err();
        assert_eq!(err.problem().field.as_deref(), Some("moderator"));
        let ok = modlog(&app, get("/v1/admin/modlog", &[])).await.unwrap();
        assert_eq!(ok.status(), 200);
    }
}
