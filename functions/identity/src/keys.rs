//! RS256 signing keys and access tokens.
//!
//! The keys come from a Secrets Manager secret shaped
//! `{"active_kid": "...", "keys": [{"kid": "...", "private_key_pem": "..."}]}`: the active
//! key signs, and every key is published in the JWKS, so a rotation adds the new key,
//! waits for API Gateway's JWKS cache, then switches `active_kid`.
//!
//! `auth-jwks` reads none of that: it publishes a second secret that holds only the public
//! half, a JWKS `{"keys": [...]}` (written with the key set by infra/scripts/signing-key.sh),
//! so the function behind a public route never holds a private key.

use jsonwebtoken::jwk::{Jwk, JwkSet, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::{Deserialize, Serialize};
use shutter_core::ApiError;
use shutter_store::{ConfigError, Fetched};

use crate::model::Account;

/// Access tokens live 15 minutes.
pub const ACCESS_TOKEN_TTL_SECONDS: i64 = 15 * 60;

#[derive(Deserialize)]
struct SecretKeys {
    active_kid: String,
    keys: Vec<SecretKey>,
}

#[derive(Deserialize)]
struct SecretKey {
    kid: String,
    private_key_pem: String,
}

/// The service's keys, parsed once per cold start.
pub struct SigningKeys {
    active_kid: String,
    active: EncodingKey,
    jwks: JwkSet,
}

impl std::fmt::Debug for SigningKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKeys(active_kid={})", self.active_kid)
    }
}

impl SigningKeys {
    pub fn from_secret(secret: &str) -> Result<Self, ConfigError> {
        let invalid = |reason: String| ConfigError::Invalid {
            name: "signing key secret",
            reason,
        };
        let parsed: SecretKeys = serde_json::from_str(secret)
            .map_err(|e| invalid(format!("not the expected JSON: {e}")))?;
        let mut active = None;
        let mut jwks = JwkSet { keys: Vec::new() };
        for key in parsed.keys {
            let encoding = EncodingKey::from_rsa_pem(key.private_key_pem.as_bytes())
                .map_err(|e| invalid(format!("key {} is not an RSA private key: {e}", key.kid)))?;
            let mut jwk = Jwk::from_encoding_key(&encoding, Algorithm::RS256)
                .map_err(|e| invalid(format!("key {}: {e}", key.kid)))?;
            jwk.common.key_id = Some(key.kid.clone());
            jwk.common.public_key_use = Some(PublicKeyUse::Signature);
            jwk.common.key_algorithm = Some(KeyAlgorithm::RS256);
            jwks.keys.push(jwk);
            if key.kid == parsed.active_kid {
                active = Some(encoding);
            }
        }
        let active = active.ok_or_else(|| {
            invalid(format!(
                "active_kid {} is not among the keys",
                parsed.active_kid
            ))
        })?;
        Ok(Self {
            active_kid: parsed.active_kid,
            active,
            jwks,
        })
    }

    pub fn jwks(&self) -> &JwkSet {
        &self.jwks
    }

    /// Only the public half: what the JWKS endpoint keeps after its cold start.
    pub fn into_jwks(self) -> JwkSet {
        self.jwks
    }
}

/// Members of an RSA JWK that only a private key has (RFC 7518, section 6.3.2).
const PRIVATE_MEMBERS: [&str; 6] = ["d", "p", "q", "dp", "dq", "qi"];

/// The public JWKS `auth-jwks` publishes, as stored in its secret (and given to auth-jwks in
/// `PUBLIC_JWKS`): RS256 signing keys, each
/// with a `kid`, and no private member (refused rather than dropped: a secret holding one is
/// a mistake to fix, not to serve around).
pub fn public_jwks(secret: &str) -> Result<JwkSet, ConfigError> {
    let invalid = |reason: String| ConfigError::Invalid {
        name: "PUBLIC_JWKS (the public JWKS secret's value)",
        reason,
    };
    let raw: serde_json::Value =
        serde_json::from_str(secret).map_err(|e| invalid(format!("not JSON: {e}")))?;
    let keys = raw["keys"]
        .as_array()
        .filter(|keys| !keys.is_empty())
        .ok_or_else(|| invalid("no \"keys\" array with at least one key".into()))?;
    for key in keys {
        if let Some(private) = PRIVATE_MEMBERS.iter().find(|m| key.get(**m).is_some()) {
            return Err(invalid(format!(
                "key {} has the private member {private}",
                key["kid"]
            )));
        }
    }
    let set: JwkSet =
        serde_json::from_value(raw.clone()).map_err(|e| invalid(format!("not a JWKS: {e}")))?;
    for jwk in &set.keys {
        let kid = jwk.common.key_id.as_deref().unwrap_or_default();
        if kid.is_empty() {
            return Err(invalid("a key has no kid".into()));
        }
        if !matches!(
            jwk.algorithm,
            jsonwebtoken::jwk::AlgorithmParameters::RSA(_)
        ) {
            return Err(invalid(format!("key {kid} is not an RSA key")));
        }
    }
    Ok(set)
}

/// Who the tokens are for.
#[derive(Debug, Clone)]
pub struct TokenSettings {
    pub issuer: String,
    pub audience: String,
}

impl TokenSettings {
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            issuer: shutter_store::env("JWT_ISSUER")?
                .trim_end_matches('/')
                .to_owned(),
            audience: shutter_store::env("JWT_AUDIENCE")?,
        })
    }
}

/// The claims of an access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    pub iss: String,
    pub aud: String,
    pub sub: String,
    pub username: String,
    pub scope: String,
    pub jti: String,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
}

/// Signs access tokens.
pub trait TokenIssuer: Send + Sync {
    /// An access token for `account`; an internal error when the key cannot be read or
    /// used.
    fn issue(&self, account: &Account) -> impl Future<Output = Result<String, ApiError>> + Send;
}

/// The token issuer of functions that never sign a token (registration, logout, the
/// account routes): they do not read the signing secret at cold start.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoTokens;

/// What `auth-jwks` serves: the public keys and the issuer's metadata. It keeps no private
/// key and needs no table.
#[derive(Debug, Clone)]
pub struct WellKnown {
    pub jwks: JwkSet,
    pub settings: TokenSettings,
}

#[derive(Debug)]
pub struct RsaTokenIssuer {
    /// Read in the background from cold start (see [`shutter_store::Fetched`]): init does
    /// not wait for Secrets Manager, the first token signed does.
    pub keys: Fetched<SigningKeys>,
    pub settings: TokenSettings,
    /// Accounts that are admins by configuration, whatever their stored roles.
    pub admins: AdminUsernames,
}

/// The usernames that hold the `admin` role by configuration (`ADMIN_USERNAMES`, the
/// template's comma-separated `AdminUsernames`): the first admins, who grant every other
/// staff role (`shutter-moderation`). Their tokens carry the `admin` scope from the first
/// one signed (login, then every refresh); taking the role away means taking the name out
/// of the parameter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AdminUsernames(Vec<String>);

impl AdminUsernames {
    /// Comma-separated usernames; blanks are ignored, case is not significant (usernames
    /// are stored lower-cased).
    pub fn parse(raw: &str) -> Self {
        Self(
            raw.split(',')
                .map(|u| u.trim().to_lowercase())
                .filter(|u| !u.is_empty())
                .collect(),
        )
    }

    /// `ADMIN_USERNAMES`, or nobody.
    pub fn from_env() -> Self {
        Self::parse(&std::env::var("ADMIN_USERNAMES").unwrap_or_default())
    }

    pub fn contains(&self, username: &str) -> bool {
        self.0.iter().any(|u| u.eq_ignore_ascii_case(username))
    }

    /// The `scope` claim of `account`: its roles, and `admin` if it is named here.
    pub fn scope_of(&self, account: &Account) -> String {
        let scope = account.scope();
        if self.contains(account.username.as_str()) && !account.roles.iter().any(|r| r == "admin") {
            format!("{scope} admin")
        } else {
            scope
        }
    }
}

impl TokenIssuer for RsaTokenIssuer {
    async fn issue(&self, account: &Account) -> Result<String, ApiError> {
        let keys = self.keys.get().await.map_err(ApiError::internal)?;
        let now = shutter_store::epoch_seconds();
        let claims = AccessClaims {
            iss: self.settings.issuer.clone(),
            aud: self.settings.audience.clone(),
            sub: account.user_id.to_string(),
            username: account.username.to_string(),
            scope: self.admins.scope_of(account),
            jti: shutter_core::new_id(),
            iat: now,
            nbf: now,
            exp: now + ACCESS_TOKEN_TTL_SECONDS,
        };
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(keys.active_kid.clone());
        jsonwebtoken::encode(&header, &claims, &keys.active).map_err(ApiError::internal)
    }
}

/// `/.well-known/openid-configuration`: what API Gateway reads to find the JWKS.
pub fn openid_configuration(settings: &TokenSettings) -> serde_json::Value {
    serde_json::json!({
        "issuer": settings.issuer,
        "jwks_uri": format!("{}/.well-known/jwks.json", settings.issuer),
        "token_endpoint": format!("{}/v1/auth/login", settings.issuer),
        "response_types_supported": ["token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "scopes_supported": ["user", "moderator", "admin"],
        "claims_supported": ["iss", "aud", "sub", "exp", "nbf", "iat", "jti", "username", "scope"],
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use jsonwebtoken::{DecodingKey, Validation};

    /// A fixed 2048-bit test key (generated for these tests only; used nowhere else).
    pub const TEST_KEY_PEM: &str = include_str!("../tests/fixtures/test-signing-key.pem");

    pub fn test_keys() -> SigningKeys {
        let secret = serde_json::json!({"active_kid": "k1", "keys": [{"kid": "k1", "private_key_pem": TEST_KEY_PEM}]});
        SigningKeys::from_secret(&secret.to_string()).unwrap()
    }

    #[tokio::test]
    async fn tokens_verify_against_the_published_jwks() {
        let issuer = RsaTokenIssuer {
            keys: Fetched::ready(test_keys()),
            settings: TokenSettings {
                issuer: "https://id.test".into(),
                audience: "shutter-api".into(),
            },
            admins: AdminUsernames::default(),
        };
        let account = crate::model::tests::account("alice");
        let token = issuer.issue(&account).await.unwrap();

        let header = jsonwebtoken::decode_header(&token).unwrap();
        assert_eq!(
            (header.alg, header.kid.as_deref()),
            (Algorithm::RS256, Some("k1"))
        );
        let jwk = issuer.keys.get().await.unwrap().jwks().find("k1").unwrap();
        let key = DecodingKey::from_jwk(jwk).unwrap();
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_audience(&["shutter-api"]);
        validation.set_issuer(&["https://id.test"]);
        let claims = jsonwebtoken::decode::<AccessClaims>(&token, &key, &validation)
            .unwrap()
            .claims;
        assert_eq!(claims.sub, account.user_id);
        assert_eq!(claims.scope, "user");
        assert_eq!(claims.exp - claims.iat, 900);
    }

    #[test]
    fn a_configured_admin_gets_the_admin_scope_once_and_others_keep_their_roles() {
        // GIVEN AdminUsernames naming alice (in another case, with blanks)
        let admins = AdminUsernames::parse(" Alice , ,root");
        let mut alice = crate::model::tests::account("alice");
        let bob = crate::model::tests::account("bob");
        // THEN alice's scope adds admin, bob's is his roles
        assert_eq!(admins.scope_of(&alice), "user admin");
        assert_eq!(admins.scope_of(&bob), "user");
        // AND an admin role already granted is not repeated
        alice.roles.push("admin".into());
        assert_eq!(admins.scope_of(&alice), "user admin");
        assert_eq!(AdminUsernames::parse("").scope_of(&alice), "user admin");
        assert_eq!(AdminUsernames::default().scope_of(&bob), "user");
    }

    #[test]
    fn the_public_jwks_is_what_the_signing_keys_publish_and_nothing_private() {
        // GIVEN the JWKS of the signing keys, as signing-key.sh stores it
        let published = serde_json::to_string(&test_keys().into_jwks()).unwrap();
        // THEN it reads back as the same keys
        let read = public_jwks(&published).unwrap();
        assert_eq!(read, test_keys().into_jwks());
        assert!(read.find("k1").is_some());

        // A key with a private member, no keys, no kid or not RSA: refused.
        let mut private: serde_json::Value = serde_json::from_str(&published).unwrap();
        private["keys"][0]["d"] = serde_json::json!("c2VjcmV0");
        let mut no_kid: serde_json::Value = serde_json::from_str(&published).unwrap();
        no_kid["keys"][0].as_object_mut().unwrap().remove("kid");
        let not_rsa = serde_json::json!({"keys": [{"kty": "oct", "kid": "k", "k": "c2VjcmV0"}]});
        for bad in [
            private.to_string(),
            no_kid.to_string(),
            not_rsa.to_string(),
            r#"{"keys": []}"#.to_owned(),
            "{}".to_owned(),
            "not json".to_owned(),
        ] {
            assert!(public_jwks(&bad).is_err(), "{bad} was accepted");
        }
    }

    #[test]
    fn the_secret_must_name_an_existing_active_key() {
        let secret = serde_json::json!({"active_kid": "k2", "keys": [{"kid": "k1", "private_key_pem": TEST_KEY_PEM}]});
        assert!(SigningKeys::from_secret(&secret.to_string()).is_err());
        assert!(SigningKeys::from_secret("not json").is_err());
    }
}
