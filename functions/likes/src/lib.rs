//! The likes service: a user likes or unlikes a post once however often they ask, and
//! anyone who may see a post may page through its likers, newest first.
//!
//! Which posts exist and who may see them comes from the service's own copy of authors
//! and published posts ([`shutter_directory`]), fed by the `likes-directory-events`
//! consumer ([`consumer::DIRECTORY_EVENTS`]), which also hands on dropping a deleted
//! post's likes and erasing a deleted user's likes ([`worker`], a page a chunk).
//!
//! Every change of a (post, user) like emits `LikeAdded` or `LikeRemoved` on
//! `shutter.likes` (keyed by the post id) through the outbox, in the same transaction as
//! the change. The posts service counts them; this service keeps no counter.
//!
//! Modules: [`model`] (the like rule and its events), [`store`] (the table's ports and
//! adapters), [`service`] (use cases), [`http`] (the endpoints), [`consumer`] (the
//! directory consumer), [`worker`] (the chunked work it hands on), [`cache`] (directory
//! reads kept a few seconds).

pub mod cache;
pub mod consumer;
mod errors;
pub mod http;
pub mod model;
pub mod service;
pub mod store;
#[cfg(test)]
mod testing;
pub mod worker;

use shutter_directory::DynamoDirectory;
use shutter_events::Consumer;
use shutter_events::work::WithWork;
use shutter_store::CursorKey;
use shutter_store::{ConfigError, SdkConfig, Table};

use crate::cache::CachedDirectory;
use crate::store::dynamo::DynamoLikesStore;

/// What every function of the service works with; generic so tests use fakes.
pub struct App<S, D> {
    pub store: S,
    pub directory: D,
    /// Signs likers-list cursors. Only `likes-list` is built with it ([`Live::from_env`]):
    /// the other functions may not read the key.
    pub cursors: Option<CursorKey>,
}

/// The deployed App: DynamoDB adapters over the service's table, directory reads cached.
pub type Live = App<DynamoLikesStore, CachedDirectory<DynamoDirectory>>;

impl Live {
    /// Everything, the cursor key included: for `likes-list`.
    pub async fn from_env(aws: &SdkConfig) -> Result<Self, ConfigError> {
        let cursors = CursorKey::from_env(aws)?;
        Ok(App {
            cursors: Some(cursors),
            ..Self::for_writes(aws).await?
        })
    }

    /// Without the cursor key: for liking, unliking and the consumer, whose cold starts
    /// then read no secret.
    pub async fn for_writes(aws: &SdkConfig) -> Result<Self, ConfigError> {
        let table = Table::from_env(aws, "LIKES_TABLE")?;
        Ok(App {
            directory: CachedDirectory::new(
                DynamoDirectory {
                    table: table.clone(),
                },
                cache::ttl_from_env()?,
            ),
            store: DynamoLikesStore { table },
            cursors: None,
        })
    }

    /// [`Live::for_writes`] and the service's work queue (`WORK_QUEUE_URL`,
    /// `WORK_PAGE_SIZE`): for the consumer, which hands work on, and
    /// `likes-cascade-worker`, which does it.
    pub async fn with_work(aws: &SdkConfig) -> Result<WithWork<Self>, ConfigError> {
        WithWork::from_env(aws, Self::for_writes(aws).await?)
    }
}

/// The service's Kafka consumers.
pub const CONSUMERS: &[&Consumer] = &[&consumer::DIRECTORY_EVENTS];
