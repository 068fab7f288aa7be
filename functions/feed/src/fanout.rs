//! `feed-events`: builds home timelines from the posts, follows, likes, identity and
//! profiles topics.
//!
//! Hybrid fan-out. A post of an ordinary author is written into each follower's timeline
//! at publication (25 entries a BatchWriteItem); a post of a celebrity (an author with at
//! least `FEED_CELEBRITY_FOLLOWERS` followers) is not, and its followers' feeds merge the
//! celebrity's recent posts at read time instead. Writing an entry is idempotent (same key,
//! same item), so a batch that fails halfway and is retried duplicates nothing.
//!
//! Following someone backfills their recent posts into the follower's timeline;
//! unfollowing (and the follow ends a block or an account deletion cause) removes them.
//! A deleted post leaves every timeline it was written to; a deleted account's own
//! timeline goes. Follow and like events apply once and in order through their `seq`.

use serde::Deserialize;
use shutter_core::ApiError;
use shutter_directory::legacy::Directory;
use shutter_events::legacy::Envelope;
use shutter_events::{KafkaEvent, PoisonQueue};

use crate::store::{Entry, FeedStore, MediaCopy, PairMarker, PostCopy};

/// This consumer's name (consumer group, processed-event markers, DLQ messages).
pub const CONSUMER: &str = "feed-events";

/// Recent posts copied into a new follower's timeline.
pub const BACKFILL: usize = 20;

/// Followers read per page while fanning out.
const FOLLOWER_PAGE: usize = 1000;

/// One timeline in this many is trimmed to its cap after an entry is written to it.
const TRIM_EVERY: u32 = 32;

/// The fan-out settings.
#[derive(Debug, Clone, Copy)]
pub struct FanOut {
    /// Authors with at least this many followers are merged at read time.
    pub celebrity_followers: i64,
}

impl FanOut {
    /// `FEED_CELEBRITY_FOLLOWERS` (default 10,000).
    pub fn from_env() -> Result<Self, shutter_store::ConfigError> {
        let celebrity_followers = match std::env::var("FEED_CELEBRITY_FOLLOWERS") {
            Err(_) => 10_000,
            Ok(raw) => raw
                .parse()
                .map_err(|_| shutter_store::ConfigError::Invalid {
                    name: "FEED_CELEBRITY_FOLLOWERS",
                    reason: format!("{raw:?} is not a whole number"),
                })?,
        };
        Ok(Self {
            celebrity_followers,
        })
    }
}

#[derive(Debug, Deserialize)]
struct PostFacts {
    post_id: String,
    author_id: String,
    #[serde(default)]
    caption: String,
    #[serde(default)]
    location: Option<String>,
    #[serde(default)]
    version: u64,
    #[serde(default)]
    media: Vec<MediaCopy>,
}

#[derive(Debug, Deserialize)]
struct EdgeFacts {
    follower_id: String,
    followee_id: String,
    seq: u64,
}

#[derive(Debug, Deserialize)]
struct LikeFacts {
    post_id: String,
    user_id: String,
    seq: u64,
}

#[derive(Debug, Deserialize)]
struct EngagementFacts {
    post_id: String,
    like_delta: i64,
    comment_delta: i64,
}

#[derive(Debug, Deserialize)]
struct UserGone {
    user_id: String,
}

/// Applies every record of an MSK batch; poison records go to the DLQ, anything
/// retryable fails the batch (Lambda retries it; every effect is idempotent).
pub async fn feed_events<D: Directory, Q: PoisonQueue>(
    dir: &D,
    store: &FeedStore,
    settings: FanOut,
    poison: &Q,
    event: &KafkaEvent,
) -> Result<(), ApiError> {
    shutter_events::legacy::consume(event, poison, |envelope| async move {
        apply(dir, store, settings, &envelope).await
    })
    .await
}

fn bad(e: shutter_events::legacy::DecodeError) -> ApiError {
    ApiError::invalid("data", e.to_string())
}

/// One event's effects.
pub async fn apply<D: Directory>(
    dir: &D,
    store: &FeedStore,
    settings: FanOut,
    envelope: &Envelope,
) -> Result<(), ApiError> {
    match envelope.event_type.as_str() {
        "PostPublished" => {
            let facts: PostFacts = envelope.data().map_err(bad)?;
            publish(store, settings, &facts, &envelope.occurred_at).await?;
        }
        "PostUpdated" => {
            let facts: PostFacts = envelope.data().map_err(bad)?;
            store.update_post(&copy_of(&facts, "")).await?;
        }
        "PostDeleted" => {
            let facts: PostFacts = envelope.data().map_err(bad)?;
            unpublish(store, &facts).await?;
        }
        "PostEngagementChanged" => {
            let facts: EngagementFacts = envelope.data().map_err(bad)?;
            store
                .add_engagement(
                    CONSUMER,
                    &envelope.id,
                    &facts.post_id,
                    facts.like_delta,
                    facts.comment_delta,
                )
                .await?;
        }
        kind @ ("FollowStarted" | "FollowEnded") => {
            let facts: EdgeFacts = envelope.data().map_err(bad)?;
            follow_changed(store, settings, &facts, kind == "FollowStarted").await?;
        }
        kind @ ("LikeAdded" | "LikeRemoved") => {
            let facts: LikeFacts = envelope.data().map_err(bad)?;
            let marker = PairMarker {
                seq: facts.seq,
                holds: kind == "LikeAdded",
            };
            store
                .set_liked(&facts.user_id, &facts.post_id, marker)
                .await?;
        }
        "UserDeleted" => {
            let user: UserGone = envelope.data().map_err(bad)?;
            store.clear_timeline(&user.user_id).await?;
        }
        _ => {}
    }
    // Authors' names, avatars and privacy; follows and blocks.
    dir.apply(envelope).await
}

fn copy_of(facts: &PostFacts, published_at: &str) -> PostCopy {
    PostCopy {
        post_id: facts.post_id.clone(),
        author_id: facts.author_id.clone(),
        caption: facts.caption.clone(),
        location: facts.location.clone(),
        media: facts.media.clone(),
        published_at: published_at.to_owned(),
        version: facts.version,
        like_count: 0,
        comment_count: 0,
        deleted: false,
    }
}

/// Every follower of `author`, page by page, each page handed to `each`.
async fn for_each_follower_page<F, Fut>(
    store: &FeedStore,
    author: &str,
    mut each: F,
) -> Result<usize, ApiError>
where
    F: FnMut(Vec<String>) -> Fut,
    Fut: std::future::Future<Output = Result<(), ApiError>>,
{
    let mut after: Option<String> = None;
    let mut total = 0;
    loop {
        let page = store
            .followers(author, after.as_deref(), FOLLOWER_PAGE)
            .await?;
        let Some(last) = page.last().cloned() else {
            return Ok(total);
        };
        total += page.len();
        each(page).await?;
        after = Some(last);
    }
}

/// Whether a follower's timeline is due a trim after `post_id` was written to it: one
/// in [`TRIM_EVERY`], chosen by a hash, so a retry trims the same timelines.
fn due_trim(post_id: &str, user: &str) -> bool {
    let hash = post_id
        .bytes()
        .chain(user.bytes())
        .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)));
    hash % TRIM_EVERY == 0
}

async fn publish(
    store: &FeedStore,
    settings: FanOut,
    facts: &PostFacts,
    published_at: &str,
) -> Result<(), ApiError> {
    store.put_post(&copy_of(facts, published_at)).await?;
    let entry = Entry::new(published_at, &facts.post_id, &facts.author_id);
    store.put_recent(&entry, true).await?;
    // The author sees their own post in their feed.
    store
        .write_timelines(std::slice::from_ref(&facts.author_id), &entry, true)
        .await?;
    let meta = store.author_meta(&facts.author_id).await?;
    if meta.celebrity || meta.follower_count >= settings.celebrity_followers {
        tracing::info!(post_id = %facts.post_id, followers = meta.follower_count, "celebrity post: merged at read time");
        return Ok(());
    }
    let fanned = for_each_follower_page(store, &facts.author_id, |page| {
        let entry = entry.clone();
        async move {
            store.write_timelines(&page, &entry, true).await?;
            for user in page.iter().filter(|u| due_trim(&entry.post_id, u)) {
                store.trim(user).await?;
            }
            Ok(())
        }
    })
    .await?;
    tracing::info!(post_id = %facts.post_id, followers = fanned, "post fanned out");
    Ok(())
}

async fn unpublish(store: &FeedStore, facts: &PostFacts) -> Result<(), ApiError> {
    // The copy tells where the entries are; without one, nothing was written.
    let Some(copy) = store.post(&facts.post_id).await?.filter(|p| !p.deleted) else {
        return store.tombstone_post(&facts.post_id, &facts.author_id).await;
    };
    let entry = Entry::new(&copy.published_at, &copy.post_id, &copy.author_id);
    store
        .write_timelines(std::slice::from_ref(&copy.author_id), &entry, false)
        .await?;
    for_each_follower_page(store, &copy.author_id, |page| {
        let entry = entry.clone();
        async move { store.write_timelines(&page, &entry, false).await }
    })
    .await?;
    store.put_recent(&entry, false).await?;
    // The tombstone last: a retry after a failure above finds the copy and tries again.
    store.tombstone_post(&facts.post_id, &facts.author_id).await
}

async fn follow_changed(
    store: &FeedStore,
    settings: FanOut,
    facts: &EdgeFacts,
    holds: bool,
) -> Result<(), ApiError> {
    let next = PairMarker {
        seq: facts.seq,
        holds,
    };
    let (follower, followee) = (facts.follower_id.as_str(), facts.followee_id.as_str());
    for _ in 0..5 {
        let previous = store.edge(follower, followee).await?;
        if previous.is_some_and(|p| p.seq >= next.seq) {
            return Ok(());
        }
        let meta = store.author_meta(followee).await?;
        if !store
            .set_edge(follower, followee, previous, next, meta.celebrity)
            .await?
        {
            continue;
        }
        let was = previous.is_some_and(|p| p.holds);
        if holds && !was {
            // Backfill: the followee's recent posts (a celebrity's are merged at read time).
            if !meta.celebrity {
                let recent = store
                    .entries(&format!("RECENT#{followee}"), None, BACKFILL)
                    .await?;
                store
                    .write_timeline_entries(follower, &recent, true)
                    .await?;
            }
            if !meta.celebrity && meta.follower_count + 1 >= settings.celebrity_followers {
                let listed = store.promote(followee).await?;
                tracing::info!(author = followee, listed, "author became a celebrity");
            }
        } else if was && !holds {
            remove_posts_of(store, follower, followee).await?;
        }
        return Ok(());
    }
    Err(ApiError::internal(std::io::Error::other(
        "follow marker kept changing; retry",
    )))
}

/// Removes `author`'s posts from `user`'s timeline.
async fn remove_posts_of(store: &FeedStore, user: &str, author: &str) -> Result<(), ApiError> {
    let mut before: Option<String> = None;
    loop {
        let recent = store
            .entries(&format!("RECENT#{author}"), before.as_deref(), 100)
            .await?;
        let Some(last) = recent.last() else {
            return Ok(());
        };
        before = Some(last.position.clone());
        store.write_timeline_entries(user, &recent, false).await?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims_are_spread_and_repeatable() {
        let due: usize = (0..3200)
            .filter(|i| due_trim("01JD0000000000000000PST001", &format!("user{i}")))
            .count();
        assert!((50..=150).contains(&due), "{due}");
        assert_eq!(due_trim("p", "u"), due_trim("p", "u"));
    }
}
