//! The post endpoints: parse the request into typed values, call the use case, answer.

use base64::Engine;
use sha2::{Digest, Sha256};
#[allow(unused_imports)] // the OpenAPI attributes name it
use shutter_core::Problem;
use shutter_core::validate::Username;
use shutter_core::{ApiError, PostId};
use shutter_directory::Directory;
use shutter_http::lambda_http::http::{HeaderValue, StatusCode};
use shutter_http::lambda_http::{Body, Request, Response};
use shutter_http::{ApiRequest, Caller, json};
use shutter_media::MediaStore;

#[allow(unused_imports)] // the OpenAPI attributes name them
use crate::api::{CreatePost, CreatedPost, PostPage, PostView, UpdatePost};
use crate::store::{Idempotency, PostsStore};
use crate::{App, text};

type ApiResult = Result<Response<Body>, ApiError>;

/// The `{id}` of the path as a canonical ULID (400 naming `id` otherwise).
fn post_id(req: &Request) -> Result<PostId, ApiError> {
    PostId::parse("id", &req.path_param("id")?)
}

/// The `Idempotency-Key` header, if sent, with a hash of the request body: the same key
/// with another body is refused.
fn idempotency(req: &Request) -> Result<Option<Idempotency>, ApiError> {
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
    Ok(Some(Idempotency {
        key: key.to_owned(),
        request_hash: base64::engine::general_purpose::STANDARD
            .encode(Sha256::digest(req.body().as_ref())),
    }))
}

/// `POST /v1/posts` -> 201 with the pending post and an upload form per media item.
#[utoipa::path(
    post, path = "/v1/posts", tag = "posts", security(("bearer" = ["user"])),
    summary = "Create a post and get its upload forms",
    description = "The post stays `pending` until its media are uploaded and checked (real type, size; metadata stripped); then it is `published`. Send the same `Idempotency-Key` header to retry safely: the same post comes back (header `Idempotent-Replayed: true`). A caption has at most 30 hashtags and 20 mentions (400 naming `caption`). A deleted account's token is refused (401 `unauthorized`), a suspended or banned one's with 403 `account_suspended` (`until`: when the suspension ends; absent for a ban).",
    params(("Idempotency-Key" = Option<String>, Header, description = "1–64 of [A-Za-z0-9_-]; a retry with it returns the same post")),
    request_body(content = CreatePost, example = json!({"caption": "Sunset #beach with @alice", "location": "Lisbon", "media": [{"content_type": "image/jpeg", "size": 204800}]})),
    responses(
        (status = 201, description = "The pending post and its upload forms", body = CreatedPost),
        (status = 403, description = "`account_suspended`: the account is suspended (`until`) or banned", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The Idempotency-Key was used for a different request, or its post has been deleted", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "`rate_limited`: too many posts this hour or day (`posts`), or too many media bytes today (`media_bytes`); nothing was created", body = Problem, content_type = "application/problem+json", headers(("Retry-After" = u64, description = "Seconds until a retry can pass"), ("RateLimit-Policy" = String, description = "This route's limits, each `\"name-window\";q=quota;w=seconds` (IETF RateLimit fields; on every answer of the route)"), ("RateLimit" = String, description = "What remains of each limit and when it resets, `\"name-window\";r=remaining;t=seconds`")))
    )
)]
#[tracing::instrument(skip_all)]
pub async fn create_post<S: PostsStore, M: MediaStore, D: Directory>(
    app: &App<S, M, D>,
    req: Request,
) -> ApiResult {
    let caller = Caller::from_request(&req)?;
    let new = req.json::<CreatePost>()?.validate()?;
    let idempotency = idempotency(&req)?;
    let created = app
        .create(&caller, new, idempotency, &req.correlation_id())
        .await?;
    let mut response = json(StatusCode::CREATED, &created.post)?;
    if created.replayed {
        response
            .headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    Ok(response)
}

/// `GET /v1/posts/{id}`.
#[utoipa::path(
    get, path = "/v1/posts/{id}", tag = "posts", security(("bearer" = ["user"])),
    summary = "A post",
    description = "Published posts of accounts you may see (not a banned account's, nor a post staff removed); your own posts in any state. A post staff removed is 404 to everyone but its author and staff, who get it with `removed` (the moderator's `note`, `removed_at`).",
    params(("id" = String, Path, description = "The post id (a ULID)")),
    responses((status = 200, description = "The post", body = PostView), (status = 404, description = "No such post, or not one you may see", body = Problem, content_type = "application/problem+json"))
)]
#[tracing::instrument(skip_all)]
pub async fn get_post<S: PostsStore, M: MediaStore, D: Directory>(
    app: &App<S, M, D>,
    req: Request,
) -> ApiResult {
    let caller = Caller::from_request(&req)?;
    let id = post_id(&req)?;
    json(StatusCode::OK, &app.get(&caller, &id).await?)
}

/// `PATCH /v1/posts/{id}` {caption?, location?, version}: the author only.
#[utoipa::path(
    patch, path = "/v1/posts/{id}", tag = "posts", security(("bearer" = ["user"])),
    summary = "Edit your post's caption or location",
    description = "Send the `version` you read: if the post changed since, 409 `version_conflict` (read it again). A caption has at most 30 hashtags and 20 mentions (400 naming `caption`); a deleted account's token is refused (401 `unauthorized`), a suspended or banned one's (403 `account_suspended`). A post staff removed cannot be edited (409 `post_removed`). Emits `PostUpdated`.",
    params(("id" = String, Path, description = "The post id (a ULID)")),
    request_body(content = UpdatePost, example = json!({"caption": "Sunset again #beach", "version": 3})),
    responses(
        (status = 200, description = "The post after the change", body = PostView),
        (status = 403, description = "Not your post, or `account_suspended`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such post", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`version_conflict`: the post changed since you read it; `post_removed`: staff removed it", body = Problem, content_type = "application/problem+json")
    )
)]
#[tracing::instrument(skip_all)]
pub async fn update_post<S: PostsStore, M: MediaStore, D: Directory>(
    app: &App<S, M, D>,
    req: Request,
) -> ApiResult {
    let caller = Caller::from_request(&req)?;
    let id = post_id(&req)?;
    let patch: UpdatePost = req.json()?;
    let post = app
        .update(&caller, &id, patch, &req.correlation_id())
        .await?;
    json(StatusCode::OK, &post)
}

/// `DELETE /v1/posts/{id}`: the author, a moderator or an admin.
#[utoipa::path(
    delete, path = "/v1/posts/{id}", tag = "posts", security(("bearer" = ["user"])),
    summary = "Delete a post",
    description = "The author, a moderator or an admin. Its media, likes and comments go too (through `PostDeleted`). A suspended or banned account's token is refused (403 `account_suspended`).",
    params(("id" = String, Path, description = "The post id (a ULID)")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = "Not your post, or `account_suspended`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such post", body = Problem, content_type = "application/problem+json")
    )
)]
#[tracing::instrument(skip_all)]
pub async fn delete_post<S: PostsStore, M: MediaStore, D: Directory>(
    app: &App<S, M, D>,
    req: Request,
) -> ApiResult {
    let caller = Caller::from_request(&req)?;
    let id = post_id(&req)?;
    app.delete(&caller, &id, &req.correlation_id()).await?;
    shutter_http::no_content()
}

/// `GET /v1/users/{username}/posts`: newest first, cursor paged.
#[utoipa::path(
    get, path = "/v1/users/{username}/posts", tag = "posts", security(("bearer" = ["user"])),
    summary = "A user's posts, newest first",
    description = "Published posts (yours in any state, those staff removed included, with `removed`). Others do not see posts staff removed; a banned account's list is 404 to others while the ban holds. A private account's posts only to its approved followers (403 otherwise). `?limit=` 1–100 (20), `?cursor=` from `next_cursor`.",
    params(
        ("username" = Username, Path, description = "The username"),
        ("limit" = Option<u16>, Query, description = "1–100, default 20"),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page")
    ),
    responses(
        (status = 200, description = "A page of posts: `{items, next_cursor}`", body = PostPage),
        (status = 403, description = "A private account", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such user, or a banned one", body = Problem, content_type = "application/problem+json")
    )
)]
#[tracing::instrument(skip_all)]
pub async fn posts_by_author<S: PostsStore, M: MediaStore, D: Directory>(
    app: &App<S, M, D>,
    req: Request,
) -> ApiResult {
    let caller = Caller::from_request(&req)?;
    let raw = req.path_param("username")?;
    let username = Username::try_from(raw).map_err(|why| ApiError::invalid("username", why))?;
    let page = req.page_request()?;
    let posts = app.posts_by_author(&caller, &username, page).await?;
    json(StatusCode::OK, &posts)
}

/// `GET /v1/hashtags/{tag}/posts`: newest first, cursor paged.
#[utoipa::path(
    get, path = "/v1/hashtags/{tag}/posts", tag = "posts", security(("bearer" = ["user"])),
    summary = "Published posts with a hashtag, newest first",
    description = "Posts you may not see are left out, so a page can be shorter than `limit`; follow `next_cursor` until it is null.",
    params(
        ("tag" = String, Path, description = "The hashtag, with or without `#` (case-insensitive)"),
        ("limit" = Option<u16>, Query, description = "1–100, default 20"),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page")
    ),
    responses((status = 200, description = "A page of posts: `{items, next_cursor}`", body = PostPage))
)]
#[tracing::instrument(skip_all)]
pub async fn posts_by_hashtag<S: PostsStore, M: MediaStore, D: Directory>(
    app: &App<S, M, D>,
    req: Request,
) -> ApiResult {
    let caller = Caller::from_request(&req)?;
    let raw = req.path_param("tag")?;
    let tag = text::normalise_tag(&raw)
        .ok_or_else(|| ApiError::invalid("tag", "must be 1–100 letters, digits or '_'"))?;
    let page = req.page_request()?;
    let posts = app.posts_by_hashtag(&caller, tag, page).await?;
    json(StatusCode::OK, &posts)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::collections::HashMap;

    use shutter_core::UserId;
    use shutter_events::{Event, EventType};
    use shutter_http::lambda_http::RequestExt;

    use super::*;
    use crate::model::PostStatus;
    use crate::testing::{app, body, event_types, follows, post, request, user};

    fn status(result: &ApiResult) -> u16 {
        match result {
            Ok(resp) => resp.status().as_u16(),
            Err(err) => err.status(),
        }
    }

    /// The problem's (status, code, field) of a refused request.
    fn problem(result: ApiResult) -> (u16, String, Option<String>) {
        let p = result.unwrap_err().problem();
        (p.status, p.code, p.field)
    }

    const ONE_IMAGE: &str =
        r#"{"caption": "Sunset #Beach", "media": [{"content_type": "image/jpeg", "size": 2048}]}"#;

    fn with_key(mut req: Request, key: &'static str) -> Request {
        req.headers_mut()
            .insert("idempotency-key", HeaderValue::from_static(key));
        req
    }

    fn list(params: &[(&str, &str)], query: &[(&str, &str)], user: &UserId) -> Request {
        let query: HashMap<String, String> = query
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        request("GET", params, "", user, false).with_query_string_parameters(query)
    }

    fn ids(page: &serde_json::Value) -> Vec<String> {
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["id"].as_str().unwrap().to_owned())
            .collect()
    }

    #[tokio::test]
    async fn a_new_post_is_pending_with_an_upload_form_per_item_and_its_event() {
        let app = app();
        let (ann, bob) = (user(&app, "ann", false), user(&app, "bob", false));
        let req = request(
            "POST",
            &[],
            r#"{"caption": "Hi #Sun with @Bob and @nobody", "location": "Lisbon", "media": [{"content_type": "image/jpeg", "size": 2048}, {"content_type": "video/mp4", "size": 4096}]}"#,
            &ann,
            false,
        );
        let resp = create_post(&app, req).await.unwrap();
        assert_eq!(resp.status(), StatusCode::CREATED);
        assert!(resp.headers().get("idempotent-replayed").is_none());
        let created = body(&resp);
        assert_eq!(created["post"]["status"], "pending");
        assert_eq!(created["post"]["hashtags"], serde_json::json!(["sun"]));
        assert_eq!(created["post"]["mentions"][0]["user_id"], bob.as_str());
        assert_eq!(created["post"]["author"]["username"], "ann");
        let uploads = created["uploads"].as_array().unwrap();
        assert_eq!(uploads.len(), 2);
        let id = created["post"]["id"].as_str().unwrap();
        let key = uploads[1]["upload"]["fields"]["key"].as_str().unwrap();
        assert!(
            key.starts_with(&format!("post-uploads/{ann}/{id}/")) && key.ends_with(".mp4"),
            "{key}"
        );
        let events = app.store.events();
        let [event] = events.as_slice() else {
            panic!("one event: {events:?}")
        };
        let Event::PostCreated(facts) = &event.event else {
            panic!("PostCreated: {event:?}")
        };
        assert_eq!((facts.post_id.as_str(), &facts.author_id), (id, &ann));
        assert_eq!(event.actor.as_ref(), Some(&ann));
    }

    #[tokio::test]
    async fn creating_twice_with_one_idempotency_key_makes_one_post() {
        let app = app();
        let ann = user(&app, "ann", false);
        let create = || with_key(request("POST", &[], ONE_IMAGE, &ann, false), "retry-1");
        // WHEN the same request is sent twice with the same key
        let first = create_post(&app, create()).await.unwrap();
        let again = create_post(&app, create()).await.unwrap();
        // THEN one post: the second answer is the first post, marked as replayed
        assert_eq!(again.status(), StatusCode::CREATED);
        assert_eq!(body(&first)["post"]["id"], body(&again)["post"]["id"]);
        assert_eq!(again.headers()["idempotent-replayed"], "true");
        assert_eq!(body(&again)["uploads"].as_array().unwrap().len(), 1);
        assert_eq!(app.store.count(), 1);
        assert_eq!(event_types(&app), vec![EventType::PostCreated]);
        // A different request with the same key is refused and stores nothing.
        let other = with_key(
            request(
                "POST",
                &[],
                r#"{"media": [{"content_type": "image/png", "size": 1}]}"#,
                &ann,
                false,
            ),
            "retry-1",
        );
        assert_eq!(
            problem(create_post(&app, other).await),
            (
                409,
                "idempotency_key_reused".into(),
                Some("Idempotency-Key".into())
            )
        );
        assert_eq!(app.store.count(), 1);
        // Another user's same key is theirs alone.
        let bob = user(&app, "bob", false);
        let theirs = with_key(request("POST", &[], ONE_IMAGE, &bob, false), "retry-1");
        let theirs = create_post(&app, theirs).await.unwrap();
        assert_ne!(body(&theirs)["post"]["id"], body(&first)["post"]["id"]);
        assert_eq!(app.store.count(), 2);
    }

    #[tokio::test]
    async fn bad_create_input_is_a_400_naming_the_field_and_stores_nothing() {
        let app = app();
        let ann = user(&app, "ann", false);
        let media = |content_type: &str, size: i64| {
            format!(r#"{{"media": [{{"content_type": "{content_type}", "size": {size}}}]}}"#)
        };
        let cases = [
            (r#"{"media": "#.to_owned(), None),
            (r#"{"media": []}"#.to_owned(), Some("media")),
            (media("text/plain", 1), Some("media[0].content_type")),
            (media("image/png", 10_485_761), Some("media[0].size")),
            (r#"{"caption": 3, "media": []}"#.to_owned(), Some("caption")),
            (
                r#"{"caption": "bell", "media": [], "extra": 1}"#.to_owned(),
                None,
            ),
        ];
        for (body, field) in cases {
            let result = create_post(&app, request("POST", &[], &body, &ann, false)).await;
            let (status, _, got) = problem(result);
            assert_eq!(status, 400, "{body}");
            if field.is_some() {
                assert_eq!(got.as_deref(), field, "{body}");
            }
        }
        let bad_key = with_key(
            request("POST", &[], ONE_IMAGE, &ann, false),
            "no spaces allowed",
        );
        assert_eq!(
            problem(create_post(&app, bad_key).await),
            (400, "invalid_input".into(), Some("Idempotency-Key".into()))
        );
        let anonymous =
            shutter_http::test_support::api_request("POST", "/v1/posts", &[], ONE_IMAGE, None);
        assert_eq!(status(&create_post(&app, anonymous).await), 401);
        assert_eq!(app.store.count(), 0);
        assert!(app.store.events().is_empty());
    }

    #[tokio::test]
    async fn someone_elses_private_or_pending_post_is_not_found() {
        let app = app();
        let (ann, bob, mod_) = (
            user(&app, "ann", true),
            user(&app, "bob", false),
            UserId::generate(),
        );
        let private = post(&app, &ann, PostStatus::Published);
        let get = |user: &UserId, staff: bool| {
            get_post(
                &app,
                request("GET", &[("id", private.id.as_str())], "", user, staff),
            )
        };
        // GIVEN ann's account is private: bob does not see her post, and is not told it exists
        assert_eq!(
            problem(get(&bob, false).await),
            (404, "not_found".into(), None)
        );
        // Ann and staff do.
        let seen = body(&get(&ann, false).await.unwrap());
        assert_eq!(seen["id"], private.id.as_str());
        assert!(
            seen["media"][0]["url"]
                .as_str()
                .unwrap()
                .contains("display.jpg")
        );
        assert_eq!(status(&get(&mod_, true).await), 200);
        // An approved follower does.
        follows(&app, &bob, &ann).await;
        assert_eq!(status(&get(&bob, false).await), 200);
        // A public author's pending post is the author's alone.
        let cat = user(&app, "cat", false);
        let pending = post(&app, &cat, PostStatus::Pending);
        let req = request("GET", &[("id", pending.id.as_str())], "", &bob, false);
        assert_eq!(status(&get_post(&app, req).await), 404);
        let req = request("GET", &[("id", pending.id.as_str())], "", &cat, false);
        let seen = body(&get_post(&app, req).await.unwrap());
        assert_eq!(seen["media"][0]["url"], serde_json::Value::Null);
        // No such post; not an id.
        let req = request(
            "GET",
            &[("id", UserId::generate().as_str())],
            "",
            &bob,
            false,
        );
        assert_eq!(status(&get_post(&app, req).await), 404);
        let req = request("GET", &[("id", "not-a-ulid")], "", &bob, false);
        assert_eq!(
            problem(get_post(&app, req).await),
            (400, "invalid_input".into(), Some("id".into()))
        );
    }

    #[tokio::test]
    async fn someone_elses_post_cannot_be_edited_or_deleted_and_stays_as_it_was() {
        let app = app();
        let (ann, bob, dan) = (
            user(&app, "ann", false),
            user(&app, "bob", false),
            user(&app, "dan", true),
        );
        let public = post(&app, &ann, PostStatus::Published);
        let hidden = post(&app, &dan, PostStatus::Published);
        let patch = r#"{"caption": "mine now", "version": 2}"#;
        for (target, expected) in [(&public, 403), (&hidden, 404)] {
            let params = [("id", target.id.as_str())];
            // WHEN bob edits or deletes someone else's post
            let edit = update_post(&app, request("PATCH", &params, patch, &bob, false)).await;
            let delete = delete_post(&app, request("DELETE", &params, "", &bob, false)).await;
            // THEN it is refused (404 when he may not even see it) and nothing changes
            assert_eq!((status(&edit), status(&delete)), (expected, expected));
            assert_eq!(app.store.stored(&target.id).as_ref(), Some(target));
        }
        // Staff may delete, but not edit.
        let params = [("id", public.id.as_str())];
        let edit = update_post(&app, request("PATCH", &params, patch, &bob, true)).await;
        assert_eq!(status(&edit), 403);
        assert!(app.store.events().is_empty());
        assert_eq!(app.store.tagged("beach").len(), 2);
    }

    #[tokio::test]
    async fn an_edit_needs_the_version_read_and_valid_text() {
        let app = app();
        let ann = user(&app, "ann", false);
        let before = post(&app, &ann, PostStatus::Published);
        let params = [("id", before.id.as_str())];
        let patch = |body: &str| update_post(&app, request("PATCH", &params, body, &ann, false));
        assert_eq!(
            problem(patch(r#"{"caption": "late", "version": 1}"#).await),
            (409, "version_conflict".into(), Some("version".into()))
        );
        assert_eq!(
            problem(patch("{\"caption\": \"bell\\u0007\", \"version\": 2}").await),
            (400, "invalid_input".into(), Some("caption".into()))
        );
        assert_eq!(
            problem(patch(r#"{"location": " ", "version": 2}"#).await)
                .2
                .as_deref(),
            Some("location")
        );
        assert_eq!(
            status(&patch(r#"{"caption": "x", "version": -1}"#).await),
            400
        );
        assert_eq!(status(&patch(r#"{"caption": "x""#).await), 400);
        assert_eq!(app.store.stored(&before.id), Some(before.clone()));
        assert!(app.store.events().is_empty());
        // WHEN the author edits the version she read
        let resp = patch(r#"{"caption": "Now #Sea", "location": "Porto", "version": 2}"#)
            .await
            .unwrap();
        // THEN the post changes, its hashtag lists follow, and PostUpdated goes out
        let edited = body(&resp);
        assert_eq!(
            (edited["version"].as_u64(), edited["location"].as_str()),
            (Some(3), Some("Porto"))
        );
        assert_eq!(app.store.stored(&before.id).unwrap().hashtags, vec!["sea"]);
        assert_eq!(app.store.tagged("sea"), vec![before.id.clone()]);
        assert!(app.store.tagged("beach").is_empty());
        assert_eq!(event_types(&app), vec![EventType::PostUpdated]);
        // The same text again changes nothing.
        let same = patch(r#"{"caption": "Now #Sea", "version": 3}"#)
            .await
            .unwrap();
        assert_eq!(body(&same)["version"], 3);
        assert_eq!(app.store.events().len(), 1);
    }

    #[tokio::test]
    async fn the_author_or_staff_delete_a_post_with_its_event() {
        let app = app();
        let (ann, staff) = (user(&app, "ann", false), UserId::generate());
        let (mine, other) = (
            post(&app, &ann, PostStatus::Published),
            post(&app, &ann, PostStatus::Pending),
        );
        for (post, by, is_staff) in [(&mine, &ann, false), (&other, &staff, true)] {
            let req = request("DELETE", &[("id", post.id.as_str())], "", by, is_staff);
            let resp = delete_post(&app, req).await.unwrap();
            assert_eq!(resp.status(), StatusCode::NO_CONTENT);
            assert_eq!(app.store.stored(&post.id), None);
            let Some(Event::PostDeleted(gone)) = app.store.events().last().map(|e| e.event.clone())
            else {
                panic!("PostDeleted")
            };
            assert_eq!(
                (&gone.post_id, &gone.author_id, &gone.deleted_by),
                (&post.id, &ann, by)
            );
        }
        assert!(app.store.tagged("beach").is_empty());
        let req = request("DELETE", &[("id", mine.id.as_str())], "", &ann, false);
        assert_eq!(status(&delete_post(&app, req).await), 404);
    }

    #[tokio::test]
    async fn an_authors_list_pages_newest_first_with_signed_cursors() {
        let app = app();
        let (ann, bob) = (user(&app, "ann", false), user(&app, "bob", false));
        let mut all: Vec<_> = (0..4)
            .map(|_| post(&app, &ann, PostStatus::Published).id.to_string())
            .collect();
        // Newest first is id order (ids made in one millisecond have no other order).
        all.sort();
        let (pending, published) = (all[0].clone(), &all[1..]);
        let mut stored = app
            .store
            .stored(&PostId::trusted(pending.as_str()))
            .unwrap();
        stored.status = PostStatus::Pending;
        app.store.insert(stored);
        let by_ann = [("username", "ann")];
        // Others see her published posts, newest first, two a page.
        let first = body(
            &posts_by_author(&app, list(&by_ann, &[("limit", "2")], &bob))
                .await
                .unwrap(),
        );
        assert_eq!(
            ids(&first),
            vec![published[2].clone(), published[1].clone()]
        );
        let cursor = first["next_cursor"].as_str().unwrap();
        let query = [("limit", "2"), ("cursor", cursor)];
        let second = body(
            &posts_by_author(&app, list(&by_ann, &query, &bob))
                .await
                .unwrap(),
        );
        assert_eq!(ids(&second), vec![published[0].clone()]);
        assert_eq!(second["next_cursor"], serde_json::Value::Null);
        // She sees her own in every state.
        let own = body(
            &posts_by_author(&app, list(&by_ann, &[], &ann))
                .await
                .unwrap(),
        );
        assert_eq!(ids(&own).len(), 4);
        assert_eq!(ids(&own)[3], pending);
        // A cursor is good for its own list only, and cannot be forged.
        let by_bob = [("username", "bob")];
        for (params, cursor) in [(&by_bob, cursor), (&by_ann, "forged.cursor")] {
            assert_eq!(
                problem(posts_by_author(&app, list(params, &[("cursor", cursor)], &bob)).await),
                (400, "invalid_input".into(), Some("cursor".into()))
            );
        }
        assert_eq!(
            status(&posts_by_author(&app, list(&by_ann, &[("limit", "0")], &bob)).await),
            400
        );
    }

    #[tokio::test]
    async fn a_private_or_unknown_authors_list_is_refused() {
        let app = app();
        let (_, bob) = (user(&app, "dan", true), user(&app, "bob", false));
        let by = |name: &'static str| posts_by_author(&app, list(&[("username", name)], &[], &bob));
        assert_eq!(status(&by("dan").await), 403);
        assert_eq!(status(&by("nobody").await), 404);
        assert_eq!(
            problem(by("no spaces").await).2.as_deref(),
            Some("username")
        );
    }

    #[tokio::test]
    async fn a_hashtags_list_shows_the_published_posts_the_caller_may_see() {
        let app = app();
        let (ann, dan, bob) = (
            user(&app, "ann", false),
            user(&app, "dan", true),
            user(&app, "bob", false),
        );
        let shown = post(&app, &ann, PostStatus::Published);
        post(&app, &ann, PostStatus::Pending);
        post(&app, &dan, PostStatus::Published);
        let page = posts_by_hashtag(&app, list(&[("tag", "#Beach")], &[], &bob)).await;
        assert_eq!(ids(&body(&page.unwrap())), vec![shown.id.to_string()]);
        assert_eq!(
            problem(posts_by_hashtag(&app, list(&[("tag", "be ach")], &[], &bob)).await)
                .2
                .as_deref(),
            Some("tag")
        );
    }
}
