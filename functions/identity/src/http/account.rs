//! The account routes: a user's own account. Every route acts on the caller only (the id
//! comes from the verified token).

use serde::{Deserialize, Serialize};
use shutter_core::ApiError;
#[allow(unused_imports)] // the OpenAPI attributes name it
use shutter_core::Problem;
use shutter_core::validate::{Email, Password, PasswordAttempt};
use shutter_http::lambda_http::Request;
use shutter_http::lambda_http::http::StatusCode;
use shutter_http::{ApiRequest, Caller, json, no_content};
use utoipa::ToSchema;

use super::ApiResult;
use crate::App;
use crate::model::{Account, Settings, SettingsPatch};
use crate::store::IdentityStore;

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

/// `GET /v1/users/me`
#[utoipa::path(
    get, path = "/v1/users/me", tag = "users", security(("bearer" = ["user"])),
    summary = "Your account",
    responses((status = 200, description = "Your account (never the password hash)", body = AccountView<'static>), (status = 404, description = "The account no longer exists", body = Problem, content_type = "application/problem+json"))
)]
#[tracing::instrument(skip_all)]
pub async fn me<S: IdentityStore, T>(app: &App<S, T>, req: Request) -> ApiResult {
    let caller = Caller::from_request(&req)?;
    let account = app.account_of(&caller.user_id).await?;
    json(StatusCode::OK, &AccountView::from(&account))
}

/// What to change; absent or null fields stay as they are. `email` needs `current_password`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct AccountPatch {
    email: Option<Email>,
    settings: Option<SettingsPatch>,
    #[schema(value_type = Option<String>)]
    current_password: Option<PasswordAttempt>,
}

impl From<AccountPatch> for crate::model::AccountPatch {
    fn from(patch: AccountPatch) -> Self {
        Self {
            email: patch.email,
            settings: patch.settings,
            current_password: patch.current_password,
        }
    }
}

/// `PATCH /v1/users/me` {email?, settings?, current_password?} -> 200 with the account.
/// Absent or null fields are unchanged, so an empty patch changes nothing. An email
/// change needs the current password, so a stolen access token cannot move the account.
#[utoipa::path(
    patch, path = "/v1/users/me", tag = "users", security(("bearer" = ["user"])),
    summary = "Change your email or settings",
    description = "A patch with `email` needs `current_password` (400 naming it when absent, 403 `password_mismatch` when wrong; nothing changes either way).",
    request_body(content = AccountPatch, example = json!({"email": "new@example.com", "current_password": "correct horse battery", "settings": {"language": "pt-BR", "push_notifications": false}})),
    responses(
        (status = 200, description = "The account after the change", body = AccountView<'static>),
        (status = 403, description = "`password_mismatch`: `current_password` is wrong; `account_suspended`: staff suspended or banned the account", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`email_taken`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "The account no longer exists", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "`rate_limited`: too many password checks (login, password change, account deletion, email change) of this account (`password_checks`) or from this address (`password_checks_per_address`); nothing was checked or changed (a patch without `current_password` is not counted)", body = Problem, content_type = "application/problem+json", headers(("Retry-After" = u64, description = "Seconds until a retry can pass"), ("RateLimit-Policy" = String, description = "This route's limits, each `\"name-window\";q=quota;w=seconds` (IETF RateLimit fields; on every answer of the route)"), ("RateLimit" = String, description = "What remains of each limit and when it resets, `\"name-window\";r=remaining;t=seconds`")))
    )
)]
#[tracing::instrument(skip_all)]
pub async fn update_me<S: IdentityStore, T>(app: &App<S, T>, req: Request) -> ApiResult {
    let caller = Caller::from_request(&req)?;
    let patch: AccountPatch = req.json()?;
    let account = app
        .update_account(&caller.user_id, &patch.into(), &req.correlation_id())
        .await?;
    json(StatusCode::OK, &AccountView::from(&account))
}

/// How `PATCH /v1/users/me` is counted by its rate limits: as a password check when it
/// carries `current_password` (an email change), not at all otherwise (settings).
pub async fn update_rate_scope<S, T>(
    _: &App<S, T>,
    body: Vec<u8>,
) -> Result<shutter_ratelimit::Scope, ApiError> {
    let checks_password = serde_json::from_slice::<serde_json::Value>(&body)
        .is_ok_and(|patch| !patch["current_password"].is_null());
    Ok(if checks_password {
        shutter_ratelimit::Scope::usual()
    } else {
        shutter_ratelimit::Scope::Skip
    })
}

// Its Debug shows neither password. (Plain comments here: doc comments would change
// the OpenAPI document, and the attempt is a plain string there.)
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct PasswordChange {
    #[schema(value_type = String)]
    current_password: PasswordAttempt,
    new_password: Password,
}

/// `POST /v1/users/me/password` {current_password, new_password} -> 204; every refresh
/// token of the account stops working.
#[utoipa::path(
    post, path = "/v1/users/me/password", tag = "users", security(("bearer" = ["user"])),
    summary = "Change your password (ends every session)",
    request_body = PasswordChange,
    responses((status = 204, description = "Changed; every refresh token of the account is revoked"), (status = 403, description = "`password_mismatch`: the password (named in `field`) is wrong; `account_suspended`: staff suspended or banned the account", body = Problem, content_type = "application/problem+json"), (status = 404, description = "The account no longer exists", body = Problem, content_type = "application/problem+json"), (status = 429, description = "`rate_limited`: too many password checks (login, password change, account deletion, email change) of this account (`password_checks`) or from this address (`password_checks_per_address`); nothing was checked or changed", body = Problem, content_type = "application/problem+json", headers(("Retry-After" = u64, description = "Seconds until a retry can pass"), ("RateLimit-Policy" = String, description = "This route's limits, each `\"name-window\";q=quota;w=seconds` (IETF RateLimit fields; on every answer of the route)"), ("RateLimit" = String, description = "What remains of each limit and when it resets, `\"name-window\";r=remaining;t=seconds`"))))
)]
#[tracing::instrument(skip_all)]
pub async fn change_password<S: IdentityStore, T>(app: &App<S, T>, req: Request) -> ApiResult {
    let caller = Caller::from_request(&req)?;
    let body: PasswordChange = req.json()?;
    app.change_password(&caller.user_id, &body.current_password, &body.new_password)
        .await?;
    no_content()
}

// Its Debug shows no password.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct DeleteConfirmation {
    #[schema(value_type = String)]
    password: PasswordAttempt,
}

/// `DELETE /v1/users/me` {password} -> 204. Erases the account and emits `UserDeleted`,
/// which every service that holds the user's data consumes. The password is asked again
/// so a stolen access token cannot delete an account.
#[utoipa::path(
    delete, path = "/v1/users/me", tag = "users", security(("bearer" = ["user"])),
    summary = "Delete your account and its data everywhere",
    request_body = DeleteConfirmation,
    responses((status = 204, description = "Deleted; `UserDeleted` erases the user's data in every service"), (status = 403, description = "`password_mismatch`: the password (named in `field`) is wrong", body = Problem, content_type = "application/problem+json"), (status = 404, description = "The account no longer exists", body = Problem, content_type = "application/problem+json"), (status = 429, description = "`rate_limited`: too many password checks (login, password change, account deletion, email change) of this account (`password_checks`) or from this address (`password_checks_per_address`); nothing was checked or changed", body = Problem, content_type = "application/problem+json", headers(("Retry-After" = u64, description = "Seconds until a retry can pass"), ("RateLimit-Policy" = String, description = "This route's limits, each `\"name-window\";q=quota;w=seconds` (IETF RateLimit fields; on every answer of the route)"), ("RateLimit" = String, description = "What remains of each limit and when it resets, `\"name-window\";r=remaining;t=seconds`"))))
)]
#[tracing::instrument(skip_all)]
pub async fn delete_me<S: IdentityStore, T>(app: &App<S, T>, req: Request) -> ApiResult {
    let caller = Caller::from_request(&req)?;
    let body: DeleteConfirmation = req.json()?;
    app.delete_account(&caller.user_id, &body.password, &req.correlation_id())
        .await?;
    no_content()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::NoTokens;
    use crate::store::memory::MemoryIdentityStore;
    use shutter_http::lambda_http::{Body, Response};
    use shutter_http::test_support::api_request;

    type TestApp = App<MemoryIdentityStore, NoTokens>;

    async fn with_user(name: &str) -> (TestApp, Account) {
        let app = App {
            store: MemoryIdentityStore::default(),
            tokens: NoTokens,
            quarantine: Default::default(),
        };
        let account = app
            .register(
                name.to_owned().try_into().unwrap(),
                format!("{name}@example.com").try_into().unwrap(),
                &Password::try_from("correct horse battery".to_owned()).unwrap(),
                "c",
            )
            .await
            .unwrap()
            .created()
            .unwrap();
        (app, account)
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
        let (app, alice) = with_user("alice").await;
        let me_json = body(me(&app, as_user(&alice, "GET", "")).await.unwrap());
        assert_eq!(me_json["id"], alice.user_id.as_str());
        assert_eq!(me_json["username"], "alice");
        assert_eq!(me_json["email"], "alice@example.com");
        assert_eq!(me_json["roles"], serde_json::json!(["user"]));
        assert_eq!(me_json["settings"]["language"], "en");
        assert!(me_json.get("password_hash").is_none());
        let anonymous = api_request("GET", "/v1/users/me", &[], "", None);
        assert_eq!(me(&app, anonymous).await.unwrap_err().status(), 401);
    }

    #[tokio::test]
    async fn patch_answers_the_account_and_names_bad_fields() {
        let (app, alice) = with_user("alice").await;
        let resp = update_me(
            &app,
            as_user(
                &alice,
                "PATCH",
                r#"{"email":"New@Example.com","current_password":"correct horse battery","settings":{"language":"pt-BR"}}"#,
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
        let unchanged = update_me(&app, as_user(&alice, "PATCH", r#"{"email":null}"#)).await;
        assert_eq!(
            unchanged.unwrap().status(),
            200,
            "an empty patch changes nothing"
        );
        let before = app.store.contents();
        for (bad, field) in [
            (
                r#"{"settings":{"language":"klingon"}}"#,
                "settings.language",
            ),
            (r#"{"settings":{"theme":"dark"}}"#, "settings.theme"),
            (r#"{"email":"nope"}"#, "email"),
            (r#"{"roles":["admin"]}"#, "roles"),
            (r#"{"email":"other@example.com"}"#, "current_password"),
            (
                r#"{"email":"other@example.com","current_password":7}"#,
                "current_password",
            ),
        ] {
            let err = update_me(&app, as_user(&alice, "PATCH", bad))
                .await
                .unwrap_err();
            assert_eq!(err.status(), 400, "{bad}");
            assert_eq!(err.problem().field.as_deref(), Some(field), "{bad}");
        }
        assert_eq!(
            app.store.contents(),
            before,
            "refused patches change nothing"
        );
    }

    #[tokio::test]
    async fn password_and_deletion_bodies_are_checked_before_anything() {
        let (app, alice) = with_user("alice").await;
        let before = app.store.contents();
        for (method, bad, field) in [
            (
                "POST",
                r#"{"current_password":"correct horse battery","new_password":"short"}"#,
                "new_password",
            ),
            (
                "POST",
                r#"{"new_password":"another long one"}"#,
                "current_password",
            ),
            ("DELETE", r#"{}"#, "password"),
            ("DELETE", r#"{"password":"x","really":true}"#, "really"),
        ] {
            let req = as_user(&alice, method, bad);
            let err = if method == "POST" {
                change_password(&app, req).await.unwrap_err()
            } else {
                delete_me(&app, req).await.unwrap_err()
            };
            assert_eq!(err.status(), 400, "{bad}");
            assert_eq!(err.problem().field.as_deref(), Some(field), "{bad}");
        }
        assert_eq!(app.store.contents(), before);
    }

    #[tokio::test]
    async fn password_change_and_deletion_answer_204_or_403() {
        let (app, alice) = with_user("alice").await;
        let wrong = as_user(
            &alice,
            "POST",
            r#"{"current_password":"not it at all","new_password":"another long one"}"#,
        );
        let err = change_password(&app, wrong).await.unwrap_err();
        assert_eq!(
            (
                err.status(),
                err.problem().code.as_str(),
                err.problem().field.as_deref()
            ),
            (403, "password_mismatch", Some("current_password"))
        );
        let ok = as_user(
            &alice,
            "POST",
            r#"{"current_password":"correct horse battery","new_password":"another long one"}"#,
        );
        assert_eq!(change_password(&app, ok).await.unwrap().status(), 204);

        let wrong = as_user(&alice, "DELETE", r#"{"password":"correct horse battery"}"#);
        let refused = delete_me(&app, wrong).await.unwrap_err();
        assert_eq!(
            (refused.status(), refused.problem().code.as_str()),
            (403, "password_mismatch")
        );
        let ok = as_user(&alice, "DELETE", r#"{"password":"another long one"}"#);
        assert_eq!(delete_me(&app, ok).await.unwrap().status(), 204);
        assert_eq!(
            me(&app, as_user(&alice, "GET", ""))
                .await
                .unwrap_err()
                .status(),
            404
        );
    }

    #[tokio::test]
    async fn an_email_change_with_a_wrong_password_is_refused_and_changes_nothing() {
        let (app, alice) = with_user("alice").await;
        let before = app.store.contents();
        for wrong in [
            r#"{"email":"thief@example.com","current_password":"not the password"}"#,
            r#"{"email":"thief@example.com","current_password":"not the password","settings":{"language":"fr"}}"#,
            r#"{"settings":{"language":"fr"},"current_password":"not the password"}"#,
        ] {
            let err = update_me(&app, as_user(&alice, "PATCH", wrong))
                .await
                .unwrap_err();
            assert_eq!(
                (
                    err.status(),
                    err.problem().code.as_str(),
                    err.problem().field.as_deref()
                ),
                (403, "password_mismatch", Some("current_password")),
                "{wrong}"
            );
        }
        assert_eq!(app.store.contents(), before);
    }

    #[test]
    fn request_bodies_never_print_their_secrets() {
        let change: PasswordChange = serde_json::from_str(
            r#"{"current_password":"hunter2-old-one","new_password":"hunter2-new-one"}"#,
        )
        .unwrap();
        let delete: DeleteConfirmation =
            serde_json::from_str(r#"{"password":"hunter2-old-one"}"#).unwrap();
        let patch: AccountPatch = serde_json::from_str(
            r#"{"email":"a@example.com","current_password":"hunter2-old-one"}"#,
        )
        .unwrap();
        for printed in [
            format!("{change:?}"),
            format!("{delete:?}"),
            format!("{patch:?}"),
        ] {
            assert!(!printed.contains("hunter2"), "{printed}");
        }
    }

    #[tokio::test]
    async fn only_a_patch_that_checks_the_password_is_counted_as_one() {
        use shutter_ratelimit::Scope;
        let app = App {
            store: MemoryIdentityStore::default(),
            tokens: crate::keys::NoTokens,
            quarantine: Default::default(),
        };
        let scope = |body: &str| update_rate_scope(&app, body.as_bytes().to_vec());
        assert_eq!(
            scope(r#"{"settings":{"language":"pt-BR"}}"#).await.unwrap(),
            Scope::Skip
        );
        assert_eq!(
            scope(r#"{"email":"new@example.com","current_password":"guess"}"#)
                .await
                .unwrap(),
            Scope::usual()
        );
    }
}
