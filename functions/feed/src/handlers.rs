//! `GET /v1/feed`: the viewer's home timeline merged with their celebrities' recent posts.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};
#[allow(unused_imports)] // the OpenAPI attributes name it
use shutter_core::Problem;
use shutter_core::{ApiError, CursorSigner};
use shutter_http::lambda_http::http::StatusCode;
use shutter_http::lambda_http::{Body, Request, Response};
use shutter_http::{ApiRequest, Caller, json};
use shutter_media::MediaStore;
use utoipa::ToSchema;

use crate::store::{Entry, FeedStore};

/// The author as a feed post shows them.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct FeedAuthor {
    pub id: String,
    pub username: String,
    pub display_name: String,
    pub avatar_url: Option<String>,
}

/// A media item of a feed post.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct FeedMedia {
    pub id: String,
    pub content_type: String,
    pub url: String,
    pub thumbnail_url: Option<String>,
}

/// A post as the feed shows it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct FeedPost {
    pub id: String,
    pub author: FeedAuthor,
    pub caption: String,
    pub location: Option<String>,
    pub media: Vec<FeedMedia>,
    pub like_count: i64,
    pub comment_count: i64,
    pub liked_by_me: bool,
    pub published_at: String,
}

/// `GET /v1/feed` answer.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct FeedPage {
    pub items: Vec<FeedPost>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// Where a page resumes: the position of the last entry shown.
#[derive(Debug, Serialize, Deserialize)]
struct Position {
    before: String,
}

/// The newest `limit` of all sources (each newest first), each post once, and the
/// position the next page starts before (none when nothing is left).
pub fn merge(sources: Vec<Vec<Entry>>, limit: usize) -> (Vec<Entry>, Option<String>) {
    let mut all: Vec<Entry> = sources.into_iter().flatten().collect();
    all.sort_by(|a, b| b.position.cmp(&a.position));
    let mut seen = HashSet::new();
    all.retain(|e| seen.insert(e.post_id.clone()));
    let more = all.len() > limit;
    all.truncate(limit);
    let next = if more {
        all.last().map(|e| e.position.clone())
    } else {
        None
    };
    (all, next)
}

/// A position as the store writes it: `<RFC 3339 time>#<ULID>`.
fn is_position(raw: &str) -> bool {
    raw.split_once('#').is_some_and(|(time, id)| {
        time.len() == 24 && time.ends_with('Z') && shutter_core::parse_id("cursor", id).is_ok()
    })
}

/// `GET /v1/feed?limit=&cursor=`.
#[utoipa::path(
    get, path = "/v1/feed", tag = "feed", security(("bearer" = ["user"])),
    summary = "Your home feed, newest first",
    description = "Posts of the people you follow (and your own), each with its author's name and avatar, its counts and whether you like it. Posts deleted since they reached your feed are left out, so a page can be shorter than `limit`; follow `next_cursor` until it is null. A cursor is bound to you: a forged or another user's cursor is a 400.",
    params(
        ("limit" = Option<u16>, Query, description = "Page size, 1 to 100 (default 20)", minimum = 1, maximum = 100),
        ("cursor" = Option<String>, Query, description = "The `next_cursor` of the previous page")
    ),
    responses(
        (status = 200, description = "A page of your feed", body = FeedPage),
        (status = 400, description = "`invalid`: a bad limit or cursor", body = Problem, content_type = "application/problem+json")
    )
)]
#[tracing::instrument(skip_all)]
pub async fn feed<M: MediaStore>(
    store: &FeedStore,
    media: &M,
    signer: &CursorSigner,
    req: Request,
) -> Result<Response<Body>, ApiError> {
    let caller = Caller::from_request(&req)?;
    let page = req.page_request()?;
    let scope = format!("feed:{}", caller.user_id);
    let before = match &page.cursor {
        Some(cursor) => {
            let position: Position = signer.verify(&scope, cursor)?;
            if !is_position(&position.before) {
                return Err(ApiError::invalid(
                    "cursor",
                    "is not a cursor this server issued",
                ));
            }
            Some(position.before)
        }
        None => None,
    };
    let limit = usize::from(page.limit);
    let timeline_pk = format!("TL#{}", caller.user_id);
    let (timeline, celebrities) = futures::try_join!(
        store.entries(&timeline_pk, before.as_deref(), limit + 1),
        store.celebrities_followed(&caller.user_id)
    )?;
    let merged = futures::future::try_join_all(celebrities.iter().map(|c| {
        let pk = format!("RECENT#{c}");
        let before = before.clone();
        async move { store.entries(&pk, before.as_deref(), limit + 1).await }
    }))
    .await?;
    let mut sources = vec![timeline];
    sources.extend(merged);
    let (entries, next) = merge(sources, limit);
    let post_ids: Vec<String> = entries.iter().map(|e| e.post_id.clone()).collect();
    let mut author_ids: Vec<String> = entries.iter().map(|e| e.author_id.clone()).collect();
    author_ids.sort_unstable();
    author_ids.dedup();
    let found = store
        .hydrate(&caller.user_id, &post_ids, &author_ids)
        .await?;
    let mut items = Vec::with_capacity(entries.len());
    for entry in &entries {
        let (Some(post), Some(author)) = (
            found.posts.get(&entry.post_id),
            found.authors.get(&entry.author_id),
        ) else {
            continue;
        };
        let avatar_url = match &author.avatar_key {
            Some(key) => Some(media.view_url(key).await?),
            None => None,
        };
        let mut views = Vec::with_capacity(post.media.len());
        for m in &post.media {
            let thumbnail_url = match &m.thumbnail_key {
                Some(key) => Some(media.view_url(key).await?),
                None => None,
            };
            views.push(FeedMedia {
                id: m.id.clone(),
                content_type: m.content_type.clone(),
                url: media.view_url(&m.display_key).await?,
                thumbnail_url,
            });
        }
        items.push(FeedPost {
            id: post.post_id.clone(),
            author: FeedAuthor {
                id: author.user_id.clone(),
                username: author.username.clone(),
                display_name: author.display_name.clone(),
                avatar_url,
            },
            caption: post.caption.clone(),
            location: post.location.clone(),
            media: views,
            like_count: post.like_count.max(0),
            comment_count: post.comment_count.max(0),
            liked_by_me: found.liked.contains(&post.post_id),
            published_at: post.published_at.clone(),
        });
    }
    let next_cursor = next.map(|before| signer.sign(&scope, &Position { before }));
    json(StatusCode::OK, &FeedPage { items, next_cursor })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn entry(time: &str, post: &str) -> Entry {
        Entry::new(time, post, "a")
    }

    #[test]
    fn pages_merge_newest_first_once_each_and_say_where_to_resume() {
        let timeline = vec![
            entry("2026-11-25T10:00:03.000Z", "p3"),
            entry("2026-11-25T10:00:01.000Z", "p1"),
        ];
        let celebrity = vec![
            entry("2026-11-25T10:00:04.000Z", "p4"),
            entry("2026-11-25T10:00:03.000Z", "p3"),
            entry("2026-11-25T10:00:02.000Z", "p2"),
        ];
        let (page, next) = merge(vec![timeline.clone(), celebrity.clone()], 3);
        let ids: Vec<_> = page.iter().map(|e| e.post_id.as_str()).collect();
        assert_eq!(ids, ["p4", "p3", "p2"]);
        assert_eq!(next.as_deref(), Some("2026-11-25T10:00:02.000Z#p2"));
        let (page, next) = merge(vec![timeline, celebrity], 10);
        assert_eq!(page.len(), 4);
        assert_eq!(next, None);
    }

    #[test]
    fn only_positions_the_store_writes_are_accepted() {
        assert!(is_position(
            "2026-11-25T10:00:02.000Z#01JD0000000000000000PST001"
        ));
        assert!(!is_position("2026-11-25T10:00:02.000Z#p2"));
        assert!(!is_position("zzz#01JD0000000000000000PST001"));
        assert!(!is_position("01JD0000000000000000PST001"));
    }
}
