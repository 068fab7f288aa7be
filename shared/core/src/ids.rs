//! Ids are ULIDs (sortable by creation time, so "newest first" is a key order);
//! times are UTC RFC 3339.

use time::OffsetDateTime;
use time::macros::format_description;
use ulid::Ulid;

use crate::ApiError;

/// A fresh ULID as its canonical 26-character string.
pub fn new_id() -> String {
    Ulid::new().to_string()
}

/// A fresh ULID and the instant it holds (millisecond precision) as UTC RFC 3339: for
/// entries listed by id whose time is shown too, so both orders agree even within one
/// millisecond.
pub fn new_id_and_time() -> (String, String) {
    let id = Ulid::new();
    (id.to_string(), rfc3339(OffsetDateTime::from(id.datetime())))
}

/// Parses a client-supplied id, naming `field` in the 400 if it is not a ULID.
pub fn parse_id(field: &str, raw: &str) -> Result<Ulid, ApiError> {
    Ulid::from_string(raw).map_err(|_| ApiError::invalid(field, "must be a ULID"))
}

/// Now, as UTC RFC 3339.
pub fn now_rfc3339() -> String {
    rfc3339(OffsetDateTime::now_utc())
}

/// UTC RFC 3339 with exactly three fraction digits, so that times compare as strings in
/// time order (a trimmed `.1Z` would sort after `.12Z`).
pub fn rfc3339(time: OffsetDateTime) -> String {
    time.to_offset(time::UtcOffset::UTC)
        .format(format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
        ))
        .unwrap_or_else(|_| "1970-01-01T00:00:00.000Z".to_owned())
}

/// Typed ids: a `UserId` cannot be passed where a `PostId` is expected, from the request
/// that names it to the store that keys by it. Each is a ULID's canonical text; one built
/// from client input ([`UserId::parse`]) is checked, one read back from storage or an
/// event is trusted as the service wrote it.
macro_rules! typed_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// A fresh id (a new ULID).
            pub fn generate() -> Self {
                Self(new_id())
            }

            /// A client-supplied id; a 400 naming `field` unless it is a ULID.
            pub fn parse(field: &str, raw: &str) -> Result<Self, ApiError> {
                parse_id(field, raw).map(|id| Self(id.to_string()))
            }

            /// An id the service itself stored or received in an event.
            pub fn trusted(raw: impl Into<String>) -> Self {
                Self(raw.into())
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }

            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        /// An id reads as its text wherever a `&str` is expected (keys, logs).
        impl std::ops::Deref for $name {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl std::borrow::Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<String> for $name {
            fn eq(&self, other: &String) -> bool {
                &self.0 == other
            }
        }

        impl PartialEq<$name> for String {
            fn eq(&self, other: &$name) -> bool {
                *self == other.0
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }

        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .description(Some("ULID"))
                    .min_length(Some(26))
                    .max_length(Some(26))
                    .pattern(Some("^[0-9A-HJKMNP-TV-Za-hjkmnp-tv-z]{26}$"))
                    .into()
            }
        }

        impl utoipa::ToSchema for $name {}
    };
}

typed_id!(
    /// A user account's id (the access token's `sub`).
    UserId
);
typed_id!(
    /// A post's id.
    PostId
);
typed_id!(
    /// A comment's id.
    CommentId
);
typed_id!(
    /// A media item's id (one of a post's photos or videos).
    MediaId
);
typed_id!(
    /// A domain event's id; consumers deduplicate on it.
    EventId
);

#[cfg(test)]
mod tests {
    use super::*;

    use time::format_description::well_known::Rfc3339;

    #[test]
    fn an_ids_time_is_the_instant_it_holds() {
        let (id, time) = new_id_and_time();
        let held = OffsetDateTime::from(Ulid::from_string(&id).unwrap().datetime());
        assert_eq!(OffsetDateTime::parse(&time, &Rfc3339).unwrap(), held);
    }

    #[test]
    fn times_sort_as_strings_in_time_order() {
        let at = |ms: i64| rfc3339(OffsetDateTime::UNIX_EPOCH + time::Duration::milliseconds(ms));
        assert_eq!(at(100), "1970-01-01T00:00:00.100Z");
        assert!(at(100) < at(120) && at(120) < at(1_000) && at(999) < at(1_000));
    }

    #[test]
    fn ids_are_ulids_and_sort_by_time() {
        let a = new_id();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = new_id();
        assert_eq!(a.len(), 26);
        assert!(a < b, "later id must sort after earlier id");
        assert!(parse_id("id", &a).is_ok());
    }

    #[test]
    fn invalid_ids_name_the_field() {
        let err = parse_id("post_id", "not-a-ulid").unwrap_err();
        assert_eq!(err.status(), 400);
        assert_eq!(err.problem().field.as_deref(), Some("post_id"));
    }

    #[test]
    fn typed_ids_parse_client_input_and_name_the_field() {
        let id = PostId::generate();
        assert_eq!(PostId::parse("post_id", id.as_str()).unwrap(), id);
        let err = UserId::parse("user_id", "nope").unwrap_err();
        assert_eq!(err.problem().field.as_deref(), Some("user_id"));
        assert_eq!(serde_json::to_string(&id).unwrap(), format!("\"{id}\""));
    }

    #[test]
    fn now_is_rfc3339_utc() {
        let now = now_rfc3339();
        assert!(OffsetDateTime::parse(&now, &Rfc3339).is_ok());
        assert!(now.ends_with('Z'));
    }
}
