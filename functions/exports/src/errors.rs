//! The one place where storage conflicts become client-facing codes.

use shutter_core::ApiError;
use shutter_identity::export::{EXPORT_CHANGED, EXPORT_NO_ACCOUNT};
use shutter_store::StoreError;

/// Another export was started meanwhile.
pub(crate) fn in_progress() -> ApiError {
    ApiError::conflict(
        "export_in_progress",
        "export",
        "an export of this account is pending or running; GET /v1/users/me/export follows it",
    )
}

/// Storage failures as clients see them: each conflict label the records use, once.
pub(crate) fn api(err: StoreError) -> ApiError {
    shutter_http::store_error(err, |label| match label {
        EXPORT_NO_ACCOUNT => ApiError::NotFound("account"),
        EXPORT_CHANGED => in_progress(),
        _ => ApiError::conflict("concurrent_update", "export", "changed meanwhile; retry"),
    })
}
