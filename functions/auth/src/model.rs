//! What the identity table holds, as the services see it.

use serde::{Deserialize, Serialize};
use shutter_core::validate::{Email, Username};

/// One user's account: login identifiers, password hash, roles and settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Account {
    pub user_id: String,
    pub username: Username,
    pub email: Email,
    pub password_hash: String,
    pub roles: Vec<String>,
    #[serde(default)]
    pub settings: Settings,
    /// Bumped to revoke every refresh token at once (password change, deletion).
    pub refresh_epoch: u64,
    pub created_at: String,
    pub updated_at: String,
}

impl Account {
    /// The `scope` claim: one scope per role.
    pub fn scope(&self) -> String {
        self.roles.join(" ")
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

/// A stored refresh token (the token itself is never stored, only its SHA-256).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefreshToken {
    pub token_hash: String,
    pub user_id: String,
    pub family_id: String,
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

/// `UserRegistered` payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRegistered {
    pub user_id: String,
    pub username: String,
    pub created_at: String,
}

/// `UserDeleted` payload: every service erases what it holds of the user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserDeleted {
    pub user_id: String,
    pub username: String,
}

/// `UserEmailChanged` payload. The address itself stays in the identity table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserEmailChanged {
    pub user_id: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn language_tags() {
        for ok in ["en", "pt-BR", "fil"] {
            assert!(Language::try_from(ok.to_owned()).is_ok(), "{ok}");
        }
        for bad in ["", "EN", "english", "pt-br", "pt-BR-x"] {
            assert!(Language::try_from(bad.to_owned()).is_err(), "{bad}");
        }
    }
}
