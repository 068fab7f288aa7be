//! `likes-cascade-worker`: the likes service's work that grows with data, a page a chunk,
//! from `LikesCascadeQueue` (see [`shutter_events::work`]). `likes-directory-events` hands
//! it on.
//!
//! - **Erase a user's likes**: every like of a deleted account goes, each in its own
//!   transaction, conditional on its `seq`, with a `LikeRemoved` when it held (so the
//!   posts' counters drop exactly once: the posts service counts by `seq`). An erased like
//!   leaves the account's index, so each page is what is left and needs no cursor.
//! - **Drop a post's likes**: a deleted post's like items (states, likers-list entries
//!   and their index items), a page a chunk, without events: the post and its counters
//!   are gone.

use serde::{Deserialize, Serialize};
use shutter_core::{PostId, UserId};
use shutter_events::work::{Job, Step, WithWork, Work};
use shutter_events::{ConsumeError, Envelope};
use shutter_store::StoreError;

use crate::App;
use crate::model::erased;
use crate::store::{self, LikesCleanup, LikesStore};

/// How often one like's erasure is tried again when a racing request changed it.
pub(crate) const ATTEMPTS: usize = 5;

/// The likes service's kinds of work.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum LikesWork {
    /// Erase every like of a deleted account.
    EraseUser { user_id: UserId },
    /// Delete every like of a deleted post.
    DropPost { post_id: PostId },
}

impl Work for LikesWork {
    fn kind(&self) -> &'static str {
        match self {
            Self::EraseUser { .. } => "erase_user",
            Self::DropPost { .. } => "drop_post",
        }
    }

    fn subject(&self) -> &str {
        match self {
            Self::EraseUser { user_id } => user_id.as_str(),
            Self::DropPost { post_id } => post_id.as_str(),
        }
    }
}

/// One chunk of `job`.
pub async fn chunk<S, D, Q>(
    deps: &WithWork<App<S, D>, Q>,
    job: Job<LikesWork>,
) -> Result<Step, ConsumeError>
where
    S: LikesStore + LikesCleanup,
{
    let (store, page) = (&deps.store, deps.page);
    match &job.work {
        LikesWork::EraseUser { user_id } => {
            let posts = store.posts_liked_by(user_id, page).await?;
            let mut erased = 0;
            for post_id in &posts {
                erased += usize::from(erase_like(store, post_id, user_id, &job).await?);
            }
            tracing::info!(%user_id, erased, "likes of a deleted account erased");
            Ok(if posts.len() >= page {
                Step::More(None)
            } else {
                Step::Done
            })
        }
        LikesWork::DropPost { post_id } => {
            let deleted = store.delete_post_likes(post_id, page).await?;
            tracing::info!(%post_id, deleted, "likes of a deleted post dropped");
            Ok(if deleted > 0 {
                Step::More(None)
            } else {
                Step::Done
            })
        }
    }
}

/// Erases one like; true when it held (and `LikeRemoved` went out).
async fn erase_like<S: LikesStore + LikesCleanup>(
    store: &S,
    post_id: &PostId,
    user_id: &UserId,
    job: &Job<LikesWork>,
) -> Result<bool, ConsumeError> {
    for _ in 0..ATTEMPTS {
        let Some(current) = store.state(post_id, user_id).await? else {
            store.forget(user_id, post_id).await?;
            return Ok(false);
        };
        let event: Option<Envelope> =
            erased(&current).map(|removed| removed.event(job.actor.as_ref(), &job.correlation_id));
        match store.erase(&current, event.as_ref()).await {
            Ok(()) => return Ok(current.liked),
            // A racing request changed the like: read it again.
            Err(StoreError::Conflict(store::STALE)) => continue,
            Err(err) => return Err(err.into()),
        }
    }
    // A race, not a bad job: the chunk is tried again.
    Err(ConsumeError::retry_because(format!(
        "the like of post {post_id} by {user_id} kept changing; retry"
    )))
}
