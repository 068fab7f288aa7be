//! What the identity service knows: accounts, their settings, refresh tokens, and the
//! rules over them. Pure: nothing here does I/O (the randomness of a new token aside).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use shutter_core::UserId;
use shutter_core::validate::{Email, PasswordAttempt, Username};
use shutter_events::{
    Event, RegistrationWithTakenEmail, UserDeleted, UserEmailChanged, UserRegistered,
};

/// Refresh tokens and their families are kept 30 days.
pub const REFRESH_TTL_SECONDS: i64 = 30 * 24 * 3600;

/// How long a username stays unavailable once no account holds it: after its account is
/// deleted, and after a registration that asked for it created nothing (its email was
/// another account's). Others still know the name (mentions, links, followers), so a new
/// owner right away could pass for the old one; and a registration that took the name
/// whether or not it created an account does not tell who owns an email. The template's
/// `UsernameQuarantineDays` (30 by default; longer than any service keeps a tombstone).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UsernameQuarantine {
    seconds: i64,
}

impl UsernameQuarantine {
    pub const DEFAULT_DAYS: f64 = 30.0;

    /// A quarantine of `days` (fractions allowed, so tests can shorten it to seconds);
    /// `None` unless from 0 to 100 years (NaN is in no range).
    pub fn days(days: f64) -> Option<Self> {
        (0.0..=36_500.0).contains(&days).then(|| Self {
            seconds: (days * 86_400.0).round() as i64,
        })
    }

    /// When a name released at `now` (epoch seconds) is free again.
    pub fn free_at(self, now: i64) -> i64 {
        now + self.seconds
    }
}

impl Default for UsernameQuarantine {
    fn default() -> Self {
        Self {
            seconds: 30 * 24 * 3600,
        }
    }
}

/// The roles of a newly registered account.
const DEFAULT_ROLE: &str = "user";

/// An argon2id PHC string. Not a secret, but nothing gains from printing it either.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PasswordHash(String);

impl PasswordHash {
    /// A hash as the hasher wrote it (see [`crate::password`]).
    pub fn new(phc: String) -> Self {
        Self(phc)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PasswordHash(..)")
    }
}

/// One user's account: login identifiers, password hash, roles and settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Account {
    pub user_id: UserId,
    pub username: Username,
    pub email: Email,
    pub password_hash: PasswordHash,
    pub roles: Vec<String>,
    #[serde(default)]
    pub settings: Settings,
    /// Bumped to revoke every refresh token at once (password change, deletion,
    /// suspension).
    pub refresh_epoch: u64,
    /// Written by staff (the moderation service): while it holds, login and refresh are
    /// refused with 403 `account_suspended`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspension: Option<Suspension>,
    pub created_at: String,
    pub updated_at: String,
}

/// What identity reads of an account's suspension (moderation writes it, with more).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Suspension {
    pub banned: bool,
    /// RFC 3339; absent for a ban
    #[serde(default)]
    pub until: Option<String>,
}

impl Account {
    /// 403 `account_suspended` while a suspension or ban holds at `now` (RFC 3339).
    pub fn refuse_suspended(&self, now: &str) -> Result<(), shutter_core::ApiError> {
        match &self.suspension {
            Some(s) if s.banned => Err(shutter_core::ApiError::AccountSuspended { until: None }),
            Some(Suspension {
                until: Some(until), ..
            }) if until.as_str() > now => Err(shutter_core::ApiError::AccountSuspended {
                until: Some(until.clone()),
            }),
            _ => Ok(()),
        }
    }

    /// A new account with a fresh id, the `user` role and default settings, created `at`.
    pub fn register(
        username: Username,
        email: Email,
        password_hash: PasswordHash,
        at: &str,
    ) -> Self {
        Self {
            user_id: UserId::generate(),
            username,
            email,
            password_hash,
            roles: vec![DEFAULT_ROLE.to_owned()],
            settings: Settings::default(),
            refresh_epoch: 0,
            suspension: None,
            created_at: at.to_owned(),
            updated_at: at.to_owned(),
        }
    }

    /// The `scope` claim: one scope per role.
    pub fn scope(&self) -> String {
        self.roles.join(" ")
    }

    /// What applying `patch` would change: only what differs from the account now, so an
    /// empty patch (or one restating the current values) changes nothing.
    pub fn change(&self, patch: &AccountPatch) -> AccountChange {
        let settings = patch
            .settings
            .as_ref()
            .map(|s| self.settings.patched(s))
            .filter(|s| *s != self.settings);
        let email = patch.email.clone().filter(|e| *e != self.email);
        AccountChange { settings, email }
    }

    /// The account after `change`, at `at`.
    pub fn changed(mut self, change: &AccountChange, at: &str) -> Self {
        if let Some(settings) = &change.settings {
            self.settings = settings.clone();
        }
        if let Some(email) = &change.email {
            self.email = email.clone();
        }
        self.updated_at = at.to_owned();
        self
    }

    /// `UserRegistered`: the profile and search services start from it.
    pub fn registered(&self) -> Event {
        Event::UserRegistered(UserRegistered {
            user_id: self.user_id.clone(),
            username: self.username.to_string(),
            created_at: self.created_at.clone(),
        })
    }

    /// `UserEmailChanged` (the address itself stays here).
    pub fn email_changed(&self) -> Event {
        Event::UserEmailChanged(UserEmailChanged {
            user_id: self.user_id.clone(),
        })
    }

    /// `UserDeleted`: every service erases what it holds of the user.
    pub fn deleted(&self) -> Event {
        Event::UserDeleted(UserDeleted {
            user_id: self.user_id.clone(),
            username: self.username.to_string(),
        })
    }
}

/// `RegistrationWithTakenEmail`: someone asked for `username` with the email of `owner`'s
/// account, `at`.
pub fn registration_with_taken_email(owner: &UserId, username: &Username, at: &str) -> Event {
    Event::RegistrationWithTakenEmail(RegistrationWithTakenEmail {
        user_id: owner.clone(),
        attempted_username: username.to_string(),
        at: at.to_owned(),
    })
}

/// A change of the caller's account, as asked: absent fields stay as they are.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccountPatch {
    pub email: Option<Email>,
    pub settings: Option<SettingsPatch>,
    /// The password, which a change of email needs (a stolen access token alone must not
    /// move the account to another address).
    pub current_password: Option<PasswordAttempt>,
}

// A change of some settings; absent fields stay as they are. (A plain comment: a doc
// comment would become its description in the OpenAPI document.)
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SettingsPatch {
    pub email_notifications: Option<bool>,
    pub push_notifications: Option<bool>,
    pub language: Option<Language>,
}

/// What an [`AccountPatch`] actually changes: the new settings and the new email, each
/// only when it differs from the account's.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccountChange {
    pub settings: Option<Settings>,
    pub email: Option<Email>,
}

impl AccountChange {
    pub fn is_empty(&self) -> bool {
        self.settings.is_none() && self.email.is_none()
    }
}

/// User settings (the users service edits them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub email_notifications: bool,
    pub push_notifications: bool,
    pub language: Language,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            email_notifications: true,
            push_notifications: true,
            language: Language("en".to_owned()),
        }
    }
}

impl Settings {
    /// These settings with `patch`'s fields replaced.
    pub fn patched(&self, patch: &SettingsPatch) -> Settings {
        Settings {
            email_notifications: patch
                .email_notifications
                .unwrap_or(self.email_notifications),
            push_notifications: patch.push_notifications.unwrap_or(self.push_notifications),
            language: patch
                .language
                .clone()
                .unwrap_or_else(|| self.language.clone()),
        }
    }
}

/// A language tag such as `en` or `pt-BR`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Language(String);

impl TryFrom<String> for Language {
    type Error = String;
    fn try_from(raw: String) -> Result<Self, String> {
        let mut parts = raw.split('-');
        let lang = parts.next().unwrap_or("");
        let region = parts.next();
        let ok = (2..=3).contains(&lang.len())
            && lang.chars().all(|c| c.is_ascii_lowercase())
            && region.is_none_or(|r| r.len() == 2 && r.chars().all(|c| c.is_ascii_uppercase()))
            && parts.next().is_none();
        if ok {
            Ok(Self(raw))
        } else {
            Err("must be a language tag like 'en' or 'pt-BR'".to_owned())
        }
    }
}

impl utoipa::PartialSchema for Language {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .description(Some("A language tag such as `en` or `pt-BR`"))
            .pattern(Some("^[a-z]{2,3}(-[A-Z]{2})?$"))
            .into()
    }
}
impl utoipa::ToSchema for Language {}

impl From<Language> for String {
    fn from(l: Language) -> String {
        l.0
    }
}

/// An opaque refresh token as the client holds it: 256 random bits. It is a bearer
/// secret, so like a password it cannot be printed; only its [`TokenHash`] is stored.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct RefreshSecret(String);

impl RefreshSecret {
    /// A fresh token.
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut bytes);
        Self(URL_SAFE_NO_PAD.encode(bytes))
    }

    /// The token's text, to hand it to its client once.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The key it is stored under.
    pub fn hash(&self) -> TokenHash {
        TokenHash::of(&self.0)
    }
}

impl From<String> for RefreshSecret {
    fn from(raw: String) -> Self {
        Self(raw)
    }
}

impl std::fmt::Debug for RefreshSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RefreshSecret(..)")
    }
}

/// The SHA-256 of a refresh token, lower-case hex: its storage key. The tokens carry 256
/// bits of entropy, so a plain hash is a safe lookup key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TokenHash(String);

impl TokenHash {
    pub fn of(token: &str) -> Self {
        let digest = Sha256::digest(token.as_bytes());
        Self(digest.iter().map(|b| format!("{b:02x}")).collect())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A session: every token rotated from one login shares its family, and revoking the
/// family ends the session.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct FamilyId(String);

impl FamilyId {
    pub fn generate() -> Self {
        Self(shutter_core::new_id())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A stored refresh token (the token itself is never stored, only its SHA-256).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefreshToken {
    pub token_hash: TokenHash,
    pub user_id: UserId,
    pub family_id: FamilyId,
    pub status: RefreshStatus,
    /// The account's `refresh_epoch` when issued; a bumped epoch invalidates it.
    pub epoch: u64,
    pub expires_at: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefreshStatus {
    Active,
    Rotated,
}

impl RefreshToken {
    /// A new token of `family` for `account` (valid for the account's current epoch),
    /// issued at `now` (epoch seconds): the secret for the client and the record to store.
    pub fn issue(account: &Account, family: FamilyId, now: i64) -> (RefreshSecret, RefreshToken) {
        let secret = RefreshSecret::generate();
        let record = RefreshToken {
            token_hash: secret.hash(),
            user_id: account.user_id.clone(),
            family_id: family,
            status: RefreshStatus::Active,
            epoch: account.refresh_epoch,
            expires_at: now + REFRESH_TTL_SECONDS,
        };
        (secret, record)
    }

    /// A token presented again after it was rotated was stolen or replayed: its whole
    /// family must go.
    pub fn is_replayed(&self) -> bool {
        self.status == RefreshStatus::Rotated
    }

    /// Only the token's owner may end its session.
    pub fn belongs_to(&self, user: &UserId) -> bool {
        self.user_id == *user
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// An account for tests (its password hash is empty: no password matches it).
    pub fn account(username: &str) -> Account {
        Account::register(
            username.to_owned().try_into().unwrap(),
            format!("{username}@example.com").try_into().unwrap(),
            PasswordHash::new(String::new()),
            &shutter_core::now_rfc3339(),
        )
    }

    fn language(tag: &str) -> Language {
        Language::try_from(tag.to_owned()).unwrap()
    }

    #[test]
    fn language_tags() {
        for ok in ["en", "pt-BR", "fil"] {
            assert!(Language::try_from(ok.to_owned()).is_ok(), "{ok}");
        }
        for bad in ["", "EN", "english", "pt-br", "pt-BR-x"] {
            assert!(Language::try_from(bad.to_owned()).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_new_account_is_a_user_with_default_settings() {
        // GIVEN a registration WHEN the account is made
        let a = account("alice");
        // THEN it has the user role (one scope), epoch 0 and the default settings
        assert_eq!(a.scope(), "user");
        assert_eq!(a.refresh_epoch, 0);
        assert_eq!(a.settings, Settings::default());
        assert_eq!(a.created_at, a.updated_at);
        assert_eq!(a.settings.language, language("en"));
    }

    #[test]
    fn a_patch_changes_only_what_differs() {
        let a = account("alice");
        // GIVEN an empty patch, or one restating the current values THEN nothing changes
        assert!(a.change(&AccountPatch::default()).is_empty());
        let same = AccountPatch {
            email: Some(a.email.clone()),
            settings: Some(SettingsPatch {
                email_notifications: Some(true),
                ..SettingsPatch::default()
            }),
            current_password: None,
        };
        assert!(a.change(&same).is_empty());

        // GIVEN a new language WHEN patched THEN only the language changes
        let patch = AccountPatch {
            email: None,
            settings: Some(SettingsPatch {
                language: Some(language("pt-BR")),
                ..SettingsPatch::default()
            }),
            current_password: None,
        };
        let change = a.change(&patch);
        let settings = change.settings.clone().unwrap();
        assert_eq!(settings.language, language("pt-BR"));
        assert!(settings.email_notifications && settings.push_notifications);
        assert_eq!(change.email, None);

        // AND the changed account carries it, with the time of the change
        let after = a.clone().changed(&change, "2030-01-01T00:00:00.000Z");
        assert_eq!(after.settings, settings);
        assert_eq!(after.email, a.email);
        assert_eq!(after.updated_at, "2030-01-01T00:00:00.000Z");
    }

    #[test]
    fn a_quarantine_is_days_from_the_release_and_may_be_shortened() {
        assert_eq!(UsernameQuarantine::default().free_at(0), 30 * 86_400);
        assert_eq!(
            UsernameQuarantine::days(UsernameQuarantine::DEFAULT_DAYS),
            Some(UsernameQuarantine::default())
        );
        assert_eq!(UsernameQuarantine::days(0.0).unwrap().free_at(100), 100);
        assert_eq!(UsernameQuarantine::days(0.0001).unwrap().free_at(0), 9);
        for bad in [-1.0, f64::NAN, f64::INFINITY, 1e9] {
            assert_eq!(UsernameQuarantine::days(bad), None, "{bad}");
        }
    }

    #[test]
    fn events_carry_the_catalogue_payloads() {
        let a = account("alice");
        let Event::UserRegistered(r) = a.registered() else {
            panic!("UserRegistered")
        };
        assert_eq!(
            (r.user_id, r.username.as_str()),
            (a.user_id.clone(), "alice")
        );
        assert_eq!(r.created_at, a.created_at);
        assert_eq!(
            a.deleted(),
            Event::UserDeleted(UserDeleted {
                user_id: a.user_id.clone(),
                username: "alice".into()
            })
        );
        assert_eq!(a.email_changed().aggregate_id(), a.user_id.as_str());
    }

    #[test]
    fn refresh_tokens_are_stored_by_hash_and_never_printed() {
        // GIVEN an account WHEN a token is issued
        let a = account("bob");
        let (secret, record) = RefreshToken::issue(&a, FamilyId::generate(), 1_000);
        // THEN the record holds its hash, the account's epoch and a 30-day expiry
        assert_eq!(record.token_hash, TokenHash::of(secret.expose()));
        assert_eq!(record.token_hash.as_str().len(), 64);
        assert_eq!(record.epoch, a.refresh_epoch);
        assert_eq!(record.expires_at, 1_000 + 30 * 24 * 3600);
        assert!(!record.is_replayed() && record.belongs_to(&a.user_id));
        assert!(!record.belongs_to(&UserId::generate()));
        // AND the secret is 256 bits, base64url, and its Debug shows none of it
        assert_eq!(secret.expose().len(), 43);
        assert_eq!(format!("{secret:?}"), "RefreshSecret(..)");
        let (other, _) = RefreshToken::issue(&a, record.family_id.clone(), 1_000);
        assert_ne!(secret, other);
        // AND a rotated one is a replay
        let rotated = RefreshToken {
            status: RefreshStatus::Rotated,
            ..record
        };
        assert!(rotated.is_replayed());
    }

    #[test]
    fn stored_forms_keep_their_attribute_names() {
        let mut a = account("carol");
        a.password_hash = PasswordHash::new("$argon2id$v=19$stand-in".to_owned());
        let json = serde_json::to_value(&a).unwrap();
        for field in [
            "user_id",
            "username",
            "email",
            "password_hash",
            "roles",
            "settings",
            "refresh_epoch",
            "created_at",
            "updated_at",
        ] {
            assert!(json.get(field).is_some(), "{field}");
        }
        assert_eq!(json["password_hash"], "$argon2id$v=19$stand-in");
        assert!(!format!("{a:?}").contains("$argon2"));
        let (_, token) = RefreshToken::issue(&a, FamilyId::generate(), 0);
        let json = serde_json::to_value(&token).unwrap();
        assert_eq!(json["status"], "active");
        assert!(json["token_hash"].is_string() && json["family_id"].is_string());
    }
}
