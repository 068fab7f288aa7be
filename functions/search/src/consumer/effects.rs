//! What each event asks of the indexes, read from the catalogue's typed event. Edges
//! (follows, blocks, likes) become their documents at once; posts and users stay facts,
//! folded over the stored documents by [`super::fold`].

use shutter_events::{Event, PostDeleted, PostFacts, ProfileFacts, UserDeleted, UserRegistered};

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
/// not follows; comments and engagement counters are not searched).
pub fn effect(event: &Event) -> Option<Effect> {
    Some(match event {
        Event::PostPublished(post) | Event::PostUpdated(post) => Effect::Post(post.clone()),
        Event::PostDeleted(gone) => Effect::PostGone(gone.clone()),
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
