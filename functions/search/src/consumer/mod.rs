//! `search-indexer`: keeps the indexes in step with `shutter.posts`, `shutter.identity`,
//! `shutter.profiles`, `shutter.likes` and `shutter.follows` (one MSK mapping per topic).
//!
//! A batch is decoded into [`effects`], folded by the pure [`fold`], and applied in two
//! bulk requests (plus one per page of posts for a privacy change):
//!
//! 1. **Edges** (follows, blocks, likes), versioned by their `seq`: OpenSearch refuses an
//!    older or equal one (409), which is how a redelivered or out-of-order event changes
//!    nothing.
//! 2. **Posts and users**: read (`_mget`), folded over, and what changed written back
//!    conditionally on the read. A write that lost a race (409) is read and folded again.
//!
//! Per item: a 409 is a lost race (read again) or a stale edge (done); a 429 or 5xx fails
//! the batch so Lambda retries it; any other 4xx is poison: the records behind that item
//! go to the DLQ (`SearchIndexerDlq`) with the reason, never silently dropped.

use std::collections::BTreeSet;

use shutter_events::{Batch, ConsumeError, Consumer, EventSet, EventType};

use crate::App;
use crate::client::SearchError;
use crate::docs::{POSTS_INDEX, USERS_INDEX};
use crate::store::{IndexStore, Outcome};

pub mod effects;
pub mod fold;

use effects::{Effect, effect};

/// The indexer: every event that changes a post, a user or an edge search filters by
/// (staff's bans and removals included, see [`effects::effect`]).
pub const INDEXER: Consumer = Consumer {
    name: "search-indexer",
    handles: EventSet::of(&[
        EventType::PostPublished,
        EventType::PostUpdated,
        EventType::PostDeleted,
        EventType::UserRegistered,
        EventType::ProfileUpdated,
        EventType::AvatarChanged,
        EventType::UserDeleted,
        EventType::UserSuspended,
        EventType::UserReinstated,
        EventType::ContentRemoved,
        EventType::FollowStarted,
        EventType::FollowEnded,
        EventType::UserBlocked,
        EventType::UserUnblocked,
        EventType::LikeAdded,
        EventType::LikeRemoved,
    ]),
    summary: "Keeps the OpenSearch indexes of posts, users and follow, block and like edges in step with the events.",
};

/// Rounds of read-fold-write when racing writers keep changing the same documents.
const MAX_ROUNDS: usize = 5;
/// Posts re-flagged per bulk request when an author's privacy changes.
const PRIVACY_PAGE: usize = 500;

/// An OpenSearch request (not one document) failed. Whatever its status, it is no
/// record's fault: a cluster down or overloaded, or an index missing until the mappings
/// are applied. The batch is retried (every step is idempotent), never given up.
fn unavailable(err: SearchError) -> ConsumeError {
    ConsumeError::retry(err)
}

/// Our own documents could not be serialised: impossible for these plain structs, and
/// were it to happen it would be this build's fault, not a record's.
fn unserialisable(err: serde_json::Error) -> ConsumeError {
    ConsumeError::retry(err)
}

/// What a batch did, for the log.
#[derive(Debug, Default)]
struct Report {
    /// Edge documents written (stale ones not counted).
    edges: usize,
    /// Post and user documents written.
    documents: usize,
    /// Records OpenSearch refused, with why.
    poisoned: Vec<(usize, String)>,
}

/// Applies an MSK batch. Records whose document OpenSearch refused are given up to the
/// DLQ once the rest is applied; anything retryable fails the whole batch.
pub async fn apply<S: IndexStore, C: Sync>(
    app: &App<S, C>,
    mut batch: Batch,
) -> Result<Batch, ConsumeError> {
    let effects: Vec<(usize, Effect)> = batch
        .records()
        .iter()
        .enumerate()
        .filter_map(|(i, record)| Some((i, effect(&record.envelope.event)?)))
        .collect();
    let report = index(&app.search, &effects).await?;
    // A record refused in one round may be refused again in the next: give it up once.
    let mut given_up = BTreeSet::new();
    for (i, reason) in report.poisoned {
        if given_up.insert(i)
            && let Some(record) = batch.records().get(i).cloned()
        {
            batch.poison(&record, reason);
        }
    }
    tracing::info!(
        edges = report.edges,
        documents = report.documents,
        refused = given_up.len(),
        "batch indexed"
    );
    Ok(batch)
}

async fn index<S: IndexStore>(
    store: &S,
    effects: &[(usize, Effect)],
) -> Result<Report, ConsumeError> {
    let mut report = Report::default();
    // 1. Edges, newest seq wins (OpenSearch's external versioning decides). Written
    // searchable at once when likes moved: the counts below read them.
    let edges = fold::edges(effects).map_err(unserialisable)?;
    let results = store
        .bulk(&edges.writes.ops, !edges.liked_posts.is_empty())
        .await
        .map_err(unavailable)?;
    let settled = fold::settle(&edges.writes, &results).map_err(ConsumeError::retry_because)?;
    // A conflict is a newer or equal seq already there: this event is old news.
    report.edges = settled.written;
    report.poisoned.extend(settled.poisoned);
    // 2. Posts and users, folded and written conditionally.
    for _ in 0..MAX_ROUNDS {
        if round(store, effects, &edges.liked_posts, &mut report).await? {
            return Ok(report);
        }
    }
    Err(ConsumeError::retry_because(
        "search documents kept changing under the indexer; the batch will be retried",
    ))
}

/// One read-fold-write of the posts and users; `false` when a write lost a race.
async fn round<S: IndexStore>(
    store: &S,
    effects: &[(usize, Effect)],
    liked_posts: &BTreeSet<String>,
    report: &mut Report,
) -> Result<bool, ConsumeError> {
    let reads = fold::reads(effects, liked_posts);
    if reads.is_empty() {
        return Ok(true);
    }
    let (posts, users) = futures::try_join!(
        store.get(POSTS_INDEX, &reads.posts),
        store.get(USERS_INDEX, &reads.users)
    )
    .map_err(unavailable)?;
    let to_count = fold::to_count(&reads.posts, &posts, liked_posts);
    let like_counts = store.like_counts(&to_count).await.map_err(unavailable)?;
    let current = fold::Current {
        posts,
        users,
        like_counts,
    };
    let plan = fold::plan(effects, liked_posts, current).map_err(unserialisable)?;
    // Re-flagged first: if that fails, the user document still holds the old flag, so
    // the retry sees the change again.
    for reflag in &plan.reflags {
        reflag_posts(store, reflag).await?;
    }
    let results = store
        .bulk(&plan.writes.ops, false)
        .await
        .map_err(unavailable)?;
    let settled = fold::settle(&plan.writes, &results).map_err(ConsumeError::retry_because)?;
    report.documents += settled.written;
    report.poisoned.extend(settled.poisoned);
    Ok(settled.conflicts == 0)
}

/// Gives every post document of the author their `private` and `banned` flags, a page
/// at a time. Any answer but written or gone fails the batch: a flag must not be half set.
async fn reflag_posts<S: IndexStore>(store: &S, reflag: &fold::Reflag) -> Result<(), ConsumeError> {
    let author_id = reflag.author_id.as_str();
    let mut after: Option<String> = None;
    loop {
        let ids = store
            .posts_of(author_id, after.as_deref(), PRIVACY_PAGE)
            .await
            .map_err(unavailable)?;
        let Some(last) = ids.last().cloned() else {
            return Ok(());
        };
        let results = store
            .bulk(&fold::reflag_ops(&ids, reflag), false)
            .await
            .map_err(unavailable)?;
        for result in results {
            match result.outcome() {
                Outcome::Done | Outcome::Missing => {}
                _ => return Err(ConsumeError::retry_because(result.why())),
            }
        }
        tracing::info!(
            author_id,
            private = reflag.private,
            banned = reflag.banned,
            posts = ids.len(),
            "posts re-flagged for a change of privacy or ban"
        );
        after = Some(last);
    }
}

#[cfg(test)]
mod tests;
