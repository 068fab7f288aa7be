//! The one place where storage failures become what clients see.

use shutter_core::ApiError;
use shutter_store::StoreError;

use crate::store;

/// Storage failures as clients see them: each conflict label the stores use, once. Use
/// cases retry the races they expect; this is what is left when one kept losing.
pub(crate) fn api(err: StoreError) -> ApiError {
    shutter_http::store_error(err, |label| match label {
        store::STALE_ROLES => ApiError::conflict(
            "concurrent_update",
            "role",
            "the account's roles kept changing meanwhile; retry",
        ),
        _ => concurrent_update(),
    })
}

/// The report queue kept changing while the request tried to add to it.
pub(crate) fn concurrent_update() -> ApiError {
    ApiError::conflict(
        "concurrent_update",
        "target",
        "the target's reports kept changing meanwhile; retry",
    )
}
