//! The one place where storage failures and broken input rules become what clients see.

use shutter_core::ApiError;
use shutter_store::StoreError;

use crate::model::Invalid;
use crate::store;

/// Storage failures as clients see them: each conflict label the store reports, once.
pub(crate) fn api(err: StoreError) -> ApiError {
    shutter_http::store_error(err, |label| match label {
        store::STALE => version_conflict(),
        store::ACCOUNT_DELETED => account_deleted(),
        store::KEY_REUSED => ApiError::conflict(
            "idempotency_key_reused",
            "Idempotency-Key",
            "this key was used for a different request",
        ),
        // No endpoint expects any other conflict (a taken ULID, a repeated event id): a
        // bug, answered as one.
        other => ApiError::internal(StoreError::Conflict(other)),
    })
}

/// The caller's account is deleted; its token is still valid for a while.
pub(crate) fn account_deleted() -> ApiError {
    ApiError::Unauthorized("the account no longer exists")
}

/// Staff removed the post: it cannot be edited any more (its author may still delete it).
pub(crate) fn post_removed() -> ApiError {
    ApiError::conflict(
        "post_removed",
        "id",
        "staff removed this post; it can no longer be edited",
    )
}

/// The post changed since the client read it.
pub(crate) fn version_conflict() -> ApiError {
    ApiError::conflict(
        "version_conflict",
        "version",
        "the post changed since you read it; read it again",
    )
}

/// Input that breaks a rule of [`crate::model`]: a 400 naming the field.
impl From<Invalid> for ApiError {
    fn from(invalid: Invalid) -> Self {
        ApiError::invalid(&invalid.field, invalid.reason)
    }
}
