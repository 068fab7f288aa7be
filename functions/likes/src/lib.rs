//! The likes service: a user likes or unlikes a post once however often they ask, and
//! anyone who may see a post may page through its likers, newest first.
//!
//! Which posts exist and who may see them comes from the service's own copy of authors
//! and published posts ([`shutter_directory`]), fed by the `likes-directory-events`
//! consumer, which also drops a deleted post's likes and a deleted user's likes.
//!
//! Every change of a (post, user) like emits `LikeAdded` or `LikeRemoved` on
//! `shutter.likes` (keyed by the post id) through the outbox, in the same transaction as
//! the change. The posts service counts them; this service keeps no counter.

pub mod cache;
pub mod consumer;
pub mod handlers;
pub mod model;
pub mod store;

/// The topic that carries this service's events.
pub const LIKES_TOPIC: &str = "shutter.likes";

/// The directory consumer's name (consumer group, DLQ messages).
pub const DIRECTORY_CONSUMER: &str = "likes-directory-events";
