//! The search service: OpenSearch indexes of published posts, users and the follow,
//! block and like edges, kept in step with the other services' events by
//! `search-indexer` ([`indexer`]), and three searches ([`handlers`]) that respect
//! privacy and blocks. The indexes' mappings live in `indexes/*.json` and are applied on
//! deploy by `search-indexes`, a CloudFormation custom resource ([`setup`]).
//!
//! The service reads no other service's table: everything it filters by (who is private,
//! who blocked whom, who follows whom, how many like a post) comes from events.

pub mod client;
pub mod docs;
pub mod handlers;
pub mod indexer;
pub mod setup;

pub use docs::{POSTS_INDEX, RELATIONS_INDEX, USERS_INDEX};

/// The indexer's name (DLQ messages).
pub const INDEXER: &str = "search-indexer";
