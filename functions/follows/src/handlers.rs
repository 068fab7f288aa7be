//! The follow, request and block endpoints: parse, look the users up, apply the rule,
//! answer.

use serde::{Deserialize, Serialize};
#[allow(unused_imports)] // the OpenAPI attributes name it
use shutter_core::Problem;
use shutter_core::validate::Username;
use shutter_core::{ApiError, CursorSigner};
use shutter_directory::legacy::{Author, Directory};
use shutter_http::lambda_http::http::StatusCode;
use shutter_http::lambda_http::{Body, Request, Response};
use shutter_http::{ApiRequest, Caller, json};

use crate::model::{
    BlockStatus, EdgeAction, EndReason, FollowEntry, FollowPage, FollowRequestEntry,
    FollowRequestPage, FollowState, FollowStatus, Relation, edge_event, next_block, next_edge,
};
use crate::store::{Change, Commit, FollowsStore, List, relation};

type ApiResult = Result<Response<Body>, ApiError>;

/// How often a change is decided again when a racing request changed what it read.
const MAX_ATTEMPTS: usize = 5;

fn not_found() -> ApiError {
    ApiError::NotFound("user")
}

fn conflict() -> ApiError {
    ApiError::conflict(
        "concurrent_update",
        "username",
        "the follow kept changing meanwhile; retry",
    )
}

/// The user named by the path's `{username}`, never the caller (400) and never one who
/// blocks the caller (404, as if they did not exist).
async fn other_user<D: Directory>(
    dir: &D,
    caller: &Caller,
    req: &Request,
) -> Result<Author, ApiError> {
    let raw = req.path_param("username")?;
    let username = Username::try_from(raw).map_err(|why| ApiError::invalid("username", why))?;
    let user = dir
        .author_by_username(username.as_str())
        .await?
        .ok_or_else(not_found)?;
    if user.user_id == caller.user_id {
        return Err(ApiError::invalid(
            "username",
            "is you: follows and blocks are between two users",
        ));
    }
    Ok(user)
}

fn follow_status(user: &Author, state: FollowState) -> ApiResult {
    json(
        StatusCode::OK,
        &FollowStatus {
            user_id: user.user_id.clone(),
            username: user.username.clone(),
            state,
        },
    )
}

/// Moves the caller's edge to `user` by `action`, deciding again on what a racing request
/// left, until it commits or holds.
async fn change_own_edge<S: FollowsStore>(
    store: &S,
    caller: &Caller,
    user: &Author,
    action: EdgeAction,
    correlation_id: &str,
) -> ApiResult {
    for _ in 0..MAX_ATTEMPTS {
        let rel = relation(store, &caller.user_id, &user.user_id).await?;
        if matches!(action, EdgeAction::Follow { .. }) {
            refuse_blocked(&rel)?;
        }
        let Some(next) = next_edge(
            rel.outgoing.as_ref(),
            &caller.user_id,
            &user.user_id,
            action,
        ) else {
            return follow_status(user, rel.outgoing_state());
        };
        let reason = match action {
            EdgeAction::End(reason) => Some(reason),
            _ => None,
        };
        let event = edge_event(
            rel.outgoing_state(),
            &next,
            reason,
            Some(&caller.user_id),
            correlation_id,
        );
        let change = Change::Edge {
            previous: rel.outgoing.clone(),
            next: next.clone(),
        };
        match store.commit(&[change], &[event]).await? {
            Commit::Done => {
                tracing::info!(followee = %user.user_id, seq = next.seq, state = ?next.state, "follow changed");
                return follow_status(user, next.state);
            }
            // A block or a deletion won the race: read again and answer from it.
            Commit::Refused => {
                let rel = relation(store, &caller.user_id, &user.user_id).await?;
                refuse_blocked(&rel)?;
                return Err(not_found());
            }
            Commit::Stale => {}
        }
    }
    Err(conflict())
}

/// One who blocks the caller does not exist for them; one the caller blocks must be
/// unblocked first.
fn refuse_blocked(rel: &Relation) -> Result<(), ApiError> {
    if rel.blocked_by.as_ref().is_some_and(|b| b.blocked) {
        return Err(not_found());
    }
    if rel.blocking.as_ref().is_some_and(|b| b.blocked) {
        return Err(ApiError::conflict(
            "blocked",
            "username",
            "you block this user: unblock them first",
        ));
    }
    Ok(())
}

const USERNAME_PARAM: &str = "The other user's username";

/// `PUT /v1/users/{username}/follow`: follow a user, or ask to if their account is private.
#[utoipa::path(
    put, path = "/v1/users/{username}/follow", tag = "follows", security(("bearer" = ["user"])),
    summary = "Follow a user (a request, if their account is private)",
    description = "Idempotent: following someone you follow, or have asked to, changes nothing. Emits `FollowStarted` (public account) or `FollowRequested` (private account).",
    params(("username" = String, Path, description = USERNAME_PARAM)),
    responses(
        (status = 200, description = "Where you stand now: `following` or `requested`", body = FollowStatus, example = json!({"user_id": "01JD0000000000000000USR002", "username": "bob", "state": "following"})),
        (status = 400, description = "`invalid`: not a username, or your own", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such user (or one who blocks you)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`blocked`: you block this user; or `concurrent_update`: retry", body = Problem, content_type = "application/problem+json")
    )
)]
#[tracing::instrument(skip_all)]
pub async fn follow<D: Directory, S: FollowsStore>(dir: &D, store: &S, req: Request) -> ApiResult {
    let caller = Caller::from_request(&req)?;
    let user = other_user(dir, &caller, &req).await?;
    let action = EdgeAction::Follow {
        private: user.private,
    };
    change_own_edge(store, &caller, &user, action, &req.correlation_id()).await
}

/// `DELETE /v1/users/{username}/follow`: stop following, or withdraw a request.
#[utoipa::path(
    delete, path = "/v1/users/{username}/follow", tag = "follows", security(("bearer" = ["user"])),
    summary = "Unfollow a user, or withdraw your request",
    description = "Idempotent. Emits `FollowEnded` (or `FollowRequestCancelled` for a pending request) when something was there.",
    params(("username" = String, Path, description = USERNAME_PARAM)),
    responses(
        (status = 200, description = "You neither follow nor ask to follow the user", body = FollowStatus, example = json!({"user_id": "01JD0000000000000000USR002", "username": "bob", "state": "none"})),
        (status = 400, description = "`invalid`: not a username, or your own", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such user", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`concurrent_update`: retry", body = Problem, content_type = "application/problem+json")
    )
)]
#[tracing::instrument(skip_all)]
pub async fn unfollow<D: Directory, S: FollowsStore>(
    dir: &D,
    store: &S,
    req: Request,
) -> ApiResult {
    let caller = Caller::from_request(&req)?;
    let user = other_user(dir, &caller, &req).await?;
    let action = EdgeAction::End(EndReason::Withdrawn);
    change_own_edge(store, &caller, &user, action, &req.correlation_id()).await
}

/// `POST /v1/follow-requests/{id}/approve` and `/decline`: the caller answers a request.
async fn answer_request<D: Directory, S: FollowsStore>(
    dir: &D,
    store: &S,
    req: Request,
    action: EdgeAction,
) -> ApiResult {
    let caller = Caller::from_request(&req)?;
    let requester = shutter_core::parse_id("id", &req.path_param("id")?)?.to_string();
    let correlation_id = req.correlation_id();
    let missing = || ApiError::NotFound("follow request");
    for _ in 0..MAX_ATTEMPTS {
        let edge = store
            .edge(&requester, &caller.user_id)
            .await?
            .filter(|e| e.state == FollowState::Requested)
            .ok_or_else(missing)?;
        let next =
            next_edge(Some(&edge), &requester, &caller.user_id, action).ok_or_else(missing)?;
        let reason = match action {
            EdgeAction::End(reason) => Some(reason),
            _ => None,
        };
        let event = edge_event(
            edge.state,
            &next,
            reason,
            Some(&caller.user_id),
            &correlation_id,
        );
        let change = Change::Edge {
            previous: Some(edge),
            next: next.clone(),
        };
        match store.commit(&[change], &[event]).await? {
            Commit::Done => {
                let user = dir.author(&requester).await?;
                return json(
                    StatusCode::OK,
                    &FollowStatus {
                        user_id: requester,
                        username: user.map(|u| u.username).unwrap_or_default(),
                        state: next.state,
                    },
                );
            }
            Commit::Refused => return Err(missing()),
            Commit::Stale => {}
        }
    }
    Err(conflict())
}

const REQUEST_ID_PARAM: &str = "The request's id: the requester's user id (a ULID)";

/// `POST /v1/follow-requests/{id}/approve`.
#[utoipa::path(
    post, path = "/v1/follow-requests/{id}/approve", tag = "follows", security(("bearer" = ["user"])),
    summary = "Approve a request to follow you",
    description = "The requester now follows you and sees your posts. Emits `FollowStarted`.",
    params(("id" = String, Path, description = REQUEST_ID_PARAM, pattern = "^[0-7][0-9A-HJKMNP-TV-Za-hjkmnp-tv-z]{25}$")),
    responses(
        (status = 200, description = "The requester's state towards you: `following`", body = FollowStatus),
        (status = 404, description = "No pending request from this user", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`concurrent_update`: retry", body = Problem, content_type = "application/problem+json")
    )
)]
#[tracing::instrument(skip_all)]
pub async fn approve<D: Directory, S: FollowsStore>(dir: &D, store: &S, req: Request) -> ApiResult {
    answer_request(dir, store, req, EdgeAction::Approve).await
}

/// `POST /v1/follow-requests/{id}/decline`.
#[utoipa::path(
    post, path = "/v1/follow-requests/{id}/decline", tag = "follows", security(("bearer" = ["user"])),
    summary = "Decline a request to follow you",
    description = "Emits `FollowRequestCancelled` with reason `declined`. The requester may ask again.",
    params(("id" = String, Path, description = REQUEST_ID_PARAM, pattern = "^[0-7][0-9A-HJKMNP-TV-Za-hjkmnp-tv-z]{25}$")),
    responses(
        (status = 200, description = "The requester's state towards you: `none`", body = FollowStatus),
        (status = 404, description = "No pending request from this user", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`concurrent_update`: retry", body = Problem, content_type = "application/problem+json")
    )
)]
#[tracing::instrument(skip_all)]
pub async fn decline<D: Directory, S: FollowsStore>(dir: &D, store: &S, req: Request) -> ApiResult {
    answer_request(dir, store, req, EdgeAction::End(EndReason::Declined)).await
}

/// Blocks or unblocks `user` for the caller; a block also ends both users' follows and
/// requests between them, in the same transaction.
async fn set_block<D: Directory, S: FollowsStore>(
    dir: &D,
    store: &S,
    req: Request,
    blocked: bool,
) -> ApiResult {
    let caller = Caller::from_request(&req)?;
    let user = other_user(dir, &caller, &req).await?;
    let correlation_id = req.correlation_id();
    let answer = || {
        json(
            StatusCode::OK,
            &BlockStatus {
                user_id: user.user_id.clone(),
                username: user.username.clone(),
                blocked,
            },
        )
    };
    let actor = Some(caller.user_id.as_str());
    for _ in 0..MAX_ATTEMPTS {
        let rel = relation(store, &caller.user_id, &user.user_id).await?;
        let Some(next) = next_block(
            rel.blocking.as_ref(),
            &caller.user_id,
            &user.user_id,
            blocked,
        ) else {
            return answer();
        };
        let mut events = vec![next.event(actor, &correlation_id)];
        let mut changes = vec![Change::Block {
            previous: rel.blocking.clone(),
            next,
        }];
        if blocked {
            for edge in [&rel.outgoing, &rel.incoming].into_iter().flatten() {
                let end = EdgeAction::End(EndReason::Blocked);
                if let Some(ended) =
                    next_edge(Some(edge), &edge.follower_id, &edge.followee_id, end)
                {
                    events.push(edge_event(
                        edge.state,
                        &ended,
                        Some(EndReason::Blocked),
                        actor,
                        &correlation_id,
                    ));
                    changes.push(Change::Edge {
                        previous: Some(edge.clone()),
                        next: ended,
                    });
                }
            }
        }
        match store.commit(&changes, &events).await? {
            Commit::Done => {
                tracing::info!(other = %user.user_id, blocked, "block changed");
                return answer();
            }
            Commit::Refused => return Err(not_found()),
            Commit::Stale => {}
        }
    }
    Err(conflict())
}

/// `PUT /v1/users/{username}/block`.
#[utoipa::path(
    put, path = "/v1/users/{username}/block", tag = "follows", security(("bearer" = ["user"])),
    summary = "Block a user",
    description = "Idempotent. Ends follows and requests both ways (emitting their `FollowEnded` / `FollowRequestCancelled` with reason `blocked`) and emits `UserBlocked`. Neither of you sees the other's profile lists, posts, comments or search results, and neither can follow the other until you unblock.",
    params(("username" = String, Path, description = USERNAME_PARAM)),
    responses(
        (status = 200, description = "You block the user", body = BlockStatus, example = json!({"user_id": "01JD0000000000000000USR002", "username": "bob", "blocked": true})),
        (status = 400, description = "`invalid`: not a username, or your own", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such user", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`concurrent_update`: retry", body = Problem, content_type = "application/problem+json")
    )
)]
#[tracing::instrument(skip_all)]
pub async fn block<D: Directory, S: FollowsStore>(dir: &D, store: &S, req: Request) -> ApiResult {
    set_block(dir, store, req, true).await
}

/// `DELETE /v1/users/{username}/block`.
#[utoipa::path(
    delete, path = "/v1/users/{username}/block", tag = "follows", security(("bearer" = ["user"])),
    summary = "Unblock a user",
    description = "Idempotent. Emits `UserUnblocked`. Follows ended by the block do not come back.",
    params(("username" = String, Path, description = USERNAME_PARAM)),
    responses(
        (status = 200, description = "You do not block the user", body = BlockStatus, example = json!({"user_id": "01JD0000000000000000USR002", "username": "bob", "blocked": false})),
        (status = 400, description = "`invalid`: not a username, or your own", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such user", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`concurrent_update`: retry", body = Problem, content_type = "application/problem+json")
    )
)]
#[tracing::instrument(skip_all)]
pub async fn unblock<D: Directory, S: FollowsStore>(dir: &D, store: &S, req: Request) -> ApiResult {
    set_block(dir, store, req, false).await
}

/// Where a list page resumes: the position of the last entry shown.
#[derive(Debug, Serialize, Deserialize)]
struct Position {
    after: String,
}

/// The `after` position of `page`'s cursor, which must have been issued for `scope`.
fn resume_after(
    signer: &CursorSigner,
    scope: &str,
    cursor: Option<&str>,
) -> Result<Option<String>, ApiError> {
    let Some(cursor) = cursor else {
        return Ok(None);
    };
    let position: Position = signer.verify(scope, cursor)?;
    shutter_core::parse_id("cursor", &position.after)
        .map_err(|_| ApiError::invalid("cursor", "is not a cursor this server issued"))?;
    Ok(Some(position.after))
}

/// The entries shown on a page and the cursor of the next, from `limit + 1` read.
fn paginate<T>(
    signer: &CursorSigner,
    scope: &str,
    mut entries: Vec<crate::model::ListEntry>,
    limit: usize,
    show: impl FnOnce(Vec<crate::model::ListEntry>) -> Vec<T>,
) -> (Vec<T>, Option<String>) {
    let next_cursor = if entries.len() > limit {
        entries.truncate(limit);
        entries.last().map(|e| {
            signer.sign(
                scope,
                &Position {
                    after: e.position.clone(),
                },
            )
        })
    } else {
        None
    };
    (show(entries), next_cursor)
}

/// `GET /v1/users/{username}/followers` and `/following`.
async fn follow_list<D: Directory, S: FollowsStore>(
    dir: &D,
    store: &S,
    signer: &CursorSigner,
    req: Request,
    list: List,
) -> ApiResult {
    let caller = Caller::from_request(&req)?;
    let raw = req.path_param("username")?;
    let username = Username::try_from(raw).map_err(|why| ApiError::invalid("username", why))?;
    let owner = dir
        .author_by_username(username.as_str())
        .await?
        .ok_or_else(not_found)?;
    let page = req.page_request()?;
    let scope = format!("{list:?}:{}", owner.user_id);
    let after = resume_after(signer, &scope, page.cursor.as_deref())?;
    let own = owner.user_id == caller.user_id;
    if !own && !caller.is_staff() {
        let rel = relation(store, &caller.user_id, &owner.user_id).await?;
        if rel.blocked_either_way() {
            return Err(not_found());
        }
        // A private account's lists show to its approved followers only.
        if owner.private && rel.outgoing_state() != FollowState::Following {
            return Err(ApiError::Forbidden);
        }
    }
    let limit = usize::from(page.limit);
    let entries = store
        .list(list, &owner.user_id, after.as_deref(), limit + 1)
        .await?;
    let (entries, next_cursor) = paginate(signer, &scope, entries, limit, |e| e);
    let ids: Vec<String> = entries.iter().map(|e| e.user_id.clone()).collect();
    let (users, relations) = futures::try_join!(
        futures::future::try_join_all(ids.iter().map(|id| dir.author(id))),
        store.relations(&caller.user_id, &ids)
    )?;
    let items = entries
        .into_iter()
        .zip(users)
        .filter_map(|(entry, user)| {
            // A deleted account's entries go soon; meanwhile they are not shown. Nor is
            // anyone who blocks the viewer or whom the viewer blocks.
            let user = user?;
            let rel = relations.get(&entry.user_id).cloned().unwrap_or_default();
            if rel.blocked_either_way() {
                return None;
            }
            Some(FollowEntry {
                viewer_state: rel.outgoing_state(),
                user_id: entry.user_id,
                username: user.username,
                display_name: user.display_name,
                since: entry.at,
            })
        })
        .collect();
    json(StatusCode::OK, &FollowPage { items, next_cursor })
}

/// `GET /v1/users/{username}/followers`.
#[utoipa::path(
    get, path = "/v1/users/{username}/followers", tag = "follows", security(("bearer" = ["user"])),
    summary = "Who follows a user, newest first",
    description = "Each entry carries your own follow state towards that user. A private account's lists show only to the account, its approved followers and staff. Users you block or who block you are left out, so a page can be shorter than `limit`; follow `next_cursor` until it is null.",
    params(
        ("username" = String, Path, description = "The user whose followers to list"),
        ("limit" = Option<u16>, Query, description = "Page size, 1 to 100 (default 20)", minimum = 1, maximum = 100),
        ("cursor" = Option<String>, Query, description = "The `next_cursor` of the previous page")
    ),
    responses(
        (status = 200, description = "A page of followers", body = FollowPage),
        (status = 400, description = "`invalid`: a bad username, limit or cursor", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "A private account you do not follow", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such user (or one who blocks you)", body = Problem, content_type = "application/problem+json")
    )
)]
#[tracing::instrument(skip_all)]
pub async fn followers<D: Directory, S: FollowsStore>(
    dir: &D,
    store: &S,
    signer: &CursorSigner,
    req: Request,
) -> ApiResult {
    follow_list(dir, store, signer, req, List::Followers).await
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
        (status = 404, description = "No such user (or one who blocks you)", body = Problem, content_type = "application/problem+json")
    )
)]
#[tracing::instrument(skip_all)]
pub async fn following<D: Directory, S: FollowsStore>(
    dir: &D,
    store: &S,
    signer: &CursorSigner,
    req: Request,
) -> ApiResult {
    follow_list(dir, store, signer, req, List::Following).await
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
pub async fn follow_requests<D: Directory, S: FollowsStore>(
    dir: &D,
    store: &S,
    signer: &CursorSigner,
    req: Request,
) -> ApiResult {
    let caller = Caller::from_request(&req)?;
    let page = req.page_request()?;
    let scope = format!("requests:{}", caller.user_id);
    let after = resume_after(signer, &scope, page.cursor.as_deref())?;
    let limit = usize::from(page.limit);
    let entries = store
        .list(List::Requests, &caller.user_id, after.as_deref(), limit + 1)
        .await?;
    let (entries, next_cursor) = paginate(signer, &scope, entries, limit, |e| e);
    let users =
        futures::future::try_join_all(entries.iter().map(|e| dir.author(&e.user_id))).await?;
    let items = entries
        .into_iter()
        .zip(users)
        .filter_map(|(entry, user)| {
            let user = user?;
            Some(FollowRequestEntry {
                id: entry.user_id.clone(),
                user_id: entry.user_id,
                username: user.username,
                display_name: user.display_name,
                requested_at: entry.at,
            })
        })
        .collect();
    json(StatusCode::OK, &FollowRequestPage { items, next_cursor })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::store::memory::MemoryFollowsStore;
    use shutter_directory::legacy::MemoryDirectory;
    use shutter_http::test_support::api_request;

    struct World {
        dir: MemoryDirectory,
        store: MemoryFollowsStore,
        signer: CursorSigner,
        ids: std::collections::HashMap<&'static str, String>,
    }

    fn world(users: &[(&'static str, bool)]) -> World {
        let dir = MemoryDirectory::default();
        let mut ids = std::collections::HashMap::new();
        for (name, private) in users {
            let id = shutter_core::new_id();
            dir.add_author(Author {
                user_id: id.clone(),
                username: (*name).to_owned(),
                display_name: name.to_uppercase(),
                private: *private,
                avatar_key: None,
            });
            ids.insert(*name, id);
        }
        World {
            dir,
            store: MemoryFollowsStore::default(),
            signer: CursorSigner::new(b"test key".to_vec()),
            ids,
        }
    }

    fn body(resp: Response<Body>) -> serde_json::Value {
        serde_json::from_slice(resp.body().as_ref()).unwrap()
    }

    impl World {
        fn req(
            &self,
            as_user: &str,
            method: &str,
            path: &str,
            params: &[(&str, &str)],
            query: &str,
        ) -> Request {
            let req = api_request(
                method,
                path,
                params,
                "",
                Some((&self.ids[as_user], as_user, "user")),
            );
            use shutter_http::lambda_http::RequestExt;
            let q: std::collections::HashMap<String, String> = query
                .split('&')
                .filter_map(|kv| kv.split_once('='))
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect();
            req.with_query_string_parameters(q)
        }
        async fn follow(&self, who: &str, whom: &str) -> Result<String, ApiError> {
            // List entries are ULIDs, ordered by their millisecond: keep follows apart.
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
            let req = self.req(who, "PUT", "/follow", &[("username", whom)], "");
            follow(&self.dir, &self.store, req)
                .await
                .map(|r| body(r)["state"].as_str().unwrap().to_owned())
        }
        async fn unfollow(&self, who: &str, whom: &str) -> Result<String, ApiError> {
            let req = self.req(who, "DELETE", "/follow", &[("username", whom)], "");
            unfollow(&self.dir, &self.store, req)
                .await
                .map(|r| body(r)["state"].as_str().unwrap().to_owned())
        }
        async fn block(&self, who: &str, whom: &str, on: bool) -> Result<bool, ApiError> {
            let req = self.req(who, "PUT", "/block", &[("username", whom)], "");
            let resp = if on {
                block(&self.dir, &self.store, req).await
            } else {
                unblock(&self.dir, &self.store, req).await
            };
            resp.map(|r| body(r)["blocked"].as_bool().unwrap())
        }
        async fn answer(
            &self,
            who: &str,
            requester: &str,
            approve_it: bool,
        ) -> Result<String, ApiError> {
            let id = self.ids[requester].clone();
            let req = self.req(who, "POST", "/x", &[("id", &id)], "");
            let resp = if approve_it {
                approve(&self.dir, &self.store, req).await
            } else {
                decline(&self.dir, &self.store, req).await
            };
            resp.map(|r| body(r)["state"].as_str().unwrap().to_owned())
        }
        async fn followers(
            &self,
            who: &str,
            whose: &str,
            query: &str,
        ) -> Result<serde_json::Value, ApiError> {
            let req = self.req(who, "GET", "/followers", &[("username", whose)], query);
            followers(&self.dir, &self.store, &self.signer, req)
                .await
                .map(body)
        }
        fn events(&self) -> Vec<String> {
            self.store
                .events
                .lock()
                .unwrap()
                .iter()
                .map(|e| e.event_type.clone())
                .collect()
        }
    }

    #[tokio::test]
    async fn following_twice_follows_once_and_unfollowing_twice_ends_once() {
        let w = world(&[("ann", false), ("bob", false)]);
        assert_eq!(w.follow("ann", "bob").await.unwrap(), "following");
        assert_eq!(w.follow("ann", "bob").await.unwrap(), "following");
        assert_eq!(w.unfollow("ann", "bob").await.unwrap(), "none");
        assert_eq!(w.unfollow("ann", "bob").await.unwrap(), "none");
        assert_eq!(w.events(), ["FollowStarted", "FollowEnded"]);
    }

    #[tokio::test]
    async fn a_private_account_is_asked_and_its_answer_decides() {
        let w = world(&[("ann", false), ("bob", true), ("cat", false)]);
        assert_eq!(w.follow("ann", "bob").await.unwrap(), "requested");
        assert_eq!(w.follow("cat", "bob").await.unwrap(), "requested");
        // Only the asked account answers its requests.
        assert!(matches!(
            w.answer("cat", "ann", true).await,
            Err(ApiError::NotFound(_))
        ));
        let req = w.req("bob", "GET", "/follow-requests", &[], "limit=1");
        let page = body(
            follow_requests(&w.dir, &w.store, &w.signer, req)
                .await
                .unwrap(),
        );
        assert_eq!(page["items"][0]["username"], "cat");
        assert!(page["next_cursor"].is_string());
        assert_eq!(w.answer("bob", "ann", true).await.unwrap(), "following");
        assert_eq!(w.answer("bob", "cat", false).await.unwrap(), "none");
        assert!(matches!(
            w.answer("bob", "cat", true).await,
            Err(ApiError::NotFound(_))
        ));
        assert_eq!(
            w.events(),
            [
                "FollowRequested",
                "FollowRequested",
                "FollowStarted",
                "FollowRequestCancelled"
            ]
        );
        // Approved followers see a private account's lists; others are refused.
        assert_eq!(
            w.followers("ann", "bob", "").await.unwrap()["items"][0]["username"],
            "ann"
        );
        assert!(matches!(
            w.followers("cat", "bob", "").await,
            Err(ApiError::Forbidden)
        ));
    }

    #[tokio::test]
    async fn a_block_ends_follows_both_ways_and_cannot_be_bypassed() {
        let w = world(&[("ann", false), ("bob", false)]);
        w.follow("ann", "bob").await.unwrap();
        w.follow("bob", "ann").await.unwrap();
        assert!(w.block("ann", "bob", true).await.unwrap());
        assert!(w.block("ann", "bob", true).await.unwrap());
        assert_eq!(
            w.events()[2..],
            ["UserBlocked", "FollowEnded", "FollowEnded"]
        );
        // The blocked one cannot see or follow the blocker; the blocker must unblock first.
        assert!(matches!(
            w.follow("bob", "ann").await,
            Err(ApiError::NotFound(_))
        ));
        assert!(matches!(
            w.follow("ann", "bob").await,
            Err(ApiError::Conflict {
                code: "blocked",
                ..
            })
        ));
        assert!(matches!(
            w.followers("bob", "ann", "").await,
            Err(ApiError::NotFound(_))
        ));
        assert!(!w.block("ann", "bob", false).await.unwrap());
        // Follows ended by the block do not come back.
        assert_eq!(
            w.followers("ann", "ann", "").await.unwrap()["items"],
            serde_json::json!([])
        );
        assert_eq!(w.follow("bob", "ann").await.unwrap(), "following");
    }

    #[tokio::test]
    async fn lists_page_newest_first_with_the_viewers_state_and_refuse_forged_cursors() {
        let w = world(&[
            ("ann", false),
            ("bob", false),
            ("cat", false),
            ("dan", false),
        ]);
        for who in ["bob", "cat", "dan"] {
            w.follow(who, "ann").await.unwrap();
        }
        w.follow("bob", "cat").await.unwrap();
        let first = w.followers("bob", "ann", "limit=2").await.unwrap();
        let names: Vec<_> = first["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["username"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["dan", "cat"]);
        assert_eq!(first["items"][1]["viewer_state"], "following");
        assert_eq!(first["items"][0]["viewer_state"], "none");
        let cursor = first["next_cursor"].as_str().unwrap();
        let rest = w
            .followers("bob", "ann", &format!("cursor={cursor}"))
            .await
            .unwrap();
        assert_eq!(rest["items"][0]["username"], "bob");
        assert!(rest["next_cursor"].is_null());
        // A cursor of another list, or a forged one, is refused.
        assert!(
            w.followers("bob", "cat", &format!("cursor={cursor}"))
                .await
                .is_err()
        );
        assert!(matches!(
            w.followers("bob", "ann", "cursor=abc").await,
            Err(ApiError::Invalid { .. })
        ));
    }

    #[tokio::test]
    async fn bad_input_is_refused_and_changes_nothing() {
        let w = world(&[("ann", false)]);
        assert!(matches!(
            w.follow("ann", "ann").await,
            Err(ApiError::Invalid { .. })
        ));
        assert!(matches!(
            w.follow("ann", "no such!").await,
            Err(ApiError::Invalid { .. })
        ));
        assert!(matches!(
            w.follow("ann", "nobody").await,
            Err(ApiError::NotFound(_))
        ));
        let req = w.req("ann", "POST", "/x", &[("id", "not-an-id")], "");
        assert!(matches!(
            approve(&w.dir, &w.store, req).await,
            Err(ApiError::Invalid { .. })
        ));
        assert!(w.events().is_empty());
    }

    #[tokio::test]
    async fn a_deleted_account_cannot_be_followed() {
        let w = world(&[("ann", false), ("bob", false)]);
        w.store.gone.lock().unwrap().push(w.ids["bob"].clone());
        assert!(matches!(
            w.follow("ann", "bob").await,
            Err(ApiError::NotFound(_))
        ));
        assert!(w.events().is_empty());
    }
}
