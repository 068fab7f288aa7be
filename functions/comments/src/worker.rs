//! `comments-cascade-worker`: the comments service's work that grows with data, a page a
//! chunk, from `CommentsCascadeQueue` (see [`shutter_events::work`]).
//! `comments-directory-events` hands it on.
//!
//! - **Erase a user**: a deleted account's comments are deleted with their replies, each
//!   with a `CommentDeleted` (so the posts' comment counts drop), then its comment likes
//!   are taken back, each with a `CommentLikeRemoved` in the transaction that moves the
//!   comment's count (so that count stays exact). The cursor is the phase and the last
//!   comment id handled (`authored:<id>`, then `liked:<id>`): the indexes are read in id
//!   order.
//! - **Purge a post**: a deleted post's comments are erased without events (the post and
//!   its counters are gone), a page a chunk from the top.
//!
//! Each delete and each unlike is conditional (a comment already gone, a like already
//! taken back, changes nothing), so a chunk done twice emits nothing the second time.

use serde::{Deserialize, Serialize};
use shutter_core::{CommentId, PostId, UserId};
use shutter_directory::Directory;
use shutter_events::work::{Job, Step, WithWork, Work};
use shutter_events::{ConsumeError, Envelope, Event};
use shutter_store::StoreError;

use crate::App;
use crate::store::{self, CommentsStore};

/// The cursor's phase while a user's comments are deleted.
const AUTHORED: &str = "authored:";
/// The cursor's phase while a user's comment likes are taken back.
const LIKED: &str = "liked:";

/// The comments service's kinds of work.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CommentsWork {
    /// Delete a deleted account's comments and take back its comment likes.
    EraseUser { user_id: UserId },
    /// Erase every comment of a deleted post.
    PurgePost { post_id: PostId },
}

impl Work for CommentsWork {
    fn kind(&self) -> &'static str {
        match self {
            Self::EraseUser { .. } => "erase_user",
            Self::PurgePost { .. } => "purge_post",
        }
    }

    fn subject(&self) -> &str {
        match self {
            Self::EraseUser { user_id } => user_id.as_str(),
            Self::PurgePost { post_id } => post_id.as_str(),
        }
    }
}

/// One chunk of `job`.
pub async fn chunk<S: CommentsStore, D: Directory, Q, C, W>(
    deps: &WithWork<App<S, D, Q, C>, W>,
    job: Job<CommentsWork>,
) -> Result<Step, ConsumeError> {
    let (app, page) = (&deps.app, deps.page);
    match &job.work {
        CommentsWork::EraseUser { user_id } => {
            let cursor = job.cursor.as_deref().unwrap_or(AUTHORED);
            if let Some(after) = cursor.strip_prefix(AUTHORED) {
                delete_comments(app, user_id, after, page, &job.correlation_id).await
            } else if let Some(after) = cursor.strip_prefix(LIKED) {
                take_back_likes(app, user_id, after, page, &job.correlation_id).await
            } else {
                Err(ConsumeError::poison(format!(
                    "unknown cursor {cursor:?} of a user's erasure"
                )))
            }
        }
        CommentsWork::PurgePost { post_id } => {
            let erased = app.store.purge_post(post_id, page).await?;
            tracing::info!(%post_id, erased, "deleted post's comments erased");
            Ok(if erased > 0 {
                Step::More(None)
            } else {
                Step::Done
            })
        }
    }
}

/// `raw` as the id a page resumes after (none at the start).
fn resume_after(raw: &str) -> Option<CommentId> {
    (!raw.is_empty()).then(|| CommentId::trusted(raw))
}

/// Deletes a page of the user's comments, each with its replies and a `CommentDeleted`
/// each; then the likes' turn.
async fn delete_comments<S: CommentsStore, D: Directory, Q, C>(
    app: &App<S, D, Q, C>,
    user_id: &UserId,
    after: &str,
    page: usize,
    correlation_id: &str,
) -> Result<Step, ConsumeError> {
    let after = resume_after(after);
    let ids = app.store.by_author(user_id, after.as_ref(), page).await?;
    let mut deleted = 0;
    for id in &ids {
        if let Some(comment) = app.store.comment(id).await? {
            deleted += app.delete_thread(&comment, user_id, correlation_id).await?;
        }
    }
    tracing::info!(%user_id, deleted, "deleted user's comments deleted");
    Ok(Step::More(Some(match ids.last() {
        Some(last) if ids.len() >= page => format!("{AUTHORED}{last}"),
        _ => LIKED.to_owned(),
    })))
}

/// Takes back a page of the user's comment likes, each with a `CommentLikeRemoved`.
async fn take_back_likes<S: CommentsStore, D, Q, C>(
    app: &App<S, D, Q, C>,
    user_id: &UserId,
    after: &str,
    page: usize,
    correlation_id: &str,
) -> Result<Step, ConsumeError> {
    let after = resume_after(after);
    let ids = app
        .store
        .liked_comments(user_id, after.as_ref(), page)
        .await?;
    let mut unliked = 0;
    for id in &ids {
        let Some(comment) = app.store.comment(id).await? else {
            // The comment went with its likes: only the user's index item is left.
            app.store.forget_like(user_id, id).await?;
            continue;
        };
        let event = Envelope::new(
            Event::CommentLikeRemoved(comment.like_by(user_id)),
            Some(user_id),
            correlation_id,
        );
        match app.store.unlike(&comment, user_id, &event).await {
            Ok(()) => unliked += 1,
            // Taken back already, or the comment went meanwhile: nothing to take back.
            Err(StoreError::Conflict(store::NOT_LIKED | store::COMMENT_GONE)) => {
                app.store.forget_like(user_id, id).await?;
            }
            Err(err) => return Err(err.into()),
        }
    }
    tracing::info!(%user_id, unliked, "deleted user's comment likes taken back");
    Ok(match ids.last() {
        Some(last) if ids.len() >= page => Step::More(Some(format!("{LIKED}{last}"))),
        _ => Step::Done,
    })
}
