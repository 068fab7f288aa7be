//! The follows service: who follows whom, follow requests to private accounts, and blocks.
//!
//! A follow is an edge from a follower to a followee with a state (`none`, `requested`,
//! `following`) and a `seq` that grows by one on every change; each write is conditional
//! on the `seq` it read, so racing requests cannot both change an edge. A block is an item
//! of its own with the same scheme; following checks both directions' blocks in the same
//! transaction, so a block cannot be bypassed by a follow racing it.
//!
//! Every change emits its event on `shutter.follows` through the outbox, in the same
//! transaction: `FollowRequested`, `FollowRequestCancelled`, `FollowStarted`,
//! `FollowEnded` (keyed by the follower), `UserBlocked`, `UserUnblocked` (keyed by the
//! blocker). Their `seq` lets consumers drop stale and repeated deliveries.
//!
//! Usernames, privacy and deleted accounts come from the service's own copy of users
//! ([`shutter_directory`]), fed by `follows-directory-events`, which also ends every
//! follow, request and block of a deleted account.

pub mod consumer;
pub mod handlers;
pub mod model;
pub mod store;

/// The topic that carries this service's events.
pub const FOLLOWS_TOPIC: &str = "shutter.follows";

/// The directory consumer's name (consumer group, DLQ messages).
pub const DIRECTORY_CONSUMER: &str = "follows-directory-events";
