//! An in-memory [`IdentityStore`] for the use-case tests. It keeps the DynamoDB adapter's
//! conditions, in the same order and with the same labels, and records the events it was
//! given.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use shutter_core::UserId;
use shutter_core::validate::{Email, Login, Username};
use shutter_events::Envelope;
use shutter_store::{StoreError, StoreResult};

use super::{
    ACCOUNT_EXISTS, EMAIL, EMAIL_CHANGED, EPOCH_MOVED, IdentityStore, NO_ACCOUNT, PASSWORD_CHANGED,
    SESSION_EXISTS, SESSION_REVOKED, TOKEN_SPENT, USERNAME,
};
use crate::model::{
    Account, AccountChange, FamilyId, PasswordHash, RefreshStatus, RefreshToken, TokenHash,
};

#[derive(Debug, Default)]
pub struct MemoryIdentityStore {
    state: Mutex<Contents>,
}

/// Everything the store holds, to compare before and after a request.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Contents {
    pub accounts: HashMap<UserId, Account>,
    /// Uniqueness items: username -> user id.
    pub usernames: HashMap<String, UserId>,
    /// Usernames no account holds, unavailable until then (epoch seconds).
    pub quarantined: HashMap<String, i64>,
    /// Uniqueness items: email -> user id.
    pub emails: HashMap<String, UserId>,
    pub tokens: HashMap<TokenHash, RefreshToken>,
    /// Family -> revoked.
    pub families: HashMap<FamilyId, bool>,
    pub events: Vec<Envelope>,
}

impl Contents {
    /// An account holds `username`, or its quarantine lasts past `now`.
    fn username_taken(&self, username: &str, now: i64) -> bool {
        self.usernames.contains_key(username)
            || self
                .quarantined
                .get(username)
                .is_some_and(|free_at| *free_at > now)
    }
}

impl MemoryIdentityStore {
    fn state(&self) -> std::sync::MutexGuard<'_, Contents> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn contents(&self) -> Contents {
        self.state().clone()
    }

    pub fn events(&self) -> Vec<Envelope> {
        self.state().events.clone()
    }

    /// Suspends the account as the moderation service does: the suspension on the account
    /// and a new refresh epoch.
    pub fn suspend(&self, user_id: &UserId, suspension: crate::model::Suspension) {
        if let Some(account) = self.state().accounts.get_mut(user_id) {
            account.suspension = Some(suspension);
            account.refresh_epoch += 1;
        }
    }

    pub fn family_revoked(&self, family_id: &FamilyId) -> bool {
        self.state()
            .families
            .get(family_id)
            .copied()
            .unwrap_or(false)
    }
}

#[async_trait]
impl IdentityStore for MemoryIdentityStore {
    async fn create_account(
        &self,
        account: &Account,
        event: &Envelope,
        now: i64,
    ) -> StoreResult<()> {
        let mut st = self.state();
        if st.username_taken(account.username.as_str(), now) {
            return Err(StoreError::Conflict(USERNAME));
        }
        if st.emails.contains_key(account.email.as_str()) {
            return Err(StoreError::Conflict(EMAIL));
        }
        if st.accounts.contains_key(&account.user_id) {
            return Err(StoreError::Conflict(ACCOUNT_EXISTS));
        }
        st.quarantined.remove(account.username.as_str());
        st.usernames
            .insert(account.username.to_string(), account.user_id.clone());
        st.emails
            .insert(account.email.to_string(), account.user_id.clone());
        st.accounts.insert(account.user_id.clone(), account.clone());
        st.events.push(event.clone());
        Ok(())
    }

    async fn hold_username(
        &self,
        username: &Username,
        free_at: i64,
        now: i64,
        event: &Envelope,
    ) -> StoreResult<()> {
        let mut st = self.state();
        if st.username_taken(username.as_str(), now) {
            return Err(StoreError::Conflict(USERNAME));
        }
        st.quarantined.insert(username.to_string(), free_at);
        st.events.push(event.clone());
        Ok(())
    }

    async fn email_owner(&self, email: &Email) -> StoreResult<Option<UserId>> {
        Ok(self.state().emails.get(email.as_str()).cloned())
    }

    async fn account(&self, user_id: &UserId) -> StoreResult<Option<Account>> {
        Ok(self.state().accounts.get(user_id).cloned())
    }

    async fn account_by_login(&self, login: &Login) -> StoreResult<Option<Account>> {
        let st = self.state();
        let id = match login {
            Login::Username(u) => st.usernames.get(u.as_str()),
            Login::Email(e) => st.emails.get(e.as_str()),
        };
        Ok(id.and_then(|id| st.accounts.get(id)).cloned())
    }

    async fn create_session(&self, token: &RefreshToken) -> StoreResult<()> {
        let mut st = self.state();
        if st.families.contains_key(&token.family_id) || st.tokens.contains_key(&token.token_hash) {
            return Err(StoreError::Conflict(SESSION_EXISTS));
        }
        st.families.insert(token.family_id.clone(), false);
        st.tokens.insert(token.token_hash.clone(), token.clone());
        Ok(())
    }

    async fn refresh_token(&self, token_hash: &TokenHash) -> StoreResult<Option<RefreshToken>> {
        Ok(self.state().tokens.get(token_hash).cloned())
    }

    async fn rotate(&self, old: &RefreshToken, new: &RefreshToken) -> StoreResult<()> {
        let mut st = self.state();
        let now = shutter_store::epoch_seconds();
        let active = st
            .tokens
            .get(&old.token_hash)
            .is_some_and(|t| t.status == RefreshStatus::Active && t.expires_at > now);
        if !active {
            return Err(StoreError::Conflict(TOKEN_SPENT));
        }
        if st.families.get(&old.family_id) != Some(&false) {
            return Err(StoreError::Conflict(SESSION_REVOKED));
        }
        let epoch_current = st
            .accounts
            .get(&old.user_id)
            .is_some_and(|a| a.refresh_epoch == old.epoch);
        if !epoch_current {
            return Err(StoreError::Conflict(EPOCH_MOVED));
        }
        if st.tokens.contains_key(&new.token_hash) {
            return Err(StoreError::Conflict(SESSION_EXISTS));
        }
        if let Some(t) = st.tokens.get_mut(&old.token_hash) {
            t.status = RefreshStatus::Rotated;
        }
        st.tokens.insert(new.token_hash.clone(), new.clone());
        Ok(())
    }

    async fn revoke_family(&self, family_id: &FamilyId) -> StoreResult<()> {
        if let Some(r) = self.state().families.get_mut(family_id) {
            *r = true;
        }
        Ok(())
    }

    async fn change_account(
        &self,
        account: &Account,
        change: &AccountChange,
        events: &[Envelope],
        at: &str,
    ) -> StoreResult<()> {
        let mut st = self.state();
        if change.is_empty() {
            return Ok(());
        }
        if let Some(new_email) = &change.email {
            if st.emails.contains_key(new_email.as_str()) {
                return Err(StoreError::Conflict(EMAIL));
            }
            let unchanged = st.accounts.get(&account.user_id).is_some_and(|a| {
                a.email == account.email && a.password_hash == account.password_hash
            });
            if !unchanged {
                return Err(StoreError::Conflict(EMAIL_CHANGED));
            }
            st.emails
                .insert(new_email.to_string(), account.user_id.clone());
            st.emails.remove(account.email.as_str());
        } else if !st.accounts.contains_key(&account.user_id) {
            return Err(StoreError::Conflict(NO_ACCOUNT));
        }
        if let Some(stored) = st.accounts.get_mut(&account.user_id) {
            *stored = stored.clone().changed(change, at);
        }
        st.events.extend(events.iter().cloned());
        Ok(())
    }

    async fn change_password(
        &self,
        account: &Account,
        new_hash: &PasswordHash,
        at: &str,
    ) -> StoreResult<()> {
        let mut st = self.state();
        let stored = st
            .accounts
            .get_mut(&account.user_id)
            .filter(|a| a.password_hash == account.password_hash)
            .ok_or(StoreError::Conflict(PASSWORD_CHANGED))?;
        stored.password_hash = new_hash.clone();
        stored.refresh_epoch += 1;
        stored.updated_at = at.to_owned();
        Ok(())
    }

    async fn delete_account(
        &self,
        account: &Account,
        event: &Envelope,
        free_at: i64,
    ) -> StoreResult<()> {
        let mut st = self.state();
        st.accounts.remove(&account.user_id);
        st.usernames.remove(account.username.as_str());
        st.quarantined.insert(account.username.to_string(), free_at);
        st.emails.remove(account.email.as_str());
        st.events.push(event.clone());
        Ok(())
    }
}
