//! Opaque pagination cursors. The server signs the position it will resume from with
//! HMAC-SHA256, so a client can neither forge nor tamper with one; a bad cursor is a 400.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::ApiError;

pub const DEFAULT_LIMIT: u16 = 20;
pub const MAX_LIMIT: u16 = 100;

/// Signs and verifies cursors. `scope` binds a cursor to one list (a followers cursor
/// cannot be replayed against a posts list).
#[derive(Clone)]
pub struct CursorSigner {
    key: Vec<u8>,
}

impl std::fmt::Debug for CursorSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CursorSigner(..)")
    }
}

impl CursorSigner {
    pub fn new(key: impl Into<Vec<u8>>) -> Self {
        Self { key: key.into() }
    }

    fn mac(&self, scope: &str, payload: &[u8]) -> Hmac<Sha256> {
        #[allow(clippy::expect_used)]
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC accepts any key length");
        mac.update(scope.as_bytes());
        mac.update(&[0]);
        mac.update(payload);
        mac
    }

    pub fn sign<T: Serialize>(&self, scope: &str, position: &T) -> String {
        let payload = serde_json::to_vec(position).unwrap_or_default();
        let tag = self.mac(scope, &payload).finalize().into_bytes();
        format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(&payload),
            URL_SAFE_NO_PAD.encode(tag)
        )
    }

    pub fn verify<T: DeserializeOwned>(&self, scope: &str, cursor: &str) -> Result<T, ApiError> {
        let bad = || ApiError::invalid("cursor", "is not a cursor this server issued");
        let (payload, tag) = cursor.split_once('.').ok_or_else(bad)?;
        let payload = URL_SAFE_NO_PAD.decode(payload).map_err(|_| bad())?;
        let tag = URL_SAFE_NO_PAD.decode(tag).map_err(|_| bad())?;
        self.mac(scope, &payload)
            .verify_slice(&tag)
            .map_err(|_| bad())?;
        serde_json::from_slice(&payload).map_err(|_| bad())
    }
}

/// `?limit=&cursor=` as parsed from a query string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    pub limit: u16,
    pub cursor: Option<String>,
}

impl PageRequest {
    pub fn parse(limit: Option<&str>, cursor: Option<&str>) -> Result<Self, ApiError> {
        let limit = match limit {
            None => DEFAULT_LIMIT,
            Some(raw) => match raw.parse::<u16>() {
                Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
                _ => {
                    return Err(ApiError::invalid(
                        "limit",
                        format!("must be an integer from 1 to {MAX_LIMIT}"),
                    ));
                }
            },
        };
        let cursor = cursor.filter(|c| !c.is_empty()).map(str::to_owned);
        Ok(Self { limit, cursor })
    }
}

/// Every list answers `{"items": [...], "next_cursor": ...}`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Serialize, Deserialize, PartialEq)]
    struct Pos {
        pk: String,
        sk: String,
    }

    fn pos() -> Pos {
        Pos {
            pk: "USER#1".into(),
            sk: "POST#9".into(),
        }
    }

    #[test]
    fn a_signed_cursor_round_trips() {
        let s = CursorSigner::new(b"k".to_vec());
        let c = s.sign("posts", &pos());
        assert_eq!(s.verify::<Pos>("posts", &c).unwrap(), pos());
    }

    #[test]
    fn tampered_forged_or_replayed_cursors_are_400() {
        let s = CursorSigner::new(b"k".to_vec());
        let c = s.sign("posts", &pos());
        let (payload, tag) = c.split_once('.').unwrap();
        let forged_payload = URL_SAFE_NO_PAD.encode(br#"{"pk":"USER#2","sk":"POST#9"}"#);
        for bad in [
            format!("{forged_payload}.{tag}"),
            format!("{payload}.AAAA"),
            "garbage".to_owned(),
            CursorSigner::new(b"other".to_vec()).sign("posts", &pos()),
        ] {
            let err = s.verify::<Pos>("posts", &bad).unwrap_err();
            assert_eq!(
                (err.status(), err.problem().field.as_deref()),
                (400, Some("cursor"))
            );
        }
        assert!(
            s.verify::<Pos>("followers", &c).is_err(),
            "cursor is bound to its list"
        );
    }

    #[test]
    fn limits_default_and_bound() {
        assert_eq!(PageRequest::parse(None, None).unwrap().limit, 20);
        assert_eq!(PageRequest::parse(Some("100"), None).unwrap().limit, 100);
        for bad in ["0", "101", "-1", "ten"] {
            assert!(PageRequest::parse(Some(bad), None).is_err());
        }
    }
}
