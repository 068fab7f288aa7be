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
    fn now_is_rfc3339_utc() {
        let now = now_rfc3339();
        assert!(OffsetDateTime::parse(&now, &Rfc3339).is_ok());
        assert!(now.ends_with('Z'));
    }
}
