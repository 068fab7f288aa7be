//! The identity table's port and its adapters: [`dynamo`] (real) and [`memory`] (the
//! fake the use-case tests run against, with the same conditions and labels).
//!
//! Layout (one table, `pk`/`sk`), known only to the DynamoDB adapter:
//! - `USER#<id>` / `ACCOUNT`: the [`Account`]
//! - `USER#<id>` / `EXPORT`: the account's latest data export ([`crate::export`], which
//!   has its own port and adapters)
//! - `USERNAME#<name>` / `USERNAME` and `EMAIL#<email>` / `EMAIL`: uniqueness items
//!   (lower-cased, so uniqueness is case-insensitive) that point at the user id; a
//!   username no account holds any more (deleted, or asked for by a registration that
//!   created nothing) keeps its item without a user id until `free_at` (epoch seconds;
//!   also its `ttl`): quarantined, it is taken for registration and leads to no account
//! - `REFRESH#<sha256>` / `REFRESH`: a [`RefreshToken`]; `FAMILY#<id>` / `FAMILY`: its family
//! - `OUTBOX#<event id>` / `OUTBOX`: events, written in the same transaction as the change
//!
//! Registration, login and the account routes share the table because an email change
//! must check the same uniqueness items that registration writes and login reads.

use async_trait::async_trait;
use shutter_core::UserId;
use shutter_core::validate::{Email, Login, Username};
use shutter_events::Envelope;
use shutter_store::StoreResult;

use crate::model::{Account, AccountChange, FamilyId, PasswordHash, RefreshToken, TokenHash};

pub mod dynamo;
pub mod memory;

/// The username is another account's, or quarantined.
pub const USERNAME: &str = "username";
/// The email is another account's.
pub const EMAIL: &str = "email";
/// An account with this id exists already (an id collision).
pub const ACCOUNT_EXISTS: &str = "account_exists";
/// The account is gone.
pub const NO_ACCOUNT: &str = "no_account";
/// The account's email or password changed since it was read (or the account is gone).
pub const EMAIL_CHANGED: &str = "email_changed";
/// The account's password changed since it was read (or the account is gone).
pub const PASSWORD_CHANGED: &str = "password_changed";
/// A new session's family or token exists already (an id collision).
pub const SESSION_EXISTS: &str = "session_exists";
/// The token to rotate is not active any more (rotated meanwhile), expired or unknown.
pub const TOKEN_SPENT: &str = "token_spent";
/// The token's family (its session) was revoked.
pub const SESSION_REVOKED: &str = "session_revoked";
/// The account's refresh epoch moved since the token was issued (password changed,
/// account deleted).
pub const EPOCH_MOVED: &str = "epoch_moved";

#[async_trait]
pub trait IdentityStore: Send + Sync {
    /// Creates the account, its uniqueness items and `event`, unless the username is
    /// held or quarantined past `now` (epoch seconds). Conflicts: USERNAME, EMAIL,
    /// ACCOUNT_EXISTS.
    async fn create_account(
        &self,
        account: &Account,
        event: &Envelope,
        now: i64,
    ) -> StoreResult<()>;
    /// Holds `username` (for no account) until `free_at`, with `event`, unless an account
    /// holds it or it is quarantined past `now`. Conflict: USERNAME.
    async fn hold_username(
        &self,
        username: &Username,
        free_at: i64,
        now: i64,
        event: &Envelope,
    ) -> StoreResult<()>;
    /// The account that has `email`, if any.
    async fn email_owner(&self, email: &Email) -> StoreResult<Option<UserId>>;
    async fn account(&self, user_id: &UserId) -> StoreResult<Option<Account>>;
    async fn account_by_login(&self, login: &Login) -> StoreResult<Option<Account>>;

    /// Starts a session: a new family and its first token. Conflict: SESSION_EXISTS.
    async fn create_session(&self, token: &RefreshToken) -> StoreResult<()>;
    async fn refresh_token(&self, token_hash: &TokenHash) -> StoreResult<Option<RefreshToken>>;
    /// Atomically marks `old` rotated and stores `new`, only if `old` is still active and
    /// unexpired, its family is not revoked and the account's refresh epoch is still
    /// `old.epoch`. Conflicts: TOKEN_SPENT, SESSION_REVOKED, EPOCH_MOVED (and
    /// SESSION_EXISTS if `new` collides): each means the token may not be rotated.
    async fn rotate(&self, old: &RefreshToken, new: &RefreshToken) -> StoreResult<()>;
    /// Ends a session; an unknown family is already ended.
    async fn revoke_family(&self, family_id: &FamilyId) -> StoreResult<()>;

    /// Applies `change` to `account` as of `at`, with `events`. A settings-only change
    /// needs the account (conflict NO_ACCOUNT); an email change takes the new address's
    /// uniqueness item (EMAIL), needs the account's email and password unchanged since
    /// it was read (EMAIL_CHANGED), and frees the old address. All of it or nothing.
    async fn change_account(
        &self,
        account: &Account,
        change: &AccountChange,
        events: &[Envelope],
        at: &str,
    ) -> StoreResult<()>;
    /// Stores a new password hash and bumps the refresh epoch (revoking every session),
    /// if the password is still the one `account` was read with. Conflict:
    /// PASSWORD_CHANGED.
    async fn change_password(
        &self,
        account: &Account,
        new_hash: &PasswordHash,
        at: &str,
    ) -> StoreResult<()>;
    /// Erases the account and its email's uniqueness item with `event`, and quarantines
    /// its username until `free_at`. Refresh tokens of a deleted account die with it:
    /// `rotate` checks the account item.
    async fn delete_account(
        &self,
        account: &Account,
        event: &Envelope,
        free_at: i64,
    ) -> StoreResult<()>;
}
