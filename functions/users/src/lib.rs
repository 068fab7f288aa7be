//! The users service: a user's own account. Every route acts on the caller only (the id
//! comes from the verified token), so no one can read or change another's account.
//!
//! It shares the identity table with auth through auth's [`IdentityStore`] port, because
//! an email change must check the same uniqueness items that registration and login use.

use serde::{Deserialize, Serialize};
use shutter_auth::model::{Account, Language, Settings, UserDeleted, UserEmailChanged};
use shutter_auth::password;
use shutter_auth::store::IdentityStore;
use shutter_core::ApiError;
#[allow(unused_imports)] // the OpenAPI attributes name it
use shutter_core::Problem;
use shutter_core::validate::{Email, Password};
use shutter_events::legacy::Envelope;
use shutter_http::lambda_http::http::StatusCode;
use shutter_http::lambda_http::{Body, Request, Response};
use shutter_http::{ApiRequest, Caller, json, no_content};
use utoipa::ToSchema;

type ApiResult = Result<Response<Body>, ApiError>;

/// The account as its owner sees it (never the password hash).
#[derive(Debug, Serialize, ToSchema)]
pub struct AccountView<'a> {
    pub id: &'a str,
    pub username: &'a str,
    pub email: &'a str,
    pub roles: &'a [String],
    pub settings: &'a Settings,
    pub created_at: &'a str,
    pub updated_at: &'a str,
}

impl<'a> From<&'a Account> for AccountView<'a> {
    fn from(a: &'a Account) -> Self {
        Self {
            id: &a.user_id,
            username: a.username.as_str(),
            email: a.email.as_str(),
            roles: &a.roles,
            settings: &a.settings,
            created_at: &a.created_at,
            updated_at: &a.updated_at,
        }
    }
}

async fn own_account<S: IdentityStore>(store: &S, caller: &Caller) -> Result<Account, ApiError> {
    store
        .account(&caller.user_id)
        .await?
        .ok_or(ApiError::NotFound("account"))
}

/// `GET /v1/users/me`
#[utoipa::path(
    get, path = "/v1/users/me", tag = "users", security(("bearer" = ["user"])),
    summary = "Your account",
    responses((status = 200, description = "Your account (never the password hash)", body = AccountView<'static>), (status = 404, description = "The account no longer exists", body = Problem, content_type = "application/problem+json"))
)]
pub async fn me<S: IdentityStore>(store: &S, req: Request) -> ApiResult {
    let caller = Caller::from_request(&req)?;
    let account = own_account(store, &caller).await?;
    json(StatusCode::OK, &AccountView::from(&account))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct SettingsPatch {
    email_notifications: Option<bool>,
    push_notifications: Option<bool>,
    language: Option<Language>,
}

/// What to change; absent or null fields stay as they are.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct AccountPatch {
    email: Option<Email>,
    settings: Option<SettingsPatch>,
}

/// `PATCH /v1/users/me` {email?, settings?} -> 200 with the account. Absent or null
/// fields are unchanged, so an empty patch changes nothing.
#[utoipa::path(
    patch, path = "/v1/users/me", tag = "users", security(("bearer" = ["user"])),
    summary = "Change your email or settings",
    request_body(content = AccountPatch, example = json!({"settings": {"language": "pt-BR", "push_notifications": false}})),
    responses(
        (status = 200, description = "The account after the change", body = AccountView<'static>),
        (status = 409, description = "`email_taken`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "The account no longer exists", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn update_me<S: IdentityStore>(store: &S, req: Request) -> ApiResult {
    let caller = Caller::from_request(&req)?;
    let patch: AccountPatch = req.json()?;
    let mut account = own_account(store, &caller).await?;
    if let Some(s) = patch.settings {
        let mut settings = account.settings.clone();
        if let Some(v) = s.email_notifications {
            settings.email_notifications = v;
        }
        if let Some(v) = s.push_notifications {
            settings.push_notifications = v;
        }
        if let Some(v) = s.language {
            settings.language = v;
        }
        if settings != account.settings {
            store.update_settings(&account.user_id, &settings).await?;
            account.settings = settings;
        }
    }
    if let Some(email) = patch.email.filter(|e| *e != account.email) {
        let event = Envelope::new(
            "UserEmailChanged",
            &account.user_id,
            Some(&caller.user_id),
            &req.correlation_id(),
            &UserEmailChanged {
                user_id: account.user_id.clone(),
            },
        );
        store.change_email(&account, &email, &event).await?;
        account.email = email;
    }
    account.updated_at = shutter_core::now_rfc3339();
    json(StatusCode::OK, &AccountView::from(&account))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct PasswordChange {
    current_password: String,
    new_password: Password,
}

impl std::fmt::Debug for PasswordChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PasswordChange(..)")
    }
}

/// `POST /v1/users/me/password` {current_password, new_password} -> 204; every refresh
/// token of the account stops working.
#[utoipa::path(
    post, path = "/v1/users/me/password", tag = "users", security(("bearer" = ["user"])),
    summary = "Change your password (ends every session)",
    request_body = PasswordChange,
    responses((status = 204, description = "Changed; every refresh token of the account is revoked"), (status = 403, description = "`password_mismatch`: the password (named in `field`) is wrong", body = Problem, content_type = "application/problem+json"), (status = 404, description = "The account no longer exists", body = Problem, content_type = "application/problem+json"))
)]
pub async fn change_password<S: IdentityStore>(store: &S, req: Request) -> ApiResult {
    let caller = Caller::from_request(&req)?;
    let body: PasswordChange = req.json()?;
    let account = own_account(store, &caller).await?;
    if !password::verify(&body.current_password, &account.password_hash) {
        return Err(ApiError::PasswordMismatch("current_password"));
    }
    store
        .change_password(&account, &password::hash(&body.new_password)?)
        .await?;
    tracing::info!(user_id = %account.user_id, "password changed; sessions revoked");
    no_content()
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct DeleteConfirmation {
    password: String,
}

impl std::fmt::Debug for DeleteConfirmation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DeleteConfirmation(..)")
    }
}

/// `DELETE /v1/users/me` {password} -> 204. Erases the account and emits `UserDeleted`,
/// which every service that holds the user's data consumes. The password is asked again
/// so a stolen access token cannot delete an account.
#[utoipa::path(
    delete, path = "/v1/users/me", tag = "users", security(("bearer" = ["user"])),
    summary = "Delete your account and its data everywhere",
    request_body = DeleteConfirmation,
    responses((status = 204, description = "Deleted; `UserDeleted` erases the user's data in every service"), (status = 403, description = "`password_mismatch`: the password (named in `field`) is wrong", body = Problem, content_type = "application/problem+json"), (status = 404, description = "The account no longer exists", body = Problem, content_type = "application/problem+json"))
)]
pub async fn delete_me<S: IdentityStore>(store: &S, req: Request) -> ApiResult {
    let caller = Caller::from_request(&req)?;
    let body: DeleteConfirmation = req.json()?;
    let account = own_account(store, &caller).await?;
    if !password::verify(&body.password, &account.password_hash) {
        return Err(ApiError::PasswordMismatch("password"));
    }
    let event = Envelope::new(
        "UserDeleted",
        &account.user_id,
        Some(&caller.user_id),
        &req.correlation_id(),
        &UserDeleted {
            user_id: account.user_id.clone(),
            username: account.username.to_string(),
        },
    );
    store.delete_account(&account, &event).await?;
    tracing::info!(user_id = %account.user_id, "account deleted");
    no_content()
}

#[cfg(test)]
mod tests {
    use super::*;
    use shutter_auth::store::memory::{MemoryIdentityStore, test_account};
    use shutter_http::test_support::api_request;

    async fn with_user(store: &MemoryIdentityStore, name: &str) -> Account {
        let mut account = test_account(name);
        account.password_hash =
            password::hash(&Password::try_from("correct horse battery".to_owned()).unwrap())
                .unwrap();
        let event = Envelope::new(
            "UserRegistered",
            &account.user_id,
            None,
            "c",
            &serde_json::json!({}),
        );
        store.create_account(&account, &event).await.unwrap();
        account
    }

    fn as_user(a: &Account, method: &str, body: &str) -> Request {
        api_request(
            method,
            "/v1/users/me",
            &[],
            body,
            Some((&a.user_id, a.username.as_str(), "user")),
        )
    }

    fn body(resp: Response<Body>) -> serde_json::Value {
        serde_json::from_slice(resp.body().as_ref()).unwrap()
    }

    #[tokio::test]
    async fn me_needs_a_verified_caller_and_hides_the_hash() {
        let store = MemoryIdentityStore::default();
        let alice = with_user(&store, "alice").await;
        let me_json = body(me(&store, as_user(&alice, "GET", "")).await.unwrap());
        assert_eq!(me_json["username"], "alice");
        assert_eq!(me_json["email"], "alice@example.com");
        assert!(me_json.get("password_hash").is_none());
        let anonymous = api_request("GET", "/v1/users/me", &[], "", None);
        assert_eq!(me(&store, anonymous).await.unwrap_err().status(), 401);
    }

    #[tokio::test]
    async fn patch_changes_settings_and_email_with_an_event() {
        let store = MemoryIdentityStore::default();
        let alice = with_user(&store, "alice").await;
        with_user(&store, "bob").await;
        let resp = update_me(
            &store,
            as_user(
                &alice,
                "PATCH",
                r#"{"email":"New@Example.com","settings":{"language":"pt-BR"}}"#,
            ),
        )
        .await
        .unwrap();
        let j = body(resp);
        assert_eq!(
            (j["email"].as_str(), j["settings"]["language"].as_str()),
            (Some("new@example.com"), Some("pt-BR"))
        );
        assert_eq!(
            j["settings"]["email_notifications"], true,
            "untouched settings stay"
        );
        assert_eq!(
            store.events().last().unwrap().event_type,
            "UserEmailChanged"
        );

        let taken = update_me(
            &store,
            as_user(&alice, "PATCH", r#"{"email":"bob@example.com"}"#),
        )
        .await
        .unwrap_err();
        assert_eq!(
            (taken.status(), taken.problem().code.as_str()),
            (409, "email_taken")
        );
        let unchanged = update_me(&store, as_user(&alice, "PATCH", r#"{"email":null}"#)).await;
        assert_eq!(
            unchanged.unwrap().status(),
            200,
            "an empty patch changes nothing"
        );
        for (bad, field) in [
            (
                r#"{"settings":{"language":"klingon"}}"#,
                "settings.language",
            ),
            (r#"{"settings":{"theme":"dark"}}"#, "settings.theme"),
            (r#"{"email":"nope"}"#, "email"),
            (r#"{"roles":["admin"]}"#, "roles"),
        ] {
            let err = update_me(&store, as_user(&alice, "PATCH", bad))
                .await
                .unwrap_err();
            assert_eq!(err.status(), 400, "{bad}");
            assert_eq!(err.problem().field.as_deref(), Some(field), "{bad}");
        }
    }

    #[tokio::test]
    async fn password_change_checks_the_current_one_and_bumps_the_epoch() {
        let store = MemoryIdentityStore::default();
        let alice = with_user(&store, "alice").await;
        let wrong = as_user(
            &alice,
            "POST",
            r#"{"current_password":"not it at all","new_password":"another long one"}"#,
        );
        assert_eq!(
            change_password(&store, wrong)
                .await
                .unwrap_err()
                .problem()
                .field
                .as_deref(),
            Some("current_password")
        );
        let ok = as_user(
            &alice,
            "POST",
            r#"{"current_password":"correct horse battery","new_password":"another long one"}"#,
        );
        assert_eq!(change_password(&store, ok).await.unwrap().status(), 204);
        let after = store.account(&alice.user_id).await.unwrap().unwrap();
        assert_eq!(after.refresh_epoch, alice.refresh_epoch + 1);
        assert!(password::verify("another long one", &after.password_hash));
    }

    #[tokio::test]
    async fn deletion_needs_the_password_and_emits_user_deleted() {
        let store = MemoryIdentityStore::default();
        let alice = with_user(&store, "alice").await;
        let wrong = as_user(&alice, "DELETE", r#"{"password":"guess guess guess"}"#);
        let refused = delete_me(&store, wrong).await.unwrap_err();
        assert_eq!(
            (refused.status(), refused.problem().code.as_str()),
            (403, "password_mismatch")
        );
        assert!(store.account(&alice.user_id).await.unwrap().is_some());

        let ok = as_user(&alice, "DELETE", r#"{"password":"correct horse battery"}"#);
        assert_eq!(delete_me(&store, ok).await.unwrap().status(), 204);
        assert!(store.account(&alice.user_id).await.unwrap().is_none());
        let last = store.events().pop().unwrap();
        assert_eq!(
            (last.event_type.as_str(), last.aggregate_id.as_str()),
            ("UserDeleted", alice.user_id.as_str())
        );
        assert_eq!(
            me(&store, as_user(&alice, "GET", ""))
                .await
                .unwrap_err()
                .status(),
            404
        );
    }
}
