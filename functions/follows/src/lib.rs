//! The follows service: who follows whom, follow requests to private accounts, and blocks.
//!
//! A follow is an edge from a follower to a followee with a state (`none`, `requested`,
//! `following`) and a `seq` that grows by one on every change; each write is conditional
//! on the `seq` it read, so racing requests cannot both change an edge. A block is an item
//! of its own with the same scheme; following checks both directions' blocks in the same
//! transaction, so a block cannot be bypassed by a follow racing it.
//!
//! Every change emits its event on `shutter.follows` through the outbox, in the same
//! transaction: `FollowRequested`, `FollowRequestCancelled`, `FollowStarted`,
//! `FollowEnded` (keyed by the follower), `UserBlocked`, `UserUnblocked` (keyed by the
//! blocker). Their `seq` lets consumers drop stale and repeated deliveries.
//!
//! Usernames, privacy and deleted accounts come from the service's own copy of users
//! ([`shutter_directory`]), kept by [`consumer::DIRECTORY_EVENTS`], which also hands on
//! approving the pending requests of an account that turns public, turning back into
//! requests the follows that started after an account turned private (while this copy
//! still said public), and ending every follow, request and block of a deleted account
//! ([`worker`], a page a chunk).
//!
//! Modules: [`model`] (the rules), [`store`] (the table), [`service`] (the use cases),
//! [`http`] (the endpoints), [`consumer`] (the events it consumes), [`worker`] (the
//! chunked work it hands on).

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

use crate::store::dynamo::DynamoFollowsStore;

/// What every function of the service works with; generic so tests use fakes.
///
/// `C` is the signer of list cursors. Only the list functions hold one (its key is a
/// secret read at cold start); the others are built with none (`()`), so a function
/// that cannot page cannot call a use case that does.
pub struct App<S, D, C = CursorKey> {
    pub store: S,
    pub directory: D,
    pub cursors: C,
}

/// The deployed App: DynamoDB adapters over the service's table, and the cursor signer.
pub type Live = App<DynamoFollowsStore, DynamoDirectory>;

/// The deployed App of the functions that do not page (no cursor signer).
pub type LiveWrites = App<DynamoFollowsStore, DynamoDirectory, ()>;

impl Live {
    /// Everything: the table of `FOLLOWS_TABLE` and the cursor key of
    /// `CURSOR_KEY_SECRET_ARN` (the list functions).
    pub async fn from_env(aws: &SdkConfig) -> Result<Self, ConfigError> {
        let App {
            store, directory, ..
        } = Self::for_writes(aws).await?;
        Ok(App {
            store,
            directory,
            cursors: CursorKey::from_env(aws)?,
        })
    }

    /// The table of `FOLLOWS_TABLE` only: follows, requests, blocks and the consumer,
    /// whose cold start need not read the cursor secret.
    pub async fn for_writes(aws: &SdkConfig) -> Result<LiveWrites, ConfigError> {
        let table = Table::from_env(aws, "FOLLOWS_TABLE")?;
        Ok(App {
            store: DynamoFollowsStore {
                table: table.clone(),
            },
            directory: DynamoDirectory { table },
            cursors: (),
        })
    }

    /// [`Live::for_writes`] and the service's work queue (`WORK_QUEUE_URL`,
    /// `WORK_PAGE_SIZE`): for the consumer, which hands work on, and
    /// `follows-cascade-worker`, which does it.
    pub async fn with_work(aws: &SdkConfig) -> Result<WithWork<LiveWrites>, ConfigError> {
        WithWork::from_env(aws, Self::for_writes(aws).await?)
    }
}

/// The service's event consumers (template.yaml subscribes each to its events' topics).
pub const CONSUMERS: &[&Consumer] = &[&consumer::DIRECTORY_EVENTS];
