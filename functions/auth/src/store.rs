//! The identity table port and its adapters.
//!
//! Layout (one table, `pk`/`sk`):
//! - `USER#<id>` / `ACCOUNT`: the [`Account`]
//! - `USERNAME#<name>` / `USERNAME` and `EMAIL#<email>` / `EMAIL`: uniqueness items
//!   (lower-cased, so uniqueness is case-insensitive) that point at the user id
//! - `REFRESH#<sha256>` / `REFRESH`: a [`RefreshToken`]; `FAMILY#<id>` / `FAMILY`: its family
//! - `OUTBOX#<event id>` / `OUTBOX`: events, written in the same transaction as the change

use async_trait::async_trait;
use shutter_core::ApiError;
use shutter_core::validate::{Email, Login};
use shutter_events::legacy::Envelope;

use crate::model::{Account, RefreshToken, Settings};

/// Refresh tokens and families are kept 30 days.
pub const REFRESH_TTL_SECONDS: i64 = 30 * 24 * 3600;

#[async_trait]
pub trait IdentityStore: Send + Sync {
    /// Creates the account and its uniqueness items with `event`; 409 `username_taken` or
    /// `email_taken` when either is in use.
    async fn create_account(&self, account: &Account, event: &Envelope) -> Result<(), ApiError>;
    async fn account(&self, user_id: &str) -> Result<Option<Account>, ApiError>;
    async fn account_by_login(&self, login: &Login) -> Result<Option<Account>, ApiError>;

    /// Starts a session: a new family and its first token.
    async fn create_session(&self, token: &RefreshToken) -> Result<(), ApiError>;
    async fn refresh_token(&self, token_hash: &str) -> Result<Option<RefreshToken>, ApiError>;
    /// Atomically marks `old` rotated and stores `new`, only if `old` is still active, its
    /// family is not revoked and the account's refresh epoch is still `old.epoch`.
    /// `false` when any of those does not hold.
    async fn rotate(&self, old: &RefreshToken, new: &RefreshToken) -> Result<bool, ApiError>;
    async fn revoke_family(&self, family_id: &str) -> Result<(), ApiError>;

    async fn update_settings(&self, user_id: &str, settings: &Settings) -> Result<(), ApiError>;
    /// Moves the account to `new_email` (409 `email_taken` if in use) with `event`.
    async fn change_email(
        &self,
        account: &Account,
        new_email: &Email,
        event: &Envelope,
    ) -> Result<(), ApiError>;
    /// Stores a new password hash and bumps the refresh epoch (revoking every session).
    async fn change_password(&self, account: &Account, new_hash: &str) -> Result<(), ApiError>;
    /// Erases the account and its uniqueness items with `event`.
    /// Refresh tokens of a deleted account die with it: `rotate` checks the account item.
    async fn delete_account(&self, account: &Account, event: &Envelope) -> Result<(), ApiError>;
}

pub mod dynamo {
    //! The DynamoDB adapter.

    use std::collections::HashMap;

    use shutter_events::legacy::outbox_put;
    use shutter_store::dynamodb::types::{ConditionCheck, Delete, Put, TransactWriteItem, Update};
    use shutter_store::{Item, Table, cancellation_reasons, condition_failed_at, n, s, to_item};

    use super::*;
    use crate::IDENTITY_TOPIC;

    #[derive(Debug, Clone)]
    pub struct DynamoIdentityStore {
        pub table: Table,
    }

    fn key(pk: String, sk: &str) -> Item {
        HashMap::from([("pk".to_owned(), s(pk)), ("sk".to_owned(), s(sk))])
    }

    fn with_key(mut item: Item, pk: String, sk: &str) -> Item {
        item.insert("pk".to_owned(), s(pk));
        item.insert("sk".to_owned(), s(sk));
        item
    }

    fn internal(e: impl std::error::Error + Send + Sync + 'static) -> ApiError {
        ApiError::internal(e)
    }

    impl DynamoIdentityStore {
        fn name(&self) -> &str {
            &self.table.name
        }

        fn put_new(&self, item: Item) -> Result<TransactWriteItem, ApiError> {
            let put = Put::builder()
                .table_name(self.name())
                .set_item(Some(item))
                .condition_expression("attribute_not_exists(pk)")
                .build()
                .map_err(internal)?;
            Ok(TransactWriteItem::builder().put(put).build())
        }

        fn delete(&self, pk: String, sk: &str) -> Result<TransactWriteItem, ApiError> {
            let del = Delete::builder()
                .table_name(self.name())
                .set_key(Some(key(pk, sk)))
                .build()
                .map_err(internal)?;
            Ok(TransactWriteItem::builder().delete(del).build())
        }

        fn pointer(
            &self,
            pk: String,
            sk: &str,
            user_id: &str,
        ) -> Result<TransactWriteItem, ApiError> {
            let item = with_key(HashMap::from([("user_id".to_owned(), s(user_id))]), pk, sk);
            self.put_new(item)
        }

        async fn transact(
            &self,
            items: Vec<TransactWriteItem>,
        ) -> Result<Result<(), Vec<String>>, ApiError> {
            match self
                .table
                .client
                .transact_write_items()
                .set_transact_items(Some(items))
                .send()
                .await
            {
                Ok(_) => Ok(Ok(())),
                Err(err) => {
                    let reasons = cancellation_reasons(&err);
                    if reasons.iter().any(|r| r == "ConditionalCheckFailed") {
                        Ok(Err(reasons))
                    } else {
                        Err(internal(err))
                    }
                }
            }
        }

        async fn user_id_at(&self, pk: String, sk: &str) -> Result<Option<String>, ApiError> {
            #[derive(serde::Deserialize)]
            struct Pointer {
                user_id: String,
            }
            Ok(self.table.get::<Pointer>(&pk, sk).await?.map(|p| p.user_id))
        }
    }

    fn account_pk(user_id: &str) -> String {
        format!("USER#{user_id}")
    }

    #[async_trait]
    impl IdentityStore for DynamoIdentityStore {
        async fn create_account(
            &self,
            account: &Account,
            event: &Envelope,
        ) -> Result<(), ApiError> {
            let items = vec![
                self.pointer(
                    format!("USERNAME#{}", account.username),
                    "USERNAME",
                    &account.user_id,
                )?,
                self.pointer(
                    format!("EMAIL#{}", account.email),
                    "EMAIL",
                    &account.user_id,
                )?,
                self.put_new(with_key(
                    to_item(account)?,
                    account_pk(&account.user_id),
                    "ACCOUNT",
                ))?,
                outbox_put(self.name(), IDENTITY_TOPIC, event),
            ];
            match self.transact(items).await? {
                Ok(()) => Ok(()),
                Err(reasons) if condition_failed_at(&reasons, 0) => Err(ApiError::conflict(
                    "username_taken",
                    "username",
                    "this username is taken",
                )),
                Err(reasons) if condition_failed_at(&reasons, 1) => Err(ApiError::conflict(
                    "email_taken",
                    "email",
                    "an account already uses this email",
                )),
                Err(_) => Err(ApiError::conflict(
                    "conflict",
                    "user_id",
                    "account already exists",
                )),
            }
        }

        async fn account(&self, user_id: &str) -> Result<Option<Account>, ApiError> {
            Ok(self.table.get(&account_pk(user_id), "ACCOUNT").await?)
        }

        async fn account_by_login(&self, login: &Login) -> Result<Option<Account>, ApiError> {
            let user_id = match login {
                Login::Username(u) => self.user_id_at(format!("USERNAME#{u}"), "USERNAME").await?,
                Login::Email(e) => self.user_id_at(format!("EMAIL#{e}"), "EMAIL").await?,
            };
            match user_id {
                Some(id) => self.account(&id).await,
                None => Ok(None),
            }
        }

        async fn create_session(&self, token: &RefreshToken) -> Result<(), ApiError> {
            let ttl = token.expires_at;
            let family = HashMap::from([
                ("user_id".to_owned(), s(&token.user_id)),
                (
                    "revoked".to_owned(),
                    shutter_store::dynamodb::types::AttributeValue::Bool(false),
                ),
                ("ttl".to_owned(), n(ttl)),
            ]);
            let mut refresh = to_item(token)?;
            refresh.insert("ttl".to_owned(), n(ttl));
            let items = vec![
                self.put_new(with_key(
                    family,
                    format!("FAMILY#{}", token.family_id),
                    "FAMILY",
                ))?,
                self.put_new(with_key(
                    refresh,
                    format!("REFRESH#{}", token.token_hash),
                    "REFRESH",
                ))?,
            ];
            self.transact(items).await?.map_err(|_| {
                ApiError::internal(std::io::Error::other("refresh token id collision"))
            })
        }

        async fn refresh_token(&self, token_hash: &str) -> Result<Option<RefreshToken>, ApiError> {
            Ok(self
                .table
                .get(&format!("REFRESH#{token_hash}"), "REFRESH")
                .await?)
        }

        async fn rotate(&self, old: &RefreshToken, new: &RefreshToken) -> Result<bool, ApiError> {
            let now = shutter_store::epoch_seconds();
            let mark_rotated = Update::builder()
                .table_name(self.name())
                .set_key(Some(key(format!("REFRESH#{}", old.token_hash), "REFRESH")))
                .update_expression("SET #status = :rotated")
                .condition_expression("#status = :active AND expires_at > :now")
                .expression_attribute_names("#status", "status")
                .expression_attribute_values(":rotated", s("rotated"))
                .expression_attribute_values(":active", s("active"))
                .expression_attribute_values(":now", n(now))
                .build()
                .map_err(internal)?;
            let family_live = ConditionCheck::builder()
                .table_name(self.name())
                .set_key(Some(key(format!("FAMILY#{}", old.family_id), "FAMILY")))
                .condition_expression("revoked = :false")
                .expression_attribute_values(
                    ":false",
                    shutter_store::dynamodb::types::AttributeValue::Bool(false),
                )
                .build()
                .map_err(internal)?;
            let epoch_current = ConditionCheck::builder()
                .table_name(self.name())
                .set_key(Some(key(account_pk(&old.user_id), "ACCOUNT")))
                .condition_expression("refresh_epoch = :epoch")
                .expression_attribute_values(":epoch", n(old.epoch))
                .build()
                .map_err(internal)?;
            let mut refresh = to_item(new)?;
            refresh.insert("ttl".to_owned(), n(new.expires_at));
            let items = vec![
                TransactWriteItem::builder().update(mark_rotated).build(),
                TransactWriteItem::builder()
                    .condition_check(family_live)
                    .build(),
                TransactWriteItem::builder()
                    .condition_check(epoch_current)
                    .build(),
                self.put_new(with_key(
                    refresh,
                    format!("REFRESH#{}", new.token_hash),
                    "REFRESH",
                ))?,
            ];
            Ok(self.transact(items).await?.is_ok())
        }

        async fn revoke_family(&self, family_id: &str) -> Result<(), ApiError> {
            self.table
                .client
                .update_item()
                .table_name(self.name())
                .set_key(Some(key(format!("FAMILY#{family_id}"), "FAMILY")))
                .update_expression("SET revoked = :true")
                .condition_expression("attribute_exists(pk)")
                .expression_attribute_values(
                    ":true",
                    shutter_store::dynamodb::types::AttributeValue::Bool(true),
                )
                .send()
                .await
                .map(|_| ())
                .or_else(|e| {
                    if e.as_service_error()
                        .is_some_and(|se| se.is_conditional_check_failed_exception())
                    {
                        Ok(())
                    } else {
                        Err(internal(e))
                    }
                })
        }

        async fn update_settings(
            &self,
            user_id: &str,
            settings: &Settings,
        ) -> Result<(), ApiError> {
            let value =
                shutter_store::serde_dynamo::to_attribute_value(settings).map_err(internal)?;
            self.table
                .client
                .update_item()
                .table_name(self.name())
                .set_key(Some(key(account_pk(user_id), "ACCOUNT")))
                .update_expression("SET settings = :settings, updated_at = :now")
                .condition_expression("attribute_exists(pk)")
                .expression_attribute_values(":settings", value)
                .expression_attribute_values(":now", s(shutter_core::now_rfc3339()))
                .send()
                .await
                .map(|_| ())
                .map_err(|e| {
                    if e.as_service_error()
                        .is_some_and(|se| se.is_conditional_check_failed_exception())
                    {
                        ApiError::NotFound("account")
                    } else {
                        internal(e)
                    }
                })
        }

        async fn change_email(
            &self,
            account: &Account,
            new_email: &Email,
            event: &Envelope,
        ) -> Result<(), ApiError> {
            let update = Update::builder()
                .table_name(self.name())
                .set_key(Some(key(account_pk(&account.user_id), "ACCOUNT")))
                .update_expression("SET email = :new, updated_at = :now")
                .condition_expression("email = :old")
                .expression_attribute_values(":new", s(new_email.as_str()))
                .expression_attribute_values(":old", s(account.email.as_str()))
                .expression_attribute_values(":now", s(shutter_core::now_rfc3339()))
                .build()
                .map_err(internal)?;
            let items = vec![
                self.pointer(format!("EMAIL#{new_email}"), "EMAIL", &account.user_id)?,
                TransactWriteItem::builder().update(update).build(),
                self.delete(format!("EMAIL#{}", account.email), "EMAIL")?,
                outbox_put(self.name(), IDENTITY_TOPIC, event),
            ];
            match self.transact(items).await? {
                Ok(()) => Ok(()),
                Err(reasons) if condition_failed_at(&reasons, 0) => Err(ApiError::conflict(
                    "email_taken",
                    "email",
                    "an account already uses this email",
                )),
                Err(_) => Err(ApiError::conflict(
                    "concurrent_update",
                    "email",
                    "the account changed meanwhile; retry",
                )),
            }
        }

        async fn change_password(&self, account: &Account, new_hash: &str) -> Result<(), ApiError> {
            self.table
                .client
                .update_item()
                .table_name(self.name())
                .set_key(Some(key(account_pk(&account.user_id), "ACCOUNT")))
                .update_expression("SET password_hash = :hash, refresh_epoch = refresh_epoch + :one, updated_at = :now")
                .condition_expression("password_hash = :old")
                .expression_attribute_values(":hash", s(new_hash))
                .expression_attribute_values(":old", s(&account.password_hash))
                .expression_attribute_values(":one", n(1))
                .expression_attribute_values(":now", s(shutter_core::now_rfc3339()))
                .send()
                .await
                .map(|_| ())
                .map_err(|e| {
                    if e.as_service_error().is_some_and(|se| se.is_conditional_check_failed_exception()) {
                        ApiError::conflict("concurrent_update", "current_password", "the password changed meanwhile")
                    } else {
                        internal(e)
                    }
                })
        }

        async fn delete_account(
            &self,
            account: &Account,
            event: &Envelope,
        ) -> Result<(), ApiError> {
            let items = vec![
                self.delete(account_pk(&account.user_id), "ACCOUNT")?,
                self.delete(format!("USERNAME#{}", account.username), "USERNAME")?,
                self.delete(format!("EMAIL#{}", account.email), "EMAIL")?,
                outbox_put(self.name(), IDENTITY_TOPIC, event),
            ];
            self.transact(items)
                .await?
                .map_err(|_| ApiError::internal(std::io::Error::other("outbox id collision")))
        }
    }
}

pub mod memory {
    //! An in-memory [`IdentityStore`] for unit tests of handler rules. It keeps the same
    //! conditions as the DynamoDB adapter, and records the events it was given.

    use std::collections::HashMap;
    use std::sync::Mutex;

    use super::*;
    use crate::model::RefreshStatus;

    #[derive(Debug, Default)]
    pub struct MemoryIdentityStore {
        state: Mutex<State>,
    }

    #[derive(Debug, Default)]
    struct State {
        accounts: HashMap<String, Account>,
        usernames: HashMap<String, String>,
        emails: HashMap<String, String>,
        tokens: HashMap<String, RefreshToken>,
        revoked_families: HashMap<String, bool>,
        events: Vec<Envelope>,
    }

    impl MemoryIdentityStore {
        fn state(&self) -> std::sync::MutexGuard<'_, State> {
            self.state.lock().unwrap_or_else(|e| e.into_inner())
        }

        pub fn events(&self) -> Vec<Envelope> {
            self.state().events.clone()
        }

        pub fn family_revoked(&self, family_id: &str) -> bool {
            self.state()
                .revoked_families
                .get(family_id)
                .copied()
                .unwrap_or(false)
        }
    }

    /// An account for tests, password `correct horse battery`.
    pub fn test_account(username: &str) -> Account {
        Account {
            user_id: shutter_core::new_id(),
            username: username
                .to_owned()
                .try_into()
                .unwrap_or_else(|_| unreachable!()),
            email: format!("{username}@example.com")
                .try_into()
                .unwrap_or_else(|_| unreachable!()),
            password_hash: String::new(),
            roles: vec!["user".to_owned()],
            settings: Settings::default(),
            refresh_epoch: 0,
            created_at: shutter_core::now_rfc3339(),
            updated_at: shutter_core::now_rfc3339(),
        }
    }

    #[async_trait]
    impl IdentityStore for MemoryIdentityStore {
        async fn create_account(
            &self,
            account: &Account,
            event: &Envelope,
        ) -> Result<(), ApiError> {
            let mut st = self.state();
            if st.usernames.contains_key(account.username.as_str()) {
                return Err(ApiError::conflict(
                    "username_taken",
                    "username",
                    "this username is taken",
                ));
            }
            if st.emails.contains_key(account.email.as_str()) {
                return Err(ApiError::conflict(
                    "email_taken",
                    "email",
                    "an account already uses this email",
                ));
            }
            st.usernames
                .insert(account.username.to_string(), account.user_id.clone());
            st.emails
                .insert(account.email.to_string(), account.user_id.clone());
            st.accounts.insert(account.user_id.clone(), account.clone());
            st.events.push(event.clone());
            Ok(())
        }

        async fn account(&self, user_id: &str) -> Result<Option<Account>, ApiError> {
            Ok(self.state().accounts.get(user_id).cloned())
        }

        async fn account_by_login(&self, login: &Login) -> Result<Option<Account>, ApiError> {
            let st = self.state();
            let id = match login {
                Login::Username(u) => st.usernames.get(u.as_str()),
                Login::Email(e) => st.emails.get(e.as_str()),
            };
            Ok(id.and_then(|id| st.accounts.get(id)).cloned())
        }

        async fn create_session(&self, token: &RefreshToken) -> Result<(), ApiError> {
            let mut st = self.state();
            st.revoked_families.insert(token.family_id.clone(), false);
            st.tokens.insert(token.token_hash.clone(), token.clone());
            Ok(())
        }

        async fn refresh_token(&self, token_hash: &str) -> Result<Option<RefreshToken>, ApiError> {
            Ok(self.state().tokens.get(token_hash).cloned())
        }

        async fn rotate(&self, old: &RefreshToken, new: &RefreshToken) -> Result<bool, ApiError> {
            let mut st = self.state();
            let active = st.tokens.get(&old.token_hash).is_some_and(|t| {
                t.status == RefreshStatus::Active && t.expires_at > shutter_store::epoch_seconds()
            });
            let family_live = st.revoked_families.get(&old.family_id) == Some(&false);
            let epoch_current = st
                .accounts
                .get(&old.user_id)
                .is_some_and(|a| a.refresh_epoch == old.epoch);
            if !(active && family_live && epoch_current) {
                return Ok(false);
            }
            if let Some(t) = st.tokens.get_mut(&old.token_hash) {
                t.status = RefreshStatus::Rotated;
            }
            st.tokens.insert(new.token_hash.clone(), new.clone());
            Ok(true)
        }

        async fn revoke_family(&self, family_id: &str) -> Result<(), ApiError> {
            if let Some(r) = self.state().revoked_families.get_mut(family_id) {
                *r = true;
            }
            Ok(())
        }

        async fn update_settings(
            &self,
            user_id: &str,
            settings: &Settings,
        ) -> Result<(), ApiError> {
            let mut st = self.state();
            let account = st
                .accounts
                .get_mut(user_id)
                .ok_or(ApiError::NotFound("account"))?;
            account.settings = settings.clone();
            Ok(())
        }

        async fn change_email(
            &self,
            account: &Account,
            new_email: &Email,
            event: &Envelope,
        ) -> Result<(), ApiError> {
            let mut st = self.state();
            if st.emails.contains_key(new_email.as_str()) {
                return Err(ApiError::conflict(
                    "email_taken",
                    "email",
                    "an account already uses this email",
                ));
            }
            st.emails.remove(account.email.as_str());
            st.emails
                .insert(new_email.to_string(), account.user_id.clone());
            if let Some(a) = st.accounts.get_mut(&account.user_id) {
                a.email = new_email.clone();
            }
            st.events.push(event.clone());
            Ok(())
        }

        async fn change_password(&self, account: &Account, new_hash: &str) -> Result<(), ApiError> {
            let mut st = self.state();
            let a = st
                .accounts
                .get_mut(&account.user_id)
                .ok_or(ApiError::NotFound("account"))?;
            a.password_hash = new_hash.to_owned();
            a.refresh_epoch += 1;
            Ok(())
        }

        async fn delete_account(
            &self,
            account: &Account,
            event: &Envelope,
        ) -> Result<(), ApiError> {
            let mut st = self.state();
            st.accounts.remove(&account.user_id);
            st.usernames.remove(account.username.as_str());
            st.emails.remove(account.email.as_str());
            st.events.push(event.clone());
            Ok(())
        }
    }
}
