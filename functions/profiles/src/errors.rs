//! The one place where storage failures become what clients see.

use shutter_core::ApiError;
use shutter_store::StoreError;

use crate::store;

/// Storage (and media) failures as clients see them: each conflict label the endpoints
/// can meet, once. Anything else is an opaque 500, its cause logged.
pub(crate) fn api(err: StoreError) -> ApiError {
    shutter_http::store_error(err, |label| match label {
        // The profile changed between the read and the save of an edit.
        store::STALE => ApiError::conflict(
            "concurrent_update",
            "profile",
            "the profile changed meanwhile; retry",
        ),
        // Any other failed condition is a bug of ours, not the client's.
        other => ApiError::internal(StoreError::Conflict(other)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stale_profile_is_a_409_and_other_failures_are_opaque_500s() {
        let stale = api(StoreError::Conflict(store::STALE));
        assert_eq!(
            (stale.status(), stale.problem().code.as_str()),
            (409, "concurrent_update")
        );
        assert_eq!(stale.problem().field.as_deref(), Some("profile"));
        assert_eq!(api(StoreError::Conflict(store::MARKER_MOVED)).status(), 500);
        let down = api(StoreError::Unavailable("throttled secret=x".into()));
        assert_eq!(down.status(), 500);
        assert!(!down.problem().detail.unwrap_or_default().contains("secret"));
    }
}
