//! The search service: OpenSearch indexes of published posts, users and the follow,
//! block and like edges, kept in step with the other services' events by
//! `search-indexer` ([`consumer`]), and three searches ([`http`], [`service`]) that
//! respect privacy and blocks. The indexes' mappings live in `indexes/*.json` and are
//! applied on deploy by `search-indexes`, a CloudFormation custom resource ([`setup`]).
//!
//! The service reads no other service's table: everything it filters by (who is private,
//! who blocked whom, who follows whom, how many like a post) comes from events.
//!
//! - [`model`]: the rules (query texts, whom a viewer may see), pure;
//! - [`query`]: the OpenSearch query bodies built from them, pure;
//! - [`service`]: the searches; [`http`]: their adapters; [`errors`]: OpenSearch
//!   failures as clients see them;
//! - [`store`]: the ports and their adapters; [`client`]: the signed REST client;
//! - [`docs`]: the documents of the indexes.

use shutter_events::Consumer;
use shutter_store::CursorKey;
use shutter_store::{ConfigError, SdkConfig};

pub mod client;
pub mod consumer;
pub mod docs;
pub mod errors;
pub mod http;
pub mod model;
pub mod query;
pub mod service;
pub mod setup;
pub mod store;

pub use client::{OpenSearch, SearchError};
pub use consumer::INDEXER;
pub use docs::{POSTS_INDEX, RELATIONS_INDEX, USERS_INDEX};

/// Every MSK consumer of the service.
pub const CONSUMERS: &[&Consumer] = &[&INDEXER];

/// What every function of the service works with; generic so tests use fakes. `cursors`
/// is the cursor key for the one search that pages (`()` for the functions that do not,
/// so they read no secret at cold start).
pub struct App<S, C = ()> {
    pub search: S,
    pub cursors: C,
}

/// The deployed App of `search-posts`: the cluster of `OPENSEARCH_URL` and the cursor key.
pub type Live = App<OpenSearch, CursorKey>;

impl Live {
    pub async fn from_env(aws: &SdkConfig) -> Result<Self, ConfigError> {
        Ok(App {
            search: OpenSearch::from_env(aws)?,
            cursors: CursorKey::from_env(aws)?,
        })
    }

    /// The deployed App of every other function: the cluster only.
    pub async fn without_cursors(aws: &SdkConfig) -> Result<App<OpenSearch>, ConfigError> {
        Ok(App {
            search: OpenSearch::from_env(aws)?,
            cursors: (),
        })
    }
}
