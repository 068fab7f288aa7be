//! The use cases: check who may see the post, apply the like rule ([`crate::model`]),
//! save with the store; answer in client terms.

use serde::{Deserialize, Serialize};
use shutter_core::{ApiError, CursorSigner, PageRequest, PostId, UserId};
use shutter_directory::{Author, Directory, PostRef, Viewer, visible_post};
use shutter_http::Caller;
use shutter_store::StoreError;

use crate::model::{LikeRequest, LikeStatus, Liker, LikerEntry, LikersPage, transition};
use crate::store::{self, LikesStore};
use crate::{App, errors};

/// How often a like is read and written again when a racing request changed it meanwhile.
const MAX_ATTEMPTS: usize = 5;

/// How many times a likers page reads the list to make up for entries hidden from the
/// viewer by a block (see [`App::likers`]).
const MAX_READS_PER_PAGE: usize = 3;

/// Where a likers page resumes: the list position of the last entry shown.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Position {
    pub(crate) after: String,
}

/// Binds a likers cursor to its post's list.
pub(crate) fn cursor_scope(post_id: &PostId) -> String {
    format!("likes:{post_id}")
}

fn viewer(caller: &Caller) -> Viewer<'_> {
    Viewer {
        user_id: &caller.user_id,
        staff: caller.is_staff(),
    }
}

impl<S: LikesStore, D: Directory> App<S, D> {
    /// The caller likes the post, once however often they ask. The post must be one they
    /// may see (404 otherwise, so a private account's posts are not revealed to exist).
    pub async fn like(
        &self,
        caller: &Caller,
        post_id: PostId,
        correlation_id: &str,
    ) -> Result<LikeStatus, ApiError> {
        self.set_like(caller, post_id, true, correlation_id).await
    }

    /// The caller no longer likes the post. One's own like may always be taken back, even
    /// from a post one may no longer see.
    pub async fn unlike(
        &self,
        caller: &Caller,
        post_id: PostId,
        correlation_id: &str,
    ) -> Result<LikeStatus, ApiError> {
        self.set_like(caller, post_id, false, correlation_id).await
    }

    /// The post and its author if `viewer` may see it, else 404.
    async fn visible(
        &self,
        post_id: &PostId,
        viewer: Viewer<'_>,
    ) -> Result<(PostRef, Author), ApiError> {
        visible_post(&self.directory, post_id, viewer)
            .await
            .map_err(errors::api)?
            .ok_or(ApiError::NotFound("post"))
    }

    async fn set_like(
        &self,
        caller: &Caller,
        post_id: PostId,
        liked: bool,
        correlation_id: &str,
    ) -> Result<LikeStatus, ApiError> {
        // A deleted (401), suspended or banned (403 `account_suspended`) account likes and
        // unlikes nothing, as soon as its event reached the directory; before that, for
        // the event's lag, its writes pass (see [`shutter_directory::refuse_inactive`]:
        // identity refuses its refresh at once, so the access token's life bounds it).
        shutter_directory::refuse_inactive(&self.directory, &caller.user_id).await?;
        let viewer = viewer(caller);
        let (mut current, author_id) = if liked {
            // Both reads at once: a like needs the post visible whatever its state.
            let (current, post) = futures::try_join!(
                self.store.state(&post_id, &caller.user_id),
                visible_post(&self.directory, &post_id, viewer)
            )
            .map_err(errors::api)?;
            let (post, _) = post.ok_or(ApiError::NotFound("post"))?;
            (current, post.author_id)
        } else {
            let current = self
                .store
                .state(&post_id, &caller.user_id)
                .await
                .map_err(errors::api)?;
            let author_id = match &current {
                // One's own like may always be taken back.
                Some(c) if c.liked => c.post_author_id.clone(),
                _ => self.visible(&post_id, viewer).await?.0.author_id,
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
                return Ok(LikeStatus { post_id, liked });
            };
            let event = next.event(Some(&caller.user_id), correlation_id);
            match self.store.commit(current.as_ref(), &next, &event).await {
                Ok(()) => {
                    tracing::info!(post_id = %post_id, seq = next.seq, event_id = %event.id, liked, "like changed");
                    return Ok(LikeStatus { post_id, liked });
                }
                // A racing request changed the like: decide again on what it left.
                Err(StoreError::Conflict(store::STALE)) => {
                    current = self
                        .store
                        .state(&post_id, &caller.user_id)
                        .await
                        .map_err(errors::api)?;
                }
                Err(err) => return Err(errors::api(err)),
            }
        }
        Err(errors::concurrent_update())
    }

    /// Who likes the post, newest first, if the caller may see it. Names are read fresh
    /// from the directory (they change); one who is not in it yet shows with the username
    /// they liked under. Nobody who blocks the caller, or whom the caller blocks, is
    /// listed: as the directory knows blocks, so from the moment their `UserBlocked`
    /// reaches it (until then, for the event's lag, they still show).
    pub async fn likers(
        &self,
        caller: &Caller,
        post_id: &PostId,
        page: &PageRequest,
    ) -> Result<LikersPage, ApiError> {
        let scope = cursor_scope(post_id);
        let after = match &page.cursor {
            Some(c) => {
                let position: Position = self.cursors().await?.verify(&scope, c)?;
                if !store::is_list_position(&position.after) {
                    return Err(ApiError::invalid(
                        "cursor",
                        "is not a cursor this server issued",
                    ));
                }
                Some(position.after)
            }
            None => None,
        };
        self.visible(post_id, viewer(caller)).await?;
        let (entries, resume) = self
            .unhidden_likers(&caller.user_id, post_id, after, usize::from(page.limit))
            .await?;
        let next_cursor = match resume {
            Some(after) => Some(self.cursors().await?.sign(&scope, &Position { after })),
            None => None,
        };
        let authors = futures::future::try_join_all(
            entries.iter().map(|e| self.directory.author(&e.user_id)),
        )
        .await
        .map_err(errors::api)?;
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
        Ok(LikersPage { items, next_cursor })
    }

    /// Up to `limit` entries of the likers list after `after`, without those who block
    /// `viewer` or whom `viewer` blocks, and the position to resume after when there may be
    /// more. Hidden entries are replaced by reading on, at most [`MAX_READS_PER_PAGE`]
    /// times: a page costs O(`limit`) reads however many are hidden, and may then be short
    /// (its cursor resumes after the last entry read, shown or not, so it stays valid).
    async fn unhidden_likers(
        &self,
        viewer: &UserId,
        post_id: &PostId,
        mut after: Option<String>,
        limit: usize,
    ) -> Result<(Vec<LikerEntry>, Option<String>), ApiError> {
        let mut shown: Vec<LikerEntry> = Vec::with_capacity(limit);
        let mut more = false;
        for _ in 0..MAX_READS_PER_PAGE {
            let want = limit - shown.len();
            // One entry more than wanted tells whether the list goes on.
            let mut entries = self
                .store
                .likers(post_id, after.as_deref(), want + 1)
                .await
                .map_err(errors::api)?;
            more = entries.len() > want;
            entries.truncate(want);
            if let Some(last) = entries.last() {
                after = Some(last.position.clone());
            }
            let users: Vec<UserId> = entries.iter().map(|e| e.user_id.clone()).collect();
            let hidden = self
                .directory
                .blocked_among(viewer, &users)
                .await
                .map_err(errors::api)?;
            shown.extend(entries.into_iter().filter(|e| !hidden.contains(&e.user_id)));
            if !more || shown.len() >= limit {
                break;
            }
        }
        Ok((shown, after.filter(|_| more)))
    }

    /// The cursor key, read on its first use (see [`shutter_store::CursorKey`]).
    async fn cursors(&self) -> Result<&CursorSigner, ApiError> {
        self.cursors
            .as_ref()
            .ok_or_else(|| {
                ApiError::internal(std::io::Error::other(
                    "this function was built without the cursor key (Live::for_writes)",
                ))
            })?
            .signer()
            .await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::sync::atomic::{AtomicUsize, Ordering};

    use async_trait::async_trait;
    use shutter_core::UserId;
    use shutter_events::{Envelope, Event};
    use shutter_store::StoreResult;

    use super::*;
    use crate::model::{LikeState, LikerEntry};
    use crate::store::LikesCleanup;
    use crate::store::memory::MemoryLikesStore;
    use crate::testing::{World, caller, like_events, world};

    fn page() -> PageRequest {
        PageRequest::parse(None, None).unwrap()
    }

    impl World {
        async fn like(&self, user: &UserId) -> Result<LikeStatus, ApiError> {
            self.app
                .like(&caller(user), self.post.clone(), "corr")
                .await
        }
        async fn unlike(&self, user: &UserId) -> Result<LikeStatus, ApiError> {
            self.app
                .unlike(&caller(user), self.post.clone(), "corr")
                .await
        }
        /// The likers as the author sees them.
        async fn liker_ids(&self) -> Vec<UserId> {
            let page = self
                .app
                .likers(&caller(&self.author), &self.post, &page())
                .await
                .unwrap();
            page.items.into_iter().map(|l| l.user_id).collect()
        }
        async fn state(&self, user: &UserId) -> Option<LikeState> {
            self.app.store.state(&self.post, user).await.unwrap()
        }
    }

    #[tokio::test]
    async fn liking_twice_counts_once() {
        // GIVEN a public post
        let w = world(false);
        let bob = UserId::generate();
        // WHEN bob likes it twice
        for _ in 0..2 {
            let status = w.like(&bob).await.unwrap();
            assert_eq!((&status.post_id, status.liked), (&w.post, true));
        }
        // THEN one like is stored, listed once, and one LikeAdded reports it
        assert_eq!(like_events(&w.app.store), [("LikeAdded", bob.clone(), 1)]);
        let event = &w.app.store.events()[0];
        assert_eq!(event.aggregate_id, w.post.as_str());
        assert_eq!(event.actor.as_ref(), Some(&bob));
        assert_eq!(event.correlation_id, "corr");
        let Event::LikeAdded(facts) = &event.event else {
            panic!("{event:?}")
        };
        assert_eq!(
            (&facts.post_id, &facts.post_author_id),
            (&w.post, &w.author)
        );
        assert_eq!(w.state(&bob).await.unwrap().seq, 1);
        assert_eq!(w.liker_ids().await, [bob]);
    }

    #[tokio::test]
    async fn unliking_without_a_like_emits_nothing_and_seq_counts_every_change() {
        let w = world(false);
        let bob = UserId::generate();
        // GIVEN no like: WHEN bob unlikes THEN nothing is stored or emitted
        assert!(!w.unlike(&bob).await.unwrap().liked);
        assert!(w.app.store.events().is_empty(), "no like existed: no event");
        assert_eq!(w.state(&bob).await, None);
        // WHEN he likes, unlikes twice and likes again THEN each change counts once
        w.like(&bob).await.unwrap();
        w.unlike(&bob).await.unwrap();
        w.unlike(&bob).await.unwrap();
        w.like(&bob).await.unwrap();
        assert_eq!(
            like_events(&w.app.store),
            [
                ("LikeAdded", bob.clone(), 1),
                ("LikeRemoved", bob.clone(), 2),
                ("LikeAdded", bob.clone(), 3)
            ]
        );
        assert_eq!(w.liker_ids().await, [bob]);
    }

    #[tokio::test]
    async fn a_stale_write_never_lands_so_racing_requests_emit_once() {
        let w = world(false);
        let bob = UserId::generate();
        let request = LikeRequest {
            post_id: &w.post,
            post_author_id: &w.author,
            user_id: &bob,
            username: "bob",
            liked: true,
        };
        // GIVEN two requests that both read "no like" and both try to write seq 1
        let first = transition(None, &request).unwrap();
        let second = transition(None, &request).unwrap();
        w.app
            .store
            .commit(None, &first, &first.event(None, "a"))
            .await
            .unwrap();
        let lost = w
            .app
            .store
            .commit(None, &second, &second.event(None, "b"))
            .await
            .unwrap_err();
        assert!(lost.is_conflict(store::STALE), "{lost}");
        // WHEN the loser's use case reads again THEN it finds the like and changes nothing
        w.like(&bob).await.unwrap();
        assert_eq!(w.app.store.events().len(), 1);
        assert_eq!(w.liker_ids().await, [bob]);
    }

    #[tokio::test]
    async fn a_refused_like_changes_nothing() {
        // GIVEN a private account's post
        let w = world(true);
        let mallory = UserId::generate();
        // WHEN a stranger likes or unlikes it THEN 404, as for a post that does not exist
        assert_eq!(w.like(&mallory).await.unwrap_err().status(), 404);
        assert_eq!(w.unlike(&mallory).await.unwrap_err().status(), 404);
        // AND nothing was stored or emitted
        assert_eq!(w.state(&mallory).await, None);
        assert!(w.app.store.events().is_empty());
        assert!(w.liker_ids().await.is_empty());
        let index = w.app.store.posts_liked_by(&mallory, 10).await.unwrap();
        assert!(index.is_empty());
    }

    #[tokio::test]
    async fn an_unknown_post_is_404_and_changes_nothing() {
        let w = world(false);
        let bob = UserId::generate();
        let unknown = PostId::generate();
        let err = w
            .app
            .like(&caller(&bob), unknown.clone(), "c")
            .await
            .unwrap_err();
        assert_eq!(err.status(), 404);
        assert_eq!(w.app.store.state(&unknown, &bob).await.unwrap(), None);
        assert!(w.app.store.events().is_empty());
    }

    #[tokio::test]
    async fn a_deleted_accounts_token_can_like_nothing_and_changes_nothing() {
        // GIVEN bob's account was deleted while his token still lives
        let w = world(false);
        let bob = UserId::generate();
        w.app.store.mark_gone(&bob).await.unwrap();
        // WHEN he likes THEN 401 and nothing is stored or emitted
        let err = w.like(&bob).await.unwrap_err();
        assert_eq!(err.status(), 401);
        assert_eq!(w.state(&bob).await, None);
        assert!(w.app.store.events().is_empty());
        assert!(w.liker_ids().await.is_empty());
    }

    fn standing(event: Event, user: &UserId) -> Envelope {
        Envelope::new(event, Some(user), "c")
    }

    fn suspended(user: &UserId, banned: bool, seq: u64) -> Envelope {
        let until = (!banned).then(|| "2999-01-01T00:00:00.000Z".to_owned());
        standing(
            Event::UserSuspended(shutter_events::UserSuspended {
                user_id: user.clone(),
                username: "bob".into(),
                banned,
                until,
                seq,
            }),
            user,
        )
    }

    fn reinstated(user: &UserId, seq: u64) -> Envelope {
        standing(
            Event::UserReinstated(shutter_events::UserReinstated {
                user_id: user.clone(),
                username: "bob".into(),
                seq,
            }),
            user,
        )
    }

    #[tokio::test]
    async fn a_suspended_accounts_token_likes_and_unlikes_nothing_until_reinstated() {
        // GIVEN bob liked the post, then was suspended (the directory holds it)
        let w = world(false);
        let bob = UserId::generate();
        w.like(&bob).await.unwrap();
        w.app
            .directory
            .apply(&suspended(&bob, false, 1))
            .await
            .unwrap();
        // WHEN his still-valid token unlikes, or likes again THEN 403 account_suspended,
        // with the end of the suspension, and nothing changes
        for refused in [w.unlike(&bob).await, w.like(&bob).await] {
            let p = refused.unwrap_err().problem();
            assert_eq!((p.status, p.code.as_str()), (403, "account_suspended"));
            assert_eq!(p.until.as_deref(), Some("2999-01-01T00:00:00.000Z"));
        }
        assert_eq!(like_events(&w.app.store).len(), 1);
        assert_eq!(w.liker_ids().await, std::slice::from_ref(&bob));
        // WHEN he is reinstated THEN he may unlike again
        w.app.directory.apply(&reinstated(&bob, 2)).await.unwrap();
        assert!(!w.unlike(&bob).await.unwrap().liked);
        assert_eq!(like_events(&w.app.store).len(), 2);
    }

    #[tokio::test]
    async fn a_banned_authors_post_cannot_be_liked_and_a_banned_account_likes_nothing() {
        let w = world(false);
        let (bob, cat) = (UserId::generate(), UserId::generate());
        // GIVEN the author is banned THEN others cannot like the post (it is hidden)
        w.app
            .directory
            .apply(&suspended(&w.author, true, 1))
            .await
            .unwrap();
        assert_eq!(w.like(&cat).await.unwrap_err().status(), 404);
        // GIVEN bob is banned THEN his likes are refused with no end given
        w.app
            .directory
            .apply(&suspended(&bob, true, 1))
            .await
            .unwrap();
        let p = w.like(&bob).await.unwrap_err().problem();
        assert_eq!((p.status, p.until), (403, None));
        assert!(w.app.store.events().is_empty());
        // WHEN the author's ban is lifted THEN the post takes likes again
        w.app
            .directory
            .apply(&reinstated(&w.author, 2))
            .await
            .unwrap();
        assert!(w.like(&cat).await.unwrap().liked);
    }

    #[tokio::test]
    async fn a_removed_post_takes_no_new_likes_but_ones_own_can_be_taken_back() {
        let w = world(false);
        let (bob, cat) = (UserId::generate(), UserId::generate());
        w.like(&bob).await.unwrap();
        let removed = Event::ContentRemoved(shutter_events::ContentRemoved {
            kind: shutter_events::RemovedKind::Post,
            target_id: w.post.to_string(),
            post_id: w.post.clone(),
            author_id: w.author.clone(),
            note: "spam".into(),
            removed_by: UserId::generate(),
            removed_at: "2026-12-07T00:00:00.000Z".into(),
        });
        // WHEN staff removed the post (delivered twice)
        for _ in 0..2 {
            w.app
                .directory
                .apply(&standing(removed.clone(), &w.author))
                .await
                .unwrap();
        }
        // THEN a new like is 404, and bob may still take his back
        assert_eq!(w.like(&cat).await.unwrap_err().status(), 404);
        assert!(!w.unlike(&bob).await.unwrap().liked);
        assert_eq!(
            like_events(&w.app.store),
            [("LikeAdded", bob.clone(), 1), ("LikeRemoved", bob, 2)]
        );
    }

    #[tokio::test]
    async fn a_like_can_be_taken_back_after_the_post_turned_private() {
        // GIVEN bob liked a post whose author then turned private
        let w = world(false);
        let bob = UserId::generate();
        w.like(&bob).await.unwrap();
        w.app
            .directory
            .add_author(crate::testing::author(&w.author, "ann", true));
        // WHEN he likes again THEN 404; WHEN he unlikes THEN his like goes
        assert_eq!(w.like(&bob).await.unwrap_err().status(), 404);
        assert!(!w.unlike(&bob).await.unwrap().liked);
        assert_eq!(
            like_events(&w.app.store).last().unwrap(),
            &("LikeRemoved", bob, 2)
        );
        assert!(w.liker_ids().await.is_empty());
    }

    /// A store whose every commit loses a race.
    #[derive(Default)]
    struct AlwaysRaced {
        inner: MemoryLikesStore,
        commits: AtomicUsize,
    }

    #[async_trait]
    impl LikesStore for AlwaysRaced {
        async fn state(
            &self,
            post_id: &PostId,
            user_id: &UserId,
        ) -> StoreResult<Option<LikeState>> {
            self.inner.state(post_id, user_id).await
        }
        async fn commit(
            &self,
            _: Option<&LikeState>,
            _: &LikeState,
            _: &Envelope,
        ) -> StoreResult<()> {
            self.commits.fetch_add(1, Ordering::SeqCst);
            Err(StoreError::Conflict(store::STALE))
        }
        async fn likers(
            &self,
            post_id: &PostId,
            after: Option<&str>,
            limit: usize,
        ) -> StoreResult<Vec<LikerEntry>> {
            self.inner.likers(post_id, after, limit).await
        }
    }

    #[tokio::test]
    async fn a_like_that_keeps_changing_is_a_409_after_a_few_tries_and_changes_nothing() {
        // GIVEN a store where every write loses a race
        let w = world(false);
        let app = App {
            store: AlwaysRaced::default(),
            directory: w.app.directory,
            cursors: None,
        };
        let bob = UserId::generate();
        // WHEN bob likes THEN he is told to retry, after a bounded number of tries
        let err = app
            .like(&caller(&bob), w.post.clone(), "c")
            .await
            .unwrap_err();
        assert_eq!(
            (err.status(), err.problem().code.as_str()),
            (409, "concurrent_update")
        );
        assert_eq!(app.store.commits.load(Ordering::SeqCst), MAX_ATTEMPTS);
        assert!(app.store.inner.events().is_empty());
        assert_eq!(app.store.inner.state(&w.post, &bob).await.unwrap(), None);
    }

    #[tokio::test]
    async fn unknown_likers_show_the_username_they_liked_under_and_known_ones_their_current_names()
    {
        // GIVEN bob, whom the directory does not know yet, and eve, whom it does
        let w = world(false);
        let (bob, eve) = (UserId::generate(), UserId::generate());
        w.app
            .like(
                &Caller {
                    username: "bob".into(),
                    ..caller(&bob)
                },
                w.post.clone(),
                "c",
            )
            .await
            .unwrap();
        // The list is ordered by ULID, precise to the millisecond.
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        w.like(&eve).await.unwrap();
        w.app
            .directory
            .add_author(crate::testing::author(&eve, "eve", false));
        // WHEN the likers are listed
        let page = w
            .app
            .likers(&caller(&w.author), &w.post, &page())
            .await
            .unwrap();
        // THEN newest first, with names from the directory when it has them
        let names: Vec<_> = page
            .items
            .iter()
            .map(|l| (l.username.as_str(), l.display_name.as_str()))
            .collect();
        assert_eq!(names, [("eve", "EVE"), ("bob", "bob")]);
        assert_eq!(page.next_cursor, None);
    }

    /// `blocker` blocks `blocked` (or lifts it), as the directory learns from the event.
    async fn block(w: &World, blocker: &UserId, blocked: &UserId, holds: bool, seq: u64) {
        let facts = shutter_events::BlockFacts {
            blocker_id: blocker.clone(),
            blocked_id: blocked.clone(),
            seq,
            at: "t".into(),
        };
        let event = if holds {
            Event::UserBlocked(facts)
        } else {
            Event::UserUnblocked(facts)
        };
        w.app
            .directory
            .apply(&Envelope::new(event, None, "corr"))
            .await
            .unwrap();
    }

    /// Every liker `viewer` is shown, page by page of `limit`, and the pages' sizes.
    async fn every_liker(w: &World, viewer: &UserId, limit: &str) -> (Vec<UserId>, Vec<usize>) {
        let (mut ids, mut sizes, mut cursor) = (Vec::new(), Vec::new(), None::<String>);
        loop {
            let request = PageRequest::parse(Some(limit), cursor.as_deref()).unwrap();
            let page = w
                .app
                .likers(&caller(viewer), &w.post, &request)
                .await
                .unwrap();
            sizes.push(page.items.len());
            ids.extend(page.items.into_iter().map(|l| l.user_id));
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => return (ids, sizes),
            }
        }
    }

    /// GIVEN `n` likers, a tick apart (the list orders by millisecond); newest first.
    async fn likers_in_order(w: &World, n: usize) -> Vec<UserId> {
        let mut users = Vec::new();
        for _ in 0..n {
            let u = UserId::generate();
            w.like(&u).await.unwrap();
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
            users.push(u);
        }
        users.reverse();
        users
    }

    #[tokio::test]
    async fn likers_who_block_the_viewer_or_whom_the_viewer_blocks_are_not_listed_to_them() {
        // GIVEN four likers of a public post: dan (newest), cat, bob, eve
        let w = world(false);
        let likers = likers_in_order(&w, 4).await;
        let (dan, cat, bob, eve) = (&likers[0], &likers[1], &likers[2], &likers[3]);
        let viewer = UserId::generate();
        // WHEN no block has reached the directory THEN the viewer sees all four (the
        // window: a block hides from when its event is applied)
        assert_eq!(every_liker(&w, &viewer, "20").await.0, likers);
        // WHEN cat blocks the viewer and the viewer blocks eve
        block(&w, cat, &viewer, true, 1).await;
        block(&w, &viewer, eve, true, 1).await;
        // THEN neither is listed to the viewer, whose page of 2 is filled by reading on,
        // each liker once (the last page is empty: the first could only tell that an
        // entry followed, not that it was hidden)
        let (seen, sizes) = every_liker(&w, &viewer, "2").await;
        assert_eq!(seen, [dan.clone(), bob.clone()]);
        assert_eq!(sizes, [2, 0]);
        // AND the author, whom nobody blocks, and cat herself still see everyone
        assert_eq!(w.liker_ids().await, likers);
        assert_eq!(every_liker(&w, cat, "20").await.0, likers);
        // WHEN cat lifts her block THEN she is listed again
        block(&w, cat, &viewer, false, 2).await;
        assert_eq!(
            every_liker(&w, &viewer, "1").await.0,
            [dan.clone(), cat.clone(), bob.clone()]
        );
    }

    #[tokio::test]
    async fn a_page_of_hidden_likers_costs_a_bounded_number_of_reads_and_its_cursor_goes_on() {
        // GIVEN eight likers, the newest seven of whom block the viewer
        let w = world(false);
        let likers = likers_in_order(&w, 8).await;
        let viewer = UserId::generate();
        for (i, u) in likers.iter().take(7).enumerate() {
            block(&w, u, &viewer, true, i as u64 + 1).await;
        }
        // WHEN the viewer pages by 2 THEN the first page reads at most 3 x 2 entries and
        // comes back empty, with a cursor; the next one finds the eighth liker
        let (seen, sizes) = every_liker(&w, &viewer, "2").await;
        assert_eq!(seen, [likers[7].clone()]);
        assert_eq!(sizes, [0, 1]);
    }

    #[tokio::test]
    async fn listing_without_the_cursor_key_is_a_server_error_not_a_wrong_page() {
        let mut w = world(false);
        w.app.cursors = None;
        let resume = PageRequest::parse(None, Some("a-cursor")).unwrap();
        let err = w
            .app
            .likers(&caller(&w.author), &w.post, &resume)
            .await
            .unwrap_err();
        assert_eq!(err.status(), 500);
    }
}
