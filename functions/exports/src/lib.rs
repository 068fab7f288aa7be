//! Account exports: a user downloads everything their account owns.
//!
//! `POST /v1/users/me/export` records the request (the identity service's record, in the
//! identity table: [`shutter_identity::export`]) and hands a job to `ExportQueue`;
//! `users-export-worker` does it a chunk per message ([`shutter_events::work`]): each
//! chunk reads one page of one section (account, profile, posts, comments, likes, comment
//! likes, following, followers, blocks) from the service that owns it, through that
//! service's storage port ([`sources`]), and writes it as a part to the exports bucket;
//! the last chunk joins the parts into one NDJSON archive ([`model`]) and marks the
//! export ready. `GET /v1/users/me/export` answers its state and, once ready, a link that
//! downloads the archive, signed when asked for and valid for `ExportLinkSeconds`. The
//! bucket's lifecycle rule deletes archives after `ExportArchiveDays`.
//!
//! Why one worker reads several services' tables: an export is a read of data each
//! service already keeps by user, and a worker with read-only access to those tables,
//! through each service's own port, is far simpler than a part written by every service's
//! consumer and a coordinator counting them (docs/services.md, "Account exports").
//!
//! It publishes and consumes no events.

pub mod archive;
mod errors;
pub mod http;
pub mod model;
pub mod service;
pub mod sources;
pub mod worker;

use std::time::Duration;

use shutter_events::Consumer;
use shutter_events::work::{SqsWorkQueue, WithWork};
use shutter_identity::export::ExportPolicy;
use shutter_identity::store::dynamo::DynamoIdentityStore;
use shutter_store::{ConfigError, SdkConfig};

use crate::archive::S3Archive;
use crate::sources::LiveSources;

/// What the export routes work with; generic so tests use fakes: the export records
/// (and whether the account exists), the work queue, the archive store, the rules'
/// tunables.
#[derive(Debug)]
pub struct App<R, Q, A> {
    pub records: R,
    pub queue: Q,
    pub archive: A,
    pub policy: ExportPolicy,
}

/// What the worker works with: the records, each owning service's data, the archive.
#[derive(Debug)]
pub struct Worker<R, S, A> {
    pub records: R,
    pub sources: S,
    pub archive: A,
    pub policy: ExportPolicy,
}

/// The deployed routes.
pub type Live = App<DynamoIdentityStore, SqsWorkQueue, S3Archive>;

/// The deployed worker.
pub type LiveWorker = Worker<DynamoIdentityStore, LiveSources, S3Archive>;

/// It consumes no events.
pub const CONSUMERS: &[&Consumer] = &[];

impl Live {
    pub async fn from_env(aws: &SdkConfig) -> Result<Self, ConfigError> {
        Ok(App {
            records: shutter_identity::export::records_from_env(aws)?,
            queue: SqsWorkQueue::from_env(aws)?,
            archive: S3Archive::from_env(aws)?,
            policy: policy_from_env()?,
        })
    }
}

impl LiveWorker {
    pub async fn with_work(aws: &SdkConfig) -> Result<WithWork<Self>, ConfigError> {
        let policy = policy_from_env()?;
        let link = Duration::from_secs(policy.link_seconds.unsigned_abs());
        let worker = Worker {
            records: shutter_identity::export::records_from_env(aws)?,
            sources: LiveSources::from_env(aws, link)?,
            archive: S3Archive::from_env(aws)?,
            policy,
        };
        WithWork::from_env(aws, worker)
    }
}

/// The rules' tunables from the template's parameters (`EXPORT_*`), defaults otherwise.
pub fn policy_from_env() -> Result<ExportPolicy, ConfigError> {
    let defaults = ExportPolicy::default();
    Ok(ExportPolicy {
        cooldown_seconds: number("EXPORT_COOLDOWN_SECONDS", defaults.cooldown_seconds, 0)?,
        stall_seconds: number("EXPORT_STALL_SECONDS", defaults.stall_seconds, 60)?,
        // SigV4 signs a URL for 7 days at most.
        link_seconds: number("EXPORT_LINK_SECONDS", defaults.link_seconds, 1)?.min(604_800),
        archive_days: number("EXPORT_ARCHIVE_DAYS", defaults.archive_days, 1)?,
    })
}

fn number(name: &'static str, default: i64, min: i64) -> Result<i64, ConfigError> {
    let Ok(raw) = shutter_store::env(name) else {
        return Ok(default);
    };
    match raw.trim().parse::<i64>() {
        Ok(v) if v >= min => Ok(v),
        _ => Err(ConfigError::Invalid {
            name,
            reason: format!("{raw:?} is not a whole number of at least {min}"),
        }),
    }
}
