//! The one place where storage failures become what clients see.

use shutter_core::ApiError;
use shutter_store::StoreError;

use crate::store;

/// Storage failures as clients see them: each conflict label the stores use, once.
pub(crate) fn api(err: StoreError) -> ApiError {
    shutter_http::store_error(err, |label| match label {
        store::ACCOUNT_DELETED => ApiError::Unauthorized("the account no longer exists"),
        // Use cases read a stale like again and decide anew; this is what is left when
        // it kept changing.
        store::STALE => concurrent_update(),
        _ => concurrent_update(),
    })
}

/// The like kept changing while the request tried to change it.
pub(crate) fn concurrent_update() -> ApiError {
    ApiError::conflict(
        "concurrent_update",
        "like",
        "the like kept changing meanwhile; retry",
    )
}
