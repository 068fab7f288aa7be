//! The endpoints. Each takes its ports and the request and returns a response or an
//! [`ApiError`]; `shutter_http::run` renders errors.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use shutter_core::ApiError;
#[allow(unused_imports)] // the OpenAPI attributes name it
use shutter_core::Problem;
use shutter_core::validate::{Email, Login, Password, Username};
use shutter_events::legacy::Envelope;
use shutter_http::lambda_http::http::StatusCode;
use shutter_http::lambda_http::{Body, Request, Response};
use shutter_http::{ApiRequest, Caller, json, no_content};
use utoipa::ToSchema;

use crate::keys::{ACCESS_TOKEN_TTL_SECONDS, TokenIssuer, TokenSettings, openid_configuration};
use crate::model::{Account, RefreshStatus, RefreshToken, Settings, UserRegistered};
use crate::password;
use crate::store::{IdentityStore, REFRESH_TTL_SECONDS};

type ApiResult = Result<Response<Body>, ApiError>;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct RegisterBody {
    username: Username,
    email: Email,
    password: Password,
}

#[derive(Debug, Serialize, ToSchema)]
struct RegisteredUser<'a> {
    id: &'a str,
    username: &'a str,
    email: &'a str,
    created_at: &'a str,
}

/// `POST /v1/auth/register` -> 201 with the new user.
#[utoipa::path(
    post, path = "/v1/auth/register", tag = "auth", security(()),
    summary = "Register a user",
    description = "Usernames and emails are unique, case-insensitively. The profile follows through `UserRegistered`.",
    request_body(content = RegisterBody, example = json!({"username": "alice", "email": "alice@example.com", "password": "correct horse battery"})),
    responses(
        (status = 201, description = "The new user", body = RegisteredUser<'static>),
        (status = 409, description = "`username_taken` or `email_taken`", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn register<S: IdentityStore>(store: &S, req: Request) -> ApiResult {
    let body: RegisterBody = req.json()?;
    let now = shutter_core::now_rfc3339();
    let account = Account {
        user_id: shutter_core::new_id(),
        username: body.username,
        email: body.email,
        password_hash: password::hash(&body.password)?,
        roles: vec!["user".to_owned()],
        settings: Settings::default(),
        refresh_epoch: 0,
        created_at: now.clone(),
        updated_at: now,
    };
    let payload = UserRegistered {
        user_id: account.user_id.clone(),
        username: account.username.to_string(),
        created_at: account.created_at.clone(),
    };
    let event = Envelope::new(
        "UserRegistered",
        &account.user_id,
        Some(&account.user_id),
        &req.correlation_id(),
        &payload,
    );
    store.create_account(&account, &event).await?;
    tracing::info!(user_id = %account.user_id, "user registered");
    json(
        StatusCode::CREATED,
        &RegisteredUser {
            id: &account.user_id,
            username: account.username.as_str(),
            email: account.email.as_str(),
            created_at: &account.created_at,
        },
    )
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct LoginBody {
    login: Login,
    password: String,
}

impl std::fmt::Debug for LoginBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LoginBody(..)")
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TokenResponse {
    pub access_token: String,
    pub refresh_token: String,
    pub token_type: &'static str,
    pub expires_in: i64,
}

#[utoipa::path(
    post, path = "/v1/auth/login", tag = "auth", security(()),
    summary = "Log in with a username or email and a password",
    request_body(content = LoginBody, example = json!({"login": "alice", "password": "correct horse battery"})),
    responses(
        (status = 200, description = "An access token (RS256, 15 minutes) and a refresh token", body = TokenResponse),
        (status = 401, description = "`invalid_credentials`: the same whether the user exists or not", body = Problem, content_type = "application/problem+json"),
    )
)]
/// `POST /v1/auth/login` -> 200 with tokens. Whether the user exists or the password is
/// wrong, the answer (and the time it takes) is the same.
pub async fn login<S: IdentityStore, T: TokenIssuer>(
    store: &S,
    tokens: &T,
    req: Request,
) -> ApiResult {
    let body: LoginBody = match req.json() {
        Ok(body) => body,
        // A login that is not a valid username or email cannot exist: same answer as a miss.
        Err(ApiError::Invalid { field, .. }) if field == "login" => {
            return Err(ApiError::InvalidCredentials);
        }
        Err(err) => return Err(err),
    };
    if body.password.len() > 1024 {
        return Err(ApiError::InvalidCredentials);
    }
    let account = match store.account_by_login(&body.login).await? {
        Some(account) if password::verify(&body.password, &account.password_hash) => account,
        Some(_) => return Err(ApiError::InvalidCredentials),
        None => {
            password::verify_against_dummy(&body.password);
            return Err(ApiError::InvalidCredentials);
        }
    };
    let (refresh, record) = new_refresh_token(&account, shutter_core::new_id());
    store.create_session(&record).await?;
    tracing::info!(user_id = %account.user_id, "logged in");
    json(StatusCode::OK, &token_response(tokens, &account, refresh)?)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct RefreshBody {
    refresh_token: String,
}

impl std::fmt::Debug for RefreshBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RefreshBody(..)")
    }
}

#[utoipa::path(
    post, path = "/v1/auth/refresh", tag = "auth", security(()),
    summary = "Rotate a refresh token for a new token pair",
    description = "Presenting an already rotated token again revokes its whole session.",
    request_body = RefreshBody,
    responses(
        (status = 200, description = "A new token pair", body = TokenResponse),
        (status = 401, description = "The refresh token is invalid, expired or revoked", body = Problem, content_type = "application/problem+json"),
    )
)]
/// `POST /v1/auth/refresh` -> 200 with a new token pair. The presented token is rotated;
/// presenting a rotated token again revokes its whole family (it was stolen or replayed).
pub async fn refresh<S: IdentityStore, T: TokenIssuer>(
    store: &S,
    tokens: &T,
    req: Request,
) -> ApiResult {
    let body: RefreshBody = req.json()?;
    let rejected = || ApiError::Unauthorized("the refresh token is invalid, expired or revoked");
    let old = store
        .refresh_token(&hash_token(&body.refresh_token))
        .await?
        .ok_or_else(rejected)?;
    if old.status == RefreshStatus::Rotated {
        tracing::warn!(user_id = %old.user_id, family_id = %old.family_id, "refresh token reuse: family revoked");
        store.revoke_family(&old.family_id).await?;
        return Err(rejected());
    }
    let account = store.account(&old.user_id).await?.ok_or_else(rejected)?;
    let (refresh, new) = new_refresh_token(&account, old.family_id.clone());
    if !store.rotate(&old, &new).await? {
        // Expired, revoked, password changed, or a concurrent use of the same token: the
        // last one is reuse too, so the family goes.
        store.revoke_family(&old.family_id).await?;
        return Err(rejected());
    }
    json(StatusCode::OK, &token_response(tokens, &account, refresh)?)
}

#[utoipa::path(
    post, path = "/v1/auth/logout", tag = "auth", security(("bearer" = ["user"])),
    summary = "End a session",
    request_body = RefreshBody,
    responses((status = 204, description = "The session of that refresh token is over (unknown tokens change nothing)"))
)]
/// `POST /v1/auth/logout` {refresh_token} -> 204. Ends the session the token belongs to;
/// only its owner can.
pub async fn logout<S: IdentityStore>(store: &S, req: Request) -> ApiResult {
    let caller = Caller::from_request(&req)?;
    let body: RefreshBody = req.json()?;
    match store
        .refresh_token(&hash_token(&body.refresh_token))
        .await?
    {
        Some(token) if token.user_id == caller.user_id => {
            store.revoke_family(&token.family_id).await?
        }
        // Unknown or someone else's token: answer the same, change nothing.
        _ => {}
    }
    no_content()
}

/// `GET /.well-known/jwks.json` and `GET /.well-known/openid-configuration`.
pub async fn well_known(
    keys: &crate::keys::SigningKeys,
    settings: &TokenSettings,
    req: Request,
) -> ApiResult {
    let mut resp = if req.uri().path().ends_with("/openid-configuration") {
        openid_configuration_document(settings)?
    } else {
        jwks(keys)?
    };
    resp.headers_mut().insert(
        "cache-control",
        shutter_http::lambda_http::http::HeaderValue::from_static("public, max-age=300"),
    );
    Ok(resp)
}

/// The public keys that verify access tokens (every key of the secret, for rotation).
#[utoipa::path(
    get, path = "/.well-known/jwks.json", tag = "auth", security(()),
    summary = "The token signing keys (JWKS)",
    responses((status = 200, description = "A JSON Web Key Set (RFC 7517)", body = Object))
)]
pub fn jwks(keys: &crate::keys::SigningKeys) -> ApiResult {
    json(StatusCode::OK, keys.jwks())
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

fn token_response<T: TokenIssuer>(
    tokens: &T,
    account: &Account,
    refresh_token: String,
) -> Result<TokenResponse, ApiError> {
    Ok(TokenResponse {
        access_token: tokens.issue(account)?,
        refresh_token,
        token_type: "Bearer",
        expires_in: ACCESS_TOKEN_TTL_SECONDS,
    })
}

/// A new opaque refresh token (returned once) and the record stored for it.
fn new_refresh_token(account: &Account, family_id: String) -> (String, RefreshToken) {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    let token = URL_SAFE_NO_PAD.encode(bytes);
    let record = RefreshToken {
        token_hash: hash_token(&token),
        user_id: account.user_id.clone(),
        family_id,
        status: RefreshStatus::Active,
        epoch: account.refresh_epoch,
        expires_at: shutter_store::epoch_seconds() + REFRESH_TTL_SECONDS,
    };
    (token, record)
}

/// Refresh tokens have 256 bits of entropy, so a plain SHA-256 is a safe lookup key.
pub fn hash_token(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::memory::MemoryIdentityStore;
    use shutter_http::test_support::api_request;

    struct FakeTokens;
    impl TokenIssuer for FakeTokens {
        fn issue(&self, account: &Account) -> Result<String, ApiError> {
            Ok(format!("access-for-{}", account.user_id))
        }
    }

    fn body(resp: &Response<Body>) -> serde_json::Value {
        serde_json::from_slice(resp.body().as_ref()).unwrap()
    }

    async fn registered(store: &MemoryIdentityStore, username: &str) -> serde_json::Value {
        let req = api_request(
            "POST",
            "/v1/auth/register",
            &[],
            &format!(
                r#"{{"username":"{username}","email":"{username}@example.com","password":"correct horse battery"}}"#
            ),
            None,
        );
        let resp = register(store, req).await.unwrap();
        assert_eq!(resp.status(), 201);
        body(&resp)
    }

    async fn logged_in(
        store: &MemoryIdentityStore,
        login_as: &str,
    ) -> Result<serde_json::Value, ApiError> {
        let req = api_request(
            "POST",
            "/v1/auth/login",
            &[],
            &format!(r#"{{"login":"{login_as}","password":"correct horse battery"}}"#),
            None,
        );
        login(store, &FakeTokens, req).await.map(|r| body(&r))
    }

    async fn refreshed(
        store: &MemoryIdentityStore,
        token: &str,
    ) -> Result<serde_json::Value, ApiError> {
        let req = api_request(
            "POST",
            "/v1/auth/refresh",
            &[],
            &format!(r#"{{"refresh_token":"{token}"}}"#),
            None,
        );
        refresh(store, &FakeTokens, req).await.map(|r| body(&r))
    }

    #[tokio::test]
    async fn register_emits_one_event_and_enforces_uniqueness_case_insensitively() {
        let store = MemoryIdentityStore::default();
        let user = registered(&store, "Alice").await;
        assert_eq!(user["username"], "alice");
        let events = store.events();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].event_type, "UserRegistered");
        assert_eq!(events[0].aggregate_id, user["id"]);

        let dup = api_request(
            "POST",
            "/",
            &[],
            r#"{"username":"ALICE","email":"x@example.com","password":"correct horse battery"}"#,
            None,
        );
        let err = register(&store, dup).await.unwrap_err();
        assert_eq!(
            (err.status(), err.problem().code.as_str()),
            (409, "username_taken")
        );
        let dup = api_request(
            "POST",
            "/",
            &[],
            r#"{"username":"alice2","email":"ALICE@example.com","password":"correct horse battery"}"#,
            None,
        );
        assert_eq!(
            register(&store, dup).await.unwrap_err().problem().code,
            "email_taken"
        );
        assert_eq!(
            store.events().len(),
            1,
            "a refused registration emits nothing"
        );
    }

    #[tokio::test]
    async fn register_rejects_bad_input_naming_the_field() {
        let store = MemoryIdentityStore::default();
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
        ] {
            let err = register(&store, api_request("POST", "/", &[], payload, None))
                .await
                .unwrap_err();
            assert_eq!(err.problem().field.as_deref(), Some(field), "{payload}");
        }
        assert!(store.events().is_empty());
    }

    #[tokio::test]
    async fn login_by_username_or_email_and_identical_failures() {
        let store = MemoryIdentityStore::default();
        registered(&store, "bob").await;
        let tokens = logged_in(&store, "bob").await.unwrap();
        assert_eq!(tokens["token_type"], "Bearer");
        assert_eq!(tokens["expires_in"], 900);
        assert!(logged_in(&store, "BOB@example.com").await.is_ok());

        let wrong_pw = login(
            &store,
            &FakeTokens,
            api_request(
                "POST",
                "/",
                &[],
                r#"{"login":"bob","password":"wrong password!"}"#,
                None,
            ),
        )
        .await
        .unwrap_err();
        let no_user = logged_in(&store, "nobody").await.unwrap_err();
        let bad_login = logged_in(&store, "x").await.unwrap_err();
        assert_eq!(wrong_pw.problem(), no_user.problem());
        assert_eq!(no_user.problem(), bad_login.problem());
        assert_eq!(no_user.status(), 401);
    }

    #[tokio::test]
    async fn refresh_rotates_and_reuse_revokes_the_family() {
        let store = MemoryIdentityStore::default();
        registered(&store, "carol").await;
        let first = logged_in(&store, "carol").await.unwrap();
        let t1 = first["refresh_token"].as_str().unwrap().to_owned();

        let second = refreshed(&store, &t1).await.unwrap();
        let t2 = second["refresh_token"].as_str().unwrap().to_owned();
        assert_ne!(t1, t2);

        // Replaying t1 is reuse: rejected, and t2 dies with its family.
        assert_eq!(refreshed(&store, &t1).await.unwrap_err().status(), 401);
        assert_eq!(refreshed(&store, &t2).await.unwrap_err().status(), 401);
        assert_eq!(
            refreshed(&store, "made-up").await.unwrap_err().status(),
            401
        );
    }

    #[tokio::test]
    async fn a_password_change_ends_every_session() {
        let store = MemoryIdentityStore::default();
        registered(&store, "dave").await;
        let t = logged_in(&store, "dave").await.unwrap()["refresh_token"]
            .as_str()
            .unwrap()
            .to_owned();
        let account = store
            .account_by_login(&Login::Username("dave".to_owned().try_into().unwrap()))
            .await
            .unwrap()
            .unwrap();
        store.change_password(&account, "new-hash").await.unwrap();
        assert_eq!(refreshed(&store, &t).await.unwrap_err().status(), 401);
    }

    #[tokio::test]
    async fn logout_only_ends_the_callers_own_session() {
        let store = MemoryIdentityStore::default();
        let eve = registered(&store, "eve").await;
        let mallory = registered(&store, "mallory").await;
        let t = logged_in(&store, "eve").await.unwrap()["refresh_token"]
            .as_str()
            .unwrap()
            .to_owned();
        let logout_as = |id: &serde_json::Value| {
            api_request(
                "POST",
                "/v1/auth/logout",
                &[],
                &format!(r#"{{"refresh_token":"{t}"}}"#),
                Some((id.as_str().unwrap(), "x", "user")),
            )
        };

        assert_eq!(
            logout(&store, logout_as(&mallory["id"]))
                .await
                .unwrap()
                .status(),
            204
        );
        assert!(
            refreshed(&store, &t).await.is_ok(),
            "someone else's logout changes nothing"
        );

        let t = logged_in(&store, "eve").await.unwrap()["refresh_token"]
            .as_str()
            .unwrap()
            .to_owned();
        let req = api_request(
            "POST",
            "/",
            &[],
            &format!(r#"{{"refresh_token":"{t}"}}"#),
            Some((eve["id"].as_str().unwrap(), "eve", "user")),
        );
        assert_eq!(logout(&store, req).await.unwrap().status(), 204);
        assert_eq!(refreshed(&store, &t).await.unwrap_err().status(), 401);
    }
}
