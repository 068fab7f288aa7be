//! The HTTP adapters of the six endpoints: request -> typed command -> use case ->
//! response. No rule and no storage here; the `#[utoipa::path]` attributes make the
//! OpenAPI document.

use base64::Engine;
use serde::Deserialize;
use sha2::{Digest, Sha256};
#[allow(unused_imports)] // the OpenAPI attributes name it
use shutter_core::Problem;
use shutter_core::{ApiError, CommentId, PostId};
use shutter_directory::Directory;
use shutter_http::lambda_http::http::{HeaderValue, StatusCode};
use shutter_http::lambda_http::{Body, Request, Response};
use shutter_http::{ApiRequest, Caller, json, no_content};
use shutter_store::CursorKey;
use utoipa::ToSchema;

use crate::App;
use crate::model::CommentText;
#[allow(unused_imports)] // the OpenAPI attributes name them
use crate::model::{CommentPage, CommentView};
use crate::queue::WriteQueue;
use crate::service::NewComment as Command;
use crate::store::{CommentsReader, CommentsStore, Idempotency, IdempotencyKeys};

type ApiResult = Result<Response<Body>, ApiError>;

/// The post in the path (`{id}`).
fn post_param(req: &Request) -> Result<PostId, ApiError> {
    PostId::parse("id", &req.path_param("id")?)
}

/// The comment in the path (`{id}`).
fn comment_param(req: &Request) -> Result<CommentId, ApiError> {
    CommentId::parse("id", &req.path_param("id")?)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct NewComment {
    text: CommentText,
    /// The id of a comment on the same post to answer. A reply to a reply answers its
    /// top-level comment.
    #[serde(default)]
    #[schema(value_type = Option<String>, pattern = "^[0-7][0-9A-HJKMNP-TV-Za-hjkmnp-tv-z]{25}$")]
    reply_to: Option<String>,
}

/// The `Idempotency-Key` header, if sent, with a hash of the request (the post and the
/// body): the same key with another post or body is refused.
fn idempotency(req: &Request, post_id: &PostId) -> Result<Option<Idempotency>, ApiError> {
    let Some(raw) = req.headers().get("idempotency-key") else {
        return Ok(None);
    };
    let key = raw.to_str().unwrap_or("");
    let valid = (1..=64).contains(&key.len())
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !valid {
        return Err(ApiError::invalid(
            "Idempotency-Key",
            "must be 1 to 64 letters, digits, '-' or '_'",
        ));
    }
    let mut hash = Sha256::new();
    hash.update(post_id.as_str().as_bytes());
    hash.update(b"\n");
    hash.update(req.body().as_ref());
    Ok(Some(Idempotency {
        key: key.to_owned(),
        request_hash: base64::engine::general_purpose::STANDARD.encode(hash.finalize()),
    }))
}

/// `POST /v1/posts/{id}/comments` {text, reply_to?} -> 202 with the comment as it will be
/// stored; `comments-writer` stores it moments later.
#[utoipa::path(
    post, path = "/v1/posts/{id}/comments", tag = "comments", security(("bearer" = ["user"])),
    summary = "Comment on a post, or reply to a comment",
    description = "Answers 202 with the comment as it will be stored (its id is final); it appears in the list moments later and emits `CommentAdded`. A reply to a reply is attached to the top-level comment. `@username`s of existing users become `mentions`, `#tags` become `hashtags` (lower-cased); at most 20 mentions and 30 hashtags (400 naming `text`). Send an `Idempotency-Key` header to retry safely: the same comment comes back (header `Idempotent-Replayed: true`) and one is stored. A deleted account's token is refused (401 `unauthorized`).",
    params(
        ("id" = String, Path, description = "The post's id (a ULID)", pattern = "^[0-7][0-9A-HJKMNP-TV-Za-hjkmnp-tv-z]{25}$"),
        ("Idempotency-Key" = Option<String>, Header, description = "1–64 of [A-Za-z0-9_-]; a retry with it returns the same comment")
    ),
    request_body(content = NewComment, example = json!({"text": "Lovely light! #sunset @bob", "reply_to": null})),
    responses(
        (status = 202, description = "Accepted; stored moments later", body = CommentView),
        (status = 403, description = "`account_suspended`: your account is suspended (`until` says until when) or banned; nothing changed", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such post, or not visible to you", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The Idempotency-Key was used for a different request", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "`rate_limited`: too many comments this hour (`comments`); nothing was accepted", body = Problem, content_type = "application/problem+json", headers(("Retry-After" = u64, description = "Seconds until a retry can pass"), ("RateLimit-Policy" = String, description = "This route's limits, each `\"name-window\";q=quota;w=seconds` (IETF RateLimit fields; on every answer of the route)"), ("RateLimit" = String, description = "What remains of each limit and when it resets, `\"name-window\";r=remaining;t=seconds`")))
    )
)]
pub async fn create_comment<S, D, Q, C>(app: &App<S, D, Q, C>, req: Request) -> ApiResult
where
    S: CommentsReader + IdempotencyKeys,
    D: Directory,
    Q: WriteQueue,
{
    let caller = Caller::from_request(&req)?;
    let post_id = post_param(&req)?;
    let body: NewComment = req.json()?;
    let idempotency = idempotency(&req, &post_id)?;
    let reply_to = body
        .reply_to
        .as_deref()
        .map(|raw| CommentId::parse("reply_to", raw))
        .transpose()?;
    let command = Command {
        post_id,
        text: body.text,
        reply_to,
    };
    let accepted = app
        .create_once(&caller, command, idempotency, &req.correlation_id())
        .await?;
    let mut response = json(StatusCode::ACCEPTED, &accepted.comment)?;
    if accepted.replayed {
        response
            .headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    Ok(response)
}

/// `GET /v1/posts/{id}/comments?limit=&cursor=`: oldest thread first, replies under their
/// parent.
#[utoipa::path(
    get, path = "/v1/posts/{id}/comments", tag = "comments", security(("bearer" = ["user"])),
    summary = "A post's comments",
    description = "Oldest first; each top-level comment is followed by its replies (oldest first). Pass `next_cursor` back as `cursor` for the next page. Comments by someone who blocks you or whom you block, or who is banned, are left out, and so are comments a moderator removed, but for their author, who sees them with `removed` (the moderator's note and when); moderators and admins see every comment. So a page can be shorter than `limit` (even empty) while `next_cursor` says more may follow.",
    params(
        ("id" = String, Path, description = "The post's id (a ULID)", pattern = "^[0-7][0-9A-HJKMNP-TV-Za-hjkmnp-tv-z]{25}$"),
        ("limit" = Option<u16>, Query, description = "1-100, default 20", minimum = 1, maximum = 100),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page")
    ),
    responses(
        (status = 200, description = "A page of comments", body = CommentPage),
        (status = 404, description = "No such post, or not visible to you", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn list_comments<S, D, Q>(app: &App<S, D, Q, CursorKey>, req: Request) -> ApiResult
where
    S: CommentsReader,
    D: Directory,
{
    let caller = Caller::from_request(&req)?;
    let post_id = post_param(&req)?;
    let page = req.page_request()?;
    let comments = app.list(&caller, &post_id, &page).await?;
    json(StatusCode::OK, &comments)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct CommentPatch {
    text: CommentText,
}

/// `PATCH /v1/comments/{id}` {text}: the author edits their comment.
#[utoipa::path(
    patch, path = "/v1/comments/{id}", tag = "comments", security(("bearer" = ["user"])),
    summary = "Edit your comment",
    description = "Only the author may edit. Hashtags and mentions are taken again from the new text. Emits `CommentEdited`.",
    params(("id" = String, Path, description = "The comment's id (a ULID)", pattern = "^[0-7][0-9A-HJKMNP-TV-Za-hjkmnp-tv-z]{25}$")),
    request_body(content = CommentPatch, example = json!({"text": "Lovely light! #goldenhour"})),
    responses(
        (status = 200, description = "The comment after the edit", body = CommentView),
        (status = 403, description = "`forbidden`: not your comment; `account_suspended`: your account is suspended or banned", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such comment", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`comment_removed`: a moderator removed it; it can be deleted, not edited", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn edit_comment<S, D, Q, C>(app: &App<S, D, Q, C>, req: Request) -> ApiResult
where
    S: CommentsStore,
    D: Directory,
{
    let caller = Caller::from_request(&req)?;
    let id = comment_param(&req)?;
    let patch: CommentPatch = req.json()?;
    let edited = app
        .edit(&caller, &id, patch.text, &req.correlation_id())
        .await?;
    json(StatusCode::OK, &edited)
}

/// `DELETE /v1/comments/{id}`: by its author, the post's author or staff.
#[utoipa::path(
    delete, path = "/v1/comments/{id}", tag = "comments", security(("bearer" = ["user"])),
    summary = "Delete a comment (and its replies)",
    description = "The comment's author, the post's author, moderators and admins may delete it. Deleting a top-level comment deletes its replies; each deleted comment emits `CommentDeleted`.",
    params(("id" = String, Path, description = "The comment's id (a ULID)", pattern = "^[0-7][0-9A-HJKMNP-TV-Za-hjkmnp-tv-z]{25}$")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = "`forbidden`: neither your comment nor your post; `account_suspended`: your account is suspended or banned", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such comment", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn delete_comment<S, D, Q, C>(app: &App<S, D, Q, C>, req: Request) -> ApiResult
where
    S: CommentsStore,
    D: Directory,
{
    let caller = Caller::from_request(&req)?;
    let id = comment_param(&req)?;
    app.delete(&caller, &id, &req.correlation_id()).await?;
    no_content()
}

/// `POST /v1/comments/{id}/like`: idempotent.
#[utoipa::path(
    post, path = "/v1/comments/{id}/like", tag = "comments", security(("bearer" = ["user"])),
    summary = "Like a comment",
    description = "Idempotent: liking twice counts once. Emits `CommentLikeAdded` when it changes something. A deleted account's token is refused (401 `unauthorized`).",
    params(("id" = String, Path, description = "The comment's id (a ULID)", pattern = "^[0-7][0-9A-HJKMNP-TV-Za-hjkmnp-tv-z]{25}$")),
    responses(
        (status = 204, description = "You like it"),
        (status = 403, description = "`account_suspended`: your account is suspended (`until` says until when) or banned; nothing changed", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such comment, or its post is not visible to you, or it is hidden from you (removed by a moderator, or by a banned user or one who blocks you or whom you block)", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "`rate_limited`: too many likes and unlikes this hour (`likes`); nothing changed", body = Problem, content_type = "application/problem+json", headers(("Retry-After" = u64, description = "Seconds until a retry can pass"), ("RateLimit-Policy" = String, description = "This route's limits, each `\"name-window\";q=quota;w=seconds` (IETF RateLimit fields; on every answer of the route)"), ("RateLimit" = String, description = "What remains of each limit and when it resets, `\"name-window\";r=remaining;t=seconds`")))
    )
)]
pub async fn like_comment<S, D, Q, C>(app: &App<S, D, Q, C>, req: Request) -> ApiResult
where
    S: CommentsStore,
    D: Directory,
{
    let caller = Caller::from_request(&req)?;
    let id = comment_param(&req)?;
    app.like(&caller, &id, &req.correlation_id()).await?;
    no_content()
}

/// `DELETE /v1/comments/{id}/like`: idempotent.
#[utoipa::path(
    delete, path = "/v1/comments/{id}/like", tag = "comments", security(("bearer" = ["user"])),
    summary = "Take back your like of a comment",
    description = "Idempotent. Emits `CommentLikeRemoved` when it changes something.",
    params(("id" = String, Path, description = "The comment's id (a ULID)", pattern = "^[0-7][0-9A-HJKMNP-TV-Za-hjkmnp-tv-z]{25}$")),
    responses(
        (status = 204, description = "You do not like it"),
        (status = 403, description = "`account_suspended`: your account is suspended (`until` says until when) or banned; nothing changed", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such comment", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "`rate_limited`: too many likes and unlikes this hour (`likes`); nothing changed", body = Problem, content_type = "application/problem+json", headers(("Retry-After" = u64, description = "Seconds until a retry can pass"), ("RateLimit-Policy" = String, description = "This route's limits, each `\"name-window\";q=quota;w=seconds` (IETF RateLimit fields; on every answer of the route)"), ("RateLimit" = String, description = "What remains of each limit and when it resets, `\"name-window\";r=remaining;t=seconds`")))
    )
)]
pub async fn unlike_comment<S, D, Q, C>(app: &App<S, D, Q, C>, req: Request) -> ApiResult
where
    S: CommentsStore,
    D: Directory,
{
    let caller = Caller::from_request(&req)?;
    let id = comment_param(&req)?;
    app.unlike(&caller, &id, &req.correlation_id()).await?;
    no_content()
}

#[cfg(test)]
mod tests {
    //! The endpoints as clients use them: parsing and bad input, and every answer's status
    //! and body, over the memory fakes.

    #![allow(clippy::unwrap_used)]

    use shutter_events::{Event, EventType};
    use shutter_http::lambda_http::RequestExt;
    use shutter_http::test_support::api_request;

    use super::*;
    use crate::testing::{Who, World, world};

    fn as_user(
        w: &Who,
        method: &str,
        params: &[(&str, &str)],
        query: &[(&str, &str)],
        body: &str,
    ) -> Request {
        let req = api_request(method, "/", params, body, Some((&w.id, w.name, w.scope)));
        if query.is_empty() {
            return req;
        }
        let q: std::collections::HashMap<String, String> = query
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        req.with_query_string_parameters(q)
    }

    fn body(resp: Response<Body>) -> serde_json::Value {
        serde_json::from_slice(resp.body().as_ref()).unwrap()
    }

    fn field(err: &ApiError) -> (u16, Option<String>) {
        (err.status(), err.problem().field)
    }

    /// The requests of the tests, each through its endpoint's adapter.
    trait Client {
        async fn post_comment(
            &self,
            by: &Who,
            text: &str,
            reply_to: Option<&str>,
        ) -> serde_json::Value;
        async fn create(&self, by: &Who, post: &str, payload: &str) -> ApiResult;
        async fn list(&self, by: &Who, query: &[(&str, &str)]) -> ApiResult;
        async fn list_all(&self, by: &Who) -> Vec<serde_json::Value>;
        async fn delete(&self, by: &Who, id: &str) -> ApiResult;
        async fn edit(&self, by: &Who, id: &str, payload: &str) -> ApiResult;
        async fn like(&self, by: &Who, id: &str) -> ApiResult;
        async fn unlike(&self, by: &Who, id: &str) -> ApiResult;
    }

    impl Client for World {
        /// POSTs a comment and runs the writer on what was queued; the 202 body.
        async fn post_comment(
            &self,
            by: &Who,
            text: &str,
            reply_to: Option<&str>,
        ) -> serde_json::Value {
            // Ids order by millisecond (within one, at random), so comments are a tick apart.
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
            let payload = serde_json::json!({"text": text, "reply_to": reply_to}).to_string();
            let resp = self.create(by, &self.post, &payload).await.unwrap();
            assert_eq!(resp.status(), 202);
            self.write_queued().await;
            body(resp)
        }

        async fn create(&self, by: &Who, post: &str, payload: &str) -> ApiResult {
            let req = as_user(by, "POST", &[("id", post)], &[], payload);
            create_comment(&self.app, req).await
        }

        async fn list(&self, by: &Who, query: &[(&str, &str)]) -> ApiResult {
            let req = as_user(by, "GET", &[("id", &self.post)], query, "");
            list_comments(&self.app, req).await
        }

        async fn list_all(&self, by: &Who) -> Vec<serde_json::Value> {
            body(self.list(by, &[("limit", "100")]).await.unwrap())["items"]
                .as_array()
                .unwrap()
                .clone()
        }

        async fn delete(&self, by: &Who, id: &str) -> ApiResult {
            let req = as_user(by, "DELETE", &[("id", id)], &[], "");
            delete_comment(&self.app, req).await
        }

        async fn edit(&self, by: &Who, id: &str, payload: &str) -> ApiResult {
            let req = as_user(by, "PATCH", &[("id", id)], &[], payload);
            edit_comment(&self.app, req).await
        }

        async fn like(&self, by: &Who, id: &str) -> ApiResult {
            let req = as_user(by, "POST", &[("id", id)], &[], "");
            like_comment(&self.app, req).await
        }

        async fn unlike(&self, by: &Who, id: &str) -> ApiResult {
            let req = as_user(by, "DELETE", &[("id", id)], &[], "");
            unlike_comment(&self.app, req).await
        }
    }

    #[tokio::test]
    async fn bad_input_is_a_400_naming_the_field_and_queues_nothing() {
        let w = world();
        let long = format!(r#"{{"text":"{}"}}"#, "x".repeat(2_201));
        let other_post = shutter_core::new_id();
        let cases: Vec<(&str, &str, &str)> = vec![
            (&w.post, r#"{"text":""}"#, "text"),
            (&w.post, &long, "text"),
            (&w.post, r#"{"text":"tab\there"}"#, "text"),
            (&w.post, r#"{"text":"nul\u0000"}"#, "text"),
            (&w.post, r#"{"text":"   "}"#, "text"),
            (&w.post, r#"{}"#, "text"),
            (&w.post, r#"{"text":7}"#, "text"),
            (&w.post, r#"{"text":"hi","reply_to":"nope"}"#, "reply_to"),
            (&w.post, r#"{"text":"hi","colour":"red"}"#, "body"),
            ("not-a-ulid", r#"{"text":"hi"}"#, "id"),
        ];
        for (post, payload, expected) in cases {
            let err = w.create(&w.bob, post, payload).await.unwrap_err();
            assert_eq!(err.status(), 400, "{payload}");
            if expected != "body" {
                assert_eq!(err.problem().field.as_deref(), Some(expected), "{payload}");
            }
        }
        // A reply to a comment that is not on this post.
        let unknown = format!(r#"{{"text":"hi","reply_to":"{}"}}"#, shutter_core::new_id());
        let err = w.create(&w.bob, &w.post, &unknown).await.unwrap_err();
        assert_eq!(field(&err), (400, Some("reply_to".to_owned())));
        // An unknown post is 404.
        let err = w
            .create(&w.bob, &other_post, r#"{"text":"hi"}"#)
            .await
            .unwrap_err();
        assert_eq!(err.status(), 404);
        assert!(w.app.queue.take().is_empty());
        // Exactly 2,200 characters and newlines are fine.
        let ok = format!(r#"{{"text":"{}\nok"}}"#, "é".repeat(2_197));
        assert_eq!(w.create(&w.bob, &w.post, &ok).await.unwrap().status(), 202);
    }

    #[tokio::test]
    async fn a_comment_is_accepted_as_it_will_be_stored_and_then_listed() {
        let w = world();
        let accepted = w
            .post_comment(
                &w.bob,
                "Lovely #Sunset and #sunset, @ANN @nobody_here @carol.",
                None,
            )
            .await;
        assert_eq!(accepted["post_id"], w.post.as_str());
        assert_eq!(accepted["author"]["id"], w.bob.id.as_str());
        assert_eq!(accepted["author"]["username"], "bob");
        assert_eq!(accepted["hashtags"], serde_json::json!(["sunset"]));
        let mentioned: Vec<&str> = accepted["mentions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["username"].as_str().unwrap())
            .collect();
        assert_eq!(mentioned, vec!["ann", "carol"], "a missing user stays text");
        assert_eq!(
            (
                accepted["like_count"].as_u64(),
                accepted["liked_by_me"].as_bool()
            ),
            (Some(0), Some(false))
        );
        assert!(accepted["reply_to"].is_null());
        let listed = w.list_all(&w.carol).await;
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0], accepted);
        assert_eq!(w.event_types(), vec![EventType::CommentAdded]);
        let added = &w.app.store.events()[0];
        assert_eq!(added.aggregate_id, w.post.as_str());
        let data = added.event.to_data().unwrap();
        assert_eq!(data["comment_id"], accepted["id"]);
        assert_eq!(data["author_id"], w.bob.id.as_str());
        assert_eq!(data["post_id"], w.post.as_str());
        assert_eq!(data["mentions"], accepted["mentions"]);
    }

    #[tokio::test]
    async fn replies_to_replies_attach_to_the_top_level_comment_and_list_under_it() {
        let w = world();
        let first = w.post_comment(&w.bob, "first", None).await;
        let second = w.post_comment(&w.carol, "second", None).await;
        let first_id = first["id"].as_str().unwrap();
        let reply = w.post_comment(&w.ann, "reply", Some(first_id)).await;
        assert_eq!(reply["reply_to"], first_id);
        let nested = w
            .post_comment(&w.carol, "reply to the reply", reply["id"].as_str())
            .await;
        assert_eq!(nested["reply_to"], first_id, "flattened to the top level");
        let texts: Vec<String> = w
            .list_all(&w.bob)
            .await
            .iter()
            .map(|c| c["text"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(
            texts,
            vec!["first", "reply", "reply to the reply", "second"]
        );
        assert_eq!(second["reply_to"], serde_json::Value::Null);
    }

    #[tokio::test]
    async fn private_posts_take_comments_from_those_who_see_them_only() {
        let w = world();
        w.ann_goes_private().await;
        let err = w
            .create(&w.bob, &w.post, r#"{"text":"hi"}"#)
            .await
            .unwrap_err();
        assert_eq!(err.status(), 404);
        assert_eq!(w.list(&w.bob, &[]).await.unwrap_err().status(), 404);
        w.post_comment(&w.ann, "my own post", None).await;
        w.post_comment(&w.staff, "moderator here", None).await;
        assert_eq!(w.list_all(&w.ann).await.len(), 2);
    }

    #[tokio::test]
    async fn the_author_the_posts_author_and_staff_may_delete_strangers_may_not() {
        let w = world();
        for deleter in [&w.bob, &w.ann, &w.staff] {
            let c = w.post_comment(&w.bob, "doomed", None).await;
            let id = c["id"].as_str().unwrap();
            let err = w.delete(&w.carol, id).await.unwrap_err();
            assert_eq!(err.status(), 403, "a stranger may not delete");
            assert_eq!(w.delete(deleter, id).await.unwrap().status(), 204);
            assert_eq!(w.delete(deleter, id).await.unwrap_err().status(), 404);
        }
        assert!(w.list_all(&w.bob).await.is_empty());
        let deleted = w.events(|e| match e {
            Event::CommentDeleted(d) => Some(d.clone()),
            _ => None,
        });
        assert_eq!(deleted.len(), 3);
        assert_eq!(deleted[1].deleted_by, w.ann.id);
        assert_eq!(deleted[1].author_id, w.bob.id);
        let bad = w.delete(&w.bob, "nope").await.unwrap_err();
        assert_eq!(field(&bad), (400, Some("id".to_owned())));
    }

    #[tokio::test]
    async fn deleting_a_parent_deletes_its_replies_each_with_an_event() {
        let w = world();
        let parent = w.post_comment(&w.bob, "parent", None).await;
        let pid = parent["id"].as_str().unwrap();
        w.post_comment(&w.carol, "r1", Some(pid)).await;
        w.post_comment(&w.ann, "r2", Some(pid)).await;
        w.post_comment(&w.carol, "other thread", None).await;
        assert_eq!(w.delete(&w.bob, pid).await.unwrap().status(), 204);
        let left: Vec<String> = w
            .list_all(&w.bob)
            .await
            .iter()
            .map(|c| c["text"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(left, vec!["other thread"]);
        let types = w.event_types();
        assert_eq!(
            types
                .iter()
                .filter(|t| **t == EventType::CommentDeleted)
                .count(),
            3
        );
        // Deleting a reply leaves its parent.
        let other = w.list_all(&w.bob).await[0]["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let reply = w.post_comment(&w.bob, "reply", Some(&other)).await;
        w.delete(&w.bob, reply["id"].as_str().unwrap())
            .await
            .unwrap();
        assert_eq!(w.list_all(&w.bob).await.len(), 1);
    }

    #[tokio::test]
    async fn only_the_author_edits_and_the_edit_is_an_event() {
        let w = world();
        let c = w.post_comment(&w.bob, "first draft", None).await;
        let id = c["id"].as_str().unwrap();
        for stranger in [&w.carol, &w.ann, &w.staff] {
            let err = w
                .edit(stranger, id, r#"{"text":"pwned"}"#)
                .await
                .unwrap_err();
            assert_eq!(err.status(), 403);
        }
        let err = w.edit(&w.bob, id, r#"{"text":""}"#).await.unwrap_err();
        assert_eq!(field(&err), (400, Some("text".to_owned())));
        let edited = body(
            w.edit(&w.bob, id, r#"{"text":"final #Cut for @carol"}"#)
                .await
                .unwrap(),
        );
        assert_eq!(edited["text"], "final #Cut for @carol");
        assert_eq!(edited["hashtags"], serde_json::json!(["cut"]));
        assert_eq!(edited["mentions"][0]["username"], "carol");
        assert!(edited["edited_at"].is_string());
        assert_eq!(w.list_all(&w.ann).await[0]["text"], "final #Cut for @carol");
        assert_eq!(
            w.event_types(),
            vec![EventType::CommentAdded, EventType::CommentEdited]
        );
        let missing = shutter_core::new_id();
        assert_eq!(
            w.edit(&w.bob, &missing, r#"{"text":"x"}"#)
                .await
                .unwrap_err()
                .status(),
            404
        );
        let bad = w.edit(&w.bob, "nope", r#"{"text":"x"}"#).await.unwrap_err();
        assert_eq!(field(&bad), (400, Some("id".to_owned())));
    }

    #[tokio::test]
    async fn liking_a_comment_twice_counts_once() {
        let w = world();
        let c = w.post_comment(&w.bob, "like me", None).await;
        let id = c["id"].as_str().unwrap();
        assert_eq!(w.like(&w.carol, id).await.unwrap().status(), 204);
        assert_eq!(w.like(&w.carol, id).await.unwrap().status(), 204);
        let listed = &w.list_all(&w.carol).await[0];
        assert_eq!(
            (
                listed["like_count"].as_u64(),
                listed["liked_by_me"].as_bool()
            ),
            (Some(1), Some(true))
        );
        assert_eq!(w.list_all(&w.ann).await[0]["liked_by_me"], false);
        w.like(&w.ann, id).await.unwrap();
        assert_eq!(w.list_all(&w.ann).await[0]["like_count"], 2);
        assert_eq!(w.unlike(&w.carol, id).await.unwrap().status(), 204);
        assert_eq!(w.unlike(&w.carol, id).await.unwrap().status(), 204);
        assert_eq!(w.list_all(&w.ann).await[0]["like_count"], 1);
        let types = w.event_types();
        let count = |t: EventType| types.iter().filter(|x| **x == t).count();
        assert_eq!(count(EventType::CommentLikeAdded), 2);
        assert_eq!(count(EventType::CommentLikeRemoved), 1);
        let missing = shutter_core::new_id();
        assert_eq!(w.like(&w.carol, &missing).await.unwrap_err().status(), 404);
        assert_eq!(
            w.unlike(&w.carol, &missing).await.unwrap_err().status(),
            404
        );
    }

    #[tokio::test]
    async fn pages_cover_every_comment_once_and_cursors_cannot_be_forged() {
        let w = world();
        let mut expected = Vec::new();
        for i in 0..3 {
            let top = w.post_comment(&w.bob, &format!("top {i}"), None).await;
            expected.push(top["id"].as_str().unwrap().to_owned());
            let reply = w
                .post_comment(&w.carol, &format!("reply {i}"), top["id"].as_str())
                .await;
            expected.push(reply["id"].as_str().unwrap().to_owned());
        }
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut query = vec![("limit", "2")];
            if let Some(c) = &cursor {
                query.push(("cursor", c.as_str()));
            }
            let page = body(w.list(&w.ann, &query).await.unwrap());
            let items = page["items"].as_array().unwrap();
            assert!(items.len() <= 2);
            seen.extend(items.iter().map(|c| c["id"].as_str().unwrap().to_owned()));
            match page["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => break,
            }
        }
        assert_eq!(seen, expected);

        let page = body(w.list(&w.ann, &[("limit", "2")]).await.unwrap());
        let good = page["next_cursor"].as_str().unwrap();
        let forged = shutter_core::CursorSigner::new(b"not the key".to_vec()).sign(
            &format!("comments:{}", w.post),
            &serde_json::json!({"sk": "C#"}),
        );
        for bad in [forged.as_str(), "garbage", &format!("{good}x")] {
            let err = w.list(&w.ann, &[("cursor", bad)]).await.unwrap_err();
            assert_eq!(field(&err), (400, Some("cursor".to_owned())), "{bad}");
        }
        let err = w.list(&w.ann, &[("limit", "0")]).await.unwrap_err();
        assert_eq!(field(&err), (400, Some("limit".to_owned())));
    }

    #[tokio::test]
    async fn a_request_without_a_verified_caller_is_a_401() {
        let w = world();
        let req = api_request("POST", "/", &[("id", &w.post)], r#"{"text":"hi"}"#, None);
        assert_eq!(create_comment(&w.app, req).await.unwrap_err().status(), 401);
        assert!(w.app.queue.take().is_empty());
    }
}
