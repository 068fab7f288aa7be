//! The domain event catalogue: every event that Shutter's services exchange, in one place.
//!
//! Each event is a variant of [`Event`] with its payload struct (from [`payloads`]), its
//! schema version, its Kafka topic and the payload field that keys it (one aggregate's
//! events stay in order on one partition). Producers construct variants; consumers match
//! on them. A misspelt event is a compile error, and a new event is one line of the
//! catalogue below plus its payload.
//!
//! On the wire an event travels in an [`Envelope`] as JSON with a string `type`: an event
//! type this build does not know (a newer producer's) decodes as
//! [`Decoded::Unknown`], which consumers skip and count, never mistake for poison.
//!
//! [`asyncapi::document`] publishes the catalogue as an AsyncAPI 3.0 document.

pub mod asyncapi;
mod envelope;
pub mod payloads;

pub use envelope::{DecodeError, Decoded, Envelope, UnknownEvent};
pub use payloads::*;

/// A Kafka topic: one per producing service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Topic {
    Identity,
    Profiles,
    Posts,
    Likes,
    Comments,
    Follows,
}

impl Topic {
    pub const ALL: [Topic; 6] = [
        Topic::Identity,
        Topic::Profiles,
        Topic::Posts,
        Topic::Likes,
        Topic::Comments,
        Topic::Follows,
    ];

    /// The topic's name on the broker (and in template.yaml).
    pub const fn name(self) -> &'static str {
        match self {
            Topic::Identity => "shutter.identity",
            Topic::Profiles => "shutter.profiles",
            Topic::Posts => "shutter.posts",
            Topic::Likes => "shutter.likes",
            Topic::Comments => "shutter.comments",
            Topic::Follows => "shutter.follows",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.name() == name)
    }

    /// Who publishes on it, and how its records are keyed.
    pub const fn description(self) -> &'static str {
        match self {
            Topic::Identity => "Accounts (the identity service), keyed by user id.",
            Topic::Profiles => "Public profiles (the profiles service), keyed by user id.",
            Topic::Posts => "Posts and their counters (the posts service), keyed by post id.",
            Topic::Likes => "Likes on posts (the likes service), keyed by post id.",
            Topic::Comments => {
                "Comments and comment likes (the comments service), keyed by post id."
            }
            Topic::Follows => {
                "Follows, requests and blocks (the follows service), keyed by the follower or the blocker."
            }
        }
    }

    /// The event types published on this topic.
    pub fn events(self) -> impl Iterator<Item = EventType> {
        EventType::ALL
            .iter()
            .copied()
            .filter(move |t| t.topic() == self)
    }
}

impl std::fmt::Display for Topic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

macro_rules! catalogue {
    ($(
        $(#[doc = $doc:literal])*
        $name:ident($payload:ty) on $topic:ident, version $version:literal, key $key:ident;
    )*) => {
        /// A domain event with its payload.
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub enum Event {
            $( $(#[doc = $doc])* $name($payload), )*
        }

        /// The type of an [`Event`], without its payload.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum EventType {
            $( $(#[doc = $doc])* $name, )*
        }

        impl EventType {
            /// Every event type, in catalogue order.
            pub const ALL: &'static [EventType] = &[$(EventType::$name,)*];

            /// The name in the envelope's `type`.
            pub const fn as_str(self) -> &'static str {
                match self { $(EventType::$name => stringify!($name),)* }
            }

            /// The topic it is published on.
            pub const fn topic(self) -> Topic {
                match self { $(EventType::$name => Topic::$topic,)* }
            }

            /// The payload's schema version, in the envelope's `version`.
            pub const fn version(self) -> u32 {
                match self { $(EventType::$name => $version,)* }
            }

            /// The payload field that keys the event on its topic.
            pub const fn key_field(self) -> &'static str {
                match self { $(EventType::$name => stringify!($key),)* }
            }

            /// What the event says, from the catalogue's documentation.
            pub fn description(self) -> &'static str {
                match self { $(EventType::$name => concat!($($doc,)*).trim_ascii(),)* }
            }

            /// The event type named `name`, if this build knows it.
            pub fn parse(name: &str) -> Option<Self> {
                match name {
                    $(stringify!($name) => Some(EventType::$name),)*
                    _ => None,
                }
            }

            /// The payload's schema name, and every schema it needs (itself included).
            pub fn payload_schemas(
                self,
            ) -> (String, Vec<(String, utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>)>) {
                match self {
                    $(EventType::$name => {
                        let mut schemas = Vec::new();
                        <$payload as utoipa::ToSchema>::schemas(&mut schemas);
                        let name = <$payload as utoipa::ToSchema>::name().into_owned();
                        schemas.push((name.clone(), <$payload as utoipa::PartialSchema>::schema()));
                        (name, schemas)
                    })*
                }
            }
        }

        impl Event {
            pub fn event_type(&self) -> EventType {
                match self { $(Event::$name(_) => EventType::$name,)* }
            }

            /// The id that keys the event on its topic (its aggregate).
            pub fn aggregate_id(&self) -> &str {
                match self { $(Event::$name(p) => p.$key.as_str(),)* }
            }

            /// The payload as JSON (the envelope's `data`).
            pub fn to_data(&self) -> Result<serde_json::Value, serde_json::Error> {
                match self { $(Event::$name(p) => serde_json::to_value(p),)* }
            }

            /// The event of type `event_type` whose payload is `data`.
            pub fn from_data(
                event_type: EventType,
                data: serde_json::Value,
            ) -> Result<Self, serde_json::Error> {
                match event_type {
                    $(EventType::$name => serde_json::from_value(data).map(Event::$name),)*
                }
            }
        }
    };
}

catalogue! {
    /// An account was created.
    UserRegistered(UserRegistered) on Identity, version 1, key user_id;
    /// An account's email address changed.
    UserEmailChanged(UserEmailChanged) on Identity, version 1, key user_id;
    /// An account was deleted: every service erases what it holds of the user.
    UserDeleted(UserDeleted) on Identity, version 1, key user_id;
    /// Staff suspended or banned an account: its writes are refused while it holds, and a
    /// banned account's posts, comments and profile are hidden from others.
    UserSuspended(UserSuspended) on Identity, version 1, key user_id;
    /// Staff lifted an account's suspension or ban.
    UserReinstated(UserReinstated) on Identity, version 1, key user_id;
    /// Staff removed a post or comment: hidden from all but its author, for good.
    ContentRemoved(ContentRemoved) on Identity, version 1, key author_id;
    /// Someone tried to register with the email of an existing account. The registration
    /// was answered as any other (so it does not reveal the account) and created nothing;
    /// the account's owner is to be told by email.
    RegistrationWithTakenEmail(RegistrationWithTakenEmail) on Identity, version 1, key user_id;
    /// A profile's public fields changed (display name, bio, privacy).
    ProfileUpdated(ProfileFacts) on Profiles, version 1, key user_id;
    /// A profile's avatar was replaced by a verified upload.
    AvatarChanged(ProfileFacts) on Profiles, version 1, key user_id;
    /// A post was created; it waits for its media before it is published.
    PostCreated(PostFacts) on Posts, version 1, key post_id;
    /// A post's media are ready: the post is visible from now on.
    PostPublished(PostFacts) on Posts, version 1, key post_id;
    /// A published post's caption or location changed.
    PostUpdated(PostFacts) on Posts, version 1, key post_id;
    /// A post was deleted, by its author, by staff or with its author's account.
    PostDeleted(PostDeleted) on Posts, version 1, key post_id;
    /// A post's like or comment count moved.
    PostEngagementChanged(EngagementChanged) on Posts, version 1, key post_id;
    /// A user liked a post.
    LikeAdded(LikeFacts) on Likes, version 1, key post_id;
    /// A user took back a like (or their account was deleted).
    LikeRemoved(LikeFacts) on Likes, version 1, key post_id;
    /// A comment was stored.
    CommentAdded(CommentAdded) on Comments, version 1, key post_id;
    /// A comment's text was edited.
    CommentEdited(CommentEdited) on Comments, version 1, key post_id;
    /// A comment was deleted.
    CommentDeleted(CommentDeleted) on Comments, version 1, key post_id;
    /// A user liked a comment.
    CommentLikeAdded(CommentLikeFacts) on Comments, version 1, key post_id;
    /// A user took back a comment like.
    CommentLikeRemoved(CommentLikeFacts) on Comments, version 1, key post_id;
    /// A user asked to follow a private account.
    FollowRequested(EdgeFacts) on Follows, version 1, key follower_id;
    /// A follow request was withdrawn or declined before it was approved.
    FollowRequestCancelled(EdgeFacts) on Follows, version 1, key follower_id;
    /// A user now follows another (a public account, or an approved request).
    FollowStarted(EdgeFacts) on Follows, version 1, key follower_id;
    /// A follow ended (unfollowed, blocked, or an account deleted).
    FollowEnded(EdgeFacts) on Follows, version 1, key follower_id;
    /// A user blocked another.
    UserBlocked(BlockFacts) on Follows, version 1, key blocker_id;
    /// A user lifted a block.
    UserUnblocked(BlockFacts) on Follows, version 1, key blocker_id;
}

/// A set of event types, usable in constants: what a consumer handles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EventSet(u64);

impl EventSet {
    pub const EMPTY: EventSet = EventSet(0);

    pub const fn of(types: &[EventType]) -> Self {
        let mut bits = 0u64;
        let mut i = 0;
        while i < types.len() {
            bits |= 1 << (types[i] as u64);
            i += 1;
        }
        EventSet(bits)
    }

    pub const fn union(self, other: EventSet) -> Self {
        EventSet(self.0 | other.0)
    }

    pub const fn contains(self, event_type: EventType) -> bool {
        self.0 & (1 << (event_type as u64)) != 0
    }

    pub fn iter(self) -> impl Iterator<Item = EventType> {
        EventType::ALL
            .iter()
            .copied()
            .filter(move |t| self.contains(*t))
    }

    /// The topics that carry these events: what the consumer must subscribe to.
    pub fn topics(self) -> std::collections::BTreeSet<Topic> {
        self.iter().map(EventType::topic).collect()
    }
}

/// An event consumer, as its crate declares it: the name it goes by (its binary, its DLQ
/// messages, its logs) and the events it acts on. Everything else on its topics is
/// skipped before it sees it, so the declaration is what the code does; a contract test
/// holds template.yaml's subscriptions to it, and the AsyncAPI document lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Consumer {
    pub name: &'static str,
    pub handles: EventSet,
    /// What it does with them, for the AsyncAPI document.
    pub summary: &'static str,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_has_a_unique_name_and_round_trips() {
        let mut names = std::collections::BTreeSet::new();
        for t in EventType::ALL {
            assert!(names.insert(t.as_str()), "{} twice", t.as_str());
            assert_eq!(EventType::parse(t.as_str()), Some(*t));
            assert!(!t.description().is_empty());
            assert!(t.version() >= 1);
        }
        assert_eq!(EventType::ALL.len(), 27);
        assert!(EventType::ALL.len() < 64, "EventSet is a u64 bitmask");
        assert_eq!(EventType::parse("PostPublishedd"), None);
    }

    #[test]
    fn every_topic_carries_events_and_names_round_trip() {
        for topic in Topic::ALL {
            assert!(topic.events().count() > 0, "{topic} carries nothing");
            assert_eq!(Topic::from_name(topic.name()), Some(topic));
        }
        assert_eq!(EventType::PostPublished.topic().name(), "shutter.posts");
    }

    #[test]
    fn sets_hold_what_they_were_given() {
        const DIRECTORY: EventSet = EventSet::of(&[EventType::UserDeleted, EventType::PostDeleted]);
        const MINE: EventSet = DIRECTORY.union(EventSet::of(&[EventType::LikeAdded]));
        assert!(MINE.contains(EventType::LikeAdded) && MINE.contains(EventType::UserDeleted));
        assert!(!MINE.contains(EventType::LikeRemoved));
        assert_eq!(
            MINE.topics().into_iter().collect::<Vec<_>>(),
            vec![Topic::Identity, Topic::Posts, Topic::Likes]
        );
    }

    #[test]
    fn payload_schemas_include_their_nested_types() {
        let (name, schemas) = EventType::CommentAdded.payload_schemas();
        assert_eq!(name, "CommentAdded");
        let names: Vec<_> = schemas.iter().map(|(n, _)| n.as_str()).collect();
        assert!(names.contains(&"UserRef"), "{names:?}");
        assert!(names.contains(&"CommentAdded"), "{names:?}");
    }
}
