//! The identity service: accounts and sessions.
//!
//! It issues RS256 access tokens that API Gateway's JWT authorizer verifies against the
//! JWKS published here, and opaque refresh tokens that are stored hashed, rotated on
//! every use, and revoke their whole family when a rotated one is replayed. It also
//! serves a user's own account (email, settings, password, deletion): every account
//! route acts on the caller only (the id comes from the verified token), so no one can
//! read or change another's account.
//!
//! It owns the identity table: credentials, account data and the uniqueness of usernames
//! and emails are checked in the same transactions (see [`store`]). A deleted account's
//! username is quarantined ([`model::UsernameQuarantine`]) so that nobody takes over a
//! handle others still know. Registration answers a taken email as it answers a new one,
//! and changing the email needs the password. It publishes `UserRegistered`,
//! `UserEmailChanged`, `UserDeleted` and `RegistrationWithTakenEmail` and consumes
//! nothing.
//!
//! It also keeps each account's latest data export ([`export`]); the export routes and
//! the worker that builds the archive are `shutter-exports`'s.

pub mod errors;
pub mod export;
pub mod http;
pub mod keys;
pub mod model;
pub mod password;
pub mod service;
pub mod store;

use shutter_events::Consumer;
use shutter_store::{ConfigError, Fetched, SdkConfig, Table};

use crate::keys::{
    AdminUsernames, NoTokens, RsaTokenIssuer, SigningKeys, TokenSettings, WellKnown,
};
use crate::model::UsernameQuarantine;
use crate::store::dynamo::DynamoIdentityStore;

/// What every function of the service works with; generic so tests use fakes. `tokens`
/// signs access tokens: only login and refresh have a real one. `quarantine` is how long
/// a username no account holds stays unavailable.
#[derive(Debug)]
pub struct App<S, T = NoTokens> {
    pub store: S,
    pub tokens: T,
    pub quarantine: UsernameQuarantine,
}

/// The deployed App of login and refresh: the identity table and the signing key.
pub type Live = App<DynamoIdentityStore, RsaTokenIssuer>;

/// The deployed App of the functions that never sign a token.
pub type LiveWithoutKeys = App<DynamoIdentityStore, NoTokens>;

/// The identity service consumes no events.
pub const CONSUMERS: &[&Consumer] = &[];

fn identity_store(aws: &SdkConfig) -> Result<DynamoIdentityStore, ConfigError> {
    Ok(DynamoIdentityStore {
        table: Table::from_env(aws, "IDENTITY_TABLE")?,
    })
}

/// `USERNAME_QUARANTINE_DAYS` (the template's `UsernameQuarantineDays`), or the default.
fn quarantine() -> Result<UsernameQuarantine, ConfigError> {
    const NAME: &str = "USERNAME_QUARANTINE_DAYS";
    match std::env::var(NAME) {
        Err(_) => Ok(UsernameQuarantine::default()),
        Ok(raw) => raw
            .trim()
            .parse::<f64>()
            .ok()
            .and_then(UsernameQuarantine::days)
            .ok_or_else(|| ConfigError::Invalid {
                name: NAME,
                reason: format!("{raw:?} is not a number of days from 0 to 36500"),
            }),
    }
}

impl Live {
    /// Login and refresh: the table, the signing keys and the token settings. The keys'
    /// secret is read in the background from cold start (only a token signed waits for it).
    pub async fn from_env(aws: &SdkConfig) -> Result<Self, ConfigError> {
        let store = identity_store(aws)?;
        let keys = Fetched::secret(aws, "SIGNING_KEY_SECRET_ARN", SigningKeys::from_secret)?;
        Ok(App {
            store,
            tokens: RsaTokenIssuer {
                keys: keys.prefetch(),
                settings: TokenSettings::from_env()?,
                admins: AdminUsernames::from_env(),
            },
            quarantine: quarantine()?,
        })
    }

    /// Registration, logout and the account routes: the table only, so their cold start
    /// reads no secret.
    pub async fn without_keys(aws: &SdkConfig) -> Result<LiveWithoutKeys, ConfigError> {
        Ok(App {
            store: identity_store(aws)?,
            tokens: NoTokens,
            quarantine: quarantine()?,
        })
    }
}

impl WellKnown {
    /// `auth-jwks`: the public JWKS from `PUBLIC_JWKS`, and the token settings; no table,
    /// no secret. The template puts the public-JWKS secret's value there (CloudFormation
    /// resolves it at deploy time, `signing-key.sh restart` after a rotation), so a cold
    /// start waits for no read (issue 14), and this function can read no key at all.
    pub async fn from_env(_aws: &SdkConfig) -> Result<Self, ConfigError> {
        Ok(WellKnown {
            jwks: keys::public_jwks(&shutter_store::env("PUBLIC_JWKS")?)?,
            settings: TokenSettings::from_env()?,
        })
    }
}
