//! The one place where the feed's storage failures become client-facing errors.

use shutter_core::ApiError;
use shutter_store::StoreError;

/// Storage failures as clients see them. `GET /v1/feed` only reads, so no condition of
/// the feed's can fail there: a conflict would be a bug, answered like any other storage
/// failure (an opaque 500, its cause logged).
pub(crate) fn api(err: StoreError) -> ApiError {
    shutter_http::store_error(err, |label| ApiError::internal(StoreError::Conflict(label)))
}
