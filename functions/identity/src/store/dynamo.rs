//! The DynamoDB adapter: the identity table's keys and items, and the labelled writes
//! that keep accounts, their uniqueness items and sessions consistent.

use std::collections::HashMap;

use async_trait::async_trait;
use serde::Deserialize;
use shutter_core::UserId;
use shutter_core::validate::{Email, Login, Username};
use shutter_events::{Envelope, outbox_write};
use shutter_store::{
    AttributeValue, Item, StoreError, StoreResult, Table, Write, key, n, s, to_item,
};

use super::{
    ACCOUNT_EXISTS, EMAIL, EMAIL_CHANGED, EPOCH_MOVED, IdentityStore, NO_ACCOUNT, PASSWORD_CHANGED,
    SESSION_EXISTS, SESSION_REVOKED, TOKEN_SPENT, USERNAME,
};
use crate::model::{Account, AccountChange, FamilyId, PasswordHash, RefreshToken, TokenHash};

/// Revoking an unknown family: nothing to end (the condition only keeps the update from
/// creating a stray item).
const UNKNOWN_FAMILY: &str = "unknown_family";

#[derive(Debug, Clone)]
pub struct DynamoIdentityStore {
    pub table: Table,
}

fn account_pk(user_id: &UserId) -> String {
    format!("USER#{user_id}")
}

fn account_key(user_id: &UserId) -> Item {
    key(account_pk(user_id), "ACCOUNT")
}

fn username_pk(username: &str) -> String {
    format!("USERNAME#{username}")
}

fn username_key(username: &str) -> Item {
    key(username_pk(username), "USERNAME")
}

fn email_pk(email: &str) -> String {
    format!("EMAIL#{email}")
}

fn email_key(email: &str) -> Item {
    key(email_pk(email), "EMAIL")
}

fn refresh_pk(hash: &TokenHash) -> String {
    format!("REFRESH#{}", hash.as_str())
}

fn refresh_key(hash: &TokenHash) -> Item {
    key(refresh_pk(hash), "REFRESH")
}

fn family_key(family: &FamilyId) -> Item {
    key(format!("FAMILY#{}", family.as_str()), "FAMILY")
}

/// `item` with the key `key`.
fn keyed(mut item: Item, key: Item) -> Item {
    item.extend(key);
    item
}

/// A uniqueness item: `key` belongs to `user_id`; taken, it fails with `label`.
fn pointer(key: Item, user_id: &UserId, label: &'static str) -> Write {
    let item = keyed(
        HashMap::from([("user_id".to_owned(), s(user_id.as_str()))]),
        key,
    );
    Write::put(item).if_absent(label)
}

/// A claim of `username` for `user_id`, unless an account holds it or its quarantine lasts
/// past `now`.
fn username_claim(username: &str, user_id: &UserId, now: i64) -> Write {
    let item = keyed(
        HashMap::from([("user_id".to_owned(), s(user_id.as_str()))]),
        username_key(username),
    );
    Write::put(item)
        .when(USERNAME, "attribute_not_exists(pk) OR free_at <= :now")
        .value(":now", n(now))
}

/// `username` held for no account until `free_at`: it expires (DynamoDB TTL) then, but
/// the conditions read `free_at`, as TTL deletes late.
fn username_quarantine(username: &str, free_at: i64) -> Item {
    keyed(
        HashMap::from([
            ("free_at".to_owned(), n(free_at)),
            ("ttl".to_owned(), n(free_at)),
        ]),
        username_key(username),
    )
}

/// A refresh token's item; it expires (DynamoDB TTL) with the token.
fn refresh_item(token: &RefreshToken) -> StoreResult<Item> {
    let mut item = keyed(to_item(token)?, refresh_key(&token.token_hash));
    item.insert("ttl".to_owned(), n(token.expires_at));
    Ok(item)
}

fn settings_value(change: &AccountChange) -> StoreResult<Option<AttributeValue>> {
    change
        .settings
        .as_ref()
        .map(|settings| {
            shutter_store::serde_dynamo::to_attribute_value(settings).map_err(StoreError::corrupt)
        })
        .transpose()
}

impl DynamoIdentityStore {
    /// The user id a uniqueness item points at (none for a quarantined username).
    async fn user_id_at(&self, pk: &str, sk: &str) -> StoreResult<Option<UserId>> {
        #[derive(Deserialize)]
        struct Pointer {
            #[serde(default)]
            user_id: Option<UserId>,
        }
        Ok(self
            .table
            .get::<Pointer>(pk, sk)
            .await?
            .and_then(|p| p.user_id))
    }
}

#[async_trait]
impl IdentityStore for DynamoIdentityStore {
    async fn create_account(
        &self,
        account: &Account,
        event: &Envelope,
        now: i64,
    ) -> StoreResult<()> {
        // In this order: a taken username is reported before a taken email.
        let writes = vec![
            username_claim(account.username.as_str(), &account.user_id, now),
            pointer(email_key(account.email.as_str()), &account.user_id, EMAIL),
            Write::put(keyed(to_item(account)?, account_key(&account.user_id)))
                .if_absent(ACCOUNT_EXISTS),
            outbox_write(event)?,
        ];
        self.table.transact(writes).await
    }

    async fn hold_username(
        &self,
        username: &Username,
        free_at: i64,
        now: i64,
        event: &Envelope,
    ) -> StoreResult<()> {
        let hold = Write::put(username_quarantine(username.as_str(), free_at))
            .when(USERNAME, "attribute_not_exists(pk) OR free_at <= :now")
            .value(":now", n(now));
        self.table.transact(vec![hold, outbox_write(event)?]).await
    }

    async fn email_owner(&self, email: &Email) -> StoreResult<Option<UserId>> {
        self.user_id_at(&email_pk(email.as_str()), "EMAIL").await
    }

    async fn account(&self, user_id: &UserId) -> StoreResult<Option<Account>> {
        self.table.get(&account_pk(user_id), "ACCOUNT").await
    }

    async fn account_by_login(&self, login: &Login) -> StoreResult<Option<Account>> {
        let user_id = match login {
            Login::Username(u) => {
                self.user_id_at(&username_pk(u.as_str()), "USERNAME")
                    .await?
            }
            Login::Email(e) => self.user_id_at(&email_pk(e.as_str()), "EMAIL").await?,
        };
        match user_id {
            Some(id) => self.account(&id).await,
            None => Ok(None),
        }
    }

    async fn create_session(&self, token: &RefreshToken) -> StoreResult<()> {
        let family = keyed(
            HashMap::from([
                ("user_id".to_owned(), s(token.user_id.as_str())),
                ("revoked".to_owned(), AttributeValue::Bool(false)),
                ("ttl".to_owned(), n(token.expires_at)),
            ]),
            family_key(&token.family_id),
        );
        let writes = vec![
            Write::put(family).if_absent(SESSION_EXISTS),
            Write::put(refresh_item(token)?).if_absent(SESSION_EXISTS),
        ];
        self.table.transact(writes).await
    }

    async fn refresh_token(&self, token_hash: &TokenHash) -> StoreResult<Option<RefreshToken>> {
        self.table.get(&refresh_pk(token_hash), "REFRESH").await
    }

    async fn rotate(&self, old: &RefreshToken, new: &RefreshToken) -> StoreResult<()> {
        let now = shutter_store::epoch_seconds();
        let writes = vec![
            Write::update(refresh_key(&old.token_hash), "SET #status = :rotated")
                .when(TOKEN_SPENT, "#status = :active AND expires_at > :now")
                .name("#status", "status")
                .value(":rotated", s("rotated"))
                .value(":active", s("active"))
                .value(":now", n(now)),
            Write::check(
                family_key(&old.family_id),
                SESSION_REVOKED,
                "revoked = :false",
            )
            .value(":false", AttributeValue::Bool(false)),
            Write::check(
                account_key(&old.user_id),
                EPOCH_MOVED,
                "refresh_epoch = :epoch",
            )
            .value(":epoch", n(old.epoch)),
            Write::put(refresh_item(new)?).if_absent(SESSION_EXISTS),
        ];
        self.table.transact(writes).await
    }

    async fn revoke_family(&self, family_id: &FamilyId) -> StoreResult<()> {
        let revoke = Write::update(family_key(family_id), "SET revoked = :true")
            .if_present(UNKNOWN_FAMILY)
            .value(":true", AttributeValue::Bool(true));
        match self.table.write(revoke).await {
            Err(StoreError::Conflict(UNKNOWN_FAMILY)) => Ok(()),
            other => other,
        }
    }

    async fn change_account(
        &self,
        account: &Account,
        change: &AccountChange,
        events: &[Envelope],
        at: &str,
    ) -> StoreResult<()> {
        let settings = settings_value(change)?;
        let Some(new_email) = &change.email else {
            let Some(settings) = settings else {
                return Ok(());
            };
            // Settings alone: one write, no uniqueness to keep.
            let update = Write::update(
                account_key(&account.user_id),
                "SET settings = :settings, updated_at = :now",
            )
            .if_present(NO_ACCOUNT)
            .value(":settings", settings)
            .value(":now", s(at));
            if events.is_empty() {
                return self.table.write(update).await;
            }
            let mut writes = vec![update];
            for event in events {
                writes.push(outbox_write(event)?);
            }
            return self.table.transact(writes).await;
        };
        let expression = if settings.is_some() {
            "SET email = :new, settings = :settings, updated_at = :now"
        } else {
            "SET email = :new, updated_at = :now"
        };
        // The password too: the change was allowed by the password as read.
        let mut update = Write::update(account_key(&account.user_id), expression)
            .when(EMAIL_CHANGED, "email = :old AND password_hash = :hash")
            .value(":new", s(new_email.as_str()))
            .value(":old", s(account.email.as_str()))
            .value(":hash", s(account.password_hash.as_str()))
            .value(":now", s(at));
        if let Some(settings) = settings {
            update = update.value(":settings", settings);
        }
        // In this order: a taken address is reported before a stale read.
        let mut writes = vec![
            pointer(email_key(new_email.as_str()), &account.user_id, EMAIL),
            update,
            Write::delete(email_key(account.email.as_str())),
        ];
        for event in events {
            writes.push(outbox_write(event)?);
        }
        self.table.transact(writes).await
    }

    async fn change_password(
        &self,
        account: &Account,
        new_hash: &PasswordHash,
        at: &str,
    ) -> StoreResult<()> {
        let update = Write::update(
            account_key(&account.user_id),
            "SET password_hash = :hash, refresh_epoch = refresh_epoch + :one, updated_at = :now",
        )
        .when(PASSWORD_CHANGED, "password_hash = :old")
        .value(":hash", s(new_hash.as_str()))
        .value(":old", s(account.password_hash.as_str()))
        .value(":one", n(1))
        .value(":now", s(at));
        self.table.write(update).await
    }

    async fn delete_account(
        &self,
        account: &Account,
        event: &Envelope,
        free_at: i64,
    ) -> StoreResult<()> {
        let writes = vec![
            Write::delete(account_key(&account.user_id)),
            Write::put(username_quarantine(account.username.as_str(), free_at)),
            Write::delete(email_key(account.email.as_str())),
            outbox_write(event)?,
        ];
        self.table.transact(writes).await
    }
}
