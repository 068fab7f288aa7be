//! The post endpoints.

use std::collections::HashMap;

use base64::Engine;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
#[allow(unused_imports)] // the OpenAPI attributes name it
use shutter_core::Problem;
use shutter_core::validate::Username;
use shutter_core::{ApiError, CursorSigner, Page};
use shutter_directory::legacy::{Author, Directory, Viewer, may_see};
use shutter_events::legacy::Envelope;
use shutter_http::lambda_http::http::{HeaderValue, StatusCode};
use shutter_http::lambda_http::{Body, Request, Response};
use shutter_http::{ApiRequest, Caller, json};
use shutter_media::{MediaStore, UploadForm};
use shutter_store::dynamodb::types::AttributeValue;
use utoipa::ToSchema;

use crate::model::{
    AuthorView, CreatePost, Media, MediaStatus, MediaView, Mention, Post, PostFacts, PostStatus,
    PostView, UpdatePost, check_caption, check_location, max_bytes,
};
use crate::store::{Created, PostsStore, version_conflict};
use crate::text;

type ApiResult = Result<Response<Body>, ApiError>;

/// What every post endpoint needs.
pub struct Posts<M, D> {
    pub store: PostsStore,
    pub media: M,
    pub directory: D,
    pub cursors: CursorSigner,
}

fn viewer(caller: &Caller) -> Viewer<'_> {
    Viewer {
        user_id: &caller.user_id,
        staff: caller.is_staff(),
    }
}

/// Who may see `post`: its author and staff always; others once it is published and
/// the author's posts are visible to them. An author the directory does not know yet is
/// treated as private.
fn can_see(post: &Post, author_visible: bool, caller: &Caller) -> bool {
    if caller.user_id == post.author_id || caller.is_staff() {
        return true;
    }
    post.status == PostStatus::Published && author_visible
}

fn post_id(req: &Request) -> Result<String, ApiError> {
    let raw = req.path_param("id")?;
    shutter_core::parse_id("id", &raw).map(|id| id.to_string())
}

impl<M: MediaStore, D: Directory> Posts<M, D> {
    async fn author_view(
        &self,
        author_id: &str,
        known: Option<&Author>,
        caller: &Caller,
    ) -> Result<AuthorView, ApiError> {
        let avatar_url = match known.and_then(|a| a.avatar_key.as_deref()) {
            Some(key) => Some(self.media.view_url(key).await?),
            None => None,
        };
        Ok(match known {
            Some(a) => AuthorView {
                id: a.user_id.clone(),
                username: a.username.clone(),
                display_name: a.display_name.clone(),
                avatar_url,
            },
            // Only the author sees a post before the directory knows them.
            None => AuthorView {
                id: author_id.to_owned(),
                username: caller.username.clone(),
                display_name: caller.username.clone(),
                avatar_url,
            },
        })
    }

    async fn media_view(&self, media: &Media) -> Result<MediaView, ApiError> {
        let url = |key: &Option<String>| {
            let key = key.clone();
            async move {
                match (media.status, key) {
                    (MediaStatus::Ready, Some(key)) => self.media.view_url(&key).await.map(Some),
                    _ => Ok(None),
                }
            }
        };
        Ok(MediaView {
            id: media.id.clone(),
            content_type: media.media_type,
            status: media.status,
            url: url(&media.display_key).await?,
            thumbnail_url: url(&media.thumbnail_key).await?,
        })
    }

    async fn view(
        &self,
        post: &Post,
        author: Option<&Author>,
        liked: bool,
        caller: &Caller,
    ) -> Result<PostView, ApiError> {
        let mut media = Vec::with_capacity(post.media.len());
        for m in &post.media {
            media.push(self.media_view(m).await?);
        }
        Ok(PostView {
            id: post.id.clone(),
            author: self.author_view(&post.author_id, author, caller).await?,
            caption: post.caption.clone(),
            location: post.location.clone(),
            hashtags: post.hashtags.clone(),
            mentions: post.mentions.clone(),
            status: post.status,
            media,
            like_count: post.like_count.max(0),
            comment_count: post.comment_count.max(0),
            liked_by_me: liked,
            version: post.version,
            created_at: post.created_at.clone(),
            published_at: post.published_at.clone(),
        })
    }

    /// Views of posts the caller may see, in order, with authors and likes batched.
    async fn views(&self, posts: Vec<Post>, caller: &Caller) -> Result<Vec<PostView>, ApiError> {
        let mut authors: HashMap<String, Option<Author>> = HashMap::new();
        let mut author_visible: HashMap<String, bool> = HashMap::new();
        for post in &posts {
            if !authors.contains_key(&post.author_id) {
                let author = self.directory.author(&post.author_id).await?;
                let seen = self.author_visible(author.as_ref(), caller).await?;
                author_visible.insert(post.author_id.clone(), seen);
                authors.insert(post.author_id.clone(), author);
            }
        }
        let visible: Vec<Post> = posts
            .into_iter()
            .filter(|p| {
                can_see(
                    p,
                    author_visible.get(&p.author_id).copied().unwrap_or(false),
                    caller,
                )
            })
            .collect();
        let ids: Vec<String> = visible.iter().map(|p| p.id.clone()).collect();
        let liked = self.store.liked_by(&caller.user_id, &ids).await?;
        let mut out = Vec::with_capacity(visible.len());
        for post in &visible {
            let author = authors.get(&post.author_id).and_then(Option::as_ref);
            out.push(
                self.view(post, author, liked.contains(&post.id), caller)
                    .await?,
            );
        }
        Ok(out)
    }

    /// Whether the caller may see the author's published posts. An author the directory
    /// does not know yet is treated as private.
    async fn author_visible(
        &self,
        author: Option<&Author>,
        caller: &Caller,
    ) -> Result<bool, ApiError> {
        match author {
            Some(a) => may_see(&self.directory, a, viewer(caller)).await,
            None => Ok(false),
        }
    }

    /// The post if the caller may see it; otherwise 404, so hidden posts are not revealed.
    async fn visible(&self, id: &str, caller: &Caller) -> Result<(Post, Option<Author>), ApiError> {
        let post = self
            .store
            .get(id)
            .await?
            .ok_or(ApiError::NotFound("post"))?;
        let author = self.directory.author(&post.author_id).await?;
        let seen = self.author_visible(author.as_ref(), caller).await?;
        if can_see(&post, seen, caller) {
            Ok((post, author))
        } else {
            Err(ApiError::NotFound("post"))
        }
    }

    async fn resolve_mentions(&self, caption: &str) -> Result<Vec<Mention>, ApiError> {
        let mut found = Vec::new();
        for username in text::mentions(caption) {
            if let Some(author) = self.directory.author_by_username(&username).await? {
                found.push(Mention {
                    user_id: author.user_id,
                    username: author.username,
                });
            }
        }
        Ok(found)
    }

    async fn uploads(&self, post: &Post) -> Result<Vec<MediaUpload>, ApiError> {
        let mut uploads = Vec::new();
        for m in post
            .media
            .iter()
            .filter(|m| m.status == MediaStatus::Pending)
        {
            let form = self
                .media
                .presign_upload(
                    &m.upload_key,
                    m.media_type,
                    max_bytes(m.media_type).min(m.declared_size),
                )
                .await?;
            uploads.push(MediaUpload {
                media_id: m.id.clone(),
                upload: form,
            });
        }
        Ok(uploads)
    }
}

/// Where and how to upload one media item.
#[derive(Debug, Serialize, ToSchema)]
pub struct MediaUpload {
    pub media_id: String,
    pub upload: UploadForm,
}

/// A new post and its upload forms.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedPost {
    pub post: PostView,
    /// One per pending media item: send `upload.fields` plus a `file` part as
    /// multipart/form-data to `upload.url`
    pub uploads: Vec<MediaUpload>,
}

fn idempotency_key(req: &Request) -> Result<Option<String>, ApiError> {
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
    Ok(Some(key.to_owned()))
}

/// `POST /v1/posts` -> 201 with the pending post and an upload form per media item.
#[utoipa::path(
    post, path = "/v1/posts", tag = "posts", security(("bearer" = ["user"])),
    summary = "Create a post and get its upload forms",
    description = "The post stays `pending` until its media are uploaded and checked (real type, size; metadata stripped); then it is `published`. Send the same `Idempotency-Key` header to retry safely: the same post comes back (header `Idempotent-Replayed: true`).",
    params(("Idempotency-Key" = Option<String>, Header, description = "1–64 of [A-Za-z0-9_-]; a retry with it returns the same post")),
    request_body(content = CreatePost, example = json!({"caption": "Sunset #beach with @alice", "location": "Lisbon", "media": [{"content_type": "image/jpeg", "size": 204800}]})),
    responses(
        (status = 201, description = "The pending post and its upload forms", body = CreatedPost),
        (status = 409, description = "The Idempotency-Key was used for a different request, or its post has been deleted", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn create_post<M: MediaStore, D: Directory>(
    deps: &Posts<M, D>,
    req: Request,
) -> ApiResult {
    let caller = Caller::from_request(&req)?;
    let body: CreatePost = req.json()?;
    let declared = body.validate()?;
    let key = idempotency_key(&req)?;
    let hash =
        base64::engine::general_purpose::STANDARD.encode(Sha256::digest(req.body().as_ref()));
    let id = shutter_core::new_id();
    let media = declared
        .into_iter()
        .map(|(media_type, size)| {
            let media_id = shutter_core::new_id();
            Media {
                upload_key: format!(
                    "post-uploads/{}/{id}/{media_id}.{}",
                    caller.user_id,
                    media_type.extension()
                ),
                id: media_id,
                media_type,
                declared_size: size,
                status: MediaStatus::Pending,
                display_key: None,
                thumbnail_key: None,
                reason: None,
            }
        })
        .collect();
    let post = Post {
        id: id.clone(),
        author_id: caller.user_id.to_string(),
        hashtags: text::hashtags(&body.caption),
        mentions: deps.resolve_mentions(&body.caption).await?,
        caption: body.caption,
        location: body.location,
        status: PostStatus::Pending,
        media,
        like_count: 0,
        comment_count: 0,
        version: 1,
        created_at: shutter_core::now_rfc3339(),
        published_at: None,
    };
    let event = Envelope::new(
        "PostCreated",
        &id,
        Some(&caller.user_id),
        &req.correlation_id(),
        &PostFacts::from(&post),
    );
    let created = deps
        .store
        .create(&post, &event, key.as_deref().map(|k| (k, hash.as_str())))
        .await?;
    let (post, replayed) = match created {
        Created::New => (post, false),
        Created::Replayed(first) => (
            deps.store.get(&first).await?.ok_or_else(|| {
                ApiError::conflict(
                    "idempotency_key_reused",
                    "Idempotency-Key",
                    "the post this key created has been deleted",
                )
            })?,
            true,
        ),
    };
    let author = deps.directory.author(&caller.user_id).await?;
    let body = CreatedPost {
        uploads: deps.uploads(&post).await?,
        post: deps.view(&post, author.as_ref(), false, &caller).await?,
    };
    let mut response = json(StatusCode::CREATED, &body)?;
    if replayed {
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
    description = "Published posts of accounts you may see; your own posts in any state.",
    params(("id" = String, Path, description = "The post id (a ULID)")),
    responses((status = 200, description = "The post", body = PostView), (status = 404, description = "No such post, or not one you may see", body = Problem, content_type = "application/problem+json"))
)]
pub async fn get_post<M: MediaStore, D: Directory>(deps: &Posts<M, D>, req: Request) -> ApiResult {
    let caller = Caller::from_request(&req)?;
    let id = post_id(&req)?;
    let (post, author) = deps.visible(&id, &caller).await?;
    let liked = deps
        .store
        .liked_by(&caller.user_id, std::slice::from_ref(&post.id))
        .await?;
    json(
        StatusCode::OK,
        &deps
            .view(&post, author.as_ref(), liked.contains(&post.id), &caller)
            .await?,
    )
}

/// `PATCH /v1/posts/{id}` {caption?, location?, version}: the author only.
#[utoipa::path(
    patch, path = "/v1/posts/{id}", tag = "posts", security(("bearer" = ["user"])),
    summary = "Edit your post's caption or location",
    description = "Send the `version` you read: if the post changed since, 409 `version_conflict` (read it again). Emits `PostUpdated`.",
    params(("id" = String, Path, description = "The post id (a ULID)")),
    request_body(content = UpdatePost, example = json!({"caption": "Sunset again #beach", "version": 3})),
    responses(
        (status = 200, description = "The post after the change", body = PostView),
        (status = 403, description = "Not your post", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such post", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The post changed since you read it", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn update_post<M: MediaStore, D: Directory>(
    deps: &Posts<M, D>,
    req: Request,
) -> ApiResult {
    let caller = Caller::from_request(&req)?;
    let id = post_id(&req)?;
    let patch: UpdatePost = req.json()?;
    let (before, author) = deps.visible(&id, &caller).await?;
    if before.author_id != caller.user_id {
        return Err(ApiError::Forbidden);
    }
    if patch.version != before.version {
        return Err(version_conflict());
    }
    let mut post = before.clone();
    if let Some(caption) = &patch.caption {
        check_caption(caption)?;
        post.hashtags = text::hashtags(caption);
        post.mentions = deps.resolve_mentions(caption).await?;
        post.caption = caption.clone();
    }
    if let Some(location) = &patch.location {
        check_location(location.as_deref())?;
        post.location = location.clone();
    }
    if post != before {
        post.version += 1;
        let event = Envelope::new(
            "PostUpdated",
            &id,
            Some(&caller.user_id),
            &req.correlation_id(),
            &PostFacts::from(&post),
        );
        deps.store
            .save(before.version, &before, &post, &[event])
            .await?;
    }
    let liked = deps
        .store
        .liked_by(&caller.user_id, std::slice::from_ref(&post.id))
        .await?;
    json(
        StatusCode::OK,
        &deps
            .view(&post, author.as_ref(), liked.contains(&post.id), &caller)
            .await?,
    )
}

#[derive(Debug, Serialize, Deserialize)]
struct PostDeleted {
    post_id: String,
    author_id: String,
    deleted_by: String,
}

/// `DELETE /v1/posts/{id}`: the author, a moderator or an admin.
#[utoipa::path(
    delete, path = "/v1/posts/{id}", tag = "posts", security(("bearer" = ["user"])),
    summary = "Delete a post",
    description = "The author, a moderator or an admin. Its media, likes and comments go too (through `PostDeleted`).",
    params(("id" = String, Path, description = "The post id (a ULID)")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = "Not your post", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such post", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn delete_post<M: MediaStore, D: Directory>(
    deps: &Posts<M, D>,
    req: Request,
) -> ApiResult {
    let caller = Caller::from_request(&req)?;
    let id = post_id(&req)?;
    let (post, _) = deps.visible(&id, &caller).await?;
    if post.author_id != caller.user_id && !caller.is_staff() {
        return Err(ApiError::Forbidden);
    }
    let data = PostDeleted {
        post_id: post.id.clone(),
        author_id: post.author_id.clone(),
        deleted_by: caller.user_id.to_string(),
    };
    let event = Envelope::new(
        "PostDeleted",
        &id,
        Some(&caller.user_id),
        &req.correlation_id(),
        &data,
    );
    deps.store.delete_post(&post, &event).await?;
    shutter_http::no_content()
}

/// Where a list resumes: the last sort key served.
#[derive(Debug, Serialize, Deserialize)]
struct After {
    sk: String,
}

impl<M: MediaStore, D: Directory> Posts<M, D> {
    async fn index_list(
        &self,
        req: &Request,
        caller: &Caller,
        pk: &str,
        scope: &str,
        published_only: bool,
    ) -> ApiResult {
        let page = req.page_request()?;
        let after = match page.cursor.as_deref() {
            Some(c) => Some(self.cursors.verify::<After>(scope, c)?.sk),
            None => None,
        };
        let (items, more) = self
            .store
            .index_page(pk, page.limit.into(), after.as_deref())
            .await?;
        let last = items.last().and_then(|i| match i.get("sk") {
            Some(AttributeValue::S(sk)) => Some(sk.clone()),
            _ => None,
        });
        let ids: Vec<String> = items
            .iter()
            .filter(|i| {
                !published_only
                    || !matches!(i.get("status"), Some(AttributeValue::S(st)) if st != "published")
            })
            .filter_map(|i| match i.get("post_id") {
                Some(AttributeValue::S(id)) => Some(id.clone()),
                _ => None,
            })
            .collect();
        let posts = self.store.many(&ids).await?;
        let posts = posts
            .into_iter()
            .filter(|p| !published_only || p.status == PostStatus::Published)
            .collect();
        let next_cursor = match (more, last) {
            (true, Some(sk)) => Some(self.cursors.sign(scope, &After { sk })),
            _ => None,
        };
        json(
            StatusCode::OK,
            &Page {
                items: self.views(posts, caller).await?,
                next_cursor,
            },
        )
    }
}

/// `GET /v1/users/{username}/posts`: newest first, cursor paged.
#[utoipa::path(
    get, path = "/v1/users/{username}/posts", tag = "posts", security(("bearer" = ["user"])),
    summary = "A user's posts, newest first",
    description = "Published posts (yours in any state). A private account's posts only to the account itself until follows land. `?limit=` 1–100 (20), `?cursor=` from `next_cursor`.",
    params(
        ("username" = Username, Path, description = "The username"),
        ("limit" = Option<u16>, Query, description = "1–100, default 20"),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page")
    ),
    responses(
        (status = 200, description = "A page of posts: `{items, next_cursor}`", body = PostPage),
        (status = 403, description = "A private account", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such user", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn posts_by_author<M: MediaStore, D: Directory>(
    deps: &Posts<M, D>,
    req: Request,
) -> ApiResult {
    let caller = Caller::from_request(&req)?;
    let raw = req.path_param("username")?;
    let username = Username::try_from(raw).map_err(|why| ApiError::invalid("username", why))?;
    let author = deps
        .directory
        .author_by_username(username.as_str())
        .await?
        .ok_or(ApiError::NotFound("user"))?;
    if !may_see(&deps.directory, &author, viewer(&caller)).await? {
        return Err(ApiError::Forbidden);
    }
    let own = author.user_id == caller.user_id;
    let pk = format!("AUTHOR#{}", author.user_id);
    deps.index_list(
        &req,
        &caller,
        &pk,
        &format!("author:{}", author.user_id),
        !own,
    )
    .await
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
pub async fn posts_by_hashtag<M: MediaStore, D: Directory>(
    deps: &Posts<M, D>,
    req: Request,
) -> ApiResult {
    let caller = Caller::from_request(&req)?;
    let raw = req.path_param("tag")?;
    let tag = text::normalise_tag(&raw)
        .ok_or_else(|| ApiError::invalid("tag", "must be 1–100 letters, digits or '_'"))?;
    deps.index_list(
        &req,
        &caller,
        &format!("TAG#{tag}"),
        &format!("tag:{tag}"),
        true,
    )
    .await
}

/// A page of posts.
#[derive(Debug, Serialize, ToSchema)]
pub struct PostPage {
    pub items: Vec<PostView>,
    pub next_cursor: Option<String>,
}
