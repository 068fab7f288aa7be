//! The posts service: posts with direct media uploads, media processing, author and
//! hashtag lists, and the like and comment counters kept from engagement events.
//!
//! A post is created `pending` with an upload form per media item (`PostCreated`); the
//! client uploads straight to S3, and `posts-media-uploaded` ([`media`]) checks and
//! re-encodes each upload, then publishes the post once its media are settled
//! (`PostPublished`). Its author edits it (`PostUpdated`, conditional on the version
//! read) and the author or staff delete it (`PostDeleted`). Every change and its event
//! are one transaction through the outbox, on `shutter.posts`, keyed by the post id.
//!
//! Who may see a post comes from the service's own copy of authors, follows and blocks
//! ([`shutter_directory`]), kept by `posts-events` ([`counters::EVENTS`]), which also
//! turns likes and comments into the posts' counters (`PostEngagementChanged`), removes
//! a deleted post's media and hands on deleting a deleted account's posts ([`worker`], a
//! page a chunk).
//!
//! Modules: [`model`] (posts and their rules), [`api`] (request bodies and views),
//! [`store`] (the table's port and adapters), [`service`] (the endpoints' use cases),
//! [`http`] (the endpoints), [`counters`] (the Kafka consumer), [`worker`] (the chunked
//! work it hands on), [`media`] (the upload processor), [`text`] (hashtags and mentions in
//! captions).

pub mod api;
pub mod counters;
mod errors;
pub mod http;
pub mod media;
pub mod model;
pub mod service;
pub mod store;
#[cfg(test)]
mod testing;
pub mod text;
pub mod worker;

use shutter_directory::DynamoDirectory;
use shutter_events::Consumer;
use shutter_events::work::WithWork;
use shutter_media::S3MediaStore;
use shutter_store::CursorKey;
use shutter_store::{ConfigError, SdkConfig, Table};

use crate::store::dynamo::DynamoPostsStore;

/// What every function of the service works with; generic so tests use fakes.
pub struct App<S, M, D> {
    pub store: S,
    /// The media bucket. Endpoints only sign URLs with it, so they never open an
    /// object connection.
    pub media: M,
    pub directory: D,
    /// Signs list cursors. Only the list functions are built with it
    /// ([`Live::from_env`]); the others never read the key.
    pub cursors: Option<CursorKey>,
}

/// The deployed App: DynamoDB adapters over the posts table and the S3 media bucket.
pub type Live = App<DynamoPostsStore, S3MediaStore, DynamoDirectory>;

impl Live {
    /// Everything, the cursor key included: for `posts-by-author` and `posts-by-hashtag`.
    pub async fn from_env(aws: &SdkConfig) -> Result<Self, ConfigError> {
        let cursors = CursorKey::from_env(aws)?;
        Ok(App {
            cursors: Some(cursors),
            ..Self::without_cursors(aws).await?
        })
    }

    /// Without the cursor key: for the functions that list nothing, whose cold starts
    /// then read no secret.
    pub async fn without_cursors(aws: &SdkConfig) -> Result<Self, ConfigError> {
        let table = Table::from_env(aws, "POSTS_TABLE")?;
        Ok(App {
            store: DynamoPostsStore {
                table: table.clone(),
            },
            media: S3MediaStore::from_env(aws)?,
            directory: DynamoDirectory { table },
            cursors: None,
        })
    }

    /// [`Live::without_cursors`] and the service's work queue (`WORK_QUEUE_URL`,
    /// `WORK_PAGE_SIZE`): for `posts-events`, which hands work on, and
    /// `posts-cascade-worker`, which does it.
    pub async fn with_work(aws: &SdkConfig) -> Result<WithWork<Self>, ConfigError> {
        WithWork::from_env(aws, Self::without_cursors(aws).await?)
    }
}

/// The service's Kafka consumers.
pub const CONSUMERS: &[&Consumer] = &[&counters::EVENTS];
