//! The one place where storage and queue failures become what clients see.

use shutter_core::ApiError;
use shutter_store::StoreError;

use crate::queue::QueueError;
use crate::store;

/// Storage failures as clients see them: each conflict label the store reports to the
/// endpoints, once. Conflicts the use cases expect (a like that is there already, a
/// comment deleted meanwhile by someone else) are handled before this.
pub(crate) fn api(err: StoreError) -> ApiError {
    shutter_http::store_error(err, |label| match label {
        store::COMMENT_GONE => ApiError::NotFound("comment"),
        store::ACCOUNT_DELETED => account_deleted(),
        store::KEY_REUSED => ApiError::conflict(
            "idempotency_key_reused",
            "Idempotency-Key",
            "this key was used for a different request",
        ),
        // Any other failed condition is a bug of ours, not the client's: an opaque 500.
        other => ApiError::internal(StoreError::Conflict(other)),
    })
}

/// The caller's account is deleted; its token is still valid for a while.
pub(crate) fn account_deleted() -> ApiError {
    ApiError::Unauthorized("the account no longer exists")
}

/// A comment that could not be queued: the client may retry.
pub(crate) fn queue(err: QueueError) -> ApiError {
    ApiError::internal(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gone_comment_is_a_404_and_other_failures_are_opaque_500s() {
        assert_eq!(api(StoreError::Conflict(store::COMMENT_GONE)).status(), 404);
        let other = api(StoreError::Conflict(store::ALREADY_LIKED));
        assert_eq!(other.status(), 500);
        let down = api(StoreError::Unavailable("throttled password=x".into()));
        assert_eq!(down.status(), 500);
        assert!(
            !down
                .problem()
                .detail
                .unwrap_or_default()
                .contains("password")
        );
        assert_eq!(
            queue(QueueError::Unavailable("sqs down".into())).status(),
            500
        );
    }
}
