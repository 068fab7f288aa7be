//! The export routes: the caller's own account only (the id comes from the verified
//! token), so nobody can start, see or download another's export.

use shutter_core::ApiError;
#[allow(unused_imports)] // the OpenAPI attributes name it
use shutter_core::Problem;
use shutter_events::work::WorkQueue;
use shutter_http::lambda_http::http::StatusCode;
use shutter_http::lambda_http::{Body, Request, Response};
use shutter_http::{ApiRequest, Caller, json};
use shutter_identity::export::ExportRecords;

use crate::App;
use crate::archive::Archive;
#[allow(unused_imports)] // the OpenAPI attributes name it
use crate::service::ExportView;

pub type ApiResult = Result<Response<Body>, ApiError>;

/// `POST /v1/users/me/export` -> 202 with the export, pending.
#[utoipa::path(
    post, path = "/v1/users/me/export", tag = "users", security(("bearer" = ["user"])),
    summary = "Export your account's data",
    description = "Starts an export of everything the account owns: the account (username, email, roles, settings, dates), the profile, posts (with links to their media), comments, likes of posts and of comments, whom it follows, its followers and its blocks. The work runs in the background: follow it with `GET /v1/users/me/export`. The archive is one NDJSON file (`application/x-ndjson`): one JSON object a line, each with its `type` (`export`, `account`, `profile`, `post`, `comment`, `like`, `comment_like`, `following`, `follower`, `block`). One export at a time: while one is pending or running another is refused (409 `export_in_progress`), and after a ready one the next may start once its cool-down (`ExportCooldownSeconds`) has passed (409 `export_cooldown` until then). A failed export may be asked for again at once.",
    responses(
        (status = 202, description = "Started: the export, `pending`", body = ExportView),
        (status = 409, description = "`export_in_progress` (another export is pending or running) or `export_cooldown`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "The account no longer exists", body = Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip_all)]
pub async fn start<R: ExportRecords, Q: WorkQueue, A: Archive>(
    app: &App<R, Q, A>,
    req: Request,
) -> ApiResult {
    let caller = Caller::from_request(&req)?;
    let view = app.start(&caller.user_id, &req.correlation_id()).await?;
    json(StatusCode::ACCEPTED, &view)
}

/// `GET /v1/users/me/export` -> 200 with the latest export.
#[utoipa::path(
    get, path = "/v1/users/me/export", tag = "users", security(("bearer" = ["user"])),
    summary = "Your latest export",
    description = "The state of your latest export (`pending`, `running`, `ready`, `failed`). When `ready`, `download_url` downloads the archive without a token until `download_expires_at` (`ExportLinkSeconds`, 24 hours by default, never past the archive's own expiry): ask again for a fresh link. The archive is deleted `ExportArchiveDays` after it was made.",
    responses(
        (status = 200, description = "The latest export", body = ExportView),
        (status = 404, description = "No export was asked for, or the account no longer exists", body = Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip_all)]
pub async fn status<R: ExportRecords, Q: WorkQueue, A: Archive>(
    app: &App<R, Q, A>,
    req: Request,
) -> ApiResult {
    let caller = Caller::from_request(&req)?;
    let view = app.status(&caller.user_id).await?;
    json(StatusCode::OK, &view)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use shutter_core::UserId;
    use shutter_events::work::MemoryWorkQueue;
    use shutter_http::test_support::api_request;
    use shutter_identity::export::{ExportPolicy, MemoryExports};

    use super::*;
    use crate::archive::MemoryArchive;

    #[tokio::test]
    async fn the_routes_need_a_verified_caller() {
        let app = App {
            records: MemoryExports::default(),
            queue: MemoryWorkQueue::default(),
            archive: MemoryArchive::default(),
            policy: ExportPolicy::default(),
        };
        let req = api_request("POST", "/v1/users/me/export", &[], "", None);
        assert_eq!(start(&app, req).await.unwrap_err().status(), 401);
        let req = api_request("GET", "/v1/users/me/export", &[], "", None);
        assert_eq!(status(&app, req).await.unwrap_err().status(), 401);

        let me = UserId::generate();
        app.records.add_account(&me);
        let claims = Some((me.as_str(), "me", "user"));
        let req = api_request("POST", "/v1/users/me/export", &[], "", claims);
        assert_eq!(start(&app, req).await.unwrap().status(), 202);
        let req = api_request("GET", "/v1/users/me/export", &[], "", claims);
        assert_eq!(status(&app, req).await.unwrap().status(), 200);
    }
}
