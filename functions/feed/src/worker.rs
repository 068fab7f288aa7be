//! `feed-fanout-worker`: the feed's work that grows with data, a page a chunk, from
//! `FeedFanoutQueue` (see [`shutter_events::work`]). `feed-events` hands it on.
//!
//! - **Fan-out**: a published post into its author's followers' timelines, a page of
//!   followers a chunk (25 entries a BatchWriteItem; an entry written twice is the same
//!   item). A follow can end, or the post be deleted, while a page is being written: the
//!   chunk writes, *then* checks each follower's follow marker and the post (strongly
//!   consistent), and takes back what no longer belongs. The unfollow (or deletion) moves
//!   its marker (or writes its tombstone) before taking entries out, so whichever runs
//!   second sees the other: no ex-follower keeps the post.
//! - **Unpublish**: a deleted post out of its author's followers' timelines.
//! - **Promote**: an author who reached the celebrity threshold listed among each
//!   follower's celebrities, then flagged one (their posts are merged at read time).
//! - **Clear timeline**: a deleted account's timeline, a page a chunk.
//!
//! The cursor of the follower pages is the last follower handled (ids sort); clearing
//! starts from the top each time, since it deletes what it reads.

use std::collections::HashSet;
use std::slice::from_ref;

use serde::{Deserialize, Serialize};
use shutter_core::UserId;
use shutter_events::ConsumeError;
use shutter_events::work::{Job, Step, WithWork, Work};
use shutter_store::StoreResult;

use crate::Timelines;
use crate::model::{Entry, TIMELINE_CAP, due_trim};
use crate::store::FeedStore;

/// Entries read per page while trimming.
const TRIM_PAGE: usize = 100;

/// The feed's kinds of work.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FeedWork {
    /// Write `entry` into the timeline of each follower of its author.
    FanOut { entry: Entry },
    /// Take `entry` (a deleted post's) out of each follower's timeline.
    Unpublish { entry: Entry },
    /// List the author among each follower's celebrities, then flag them one.
    Promote { author_id: UserId },
    /// Delete every entry of the user's timeline (the account is deleted).
    ClearTimeline { user_id: UserId },
}

impl Work for FeedWork {
    fn kind(&self) -> &'static str {
        match self {
            Self::FanOut { .. } => "fan_out",
            Self::Unpublish { .. } => "unpublish",
            Self::Promote { .. } => "promote",
            Self::ClearTimeline { .. } => "clear_timeline",
        }
    }

    fn subject(&self) -> &str {
        match self {
            Self::FanOut { entry } | Self::Unpublish { entry } => entry.post_id.as_str(),
            Self::Promote { author_id } => author_id.as_str(),
            Self::ClearTimeline { user_id } => user_id.as_str(),
        }
    }
}

/// One chunk of `job`.
pub async fn chunk<S: FeedStore, D, Q>(
    deps: &WithWork<Timelines<S, D>, Q>,
    job: Job<FeedWork>,
) -> Result<Step, ConsumeError> {
    let (store, page) = (&deps.store, deps.page);
    let after = job.cursor.as_deref().map(UserId::trusted);
    let step = match &job.work {
        FeedWork::FanOut { entry } => fan_out(store, entry, after.as_ref(), page).await?,
        FeedWork::Unpublish { entry } => {
            let followers = store
                .followers(&entry.author_id, after.as_ref(), page)
                .await?;
            store
                .remove_from_timelines(&followers, from_ref(entry))
                .await?;
            next_after(&followers, page)
        }
        FeedWork::Promote { author_id } => {
            let followers = store.followers(author_id, after.as_ref(), page).await?;
            store.list_celebrity(&followers, author_id).await?;
            let step = next_after(&followers, page);
            if step == Step::Done {
                // Every follower is listed: from now on their feeds merge the author's
                // posts at read time.
                store.mark_celebrity(author_id).await?;
                tracing::info!(author = %author_id, chunks = job.chunk + 1, "author became a celebrity");
            }
            step
        }
        FeedWork::ClearTimeline { user_id } => {
            let entries = store.timeline(user_id, None, page).await?;
            store
                .remove_from_timelines(from_ref(user_id), &entries)
                .await?;
            if entries.len() < page {
                Step::Done
            } else {
                Step::More(None)
            }
        }
    };
    Ok(step)
}

/// Where a page of followers leaves off: done when it was not full.
fn next_after(followers: &[UserId], page: usize) -> Step {
    match followers.last() {
        Some(last) if followers.len() >= page => Step::More(Some(last.to_string())),
        _ => Step::Done,
    }
}

/// Writes `entry` into a page of followers' timelines, then takes it back from those who
/// no longer follow, or from all of them if the post was deleted meanwhile.
async fn fan_out<S: FeedStore>(
    store: &S,
    entry: &Entry,
    after: Option<&UserId>,
    page: usize,
) -> StoreResult<Step> {
    // A deleted post goes no further.
    if store.post(&entry.post_id).await?.is_none() {
        return Ok(Step::Done);
    }
    let followers = store.followers(&entry.author_id, after, page).await?;
    if followers.is_empty() {
        return Ok(Step::Done);
    }
    store.add_to_timelines(&followers, from_ref(entry)).await?;
    let live = store.post(&entry.post_id).await?.is_some();
    let still: HashSet<UserId> = if live {
        store.following(&entry.author_id, &followers).await?
    } else {
        HashSet::new()
    };
    let gone: Vec<UserId> = followers
        .iter()
        .filter(|f| !still.contains(*f))
        .cloned()
        .collect();
    if !gone.is_empty() {
        tracing::info!(post_id = %entry.post_id, taken_back = gone.len(), live, "entries taken back: follows ended or the post was deleted meanwhile");
        store.remove_from_timelines(&gone, from_ref(entry)).await?;
    }
    if !live {
        return Ok(Step::Done);
    }
    for user in followers
        .iter()
        .filter(|u| still.contains(*u) && due_trim(&entry.post_id, u))
    {
        trim(store, user).await?;
    }
    Ok(next_after(&followers, page))
}

/// Deletes the timeline's entries beyond [`TIMELINE_CAP`]; how many.
pub async fn trim<S: FeedStore>(store: &S, user: &UserId) -> StoreResult<usize> {
    let kept = store.timeline(user, None, TIMELINE_CAP).await?;
    if kept.len() < TIMELINE_CAP {
        return Ok(0);
    }
    let oldest_kept = kept.last().map(|e| e.position.clone());
    let mut trimmed = 0;
    loop {
        let beyond = store
            .timeline(user, oldest_kept.as_deref(), TRIM_PAGE)
            .await?;
        if beyond.is_empty() {
            return Ok(trimmed);
        }
        trimmed += beyond.len();
        store.remove_from_timelines(from_ref(user), &beyond).await?;
    }
}
