//! One client-facing error type with one status mapping. Internal causes are logged
//! by the caller and never sent: a 5xx body carries only the request id.

use serde::{Deserialize, Serialize};

/// The RFC 9457 body. `code` is stable for clients to branch on; `field` names the
/// offending input on a 4xx.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Problem {
    #[serde(rename = "type")]
    pub type_uri: String,
    pub title: String,
    pub status: u16,
    pub code: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// On a 429 `rate_limited`: the name of the limit reached (`likes`, `posts`...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<String>,
    /// On a 429 `rate_limited`: the limit's window, in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_seconds: Option<u64>,
    /// On a 429 `rate_limited`: seconds until a retry can succeed (as `Retry-After`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
    /// On a 403 `account_suspended`: when the suspension ends (RFC 3339); absent for a
    /// ban, which holds until it is lifted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
}

pub const PROBLEM_CONTENT_TYPE: &str = "application/problem+json";

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("invalid input in {field}: {reason}")]
    Invalid { field: String, reason: String },
    #[error("malformed JSON body: {0}")]
    MalformedJson(String),
    #[error("body too large")]
    PayloadTooLarge,
    #[error("unsupported media type")]
    UnsupportedMediaType,
    #[error("authentication required")]
    Unauthorized(&'static str),
    #[error("forbidden")]
    Forbidden,
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("conflict: {detail}")]
    Conflict {
        code: &'static str,
        field: Option<String>,
        detail: String,
    },
    #[error("invalid credentials")]
    InvalidCredentials,
    /// A password asked again to confirm a sensitive action (its field) is wrong: 403, so
    /// a client never mistakes it for an expired token (401) or malformed input (400).
    #[error("{0} is not the account's password")]
    PasswordMismatch(&'static str),
    /// Too many requests of one kind (`limit`, counted over `window_seconds`): the request
    /// was refused before it changed anything; a retry after `retry_after` seconds can pass.
    #[error("rate limit {limit} reached")]
    RateLimited {
        limit: String,
        window_seconds: u64,
        retry_after: u64,
    },
    /// The caller's account is suspended until `until` (RFC 3339), or banned (`None`):
    /// login, refresh and every write are refused.
    #[error("account suspended")]
    AccountSuspended { until: Option<String> },
    #[error("internal error: {0}")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl ApiError {
    pub fn invalid(field: &str, reason: impl Into<String>) -> Self {
        Self::Invalid {
            field: field.to_owned(),
            reason: reason.into(),
        }
    }

    pub fn conflict(code: &'static str, field: &str, detail: impl Into<String>) -> Self {
        Self::Conflict {
            code,
            field: Some(field.to_owned()),
            detail: detail.into(),
        }
    }

    pub fn internal(err: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Internal(Box::new(err))
    }

    pub fn status(&self) -> u16 {
        match self {
            Self::Invalid { .. } | Self::MalformedJson(_) => 400,
            Self::Unauthorized(_) | Self::InvalidCredentials => 401,
            Self::Forbidden | Self::PasswordMismatch(_) | Self::AccountSuspended { .. } => 403,
            Self::NotFound(_) => 404,
            Self::MethodNotAllowed => 405,
            Self::Conflict { .. } => 409,
            Self::PayloadTooLarge => 413,
            Self::UnsupportedMediaType => 415,
            Self::RateLimited { .. } => 429,
            Self::Internal(_) => 500,
        }
    }

    fn code(&self) -> &str {
        match self {
            Self::Invalid { .. } => "invalid_input",
            Self::MalformedJson(_) => "malformed_json",
            Self::PayloadTooLarge => "payload_too_large",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::Unauthorized(_) => "unauthorized",
            Self::InvalidCredentials => "invalid_credentials",
            Self::Forbidden => "forbidden",
            Self::PasswordMismatch(_) => "password_mismatch",
            Self::NotFound(_) => "not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::Conflict { code, .. } => code,
            Self::RateLimited { .. } => "rate_limited",
            Self::AccountSuspended { .. } => "account_suspended",
            Self::Internal(_) => "internal_error",
        }
    }

    /// The body a client sees. Internal errors say nothing of their cause.
    pub fn problem(&self) -> Problem {
        let status = self.status();
        let title = http::StatusCode::from_u16(status)
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or("Error")
            .to_owned();
        let (detail, field) = match self {
            Self::Invalid { field, reason } => {
                (Some(format!("{field} {reason}")), Some(field.clone()))
            }
            Self::MalformedJson(why) => {
                (Some(format!("request body is not valid JSON: {why}")), None)
            }
            Self::PayloadTooLarge => (Some("request body exceeds 64 KiB".to_owned()), None),
            Self::UnsupportedMediaType => (Some("send application/json".to_owned()), None),
            Self::Unauthorized(why) => (Some((*why).to_owned()), None),
            Self::InvalidCredentials => (Some("login or password is wrong".to_owned()), None),
            Self::Forbidden => (Some("you may not act on this resource".to_owned()), None),
            Self::PasswordMismatch(field) => (
                Some(format!("{field} is not the account's password")),
                Some((*field).to_owned()),
            ),
            Self::NotFound(what) => (Some(format!("{what} not found")), None),
            Self::MethodNotAllowed => (None, None),
            Self::Conflict { field, detail, .. } => (Some(detail.clone()), field.clone()),
            Self::RateLimited {
                limit, retry_after, ..
            } => (
                Some(format!(
                    "too many requests: limit {limit} reached; retry in {retry_after} s"
                )),
                None,
            ),
            Self::AccountSuspended { until: Some(until) } => (
                Some(format!("the account is suspended until {until}")),
                None,
            ),
            Self::AccountSuspended { until: None } => {
                (Some("the account is banned".to_owned()), None)
            }
            Self::Internal(_) => (
                Some("an internal error occurred; quote the request id".to_owned()),
                None,
            ),
        };
        let mut problem = Problem {
            type_uri: format!(
                "https://shutter.dev/problems/{}",
                self.code().replace('_', "-")
            ),
            title,
            status,
            code: self.code().to_owned(),
            detail,
            field,
            request_id: None,
            limit: None,
            window_seconds: None,
            retry_after: None,
            until: None,
        };
        if let Self::AccountSuspended { until } = self {
            problem.until.clone_from(until);
        }
        if let Self::RateLimited {
            limit,
            window_seconds,
            retry_after,
        } = self
        {
            problem.limit = Some(limit.clone());
            problem.window_seconds = Some(*window_seconds);
            problem.retry_after = Some(*retry_after);
        }
        problem
    }

    /// True when a caller should retry (used by consumers to tell transient from poison).
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Internal(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_errors_do_not_leak_their_cause() {
        let err = ApiError::internal(std::io::Error::other("dynamodb password=hunter2"));
        let body = serde_json::to_string(&err.problem()).unwrap();
        assert_eq!(err.status(), 500);
        assert!(!body.contains("hunter2"));
        assert!(body.contains("internal_error"));
    }

    #[test]
    fn invalid_input_names_the_field() {
        let p = ApiError::invalid("username", "must be 3-30 characters").problem();
        assert_eq!(p.status, 400);
        assert_eq!(p.field.as_deref(), Some("username"));
        assert_eq!(p.code, "invalid_input");
        assert_eq!(p.title, "Bad Request");
    }

    #[test]
    fn rate_limits_say_which_limit_and_when_to_retry() {
        let p = ApiError::RateLimited {
            limit: "likes".to_owned(),
            window_seconds: 3600,
            retry_after: 42,
        }
        .problem();
        assert_eq!((p.status, p.code.as_str()), (429, "rate_limited"));
        assert_eq!(
            (p.limit.as_deref(), p.window_seconds, p.retry_after),
            (Some("likes"), Some(3600), Some(42))
        );
    }

    #[test]
    fn a_suspension_says_until_when_and_a_ban_does_not() {
        let p = ApiError::AccountSuspended {
            until: Some("2026-12-08T00:00:00Z".to_owned()),
        }
        .problem();
        assert_eq!((p.status, p.code.as_str()), (403, "account_suspended"));
        assert_eq!(p.until.as_deref(), Some("2026-12-08T00:00:00Z"));
        let ban = ApiError::AccountSuspended { until: None }.problem();
        assert_eq!((ban.status, ban.until), (403, None));
        assert_eq!(ban.detail.as_deref(), Some("the account is banned"));
    }

    #[test]
    fn conflicts_keep_their_stable_code() {
        let p = ApiError::conflict("username_taken", "username", "username is taken").problem();
        assert_eq!((p.status, p.code.as_str()), (409, "username_taken"));
    }
}
