//! The profile and its rules, without I/O: what a profile holds and shows, what an edit
//! changes and the event it emits, which uploads may become avatars and which upload wins,
//! and how follow, post and block events move the counters.

use serde::{Deserialize, Serialize};
use shutter_core::validate::{Bio, DisplayName, Username, Website};
use shutter_core::{PostId, UserId};
use shutter_events::{Envelope, Event, ProfileFacts};
pub use shutter_media::{MediaType as ImageType, ObjectInfo, UploadForm};

// ---------------------------------------------------------------- profiles

/// A profile as stored (its counters are read from their own item, see [`Counter`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Profile {
    pub user_id: UserId,
    pub username: Username,
    pub display_name: DisplayName,
    pub bio: Bio,
    pub website: Website,
    pub private: bool,
    pub avatar_key: Option<String>,
    pub follower_count: u64,
    pub following_count: u64,
    pub post_count: u64,
    pub created_at: String,
    pub updated_at: String,
    /// Grows by one on every saved change; the profile events carry it, so consumers keep
    /// the newest copy whatever order the events arrive in.
    #[serde(default)]
    pub version: u64,
    /// While private: when the account turned private (RFC 3339). The profile events
    /// carry it, so services that decided on the public copy in the meantime can tell
    /// which decisions were stale (docs/services.md, "Privacy changes").
    #[serde(default)]
    pub private_since: Option<String>,
}

impl Profile {
    /// The profile a new user starts with.
    pub fn new(user_id: UserId, username: Username, created_at: &str) -> Self {
        Self {
            user_id,
            display_name: DisplayName::from(&username),
            username,
            bio: Bio::default(),
            website: Website::default(),
            private: false,
            avatar_key: None,
            follower_count: 0,
            following_count: 0,
            post_count: 0,
            created_at: created_at.to_owned(),
            updated_at: created_at.to_owned(),
            version: 0,
            private_since: None,
        }
    }

    /// The public fields that `ProfileUpdated` and `AvatarChanged` carry.
    pub fn facts(&self) -> ProfileFacts {
        ProfileFacts {
            user_id: self.user_id.clone(),
            username: self.username.to_string(),
            display_name: self.display_name.to_string(),
            private: self.private,
            avatar_key: self.avatar_key.clone(),
            version: self.version,
            private_since: self.private_since.clone().filter(|_| self.private),
        }
    }

    /// The profile after `patch`, stamped `at`, if the patch changes anything: an edit
    /// that changes nothing is no edit (nothing saved, no event).
    pub fn edited(&self, patch: &ProfilePatch, at: &str) -> Option<Profile> {
        let mut next = self.clone();
        patch.apply(&mut next);
        (next != *self).then(|| Profile {
            updated_at: at.to_owned(),
            version: self.version + 1,
            // Turning private starts the time from which a stale "public" decision is
            // undone; staying private keeps it; turning public ends it.
            private_since: match (self.private, next.private) {
                (false, true) => Some(at.to_owned()),
                (true, true) => self.private_since.clone(),
                (_, false) => None,
            },
            ..next
        })
    }

    /// `ProfileUpdated` for this (edited) profile, caused by its owner's request.
    pub fn updated_event(&self, correlation_id: &str) -> Envelope {
        Envelope::new(
            Event::ProfileUpdated(self.facts()),
            Some(&self.user_id),
            correlation_id,
        )
    }

    /// How an upload at `key` compares with the avatar the profile has.
    pub fn avatar_change(&self, key: &AvatarKey) -> AvatarChange {
        match self.avatar_key.as_deref() {
            Some(current) if current == key.as_str() => AvatarChange::Current,
            // Keys end in a ULID, so a late notification for an older upload never wins.
            Some(current) if file_of(current) >= key.file() => AvatarChange::Older,
            _ => AvatarChange::Newer,
        }
    }

    /// The profile with the avatar at `key`, stamped `at`.
    pub fn with_avatar(&self, key: &AvatarKey, at: &str) -> Profile {
        Profile {
            avatar_key: Some(key.as_str().to_owned()),
            updated_at: at.to_owned(),
            version: self.version + 1,
            ..self.clone()
        }
    }

    /// `AvatarChanged` for this profile; the owner is the actor (they uploaded it).
    pub fn avatar_event(&self, correlation_id: &str) -> Envelope {
        Envelope::new(
            Event::AvatarChanged(self.facts()),
            Some(&self.user_id),
            correlation_id,
        )
    }
}

/// The fields `PATCH /v1/profiles/me` may change; absent means unchanged.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProfilePatch {
    pub display_name: Option<DisplayName>,
    pub bio: Option<Bio>,
    pub website: Option<Website>,
    pub private: Option<bool>,
}

impl ProfilePatch {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    pub fn apply(&self, profile: &mut Profile) {
        if let Some(v) = &self.display_name {
            profile.display_name = v.clone();
        }
        if let Some(v) = &self.bio {
            profile.bio = v.clone();
        }
        if let Some(v) = &self.website {
            profile.website = v.clone();
        }
        if let Some(v) = self.private {
            profile.private = v;
        }
    }
}

/// The public view: what anyone signed in may see.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ProfileView {
    pub id: UserId,
    pub username: String,
    pub display_name: String,
    pub bio: String,
    pub website: String,
    pub private: bool,
    pub avatar_url: Option<String>,
    pub follower_count: u64,
    pub following_count: u64,
    pub post_count: u64,
    pub created_at: String,
}

impl ProfileView {
    pub fn new(p: &Profile, avatar_url: Option<String>) -> Self {
        Self {
            id: p.user_id.clone(),
            username: p.username.to_string(),
            display_name: p.display_name.to_string(),
            bio: p.bio.to_string(),
            website: p.website.to_string(),
            private: p.private,
            avatar_url,
            follower_count: p.follower_count,
            following_count: p.following_count,
            post_count: p.post_count,
            created_at: p.created_at.clone(),
        }
    }
}

// ---------------------------------------------------------------- avatars

/// The largest avatar accepted.
pub const MAX_AVATAR_BYTES: u64 = 5 * 1024 * 1024;

/// The image type an avatar declared, if it is one an avatar may have.
pub fn avatar_type(mime: &str) -> Option<ImageType> {
    ImageType::from_mime(mime).filter(|t| t.is_image())
}

/// Whether an upload's declared size is one an avatar may have.
pub fn avatar_size_allowed(size: u64) -> bool {
    (1..=MAX_AVATAR_BYTES).contains(&size)
}

/// Where and how to upload the avatar.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AvatarUpload {
    /// The object key; the avatar URL contains it once the upload is verified.
    pub key: String,
    pub upload: UploadForm,
    pub max_size: u64,
}

/// The key under which every avatar of `user_id` is stored (erased with the account).
pub fn avatar_prefix(user_id: &UserId) -> String {
    format!("avatars/{user_id}/")
}

/// An avatar's object key: `avatars/<user id>/<ulid>.<extension>`, the owner's own prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AvatarKey {
    key: String,
    user_id: UserId,
}

impl AvatarKey {
    /// A fresh key for an upload of `image` by `user_id`.
    pub fn generate(user_id: &UserId, image: ImageType) -> Self {
        Self {
            key: format!(
                "{}{}.{}",
                avatar_prefix(user_id),
                shutter_core::new_id(),
                image.extension()
            ),
            user_id: user_id.clone(),
        }
    }

    /// The key of an uploaded object, if it is `avatars/<user id>/<file>`.
    pub fn parse(key: &str) -> Option<Self> {
        let mut parts = key.split('/');
        let (Some("avatars"), Some(user), Some(file), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return None;
        };
        let user_id = UserId::parse("user_id", user).ok()?;
        (!file.is_empty()).then(|| Self {
            key: key.to_owned(),
            user_id,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.key
    }

    /// Whose avatar it is.
    pub fn user_id(&self) -> &UserId {
        &self.user_id
    }

    /// The file name: a ULID, so later uploads sort after earlier ones.
    pub fn file(&self) -> &str {
        file_of(&self.key)
    }
}

fn file_of(key: &str) -> &str {
    key.rsplit('/').next().unwrap_or(key)
}

/// What an uploaded object turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Uploaded {
    pub size: u64,
    /// The type the upload declared (its `Content-Type`), if an avatar may have it.
    pub declared: Option<ImageType>,
    /// The type its first bytes say it is.
    pub sniffed: Option<ImageType>,
}

impl Uploaded {
    /// What S3 says of the object, and its first bytes (16 are enough).
    pub fn new(info: &ObjectInfo, head: &[u8]) -> Self {
        Self {
            size: info.size,
            declared: info.content_type.as_deref().and_then(avatar_type),
            sniffed: ImageType::sniff(head),
        }
    }

    /// A real jpeg, png or webp of at most 5 MB, of the type it declared.
    pub fn is_valid_avatar(&self) -> bool {
        avatar_size_allowed(self.size) && self.declared.is_some() && self.declared == self.sniffed
    }
}

/// How a verified upload compares with the profile's avatar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AvatarChange {
    /// Newer than the avatar (or the first): it becomes the avatar.
    Newer,
    /// It is the avatar already (a redelivered notification): nothing to do.
    Current,
    /// An older upload arriving late: discarded.
    Older,
}

// ---------------------------------------------------------------- counters

/// The counters of a profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Counter {
    Followers,
    Following,
    Posts,
}

/// The newest applied state of one counted thing: its `seq`, and whether it counts now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Marker {
    pub seq: u64,
    pub counted: bool,
}

/// A thing whose events move counters (or, for a block, hide profiles): a marker is kept
/// for each.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Counted {
    Follow {
        follower: UserId,
        followee: UserId,
    },
    Post(PostId),
    /// Counts nothing: the marker says whether `blocker` blocks `blocked`.
    Block {
        blocker: UserId,
        blocked: UserId,
    },
}

/// One user's counter moving by `by`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delta {
    pub user_id: UserId,
    pub counter: Counter,
    pub by: i64,
}

/// What one event says of one counted thing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counting {
    pub counted: Counted,
    pub next: Marker,
    /// The counters that follow whether it counts.
    pub users: Vec<(UserId, Counter)>,
}

impl Counting {
    /// What `event` says, if it concerns the counters or blocks.
    pub fn of(event: &Event) -> Option<Self> {
        let follow = |edge: &shutter_events::EdgeFacts, counted: bool| Counting {
            counted: Counted::Follow {
                follower: edge.follower_id.clone(),
                followee: edge.followee_id.clone(),
            },
            next: Marker {
                seq: edge.seq,
                counted,
            },
            users: vec![
                (edge.follower_id.clone(), Counter::Following),
                (edge.followee_id.clone(), Counter::Followers),
            ],
        };
        // A post counts from its publication until its deletion; a deletion is final.
        let post = |post_id: &PostId, author_id: &UserId, published: bool| Counting {
            counted: Counted::Post(post_id.clone()),
            next: Marker {
                seq: if published { 1 } else { 2 },
                counted: published,
            },
            users: vec![(author_id.clone(), Counter::Posts)],
        };
        let block = |b: &shutter_events::BlockFacts, counted: bool| Counting {
            counted: Counted::Block {
                blocker: b.blocker_id.clone(),
                blocked: b.blocked_id.clone(),
            },
            next: Marker {
                seq: b.seq,
                counted,
            },
            users: Vec::new(),
        };
        Some(match event {
            Event::FollowStarted(edge) => follow(edge, true),
            Event::FollowEnded(edge) => follow(edge, false),
            Event::PostPublished(p) => post(&p.post_id, &p.author_id, true),
            Event::PostDeleted(p) => post(&p.post_id, &p.author_id, false),
            Event::UserBlocked(b) => block(b, true),
            Event::UserUnblocked(b) => block(b, false),
            _ => return None,
        })
    }

    /// The counter moves of applying this after `previous`, or `None` when `previous` is
    /// as new or newer (a redelivered or late event: nothing changes). Counters move by
    /// the change in "counted" only, so no moves at all is a valid answer.
    pub fn deltas(&self, previous: Option<&Marker>) -> Option<Vec<Delta>> {
        if previous.is_some_and(|p| p.seq >= self.next.seq) {
            return None;
        }
        let by = i64::from(self.next.counted) - i64::from(previous.is_some_and(|p| p.counted));
        if by == 0 {
            return Some(Vec::new());
        }
        Some(
            self.users
                .iter()
                .map(|(user_id, counter)| Delta {
                    user_id: user_id.clone(),
                    counter: *counter,
                    by,
                })
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use shutter_events::{BlockFacts, EdgeFacts, EventType, PostDeleted, PostFacts};

    fn profile(name: &str) -> Profile {
        Profile::new(
            UserId::generate(),
            Username::try_from(name.to_owned()).unwrap(),
            "2026-01-01T00:00:00.000Z",
        )
    }

    #[test]
    fn an_avatar_is_an_image() {
        assert_eq!(avatar_type("image/PNG"), Some(ImageType::Png));
        assert_eq!(avatar_type("video/mp4"), None);
        assert_eq!(avatar_type("text/plain"), None);
    }

    #[test]
    fn an_edit_that_changes_nothing_is_no_edit() {
        // GIVEN a new profile
        let alice = profile("alice");
        assert_eq!(alice.display_name.as_str(), "alice");
        // WHEN the patch is empty or repeats what is there THEN nothing changes
        assert!(alice.edited(&ProfilePatch::default(), "later").is_none());
        let same = ProfilePatch {
            private: Some(false),
            ..ProfilePatch::default()
        };
        assert!(alice.edited(&same, "later").is_none());
        // WHEN it changes a field THEN only that field and the stamp change
        let private = ProfilePatch {
            private: Some(true),
            ..ProfilePatch::default()
        };
        let edited = alice.edited(&private, "later").unwrap();
        assert!(edited.private);
        assert_eq!(edited.updated_at, "later");
        assert_eq!(
            (&edited.bio, &edited.created_at),
            (&alice.bio, &alice.created_at)
        );
    }

    #[test]
    fn each_edit_counts_a_version_and_turning_private_stamps_when() {
        // GIVEN a new, public profile (version 0)
        let alice = profile("alice");
        let patch = |private| ProfilePatch {
            private: Some(private),
            ..ProfilePatch::default()
        };
        let bio = ProfilePatch {
            bio: Some(Bio::try_from("clouds".to_owned()).unwrap()),
            ..ProfilePatch::default()
        };
        // WHEN it turns private THEN the event says since when, with the next version
        let private = alice.edited(&patch(true), "t1").unwrap();
        assert_eq!(
            (private.version, private.private_since.as_deref()),
            (1, Some("t1"))
        );
        assert_eq!(private.facts().private_since.as_deref(), Some("t1"));
        assert_eq!(private.facts().version, 1);
        // WHEN a private profile is edited otherwise THEN it stays private since then
        let edited = private.edited(&bio, "t2").unwrap();
        assert_eq!(
            (edited.version, edited.private_since.as_deref()),
            (2, Some("t1"))
        );
        // WHEN it turns public THEN there is no "since" any more
        let public = edited.edited(&patch(false), "t3").unwrap();
        assert_eq!((public.version, public.private_since.as_deref()), (3, None));
        assert_eq!(public.facts().private_since, None);
    }

    #[test]
    fn the_update_event_carries_the_public_fields_after_the_change() {
        let alice = profile("alice");
        let event = alice.updated_event("corr");
        assert_eq!(event.event_type(), EventType::ProfileUpdated);
        assert_eq!(event.aggregate_id, alice.user_id.as_str());
        assert_eq!(event.actor.as_ref(), Some(&alice.user_id));
        let Event::ProfileUpdated(facts) = &event.event else {
            panic!("a ProfileUpdated")
        };
        assert_eq!(facts, &alice.facts());
        assert_eq!(facts.username, "alice");
    }

    #[test]
    fn avatar_keys_are_under_their_owners_prefix() {
        let user = UserId::generate();
        let key = AvatarKey::generate(&user, ImageType::Webp);
        assert!(key.as_str().starts_with(&avatar_prefix(&user)));
        assert!(key.as_str().ends_with(".webp"));
        assert_eq!(AvatarKey::parse(key.as_str()), Some(key.clone()));
        assert_eq!(key.user_id(), &user);
        for outside in [
            "avatars/x.png".to_owned(),
            format!("avatars/{user}/a/b.png"),
            format!("posts/{user}/a.png"),
            "avatars/not-a-user/01.png".to_owned(),
            format!("avatars/{user}/"),
        ] {
            assert_eq!(AvatarKey::parse(&outside), None, "{outside}");
        }
    }

    #[test]
    fn only_real_images_of_at_most_5_mb_become_avatars() {
        let png = b"\x89PNG\r\n\x1a\nrest";
        let info = |size, ct: &str| ObjectInfo {
            size,
            content_type: Some(ct.to_owned()),
        };
        assert!(Uploaded::new(&info(1000, "image/png"), png).is_valid_avatar());
        assert!(!Uploaded::new(&info(1000, "image/jpeg"), png).is_valid_avatar());
        assert!(!Uploaded::new(&info(1000, "image/png"), b"just text").is_valid_avatar());
        assert!(!Uploaded::new(&info(MAX_AVATAR_BYTES + 1, "image/png"), png).is_valid_avatar());
        assert!(!Uploaded::new(&info(0, "image/png"), png).is_valid_avatar());
        let undeclared = ObjectInfo {
            size: 10,
            content_type: None,
        };
        assert!(!Uploaded::new(&undeclared, png).is_valid_avatar());
    }

    #[test]
    fn a_later_upload_wins_and_a_late_older_one_does_not() {
        let alice = profile("alice");
        let key =
            |file: &str| AvatarKey::parse(&format!("avatars/{}/{file}", alice.user_id)).unwrap();
        assert_eq!(alice.avatar_change(&key("01B.png")), AvatarChange::Newer);
        let with = alice.with_avatar(&key("01B.png"), "later");
        assert_eq!(with.avatar_key.as_deref(), Some(key("01B.png").as_str()));
        assert_eq!(with.avatar_change(&key("01B.png")), AvatarChange::Current);
        assert_eq!(with.avatar_change(&key("01A.png")), AvatarChange::Older);
        assert_eq!(with.avatar_change(&key("01C.jpg")), AvatarChange::Newer);
    }

    fn edge(started: bool, seq: u64) -> Event {
        let facts = EdgeFacts {
            follower_id: UserId::trusted("a"),
            followee_id: UserId::trusted("b"),
            seq,
            at: "t".into(),
            reason: None,
        };
        if started {
            Event::FollowStarted(facts)
        } else {
            Event::FollowEnded(facts)
        }
    }

    #[test]
    fn a_follow_moves_both_users_counters_by_the_change_in_counted() {
        let started = Counting::of(&edge(true, 1)).unwrap();
        let moves = started.deltas(None).unwrap();
        assert_eq!(
            moves,
            vec![
                Delta {
                    user_id: UserId::trusted("a"),
                    counter: Counter::Following,
                    by: 1
                },
                Delta {
                    user_id: UserId::trusted("b"),
                    counter: Counter::Followers,
                    by: 1
                },
            ]
        );
        // Redelivered (same seq) or late (older seq): nothing.
        let applied = started.next;
        assert_eq!(started.deltas(Some(&applied)), None);
        let ended = Counting::of(&edge(false, 2)).unwrap();
        assert_eq!(started.deltas(Some(&ended.next)), None);
        // Ended after started: both drop by one; ended first: nothing to drop.
        assert!(
            ended
                .deltas(Some(&applied))
                .unwrap()
                .iter()
                .all(|d| d.by == -1)
        );
        assert_eq!(ended.deltas(None), Some(Vec::new()));
    }

    #[test]
    fn posts_count_once_published_and_blocks_count_nothing() {
        let post_id = PostId::generate();
        let author = UserId::generate();
        let published = Event::PostPublished(PostFacts {
            post_id: post_id.clone(),
            author_id: author.clone(),
            caption: String::new(),
            location: None,
            hashtags: Vec::new(),
            mentions: Vec::new(),
            created_at: "t".into(),
            version: 7,
            media: Vec::new(),
        });
        let deleted = Event::PostDeleted(PostDeleted {
            post_id: post_id.clone(),
            author_id: author.clone(),
            deleted_by: author.clone(),
        });
        let published = Counting::of(&published).unwrap();
        let deleted = Counting::of(&deleted).unwrap();
        assert_eq!(published.counted, Counted::Post(post_id));
        // A deletion is final: a publication arriving after it changes nothing.
        assert_eq!(published.deltas(Some(&deleted.next)), None);
        assert_eq!(deleted.deltas(Some(&published.next)).unwrap()[0].by, -1);

        let block = Event::UserBlocked(BlockFacts {
            blocker_id: author.clone(),
            blocked_id: UserId::generate(),
            seq: 1,
            at: "t".into(),
        });
        let block = Counting::of(&block).unwrap();
        assert!(block.next.counted);
        assert_eq!(block.deltas(None), Some(Vec::new()));
        assert_eq!(Counting::of(&profile("bob").updated_event("c").event), None);
    }
}
