//! The use cases: load, decide (with [`crate::model`]), save (with the store and the
//! queue).
//!
//! Those the endpoints call answer in [`ApiError`]; those the consumers call
//! ([`App::write_comment`] for `comments-writer`, [`App::delete_thread`] which
//! `comments-directory-events` shares with `DELETE /v1/comments/{id}`) answer in
//! [`StoreError`], so each consumer decides between retry and poison itself.

use serde::{Deserialize, Serialize};
use shutter_core::{ApiError, CommentId, PageRequest, PostId, UserId};
use shutter_directory::{Directory, Viewer, visible_post};
use shutter_events::{Envelope, Event};
use shutter_http::Caller;
use shutter_store::CursorKey;
use shutter_store::{StoreError, StoreResult};

use crate::App;
use crate::errors;
use crate::model::{
    Comment, CommentPage, CommentText, CommentView, MAX_MENTIONS, UserRef, mentioned_usernames,
};
use crate::queue::{CommentWrite, WriteQueue};
use crate::store::{self, Claimed, CommentsReader, CommentsStore, Idempotency, IdempotencyKeys};

/// A comment as the client sent it, its fields checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewComment {
    pub post_id: PostId,
    pub text: CommentText,
    /// The comment it answers (any comment of the same post).
    pub reply_to: Option<CommentId>,
}

/// What the writer did with one queued comment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    Stored,
    /// Stored before: SQS delivered the message again, or the comment was deleted since.
    Duplicate,
    /// Its parent was deleted after it was accepted: stored as a top-level comment.
    StoredTopLevel,
    /// Its post was deleted after it was accepted: dropped.
    PostGone,
    /// Its author's account was deleted after it was accepted: dropped.
    AuthorGone,
}

/// How many times a comments page reads the post's comments to make up for those hidden
/// from the viewer by a block (see [`App::list`]).
const MAX_READS_PER_PAGE: usize = 3;

/// Where a comments page resumes: the store's position of the last comment read.
#[derive(Debug, Serialize, Deserialize)]
struct Position {
    sk: String,
}

/// Binds a cursor to one post's comments.
fn cursor_scope(post_id: &PostId) -> String {
    format!("comments:{post_id}")
}

fn viewer(caller: &Caller) -> Viewer<'_> {
    Viewer {
        user_id: &caller.user_id,
        staff: caller.is_staff(),
    }
}

/// The users `text` mentions who exist, in order, each once (others stay plain text):
/// one batch of lookups for them all (checked text has at most [`MAX_MENTIONS`]).
async fn resolve_mentions<D: Directory + ?Sized>(
    directory: &D,
    text: &str,
) -> StoreResult<Vec<UserRef>> {
    let names: Vec<String> = mentioned_usernames(text)
        .into_iter()
        .take(MAX_MENTIONS)
        .map(String::from)
        .collect();
    if names.is_empty() {
        return Ok(Vec::new());
    }
    let mut mentions: Vec<UserRef> = Vec::with_capacity(names.len());
    for author in directory.authors_by_username(&names).await? {
        if !mentions.iter().any(|m| m.id == author.user_id) {
            mentions.push(UserRef {
                id: author.user_id,
                username: author.username,
            });
        }
    }
    Ok(mentions)
}

impl<S: CommentsReader, D: Directory, Q, C> App<S, D, Q, C> {
    /// The live comment `id`, or 404.
    async fn existing(&self, id: &CommentId) -> Result<Comment, ApiError> {
        self.store
            .comment(id)
            .await
            .map_err(errors::api)?
            .ok_or(ApiError::NotFound("comment"))
    }

    /// `comments` as `user` sees them (which of them they like).
    async fn views(
        &self,
        user: &UserId,
        comments: &[Comment],
    ) -> Result<Vec<CommentView>, ApiError> {
        let ids: Vec<CommentId> = comments.iter().map(|c| c.id.clone()).collect();
        let liked = if ids.is_empty() {
            Default::default()
        } else {
            self.store.liked_by(user, &ids).await.map_err(errors::api)?
        };
        Ok(comments
            .iter()
            .map(|c| CommentView::new(c, liked.contains(&c.id)))
            .collect())
    }
}

/// Refuses a write by an account this service's directory knows to be deleted (401),
/// suspended or banned (403 `account_suspended`): see [`shutter_directory::refuse_inactive`].
/// Before the `UserDeleted` / `UserSuspended` reaches the directory (seconds), the write
/// passes: a deleted author's comment is then dropped by the writer (which meets the
/// tombstone) or erased by the deletion cascade (which runs after the tombstone is
/// written); a suspended author's comment stays, as any written before the suspension
/// (a moderator removes it if it breaks the rules; a ban hides it).
async fn refuse_inactive<D: Directory + ?Sized>(
    directory: &D,
    caller: &Caller,
) -> Result<(), ApiError> {
    shutter_directory::refuse_inactive(directory, &caller.user_id).await
}

/// A comment accepted by `POST /v1/posts/{id}/comments`, and whether it is the one an
/// earlier request with the same `Idempotency-Key` accepted.
#[derive(Debug)]
pub struct Accepted {
    pub comment: CommentView,
    pub replayed: bool,
}

impl<S: CommentsReader + IdempotencyKeys, D: Directory, Q: WriteQueue, C> App<S, D, Q, C> {
    /// `caller` comments on a post they may see: the comment as it will be stored, on its
    /// way to the writer. A reply to a reply answers its top-level comment.
    pub async fn create(
        &self,
        caller: &Caller,
        new: NewComment,
        correlation_id: &str,
    ) -> Result<CommentView, ApiError> {
        Ok(self
            .create_once(caller, new, None, correlation_id)
            .await?
            .comment)
    }

    /// [`App::create`], with an idempotency key: the same request again answers the
    /// comment the first accepted and sends it to the writer again (which stores a
    /// comment once, by its id), so a retry after any failure stores one comment. The
    /// same key with another request is a conflict ([`store::KEY_REUSED`]).
    pub async fn create_once(
        &self,
        caller: &Caller,
        new: NewComment,
        idempotency: Option<Idempotency>,
        correlation_id: &str,
    ) -> Result<Accepted, ApiError> {
        refuse_inactive(&self.directory, caller).await?;
        visible_post(&self.directory, &new.post_id, viewer(caller))
            .await
            .map_err(errors::api)?
            .ok_or(ApiError::NotFound("post"))?;
        let reply_to = match &new.reply_to {
            None => None,
            Some(id) => {
                let parent = self
                    .store
                    .comment(id)
                    .await
                    .map_err(errors::api)?
                    .filter(|c| c.post_id == new.post_id)
                    .ok_or_else(|| {
                        ApiError::invalid("reply_to", "is not a comment on this post")
                    })?;
                Some(parent.thread().clone())
            }
        };
        // Tokens from before usernames were claims carry none: the directory knows it.
        let username = if caller.username.is_empty() {
            self.directory
                .author(&caller.user_id)
                .await
                .map_err(errors::api)?
                .map(|a| a.username)
                .unwrap_or_default()
        } else {
            caller.username.clone()
        };
        let author = UserRef {
            id: caller.user_id.clone(),
            username,
        };
        let mentions = resolve_mentions(&self.directory, new.text.as_str())
            .await
            .map_err(errors::api)?;
        let comment = Comment::new(new.post_id, author, new.text, reply_to, mentions);
        let (comment, replayed) = match &idempotency {
            None => (comment, false),
            Some(key) => match self
                .store
                .claim(&caller.user_id, key, &comment)
                .await
                .map_err(errors::api)?
            {
                Claimed::New => (comment, false),
                Claimed::Replayed(first) => (*first, true),
            },
        };
        let write = CommentWrite {
            comment,
            correlation_id: correlation_id.to_owned(),
        };
        self.queue.send(&write).await.map_err(errors::queue)?;
        let comment = write.comment;
        tracing::info!(comment_id = %comment.id, post_id = %comment.post_id, replayed, "comment accepted");
        Ok(Accepted {
            comment: CommentView::new(&comment, false),
            replayed,
        })
    }
}

impl<S: CommentsReader, D: Directory, Q> App<S, D, Q, CursorKey> {
    /// A page of the comments of a post `caller` may see: oldest thread first, replies
    /// under their parent. Nothing by someone who blocks the caller or whom the caller
    /// blocks: as the directory knows blocks, so from the moment their `UserBlocked`
    /// reaches it (until then, for the event's lag, such comments still show).
    pub async fn list(
        &self,
        caller: &Caller,
        post_id: &PostId,
        page: &PageRequest,
    ) -> Result<CommentPage, ApiError> {
        let scope = cursor_scope(post_id);
        let after = match page.cursor.as_deref() {
            Some(c) => Some(self.cursors.signer().await?.verify::<Position>(&scope, c)?),
            None => None,
        };
        visible_post(&self.directory, post_id, viewer(caller))
            .await
            .map_err(errors::api)?
            .ok_or(ApiError::NotFound("post"))?;
        let (comments, next) = self
            .unhidden_page(viewer(caller), post_id, after.map(|p| p.sk), page.limit)
            .await?;
        let items = self.views(&caller.user_id, &comments).await?;
        let next_cursor = match next {
            Some(sk) => Some(self.cursors.signer().await?.sign(&scope, &Position { sk })),
            None => None,
        };
        Ok(CommentPage { items, next_cursor })
    }
}

impl<S: CommentsReader, D: Directory, Q, C> App<S, D, Q, C> {
    /// Up to `limit` comments of the post after `after`, without those hidden from
    /// `viewer` (replies of others under a hidden comment stay), and the position to
    /// resume after. Hidden are: comments whose author blocks the viewer or is blocked by
    /// them, or is banned (as the directory's `blocked_among` knows, from when the
    /// `UserBlocked` / `UserSuspended` reaches it until the `UserUnblocked` /
    /// `UserReinstated` does), and comments staff removed, but from their author. Staff
    /// see every comment, as they see every post. Hidden comments are replaced by reading
    /// on, at most [`MAX_READS_PER_PAGE`] times: a page costs O(`limit`) reads however
    /// many are hidden, and may then be short (its cursor resumes after the last comment
    /// read, shown or not, so it stays valid).
    async fn unhidden_page(
        &self,
        viewer: Viewer<'_>,
        post_id: &PostId,
        mut after: Option<String>,
        limit: u16,
    ) -> Result<(Vec<Comment>, Option<String>), ApiError> {
        let mut shown: Vec<Comment> = Vec::with_capacity(usize::from(limit));
        for _ in 0..MAX_READS_PER_PAGE {
            let want = limit.saturating_sub(u16::try_from(shown.len()).unwrap_or(u16::MAX));
            let (comments, next) = self
                .store
                .page(post_id, after.as_deref(), want)
                .await
                .map_err(errors::api)?;
            after = next;
            let hidden = if viewer.staff {
                Default::default()
            } else {
                let authors: Vec<UserId> = comments.iter().map(|c| c.author.id.clone()).collect();
                self.directory
                    .blocked_among(viewer.user_id, &authors)
                    .await
                    .map_err(errors::api)?
            };
            shown.extend(comments.into_iter().filter(|c| {
                !hidden.contains(&c.author.id) && c.shown_to(viewer.user_id, viewer.staff)
            }));
            if after.is_none() || shown.len() >= usize::from(limit) {
                break;
            }
        }
        Ok((shown, after))
    }
}

impl<S: CommentsStore, D: Directory, Q, C> App<S, D, Q, C> {
    /// The author replaces the text of their comment.
    pub async fn edit(
        &self,
        caller: &Caller,
        id: &CommentId,
        text: CommentText,
        correlation_id: &str,
    ) -> Result<CommentView, ApiError> {
        refuse_inactive(&self.directory, caller).await?;
        let current = self.existing(id).await?;
        if !current.may_edit(&caller.user_id) {
            return Err(ApiError::Forbidden);
        }
        // A removal is final: its author may delete the comment, not rewrite it into
        // something else under the moderator's note.
        if current.removed.is_some() {
            return Err(ApiError::conflict(
                "comment_removed",
                "id",
                "the comment was removed by a moderator and can no longer be edited",
            ));
        }
        let mentions = resolve_mentions(&self.directory, text.as_str())
            .await
            .map_err(errors::api)?;
        let updated = current.edited(text, mentions, shutter_core::now_rfc3339());
        let event = Envelope::new(
            Event::CommentEdited(updated.edit_facts()),
            Some(&caller.user_id),
            correlation_id,
        );
        self.store
            .edit(&updated, &event)
            .await
            .map_err(errors::api)?;
        let liked = self
            .store
            .liked_by(&caller.user_id, std::slice::from_ref(&updated.id))
            .await
            .map_err(errors::api)?;
        Ok(CommentView::new(&updated, liked.contains(&updated.id)))
    }

    /// Its author, the post's author or staff delete a comment and, if it is a top-level
    /// one, its replies. How many comments were deleted.
    pub async fn delete(
        &self,
        caller: &Caller,
        id: &CommentId,
        correlation_id: &str,
    ) -> Result<usize, ApiError> {
        refuse_inactive(&self.directory, caller).await?;
        let comment = self.existing(id).await?;
        let (me, staff) = (&caller.user_id, caller.is_staff());
        // The post is looked up only when nothing else already allows the delete.
        let post_author = if comment.may_delete(me, staff, None) {
            None
        } else {
            self.directory
                .post(&comment.post_id)
                .await
                .map_err(errors::api)?
                .map(|p| p.author_id)
        };
        if !comment.may_delete(me, staff, post_author.as_ref()) {
            return Err(ApiError::Forbidden);
        }
        let n = self
            .delete_thread(&comment, me, correlation_id)
            .await
            .map_err(errors::api)?;
        tracing::info!(comment_id = %id, deleted = n, "comment deleted");
        Ok(n)
    }

    /// `caller` likes a comment on a post they may see; liking twice counts once. A
    /// deleted account's token likes nothing (401; the store's guard refuses one that
    /// races the tombstone, which the deletion cascade would not find later).
    pub async fn like(
        &self,
        caller: &Caller,
        id: &CommentId,
        correlation_id: &str,
    ) -> Result<(), ApiError> {
        refuse_inactive(&self.directory, caller).await?;
        let comment = self.existing(id).await?;
        // A comment on a post the caller may not see is not revealed to exist, nor one
        // the list hides from them (removed, or by a banned or blocking/blocked author).
        visible_post(&self.directory, &comment.post_id, viewer(caller))
            .await
            .map_err(errors::api)?
            .ok_or(ApiError::NotFound("comment"))?;
        self.refuse_hidden(caller, &comment).await?;
        let event = Envelope::new(
            Event::CommentLikeAdded(comment.like_by(&caller.user_id)),
            Some(&caller.user_id),
            correlation_id,
        );
        match self.store.like(&comment, &caller.user_id, &event).await {
            Ok(()) | Err(StoreError::Conflict(store::ALREADY_LIKED)) => Ok(()),
            Err(err) => Err(errors::api(err)),
        }
    }

    /// 404 for a comment the comments list does not show `caller` (see
    /// [`App::unhidden_page`]).
    async fn refuse_hidden(&self, caller: &Caller, comment: &Comment) -> Result<(), ApiError> {
        let staff = caller.is_staff();
        if !comment.shown_to(&caller.user_id, staff) {
            return Err(ApiError::NotFound("comment"));
        }
        if !staff
            && !self
                .directory
                .blocked_among(&caller.user_id, std::slice::from_ref(&comment.author.id))
                .await
                .map_err(errors::api)?
                .is_empty()
        {
            return Err(ApiError::NotFound("comment"));
        }
        Ok(())
    }

    /// `caller` takes back their like; taking back what is not there changes nothing.
    pub async fn unlike(
        &self,
        caller: &Caller,
        id: &CommentId,
        correlation_id: &str,
    ) -> Result<(), ApiError> {
        refuse_inactive(&self.directory, caller).await?;
        let comment = self.existing(id).await?;
        let event = Envelope::new(
            Event::CommentLikeRemoved(comment.like_by(&caller.user_id)),
            Some(&caller.user_id),
            correlation_id,
        );
        match self.store.unlike(&comment, &caller.user_id, &event).await {
            Ok(()) | Err(StoreError::Conflict(store::NOT_LIKED)) => Ok(()),
            Err(err) => Err(errors::api(err)),
        }
    }

    /// Deletes `comment` and, if it is a top-level comment, its replies (replies first, so
    /// a retry after a failure finds what is left). Each deleted comment emits one
    /// `CommentDeleted`; a comment someone else deleted meanwhile emits nothing. Returns
    /// how many were deleted.
    pub async fn delete_thread(
        &self,
        comment: &Comment,
        deleted_by: &UserId,
        correlation_id: &str,
    ) -> StoreResult<usize> {
        let mut doomed = if comment.reply_to.is_none() {
            self.store.replies(comment).await?
        } else {
            Vec::new()
        };
        doomed.push(comment.clone());
        let mut deleted = 0;
        for c in &doomed {
            let event = Envelope::new(
                Event::CommentDeleted(c.deleted_by(deleted_by)),
                Some(deleted_by),
                correlation_id,
            );
            match self.store.delete(c, &event).await {
                Ok(()) => deleted += 1,
                Err(StoreError::Conflict(store::COMMENT_GONE)) => {}
                Err(err) => return Err(err),
            }
        }
        Ok(deleted)
    }

    /// Stores one queued comment with its `CommentAdded`, once. A reply whose parent was
    /// deleted in the meantime is kept as a top-level comment (the author's words are not
    /// lost, and a message never fails for ever); a comment on a post deleted meanwhile is
    /// dropped, as that post's comments are, and so is one whose author's account was
    /// deleted meanwhile (as the directory knows it: its cascade erases what came
    /// before).
    pub async fn write_comment(&self, write: &CommentWrite) -> StoreResult<Written> {
        if self.directory.post(&write.comment.post_id).await?.is_none() {
            return Ok(Written::PostGone);
        }
        let added = |c: &Comment| {
            Envelope::new(
                Event::CommentAdded(c.added()),
                Some(&c.author.id),
                &write.correlation_id,
            )
        };
        match self
            .store
            .insert(&write.comment, &added(&write.comment))
            .await
        {
            Ok(()) => Ok(Written::Stored),
            Err(StoreError::Conflict(store::COMMENT_EXISTS)) => Ok(Written::Duplicate),
            Err(StoreError::Conflict(store::ACCOUNT_DELETED)) => Ok(Written::AuthorGone),
            Err(StoreError::Conflict(store::PARENT_GONE)) => {
                let top = Comment {
                    reply_to: None,
                    ..write.comment.clone()
                };
                match self.store.insert(&top, &added(&top)).await {
                    Ok(()) => Ok(Written::StoredTopLevel),
                    Err(StoreError::Conflict(store::COMMENT_EXISTS)) => Ok(Written::Duplicate),
                    Err(StoreError::Conflict(store::ACCOUNT_DELETED)) => Ok(Written::AuthorGone),
                    Err(err) => Err(err),
                }
            }
            Err(err) => Err(err),
        }
    }
}

#[cfg(test)]
mod tests {
    //! Every use case against the memory fakes, in GIVEN / WHEN / THEN, with its refusals
    //! and what a refusal leaves unchanged.

    #![allow(clippy::unwrap_used)]

    use shutter_core::PageRequest;
    use shutter_events::EventType;

    use super::*;
    use crate::testing::{text, world};

    fn page(limit: &str, cursor: Option<&str>) -> PageRequest {
        PageRequest::parse(Some(limit), cursor).unwrap()
    }

    #[tokio::test]
    async fn someone_elses_comment_cannot_be_edited_and_nothing_changes() {
        // GIVEN bob's comment
        let w = world();
        let c = w.comment(&w.bob, "mine #own", None).await;
        let (before, events) = (w.app.store.comments(), w.app.store.events());
        // WHEN carol, the post's author ann, and a moderator try to edit it
        for other in [&w.carol, &w.ann, &w.staff] {
            let err = w
                .app
                .edit(&other.caller(), &c.id, text("pwned"), "corr")
                .await
                .unwrap_err();
            // THEN each is refused, and the comment and the events are as they were
            assert_eq!(err.status(), 403);
        }
        assert_eq!(w.app.store.comments(), before);
        assert_eq!(w.app.store.events(), events);
    }

    #[tokio::test]
    async fn someone_elses_comment_cannot_be_deleted_and_nothing_changes() {
        // GIVEN bob's comment with carol's reply and ann's like
        let w = world();
        let c = w.comment(&w.bob, "mine", None).await;
        w.comment(&w.carol, "reply", Some(&c.id)).await;
        w.app.like(&w.ann.caller(), &c.id, "corr").await.unwrap();
        let (before, events) = (w.app.store.comments(), w.app.store.events());
        // WHEN carol (who is neither its author nor the post's) deletes it
        let err = w
            .app
            .delete(&w.carol.caller(), &c.id, "corr")
            .await
            .unwrap_err();
        // THEN she is refused, and every comment, like and event stays
        assert_eq!(err.status(), 403);
        assert_eq!(w.app.store.comments(), before);
        assert_eq!(w.app.store.events(), events);
        assert!(w.listed(&w.ann).await[0].liked_by_me);
    }

    #[tokio::test]
    async fn the_author_of_the_post_deletes_a_thread_and_each_comment_is_an_event() {
        // GIVEN bob's comment on ann's post, with a reply by carol
        let w = world();
        let c = w.comment(&w.bob, "parent", None).await;
        let r = w.comment(&w.carol, "reply", Some(&c.id)).await;
        // WHEN ann deletes bob's comment
        let n = w.app.delete(&w.ann.caller(), &c.id, "corr").await.unwrap();
        // THEN the thread is gone, each with a CommentDeleted by ann, replies first
        assert_eq!(n, 2);
        assert_eq!(w.app.store.comment_count(), 0);
        let deleted = w.events(|e| match e {
            Event::CommentDeleted(d) => Some((d.comment_id.clone(), d.deleted_by.clone())),
            _ => None,
        });
        assert_eq!(
            deleted,
            vec![(r.id, w.ann.id.clone()), (c.id.clone(), w.ann.id.clone())]
        );
        let actors: Vec<_> = w.app.store.events()[2..]
            .iter()
            .map(|e| e.actor.clone())
            .collect();
        assert_eq!(actors, vec![Some(w.ann.id.clone()); 2]);
    }

    #[tokio::test]
    async fn a_thread_deleted_meanwhile_by_someone_else_emits_nothing_more() {
        // GIVEN a comment that two people load and delete at once
        let w = world();
        let c = w.comment(&w.bob, "doomed", None).await;
        let loaded = w.app.store.comment(&c.id).await.unwrap().unwrap();
        assert_eq!(
            w.app.delete_thread(&loaded, &w.bob.id, "a").await.unwrap(),
            1
        );
        // WHEN the second delete arrives
        let n = w
            .app
            .delete_thread(&loaded, &w.staff.id, "b")
            .await
            .unwrap();
        // THEN it deletes nothing and emits nothing
        assert_eq!(n, 0);
        assert_eq!(
            w.event_types(),
            vec![EventType::CommentAdded, EventType::CommentDeleted]
        );
    }

    #[tokio::test]
    async fn an_edit_is_stored_with_its_event_and_keeps_the_callers_like() {
        // GIVEN bob's comment that bob likes
        let w = world();
        let c = w.comment(&w.bob, "draft", None).await;
        w.app.like(&w.bob.caller(), &c.id, "corr").await.unwrap();
        // WHEN bob edits it
        let edited = w
            .app
            .edit(
                &w.bob.caller(),
                &c.id,
                text("final #Take for @ann"),
                "edit-corr",
            )
            .await
            .unwrap();
        // THEN the view shows the new text, its tags and mentions, and his like
        assert_eq!(edited.text, "final #Take for @ann");
        assert_eq!(edited.hashtags, vec!["take"]);
        assert_eq!(edited.mentions[0].id, w.ann.id);
        assert!(edited.liked_by_me && edited.like_count == 1);
        assert_eq!(w.app.store.comments()[0].text, "final #Take for @ann");
        // AND the event carries the comment after the edit
        let events = w.app.store.events();
        let last = events.last().unwrap();
        assert_eq!(last.correlation_id, "edit-corr");
        let Event::CommentEdited(facts) = &last.event else {
            panic!("{:?}", last.event)
        };
        assert_eq!((&facts.comment_id, &facts.author_id), (&c.id, &w.bob.id));
        assert_eq!(facts.hashtags, vec!["take"]);
    }

    #[tokio::test]
    async fn editing_or_deleting_a_missing_comment_is_a_404() {
        let w = world();
        let missing = CommentId::generate();
        let bob = w.bob.caller();
        let edit = w.app.edit(&bob, &missing, text("x"), "c").await;
        assert_eq!(edit.unwrap_err().status(), 404);
        let delete = w.app.delete(&bob, &missing, "c").await;
        assert_eq!(delete.unwrap_err().status(), 404);
        assert!(w.app.store.events().is_empty());
    }

    #[tokio::test]
    async fn a_comment_on_a_post_the_caller_may_not_see_is_refused_and_nothing_is_queued() {
        // GIVEN ann's post, now private
        let w = world();
        w.ann_goes_private().await;
        let new = NewComment {
            post_id: w.post.clone(),
            text: text("hi"),
            reply_to: None,
        };
        // WHEN bob, who does not follow her, comments
        let err = w
            .app
            .create(&w.bob.caller(), new.clone(), "c")
            .await
            .unwrap_err();
        // THEN the post is not found, and nothing is queued
        assert_eq!(err.status(), 404);
        assert!(w.app.queue.take().is_empty());
        // AND a post that does not exist is not found either
        let elsewhere = NewComment {
            post_id: PostId::generate(),
            ..new
        };
        let err = w.app.create(&w.ann.caller(), elsewhere, "c").await;
        assert_eq!(err.unwrap_err().status(), 404);
        assert!(w.app.queue.take().is_empty());
    }

    #[tokio::test]
    async fn a_reply_to_a_comment_of_another_post_is_refused() {
        // GIVEN a comment on another post of ann's
        let w = world();
        let other = PostId::generate();
        w.app.directory.add_post(shutter_directory::PostRef {
            post_id: other.clone(),
            author_id: w.ann.id.clone(),
        });
        let elsewhere = Comment::new(
            other,
            UserRef {
                id: w.bob.id.clone(),
                username: "bob".into(),
            },
            text("there"),
            None,
            vec![],
        );
        w.app.store.add(&elsewhere);
        // WHEN carol replies to it on this post
        let new = NewComment {
            post_id: w.post.clone(),
            text: text("here"),
            reply_to: Some(elsewhere.id.clone()),
        };
        let err = w.app.create(&w.carol.caller(), new, "c").await.unwrap_err();
        // THEN the reply is refused naming reply_to, and nothing is queued
        assert_eq!(err.problem().field.as_deref(), Some("reply_to"));
        assert!(w.app.queue.take().is_empty());
    }

    #[tokio::test]
    async fn the_accepted_comment_is_what_is_queued_with_the_requests_correlation_id() {
        let w = world();
        let mut bob = w.bob.caller();
        // A token without a username: the directory names the author.
        bob.username.clear();
        let new = NewComment {
            post_id: w.post.clone(),
            text: text("hello @carol #Hi"),
            reply_to: None,
        };
        let accepted = w.app.create(&bob, new, "corr-7").await.unwrap();
        let queued = w.app.queue.take();
        assert_eq!(queued.len(), 1);
        assert_eq!(queued[0].correlation_id, "corr-7");
        assert_eq!(CommentView::new(&queued[0].comment, false), accepted);
        assert_eq!(accepted.author.username, "bob");
        assert_eq!(accepted.mentions[0].username, "carol");
        assert_eq!(accepted.hashtags, vec!["hi"]);
        // Nothing is stored until the writer runs.
        assert_eq!(w.app.store.comment_count(), 0);
    }

    #[tokio::test]
    async fn a_comment_on_a_post_the_caller_may_not_see_cannot_be_liked() {
        // GIVEN ann's comment on her post, which then goes private
        let w = world();
        let c = w.comment(&w.ann, "mine", None).await;
        w.ann_goes_private().await;
        // WHEN bob likes it
        let err = w.app.like(&w.bob.caller(), &c.id, "c").await.unwrap_err();
        // THEN the comment is not found and nothing changes
        assert_eq!(err.status(), 404);
        assert_eq!(w.app.store.comments()[0].like_count, 0);
        assert_eq!(w.event_types(), vec![EventType::CommentAdded]);
    }

    #[tokio::test]
    async fn taking_back_a_like_that_is_not_there_changes_nothing() {
        let w = world();
        let c = w.comment(&w.bob, "hi", None).await;
        w.app.unlike(&w.carol.caller(), &c.id, "c").await.unwrap();
        assert_eq!(w.app.store.comments()[0].like_count, 0);
        assert_eq!(w.event_types(), vec![EventType::CommentAdded]);
    }

    #[tokio::test]
    async fn a_like_of_a_comment_deleted_after_it_was_read_is_a_404() {
        // GIVEN a comment deleted between the like's read and its write
        let w = world();
        let c = w.comment(&w.bob, "going", None).await;
        let loaded = w.app.store.comment(&c.id).await.unwrap().unwrap();
        w.app.delete(&w.bob.caller(), &c.id, "c").await.unwrap();
        let event = Envelope::new(
            Event::CommentLikeAdded(loaded.like_by(&w.carol.id)),
            None,
            "c",
        );
        // WHEN the like is written, THEN the store says it is gone, which clients see as 404
        let err = w
            .app
            .store
            .like(&loaded, &w.carol.id, &event)
            .await
            .unwrap_err();
        assert_eq!(errors::api(err).status(), 404);
    }

    #[tokio::test]
    async fn a_cursor_of_another_posts_comments_is_refused() {
        // GIVEN a cursor into the comments of another post
        let w = world();
        for i in 0..2 {
            w.comment(&w.bob, &format!("c{i}"), None).await;
        }
        let first = w
            .app
            .list(&w.ann.caller(), &w.post, &page("1", None))
            .await
            .unwrap();
        let cursor = first.next_cursor.unwrap();
        let other = PostId::generate();
        // WHEN it is used on that other post, THEN it is a 400 naming the cursor
        let err = w
            .app
            .list(&w.ann.caller(), &other, &page("1", Some(&cursor)))
            .await
            .unwrap_err();
        assert_eq!(err.problem().field.as_deref(), Some("cursor"));
        // AND on its own post it resumes after the first comment
        let second = w
            .app
            .list(&w.ann.caller(), &w.post, &page("1", Some(&cursor)))
            .await
            .unwrap();
        assert_eq!(second.items[0].text, "c1");
    }

    /// `blocker` blocks `blocked`, as the directory learns from the event.
    async fn blocks(w: &crate::testing::World, blocker: &UserId, blocked: &UserId) {
        let event = Envelope::new(
            Event::UserBlocked(shutter_events::BlockFacts {
                blocker_id: blocker.clone(),
                blocked_id: blocked.clone(),
                seq: 1,
                at: "t".into(),
            }),
            Some(blocker),
            "c",
        );
        w.app.directory.apply(&event).await.unwrap();
    }

    /// The texts `by` is shown, page by page of `limit`, and the pages' sizes.
    async fn every_text(
        w: &crate::testing::World,
        by: &crate::testing::Who,
        limit: &str,
    ) -> (Vec<String>, Vec<usize>) {
        let (mut texts, mut sizes, mut cursor) = (Vec::new(), Vec::new(), None::<String>);
        loop {
            let listed = w
                .app
                .list(&by.caller(), &w.post, &page(limit, cursor.as_deref()))
                .await
                .unwrap();
            sizes.push(listed.items.len());
            texts.extend(listed.items.into_iter().map(|c| c.text));
            match listed.next_cursor {
                Some(next) => cursor = Some(next),
                None => return (texts, sizes),
            }
        }
    }

    #[tokio::test]
    async fn comments_by_one_who_blocks_the_viewer_or_whom_the_viewer_blocks_are_not_listed() {
        // GIVEN threads on ann's post: carol's c1 (bob answers), bob's b1 (carol answers),
        // ann's a1
        let w = world();
        let c1 = w.comment(&w.carol, "c1", None).await;
        let b1 = w.comment(&w.bob, "b1", None).await;
        w.comment(&w.bob, "b-re", Some(&c1.id)).await;
        w.comment(&w.carol, "c-re", Some(&b1.id)).await;
        w.comment(&w.ann, "a1", None).await;
        let all = ["c1", "b-re", "b1", "c-re", "a1"];
        // WHEN no block has reached the directory THEN bob sees them all (the window: a
        // block hides from when its event is applied)
        assert_eq!(every_text(&w, &w.bob, "20").await.0, all);
        // WHEN carol blocks bob
        blocks(&w, &w.carol.id, &w.bob.id).await;
        // THEN bob sees nothing of hers, replies included, and others' replies to her
        // stay; pages of 2 are filled by reading on, each comment once
        let (texts, sizes) = every_text(&w, &w.bob, "2").await;
        assert_eq!(texts, ["b-re", "b1", "a1"]);
        assert_eq!(sizes, [2, 1]);
        // AND carol, the blocker, sees nothing of bob's
        assert_eq!(every_text(&w, &w.carol, "20").await.0, ["c1", "c-re", "a1"]);
        // AND a moderator, whom nobody blocks, sees everything
        assert_eq!(every_text(&w, &w.staff, "20").await.0, all);
        // WHEN ann, the post's author, blocks bob THEN the post is hidden from him
        // altogether, and she no longer sees his comments on it
        blocks(&w, &w.ann.id, &w.bob.id).await;
        let err = w
            .app
            .list(&w.bob.caller(), &w.post, &page("20", None))
            .await
            .unwrap_err();
        assert_eq!(err.status(), 404);
        assert_eq!(every_text(&w, &w.ann, "20").await.0, ["c1", "c-re", "a1"]);
    }

    #[tokio::test]
    async fn a_page_of_hidden_comments_costs_a_bounded_number_of_reads_and_its_cursor_goes_on() {
        // GIVEN seven comments by carol, who blocks bob, then one by ann
        let w = world();
        for i in 0..7 {
            w.comment(&w.carol, &format!("c{i}"), None).await;
        }
        w.comment(&w.ann, "a1", None).await;
        blocks(&w, &w.carol.id, &w.bob.id).await;
        // WHEN bob pages by 2 THEN the first page reads 3 x 2 comments and comes back
        // empty with a cursor, and the next one finds ann's
        let (texts, sizes) = every_text(&w, &w.bob, "2").await;
        assert_eq!(texts, ["a1"]);
        assert_eq!(sizes, [0, 1]);
    }

    #[tokio::test]
    async fn unavailable_storage_is_an_opaque_500() {
        let w = world();
        let c = w.comment(&w.bob, "hi", None).await;
        w.app.store.set_unavailable(true);
        let err = w
            .app
            .edit(&w.bob.caller(), &c.id, text("x"), "c")
            .await
            .unwrap_err();
        assert_eq!(err.status(), 500);
        assert!(!err.problem().detail.unwrap_or_default().contains("down"));
    }

    #[tokio::test]
    async fn a_redelivered_write_stores_the_comment_and_its_event_once() {
        let w = world();
        let new = NewComment {
            post_id: w.post.clone(),
            text: text("once"),
            reply_to: None,
        };
        w.app.create(&w.bob.caller(), new, "c").await.unwrap();
        let write = w.app.queue.take().remove(0);
        assert_eq!(w.app.write_comment(&write).await.unwrap(), Written::Stored);
        assert_eq!(
            w.app.write_comment(&write).await.unwrap(),
            Written::Duplicate
        );
        assert_eq!(w.app.store.comment_count(), 1);
        let events = w.app.store.events();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].actor.as_ref(), Some(&w.bob.id));
        assert_eq!(events[0].correlation_id, "c");
    }

    #[tokio::test]
    async fn a_deleted_comment_is_not_brought_back_by_a_redelivery() {
        let w = world();
        let new = NewComment {
            post_id: w.post.clone(),
            text: text("gone soon"),
            reply_to: None,
        };
        w.app.create(&w.bob.caller(), new, "c").await.unwrap();
        let write = w.app.queue.take().remove(0);
        w.app.write_comment(&write).await.unwrap();
        w.app
            .delete(&w.bob.caller(), &write.comment.id, "c")
            .await
            .unwrap();
        assert_eq!(
            w.app.write_comment(&write).await.unwrap(),
            Written::Duplicate
        );
        assert_eq!(w.app.store.comment_count(), 0);
    }

    #[tokio::test]
    async fn an_orphaned_reply_is_kept_top_level_and_a_comment_on_a_deleted_post_dropped() {
        // GIVEN a reply accepted before its parent was deleted
        let w = world();
        let parent = w.comment(&w.bob, "parent", None).await;
        let new = NewComment {
            post_id: w.post.clone(),
            text: text("reply"),
            reply_to: Some(parent.id.clone()),
        };
        w.app.create(&w.carol.caller(), new, "c").await.unwrap();
        let reply = w.app.queue.take().remove(0);
        w.app
            .delete(&w.bob.caller(), &parent.id, "c")
            .await
            .unwrap();
        // WHEN it is written, THEN it is stored as a top-level comment
        assert_eq!(
            w.app.write_comment(&reply).await.unwrap(),
            Written::StoredTopLevel
        );
        let listed = w.listed(&w.ann).await;
        assert_eq!(listed.len(), 1);
        assert_eq!(
            (listed[0].text.as_str(), &listed[0].reply_to),
            ("reply", &None)
        );
        let added = w.events(|e| match e {
            Event::CommentAdded(a) => Some(a.clone()),
            _ => None,
        });
        assert_eq!(added.last().unwrap().reply_to, None);

        // GIVEN a comment accepted before its post was deleted
        let late = NewComment {
            post_id: w.post.clone(),
            text: text("late"),
            reply_to: None,
        };
        w.app.create(&w.carol.caller(), late, "c").await.unwrap();
        let late = w.app.queue.take().remove(0);
        shutter_directory::Directory::apply(&w.app.directory, &w.post_deleted())
            .await
            .unwrap();
        // WHEN it is written, THEN it is dropped
        let before = w.app.store.events().len();
        assert_eq!(w.app.write_comment(&late).await.unwrap(), Written::PostGone);
        assert_eq!(w.app.store.comment_count(), 1);
        assert_eq!(w.app.store.events().len(), before);
    }
}
