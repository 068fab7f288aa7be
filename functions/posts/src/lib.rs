//! The posts service: posts with direct media uploads, media processing, author and
//! hashtag lists, and the like and comment counters kept from engagement events.

pub mod counters;
pub mod deps;
pub mod handlers;
pub mod media;
pub mod model;
pub mod store;
pub mod text;
