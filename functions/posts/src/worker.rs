//! `posts-cascade-worker`: the posts service's work that grows with data, a page a chunk,
//! from `PostsCascadeQueue` (see [`shutter_events::work`]). `posts-events` hands it on.
//!
//! - **Delete an author's posts**: every post of a deleted account goes, each in its own
//!   transaction with its `PostDeleted` (which the other services' consumers act on: the
//!   feeds, likes, comments, search and the post's media). A deleted post leaves the
//!   author's list, so each page is what is left and needs no cursor; a post that changed
//!   while it was read (its media settled) is met again by the next chunk.

use serde::{Deserialize, Serialize};
use shutter_core::UserId;
use shutter_events::work::{Job, Step, WithWork, Work};
use shutter_events::{ConsumeError, Envelope, Event, PostDeleted};
use shutter_store::StoreError;

use crate::App;
use crate::store::{self, Index, PostsStore};

/// The posts service's kinds of work.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PostsWork {
    /// Delete every post of a deleted account.
    DeleteAuthor { user_id: UserId },
}

impl Work for PostsWork {
    fn kind(&self) -> &'static str {
        match self {
            Self::DeleteAuthor { .. } => "delete_author",
        }
    }

    fn subject(&self) -> &str {
        match self {
            Self::DeleteAuthor { user_id } => user_id.as_str(),
        }
    }
}

/// One chunk of `job`.
pub async fn chunk<S: PostsStore, M, D, Q>(
    deps: &WithWork<App<S, M, D>, Q>,
    job: Job<PostsWork>,
) -> Result<Step, ConsumeError> {
    let PostsWork::DeleteAuthor { user_id } = &job.work;
    let store = &deps.store;
    let index = Index::Author(user_id.clone());
    let page = store.page(&index, deps.page, None).await?;
    let (mut deleted, mut changed) = (0, 0);
    for entry in &page.entries {
        let Some(post) = store.post(&entry.post_id).await? else {
            // An entry without its post would be met on every chunk: drop it.
            store.drop_entry(&index, &entry.post_id).await?;
            continue;
        };
        let event = Envelope::new(
            Event::PostDeleted(PostDeleted {
                post_id: post.id.clone(),
                author_id: post.author_id.clone(),
                deleted_by: user_id.clone(),
            }),
            Some(user_id),
            &job.correlation_id,
        );
        match store.delete(&post, &event).await {
            Ok(()) => deleted += 1,
            // Changed meanwhile (its media settled): the next chunk meets it again.
            Err(StoreError::Conflict(store::STALE)) => changed += 1,
            Err(err) => return Err(err.into()),
        }
    }
    tracing::info!(%user_id, deleted, changed, "deleted account's posts deleted");
    Ok(if page.entries.len() >= deps.page || changed > 0 {
        Step::More(None)
    } else {
        Step::Done
    })
}
