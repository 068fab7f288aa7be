//! The profiles service: the public face of a user (username, display name, bio,
//! website, privacy, avatar, counters).
//!
//! Profiles are created from `UserRegistered` and erased on `UserDeleted`, both from the
//! identity topic and applied once however often Kafka redelivers ([`identity`]); the
//! owner edits theirs, which emits `ProfileUpdated` ([`http`], [`service`]); avatars are
//! uploaded straight to S3 with a pre-signed POST and set once the upload is verified,
//! which emits `AvatarChanged` ([`avatar`]). Follower, following and post counts, and who
//! blocks whom (a block hides profiles both ways), follow the follows and posts topics
//! ([`counters`]). Events go out on `shutter.profiles` through the outbox.
//!
//! Layers: [`model`] (rules, no I/O) <- [`store`] (ports and adapters) <- [`service`]
//! (use cases) <- [`http`], [`identity`], [`avatar`] and [`counters`] (the edges).

pub mod avatar;
pub mod counters;
mod errors;
pub mod http;
pub mod identity;
pub mod model;
pub mod service;
pub mod store;

#[cfg(test)]
mod moderation;
#[cfg(test)]
mod testing;

use shutter_events::Consumer;
use shutter_media::S3MediaStore;
use shutter_store::{ConfigError, SdkConfig, Table};

use crate::store::dynamo::DynamoProfilesStore;

/// What every function of the service works with; generic so tests use fakes. A function
/// that needs no table or no bucket holds [`NoStore`] or [`NoMedia`] instead, so its cold
/// start builds nothing it does not use.
#[derive(Debug)]
pub struct App<S, M> {
    pub store: S,
    pub media: M,
}

/// No table: this function reads and writes no profile.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoStore;

/// No bucket: this function touches no avatar.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoMedia;

/// The deployed App: the service's table (`PROFILES_TABLE`) and the media bucket
/// (`MEDIA_BUCKET`).
pub type Live = App<DynamoProfilesStore, S3MediaStore>;

impl Live {
    /// The table and the bucket: for reading and editing profiles (the bucket signs
    /// avatar URLs; no S3 connection is made for that), the identity consumer (which
    /// erases avatars) and the avatar consumer.
    pub async fn from_env(aws: &SdkConfig) -> Result<Self, ConfigError> {
        Ok(App {
            store: DynamoProfilesStore {
                table: Table::from_env(aws, "PROFILES_TABLE")?,
            },
            media: S3MediaStore::from_env(aws)?,
        })
    }

    /// `profiles-avatar-upload` signs upload forms; it reads the table only for the
    /// caller's standing (a suspended account gets no form).
    pub async fn for_uploads(aws: &SdkConfig) -> Result<Self, ConfigError> {
        Self::from_env(aws).await
    }

    /// The table only: `profiles-graph-events` keeps counters and blocks.
    pub async fn for_counters(
        aws: &SdkConfig,
    ) -> Result<App<DynamoProfilesStore, NoMedia>, ConfigError> {
        Ok(App {
            store: DynamoProfilesStore {
                table: Table::from_env(aws, "PROFILES_TABLE")?,
            },
            media: NoMedia,
        })
    }
}

/// The service's Kafka consumers (`profiles-avatar-uploaded` reads SQS, not Kafka).
pub const CONSUMERS: &[&Consumer] = &[&identity::IDENTITY_EVENTS, &counters::GRAPH_EVENTS];
