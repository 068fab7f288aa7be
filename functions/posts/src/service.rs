//! The use cases of the endpoints: load the post and what the directory knows of its
//! author, decide with the rules of [`crate::model`], save with the store, and answer
//! with views (media URLs signed, authors batched), in client terms.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use shutter_core::validate::{MAX_MENTIONS, Username};
use shutter_core::{ApiError, CursorSigner, MediaId, PageRequest, PostId, UserId};
use shutter_directory::{Author, Directory, Viewer, may_see};
use shutter_events::{Envelope, Event, PostDeleted};
use shutter_http::Caller;
use shutter_media::MediaStore;
use shutter_store::StoreError;

use crate::api::{AuthorView, CreatedPost, MediaUpload, MediaView, PostPage, PostView, UpdatePost};
use crate::model::{
    Media, MediaStatus, Mention, NewPost, Post, PostStatus, check_caption, check_location,
    max_bytes,
};
use crate::store::{self, Idempotency, Index, PostsStore, Stored};
use crate::{App, errors, text};

/// How often a delete reads the post again when it changed meanwhile.
const DELETE_ATTEMPTS: usize = 8;

/// A created post, and whether it is the one an earlier request with the same
/// `Idempotency-Key` made.
#[derive(Debug)]
pub struct Created {
    pub post: CreatedPost,
    pub replayed: bool,
}

/// Where a list resumes: the store's position of the last entry served.
#[derive(Debug, Serialize, Deserialize)]
struct After {
    sk: String,
}

fn viewer(caller: &Caller) -> Viewer<'_> {
    Viewer {
        user_id: &caller.user_id,
        staff: caller.is_staff(),
    }
}

impl<S: PostsStore, M: MediaStore, D: Directory> App<S, M, D> {
    /// A pending post with an upload form per media item; its `PostCreated` goes out with
    /// it. With an idempotency key, the same request again answers the same post.
    pub async fn create(
        &self,
        caller: &Caller,
        new: NewPost,
        idempotency: Option<Idempotency>,
        correlation_id: &str,
    ) -> Result<Created, ApiError> {
        self.refuse_inactive(caller).await?;
        let id = PostId::generate();
        let media = new
            .media
            .into_iter()
            .map(|(media_type, size)| {
                Media::pending(MediaId::generate(), &caller.user_id, &id, media_type, size)
            })
            .collect();
        let post = Post {
            id,
            author_id: caller.user_id.clone(),
            hashtags: text::hashtags(&new.caption),
            mentions: self.resolve_mentions(&new.caption).await?,
            caption: new.caption,
            location: new.location,
            status: PostStatus::Pending,
            media,
            like_count: 0,
            comment_count: 0,
            version: 1,
            created_at: shutter_core::now_rfc3339(),
            published_at: None,
            removed: None,
        };
        let event = Envelope::new(
            Event::PostCreated(post.facts()),
            Some(&caller.user_id),
            correlation_id,
        );
        let stored = self
            .store
            .create(&post, &event, idempotency.as_ref())
            .await
            .map_err(errors::api)?;
        let (post, replayed) = match stored {
            Stored::New => (post, false),
            Stored::Replayed(first) => {
                let first = self.store.post(&first).await.map_err(errors::api)?;
                let first = first.ok_or_else(|| {
                    ApiError::conflict(
                        "idempotency_key_reused",
                        "Idempotency-Key",
                        "the post this key created has been deleted",
                    )
                })?;
                (first, true)
            }
        };
        let author = self
            .directory
            .author(&caller.user_id)
            .await
            .map_err(errors::api)?;
        let uploads = self.uploads(&post).await?;
        Ok(Created {
            post: CreatedPost {
                post: self.view(&post, author.as_ref(), false, caller).await?,
                uploads,
            },
            replayed,
        })
    }

    /// The post, if the caller may see it (404 otherwise: a banned author's post and a
    /// post staff removed are 404 to all but the author and staff; the author gets a
    /// removed post with its `removed` note, so they see why).
    pub async fn get(&self, caller: &Caller, id: &PostId) -> Result<PostView, ApiError> {
        let (post, author) = self.visible(id, caller).await?;
        self.view_for(&post, author.as_ref(), caller).await
    }

    /// Edits the caption or location of the caller's own post, read at `patch.version`;
    /// its `PostUpdated` goes out with the change. A post the caller may not see is 404,
    /// someone else's 403, a stale version 409, and then bad text 400.
    pub async fn update(
        &self,
        caller: &Caller,
        id: &PostId,
        patch: UpdatePost,
        correlation_id: &str,
    ) -> Result<PostView, ApiError> {
        self.refuse_inactive(caller).await?;
        let (before, author) = self.visible(id, caller).await?;
        if !before.editable_by(&caller.user_id) {
            return Err(ApiError::Forbidden);
        }
        if before.removed.is_some() {
            // Removal is final: an edit would send it out again as `PostUpdated`.
            return Err(errors::post_removed());
        }
        if patch.version != before.version {
            return Err(errors::version_conflict());
        }
        let mut post = before.clone();
        if let Some(caption) = patch.caption {
            check_caption(&caption)?;
            post.hashtags = text::hashtags(&caption);
            post.mentions = self.resolve_mentions(&caption).await?;
            post.caption = caption;
        }
        if let Some(location) = patch.location {
            check_location(location.as_deref())?;
            post.location = location;
        }
        if post != before {
            post.version += 1;
            let event = Envelope::new(
                Event::PostUpdated(post.facts()),
                Some(&caller.user_id),
                correlation_id,
            );
            self.store
                .save(&before, &post, &[event])
                .await
                .map_err(errors::api)?;
        }
        self.view_for(&post, author.as_ref(), caller).await
    }

    /// Deletes a post of the caller's, or any post for staff; its `PostDeleted` takes
    /// its media, likes and comments with it. A post that changes meanwhile (its media
    /// settling, an edit) is read again and deleted as it is then: the caller asked for
    /// the post gone, whatever its version.
    pub async fn delete(
        &self,
        caller: &Caller,
        id: &PostId,
        correlation_id: &str,
    ) -> Result<(), ApiError> {
        self.refuse_inactive(caller).await?;
        for _ in 0..DELETE_ATTEMPTS {
            let (post, _) = self.visible(id, caller).await?;
            if !post.deletable_by(&caller.user_id, caller.is_staff()) {
                return Err(ApiError::Forbidden);
            }
            let event = Envelope::new(
                Event::PostDeleted(PostDeleted {
                    post_id: post.id.clone(),
                    author_id: post.author_id.clone(),
                    deleted_by: caller.user_id.clone(),
                }),
                Some(&caller.user_id),
                correlation_id,
            );
            match self.store.delete(&post, &event).await {
                Err(StoreError::Conflict(store::STALE)) => continue,
                other => return other.map_err(errors::api),
            }
        }
        Err(errors::version_conflict())
    }

    /// Refuses a write by a deleted (401), suspended or banned (403 `account_suspended`)
    /// account's still-valid token, as this service's directory knows the account
    /// ([`shutter_directory::refuse_inactive`]). A deletion or suspension reaches the
    /// directory by its event, seconds after it was decided: in that window the write
    /// still passes. Identity refuses the account's refresh at once, so the access
    /// token's lifetime bounds the window. For a deletion the store closes it too: once
    /// the tombstone is written its transactions refuse the account's writes, and the
    /// deletion cascade (which runs after the tombstone) erases what slipped in before.
    async fn refuse_inactive(&self, caller: &Caller) -> Result<(), ApiError> {
        shutter_directory::refuse_inactive(&self.directory, &caller.user_id).await
    }

    /// A user's posts, newest first: every status for the user themself (a removed post
    /// included, with its `removed` note, so they see what staff took down and why),
    /// published ones not removed for others who may see the account (403 for a private
    /// one, 404 for no such user and for a banned one: their posts are hidden while the
    /// ban holds, and come back when it is lifted).
    pub async fn posts_by_author(
        &self,
        caller: &Caller,
        username: &Username,
        page: PageRequest,
    ) -> Result<PostPage, ApiError> {
        let author = self
            .directory
            .author_by_username(username.as_str())
            .await
            .map_err(errors::api)?
            .ok_or(ApiError::NotFound("user"))?;
        if !self.author_visible(Some(&author), caller).await? {
            let access = self
                .directory
                .access(&caller.user_id, &author.user_id)
                .await
                .map_err(errors::api)?;
            if access.author_banned {
                return Err(ApiError::NotFound("user"));
            }
            return Err(ApiError::Forbidden);
        }
        let own = author.user_id == caller.user_id;
        let scope = format!("author:{}", author.user_id);
        self.list(caller, Index::Author(author.user_id), &scope, page, !own)
            .await
    }

    /// Published posts with a (normalised) hashtag, newest first, less those the caller
    /// may not see.
    pub async fn posts_by_hashtag(
        &self,
        caller: &Caller,
        tag: String,
        page: PageRequest,
    ) -> Result<PostPage, ApiError> {
        let scope = format!("tag:{tag}");
        self.list(caller, Index::Tag(tag), &scope, page, true).await
    }

    /// The cursor key, read on its first use (see [`shutter_store::CursorKey`]).
    async fn cursors(&self) -> Result<&CursorSigner, ApiError> {
        self.cursors
            .as_ref()
            .ok_or_else(|| {
                ApiError::internal(std::io::Error::other(
                    "this function was built without the cursor key",
                ))
            })?
            .signer()
            .await
    }

    async fn list(
        &self,
        caller: &Caller,
        index: Index,
        scope: &str,
        page: PageRequest,
        published_only: bool,
    ) -> Result<PostPage, ApiError> {
        let after = match page.cursor.as_deref() {
            Some(c) => Some(self.cursors().await?.verify::<After>(scope, c)?.sk),
            None => None,
        };
        let found = self
            .store
            .page(&index, page.limit.into(), after.as_deref())
            .await
            .map_err(errors::api)?;
        let ids: Vec<PostId> = found
            .entries
            .into_iter()
            .filter(|e| !published_only || e.status.is_none_or(|s| s == PostStatus::Published))
            .map(|e| e.post_id)
            .collect();
        // A hashtag's entries may name posts that lost the tag or are gone (see
        // [`crate::store`]): the post decides.
        let posts = self
            .store
            .posts(&ids)
            .await
            .map_err(errors::api)?
            .into_iter()
            .filter(|p| !published_only || p.status == PostStatus::Published)
            .filter(|p| match &index {
                Index::Tag(tag) => p.hashtags.contains(tag),
                Index::Author(author) => p.author_id == *author,
            })
            .collect();
        let next_cursor = match found.next {
            Some(sk) => Some(self.cursors().await?.sign(scope, &After { sk })),
            None => None,
        };
        Ok(PostPage {
            items: self.views(posts, caller).await?,
            next_cursor,
        })
    }

    /// Whether the caller may see the author's published posts. An author the directory
    /// does not know yet is treated as private.
    async fn author_visible(
        &self,
        author: Option<&Author>,
        caller: &Caller,
    ) -> Result<bool, ApiError> {
        match author {
            Some(a) => may_see(&self.directory, a, viewer(caller))
                .await
                .map_err(errors::api),
            None => Ok(false),
        }
    }

    /// The post if the caller may see it; otherwise 404, so hidden posts are not revealed.
    async fn visible(
        &self,
        id: &PostId,
        caller: &Caller,
    ) -> Result<(Post, Option<Author>), ApiError> {
        let post = self
            .store
            .post(id)
            .await
            .map_err(errors::api)?
            .ok_or(ApiError::NotFound("post"))?;
        let author = self
            .directory
            .author(&post.author_id)
            .await
            .map_err(errors::api)?;
        let seen = self.author_visible(author.as_ref(), caller).await?;
        if post.visible_to(&caller.user_id, caller.is_staff(), seen) {
            Ok((post, author))
        } else {
            Err(ApiError::NotFound("post"))
        }
    }

    /// The users a caption mentions who exist, in order, each once; other `@words` stay
    /// plain text. One batch of lookups for them all (a checked caption has at most 20).
    async fn resolve_mentions(&self, caption: &str) -> Result<Vec<Mention>, ApiError> {
        let names: Vec<String> = text::mentions(caption)
            .into_iter()
            .take(MAX_MENTIONS)
            .collect();
        if names.is_empty() {
            return Ok(Vec::new());
        }
        let authors = self
            .directory
            .authors_by_username(&names)
            .await
            .map_err(errors::api)?;
        let mut found: Vec<Mention> = Vec::with_capacity(authors.len());
        for author in authors {
            if !found.iter().any(|m| m.user_id == author.user_id) {
                found.push(Mention {
                    user_id: author.user_id,
                    username: author.username,
                });
            }
        }
        Ok(found)
    }

    /// An upload form for each media item still waiting for its upload.
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
                .await
                .map_err(errors::api)?;
            uploads.push(MediaUpload {
                media_id: m.id.clone(),
                upload: form,
            });
        }
        Ok(uploads)
    }

    async fn sign(&self, key: Option<&str>) -> Result<Option<String>, ApiError> {
        match key {
            Some(key) => self
                .media
                .view_url(key)
                .await
                .map(Some)
                .map_err(errors::api),
            None => Ok(None),
        }
    }

    async fn author_view(
        &self,
        author_id: &UserId,
        known: Option<&Author>,
        caller: &Caller,
    ) -> Result<AuthorView, ApiError> {
        let avatar_url = self
            .sign(known.and_then(|a| a.avatar_key.as_deref()))
            .await?;
        Ok(match known {
            Some(a) => AuthorView {
                id: a.user_id.clone(),
                username: a.username.clone(),
                display_name: a.display_name.clone(),
                avatar_url,
            },
            // Only the author sees a post before the directory knows them.
            None => AuthorView {
                id: author_id.clone(),
                username: caller.username.clone(),
                display_name: caller.username.clone(),
                avatar_url,
            },
        })
    }

    async fn media_view(&self, media: &Media) -> Result<MediaView, ApiError> {
        // Only a ready item's objects are served.
        let ready = media.status == MediaStatus::Ready;
        let (display, thumbnail) = if ready {
            (media.display_key.as_deref(), media.thumbnail_key.as_deref())
        } else {
            (None, None)
        };
        Ok(MediaView {
            id: media.id.clone(),
            content_type: media.media_type,
            status: media.status,
            url: self.sign(display).await?,
            thumbnail_url: self.sign(thumbnail).await?,
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
            removed: post.removed.clone(),
        })
    }

    /// One post's view, with whether the caller likes it.
    async fn view_for(
        &self,
        post: &Post,
        author: Option<&Author>,
        caller: &Caller,
    ) -> Result<PostView, ApiError> {
        let liked = self
            .store
            .liked_by(&caller.user_id, std::slice::from_ref(&post.id))
            .await
            .map_err(errors::api)?;
        self.view(post, author, liked.contains(&post.id), caller)
            .await
    }

    /// Views of the posts the caller may see, in order, with authors and likes batched.
    async fn views(&self, posts: Vec<Post>, caller: &Caller) -> Result<Vec<PostView>, ApiError> {
        let mut authors: HashMap<UserId, (Option<Author>, bool)> = HashMap::new();
        for post in &posts {
            if !authors.contains_key(&post.author_id) {
                let author = self
                    .directory
                    .author(&post.author_id)
                    .await
                    .map_err(errors::api)?;
                let seen = self.author_visible(author.as_ref(), caller).await?;
                authors.insert(post.author_id.clone(), (author, seen));
            }
        }
        let visible: Vec<Post> = posts
            .into_iter()
            .filter(|p| {
                let seen = authors.get(&p.author_id).is_some_and(|(_, seen)| *seen);
                p.visible_to(&caller.user_id, caller.is_staff(), seen)
            })
            .collect();
        let ids: Vec<PostId> = visible.iter().map(|p| p.id.clone()).collect();
        let liked = self
            .store
            .liked_by(&caller.user_id, &ids)
            .await
            .map_err(errors::api)?;
        let mut out = Vec::with_capacity(visible.len());
        for post in &visible {
            let author = authors.get(&post.author_id).and_then(|(a, _)| a.as_ref());
            out.push(
                self.view(post, author, liked.contains(&post.id), caller)
                    .await?,
            );
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use shutter_media::MediaType;

    use super::*;
    use crate::model::{MarkerId, PostStatus};
    use crate::store::{MarkerWrite, Tally};
    use crate::testing::{app, post, user};

    fn caller(user: &UserId, staff: bool) -> Caller {
        Caller {
            user_id: user.clone(),
            username: "someone".into(),
            scopes: if staff {
                vec!["user".into(), "admin".into()]
            } else {
                vec!["user".into()]
            },
        }
    }

    fn new_post() -> NewPost {
        NewPost {
            caption: "#one".into(),
            location: None,
            media: vec![(MediaType::Png, 10)],
        }
    }

    #[tokio::test]
    async fn a_key_whose_post_was_deleted_is_refused() {
        let app = app();
        let ann = caller(&user(&app, "ann", false), false);
        let key = Idempotency {
            key: "k".into(),
            request_hash: "h".into(),
        };
        let created = app
            .create(&ann, new_post(), Some(key.clone()), "c")
            .await
            .unwrap();
        app.delete(&ann, &created.post.post.id, "c").await.unwrap();
        let err = app
            .create(&ann, new_post(), Some(key), "c")
            .await
            .unwrap_err();
        assert_eq!(
            (err.status(), err.problem().code.as_str()),
            (409, "idempotency_key_reused")
        );
        assert_eq!(app.store.count(), 0);
    }

    #[tokio::test]
    async fn a_likers_view_shows_the_like_and_an_edit_keeps_the_counts() {
        let app = app();
        let (ann, bob) = (user(&app, "ann", false), user(&app, "bob", false));
        let post = post(&app, &ann, PostStatus::Published);
        // GIVEN bob's like was counted
        let tally = Tally {
            post_id: post.id.clone(),
            markers: vec![MarkerWrite {
                marker: MarkerId::Like(bob.clone()),
                previous: None,
                seq: 1,
                counted: true,
            }],
            like_delta: 1,
            comment_delta: 0,
            event: None,
        };
        app.store.tally(&tally).await.unwrap();
        let seen = app.get(&caller(&bob, false), &post.id).await.unwrap();
        assert!(seen.liked_by_me);
        assert_eq!(seen.like_count, 1);
        assert!(
            !app.get(&caller(&ann, false), &post.id)
                .await
                .unwrap()
                .liked_by_me
        );
        // WHEN ann edits the caption
        let patch = UpdatePost {
            caption: Some("new".into()),
            location: None,
            version: post.version,
        };
        let edited = app
            .update(&caller(&ann, false), &post.id, patch, "c")
            .await
            .unwrap();
        // THEN the count stays
        assert_eq!(edited.like_count, 1);
        assert_eq!(app.store.stored(&post.id).unwrap().like_count, 1);
    }

    fn user_deleted(user: &UserId) -> Envelope {
        Envelope::new(
            Event::UserDeleted(shutter_events::UserDeleted {
                user_id: user.clone(),
                username: "ann".into(),
            }),
            Some(user),
            "c",
        )
    }

    #[tokio::test]
    async fn a_deleted_accounts_token_creates_and_edits_nothing() {
        let app = app();
        let ann = user(&app, "ann", false);
        let mine = post(&app, &ann, PostStatus::Published);
        let before = app.store.events().len();
        // GIVEN ann's account is deleted and the directory holds its tombstone
        app.directory.apply(&user_deleted(&ann)).await.unwrap();
        // WHEN her still-valid token creates and edits
        let err = app
            .create(&caller(&ann, false), new_post(), None, "c")
            .await
            .unwrap_err();
        assert_eq!(
            (err.status(), err.problem().code.as_str()),
            (401, "unauthorized")
        );
        let patch = UpdatePost {
            caption: Some("still here".into()),
            location: None,
            version: mine.version,
        };
        let err = app
            .update(&caller(&ann, false), &mine.id, patch, "c")
            .await
            .unwrap_err();
        // THEN both are refused and nothing is written
        assert_eq!(err.status(), 401);
        assert_eq!(app.store.count(), 1);
        assert_eq!(app.store.stored(&mine.id).unwrap().caption, mine.caption);
        assert_eq!(app.store.events().len(), before);
    }

    fn suspended(user: &UserId, banned: bool, seq: u64) -> Envelope {
        let until = (!banned).then(|| "2999-01-01T00:00:00.000Z".to_owned());
        Envelope::new(
            Event::UserSuspended(shutter_events::UserSuspended {
                user_id: user.clone(),
                username: "ann".into(),
                banned,
                until,
                seq,
            }),
            Some(user),
            "c",
        )
    }

    fn reinstated(user: &UserId, seq: u64) -> Envelope {
        Envelope::new(
            Event::UserReinstated(shutter_events::UserReinstated {
                user_id: user.clone(),
                username: "ann".into(),
                seq,
            }),
            Some(user),
            "c",
        )
    }

    fn page() -> PageRequest {
        PageRequest::parse(None, None).unwrap()
    }

    #[tokio::test]
    async fn a_suspended_accounts_token_writes_nothing_until_reinstated_and_still_reads() {
        let app = app();
        let ann = user(&app, "ann", false);
        let mine = post(&app, &ann, PostStatus::Published);
        let before = app.store.events().len();
        // GIVEN ann is suspended and the directory holds it
        app.directory
            .apply(&suspended(&ann, false, 1))
            .await
            .unwrap();
        let me = caller(&ann, false);
        // WHEN her still-valid token creates, edits and deletes THEN each is refused with
        // 403 account_suspended and the end of the suspension, and nothing is written
        let patch = || UpdatePost {
            caption: Some("still here".into()),
            location: None,
            version: mine.version,
        };
        let refused = [
            app.create(&me, new_post(), None, "c").await.unwrap_err(),
            app.update(&me, &mine.id, patch(), "c").await.unwrap_err(),
            app.delete(&me, &mine.id, "c").await.unwrap_err(),
        ];
        for err in refused {
            let p = err.problem();
            assert_eq!((p.status, p.code.as_str()), (403, "account_suspended"));
            assert_eq!(p.until.as_deref(), Some("2999-01-01T00:00:00.000Z"));
        }
        assert_eq!(app.store.count(), 1);
        assert_eq!(app.store.events().len(), before);
        // AND she still reads
        assert!(app.get(&me, &mine.id).await.is_ok());
        let username = Username::try_from("ann".to_owned()).unwrap();
        assert!(app.posts_by_author(&me, &username, page()).await.is_ok());
        // WHEN she is reinstated (a higher seq) and the suspension arrives again, late
        app.directory.apply(&reinstated(&ann, 2)).await.unwrap();
        app.directory
            .apply(&suspended(&ann, false, 1))
            .await
            .unwrap();
        // THEN she writes again
        app.update(&me, &mine.id, patch(), "c").await.unwrap();
        app.create(&me, new_post(), None, "c").await.unwrap();
    }

    #[tokio::test]
    async fn a_banned_authors_posts_are_hidden_from_others_until_the_ban_is_lifted() {
        let app = app();
        let (ann, bob) = (user(&app, "ann", false), user(&app, "bob", false));
        let mine = post(&app, &ann, PostStatus::Published);
        let username = Username::try_from("ann".to_owned()).unwrap();
        // GIVEN ann is banned
        app.directory
            .apply(&suspended(&ann, true, 1))
            .await
            .unwrap();
        // THEN bob gets 404 on her post, her list and under the hashtag it has
        let as_bob = caller(&bob, false);
        assert_eq!(app.get(&as_bob, &mine.id).await.unwrap_err().status(), 404);
        let err = app
            .posts_by_author(&as_bob, &username, page())
            .await
            .unwrap_err();
        assert_eq!(
            (err.status(), err.problem().code.as_str()),
            (404, "not_found")
        );
        let tagged = app
            .posts_by_hashtag(&as_bob, "beach".into(), page())
            .await
            .unwrap();
        assert!(tagged.items.is_empty());
        // AND she and staff still see it
        assert!(app.get(&caller(&ann, false), &mine.id).await.is_ok());
        assert!(app.get(&caller(&bob, true), &mine.id).await.is_ok());
        let own = app
            .posts_by_author(&caller(&ann, false), &username, page())
            .await
            .unwrap();
        assert_eq!(own.items.len(), 1);
        // WHEN the ban is lifted THEN bob sees it again
        app.directory.apply(&reinstated(&ann, 2)).await.unwrap();
        assert!(app.get(&as_bob, &mine.id).await.is_ok());
        let listed = app
            .posts_by_author(&as_bob, &username, page())
            .await
            .unwrap();
        assert_eq!(listed.items.len(), 1);
    }

    #[tokio::test]
    async fn a_removed_post_is_shown_to_its_author_with_why_and_to_nobody_else() {
        let app = app();
        let (ann, bob) = (user(&app, "ann", false), user(&app, "bob", false));
        let mine = post(&app, &ann, PostStatus::Published);
        let kept = post(&app, &ann, PostStatus::Published);
        // GIVEN staff removed one of ann's posts
        let removed = mine.removal("spam", "2026-12-07T00:00:00.000Z").unwrap();
        app.store.save(&mine, &removed, &[]).await.unwrap();
        let username = Username::try_from("ann".to_owned()).unwrap();
        let ids =
            |page: PostPage| -> Vec<PostId> { page.items.into_iter().map(|p| p.id).collect() };
        // THEN bob gets 404 on it, and it is in none of the lists he sees
        let as_bob = caller(&bob, false);
        assert_eq!(app.get(&as_bob, &mine.id).await.unwrap_err().status(), 404);
        let listed = app.posts_by_author(&as_bob, &username, page()).await;
        assert_eq!(ids(listed.unwrap()), vec![kept.id.clone()]);
        let tagged = app.posts_by_hashtag(&as_bob, "beach".into(), page()).await;
        assert_eq!(ids(tagged.unwrap()), vec![kept.id.clone()]);
        // AND ann sees it, with the note, in her post and her own list; staff too
        let as_ann = caller(&ann, false);
        let seen = app.get(&as_ann, &mine.id).await.unwrap();
        let why = seen.removed.unwrap();
        assert_eq!(
            (why.note.as_str(), why.removed_at.as_str()),
            ("spam", "2026-12-07T00:00:00.000Z")
        );
        let own = app
            .posts_by_author(&as_ann, &username, page())
            .await
            .unwrap();
        assert_eq!(own.items.len(), 2);
        assert!(
            own.items
                .iter()
                .any(|p| p.id == mine.id && p.removed.is_some())
        );
        assert!(
            app.get(&caller(&bob, true), &mine.id)
                .await
                .unwrap()
                .removed
                .is_some()
        );
        // AND she cannot edit it back into view (409 post_removed, no event), but may
        // delete it
        let patch = UpdatePost {
            caption: Some("innocent".into()),
            location: None,
            version: removed.version,
        };
        let before = app.store.events().len();
        let err = app.update(&as_ann, &mine.id, patch, "c").await.unwrap_err();
        assert_eq!(
            (err.status(), err.problem().code.as_str()),
            (409, "post_removed")
        );
        assert_eq!(app.store.events().len(), before);
        app.delete(&as_ann, &mine.id, "c").await.unwrap();
    }

    #[tokio::test]
    async fn a_write_racing_the_tombstone_is_refused_by_the_store() {
        let app = app();
        let ann = user(&app, "ann", false);
        // GIVEN the directory had not seen the deletion when the request was checked,
        // but the transaction meets the tombstone
        app.store.account_deleted(&ann);
        let err = app
            .create(&caller(&ann, false), new_post(), None, "c")
            .await
            .unwrap_err();
        assert_eq!(err.status(), 401);
        assert_eq!(app.store.count(), 0);
        assert!(app.store.events().is_empty());
    }

    #[tokio::test]
    async fn mentions_are_looked_up_together_and_each_user_once() {
        let app = app();
        let (ann, bob) = (user(&app, "ann", false), user(&app, "bob", false));
        let new = NewPost {
            caption: "@bob @nobody @ann @BOB".into(),
            ..new_post()
        };
        let created = app
            .create(&caller(&ann, false), new, None, "c")
            .await
            .unwrap();
        let ids: Vec<UserId> = created
            .post
            .post
            .mentions
            .iter()
            .map(|m| m.user_id.clone())
            .collect();
        assert_eq!(ids, vec![bob, ann]);
    }

    #[tokio::test]
    async fn a_hashtag_lists_only_posts_that_still_have_it() {
        let app = app();
        let ann = user(&app, "ann", false);
        let mut tagged = post(&app, &ann, PostStatus::Published);
        // GIVEN an entry under #beach left behind by a clean-up that failed
        tagged.hashtags = vec!["sea".into()];
        tagged.caption = "#sea".into();
        app.store.insert(tagged.clone());
        assert_eq!(app.store.tagged("beach"), vec![tagged.id.clone()]);
        // WHEN #beach is listed THEN the post is not shown there, but under #sea
        let page = PageRequest::parse(None, None).unwrap();
        let listed = app
            .posts_by_hashtag(&caller(&ann, false), "beach".into(), page)
            .await
            .unwrap();
        assert!(listed.items.is_empty());
        let page = PageRequest::parse(None, None).unwrap();
        let listed = app
            .posts_by_hashtag(&caller(&ann, false), "sea".into(), page)
            .await
            .unwrap();
        assert_eq!(listed.items.len(), 1);
    }

    #[tokio::test]
    async fn lists_need_the_cursor_key_to_resume() {
        let mut app = app();
        app.cursors = None;
        let ann = user(&app, "ann", false);
        let page = PageRequest::parse(None, Some("a-cursor")).unwrap();
        let err = app
            .posts_by_hashtag(&caller(&ann, false), "beach".into(), page)
            .await
            .unwrap_err();
        assert_eq!(err.status(), 500);
    }
}
