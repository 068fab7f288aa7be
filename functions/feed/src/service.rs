//! The read use case: a page of the viewer's home feed, their timeline merged with the
//! recent posts of the celebrities they follow, each post with its author, counts, media
//! and whether the viewer likes it.

use serde::{Deserialize, Serialize};
use shutter_core::{ApiError, PageRequest, PostId, UserId};
use shutter_directory::Author;
use shutter_media::MediaStore;

use crate::App;
use crate::errors;
use crate::model::{FeedAuthor, FeedMedia, FeedPage, FeedPost, PostCopy, is_position, merge};
use crate::store::FeedReader;

/// Where a page resumes: the position of the last entry shown.
#[derive(Debug, Serialize, Deserialize)]
struct Position {
    before: String,
}

/// A cursor is bound to its viewer: another user's cursor does not verify.
fn cursor_scope(viewer: &UserId) -> String {
    format!("feed:{viewer}")
}

impl<S: FeedReader, M: MediaStore> App<S, M> {
    /// A page of `viewer`'s feed, newest first. Posts deleted or removed by staff since
    /// they reached the timeline (both tombstone the copy: [`crate::fanout`]), posts of
    /// deleted accounts, of banned accounts (but the viewer's own), and a private
    /// account's posts unless the viewer follows it are left out (a page may be short). The last is read-time
    /// filtering on this service's copies: a post fanned out while they were stale (a
    /// follow of the window before a privacy change arrived, a fan-out racing an unfollow)
    /// is not shown once they are up to date, whether or not its entry was taken out yet.
    pub async fn feed(&self, viewer: &UserId, page: PageRequest) -> Result<FeedPage, ApiError> {
        let scope = cursor_scope(viewer);
        let before = match &page.cursor {
            Some(cursor) => Some(self.resume_position(&scope, cursor).await?),
            None => None,
        };
        let before = before.as_deref();
        let limit = usize::from(page.limit);
        let (timeline, celebrities) = futures::try_join!(
            self.store.timeline(viewer, before, limit + 1),
            self.store.celebrities_followed(viewer)
        )
        .map_err(errors::api)?;
        let merged = futures::future::try_join_all(
            celebrities
                .iter()
                .map(|c| self.store.recent(c, before, limit + 1)),
        )
        .await
        .map_err(errors::api)?;
        let mut sources = vec![timeline];
        sources.extend(merged);
        let (entries, next) = merge(sources, limit);
        let post_ids: Vec<PostId> = entries.iter().map(|e| e.post_id.clone()).collect();
        let mut author_ids: Vec<UserId> = entries.iter().map(|e| e.author_id.clone()).collect();
        author_ids.sort_unstable();
        author_ids.dedup();
        let found = self
            .store
            .hydrate(viewer, &post_ids, &author_ids)
            .await
            .map_err(errors::api)?;
        let mut items = Vec::with_capacity(entries.len());
        for entry in &entries {
            let (Some(post), Some(author)) = (
                found.posts.get(&entry.post_id),
                found.authors.get(&entry.author_id),
            ) else {
                continue;
            };
            let others = author.user_id != *viewer;
            if others && author.private && !found.followed.contains(&author.user_id) {
                continue;
            }
            // A banned author's posts are hidden from others while the ban holds; they
            // come back, entries untouched, when it is lifted.
            if others && found.banned.contains(&author.user_id) {
                continue;
            }
            let liked = found.liked.contains(&post.post_id);
            items.push(self.shown(post, author, liked).await?);
        }
        let next_cursor = match next {
            Some(before) => Some(
                self.cursors
                    .signer()
                    .await?
                    .sign(&scope, &Position { before }),
            ),
            None => None,
        };
        Ok(FeedPage { items, next_cursor })
    }

    /// The position a client's cursor resumes from: a 400 unless this server signed it
    /// for this viewer.
    async fn resume_position(&self, scope: &str, cursor: &str) -> Result<String, ApiError> {
        let position: Position = self.cursors.signer().await?.verify(scope, cursor)?;
        if !is_position(&position.before) {
            return Err(ApiError::invalid(
                "cursor",
                "is not a cursor this server issued",
            ));
        }
        Ok(position.before)
    }

    async fn url(&self, key: &str) -> Result<String, ApiError> {
        self.media.view_url(key).await.map_err(errors::api)
    }

    /// A post as the feed shows it, its media as URLs the viewer can fetch.
    async fn shown(
        &self,
        post: &PostCopy,
        author: &Author,
        liked_by_me: bool,
    ) -> Result<FeedPost, ApiError> {
        let avatar_url = match &author.avatar_key {
            Some(key) => Some(self.url(key).await?),
            None => None,
        };
        let mut media = Vec::with_capacity(post.media.len());
        for m in &post.media {
            let thumbnail_url = match &m.thumbnail_key {
                Some(key) => Some(self.url(key).await?),
                None => None,
            };
            media.push(FeedMedia {
                id: m.id.clone(),
                content_type: m.content_type.clone(),
                url: self.url(&m.display_key).await?,
                thumbnail_url,
            });
        }
        Ok(FeedPost {
            id: post.post_id.clone(),
            author: FeedAuthor {
                id: author.user_id.clone(),
                username: author.username.clone(),
                display_name: author.display_name.clone(),
                avatar_url,
            },
            caption: post.caption.clone(),
            location: post.location.clone(),
            media,
            // Counts are kept from deltas; a reordering never shows below zero.
            like_count: post.like_count.max(0),
            comment_count: post.comment_count.max(0),
            liked_by_me,
            published_at: post.published_at.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use shutter_core::{CursorSigner, MediaId, PageRequest};
    use shutter_events::MediaFacts;
    use shutter_media::MemoryMedia;

    use super::*;
    use crate::model::{Entry, PairMarker};
    use crate::store::{FeedStore, MemoryFeedStore};

    type TestApp = App<MemoryFeedStore, MemoryMedia>;

    fn app() -> TestApp {
        App {
            store: MemoryFeedStore::default(),
            media: MemoryMedia::default(),
            cursors: shutter_store::CursorKey::ready(CursorSigner::new(b"test-key".to_vec())),
        }
    }

    fn author(app: &TestApp, name: &str, avatar: Option<&str>) -> UserId {
        let id = UserId::generate();
        app.store.add_author(Author {
            user_id: id.clone(),
            username: name.to_owned(),
            display_name: name.to_uppercase(),
            private: false,
            avatar_key: avatar.map(str::to_owned),
            version: 0,
            private_since: None,
        });
        id
    }

    /// A post by `author` published at second `second`, stored and returned with its entry.
    async fn post(app: &TestApp, author: &UserId, second: u32) -> Entry {
        let copy = PostCopy {
            post_id: PostId::generate(),
            author_id: author.clone(),
            caption: format!("post at {second}"),
            location: None,
            media: vec![],
            published_at: format!("2026-11-25T10:00:{second:02}.000Z"),
            version: 1,
            like_count: 0,
            comment_count: 0,
            deleted: false,
        };
        app.store.put_post(&copy).await.unwrap();
        copy.entry()
    }

    fn page(limit: u16, cursor: Option<&str>) -> PageRequest {
        PageRequest {
            limit,
            cursor: cursor.map(str::to_owned),
        }
    }

    fn ids(page: &FeedPage) -> Vec<PostId> {
        page.items.iter().map(|p| p.id.clone()).collect()
    }

    #[tokio::test]
    async fn a_page_merges_the_timeline_with_followed_celebrities_newest_first() {
        // GIVEN bob's timeline holds two posts of ann's, and bob follows a celebrity
        // whose post sits between them (merged at read time), and bob likes ann's newest.
        let app = app();
        let bob = author(&app, "bob", None);
        let ann = author(&app, "ann", Some("avatars/ann.png"));
        let star = author(&app, "star", None);
        let older = post(&app, &ann, 1).await;
        let newest = post(&app, &ann, 3).await;
        let starred = post(&app, &star, 2).await;
        app.store
            .add_to_timelines(std::slice::from_ref(&bob), &[older.clone(), newest.clone()])
            .await
            .unwrap();
        app.store.add_recent(&starred).await.unwrap();
        app.store
            .list_celebrity(std::slice::from_ref(&bob), &star)
            .await
            .unwrap();
        app.store
            .set_liked(
                &bob,
                &newest.post_id,
                PairMarker {
                    seq: 1,
                    holds: true,
                },
            )
            .await
            .unwrap();

        // WHEN bob reads his feed
        let feed = app.feed(&bob, page(20, None)).await.unwrap();

        // THEN all three show, newest first, each with its author; only the liked one
        // says so; it is the last page.
        assert_eq!(
            ids(&feed),
            [newest.post_id.clone(), starred.post_id, older.post_id]
        );
        let first = &feed.items[0];
        assert_eq!(first.author.id, ann);
        assert_eq!(first.author.display_name, "ANN");
        assert_eq!(
            first.author.avatar_url.as_deref(),
            Some("https://s3.test/media/avatars/ann.png")
        );
        assert_eq!(first.published_at, "2026-11-25T10:00:03.000Z");
        let liked: Vec<bool> = feed.items.iter().map(|p| p.liked_by_me).collect();
        assert_eq!(liked, [true, false, false]);
        assert_eq!(feed.next_cursor, None);
    }

    #[tokio::test]
    async fn media_are_shown_as_urls_and_counts_never_below_zero() {
        let app = app();
        let bob = author(&app, "bob", None);
        let mut copy = PostCopy {
            post_id: PostId::generate(),
            author_id: bob.clone(),
            caption: "beach".into(),
            location: Some("Porto".into()),
            media: vec![MediaFacts {
                id: MediaId::generate(),
                content_type: "image/jpeg".into(),
                display_key: "media/1.jpg".into(),
                thumbnail_key: Some("media/1-thumb.jpg".into()),
            }],
            published_at: "2026-11-25T10:00:00.000Z".into(),
            version: 1,
            like_count: 0,
            comment_count: 0,
            deleted: false,
        };
        app.store.put_post(&copy).await.unwrap();
        // A removal counted before its like (deltas can arrive in any order).
        let change = shutter_events::EngagementChanged {
            post_id: copy.post_id.clone(),
            like_delta: -1,
            comment_delta: 2,
        };
        app.store
            .add_engagement("test", &shutter_core::EventId::generate(), &change)
            .await
            .unwrap();
        copy.like_count = -1;
        app.store
            .add_to_timelines(std::slice::from_ref(&bob), &[copy.entry()])
            .await
            .unwrap();

        let feed = app.feed(&bob, page(20, None)).await.unwrap();

        let shown = &feed.items[0];
        assert_eq!(shown.media[0].url, "https://s3.test/media/media/1.jpg");
        assert_eq!(
            shown.media[0].thumbnail_url.as_deref(),
            Some("https://s3.test/media/media/1-thumb.jpg")
        );
        assert_eq!((shown.like_count, shown.comment_count), (0, 2));
        assert_eq!(shown.location.as_deref(), Some("Porto"));
    }

    #[tokio::test]
    async fn pages_resume_where_the_last_ended_and_cursors_are_bound_to_their_viewer() {
        // GIVEN three posts in bob's timeline
        let app = app();
        let bob = author(&app, "bob", None);
        let cat = author(&app, "cat", None);
        let mut entries = Vec::new();
        for second in 1..=3 {
            entries.push(post(&app, &bob, second).await);
        }
        app.store
            .add_to_timelines(std::slice::from_ref(&bob), &entries)
            .await
            .unwrap();

        // WHEN he reads two at a time
        let first = app.feed(&bob, page(2, None)).await.unwrap();
        let cursor = first.next_cursor.clone().unwrap();
        let second = app.feed(&bob, page(2, Some(&cursor))).await.unwrap();

        // THEN the second page holds the oldest, and is the last
        assert_eq!(
            ids(&first),
            [entries[2].post_id.clone(), entries[1].post_id.clone()]
        );
        assert_eq!(ids(&second), [entries[0].post_id.clone()]);
        assert_eq!(second.next_cursor, None);

        // AND bob's cursor is refused to cat, a forged one to anyone, and a signed
        // position the store never writes too.
        let refused = [
            app.feed(&cat, page(2, Some(&cursor))).await.unwrap_err(),
            app.feed(&bob, page(2, Some("forged"))).await.unwrap_err(),
        ];
        let odd = app.cursors.signer().await.unwrap().sign(
            &cursor_scope(&bob),
            &Position {
                before: "not-a-position".into(),
            },
        );
        let odd = app.feed(&bob, page(2, Some(&odd))).await.unwrap_err();
        for err in refused.iter().chain([&odd]) {
            assert_eq!(err.status(), 400, "{err}");
            assert_eq!(err.problem().field.as_deref(), Some("cursor"));
        }
    }

    #[tokio::test]
    async fn a_private_authors_posts_show_to_their_followers_only_whatever_the_timeline_holds() {
        // GIVEN ann turned private; her post reached bob's and cat's timelines while the
        // feed still had her public (bob's follow stands, cat's ended since)
        let app = app();
        let bob = author(&app, "bob", None);
        let cat = author(&app, "cat", None);
        let ann = UserId::generate();
        app.store.add_author(Author {
            user_id: ann.clone(),
            username: "ann".into(),
            display_name: "ANN".into(),
            private: true,
            avatar_key: None,
            version: 2,
            private_since: Some("2026-11-25T10:00:00.000Z".into()),
        });
        let window = post(&app, &ann, 1).await;
        for (who, holds) in [(&bob, true), (&cat, false)] {
            let marker = PairMarker { seq: 1, holds };
            app.store
                .set_edge(who, &ann, None, marker, false)
                .await
                .unwrap();
        }
        for who in [&bob, &cat, &ann] {
            app.store
                .add_to_timelines(std::slice::from_ref(who), std::slice::from_ref(&window))
                .await
                .unwrap();
        }
        // WHEN each reads their feed THEN her follower and she see it; cat does not
        let seen = |feed: FeedPage| ids(&feed) == [window.post_id.clone()];
        assert!(seen(app.feed(&bob, page(20, None)).await.unwrap()));
        assert!(seen(app.feed(&ann, page(20, None)).await.unwrap()));
        assert!(
            app.feed(&cat, page(20, None))
                .await
                .unwrap()
                .items
                .is_empty()
        );
    }

    #[tokio::test]
    async fn a_banned_authors_posts_are_left_out_for_others_until_the_ban_is_lifted() {
        // GIVEN ann's post in bob's timeline and her own, and ann is banned
        let app = app();
        let bob = author(&app, "bob", None);
        let ann = author(&app, "ann", None);
        let hers = post(&app, &ann, 1).await;
        let his = post(&app, &bob, 2).await;
        for who in [&bob, &ann] {
            app.store
                .add_to_timelines(std::slice::from_ref(who), &[hers.clone(), his.clone()])
                .await
                .unwrap();
        }
        app.store.set_banned(&ann, true);
        // WHEN bob reads his feed THEN hers is left out; she still sees it in hers
        let feed = app.feed(&bob, page(20, None)).await.unwrap();
        assert_eq!(ids(&feed), std::slice::from_ref(&his.post_id));
        let own = app.feed(&ann, page(20, None)).await.unwrap();
        assert_eq!(ids(&own), [his.post_id.clone(), hers.post_id.clone()]);
        // WHEN the ban is lifted THEN it is back in bob's feed
        app.store.set_banned(&ann, false);
        let feed = app.feed(&bob, page(20, None)).await.unwrap();
        assert_eq!(ids(&feed), [his.post_id, hers.post_id]);
    }

    #[tokio::test]
    async fn deleted_posts_and_deleted_accounts_are_left_out() {
        // GIVEN bob's timeline holds a post deleted since, a post whose author's account
        // is gone (not in the directory), and a live one
        let app = app();
        let bob = author(&app, "bob", None);
        let ann = author(&app, "ann", None);
        let gone = UserId::generate();
        let deleted = post(&app, &ann, 1).await;
        let orphan = post(&app, &gone, 2).await;
        let live = post(&app, &ann, 3).await;
        app.store
            .tombstone_post(&deleted.post_id, &ann, None)
            .await
            .unwrap();
        app.store
            .add_to_timelines(std::slice::from_ref(&bob), &[deleted, orphan, live.clone()])
            .await
            .unwrap();

        // WHEN he reads his feed THEN only the live post shows
        let feed = app.feed(&bob, page(20, None)).await.unwrap();
        assert_eq!(ids(&feed), [live.post_id]);
    }

    #[tokio::test]
    async fn a_storage_outage_is_an_opaque_server_error() {
        let app = app();
        let bob = author(&app, "bob", None);
        app.store.go_down();
        let err = app.feed(&bob, page(20, None)).await.unwrap_err();
        assert_eq!(err.status(), 500);
        let detail = err.problem().detail.unwrap_or_default();
        assert!(
            !detail.contains("down"),
            "the cause stays in the logs: {detail}"
        );
    }
}
