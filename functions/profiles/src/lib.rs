//! The profiles service: the public face of a user (username, display name, bio,
//! website, privacy, avatar, counters).
//!
//! Profiles are created from `UserRegistered` and erased on `UserDeleted` (both from the
//! identity topic, applied idempotently); the owner edits them; avatars are uploaded
//! straight to S3 with a pre-signed POST and set once the upload is verified. Follower,
//! following and post counts follow the follows and posts topics ([`counters`]).

pub mod avatar;
pub mod consumers;
pub mod counters;
pub mod handlers;
pub mod model;
pub mod store;

/// The topic that carries this service's events.
pub const PROFILES_TOPIC: &str = "shutter.profiles";
