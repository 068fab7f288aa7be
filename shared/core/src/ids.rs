//! Ids are ULIDs (sortable by creation time, so "newest first" is a key order);
//! times are UTC RFC 3339.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use ulid::Ulid;

use crate::ApiError;

/// A fresh ULID as its canonical 26-character string.
pub fn new_id() -> String {
    Ulid::new().to_string()
}

/// Parses a client-supplied id, naming `field` in the 400 if it is not a ULID.
pub fn parse_id(field: &str, raw: &str) -> Result<Ulid, ApiError> {
    Ulid::from_string(raw).map_err(|_| ApiError::invalid(field, "must be a ULID"))
}

/// Now, as UTC RFC 3339.
pub fn now_rfc3339() -> String {
    OffsetDateTime::now_utc()
        .format(&Rfc3339)
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn now_is_rfc3339_utc() {
        let now = now_rfc3339();
        assert!(OffsetDateTime::parse(&now, &Rfc3339).is_ok());
        assert!(now.ends_with('Z'));
    }
}
