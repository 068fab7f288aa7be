//! The use cases: each loads what it needs, decides with [`crate::model`], and saves
//! through the [`IdentityStore`] port, events in the same transaction as the change.
//! They answer in [`ApiError`]s because HTTP adapters call them.

use shutter_core::validate::{Email, Login, Password, PasswordAttempt, Username};
use shutter_core::{ApiError, UserId};
use shutter_events::Envelope;
use shutter_store::StoreError;

use crate::keys::TokenIssuer;
use crate::model::{
    Account, AccountPatch, FamilyId, RefreshSecret, RefreshToken, registration_with_taken_email,
};
use crate::store::{self, IdentityStore};
use crate::{App, errors, password};

/// Longer password attempts are refused before hashing (no password is this long, and
/// argon2 over megabytes would be a cheap way to burn CPU).
const MAX_ATTEMPT_BYTES: usize = 1024;

/// A logged-in session: a signed access token and the refresh token that renews it.
#[derive(Debug)]
pub struct Session {
    pub access_token: String,
    pub refresh_token: RefreshSecret,
}

fn rejected_refresh() -> ApiError {
    ApiError::Unauthorized("the refresh token is invalid, expired or revoked")
}

/// Whether `attempt` is the password `hash` was made from; an attempt too long to be one
/// is not hashed at all.
fn verified(attempt: &PasswordAttempt, hash: &crate::model::PasswordHash) -> bool {
    attempt.expose().len() <= MAX_ATTEMPT_BYTES && password::verify(attempt, hash)
}

/// What a registration did. Clients are answered alike either way, so that registering
/// does not tell whether an email has an account.
#[derive(Debug)]
pub enum Registration {
    /// The account was created, with `UserRegistered`.
    Created(Box<Account>),
    /// The email is another account's: nothing was created, the username is held for
    /// the quarantine (as a created account would hold it), and
    /// `RegistrationWithTakenEmail` is there for the owner's notice.
    EmailTaken,
}

impl Registration {
    /// The new account, if one was created.
    pub fn created(self) -> Option<Account> {
        match self {
            Registration::Created(account) => Some(*account),
            Registration::EmailTaken => None,
        }
    }
}

impl<S: IdentityStore, T> App<S, T> {
    /// Creates an account; `UserRegistered` goes out with it. Usernames and emails are
    /// unique (case-insensitively: both are stored lower-cased). A taken username is a 409
    /// (usernames are public); a taken email is not told apart from a new one: nothing is
    /// created, the username is held all the same, and `RegistrationWithTakenEmail`
    /// records the attempt for the owner. Both ways hash the password, read the email's
    /// owner and write once, so neither answers faster.
    pub async fn register(
        &self,
        username: Username,
        email: Email,
        password: &Password,
        correlation_id: &str,
    ) -> Result<Registration, ApiError> {
        let password_hash = password::hash(password).map_err(ApiError::internal)?;
        let at = shutter_core::now_rfc3339();
        let now = shutter_store::epoch_seconds();
        let mut owner = self.store.email_owner(&email).await.map_err(errors::api)?;
        // A second round only when the address was taken or freed between read and write.
        for _ in 0..2 {
            let Some(owner_id) = &owner else {
                let account =
                    Account::register(username.clone(), email.clone(), password_hash.clone(), &at);
                let event =
                    Envelope::new(account.registered(), Some(&account.user_id), correlation_id);
                match self.store.create_account(&account, &event, now).await {
                    Ok(()) => {
                        tracing::info!(user_id = %account.user_id, "user registered");
                        return Ok(Registration::Created(Box::new(account)));
                    }
                    Err(StoreError::Conflict(store::EMAIL)) => {
                        owner = self.store.email_owner(&email).await.map_err(errors::api)?;
                        continue;
                    }
                    Err(other) => return Err(errors::api(other)),
                }
            };
            let event = Envelope::new(
                registration_with_taken_email(owner_id, &username, &at),
                None,
                correlation_id,
            );
            self.store
                .hold_username(&username, self.quarantine.free_at(now), now, &event)
                .await
                .map_err(errors::api)?;
            tracing::warn!(user_id = %owner_id, "registration with an email in use: nothing created");
            return Ok(Registration::EmailTaken);
        }
        Err(ApiError::conflict(
            "concurrent_update",
            "email",
            "changed meanwhile; retry",
        ))
    }

    /// Ends the session `token` belongs to, if it is the caller's. An unknown token or
    /// someone else's gets the same answer and changes nothing.
    pub async fn logout(&self, caller: &UserId, token: &RefreshSecret) -> Result<(), ApiError> {
        let found = self
            .store
            .refresh_token(&token.hash())
            .await
            .map_err(errors::api)?;
        if let Some(token) = found.filter(|t| t.belongs_to(caller)) {
            self.store
                .revoke_family(&token.family_id)
                .await
                .map_err(errors::api)?;
        }
        Ok(())
    }

    /// The caller's own account; 404 once it is deleted.
    pub async fn account_of(&self, caller: &UserId) -> Result<Account, ApiError> {
        self.store
            .account(caller)
            .await
            .map_err(errors::api)?
            .ok_or(ApiError::NotFound("account"))
    }

    /// Applies `patch` to the caller's account: what differs is saved at once (settings
    /// and email together, or neither), with `UserEmailChanged` when the email changes.
    /// A patch with an email needs the current password (400 on `current_password` without
    /// it, 403 `password_mismatch` when wrong), so a stolen access token cannot move the
    /// account; a password given with settings alone must be right too.
    pub async fn update_account(
        &self,
        caller: &UserId,
        patch: &AccountPatch,
        correlation_id: &str,
    ) -> Result<Account, ApiError> {
        if patch.email.is_some() && patch.current_password.is_none() {
            return Err(ApiError::invalid(
                "current_password",
                "is required to change the email",
            ));
        }
        let account = self.account_of(caller).await?;
        account.refuse_suspended(&shutter_core::now_rfc3339())?;
        if let Some(attempt) = &patch.current_password
            && !verified(attempt, &account.password_hash)
        {
            return Err(ApiError::PasswordMismatch("current_password"));
        }
        let change = account.change(patch);
        let now = shutter_core::now_rfc3339();
        let after = account.clone().changed(&change, &now);
        let events: Vec<Envelope> = change
            .email
            .iter()
            .map(|_| Envelope::new(after.email_changed(), Some(caller), correlation_id))
            .collect();
        self.store
            .change_account(&account, &change, &events, &now)
            .await
            .map_err(errors::api)?;
        Ok(after)
    }

    /// Replaces the caller's password if `current` is it (403 `password_mismatch` on
    /// `current_password` otherwise). Every refresh token of the account stops working.
    pub async fn change_password(
        &self,
        caller: &UserId,
        current: &PasswordAttempt,
        new: &Password,
    ) -> Result<(), ApiError> {
        let account = self.account_of(caller).await?;
        account.refuse_suspended(&shutter_core::now_rfc3339())?;
        if !verified(current, &account.password_hash) {
            return Err(ApiError::PasswordMismatch("current_password"));
        }
        let new_hash = password::hash(new).map_err(ApiError::internal)?;
        self.store
            .change_password(&account, &new_hash, &shutter_core::now_rfc3339())
            .await
            .map_err(errors::api)?;
        tracing::info!(user_id = %account.user_id, "password changed; sessions revoked");
        Ok(())
    }

    /// Erases the caller's account and emits `UserDeleted`, which every service that
    /// holds the user's data consumes. A suspended or banned account may still erase
    /// itself (its data is its own); its username stays quarantined as any. Its username stays unavailable for the quarantine. The password is asked again (403
    /// `password_mismatch` on `password`) so a stolen access token cannot delete an
    /// account.
    pub async fn delete_account(
        &self,
        caller: &UserId,
        password: &PasswordAttempt,
        correlation_id: &str,
    ) -> Result<(), ApiError> {
        let account = self.account_of(caller).await?;
        if !verified(password, &account.password_hash) {
            return Err(ApiError::PasswordMismatch("password"));
        }
        let event = Envelope::new(account.deleted(), Some(caller), correlation_id);
        let free_at = self.quarantine.free_at(shutter_store::epoch_seconds());
        self.store
            .delete_account(&account, &event, free_at)
            .await
            .map_err(errors::api)?;
        tracing::info!(user_id = %account.user_id, "account deleted");
        Ok(())
    }
}

impl<S: IdentityStore, T> App<S, T> {
    /// Whom a login's password check is counted against (the template's password-check
    /// limits): the account its login names, so its username and its email count
    /// together, or the login itself when no account has it, so an unknown login is
    /// limited as a known one is.
    pub async fn password_check_key(&self, login: &Login) -> Result<String, ApiError> {
        let account = self
            .store
            .account_by_login(login)
            .await
            .map_err(errors::api)?;
        Ok(match account {
            Some(account) => account.user_id.as_str().to_owned(),
            None => match login {
                Login::Username(u) => format!("login:{}", u.as_str()),
                Login::Email(e) => format!("login:{}", e.as_str()),
            },
        })
    }
}

impl<S: IdentityStore, T: TokenIssuer> App<S, T> {
    /// A new session for `login` and `password`. Whether the user exists or the password
    /// is wrong, the answer (and the time it takes) is the same.
    pub async fn login(
        &self,
        login: &Login,
        password: &PasswordAttempt,
    ) -> Result<Session, ApiError> {
        if password.expose().len() > MAX_ATTEMPT_BYTES {
            return Err(ApiError::InvalidCredentials);
        }
        let account = match self
            .store
            .account_by_login(login)
            .await
            .map_err(errors::api)?
        {
            Some(account) if password::verify(password, &account.password_hash) => account,
            Some(_) => return Err(ApiError::InvalidCredentials),
            None => {
                password::verify_against_dummy(password);
                return Err(ApiError::InvalidCredentials);
            }
        };
        // Only a right password learns of the suspension (a wrong one is answered as any).
        account.refuse_suspended(&shutter_core::now_rfc3339())?;
        // Signed before the session is stored: a key that cannot be read yet leaves no
        // session behind.
        let access_token = self.tokens.issue(&account).await?;
        let (refresh_token, record) = RefreshToken::issue(
            &account,
            FamilyId::generate(),
            shutter_store::epoch_seconds(),
        );
        self.store
            .create_session(&record)
            .await
            .map_err(errors::api)?;
        tracing::info!(user_id = %account.user_id, "logged in");
        Ok(Session {
            access_token,
            refresh_token,
        })
    }

    /// A new token pair for `presented`, which is rotated. Presenting a rotated token
    /// again revokes its whole family (it was stolen or replayed).
    pub async fn refresh(&self, presented: &RefreshSecret) -> Result<Session, ApiError> {
        let old = self
            .store
            .refresh_token(&presented.hash())
            .await
            .map_err(errors::api)?
            .ok_or_else(rejected_refresh)?;
        if old.is_replayed() {
            tracing::warn!(user_id = %old.user_id, family_id = %old.family_id.as_str(), "refresh token reuse: family revoked");
            self.store
                .revoke_family(&old.family_id)
                .await
                .map_err(errors::api)?;
            return Err(rejected_refresh());
        }
        let account = self
            .store
            .account(&old.user_id)
            .await
            .map_err(errors::api)?
            .ok_or_else(rejected_refresh)?;
        // A suspension also moved the refresh epoch, so this token can never rotate again;
        // the 403 says why rather than a bare 401.
        account.refuse_suspended(&shutter_core::now_rfc3339())?;
        // Signed before the rotation: a key that cannot be read yet must not spend the
        // presented token (its retry would look like a replay and end the session).
        let access_token = self.tokens.issue(&account).await?;
        let (refresh_token, new) = RefreshToken::issue(
            &account,
            old.family_id.clone(),
            shutter_store::epoch_seconds(),
        );
        match self.store.rotate(&old, &new).await {
            Ok(()) => {}
            // Expired, revoked, password changed, or a concurrent use of the same token:
            // the last one is reuse too, so the family goes.
            Err(StoreError::Conflict(_)) => {
                self.store
                    .revoke_family(&old.family_id)
                    .await
                    .map_err(errors::api)?;
                return Err(rejected_refresh());
            }
            Err(other) => return Err(errors::api(other)),
        }
        Ok(Session {
            access_token,
            refresh_token,
        })
    }
}

#[cfg(test)]
mod tests {
    use shutter_events::{Event, EventType};

    use super::*;
    use crate::model::{Language, SettingsPatch, UsernameQuarantine};
    use crate::store::memory::MemoryIdentityStore;

    const PASSWORD: &str = "correct horse battery";

    struct FakeTokens;
    impl TokenIssuer for FakeTokens {
        async fn issue(&self, account: &Account) -> Result<String, ApiError> {
            Ok(format!("access-for-{}", account.user_id))
        }
    }

    fn app() -> App<MemoryIdentityStore, FakeTokens> {
        App {
            store: MemoryIdentityStore::default(),
            tokens: FakeTokens,
            quarantine: UsernameQuarantine::default(),
        }
    }

    fn username(raw: &str) -> Username {
        Username::try_from(raw.to_owned()).unwrap()
    }

    fn email(raw: &str) -> Email {
        Email::try_from(raw.to_owned()).unwrap()
    }

    fn new_password(raw: &str) -> Password {
        Password::try_from(raw.to_owned()).unwrap()
    }

    fn attempt(raw: &str) -> PasswordAttempt {
        PasswordAttempt::from(raw.to_owned())
    }

    fn code(err: &ApiError) -> (u16, String, Option<String>) {
        let p = err.problem();
        (p.status, p.code, p.field)
    }

    async fn registered(app: &App<MemoryIdentityStore, FakeTokens>, name: &str) -> Account {
        app.register(
            username(name),
            email(&format!("{name}@example.com")),
            &new_password(PASSWORD),
            "corr",
        )
        .await
        .unwrap()
        .created()
        .expect("a new email creates the account")
    }

    async fn logged_in(app: &App<MemoryIdentityStore, FakeTokens>, name: &str) -> Session {
        app.login(&Login::Username(username(name)), &attempt(PASSWORD))
            .await
            .unwrap()
    }

    /// The live issuer's key as the first requests of a cold start may find it: not read
    /// yet (Secrets Manager failed or is slow), until `readable` is set.
    struct KeyNotReadYet {
        readable: std::sync::atomic::AtomicBool,
    }
    impl TokenIssuer for KeyNotReadYet {
        async fn issue(&self, account: &Account) -> Result<String, ApiError> {
            if self.readable.load(std::sync::atomic::Ordering::SeqCst) {
                FakeTokens.issue(account).await
            } else {
                Err(ApiError::internal(std::io::Error::other(
                    "secret SIGNING_KEY_SECRET_ARN could not be read",
                )))
            }
        }
    }

    #[tokio::test]
    async fn a_signing_key_not_read_yet_stores_no_session_and_spends_no_refresh_token() {
        // GIVEN alice, logged in while the key was readable
        let app = App {
            store: MemoryIdentityStore::default(),
            tokens: KeyNotReadYet {
                readable: true.into(),
            },
            quarantine: UsernameQuarantine::default(),
        };
        let pw = new_password(PASSWORD);
        app.register(username("alice"), email("alice@example.com"), &pw, "c")
            .await
            .unwrap();
        let alice = Login::Username(username("alice"));
        let session = app.login(&alice, &attempt(PASSWORD)).await.unwrap();
        app.tokens
            .readable
            .store(false, std::sync::atomic::Ordering::SeqCst);
        let before = app.store.contents();

        // WHEN she logs in and refreshes while the key cannot be read
        let login = app.login(&alice, &attempt(PASSWORD)).await.unwrap_err();
        let refresh = app.refresh(&session.refresh_token).await.unwrap_err();

        // THEN both are 500s and nothing was stored: no new session, the presented refresh
        // token not rotated
        assert_eq!(code(&login).0, 500);
        assert_eq!(code(&refresh).0, 500);
        assert_eq!(app.store.contents(), before);

        // WHEN the key is readable again, the same refresh token still rotates (its retry
        // is not taken for a replay) and a login works
        app.tokens
            .readable
            .store(true, std::sync::atomic::Ordering::SeqCst);
        let rotated = app.refresh(&session.refresh_token).await.unwrap();
        assert!(rotated.access_token.starts_with("access-for-"));
        assert_ne!(rotated.refresh_token.hash(), session.refresh_token.hash());
        app.login(&alice, &attempt(PASSWORD)).await.unwrap();
    }

    #[tokio::test]
    async fn register_emits_one_event_and_enforces_uniqueness_case_insensitively() {
        // GIVEN a new user, registered in mixed case
        let app = app();
        let alice = registered(&app, "Alice").await;
        // THEN the account is stored lower-cased with one UserRegistered event
        assert_eq!(alice.username.as_str(), "alice");
        let events = app.store.events();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].event_type(), EventType::UserRegistered);
        assert_eq!(events[0].aggregate_id, alice.user_id.as_str());
        assert_eq!(events[0].actor.as_ref(), Some(&alice.user_id));
        assert_eq!(events[0].correlation_id, "corr");
        let Event::UserRegistered(payload) = &events[0].event else {
            panic!("UserRegistered")
        };
        assert_eq!(
            (
                &payload.user_id,
                payload.username.as_str(),
                &payload.created_at
            ),
            (&alice.user_id, "alice", &alice.created_at)
        );
        let before = app.store.contents();

        // WHEN the same username or email is registered in another case
        let pw = new_password(PASSWORD);
        let taken = app
            .register(username("ALICE"), email("x@example.com"), &pw, "c")
            .await
            .unwrap_err();
        let both_taken = app
            .register(username("alice"), email("ALICE@example.com"), &pw, "c")
            .await
            .unwrap_err();
        // THEN a taken username is refused with its code, and nothing changed (no event
        // either)
        for err in [&taken, &both_taken] {
            assert_eq!(
                code(err),
                (409, "username_taken".into(), Some("username".into()))
            );
        }
        assert_eq!(app.store.contents(), before);

        // WHEN only the email is taken
        let email_taken = app
            .register(username("alice2"), email("ALICE@example.com"), &pw, "corr2")
            .await
            .unwrap();
        // THEN nothing is created: the name is held and the attempt is an event for alice
        assert!(matches!(email_taken, Registration::EmailTaken));
        let after = app.store.contents();
        assert_eq!(after.accounts, before.accounts);
        assert_eq!(
            (&after.usernames, &after.emails),
            (&before.usernames, &before.emails)
        );
        assert!(after.quarantined["alice2"] > shutter_store::epoch_seconds() + 29 * 86_400);
        let recorded = after.events.last().unwrap();
        let Event::RegistrationWithTakenEmail(payload) = &recorded.event else {
            panic!("RegistrationWithTakenEmail, not {:?}", recorded.event)
        };
        assert_eq!(
            (&payload.user_id, payload.attempted_username.as_str()),
            (&alice.user_id, "alice2")
        );
        assert_eq!(
            (recorded.aggregate_id.as_str(), recorded.actor.as_ref()),
            (alice.user_id.as_str(), None)
        );
        assert_eq!(after.events.len(), before.events.len() + 1);
        // AND the held name answers as a taken one, as if an account had been made
        let held = app
            .register(username("alice2"), email("new@example.com"), &pw, "c")
            .await
            .unwrap_err();
        assert_eq!(code(&held).1, "username_taken");
    }

    #[tokio::test]
    async fn login_by_username_or_email_and_identical_failures() {
        // GIVEN bob
        let app = app();
        registered(&app, "bob").await;
        // WHEN he logs in by username or by email THEN he gets a session each time
        let session = logged_in(&app, "bob").await;
        assert!(session.access_token.starts_with("access-for-"));
        let by_email = app
            .login(&Login::Email(email("BOB@example.com")), &attempt(PASSWORD))
            .await;
        assert!(by_email.is_ok());
        let sessions = app.store.contents().tokens.len();
        assert_eq!(sessions, 2);

        // WHEN the password is wrong, the user does not exist, or the attempt is huge
        let wrong_pw = app
            .login(
                &Login::Username(username("bob")),
                &attempt("wrong password!"),
            )
            .await
            .unwrap_err();
        let no_user = app
            .login(&Login::Username(username("nobody")), &attempt(PASSWORD))
            .await
            .unwrap_err();
        let huge = app
            .login(
                &Login::Username(username("bob")),
                &attempt(&"x".repeat(1025)),
            )
            .await
            .unwrap_err();
        // THEN the answers are the same 401, and no session was started
        assert_eq!(wrong_pw.problem(), no_user.problem());
        assert_eq!(no_user.problem(), huge.problem());
        assert_eq!(code(&no_user).0, 401);
        assert_eq!(app.store.contents().tokens.len(), sessions);
    }

    #[tokio::test]
    async fn refresh_rotates_and_reuse_revokes_the_family() {
        // GIVEN carol's session
        let app = app();
        registered(&app, "carol").await;
        let t1 = logged_in(&app, "carol").await.refresh_token;

        // WHEN she refreshes THEN she gets a new token
        let t2 = app.refresh(&t1).await.unwrap().refresh_token;
        assert_ne!(t1, t2);

        // WHEN t1 is replayed THEN it is refused, and t2 dies with its family
        assert_eq!(app.refresh(&t1).await.unwrap_err().status(), 401);
        let record = app.store.refresh_token(&t2.hash()).await.unwrap().unwrap();
        assert!(app.store.family_revoked(&record.family_id));
        assert_eq!(app.refresh(&t2).await.unwrap_err().status(), 401);
        let made_up = RefreshSecret::from("made-up".to_owned());
        assert_eq!(app.refresh(&made_up).await.unwrap_err().status(), 401);
    }

    #[tokio::test]
    async fn a_suspension_refuses_login_and_refresh_and_ends_every_session() {
        // GIVEN dan's session, then a suspension until far ahead
        let app = app();
        let dan = registered(&app, "dan").await;
        let token = logged_in(&app, "dan").await.refresh_token;
        let until = "2999-01-01T00:00:00.000Z";
        app.store.suspend(
            &dan.user_id,
            crate::model::Suspension {
                banned: false,
                until: Some(until.to_owned()),
            },
        );
        // THEN login with the right password and refresh say why (403, until when)
        let login = app
            .login(&Login::Username(username("dan")), &attempt(PASSWORD))
            .await
            .unwrap_err();
        assert_eq!(code(&login), (403, "account_suspended".to_owned(), None));
        assert_eq!(login.problem().until.as_deref(), Some(until));
        let refresh = app.refresh(&token).await.unwrap_err();
        assert_eq!(code(&refresh).0, 403);
        // AND its settings and password cannot change meanwhile
        let patch = AccountPatch::default();
        let settings = app
            .update_account(&dan.user_id, &patch, "c")
            .await
            .unwrap_err();
        assert_eq!(code(&settings).0, 403);
        // AND a wrong password learns nothing of it
        let wrong = app
            .login(
                &Login::Username(username("dan")),
                &attempt("wrong password!"),
            )
            .await
            .unwrap_err();
        assert_eq!(code(&wrong).0, 401);
        // WHEN the suspension has ended THEN login works, and the old session stays ended
        app.store.suspend(
            &dan.user_id,
            crate::model::Suspension {
                banned: false,
                until: Some("2000-01-01T00:00:00.000Z".to_owned()),
            },
        );
        assert!(logged_in_ok(&app, "dan").await);
        assert_eq!(app.refresh(&token).await.unwrap_err().status(), 401);
        // AND a ban holds with no end
        app.store.suspend(
            &dan.user_id,
            crate::model::Suspension {
                banned: true,
                until: None,
            },
        );
        let banned = app
            .login(&Login::Username(username("dan")), &attempt(PASSWORD))
            .await
            .unwrap_err();
        assert_eq!((banned.status(), banned.problem().until), (403, None));
    }

    async fn logged_in_ok(app: &App<MemoryIdentityStore, FakeTokens>, name: &str) -> bool {
        app.login(&Login::Username(username(name)), &attempt(PASSWORD))
            .await
            .is_ok()
    }

    #[tokio::test]
    async fn a_password_change_ends_every_session() {
        // GIVEN dave with a session
        let app = app();
        let dave = registered(&app, "dave").await;
        let t = logged_in(&app, "dave").await.refresh_token;
        // WHEN he changes his password
        app.change_password(
            &dave.user_id,
            &attempt(PASSWORD),
            &new_password("another long one"),
        )
        .await
        .unwrap();
        // THEN the session's token no longer refreshes, and the family is revoked
        assert_eq!(app.refresh(&t).await.unwrap_err().status(), 401);
        let record = app.store.refresh_token(&t.hash()).await.unwrap().unwrap();
        assert!(app.store.family_revoked(&record.family_id));
    }

    #[tokio::test]
    async fn logout_only_ends_the_callers_own_session() {
        // GIVEN eve's session, and mallory
        let app = app();
        let eve = registered(&app, "eve").await;
        let mallory = registered(&app, "mallory").await;
        let t = logged_in(&app, "eve").await.refresh_token;

        // WHEN mallory logs out with eve's token THEN it is answered, and changes nothing
        let before = app.store.contents();
        app.logout(&mallory.user_id, &t).await.unwrap();
        assert_eq!(app.store.contents(), before);
        assert!(
            app.refresh(&t).await.is_ok(),
            "someone else's logout changes nothing"
        );

        // WHEN eve logs out THEN her session is over
        let t = logged_in(&app, "eve").await.refresh_token;
        app.logout(&eve.user_id, &t).await.unwrap();
        assert_eq!(app.refresh(&t).await.unwrap_err().status(), 401);
        // AND an unknown token changes nothing
        let before = app.store.contents();
        app.logout(&eve.user_id, &RefreshSecret::from("unknown".to_owned()))
            .await
            .unwrap();
        assert_eq!(app.store.contents(), before);
    }

    #[tokio::test]
    async fn patch_changes_settings_and_email_with_an_event() {
        // GIVEN alice and bob
        let app = app();
        let alice = registered(&app, "alice").await;
        registered(&app, "bob").await;

        // WHEN alice changes her email and language
        let patch = AccountPatch {
            email: Some(email("New@Example.com")),
            settings: Some(SettingsPatch {
                language: Some(Language::try_from("pt-BR".to_owned()).unwrap()),
                ..SettingsPatch::default()
            }),
            current_password: Some(attempt(PASSWORD)),
        };
        let after = app
            .update_account(&alice.user_id, &patch, "corr")
            .await
            .unwrap();
        // THEN both change, untouched settings stay, and UserEmailChanged goes out
        assert_eq!(after.email.as_str(), "new@example.com");
        assert_eq!(
            after.settings.language,
            Language::try_from("pt-BR".to_owned()).unwrap()
        );
        assert!(
            after.settings.email_notifications,
            "untouched settings stay"
        );
        assert_eq!(app.account_of(&alice.user_id).await.unwrap(), after);
        let last = app.store.events().pop().unwrap();
        assert_eq!(
            last.event,
            Event::UserEmailChanged(shutter_events::UserEmailChanged {
                user_id: alice.user_id.clone()
            })
        );
        // AND the new address logs in; the old one is free
        let contents = app.store.contents();
        assert_eq!(contents.emails.get("new@example.com"), Some(&alice.user_id));
        assert!(!contents.emails.contains_key("alice@example.com"));

        // WHEN the patch is empty THEN nothing is written and no event goes out
        let before = app.store.contents();
        let same = app
            .update_account(&alice.user_id, &AccountPatch::default(), "c")
            .await
            .unwrap();
        assert_eq!((same.email, same.settings), (after.email, after.settings));
        assert_eq!(app.store.contents(), before);
    }

    #[tokio::test]
    async fn a_taken_email_changes_nothing_not_even_the_settings_of_the_same_patch() {
        // GIVEN alice and bob
        let app = app();
        let alice = registered(&app, "alice").await;
        registered(&app, "bob").await;
        let before = app.store.contents();
        // WHEN alice asks for bob's email and new settings at once
        let patch = AccountPatch {
            email: Some(email("bob@example.com")),
            settings: Some(SettingsPatch {
                push_notifications: Some(false),
                ..SettingsPatch::default()
            }),
            current_password: Some(attempt(PASSWORD)),
        };
        let err = app
            .update_account(&alice.user_id, &patch, "c")
            .await
            .unwrap_err();
        // THEN 409 email_taken, and nothing changed
        assert_eq!(
            code(&err),
            (409, "email_taken".into(), Some("email".into()))
        );
        assert_eq!(app.store.contents(), before);
    }

    #[tokio::test]
    async fn password_change_checks_the_current_one_and_bumps_the_epoch() {
        // GIVEN alice with a session
        let app = app();
        let alice = registered(&app, "alice").await;
        let t = logged_in(&app, "alice").await.refresh_token;
        let before = app.store.contents();

        // WHEN the current password given is wrong
        let err = app
            .change_password(
                &alice.user_id,
                &attempt("not it at all"),
                &new_password("another long one"),
            )
            .await
            .unwrap_err();
        // THEN 403 password_mismatch on current_password, and nothing changed
        assert_eq!(
            code(&err),
            (
                403,
                "password_mismatch".into(),
                Some("current_password".into())
            )
        );
        assert_eq!(app.store.contents(), before);
        assert!(app.refresh(&t).await.is_ok(), "the session lives on");

        // WHEN it is right THEN the new password is stored and the epoch moves
        app.change_password(
            &alice.user_id,
            &attempt(PASSWORD),
            &new_password("another long one"),
        )
        .await
        .unwrap();
        let after = app.account_of(&alice.user_id).await.unwrap();
        assert_eq!(after.refresh_epoch, alice.refresh_epoch + 1);
        assert!(password::verify(
            &attempt("another long one"),
            &after.password_hash
        ));
        assert!(!password::verify(&attempt(PASSWORD), &after.password_hash));
    }

    #[tokio::test]
    async fn deletion_needs_the_password_and_emits_user_deleted() {
        // GIVEN alice with a session
        let app = app();
        let alice = registered(&app, "alice").await;
        let t = logged_in(&app, "alice").await.refresh_token;
        let before = app.store.contents();

        // WHEN she confirms with a wrong password
        let refused = app
            .delete_account(&alice.user_id, &attempt("guess guess guess"), "c")
            .await
            .unwrap_err();
        // THEN 403 password_mismatch on password, and nothing changed
        assert_eq!(
            code(&refused),
            (403, "password_mismatch".into(), Some("password".into()))
        );
        assert_eq!(app.store.contents(), before);

        // WHEN she confirms with hers THEN the account is gone, with UserDeleted
        app.delete_account(&alice.user_id, &attempt(PASSWORD), "corr")
            .await
            .unwrap();
        let last = app.store.events().pop().unwrap();
        assert_eq!(
            (last.event_type(), last.aggregate_id.as_str()),
            (EventType::UserDeleted, alice.user_id.as_str())
        );
        let Event::UserDeleted(gone) = &last.event else {
            panic!("UserDeleted")
        };
        assert_eq!(gone.username, "alice");
        // AND her account, her session and her login are gone; her email is free again,
        // her username is quarantined
        let err = app.account_of(&alice.user_id).await.unwrap_err();
        assert_eq!(err.status(), 404);
        assert_eq!(app.refresh(&t).await.unwrap_err().status(), 401);
        let login = app
            .login(&Login::Username(username("alice")), &attempt(PASSWORD))
            .await;
        assert_eq!(login.unwrap_err().status(), 401);
        let pw = new_password(PASSWORD);
        let reused = app
            .register(username("ALICE"), email("other@example.com"), &pw, "c")
            .await
            .unwrap_err();
        assert_eq!(
            code(&reused),
            (409, "username_taken".into(), Some("username".into()))
        );
        let mail_again = app
            .register(username("alice3"), email("alice@example.com"), &pw, "c")
            .await
            .unwrap();
        assert!(matches!(mail_again, Registration::Created(_)));
    }

    #[tokio::test]
    async fn a_quarantined_username_is_free_once_the_quarantine_ends() {
        // GIVEN a service whose quarantine is over at once, and a deleted alice
        let app = App {
            quarantine: UsernameQuarantine::days(0.0).unwrap(),
            ..app()
        };
        let alice = registered(&app, "alice").await;
        app.delete_account(&alice.user_id, &attempt(PASSWORD), "c")
            .await
            .unwrap();
        // WHEN someone else registers the name THEN it is theirs, with a new id
        let pw = new_password(PASSWORD);
        let next = app
            .register(username("alice"), email("next@example.com"), &pw, "c")
            .await
            .unwrap()
            .created()
            .unwrap();
        assert_ne!(next.user_id, alice.user_id);
        let session = app
            .login(&Login::Username(username("alice")), &attempt(PASSWORD))
            .await;
        assert!(
            session
                .unwrap()
                .access_token
                .contains(next.user_id.as_str())
        );
        assert!(app.store.contents().quarantined.is_empty());
    }

    #[tokio::test]
    async fn an_email_change_needs_the_current_password() {
        // GIVEN alice
        let app = app();
        let alice = registered(&app, "alice").await;
        let before = app.store.contents();
        let patch = |current_password: Option<&str>| AccountPatch {
            email: Some(email("thief@example.com")),
            settings: None,
            current_password: current_password.map(attempt),
        };
        // WHEN the email is changed without the password, or with a wrong one
        let missing = app
            .update_account(&alice.user_id, &patch(None), "c")
            .await
            .unwrap_err();
        let wrong = app
            .update_account(&alice.user_id, &patch(Some("guess guess guess")), "c")
            .await
            .unwrap_err();
        let huge = "x".repeat(2000);
        let too_long = app
            .update_account(&alice.user_id, &patch(Some(&huge)), "c")
            .await
            .unwrap_err();
        // THEN 400 naming current_password, then 403 password_mismatch, nothing changed
        assert_eq!(
            code(&missing),
            (400, "invalid_input".into(), Some("current_password".into()))
        );
        for err in [&wrong, &too_long] {
            assert_eq!(
                code(err),
                (
                    403,
                    "password_mismatch".into(),
                    Some("current_password".into())
                )
            );
        }
        assert_eq!(app.store.contents(), before);
        // WHEN it is given THEN the email moves
        let after = app
            .update_account(&alice.user_id, &patch(Some(PASSWORD)), "c")
            .await
            .unwrap();
        assert_eq!(after.email.as_str(), "thief@example.com");
    }

    #[tokio::test]
    async fn a_deleted_account_cannot_be_changed() {
        // GIVEN a deleted account
        let app = app();
        let alice = registered(&app, "alice").await;
        app.delete_account(&alice.user_id, &attempt(PASSWORD), "c")
            .await
            .unwrap();
        let before = app.store.contents();
        // WHEN its owner's token is used to change it THEN 404 each time, nothing changes
        let patch = AccountPatch {
            email: Some(email("new@example.com")),
            settings: None,
            current_password: Some(attempt(PASSWORD)),
        };
        let patched = app.update_account(&alice.user_id, &patch, "c").await;
        assert_eq!(patched.unwrap_err().status(), 404);
        let changed = app
            .change_password(
                &alice.user_id,
                &attempt(PASSWORD),
                &new_password("another long one"),
            )
            .await;
        assert_eq!(changed.unwrap_err().status(), 404);
        let deleted = app
            .delete_account(&alice.user_id, &attempt(PASSWORD), "c")
            .await;
        assert_eq!(deleted.unwrap_err().status(), 404);
        assert_eq!(app.store.contents(), before);
    }
}
