//! The feed service: each user's home timeline, newest first.
//!
//! Built hybrid ([`fanout`]): ordinary authors' posts are pushed into their followers'
//! timelines when published; celebrities' posts are merged at read time ([`service`]).
//! The service keeps its own copies of what a page shows (posts with their counts, who
//! likes what, authors' names and avatars) from the posts, likes, follows, identity and
//! profiles topics, so a page costs a bounded number of DynamoDB requests whatever the
//! viewer follows: the timeline query, the followed-celebrities query, one query per
//! followed celebrity, and one batch read per 100 keys of hydration.
//!
//! Modules: [`model`] (entries, copies and the pure rules), [`store`] (the ports and their
//! DynamoDB and in-memory adapters), [`service`] (reading a page), [`http`] (its
//! endpoint), [`fanout`] (the consumer that keeps timelines), [`worker`] (the chunked
//! work the consumer hands on: fan-outs, deleted posts, promotions, cleared timelines).

mod errors;
pub mod fanout;
pub mod http;
pub mod model;
pub mod service;
pub mod store;
pub mod worker;

use shutter_directory::DynamoDirectory;
use shutter_events::Consumer;
use shutter_events::work::WithWork;
use shutter_media::S3MediaStore;
use shutter_store::{ConfigError, CursorKey, SdkConfig, Table};

use crate::model::FanOut;
use crate::store::DynamoFeedStore;

/// The service's Kafka consumers.
pub const CONSUMERS: &[&Consumer] = &[&fanout::EVENTS];

/// What reading the feed works with; generic so tests use fakes.
#[derive(Debug)]
pub struct App<S, M> {
    pub store: S,
    pub media: M,
    pub cursors: CursorKey,
}

/// The deployed reader: the feed table, the media bucket, the cursor key.
pub type Live = App<DynamoFeedStore, S3MediaStore>;

impl Live {
    pub async fn from_env(aws: &SdkConfig) -> Result<Self, ConfigError> {
        Ok(App {
            store: DynamoFeedStore::new(Table::from_env(aws, "FEED_TABLE")?),
            media: S3MediaStore::from_env(aws)?,
            cursors: CursorKey::from_env(aws)?,
        })
    }
}

/// What keeping timelines works with: the feed store, the directory of authors (in the
/// same table) and the fan-out settings.
#[derive(Debug)]
pub struct Timelines<S, D> {
    pub store: S,
    pub directory: D,
    pub settings: FanOut,
}

/// The deployed consumer's dependencies.
pub type LiveTimelines = Timelines<DynamoFeedStore, DynamoDirectory>;

impl LiveTimelines {
    pub async fn from_env(aws: &SdkConfig) -> Result<Self, ConfigError> {
        let table = Table::from_env(aws, "FEED_TABLE")?;
        Ok(Timelines {
            store: DynamoFeedStore::new(table.clone()),
            directory: DynamoDirectory { table },
            settings: fan_out_from_env()?,
        })
    }

    /// And the feed's work queue (`WORK_QUEUE_URL`, `WORK_PAGE_SIZE`): for `feed-events`,
    /// which hands work on, and `feed-fanout-worker`, which does it.
    pub async fn with_work(aws: &SdkConfig) -> Result<WithWork<Self>, ConfigError> {
        WithWork::from_env(aws, Self::from_env(aws).await?)
    }
}

/// `FEED_CELEBRITY_FOLLOWERS` (default 10,000).
fn fan_out_from_env() -> Result<FanOut, ConfigError> {
    match std::env::var("FEED_CELEBRITY_FOLLOWERS") {
        Err(_) => Ok(FanOut::default()),
        Ok(raw) => raw
            .parse()
            .map(|celebrity_followers| FanOut {
                celebrity_followers,
            })
            .map_err(|_| ConfigError::Invalid {
                name: "FEED_CELEBRITY_FOLLOWERS",
                reason: format!("{raw:?} is not a whole number"),
            }),
    }
}
