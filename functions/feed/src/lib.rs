//! The feed service: each user's home timeline, newest first.
//!
//! Built hybrid ([`fanout`]): ordinary authors' posts are pushed into their followers'
//! timelines when published; celebrities' posts are merged at read time ([`handlers`]).
//! The service keeps its own copies of what a page shows (posts with their counts, who
//! likes what, authors' names and avatars) from the posts, likes, follows, identity and
//! profiles topics, so a page costs a bounded number of DynamoDB requests whatever the
//! viewer follows: the timeline query, the followed-celebrities query, one query per
//! followed celebrity, and one batch read per 100 keys of hydration.

pub mod fanout;
pub mod handlers;
pub mod store;
