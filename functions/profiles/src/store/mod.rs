//! The profiles table's ports and their adapters: [`dynamo`] (real) and [`memory`] (the
//! fake the unit tests run the use cases and consumers on, with the same conditions and
//! conflict labels).
//!
//! Layout (`pk` / `sk`):
//! - `PROFILE#<user id>` / `PROFILE`: the [`Profile`];
//! - `PROFILE#<user id>` / `COUNTS`: its counters (`follower_count`, `following_count`,
//!   `post_count`), kept apart so that a profile edit, which rewrites the profile item,
//!   never overwrites them; once the profile is erased, a tombstone with `gone` (and a
//!   `ttl`) so that a late follow or post event cannot bring them back;
//! - `HANDLE#<username>` / `HANDLE`: points a username at its `user_id`;
//! - `COUNTED#<thing>` / `COUNTED`: the [`Marker`] of a counted thing (`FOLLOW#<follower
//!   id>#<followee id>`, `POST#<post id>`, `BLOCK#<blocker id>#<blocked id>`);
//! - `PROFILE#<user id>` / `STANDING`: the account's suspension or ban (`banned`,
//!   `until`, `seq`), kept apart so that a profile edit never overwrites it, the one
//!   with the highest `seq` of `UserSuspended` / `UserReinstated`;
//! - `PROCESSED#<consumer>#<event id>` / `PROCESSED`: an applied identity event;
//! - `OUTBOX#<event id>` / `OUTBOX`: this service's events.

pub mod dynamo;
pub mod memory;

use async_trait::async_trait;
use shutter_core::validate::Username;
use shutter_core::{EventId, UserId};
pub use shutter_directory::Standing;
use shutter_events::Envelope;
use shutter_store::StoreResult;

use crate::model::{Counted, Delta, Marker, Profile};

/// Conflict: the profile changed (or went) since it was read.
pub const STALE: &str = "stale";
/// Conflict: the event was applied before (a redelivery); see
/// [`shutter_events::processed`].
pub use shutter_events::outbox::PROCESSED_LABEL as PROCESSED;
/// Conflict: the user has a profile already.
pub const PROFILE_EXISTS: &str = "profile_exists";
/// Conflict: another user still holds the username (their deletion is not applied yet).
pub const USERNAME_HELD: &str = "username_held";
/// Conflict: the erased profile's username points at another user meanwhile.
pub const HANDLE_MOVED: &str = "handle_moved";
/// Conflict: the stored standing has this `seq` or a higher one (a redelivered or late
/// event): nothing changed.
pub const STANDING_NEWER: &str = "standing_newer";
/// Conflict: a counted thing's marker moved since it was read.
pub const MARKER_MOVED: &str = "marker_moved";
/// Conflict: a user whose counter was to move had their profile erased meanwhile.
pub const PROFILE_GONE: &str = "profile_gone";

/// Profiles: what the endpoints, the identity consumer and the avatar consumer need.
#[async_trait]
pub trait ProfilesStore: Send + Sync {
    /// The profile with its counters.
    async fn by_id(&self, user_id: &UserId) -> StoreResult<Option<Profile>>;
    async fn by_username(&self, username: &Username) -> StoreResult<Option<Profile>>;
    /// Whether either user blocks the other (from the block markers that the graph
    /// consumer keeps, [`CountersStore`]).
    async fn blocked_between(&self, a: &UserId, b: &UserId) -> StoreResult<bool>;
    /// The account's suspension or ban as this service knows it (never `deleted`: an
    /// erased profile is simply not found). Unknown: active.
    async fn standing(&self, user_id: &UserId) -> StoreResult<Standing>;
    /// Records the account's suspension (`until`), ban (`banned`) or reinstatement
    /// (neither) numbered `seq`, unless one with this `seq` or a higher one is stored.
    /// Conflict: [`STANDING_NEWER`] (nothing changed).
    async fn set_standing(
        &self,
        user_id: &UserId,
        banned: bool,
        until: Option<&str>,
        seq: u64,
    ) -> StoreResult<()>;
    /// Saves `updated` with `event` if the stored profile is still `previous` (its
    /// `updated_at`). Conflict: [`STALE`].
    async fn save(
        &self,
        previous: &Profile,
        updated: &Profile,
        event: &Envelope,
    ) -> StoreResult<()>;
    /// Creates `profile` and its username, once for `consumer`'s event `event_id`.
    /// Conflicts, in this order: [`PROCESSED`], [`PROFILE_EXISTS`], [`USERNAME_HELD`].
    async fn create(
        &self,
        consumer: &str,
        event_id: &EventId,
        profile: &Profile,
    ) -> StoreResult<()>;
    /// Erases the user's profile, standing and username, and turns its counters into a tombstone,
    /// once for `consumer`'s event `event_id`; returns what was erased. Conflicts:
    /// [`PROCESSED`], [`HANDLE_MOVED`].
    async fn erase(
        &self,
        consumer: &str,
        event_id: &EventId,
        user_id: &UserId,
    ) -> StoreResult<Option<Profile>>;
}

/// Counters and blocks: what the graph consumer needs.
#[async_trait]
pub trait CountersStore: Send + Sync {
    async fn marker(&self, counted: &Counted) -> StoreResult<Option<Marker>>;
    /// Replaces the marker `previous` (none: never stored) with `next` and applies each
    /// delta, in one transaction. An erased profile's counters are left alone.
    /// Conflicts: [`MARKER_MOVED`], [`PROFILE_GONE`] (erased between its check and the
    /// write).
    async fn count(
        &self,
        counted: &Counted,
        previous: Option<&Marker>,
        next: &Marker,
        deltas: &[Delta],
    ) -> StoreResult<()>;
}
