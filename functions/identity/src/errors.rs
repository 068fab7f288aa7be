//! The one place where the identity table's storage failures become what clients see.

use shutter_core::ApiError;
use shutter_store::StoreError;

use crate::store;

/// Storage failures as clients see them: each conflict label the store uses, once. The
/// rotation guards (a token that may not be rotated) are the refresh use case's to
/// answer; here, like id collisions, they could only be a bug.
pub(crate) fn api(err: StoreError) -> ApiError {
    shutter_http::store_error(err, |label| match label {
        store::USERNAME => {
            ApiError::conflict("username_taken", "username", "this username is taken")
        }
        store::EMAIL => {
            ApiError::conflict("email_taken", "email", "an account already uses this email")
        }
        store::ACCOUNT_EXISTS => {
            ApiError::conflict("conflict", "user_id", "account already exists")
        }
        store::NO_ACCOUNT => ApiError::NotFound("account"),
        store::EMAIL_CHANGED => ApiError::conflict(
            "concurrent_update",
            "email",
            "the account changed meanwhile; retry",
        ),
        store::PASSWORD_CHANGED => ApiError::conflict(
            "concurrent_update",
            "current_password",
            "the password changed meanwhile",
        ),
        other => ApiError::internal(StoreError::Conflict(other)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_label_has_its_client_code() {
        for (label, status, code, field) in [
            (store::USERNAME, 409, "username_taken", Some("username")),
            (store::EMAIL, 409, "email_taken", Some("email")),
            (store::ACCOUNT_EXISTS, 409, "conflict", Some("user_id")),
            (store::NO_ACCOUNT, 404, "not_found", None),
            (
                store::EMAIL_CHANGED,
                409,
                "concurrent_update",
                Some("email"),
            ),
            (
                store::PASSWORD_CHANGED,
                409,
                "concurrent_update",
                Some("current_password"),
            ),
            (store::SESSION_EXISTS, 500, "internal_error", None),
            (
                shutter_events::outbox::OUTBOX_LABEL,
                500,
                "internal_error",
                None,
            ),
        ] {
            let problem = api(StoreError::Conflict(label)).problem();
            assert_eq!(
                (
                    problem.status,
                    problem.code.as_str(),
                    problem.field.as_deref()
                ),
                (status, code, field),
                "{label}"
            );
        }
        let unavailable = api(StoreError::Unavailable("throttled".into()));
        assert_eq!(unavailable.status(), 500);
        assert!(
            !serde_json::to_string(&unavailable.problem())
                .unwrap()
                .contains("throttled")
        );
    }
}
