//! `follows-cascade-worker`: the follows service's work that grows with data, a page a
//! chunk, from `FollowsCascadeQueue` (see [`shutter_events::work`]).
//! `follows-directory-events` hands it on.
//!
//! - **End an account**: every follow, request and block by or of a deleted account
//!   ends, each in its own transaction with its event (`FollowEnded` with reason
//!   `account_deleted`, `UserUnblocked`), so the other services' counters, feeds and
//!   indexes follow. Edges first, then blocks; each page is what is still live (an ended
//!   edge leaves the lists), so the cursor is only the phase.
//! - **Approve pending**: the pending requests to an account that turned public, a page
//!   of the requests list a chunk (the cursor is the list position). A chunk first reads
//!   the account in the directory: if it turned private again, or went, the rest waits for
//!   the next change.
//! - **Window follows**: the follows that started on their own after an account turned
//!   private, while this service still had it as public (the profile event had not
//!   arrived), go back to pending requests, a page of the followers list a chunk, newest
//!   first, until the follows that started before the switch. A chunk first reads the
//!   account in the directory: if it turned public again (which takes requests) or
//!   private anew, this job's rule no longer holds and it stops.
//!
//! Every change is conditional on the edge's or block's `seq`, so a chunk done twice
//! changes nothing the second time, and a racing request wins or is decided again.

use serde::{Deserialize, Serialize};
use shutter_core::UserId;
use shutter_directory::Directory;
use shutter_events::work::{Job, Step, WithWork, Work};
use shutter_events::{ConsumeError, Envelope};
use shutter_store::StoreError;

use crate::App;
use crate::model::{
    Block, Edge, EdgeAction, EndReason, FollowState, back_to_request, edge_event, next_block,
    next_edge, started_on_stale_privacy,
};
use crate::store::{self, Change, FollowsStore, List};

/// How often one edge's or block's end is decided again when a racing request changed it.
pub(crate) const ATTEMPTS: usize = 5;

/// The cursor of an account's ending while its edges end.
const EDGES: &str = "edges";
/// The cursor of an account's ending once its blocks are lifted.
const BLOCKS: &str = "blocks";

/// The follows service's kinds of work.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FollowsWork {
    /// End every follow, request and block by or of a deleted account.
    EndAccount { user_id: UserId },
    /// Approve every pending request to an account that turned public.
    ApprovePending { user_id: UserId },
    /// Turn back into pending requests the follows of `user_id` that started on their own
    /// at or after `private_since`, when the account turned private.
    WindowFollows {
        user_id: UserId,
        private_since: String,
    },
}

impl Work for FollowsWork {
    fn kind(&self) -> &'static str {
        match self {
            Self::EndAccount { .. } => "end_account",
            Self::ApprovePending { .. } => "approve_pending",
            Self::WindowFollows { .. } => "window_follows",
        }
    }

    fn subject(&self) -> &str {
        match self {
            Self::EndAccount { user_id }
            | Self::ApprovePending { user_id }
            | Self::WindowFollows { user_id, .. } => user_id.as_str(),
        }
    }
}

/// Who and what the effects of a job are caused by.
struct Cause<'a> {
    actor: Option<&'a UserId>,
    correlation_id: &'a str,
}

/// One chunk of `job`.
pub async fn chunk<S: FollowsStore, D: Directory, C, Q>(
    deps: &WithWork<App<S, D, C>, Q>,
    job: Job<FollowsWork>,
) -> Result<Step, ConsumeError> {
    let app = &deps.app;
    match &job.work {
        FollowsWork::EndAccount { user_id } => {
            let cause = Cause {
                actor: job.actor.as_ref(),
                correlation_id: &job.correlation_id,
            };
            end_account(app, user_id, job.cursor.as_deref(), deps.page, &cause).await
        }
        FollowsWork::ApprovePending { user_id } => {
            // The account approves: its events are its own.
            let cause = Cause {
                actor: Some(user_id),
                correlation_id: &job.correlation_id,
            };
            approve_pending(app, user_id, job.cursor.as_deref(), deps.page, &cause).await
        }
        FollowsWork::WindowFollows {
            user_id,
            private_since,
        } => {
            // The account's privacy decides: its events are its own.
            let cause = Cause {
                actor: Some(user_id),
                correlation_id: &job.correlation_id,
            };
            let after = job.cursor.as_deref();
            window_follows(app, user_id, private_since, after, deps.page, &cause).await
        }
    }
}

/// One page of a deleted account's live edges ended, or (after them) one of its blocks.
async fn end_account<S: FollowsStore, D, C>(
    app: &App<S, D, C>,
    user: &UserId,
    phase: Option<&str>,
    page: usize,
    cause: &Cause<'_>,
) -> Result<Step, ConsumeError> {
    match phase {
        None | Some(EDGES) => {
            let live = app.store.live_edges(user, page).await?;
            let mut ended = 0;
            for edge in &live {
                ended += usize::from(end_edge(app, edge.clone(), cause).await?);
            }
            tracing::info!(%user, ended, "follows of a deleted account ended");
            // A full page that changed nothing would come back unchanged: move on.
            let more = live.len() >= page && ended > 0;
            Ok(Step::More(Some(
                if more { EDGES } else { BLOCKS }.to_owned(),
            )))
        }
        Some(BLOCKS) => {
            let live = app.store.live_blocks(user, page).await?;
            let mut lifted = 0;
            for block in &live {
                lifted += usize::from(end_block(app, block.clone(), cause).await?);
            }
            tracing::info!(%user, lifted, "blocks of a deleted account lifted");
            Ok(if live.len() >= page && lifted > 0 {
                Step::More(Some(BLOCKS.to_owned()))
            } else {
                Step::Done
            })
        }
        Some(other) => Err(ConsumeError::poison(format!(
            "unknown phase {other:?} of an account's ending"
        ))),
    }
}

/// Ends `edge` (reason `account_deleted`), reading it again when a racing request changed
/// it. False when it had ended already.
async fn end_edge<S: FollowsStore, D, C>(
    app: &App<S, D, C>,
    edge: Edge,
    cause: &Cause<'_>,
) -> Result<bool, ConsumeError> {
    let end = EdgeAction::End(EndReason::AccountDeleted);
    let mut current = Some(edge);
    for _ in 0..ATTEMPTS {
        let Some(edge) = current.take() else {
            return Ok(false);
        };
        let Some(next) = next_edge(Some(&edge), &edge.follower_id, &edge.followee_id, end) else {
            return Ok(false);
        };
        let event = edge_event(edge.state, &next, end);
        let event = Envelope::new(event, cause.actor, cause.correlation_id);
        let (follower, followee) = (next.follower_id.clone(), next.followee_id.clone());
        let change = Change::Edge {
            previous: Some(edge),
            next,
        };
        match app.store.commit(&[change], &[event]).await {
            Ok(()) => return Ok(true),
            Err(StoreError::Conflict(store::STALE)) => {
                current = app.store.edge(&follower, &followee).await?;
            }
            Err(err) => return Err(err.into()),
        }
    }
    Err(ConsumeError::retry_because(
        "a follow kept changing while its account was deleted",
    ))
}

/// Lifts `block`, reading it again when a racing request changed it. False when it had
/// been lifted already.
async fn end_block<S: FollowsStore, D, C>(
    app: &App<S, D, C>,
    block: Block,
    cause: &Cause<'_>,
) -> Result<bool, ConsumeError> {
    let mut current = Some(block);
    for _ in 0..ATTEMPTS {
        let Some(block) = current.take() else {
            return Ok(false);
        };
        let (blocker, blocked) = (block.blocker_id.clone(), block.blocked_id.clone());
        let Some(next) = next_block(Some(&block), &blocker, &blocked, false) else {
            return Ok(false);
        };
        let event = Envelope::new(next.event(), cause.actor, cause.correlation_id);
        let change = Change::Block {
            previous: Some(block),
            next,
        };
        match app.store.commit(&[change], &[event]).await {
            Ok(()) => return Ok(true),
            Err(StoreError::Conflict(store::STALE)) => {
                current = app.store.relation(&blocker, &blocked).await?.blocking;
            }
            Err(err) => return Err(err.into()),
        }
    }
    Err(ConsumeError::retry_because(
        "a block kept changing while its account was deleted",
    ))
}

/// Approves one page of the pending requests to `user`, each with its `FollowStarted`
/// caused by the account, while the account is public. A request that a racing change
/// moved (or a block or deletion took away) is left to that change.
async fn approve_pending<S: FollowsStore, D: Directory, C>(
    app: &App<S, D, C>,
    user: &UserId,
    after: Option<&str>,
    page: usize,
    cause: &Cause<'_>,
) -> Result<Step, ConsumeError> {
    let public = app
        .directory
        .author(user)
        .await?
        .is_some_and(|author| !author.private);
    if !public {
        return Ok(Step::Done);
    }
    let requests = app.store.list(List::Requests, user, after, page).await?;
    let mut approved = 0;
    for entry in &requests {
        let Some(edge) = app
            .store
            .edge(&entry.user_id, user)
            .await?
            .filter(|e| e.state == FollowState::Requested)
        else {
            continue;
        };
        let take = EdgeAction::TakeAsPublic;
        let Some(next) = next_edge(Some(&edge), &entry.user_id, user, take) else {
            continue;
        };
        let event = edge_event(edge.state, &next, take);
        let event = Envelope::new(event, cause.actor, cause.correlation_id);
        let change = Change::Edge {
            previous: Some(edge),
            next,
        };
        match app.store.commit(&[change], &[event]).await {
            Ok(()) => approved += 1,
            Err(StoreError::Conflict(store::STALE | store::BLOCKED | store::ACCOUNT_DELETED)) => {}
            Err(err) => return Err(err.into()),
        }
    }
    if approved > 0 {
        tracing::info!(%user, approved, "pending requests approved: the account is public");
    }
    Ok(match requests.last() {
        Some(last) if requests.len() >= page => Step::More(Some(last.position.clone())),
        _ => Step::Done,
    })
}

/// One page of `user`'s followers, newest first, each follow that started on its own at or
/// after `private_since` turned back into a pending request with its two events, while
/// the account is still private since then. Stops at the first follow older than the
/// switch: the rest started before it. A follow that a racing change ended (an unfollow,
/// a block, a deletion) is left to that change.
async fn window_follows<S: FollowsStore, D: Directory, C>(
    app: &App<S, D, C>,
    user: &UserId,
    private_since: &str,
    after: Option<&str>,
    page: usize,
    cause: &Cause<'_>,
) -> Result<Step, ConsumeError> {
    let still = app.directory.author(user).await?.is_some_and(|author| {
        author.private && author.private_since.as_deref() == Some(private_since)
    });
    if !still {
        return Ok(Step::Done);
    }
    let followers = app.store.list(List::Followers, user, after, page).await?;
    let mut requested = 0;
    let mut older = false;
    for entry in &followers {
        if entry.at.as_str() < private_since {
            older = true;
            break;
        }
        let Some(edge) = app
            .store
            .edge(&entry.user_id, user)
            .await?
            .filter(|e| started_on_stale_privacy(e, private_since))
        else {
            continue;
        };
        let Some((next, events)) = back_to_request(&edge) else {
            continue;
        };
        let events = events.map(|e| Envelope::new(e, cause.actor, cause.correlation_id));
        let change = Change::Edge {
            previous: Some(edge),
            next,
        };
        match app.store.commit(&[change], &events).await {
            Ok(()) => requested += 1,
            Err(StoreError::Conflict(store::STALE | store::BLOCKED | store::ACCOUNT_DELETED)) => {}
            Err(err) => return Err(err.into()),
        }
    }
    if requested > 0 {
        tracing::info!(
            %user,
            requested,
            private_since,
            "follows of the privacy window are requests again"
        );
    }
    Ok(match followers.last() {
        Some(last) if !older && followers.len() >= page => Step::More(Some(last.position.clone())),
        _ => Step::Done,
    })
}
