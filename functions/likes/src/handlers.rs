//! The like endpoints: parse, check visibility, apply the like rule, answer.

use serde::{Deserialize, Serialize};
#[allow(unused_imports)] // the OpenAPI attributes name it
use shutter_core::Problem;
use shutter_core::{ApiError, CursorSigner};
use shutter_directory::legacy::{Directory, Viewer, visible_post};
use shutter_http::lambda_http::http::StatusCode;
use shutter_http::lambda_http::{Body, Request, Response};
use shutter_http::{ApiRequest, Caller, json};

use crate::model::{LikeRequest, LikeStatus, Liker, LikersPage, transition};
use crate::store::{Commit, LikesStore};

type ApiResult = Result<Response<Body>, ApiError>;

/// How often a like is read and written again when a racing request changed it meanwhile.
const MAX_ATTEMPTS: usize = 5;

/// The `{id}` of the path as a canonical ULID (400 naming `id` otherwise).
fn post_id(req: &Request) -> Result<String, ApiError> {
    Ok(shutter_core::parse_id("id", &req.path_param("id")?)?.to_string())
}

fn viewer(caller: &Caller) -> Viewer<'_> {
    Viewer {
        user_id: &caller.user_id,
        staff: caller.is_staff(),
    }
}

/// `PUT /v1/posts/{id}/like`: the caller likes the post, once however often they ask.
#[utoipa::path(
    put, path = "/v1/posts/{id}/like", tag = "likes", security(("bearer" = ["user"])),
    summary = "Like a post",
    description = "Idempotent: liking a post you already like changes nothing. Emits `LikeAdded` when the like is new.",
    params(("id" = String, Path, description = "The post id (a ULID)", pattern = "^[0-7][0-9A-HJKMNP-TV-Za-hjkmnp-tv-z]{25}$")),
    responses(
        (status = 200, description = "You like the post", body = LikeStatus, example = json!({"post_id": "01JD0000000000000000PST001", "liked": true})),
        (status = 404, description = "No such published post, or one you may not see", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`concurrent_update`: the like kept changing meanwhile; retry", body = Problem, content_type = "application/problem+json")
    )
)]
#[tracing::instrument(skip_all)]
pub async fn like<D: Directory, S: LikesStore>(dir: &D, store: &S, req: Request) -> ApiResult {
    set_like(dir, store, req, true).await
}

/// `DELETE /v1/posts/{id}/like`: the caller no longer likes the post.
#[utoipa::path(
    delete, path = "/v1/posts/{id}/like", tag = "likes", security(("bearer" = ["user"])),
    summary = "Take back your like of a post",
    description = "Idempotent: unliking a post you do not like changes nothing. Emits `LikeRemoved` when a like existed. A like can always be taken back, even from a post you may no longer see.",
    params(("id" = String, Path, description = "The post id (a ULID)", pattern = "^[0-7][0-9A-HJKMNP-TV-Za-hjkmnp-tv-z]{25}$")),
    responses(
        (status = 200, description = "You do not like the post", body = LikeStatus, example = json!({"post_id": "01JD0000000000000000PST001", "liked": false})),
        (status = 404, description = "No such published post, or one you may not see", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`concurrent_update`: the like kept changing meanwhile; retry", body = Problem, content_type = "application/problem+json")
    )
)]
#[tracing::instrument(skip_all)]
pub async fn unlike<D: Directory, S: LikesStore>(dir: &D, store: &S, req: Request) -> ApiResult {
    set_like(dir, store, req, false).await
}

async fn set_like<D: Directory, S: LikesStore>(
    dir: &D,
    store: &S,
    req: Request,
    liked: bool,
) -> ApiResult {
    let caller = Caller::from_request(&req)?;
    let post_id = post_id(&req)?;
    let correlation_id = req.correlation_id();
    let viewer = viewer(&caller);
    let (mut current, author_id) = if liked {
        // Both reads at once: a like needs the post visible whatever its state.
        let (current, (post, _)) = futures::try_join!(
            store.state(&post_id, &caller.user_id),
            visible_post(dir, &post_id, viewer)
        )?;
        (current, post.author_id)
    } else {
        let current = store.state(&post_id, &caller.user_id).await?;
        let author_id = match &current {
            // One's own like may always be taken back.
            Some(c) if c.liked => c.post_author_id.clone(),
            _ => visible_post(dir, &post_id, viewer).await?.0.author_id,
        };
        (current, author_id)
    };
    let request = LikeRequest {
        post_id: &post_id,
        post_author_id: &author_id,
        user_id: &caller.user_id,
        username: &caller.username,
        liked,
    };
    for _ in 0..MAX_ATTEMPTS {
        let Some(next) = transition(current.as_ref(), &request) else {
            return json(StatusCode::OK, &LikeStatus { post_id, liked });
        };
        let event = next.event(Some(&caller.user_id), &correlation_id);
        if store.commit(current.as_ref(), &next, &event).await? == Commit::Done {
            tracing::info!(post_id = %post_id, seq = next.seq, event_id = %event.id, liked, "like changed");
            return json(StatusCode::OK, &LikeStatus { post_id, liked });
        }
        // A racing request changed the like: decide again on what it left.
        current = store.state(&post_id, &caller.user_id).await?;
    }
    Err(ApiError::conflict(
        "concurrent_update",
        "like",
        "the like kept changing meanwhile; retry",
    ))
}

/// Where a likers page resumes: the list position of the last entry shown.
#[derive(Debug, Serialize, Deserialize)]
struct Position {
    after: String,
}

fn cursor_scope(post_id: &str) -> String {
    format!("likes:{post_id}")
}

/// `GET /v1/posts/{id}/likes?limit=&cursor=`: who likes the post, newest first.
#[utoipa::path(
    get, path = "/v1/posts/{id}/likes", tag = "likes", security(("bearer" = ["user"])),
    summary = "Who likes a post, newest first",
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
pub async fn likers<D: Directory, S: LikesStore>(
    dir: &D,
    store: &S,
    signer: &CursorSigner,
    req: Request,
) -> ApiResult {
    let caller = Caller::from_request(&req)?;
    let post_id = post_id(&req)?;
    let page = req.page_request()?;
    let scope = cursor_scope(&post_id);
    let after = match &page.cursor {
        Some(c) => {
            let position: Position = signer.verify(&scope, c)?;
            if !position.after.starts_with("LIKED#") {
                return Err(ApiError::invalid(
                    "cursor",
                    "is not a cursor this server issued",
                ));
            }
            Some(position.after)
        }
        None => None,
    };
    visible_post(dir, &post_id, viewer(&caller)).await?;
    let limit = usize::from(page.limit);
    let mut entries = store.likers(&post_id, after.as_deref(), limit + 1).await?;
    let next_cursor = if entries.len() > limit {
        entries.truncate(limit);
        entries.last().map(|e| {
            signer.sign(
                &scope,
                &Position {
                    after: e.position.clone(),
                },
            )
        })
    } else {
        None
    };
    // Names are read fresh from the directory (they change); one who is not in it yet
    // shows with the username they liked under.
    let authors =
        futures::future::try_join_all(entries.iter().map(|e| dir.author(&e.user_id))).await?;
    let items = entries
        .into_iter()
        .zip(authors)
        .map(|(entry, author)| {
            let (username, display_name) = match author {
                Some(a) => (a.username, a.display_name),
                None => (entry.username.clone(), entry.username),
            };
            Liker {
                user_id: entry.user_id,
                username,
                display_name,
                liked_at: entry.liked_at,
            }
        })
        .collect();
    json(StatusCode::OK, &LikersPage { items, next_cursor })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::store::memory::MemoryLikesStore;
    use shutter_directory::legacy::{Author, MemoryDirectory, PostRef};
    use shutter_http::test_support::api_request;

    struct World {
        dir: MemoryDirectory,
        store: MemoryLikesStore,
        signer: CursorSigner,
        author: String,
        post: String,
    }

    fn author(id: &str, name: &str, private: bool) -> Author {
        Author {
            user_id: id.to_owned(),
            username: name.to_owned(),
            display_name: name.to_uppercase(),
            private,
            avatar_key: None,
        }
    }

    /// GIVEN a published post by `ann` (private or not).
    fn world(private: bool) -> World {
        let dir = MemoryDirectory::default();
        let author_id = shutter_core::new_id();
        dir.add_author(author(&author_id, "ann", private));
        let post = shutter_core::new_id();
        dir.add_post(PostRef {
            post_id: post.clone(),
            author_id: author_id.clone(),
        });
        World {
            dir,
            store: MemoryLikesStore::default(),
            signer: CursorSigner::new(b"test key".to_vec()),
            author: author_id,
            post,
        }
    }

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
        use shutter_http::lambda_http::RequestExt;
        let params: std::collections::HashMap<String, String> = query
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        req.with_query_string_parameters(params)
    }

    fn body(resp: Response<Body>) -> serde_json::Value {
        serde_json::from_slice(resp.body().as_ref()).unwrap()
    }

    impl World {
        async fn like(&self, user: &str) -> Result<serde_json::Value, ApiError> {
            like(
                &self.dir,
                &self.store,
                as_user(user, "user", "PUT", &self.post, ""),
            )
            .await
            .map(body)
        }
        async fn unlike(&self, user: &str) -> Result<serde_json::Value, ApiError> {
            unlike(
                &self.dir,
                &self.store,
                as_user(user, "user", "DELETE", &self.post, ""),
            )
            .await
            .map(body)
        }
        async fn likers(&self, user: &str, query: &str) -> Result<serde_json::Value, ApiError> {
            likers(
                &self.dir,
                &self.store,
                &self.signer,
                as_user(user, "user", "GET", &self.post, query),
            )
            .await
            .map(body)
        }
        fn events(&self) -> Vec<(String, u64)> {
            self.store
                .events()
                .iter()
                .map(|e| (e.event_type.clone(), e.data["seq"].as_u64().unwrap()))
                .collect()
        }
    }

    #[tokio::test]
    async fn liking_twice_stores_one_like_and_emits_one_event() {
        let w = world(false);
        let bob = shutter_core::new_id();
        for _ in 0..2 {
            let j = w.like(&bob).await.unwrap();
            assert_eq!(
                (j["post_id"].as_str(), j["liked"].as_bool()),
                (Some(w.post.as_str()), Some(true))
            );
        }
        assert_eq!(w.events(), [("LikeAdded".to_owned(), 1)]);
        let event = &w.store.events()[0];
        assert_eq!(event.aggregate_id, w.post);
        assert_eq!(event.actor.as_deref(), Some(bob.as_str()));
        assert_eq!(event.correlation_id, "test-request");
        assert_eq!(event.data["post_author_id"], w.author.as_str());
        assert_eq!(event.data["user_id"], bob.as_str());
        let page = w.likers(&bob, "").await.unwrap();
        assert_eq!(page["items"].as_array().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn unliking_without_a_like_emits_nothing_and_seq_counts_every_change() {
        let w = world(false);
        let bob = shutter_core::new_id();
        let j = w.unlike(&bob).await.unwrap();
        assert_eq!(j["liked"], false);
        assert!(w.events().is_empty(), "no like existed: no event");
        w.like(&bob).await.unwrap();
        w.unlike(&bob).await.unwrap();
        w.unlike(&bob).await.unwrap();
        w.like(&bob).await.unwrap();
        assert_eq!(
            w.events(),
            [("LikeAdded", 1), ("LikeRemoved", 2), ("LikeAdded", 3)]
                .map(|(t, s)| (t.to_owned(), s))
        );
    }

    #[tokio::test]
    async fn a_stale_write_never_lands_so_racing_requests_emit_once() {
        let w = world(false);
        let bob = shutter_core::new_id();
        let request = LikeRequest {
            post_id: &w.post,
            post_author_id: &w.author,
            user_id: &bob,
            username: "bob",
            liked: true,
        };
        // Two requests both read "no like" and both try to write seq 1.
        let first = transition(None, &request).unwrap();
        let second = transition(None, &request).unwrap();
        assert_eq!(
            w.store
                .commit(None, &first, &first.event(None, "a"))
                .await
                .unwrap(),
            Commit::Done
        );
        assert_eq!(
            w.store
                .commit(None, &second, &second.event(None, "b"))
                .await
                .unwrap(),
            Commit::Stale
        );
        // The loser reads again, finds the like and changes nothing.
        w.like(&bob).await.unwrap();
        assert_eq!(w.events().len(), 1);
    }

    #[tokio::test]
    async fn a_private_accounts_posts_are_404_to_others_but_not_to_the_author_or_staff() {
        let w = world(true);
        let mallory = shutter_core::new_id();
        assert_eq!(w.like(&mallory).await.unwrap_err().status(), 404);
        assert_eq!(w.likers(&mallory, "").await.unwrap_err().status(), 404);
        assert_eq!(w.unlike(&mallory).await.unwrap_err().status(), 404);
        assert!(w.events().is_empty());
        w.like(&w.author).await.unwrap();
        let moderator = shutter_core::new_id();
        let req = as_user(&moderator, "user moderator", "GET", &w.post, "");
        let page = body(likers(&w.dir, &w.store, &w.signer, req).await.unwrap());
        assert_eq!(page["items"][0]["user_id"], w.author.as_str());
        assert_eq!(page["items"][0]["display_name"], "ANN");
    }

    #[tokio::test]
    async fn unknown_or_unpublished_posts_are_404_and_bad_ids_400() {
        let w = world(false);
        let bob = shutter_core::new_id();
        let unknown = shutter_core::new_id();
        let err = like(&w.dir, &w.store, as_user(&bob, "user", "PUT", &unknown, ""))
            .await
            .unwrap_err();
        assert_eq!(err.status(), 404);
        for bad in ["not-a-ulid", "", "01JD00000000000000000000000000"] {
            let err = like(&w.dir, &w.store, as_user(&bob, "user", "PUT", bad, ""))
                .await
                .unwrap_err();
            assert_eq!(
                (err.status(), err.problem().field.as_deref()),
                (400, Some("id")),
                "{bad:?}"
            );
        }
        let anonymous = api_request("PUT", "/", &[("id", &w.post)], "", None);
        assert_eq!(
            like(&w.dir, &w.store, anonymous)
                .await
                .unwrap_err()
                .status(),
            401
        );
        assert!(w.events().is_empty());
    }

    #[tokio::test]
    async fn likers_are_paged_newest_first_with_signed_cursors() {
        let w = world(false);
        let users: Vec<String> = (0..5).map(|_| shutter_core::new_id()).collect();
        for u in &users {
            w.like(u).await.unwrap();
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
        w.dir.add_author(author(&users[4], "eve", false));
        let mut seen = Vec::new();
        let mut query = "limit=2".to_owned();
        loop {
            let page = w.likers(&users[0], &query).await.unwrap();
            for item in page["items"].as_array().unwrap() {
                seen.push(item["user_id"].as_str().unwrap().to_owned());
            }
            match page["next_cursor"].as_str() {
                Some(c) => query = format!("limit=2&cursor={c}"),
                None => break,
            }
        }
        let newest_first: Vec<String> = users.iter().rev().cloned().collect();
        assert_eq!(seen, newest_first);
        let first = w.likers(&users[0], "limit=1").await.unwrap();
        assert_eq!(
            first["items"][0]["username"], "eve",
            "names come from the directory"
        );
        assert_eq!(first["items"][1], serde_json::Value::Null);

        // A forged cursor, a cursor of another post's list, and a bad limit are 400s.
        let other = CursorSigner::new(b"test key".to_vec()).sign(
            &cursor_scope(&shutter_core::new_id()),
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
        for (query, field) in [
            (format!("cursor={forged}"), "cursor"),
            (format!("cursor={other}"), "cursor"),
            ("cursor=garbage".to_owned(), "cursor"),
            ("limit=0".to_owned(), "limit"),
            ("limit=101".to_owned(), "limit"),
        ] {
            let err = w.likers(&users[0], &query).await.unwrap_err();
            assert_eq!(
                (err.status(), err.problem().field.as_deref()),
                (400, Some(field)),
                "{query}"
            );
        }
    }

    #[tokio::test]
    async fn a_like_can_be_taken_back_after_the_post_turned_private() {
        let w = world(false);
        let bob = shutter_core::new_id();
        w.like(&bob).await.unwrap();
        w.dir.add_author(author(&w.author, "ann", true));
        assert_eq!(w.like(&bob).await.unwrap_err().status(), 404);
        assert_eq!(w.unlike(&bob).await.unwrap()["liked"], false);
        assert_eq!(w.events().last().unwrap(), &("LikeRemoved".to_owned(), 2));
    }
}
