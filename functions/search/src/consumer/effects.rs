//! What each event asks of the indexes, read from the catalogue's typed event. Edges
//! (follows, blocks, likes) become their documents at once; posts and users stay facts,
//! folded over the stored documents by [`super::fold`].

use shutter_core::UserId;
use shutter_events::{
    Event, PostDeleted, PostFacts, ProfileFacts, RemovedKind, UserDeleted, UserRegistered,
};

use crate::docs::{EdgeDoc, EdgeKind};

/// What one event asks of the indexes.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// A published post's facts (on publication and on every edit).
    Post(PostFacts),
    /// A post is gone: its document becomes a tombstone.
    PostGone(PostDeleted),
    /// A new account: a user document, unless its profile got there first.
    Registered(UserRegistered),
    /// A profile's public fields after a change.
    Profile(ProfileFacts),
    /// An account is gone: its document becomes a tombstone.
    UserGone(UserDeleted),
    /// A follow, block or like edge at its `seq`.
    Edge(EdgeDoc),
    /// Staff banned, suspended or reinstated an account: its standing at `seq`.
    Standing(Standing),
}

/// An account's standing after a `UserSuspended` or `UserReinstated`, versioned by the
/// event's `seq` (the newest wins, as for edges). Only a ban hides anything in search; a
/// time-limited suspension (`banned: false`) stops the account's writes elsewhere, while
/// what it already published stays findable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Standing {
    pub user_id: UserId,
    pub username: String,
    pub banned: bool,
    pub seq: u64,
}

fn edge(kind: EdgeKind, a: &str, b: &str, seq: u64, active: bool) -> Effect {
    Effect::Edge(EdgeDoc {
        kind,
        a: a.to_owned(),
        b: b.to_owned(),
        active,
        seq,
    })
}

/// The effect of `event`; `None` for events search does not index (follow requests are
/// not follows; comments and engagement counters are not searched, so the removal of a
/// comment by staff changes nothing here either).
///
/// Moderation: a post removed by staff (`ContentRemoved` of kind post) is a tombstone, as
/// a deleted one is, for good; its author still sees it on their profile (the posts
/// service), not in search. A ban (`UserSuspended` with `banned`) hides the account and
/// its posts until a newer `UserReinstated` or non-ban `UserSuspended` lifts it. Until the
/// event reaches the indexer (normally a few seconds after staff act; longer while the
/// Identity topic's mapping lags or retries) the banned user and their posts are still
/// found, and a removed post too; nothing else closes that window in search.
pub fn effect(event: &Event) -> Option<Effect> {
    Some(match event {
        Event::PostPublished(post) | Event::PostUpdated(post) => Effect::Post(post.clone()),
        Event::PostDeleted(gone) => Effect::PostGone(gone.clone()),
        Event::ContentRemoved(removed) => match removed.kind {
            RemovedKind::Post => Effect::PostGone(PostDeleted {
                post_id: removed.post_id.clone(),
                author_id: removed.author_id.clone(),
                deleted_by: removed.removed_by.clone(),
            }),
            RemovedKind::Comment => return None,
        },
        Event::UserSuspended(s) => Effect::Standing(Standing {
            user_id: s.user_id.clone(),
            username: s.username.clone(),
            banned: s.banned,
            seq: s.seq,
        }),
        Event::UserReinstated(r) => Effect::Standing(Standing {
            user_id: r.user_id.clone(),
            username: r.username.clone(),
            banned: false,
            seq: r.seq,
        }),
        Event::UserRegistered(user) => Effect::Registered(user.clone()),
        Event::ProfileUpdated(profile) | Event::AvatarChanged(profile) => {
            Effect::Profile(profile.clone())
        }
        Event::UserDeleted(gone) => Effect::UserGone(gone.clone()),
        Event::FollowStarted(f) => edge(
            EdgeKind::Follow,
            &f.follower_id,
            &f.followee_id,
            f.seq,
            true,
        ),
        Event::FollowEnded(f) => edge(
            EdgeKind::Follow,
            &f.follower_id,
            &f.followee_id,
            f.seq,
            false,
        ),
        Event::UserBlocked(b) => edge(EdgeKind::Block, &b.blocker_id, &b.blocked_id, b.seq, true),
        Event::UserUnblocked(b) => {
            edge(EdgeKind::Block, &b.blocker_id, &b.blocked_id, b.seq, false)
        }
        Event::LikeAdded(l) => edge(EdgeKind::Like, &l.user_id, &l.post_id, l.seq, true),
        Event::LikeRemoved(l) => edge(EdgeKind::Like, &l.user_id, &l.post_id, l.seq, false),
        _ => return None,
    })
}
