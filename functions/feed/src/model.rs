//! The feed's domain: timeline entries, the feed's copies of posts, follow and like
//! markers, what a page shows, and the pure rules of fan-out and paging (which posts a
//! page shows, when an author is a celebrity, what a follow change does, which timelines
//! are due a trim). Nothing here does I/O.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};
use shutter_core::{MediaId, PostId, UserId};
use shutter_events::{MediaFacts, PostFacts};
use utoipa::ToSchema;

/// Timelines keep at most this many entries.
pub const TIMELINE_CAP: usize = 800;

/// Recent posts copied into a new follower's timeline.
pub const BACKFILL: usize = 20;

/// One timeline in this many is trimmed to its cap after an entry is written to it.
const TRIM_EVERY: u32 = 32;

/// A timeline or recent-posts entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// `<published at>#<post id>`: where the entry sorts, newest last.
    pub position: String,
    pub post_id: PostId,
    pub author_id: UserId,
}

impl Entry {
    pub fn new(published_at: &str, post_id: &PostId, author_id: &UserId) -> Self {
        Self {
            position: format!("{published_at}#{post_id}"),
            post_id: post_id.clone(),
            author_id: author_id.clone(),
        }
    }
}

/// The feed's copy of a published post.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PostCopy {
    pub post_id: PostId,
    pub author_id: UserId,
    pub caption: String,
    #[serde(default)]
    pub location: Option<String>,
    #[serde(default)]
    pub media: Vec<MediaFacts>,
    pub published_at: String,
    /// The post's `version` this copy was made from: an older update never overwrites it.
    pub version: u64,
    #[serde(default)]
    pub like_count: i64,
    #[serde(default)]
    pub comment_count: i64,
    #[serde(default)]
    pub deleted: bool,
}

impl PostCopy {
    /// The copy of a post as its event tells it, published at `published_at`, uncounted.
    pub fn of(facts: &PostFacts, published_at: &str) -> Self {
        Self {
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

    /// Where the post sits in timelines.
    pub fn entry(&self) -> Entry {
        Entry::new(&self.published_at, &self.post_id, &self.author_id)
    }
}

/// The newest applied change of a pair (a follow, a like).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PairMarker {
    pub seq: u64,
    pub holds: bool,
}

/// An author's follower count and celebrity flag.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthorMeta {
    #[serde(default)]
    pub follower_count: i64,
    #[serde(default)]
    pub celebrity: bool,
}

/// What a follow event does to a pair whose newest applied change is `previous`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FollowChange {
    /// A newer (or the same) change was applied already: nothing to do.
    Stale,
    /// The follower now follows: listed, counted, backfilled.
    Started,
    /// The follow ended: unlisted, uncounted, the followee's posts removed.
    Ended,
    /// Newer, but following or not as before: only the marker moves.
    Unchanged,
}

/// The rule that orders one pair's follow events by their `seq`.
pub fn follow_change(previous: Option<PairMarker>, next: PairMarker) -> FollowChange {
    if previous.is_some_and(|p| p.seq >= next.seq) {
        return FollowChange::Stale;
    }
    match (previous.is_some_and(|p| p.holds), next.holds) {
        (false, true) => FollowChange::Started,
        (true, false) => FollowChange::Ended,
        _ => FollowChange::Unchanged,
    }
}

/// The fan-out settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FanOut {
    /// Authors with at least this many followers are merged at read time.
    pub celebrity_followers: i64,
}

impl Default for FanOut {
    fn default() -> Self {
        Self {
            celebrity_followers: 10_000,
        }
    }
}

impl FanOut {
    /// Whether a new post of this author is left to read time instead of fanned out.
    pub fn merged_at_read_time(&self, author: &AuthorMeta) -> bool {
        author.celebrity || author.follower_count >= self.celebrity_followers
    }

    /// Whether one more follower makes this (ordinary) author a celebrity.
    pub fn promotes(&self, followee: &AuthorMeta) -> bool {
        !followee.celebrity && followee.follower_count + 1 >= self.celebrity_followers
    }

    /// Whether the author has reached the threshold but is not flagged yet: their
    /// promotion is under way, or was never handed on (a redelivery hands it on again).
    pub fn awaits_promotion(&self, author: &AuthorMeta) -> bool {
        !author.celebrity && author.follower_count >= self.celebrity_followers
    }
}

/// Whether a follower's timeline is due a trim after `post_id` was written to it: one
/// in [`TRIM_EVERY`], chosen by a hash, so a retry trims the same timelines.
pub fn due_trim(post_id: &str, user: &str) -> bool {
    let hash = post_id
        .bytes()
        .chain(user.bytes())
        .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)));
    hash % TRIM_EVERY == 0
}

/// The newest `limit` of all sources (each newest first), each post once, and the
/// position the next page starts before (none when nothing is left).
pub fn merge(sources: Vec<Vec<Entry>>, limit: usize) -> (Vec<Entry>, Option<String>) {
    let mut all: Vec<Entry> = sources.into_iter().flatten().collect();
    all.sort_by(|a, b| b.position.cmp(&a.position));
    let mut seen = HashSet::new();
    all.retain(|e| seen.insert(e.post_id.clone()));
    let more = all.len() > limit;
    all.truncate(limit);
    let next = if more {
        all.last().map(|e| e.position.clone())
    } else {
        None
    };
    (all, next)
}

/// A position as the store writes it: `<RFC 3339 time>#<ULID>`.
pub fn is_position(raw: &str) -> bool {
    raw.split_once('#').is_some_and(|(time, id)| {
        time.len() == 24 && time.ends_with('Z') && shutter_core::parse_id("cursor", id).is_ok()
    })
}

/// The author as a feed post shows them.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct FeedAuthor {
    pub id: UserId,
    pub username: String,
    pub display_name: String,
    pub avatar_url: Option<String>,
}

/// A media item of a feed post.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct FeedMedia {
    pub id: MediaId,
    pub content_type: String,
    pub url: String,
    pub thumbnail_url: Option<String>,
}

/// A post as the feed shows it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct FeedPost {
    pub id: PostId,
    pub author: FeedAuthor,
    pub caption: String,
    pub location: Option<String>,
    pub media: Vec<FeedMedia>,
    pub like_count: i64,
    pub comment_count: i64,
    pub liked_by_me: bool,
    pub published_at: String,
}

/// `GET /v1/feed` answer.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct FeedPage {
    pub items: Vec<FeedPost>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn entry(time: &str, post: &str) -> Entry {
        Entry::new(time, &PostId::trusted(post), &UserId::trusted("a"))
    }

    #[test]
    fn pages_merge_newest_first_once_each_and_say_where_to_resume() {
        let timeline = vec![
            entry("2026-11-25T10:00:03.000Z", "p3"),
            entry("2026-11-25T10:00:01.000Z", "p1"),
        ];
        let celebrity = vec![
            entry("2026-11-25T10:00:04.000Z", "p4"),
            entry("2026-11-25T10:00:03.000Z", "p3"),
            entry("2026-11-25T10:00:02.000Z", "p2"),
        ];
        let (page, next) = merge(vec![timeline.clone(), celebrity.clone()], 3);
        let ids: Vec<_> = page.iter().map(|e| e.post_id.as_str()).collect();
        assert_eq!(ids, ["p4", "p3", "p2"]);
        assert_eq!(next.as_deref(), Some("2026-11-25T10:00:02.000Z#p2"));
        let (page, next) = merge(vec![timeline, celebrity], 10);
        assert_eq!(page.len(), 4);
        assert_eq!(next, None);
    }

    #[test]
    fn only_positions_the_store_writes_are_accepted() {
        assert!(is_position(
            "2026-11-25T10:00:02.000Z#01JD0000000000000000PST001"
        ));
        assert!(!is_position("2026-11-25T10:00:02.000Z#p2"));
        assert!(!is_position("zzz#01JD0000000000000000PST001"));
        assert!(!is_position("01JD0000000000000000PST001"));
    }

    #[test]
    fn trims_are_spread_and_repeatable() {
        let due: usize = (0..3200)
            .filter(|i| due_trim("01JD0000000000000000PST001", &format!("user{i}")))
            .count();
        assert!((50..=150).contains(&due), "{due}");
        assert_eq!(due_trim("p", "u"), due_trim("p", "u"));
    }

    #[test]
    fn follow_events_apply_in_seq_order_only() {
        let marker = |seq, holds| PairMarker { seq, holds };
        // GIVEN no follow yet, WHEN one starts, THEN it is a start.
        assert_eq!(follow_change(None, marker(1, true)), FollowChange::Started);
        // GIVEN a follow, WHEN it ends, THEN it is an end.
        assert_eq!(
            follow_change(Some(marker(1, true)), marker(2, false)),
            FollowChange::Ended
        );
        // WHEN the same or an older event arrives late, THEN nothing happens.
        assert_eq!(
            follow_change(Some(marker(2, false)), marker(2, false)),
            FollowChange::Stale
        );
        assert_eq!(
            follow_change(Some(marker(2, false)), marker(1, true)),
            FollowChange::Stale
        );
        // WHEN an end arrives for a pair that never followed, THEN only the marker moves.
        assert_eq!(
            follow_change(None, marker(1, false)),
            FollowChange::Unchanged
        );
    }

    #[test]
    fn celebrities_are_merged_at_read_time_from_the_threshold_on() {
        let settings = FanOut {
            celebrity_followers: 3,
        };
        let meta = |follower_count, celebrity| AuthorMeta {
            follower_count,
            celebrity,
        };
        assert!(!settings.merged_at_read_time(&meta(2, false)));
        assert!(settings.merged_at_read_time(&meta(3, false)));
        assert!(settings.merged_at_read_time(&meta(0, true)));
        // The follow that brings an ordinary author to the threshold promotes them, once.
        assert!(!settings.promotes(&meta(1, false)));
        assert!(settings.promotes(&meta(2, false)));
        assert!(!settings.promotes(&meta(5, true)));
        // Until the flag is set, an author at the threshold awaits it.
        assert!(!settings.awaits_promotion(&meta(2, false)));
        assert!(settings.awaits_promotion(&meta(3, false)));
        assert!(!settings.awaits_promotion(&meta(3, true)));
    }
}
