//! The moderation service: staff roles, reports and the modlog.
//!
//! - **Roles**: admins grant and revoke `moderator` and `admin`
//!   (`PUT`/`DELETE /v1/admin/users/{username}/roles/{role}`); the role is written on the
//!   account, and reaches the access token as a scope at its next refresh. Accounts named
//!   in the template's `AdminUsernames` are admins from their first token on (identity
//!   adds the scope when it signs one).
//! - **Reports**: any user reports a post, comment or user they can see
//!   (`POST /v1/reports`), once per target; staff read one queue entry per target, oldest
//!   open first (`GET /v1/admin/reports`).
//! - **Actions**: staff resolve a queue entry (`POST /v1/admin/reports/{id}/resolve`):
//!   dismiss it, remove the content (`ContentRemoved`: the posts or comments service hides
//!   it from all but its author), suspend its author for some hours or ban them
//!   (`UserSuspended`: identity refuses login and refresh at once, as the suspension is
//!   written on the account with a new refresh epoch; every service refuses the account's
//!   writes, and hides a banned account's content, as soon as the event reaches it).
//!   `POST /v1/admin/users/{username}/unsuspend` lifts it (`UserReinstated`);
//!   `GET /v1/admin/users/{username}` shows roles, standing and the actions on the user.
//! - **Modlog**: every staff action, append-only (`GET /v1/admin/modlog`).
//!
//! Routes under `/v1/admin/` are refused at the gateway without the `moderator` or `admin`
//! scope (role changes: `admin`), and checked again here from the verified claims.
//!
//! It keeps its items in the identity table (see [`store`] for why) with its own copy of
//! users, posts, follows and blocks ([`shutter_directory`]) and of comments, fed by
//! `moderation-directory-events`, to decide what a reporter can see and to preview what is
//! reported. Its events go out through the identity table's outbox.

pub mod consumer;
mod errors;
pub mod http;
pub mod model;
pub mod service;
pub mod store;

use shutter_directory::DynamoDirectory;
use shutter_events::Consumer;
use shutter_media::{MediaStore, S3MediaStore};
use shutter_store::CursorKey;
use shutter_store::{ConfigError, SdkConfig, Table};

use crate::store::dynamo::DynamoModerationStore;

/// What every function of the service works with; generic so tests use fakes.
pub struct App<S, D> {
    pub store: S,
    pub directory: D,
    /// Signs list cursors: only the list functions are built with it
    /// ([`Live::from_env`]); the others never read the key.
    pub cursors: Option<CursorKey>,
    /// Signs the previews' image links: only the queue's function is built with it.
    pub media: Option<Box<dyn MediaStore>>,
}

/// The deployed App: the identity table's moderation items and directory.
pub type Live = App<DynamoModerationStore, DynamoDirectory>;

impl Live {
    /// With the cursor key: for the lists (modlog, a user's lookup).
    pub async fn from_env(aws: &SdkConfig) -> Result<Self, ConfigError> {
        let cursors = CursorKey::from_env(aws)?;
        Ok(App {
            cursors: Some(cursors),
            ..Self::for_writes(aws).await?
        })
    }

    /// With the cursor key and the media bucket: for the report queue and its previews.
    pub async fn for_queue(aws: &SdkConfig) -> Result<Self, ConfigError> {
        Ok(App {
            media: Some(Box::new(S3MediaStore::from_env(aws)?)),
            ..Self::from_env(aws).await?
        })
    }

    /// Without the cursor key: for reporting, role changes and the consumer.
    pub async fn for_writes(aws: &SdkConfig) -> Result<Self, ConfigError> {
        let table = Table::from_env(aws, "IDENTITY_TABLE")?;
        Ok(App {
            directory: DynamoDirectory {
                table: table.clone(),
            },
            store: DynamoModerationStore { table },
            cursors: None,
            media: None,
        })
    }
}

pub const CONSUMERS: &[&Consumer] = &[&consumer::DIRECTORY_EVENTS];
