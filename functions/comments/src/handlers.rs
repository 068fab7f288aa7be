//! The comment endpoints, and the rules they share with the consumers (writing a
//! comment, deleting one with its replies).

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
#[allow(unused_imports)] // the OpenAPI attributes name it
use shutter_core::Problem;
use shutter_core::{ApiError, CursorSigner};
use shutter_directory::legacy::{Directory, Viewer, visible_post};
use shutter_events::legacy::Envelope;
use shutter_http::lambda_http::http::StatusCode;
use shutter_http::lambda_http::{Body, Request, Response};
use shutter_http::{ApiRequest, Caller, json, no_content};
use utoipa::ToSchema;

use crate::model::{
    Comment, CommentDeleted, CommentEdited, CommentLikeChanged, CommentPage, CommentText,
    CommentView, UserRef, hashtags, mentioned_usernames,
};
use crate::store::{CommentsReader, CommentsStore};

type ApiResult = Result<Response<Body>, ApiError>;

/// At most this many distinct users are looked up per comment; further `@names` stay text.
pub const MAX_MENTIONS: usize = 20;

/// A comment on its way to `comments-writer`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommentWrite {
    pub comment: Comment,
    pub correlation_id: String,
}

/// The queue that carries comment writes.
#[async_trait]
pub trait WriteQueue: Send + Sync {
    async fn send(&self, write: &CommentWrite) -> Result<(), ApiError>;
}

/// The SQS adapter (`COMMENT_WRITES_QUEUE_URL`).
#[derive(Debug, Clone)]
pub struct SqsWriteQueue {
    pub client: aws_sdk_sqs::Client,
    pub queue_url: String,
}

impl SqsWriteQueue {
    pub fn from_env(config: &shutter_store::SdkConfig) -> Result<Self, shutter_store::ConfigError> {
        Ok(Self {
            client: aws_sdk_sqs::Client::new(config),
            queue_url: shutter_store::env("COMMENT_WRITES_QUEUE_URL")?,
        })
    }
}

#[async_trait]
impl WriteQueue for SqsWriteQueue {
    async fn send(&self, write: &CommentWrite) -> Result<(), ApiError> {
        let body = serde_json::to_string(write).map_err(ApiError::internal)?;
        self.client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(body)
            .send()
            .await
            .map(|_| ())
            .map_err(ApiError::internal)
    }
}

fn viewer(caller: &Caller) -> Viewer<'_> {
    Viewer {
        user_id: &caller.user_id,
        staff: caller.is_staff(),
    }
}

fn id_param(req: &Request) -> Result<String, ApiError> {
    let raw = req.path_param("id")?;
    shutter_core::parse_id("id", &raw).map(|id| id.to_string())
}

/// The users `text` mentions who exist (others stay plain text).
async fn resolve_mentions<D: Directory + ?Sized>(
    directory: &D,
    text: &str,
) -> Result<Vec<UserRef>, ApiError> {
    let mut mentions = Vec::new();
    for name in mentioned_usernames(text).into_iter().take(MAX_MENTIONS) {
        if let Some(author) = directory.author_by_username(name.as_str()).await? {
            mentions.push(UserRef {
                id: author.user_id,
                username: author.username,
            });
        }
    }
    Ok(mentions)
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

/// `POST /v1/posts/{id}/comments` {text, reply_to?} -> 202 with the comment as it will be
/// stored; `comments-writer` stores it moments later.
#[utoipa::path(
    post, path = "/v1/posts/{id}/comments", tag = "comments", security(("bearer" = ["user"])),
    summary = "Comment on a post, or reply to a comment",
    description = "Answers 202 with the comment as it will be stored (its id is final); it appears in the list moments later and emits `CommentAdded`. A reply to a reply is attached to the top-level comment. `@username`s of existing users become `mentions`, `#tags` become `hashtags` (lower-cased).",
    params(("id" = String, Path, description = "The post's id (a ULID)", pattern = "^[0-7][0-9A-HJKMNP-TV-Za-hjkmnp-tv-z]{25}$")),
    request_body(content = NewComment, example = json!({"text": "Lovely light! #sunset @bob", "reply_to": null})),
    responses(
        (status = 202, description = "Accepted; stored moments later", body = CommentView),
        (status = 404, description = "No such post, or not visible to you", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn create_comment<S, D, Q>(store: &S, directory: &D, queue: &Q, req: Request) -> ApiResult
where
    S: CommentsReader,
    D: Directory,
    Q: WriteQueue,
{
    let caller = Caller::from_request(&req)?;
    let post_id = id_param(&req)?;
    let body: NewComment = req.json()?;
    let reply_to = body
        .reply_to
        .as_deref()
        .map(|raw| shutter_core::parse_id("reply_to", raw).map(|id| id.to_string()))
        .transpose()?;
    visible_post(directory, &post_id, viewer(&caller)).await?;
    let reply_to = match reply_to {
        None => None,
        Some(id) => {
            let parent = store
                .comment(&id)
                .await?
                .filter(|c| c.post_id == post_id)
                .ok_or_else(|| ApiError::invalid("reply_to", "is not a comment on this post"))?;
            Some(parent.thread().to_owned())
        }
    };
    let username = if caller.username.is_empty() {
        directory
            .author(&caller.user_id)
            .await?
            .map(|a| a.username)
            .unwrap_or_default()
    } else {
        caller.username.clone()
    };
    let text = String::from(body.text);
    // Listed in id order: its time is the id's own instant, so both orders agree.
    let (id, created_at) = shutter_core::new_id_and_time();
    let comment = Comment {
        id,
        post_id,
        author: UserRef {
            id: caller.user_id.to_string(),
            username,
        },
        hashtags: hashtags(&text),
        mentions: resolve_mentions(directory, &text).await?,
        text,
        reply_to,
        like_count: 0,
        created_at,
        edited_at: None,
    };
    queue
        .send(&CommentWrite {
            comment: comment.clone(),
            correlation_id: req.correlation_id(),
        })
        .await?;
    tracing::info!(comment_id = %comment.id, post_id = %comment.post_id, "comment accepted");
    json(StatusCode::ACCEPTED, &CommentView::new(&comment, false))
}

/// Where a comments page resumes: the sort key of the last comment shown.
#[derive(Debug, Serialize, Deserialize)]
struct Position {
    sk: String,
}

fn cursor_scope(post_id: &str) -> String {
    format!("comments:{post_id}")
}

/// `GET /v1/posts/{id}/comments?limit=&cursor=`: oldest thread first, replies under their
/// parent.
#[utoipa::path(
    get, path = "/v1/posts/{id}/comments", tag = "comments", security(("bearer" = ["user"])),
    summary = "A post's comments",
    description = "Oldest first; each top-level comment is followed by its replies (oldest first). Pass `next_cursor` back as `cursor` for the next page.",
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
pub async fn list_comments<S, D>(
    store: &S,
    directory: &D,
    signer: &CursorSigner,
    req: Request,
) -> ApiResult
where
    S: CommentsReader,
    D: Directory,
{
    let caller = Caller::from_request(&req)?;
    let post_id = id_param(&req)?;
    let page = req.page_request()?;
    let scope = cursor_scope(&post_id);
    let after = page
        .cursor
        .as_deref()
        .map(|c| signer.verify::<Position>(&scope, c))
        .transpose()?;
    visible_post(directory, &post_id, viewer(&caller)).await?;
    let (comments, next) = store
        .page(&post_id, after.as_ref().map(|p| p.sk.as_str()), page.limit)
        .await?;
    let ids: Vec<String> = comments.iter().map(|c| c.id.clone()).collect();
    let liked = if ids.is_empty() {
        Default::default()
    } else {
        store.liked_by(&caller.user_id, &ids).await?
    };
    let items = comments
        .iter()
        .map(|c| CommentView::new(c, liked.contains(&c.id)))
        .collect();
    let next_cursor = next.map(|sk| signer.sign(&scope, &Position { sk }));
    json(StatusCode::OK, &CommentPage { items, next_cursor })
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
        (status = 403, description = "`forbidden`: not your comment", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such comment", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn edit_comment<S, D>(store: &S, directory: &D, req: Request) -> ApiResult
where
    S: CommentsStore,
    D: Directory,
{
    let caller = Caller::from_request(&req)?;
    let id = id_param(&req)?;
    let patch: CommentPatch = req.json()?;
    let current = store
        .comment(&id)
        .await?
        .ok_or(ApiError::NotFound("comment"))?;
    if current.author.id != caller.user_id {
        return Err(ApiError::Forbidden);
    }
    let text = String::from(patch.text);
    let mut updated = current.clone();
    updated.hashtags = hashtags(&text);
    updated.mentions = resolve_mentions(directory, &text).await?;
    updated.text = text;
    updated.edited_at = Some(shutter_core::now_rfc3339());
    let event = Envelope::new(
        "CommentEdited",
        &updated.post_id,
        Some(&caller.user_id),
        &req.correlation_id(),
        &CommentEdited {
            comment_id: updated.id.clone(),
            post_id: updated.post_id.clone(),
            author_id: updated.author.id.clone(),
            text: updated.text.clone(),
            hashtags: updated.hashtags.clone(),
            mentions: updated.mentions.clone(),
        },
    );
    store.edit(&updated, &event).await?;
    let liked = store
        .liked_by(&caller.user_id, std::slice::from_ref(&updated.id))
        .await?;
    json(
        StatusCode::OK,
        &CommentView::new(&updated, liked.contains(&updated.id)),
    )
}

/// Deletes `comment` and, if it is a top-level comment, its replies (replies first, so a
/// retry after a failure finds what is left). Each deleted comment emits one
/// `CommentDeleted`; a comment someone else deleted meanwhile emits nothing. Returns how
/// many were deleted.
pub async fn delete_thread<S: CommentsStore + ?Sized>(
    store: &S,
    comment: &Comment,
    deleted_by: &str,
    correlation_id: &str,
) -> Result<usize, ApiError> {
    let mut doomed = if comment.reply_to.is_none() {
        store.replies(comment).await?
    } else {
        Vec::new()
    };
    doomed.push(comment.clone());
    let mut deleted = 0;
    for c in &doomed {
        let event = Envelope::new(
            "CommentDeleted",
            &c.post_id,
            Some(deleted_by),
            correlation_id,
            &CommentDeleted {
                comment_id: c.id.clone(),
                post_id: c.post_id.clone(),
                author_id: c.author.id.clone(),
                deleted_by: deleted_by.to_owned(),
            },
        );
        if store.delete(c, &event).await? {
            deleted += 1;
        }
    }
    Ok(deleted)
}

/// `DELETE /v1/comments/{id}`: by its author, the post's author or staff.
#[utoipa::path(
    delete, path = "/v1/comments/{id}", tag = "comments", security(("bearer" = ["user"])),
    summary = "Delete a comment (and its replies)",
    description = "The comment's author, the post's author, moderators and admins may delete it. Deleting a top-level comment deletes its replies; each deleted comment emits `CommentDeleted`.",
    params(("id" = String, Path, description = "The comment's id (a ULID)", pattern = "^[0-7][0-9A-HJKMNP-TV-Za-hjkmnp-tv-z]{25}$")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = "`forbidden`: neither your comment nor your post", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such comment", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn delete_comment<S, D>(store: &S, directory: &D, req: Request) -> ApiResult
where
    S: CommentsStore,
    D: Directory,
{
    let caller = Caller::from_request(&req)?;
    let id = id_param(&req)?;
    let comment = store
        .comment(&id)
        .await?
        .ok_or(ApiError::NotFound("comment"))?;
    let allowed = comment.author.id == caller.user_id
        || caller.is_staff()
        || directory
            .post(&comment.post_id)
            .await?
            .is_some_and(|p| p.author_id == caller.user_id);
    if !allowed {
        return Err(ApiError::Forbidden);
    }
    let n = delete_thread(store, &comment, &caller.user_id, &req.correlation_id()).await?;
    tracing::info!(comment_id = %id, deleted = n, "comment deleted");
    no_content()
}

fn like_event(kind: &str, comment: &Comment, caller: &Caller, req: &Request) -> Envelope {
    Envelope::new(
        kind,
        &comment.post_id,
        Some(&caller.user_id),
        &req.correlation_id(),
        &CommentLikeChanged {
            comment_id: comment.id.clone(),
            post_id: comment.post_id.clone(),
            user_id: caller.user_id.to_string(),
        },
    )
}

/// `POST /v1/comments/{id}/like`: idempotent.
#[utoipa::path(
    post, path = "/v1/comments/{id}/like", tag = "comments", security(("bearer" = ["user"])),
    summary = "Like a comment",
    description = "Idempotent: liking twice counts once. Emits `CommentLikeAdded` when it changes something.",
    params(("id" = String, Path, description = "The comment's id (a ULID)", pattern = "^[0-7][0-9A-HJKMNP-TV-Za-hjkmnp-tv-z]{25}$")),
    responses(
        (status = 204, description = "You like it"),
        (status = 404, description = "No such comment, or its post is not visible to you", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn like_comment<S, D>(store: &S, directory: &D, req: Request) -> ApiResult
where
    S: CommentsStore,
    D: Directory,
{
    let caller = Caller::from_request(&req)?;
    let id = id_param(&req)?;
    let comment = store
        .comment(&id)
        .await?
        .ok_or(ApiError::NotFound("comment"))?;
    visible_post(directory, &comment.post_id, viewer(&caller))
        .await
        .map_err(|e| match e {
            ApiError::NotFound(_) => ApiError::NotFound("comment"),
            other => other,
        })?;
    let event = like_event("CommentLikeAdded", &comment, &caller, &req);
    store.like(&comment, &caller.user_id, &event).await?;
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
        (status = 404, description = "No such comment", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn unlike_comment<S: CommentsStore>(store: &S, req: Request) -> ApiResult {
    let caller = Caller::from_request(&req)?;
    let id = id_param(&req)?;
    let comment = store
        .comment(&id)
        .await?
        .ok_or(ApiError::NotFound("comment"))?;
    let event = like_event("CommentLikeRemoved", &comment, &caller, &req);
    store.unlike(&comment, &caller.user_id, &event).await?;
    no_content()
}

#[cfg(test)]
pub(crate) mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::Mutex;

    use shutter_directory::legacy::{Author, MemoryDirectory, PostRef};
    use shutter_http::test_support::api_request;

    use super::*;
    use crate::consumers::write_comment;
    use crate::store::memory::MemoryCommentsStore;

    #[derive(Default)]
    pub struct MemoryQueue {
        pub sent: Mutex<Vec<CommentWrite>>,
    }

    #[async_trait]
    impl WriteQueue for MemoryQueue {
        async fn send(&self, write: &CommentWrite) -> Result<(), ApiError> {
            self.sent.lock().unwrap().push(write.clone());
            Ok(())
        }
    }

    impl MemoryQueue {
        pub fn take(&self) -> Vec<CommentWrite> {
            std::mem::take(&mut *self.sent.lock().unwrap())
        }
    }

    /// A user of the tests: (id, username, scope).
    #[derive(Clone)]
    pub struct Who {
        pub id: String,
        pub name: &'static str,
        pub scope: &'static str,
    }

    pub struct World {
        pub store: MemoryCommentsStore,
        pub dir: MemoryDirectory,
        pub queue: MemoryQueue,
        pub signer: CursorSigner,
        pub ann: Who,
        pub bob: Who,
        pub carol: Who,
        pub staff: Who,
        pub post: String,
    }

    fn who(name: &'static str, scope: &'static str) -> Who {
        Who {
            id: shutter_core::new_id(),
            name,
            scope,
        }
    }

    /// ann has published `post`; bob, carol and a moderator exist.
    pub fn world() -> World {
        let dir = MemoryDirectory::default();
        let (ann, bob, carol, staff) = (
            who("ann", "user"),
            who("bob", "user"),
            who("carol", "user"),
            who("mod", "user moderator"),
        );
        for w in [&ann, &bob, &carol, &staff] {
            dir.add_author(Author {
                user_id: w.id.clone(),
                username: w.name.to_owned(),
                display_name: w.name.to_owned(),
                private: false,
                avatar_key: None,
            });
        }
        let post = shutter_core::new_id();
        dir.add_post(PostRef {
            post_id: post.clone(),
            author_id: ann.id.clone(),
        });
        World {
            store: MemoryCommentsStore::default(),
            dir,
            queue: MemoryQueue::default(),
            signer: CursorSigner::new(b"test key".to_vec()),
            ann,
            bob,
            carol,
            staff,
            post,
        }
    }

    pub fn as_user(
        w: &Who,
        method: &str,
        params: &[(&str, &str)],
        query: &[(&str, &str)],
        body: &str,
    ) -> Request {
        use shutter_http::lambda_http::RequestExt;
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

    pub fn body(resp: Response<Body>) -> serde_json::Value {
        serde_json::from_slice(resp.body().as_ref()).unwrap()
    }

    impl World {
        /// POSTs a comment and runs the writer on what was queued; the 202 body.
        pub async fn comment(
            &self,
            by: &Who,
            text: &str,
            reply_to: Option<&str>,
        ) -> serde_json::Value {
            // Ids order by millisecond (within one, at random), so comments are a tick apart.
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
            let payload = serde_json::json!({"text": text, "reply_to": reply_to}).to_string();
            let req = as_user(by, "POST", &[("id", &self.post)], &[], &payload);
            let resp = create_comment(&self.store, &self.dir, &self.queue, req)
                .await
                .unwrap();
            assert_eq!(resp.status(), 202);
            for write in self.queue.take() {
                write_comment(&self.store, &self.dir, &write).await.unwrap();
            }
            body(resp)
        }

        pub async fn create(&self, by: &Who, post: &str, payload: &str) -> ApiResult {
            let req = as_user(by, "POST", &[("id", post)], &[], payload);
            create_comment(&self.store, &self.dir, &self.queue, req).await
        }

        pub async fn list(&self, by: &Who, query: &[(&str, &str)]) -> ApiResult {
            let req = as_user(by, "GET", &[("id", &self.post)], query, "");
            list_comments(&self.store, &self.dir, &self.signer, req).await
        }

        pub async fn list_all(&self, by: &Who) -> Vec<serde_json::Value> {
            body(self.list(by, &[("limit", "100")]).await.unwrap())["items"]
                .as_array()
                .unwrap()
                .clone()
        }

        pub async fn delete(&self, by: &Who, id: &str) -> ApiResult {
            let req = as_user(by, "DELETE", &[("id", id)], &[], "");
            delete_comment(&self.store, &self.dir, req).await
        }

        pub async fn edit(&self, by: &Who, id: &str, payload: &str) -> ApiResult {
            let req = as_user(by, "PATCH", &[("id", id)], &[], payload);
            edit_comment(&self.store, &self.dir, req).await
        }

        pub async fn like(&self, by: &Who, id: &str) -> ApiResult {
            let req = as_user(by, "POST", &[("id", id)], &[], "");
            like_comment(&self.store, &self.dir, req).await
        }

        pub async fn unlike(&self, by: &Who, id: &str) -> ApiResult {
            let req = as_user(by, "DELETE", &[("id", id)], &[], "");
            unlike_comment(&self.store, req).await
        }

        pub fn event_types(&self) -> Vec<String> {
            self.store
                .events()
                .into_iter()
                .map(|e| e.event_type)
                .collect()
        }
    }

    fn field(err: &ApiError) -> (u16, Option<String>) {
        (err.status(), err.problem().field)
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
        assert!(w.queue.take().is_empty());
        // Exactly 2,200 characters and newlines are fine.
        let ok = format!(r#"{{"text":"{}\nok"}}"#, "é".repeat(2_197));
        assert_eq!(w.create(&w.bob, &w.post, &ok).await.unwrap().status(), 202);
    }

    #[tokio::test]
    async fn a_comment_is_accepted_as_it_will_be_stored_and_then_listed() {
        let w = world();
        let accepted = w
            .comment(
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
        assert_eq!(w.event_types(), vec!["CommentAdded"]);
        let added = &w.store.events()[0];
        assert_eq!(added.aggregate_id, w.post);
        assert_eq!(added.data["comment_id"], accepted["id"]);
        assert_eq!(added.data["author_id"], w.bob.id.as_str());
        assert_eq!(added.data["post_id"], w.post.as_str());
    }

    #[tokio::test]
    async fn replies_to_replies_attach_to_the_top_level_comment_and_list_under_it() {
        let w = world();
        let first = w.comment(&w.bob, "first", None).await;
        let second = w.comment(&w.carol, "second", None).await;
        let first_id = first["id"].as_str().unwrap();
        let reply = w.comment(&w.ann, "reply", Some(first_id)).await;
        assert_eq!(reply["reply_to"], first_id);
        let nested = w
            .comment(&w.carol, "reply to the reply", reply["id"].as_str())
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
        w.dir
            .apply(&Envelope::new(
                "ProfileUpdated",
                &w.ann.id,
                None,
                "c",
                &serde_json::json!({"user_id": w.ann.id, "username": "ann", "private": true}),
            ))
            .await
            .unwrap();
        let err = w
            .create(&w.bob, &w.post, r#"{"text":"hi"}"#)
            .await
            .unwrap_err();
        assert_eq!(err.status(), 404);
        assert_eq!(w.list(&w.bob, &[]).await.unwrap_err().status(), 404);
        w.comment(&w.ann, "my own post", None).await;
        w.comment(&w.staff, "moderator here", None).await;
        assert_eq!(w.list_all(&w.ann).await.len(), 2);
    }

    #[tokio::test]
    async fn the_author_the_posts_author_and_staff_may_delete_strangers_may_not() {
        let w = world();
        for deleter in [&w.bob, &w.ann, &w.staff] {
            let c = w.comment(&w.bob, "doomed", None).await;
            let id = c["id"].as_str().unwrap();
            let err = w.delete(&w.carol, id).await.unwrap_err();
            assert_eq!(err.status(), 403, "a stranger may not delete");
            assert_eq!(w.delete(deleter, id).await.unwrap().status(), 204);
            assert_eq!(w.delete(deleter, id).await.unwrap_err().status(), 404);
        }
        assert!(w.list_all(&w.bob).await.is_empty());
        let deleted: Vec<_> = w
            .store
            .events()
            .into_iter()
            .filter(|e| e.event_type == "CommentDeleted")
            .collect();
        assert_eq!(deleted.len(), 3);
        assert_eq!(deleted[1].data["deleted_by"], w.ann.id.as_str());
        assert_eq!(deleted[1].data["author_id"], w.bob.id.as_str());
        let bad = w.delete(&w.bob, "nope").await.unwrap_err();
        assert_eq!(field(&bad), (400, Some("id".to_owned())));
    }

    #[tokio::test]
    async fn deleting_a_parent_deletes_its_replies_each_with_an_event() {
        let w = world();
        let parent = w.comment(&w.bob, "parent", None).await;
        let pid = parent["id"].as_str().unwrap();
        w.comment(&w.carol, "r1", Some(pid)).await;
        w.comment(&w.ann, "r2", Some(pid)).await;
        w.comment(&w.carol, "other thread", None).await;
        assert_eq!(w.delete(&w.bob, pid).await.unwrap().status(), 204);
        let left: Vec<String> = w
            .list_all(&w.bob)
            .await
            .iter()
            .map(|c| c["text"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(left, vec!["other thread"]);
        let types = w.event_types();
        assert_eq!(types.iter().filter(|t| *t == "CommentDeleted").count(), 3);
        // Deleting a reply leaves its parent.
        let other = w.list_all(&w.bob).await[0]["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let reply = w.comment(&w.bob, "reply", Some(&other)).await;
        w.delete(&w.bob, reply["id"].as_str().unwrap())
            .await
            .unwrap();
        assert_eq!(w.list_all(&w.bob).await.len(), 1);
    }

    #[tokio::test]
    async fn only_the_author_edits_and_the_edit_is_an_event() {
        let w = world();
        let c = w.comment(&w.bob, "first draft", None).await;
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
        assert_eq!(w.event_types(), vec!["CommentAdded", "CommentEdited"]);
        let missing = shutter_core::new_id();
        assert_eq!(
            w.edit(&w.bob, &missing, r#"{"text":"x"}"#)
                .await
                .unwrap_err()
                .status(),
            404
        );
    }

    #[tokio::test]
    async fn liking_a_comment_twice_counts_once() {
        let w = world();
        let c = w.comment(&w.bob, "like me", None).await;
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
        w.unlike(&w.carol, id).await.unwrap();
        w.unlike(&w.carol, id).await.unwrap();
        assert_eq!(w.list_all(&w.ann).await[0]["like_count"], 1);
        let types = w.event_types();
        assert_eq!(types.iter().filter(|t| *t == "CommentLikeAdded").count(), 2);
        assert_eq!(
            types.iter().filter(|t| *t == "CommentLikeRemoved").count(),
            1
        );
        let missing = shutter_core::new_id();
        assert_eq!(w.like(&w.carol, &missing).await.unwrap_err().status(), 404);
    }

    #[tokio::test]
    async fn pages_cover_every_comment_once_and_cursors_cannot_be_forged() {
        let w = world();
        let mut expected = Vec::new();
        for i in 0..3 {
            let top = w.comment(&w.bob, &format!("top {i}"), None).await;
            expected.push(top["id"].as_str().unwrap().to_owned());
            let reply = w
                .comment(&w.carol, &format!("reply {i}"), top["id"].as_str())
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
        let forged = CursorSigner::new(b"not the key".to_vec()).sign(
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
}
