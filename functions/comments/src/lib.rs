//! The comments service: comments on posts, one level of replies, edits, deletes and
//! comment likes.
//!
//! `POST /v1/posts/{id}/comments` checks the comment and answers 202 with it as it will be
//! stored; the write itself rides the `CommentWritesQueue` ([`queue`]) to
//! `comments-writer` ([`writer`]), which stores it with its `CommentAdded` event exactly
//! once however often SQS delivers it. Who may comment on or read a post comes from this
//! service's own copy of authors and published posts (`shutter-directory`), kept by
//! `comments-directory-events` ([`consumer`]), which also hands on erasing the comments
//! of deleted posts and deleted users ([`worker`], a page a chunk).
//!
//! Layers: [`model`] (rules, no I/O) <- [`store`] and [`queue`] (ports and adapters) <-
//! [`service`] (use cases) <- [`http`], [`writer`], [`consumer`] and [`worker`] (the
//! edges).

pub mod consumer;
mod errors;
pub mod http;
pub mod model;
pub mod queue;
pub mod service;
pub mod store;
pub mod worker;
pub mod writer;

#[cfg(test)]
mod moderation;
#[cfg(test)]
mod testing;

use shutter_directory::DynamoDirectory;
use shutter_events::Consumer;
use shutter_events::work::WithWork;
use shutter_store::CursorKey;
use shutter_store::{ConfigError, SdkConfig, Table};

use crate::queue::SqsWriteQueue;
use crate::store::dynamo::DynamoCommentsStore;

/// What every function of the service works with; generic so tests use fakes. The writes
/// queue (`Q`) and the cursor key (`C`) are loaded only by the functions that use them
/// (`comments-create` and `comments-list`); the others hold [`NoQueue`] and [`NoCursors`].
#[derive(Debug)]
pub struct App<S, D, Q = NoQueue, C = NoCursors> {
    pub store: S,
    pub directory: D,
    pub queue: Q,
    pub cursors: C,
}

/// No writes queue: this function does not accept comments.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoQueue;

/// No cursor key: this function does not list comments.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoCursors;

/// The deployed App: DynamoDB adapters over the service's table (`COMMENTS_TABLE`).
pub type Live = App<DynamoCommentsStore, DynamoDirectory>;

impl Live {
    /// The table's store and directory: what every function needs.
    pub async fn from_env(aws: &SdkConfig) -> Result<Self, ConfigError> {
        let table = Table::from_env(aws, "COMMENTS_TABLE")?;
        Ok(App {
            store: DynamoCommentsStore {
                table: table.clone(),
            },
            directory: DynamoDirectory { table },
            queue: NoQueue,
            cursors: NoCursors,
        })
    }

    /// And the service's work queue (`WORK_QUEUE_URL`, `WORK_PAGE_SIZE`): for the
    /// consumer, which hands work on, and `comments-cascade-worker`, which does it.
    pub async fn with_work(aws: &SdkConfig) -> Result<WithWork<Self>, ConfigError> {
        WithWork::from_env(aws, Self::from_env(aws).await?)
    }

    /// `comments-create`: and the writes queue (`COMMENT_WRITES_QUEUE_URL`).
    pub async fn for_create(
        aws: &SdkConfig,
    ) -> Result<App<DynamoCommentsStore, DynamoDirectory, SqsWriteQueue>, ConfigError> {
        let app = Self::from_env(aws).await?;
        Ok(App {
            store: app.store,
            directory: app.directory,
            queue: SqsWriteQueue::from_env(aws)?,
            cursors: NoCursors,
        })
    }

    /// `comments-list`: and the cursor key (`CURSOR_KEY_SECRET_ARN`).
    pub async fn for_list(
        aws: &SdkConfig,
    ) -> Result<App<DynamoCommentsStore, DynamoDirectory, NoQueue, CursorKey>, ConfigError> {
        let app = Self::from_env(aws).await?;
        Ok(App {
            store: app.store,
            directory: app.directory,
            queue: NoQueue,
            cursors: CursorKey::from_env(aws)?,
        })
    }
}

/// The service's Kafka consumers (`comments-writer` reads SQS, not Kafka).
pub const CONSUMERS: &[&Consumer] = &[&consumer::DIRECTORY_EVENTS];
