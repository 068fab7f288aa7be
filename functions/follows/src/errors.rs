//! The one place where storage failures become what clients see.

use shutter_core::ApiError;
use shutter_store::StoreError;

use crate::store;

/// Storage failures as clients see them: each conflict label the store uses, once. Use
/// cases match the conflicts they expect (a race to decide again) before this.
pub(crate) fn api(err: StoreError) -> ApiError {
    shutter_http::store_error(err, |label| match label {
        // A user who blocks you, or whose account is deleted, does not exist for you.
        store::BLOCKED | store::ACCOUNT_DELETED => ApiError::NotFound("user"),
        // STALE: racing requests won every attempt.
        _ => kept_changing(),
    })
}

/// A follow or block that racing requests kept changing: the client may retry.
pub(crate) fn kept_changing() -> ApiError {
    ApiError::conflict(
        "concurrent_update",
        "username",
        "the follow kept changing meanwhile; retry",
    )
}
