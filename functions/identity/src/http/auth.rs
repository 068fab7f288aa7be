//! The auth routes: registration, login, refresh, logout, and the issuer's well-known
//! documents.

use serde::{Deserialize, Serialize};
use shutter_core::ApiError;
#[allow(unused_imports)] // the OpenAPI attributes name it
use shutter_core::Problem;
use shutter_core::validate::{Email, Login, Password, PasswordAttempt, Username};
use shutter_http::lambda_http::Request;
use shutter_http::lambda_http::http::{HeaderValue, StatusCode};
use shutter_http::{ApiRequest, Caller, json, no_content};
use utoipa::ToSchema;

use super::ApiResult;
use crate::App;
use crate::keys::{
    ACCESS_TOKEN_TTL_SECONDS, TokenIssuer, TokenSettings, WellKnown, openid_configuration,
};
use crate::model::RefreshSecret;
use crate::service::Session;
use crate::store::IdentityStore;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct RegisterBody {
    username: Username,
    email: Email,
    password: Password,
}

// The answer to every registration that got past validation and the username: the same
// whether the email was new or another account's, so it holds only what was sent (as
// stored, lower-cased). The account's id comes with login (the access token's `sub`) and
// `GET /v1/users/me`.
#[derive(Debug, Serialize, ToSchema)]
struct RegistrationAccepted<'a> {
    username: &'a str,
    email: &'a str,
}

/// `POST /v1/auth/register` -> 202, the same answer whether the email was new or not.
#[utoipa::path(
    post, path = "/v1/auth/register", tag = "auth", security(()),
    summary = "Register a user",
    description = "Usernames and emails are unique, case-insensitively. A taken username is a 409 (usernames are public). A taken email is not revealed: the answer is the same 202 as for a new one, but nothing is created (the address's owner will be told by email); a new email's account exists at once, so the next step is to log in. The profile follows through `UserRegistered`. A deleted account's username stays taken for a quarantine (30 days by default).",
    request_body(content = RegisterBody, example = json!({"username": "alice", "email": "alice@example.com", "password": "correct horse battery"})),
    responses(
        (status = 202, description = "Accepted (the same whether or not the email already had an account): log in with the username or email and the password", body = RegistrationAccepted<'static>),
        (status = 409, description = "`username_taken`: an account has the username, or had it lately", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "`rate_limited`: too many registrations from this address (`registrations`); nothing was created", body = Problem, content_type = "application/problem+json", headers(("Retry-After" = u64, description = "Seconds until a retry can pass"), ("RateLimit-Policy" = String, description = "This route's limits, each `\"name-window\";q=quota;w=seconds` (IETF RateLimit fields; on every answer of the route)"), ("RateLimit" = String, description = "What remains of each limit and when it resets, `\"name-window\";r=remaining;t=seconds`")))
    )
)]
#[tracing::instrument(skip_all)]
pub async fn register<S: IdentityStore, T>(app: &App<S, T>, req: Request) -> ApiResult {
    let body: RegisterBody = req.json()?;
    app.register(
        body.username.clone(),
        body.email.clone(),
        &body.password,
        &req.correlation_id(),
    )
    .await?;
    json(
        StatusCode::ACCEPTED,
        &RegistrationAccepted {
            username: body.username.as_str(),
            email: body.email.as_str(),
        },
    )
}

// Its Debug shows no password. (Plain comments here: doc comments would change the
// OpenAPI document, and the fields are plain strings there.)
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct LoginBody {
    login: Login,
    #[schema(value_type = String)]
    password: PasswordAttempt,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TokenResponse {
    pub access_token: String,
    pub refresh_token: String,
    pub token_type: &'static str,
    pub expires_in: i64,
}

impl From<Session> for TokenResponse {
    fn from(session: Session) -> Self {
        Self {
            access_token: session.access_token,
            refresh_token: session.refresh_token.expose().to_owned(),
            token_type: "Bearer",
            expires_in: ACCESS_TOKEN_TTL_SECONDS,
        }
    }
}

#[utoipa::path(
    post, path = "/v1/auth/login", tag = "auth", security(()),
    summary = "Log in with a username or email and a password",
    request_body(content = LoginBody, example = json!({"login": "alice", "password": "correct horse battery"})),
    responses(
        (status = 200, description = "An access token (RS256, 15 minutes) and a refresh token", body = TokenResponse),
        (status = 401, description = "`invalid_credentials`: the same whether the user exists or not", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`account_suspended`: the password is right but staff suspended the account (`until`, RFC 3339) or banned it (no `until`)", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "`rate_limited`: too many password checks (login, password change, account deletion, email change) of this account (`password_checks`) or from this address (`password_checks_per_address`); nothing was checked or changed", body = Problem, content_type = "application/problem+json", headers(("Retry-After" = u64, description = "Seconds until a retry can pass"), ("RateLimit-Policy" = String, description = "This route's limits, each `\"name-window\";q=quota;w=seconds` (IETF RateLimit fields; on every answer of the route)"), ("RateLimit" = String, description = "What remains of each limit and when it resets, `\"name-window\";r=remaining;t=seconds`")))
    )
)]
/// `POST /v1/auth/login` -> 200 with tokens. Whether the user exists or the password is
/// wrong, the answer (and the time it takes) is the same.
#[tracing::instrument(skip_all)]
pub async fn login<S: IdentityStore, T: TokenIssuer>(app: &App<S, T>, req: Request) -> ApiResult {
    let body: LoginBody = match req.json() {
        Ok(body) => body,
        // A login that is not a valid username or email cannot exist: same answer as a miss.
        Err(ApiError::Invalid { field, .. }) if field == "login" => {
            return Err(ApiError::InvalidCredentials);
        }
        Err(err) => return Err(err),
    };
    let session = app.login(&body.login, &body.password).await?;
    json(StatusCode::OK, &TokenResponse::from(session))
}

/// How a login is counted by its rate limits (`RATE_LIMITS` of `auth-login`): against
/// the account its `login` names (see [`App::password_check_key`]) and its source address.
/// A body that is not a login checks no password, so it is not counted (and costs no
/// counter write).
pub async fn login_rate_scope<S: IdentityStore, T>(
    app: &App<S, T>,
    body: Vec<u8>,
) -> Result<shutter_ratelimit::Scope, ApiError> {
    let Ok(attempt) = serde_json::from_slice::<LoginBody>(&body) else {
        return Ok(shutter_ratelimit::Scope::Skip);
    };
    Ok(shutter_ratelimit::Scope::Count {
        user: Some(app.password_check_key(&attempt.login).await?),
        costs: Vec::new(),
    })
}

/// How a registration is counted by its rate limits (`RATE_LIMITS` of `auth-register`):
/// by its source address. A body that is not a registration creates nothing, so it is
/// not counted.
pub async fn register_rate_scope<S, T>(
    _: &App<S, T>,
    body: Vec<u8>,
) -> Result<shutter_ratelimit::Scope, ApiError> {
    Ok(match serde_json::from_slice::<RegisterBody>(&body) {
        Ok(_) => shutter_ratelimit::Scope::usual(),
        Err(_) => shutter_ratelimit::Scope::Skip,
    })
}

// Its Debug shows no token.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct RefreshBody {
    #[schema(value_type = String)]
    refresh_token: RefreshSecret,
}

#[utoipa::path(
    post, path = "/v1/auth/refresh", tag = "auth", security(()),
    summary = "Rotate a refresh token for a new token pair",
    description = "Presenting an already rotated token again revokes its whole session.",
    request_body = RefreshBody,
    responses(
        (status = 200, description = "A new token pair", body = TokenResponse),
        (status = 401, description = "The refresh token is invalid, expired or revoked", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`account_suspended` (`until`, or none for a ban): the suspension also ended every session, so this token will not work again", body = Problem, content_type = "application/problem+json"),
    )
)]
/// `POST /v1/auth/refresh` -> 200 with a new token pair. The presented token is rotated;
/// presenting a rotated token again revokes its whole family (it was stolen or replayed).
#[tracing::instrument(skip_all)]
pub async fn refresh<S: IdentityStore, T: TokenIssuer>(app: &App<S, T>, req: Request) -> ApiResult {
    let body: RefreshBody = req.json()?;
    let session = app.refresh(&body.refresh_token).await?;
    json(StatusCode::OK, &TokenResponse::from(session))
}

#[utoipa::path(
    post, path = "/v1/auth/logout", tag = "auth", security(("bearer" = ["user"])),
    summary = "End a session",
    request_body = RefreshBody,
    responses((status = 204, description = "The session of that refresh token is over (unknown tokens change nothing)"))
)]
/// `POST /v1/auth/logout` {refresh_token} -> 204. Ends the session the token belongs to;
/// only its owner can.
#[tracing::instrument(skip_all)]
pub async fn logout<S: IdentityStore, T>(app: &App<S, T>, req: Request) -> ApiResult {
    let caller = Caller::from_request(&req)?;
    let body: RefreshBody = req.json()?;
    app.logout(&caller.user_id, &body.refresh_token).await?;
    no_content()
}

/// `GET /.well-known/jwks.json` and `GET /.well-known/openid-configuration`.
pub async fn well_known(published: &WellKnown, req: Request) -> ApiResult {
    let mut resp = if req.uri().path().ends_with("/openid-configuration") {
        openid_configuration_document(&published.settings)?
    } else {
        jwks(&published.jwks)?
    };
    resp.headers_mut().insert(
        "cache-control",
        HeaderValue::from_static("public, max-age=300"),
    );
    Ok(resp)
}

/// The public keys that verify access tokens (every key of the secret, for rotation).
#[utoipa::path(
    get, path = "/.well-known/jwks.json", tag = "auth", security(()),
    summary = "The token signing keys (JWKS)",
    responses((status = 200, description = "A JSON Web Key Set (RFC 7517)", body = Object))
)]
pub fn jwks(keys: &jsonwebtoken::jwk::JwkSet) -> ApiResult {
    json(StatusCode::OK, keys)
}

/// The issuer's metadata: where API Gateway's authorizer finds the JWKS.
#[utoipa::path(
    get, path = "/.well-known/openid-configuration", tag = "auth", security(()),
    summary = "The issuer's OpenID configuration",
    responses((status = 200, description = "Issuer metadata with `jwks_uri`", body = Object))
)]
pub fn openid_configuration_document(settings: &TokenSettings) -> ApiResult {
    json(StatusCode::OK, &openid_configuration(settings))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Account;
    use crate::store::memory::MemoryIdentityStore;
    use shutter_http::lambda_http::{Body, Response};
    use shutter_http::test_support::api_request;

    struct FakeTokens;
    impl TokenIssuer for FakeTokens {
        async fn issue(&self, account: &Account) -> Result<String, ApiError> {
            Ok(format!("access-for-{}", account.user_id))
        }
    }

    type TestApp = App<MemoryIdentityStore, FakeTokens>;

    fn app() -> TestApp {
        App {
            store: MemoryIdentityStore::default(),
            tokens: FakeTokens,
            quarantine: Default::default(),
        }
    }

    fn body(resp: &Response<Body>) -> serde_json::Value {
        serde_json::from_slice(resp.body().as_ref()).unwrap()
    }

    fn post(payload: &str, caller: Option<(&str, &str, &str)>) -> Request {
        api_request("POST", "/", &[], payload, caller)
    }

    async fn registered(app: &TestApp, username: &str) -> serde_json::Value {
        let req = post(
            &format!(
                r#"{{"username":"{username}","email":"{username}@example.com","password":"correct horse battery"}}"#
            ),
            None,
        );
        let resp = register(app, req).await.unwrap();
        assert_eq!(resp.status(), 202);
        body(&resp)
    }

    async fn logged_in(app: &TestApp, login_as: &str) -> Result<serde_json::Value, ApiError> {
        let req = post(
            &format!(r#"{{"login":"{login_as}","password":"correct horse battery"}}"#),
            None,
        );
        login(app, req).await.map(|r| body(&r))
    }

    #[tokio::test]
    async fn register_answers_what_was_sent_lower_cased_and_nothing_more() {
        let app = app();
        let user = registered(&app, "Alice").await;
        assert_eq!(
            user,
            serde_json::json!({"username": "alice", "email": "alice@example.com"})
        );
        assert!(app.store.contents().usernames.contains_key("alice"));
        let dup = post(
            r#"{"username":"ALICE","email":"x@example.com","password":"correct horse battery"}"#,
            None,
        );
        let err = register(&app, dup).await.unwrap_err();
        assert_eq!(
            (err.status(), err.problem().code.as_str()),
            (409, "username_taken")
        );
    }

    #[tokio::test]
    async fn a_taken_email_is_answered_as_a_new_one_and_creates_nothing() {
        // GIVEN alice
        let app = app();
        registered(&app, "alice").await;
        let before = app.store.contents();
        // WHEN someone registers another name with her email, in another case
        let req = post(
            r#"{"username":"Mallory","email":"ALICE@example.com","password":"another long one"}"#,
            None,
        );
        let resp = register(&app, req).await.unwrap();
        // THEN the answer is a new registration's: the same status and the same shape
        assert_eq!(resp.status(), 202);
        assert_eq!(
            body(&resp),
            serde_json::json!({"username": "mallory", "email": "alice@example.com"})
        );
        // AND no account was made; only the name is held and the attempt recorded
        let after = app.store.contents();
        assert_eq!(
            (after.accounts.len(), after.emails.len()),
            (before.accounts.len(), before.emails.len())
        );
        assert!(!after.usernames.contains_key("mallory"));
        assert!(after.quarantined.contains_key("mallory"));
        let mallory = logged_in(&app, "mallory").await.unwrap_err();
        assert_eq!(mallory.status(), 401);
    }

    #[tokio::test]
    async fn a_login_is_counted_against_the_account_whichever_name_it_uses() {
        use shutter_ratelimit::Scope;
        let app = app();
        registered(&app, "alice").await;
        let key = |payload: &'static str| {
            let app = &app;
            async move {
                match login_rate_scope(app, payload.as_bytes().to_vec())
                    .await
                    .unwrap()
                {
                    Scope::Count { user, .. } => user,
                    Scope::Skip => None,
                }
            }
        };
        let by_name = key(r#"{"login":"Alice","password":"x"}"#).await.unwrap();
        let by_email = key(r#"{"login":"ALICE@example.com","password":"x"}"#)
            .await
            .unwrap();
        assert_eq!(by_name, by_email);
        assert!(
            !by_name.starts_with("login:"),
            "the account's id: {by_name}"
        );
        // An unknown login is limited as well, by what was typed.
        assert_eq!(
            key(r#"{"login":"Nobody","password":"x"}"#).await.as_deref(),
            Some("login:nobody")
        );
        // No valid login: no password is checked, and nothing is counted.
        for not_a_login in [
            r#"{"login":"not a login!","password":"x"}"#,
            r#"{"login":"alice"}"#,
            r#"{"login":"alice","password":"x","admin":true}"#,
            "not json",
            "",
        ] {
            assert_eq!(
                login_rate_scope(&app, not_a_login.as_bytes().to_vec())
                    .await
                    .unwrap(),
                Scope::Skip,
                "{not_a_login}"
            );
        }
    }

    #[tokio::test]
    async fn only_a_body_that_is_a_registration_is_counted() {
        use shutter_ratelimit::Scope;
        let app = app();
        let scope = |body: &'static str| register_rate_scope(&app, body.as_bytes().to_vec());
        assert_eq!(
            scope(r#"{"username":"alice","email":"alice@example.com","password":"correct horse battery"}"#)
                .await
                .unwrap(),
            Scope::usual()
        );
        for not_a_registration in [
            r#"{"username":"alice","email":"alice@example.com"}"#,
            r#"{"username":"al ice","email":"alice@example.com","password":"correct horse battery"}"#,
            "not json",
            "",
        ] {
            assert_eq!(
                scope(not_a_registration).await.unwrap(),
                Scope::Skip,
                "{not_a_registration}"
            );
        }
    }

    #[tokio::test]
    async fn register_rejects_bad_input_naming_the_field() {
        let app = app();
        for (payload, field) in [
            (
                r#"{"username":"a","email":"a@example.com","password":"correct horse battery"}"#,
                "username",
            ),
            (
                r#"{"username":"alice","email":"nope","password":"correct horse battery"}"#,
                "email",
            ),
            (
                r#"{"username":"alice","email":"a@example.com","password":"short"}"#,
                "password",
            ),
            (
                r#"{"username":"alice","email":"a@example.com"}"#,
                "password",
            ),
            (
                r#"{"username":"alice","email":"a@example.com","password":"correct horse battery","roles":["admin"]}"#,
                "roles",
            ),
        ] {
            let err = register(&app, post(payload, None)).await.unwrap_err();
            assert_eq!(err.status(), 400, "{payload}");
            assert_eq!(err.problem().field.as_deref(), Some(field), "{payload}");
        }
        assert_eq!(
            register(&app, post("{\"username\":", None))
                .await
                .unwrap_err()
                .problem()
                .code,
            "malformed_json"
        );
        assert!(app.store.events().is_empty());
    }

    #[tokio::test]
    async fn login_answers_tokens_and_one_failure_for_every_kind_of_miss() {
        let app = app();
        registered(&app, "bob").await;
        let tokens = logged_in(&app, "bob").await.unwrap();
        assert_eq!(tokens["token_type"], "Bearer");
        assert_eq!(tokens["expires_in"], 900);
        assert!(
            tokens["access_token"]
                .as_str()
                .unwrap()
                .starts_with("access-for-")
        );
        assert_eq!(tokens["refresh_token"].as_str().unwrap().len(), 43);
        assert!(logged_in(&app, "BOB@example.com").await.is_ok());

        let wrong_pw = login(
            &app,
            post(r#"{"login":"bob","password":"wrong password!"}"#, None),
        )
        .await
        .unwrap_err();
        let no_user = logged_in(&app, "nobody").await.unwrap_err();
        let bad_login = logged_in(&app, "x").await.unwrap_err();
        assert_eq!(wrong_pw.problem(), no_user.problem());
        assert_eq!(no_user.problem(), bad_login.problem());
        assert_eq!(no_user.status(), 401);
        // Other bad input is still a 400 naming its field.
        let err = login(&app, post(r#"{"login":"bob","password":7}"#, None))
            .await
            .unwrap_err();
        assert_eq!(
            (err.status(), err.problem().field.as_deref()),
            (400, Some("password"))
        );
    }

    #[tokio::test]
    async fn refresh_and_logout_take_the_token_from_the_body() {
        let app = app();
        registered(&app, "eve").await;
        let t = logged_in(&app, "eve").await.unwrap()["refresh_token"]
            .as_str()
            .unwrap()
            .to_owned();
        let pair = refresh(&app, post(&format!(r#"{{"refresh_token":"{t}"}}"#), None))
            .await
            .unwrap();
        let t2 = body(&pair)["refresh_token"].as_str().unwrap().to_owned();
        assert_ne!(t, t2);

        let anonymous = post(&format!(r#"{{"refresh_token":"{t2}"}}"#), None);
        assert_eq!(logout(&app, anonymous).await.unwrap_err().status(), 401);
        let eve_id = app.store.contents().usernames["eve"].clone();
        let as_eve = post(
            &format!(r#"{{"refresh_token":"{t2}"}}"#),
            Some((eve_id.as_str(), "eve", "user")),
        );
        assert_eq!(logout(&app, as_eve).await.unwrap().status(), 204);
        let again = post(&format!(r#"{{"refresh_token":"{t2}"}}"#), None);
        assert_eq!(refresh(&app, again).await.unwrap_err().status(), 401);
        let missing = refresh(&app, post("{}", None)).await.unwrap_err();
        assert_eq!(missing.problem().field.as_deref(), Some("refresh_token"));
    }

    #[test]
    fn request_bodies_never_print_their_secrets() {
        let login: LoginBody =
            serde_json::from_str(r#"{"login":"bob","password":"hunter2-is-long"}"#).unwrap();
        let refresh: RefreshBody =
            serde_json::from_str(r#"{"refresh_token":"opaque-secret-token"}"#).unwrap();
        let register: RegisterBody = serde_json::from_str(
            r#"{"username":"bob","email":"bob@example.com","password":"hunter2-is-long"}"#,
        )
        .unwrap();
        for printed in [
            format!("{login:?}"),
            format!("{register:?}"),
            format!("{refresh:?}"),
        ] {
            assert!(!printed.contains("hunter2"), "{printed}");
            assert!(!printed.contains("opaque-secret"), "{printed}");
        }
    }

    #[tokio::test]
    async fn well_known_serves_the_jwks_and_the_issuer_metadata_cacheably() {
        let published = WellKnown {
            jwks: crate::keys::tests::test_keys().into_jwks(),
            settings: TokenSettings {
                issuer: "https://id.test".into(),
                audience: "shutter-api".into(),
            },
        };
        let req = api_request("GET", "/.well-known/jwks.json", &[], "", None);
        let resp = well_known(&published, req).await.unwrap();
        assert_eq!(resp.headers()["cache-control"], "public, max-age=300");
        let keys = body(&resp);
        assert_eq!(keys["keys"][0]["kid"], "k1");
        assert!(keys["keys"][0].get("d").is_none(), "no private part");

        let req = api_request("GET", "/.well-known/openid-configuration", &[], "", None);
        let resp = well_known(&published, req).await.unwrap();
        assert_eq!(resp.headers()["cache-control"], "public, max-age=300");
        assert_eq!(
            body(&resp)["jwks_uri"],
            "https://id.test/.well-known/jwks.json"
        );
    }
}
