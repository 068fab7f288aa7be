//! Validated newtypes: a value of one of these types is valid by construction, so
//! handlers never see a raw string. Each deserialises through `TryFrom<String>`, so a
//! bad field in a JSON body becomes a 400 that names it (see [`parse_json_body`]).

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::ApiError;

/// Bodies above this are refused with 413 before parsing.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Parses a JSON request body into `T`, naming the offending field on failure.
pub fn parse_json_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    if body.len() > MAX_BODY_BYTES {
        return Err(ApiError::PayloadTooLarge);
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::MalformedJson("body is empty".to_owned()));
    }
    // Every body is a JSON object; serde would also read a struct from an array.
    if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(ApiError::invalid("body", "must be a JSON object"));
    }
    let de = &mut serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(de).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            ApiError::MalformedJson(inner.to_string())
        } else if path == "." {
            // A missing field or a body of the wrong shape: serde's message names it.
            let msg = inner.to_string();
            match msg.split('`').nth(1) {
                Some(field) if msg.starts_with("missing field") => {
                    ApiError::invalid(field, "is required")
                }
                _ => ApiError::invalid("body", strip_position(&msg)),
            }
        } else {
            ApiError::invalid(&path, strip_position(&inner.to_string()))
        }
    })
}

/// A non-negative whole number, also when JSON writes it as `187.0` (JSON Schema's
/// `integer` includes such numbers, so clients and generators may send them).
pub fn whole_number<'de, D: serde::Deserializer<'de>>(de: D) -> Result<u64, D::Error> {
    let n = serde_json::Number::deserialize(de)?;
    if let Some(v) = n.as_u64() {
        return Ok(v);
    }
    match n.as_f64() {
        Some(f) if f >= 0.0 && f.fract() == 0.0 && f <= 9_007_199_254_740_992.0 => Ok(f as u64),
        _ => Err(serde::de::Error::custom(format!(
            "expected a whole number, got {n}"
        ))),
    }
}

fn strip_position(msg: &str) -> String {
    msg.split(" at line ").next().unwrap_or(msg).to_owned()
}

/// At most this many distinct hashtags in one caption or comment: each is an entry of
/// a tag index, so an unbounded number is a lever for denial of service.
pub const MAX_HASHTAGS: usize = 30;
/// At most this many distinct mentions in one caption or comment: each is a lookup and
/// a notification.
pub const MAX_MENTIONS: usize = 20;

/// Refuses text with more than [`MAX_HASHTAGS`] distinct hashtags or [`MAX_MENTIONS`]
/// distinct mentions (as the caller's parser counts them): why, for a 400 naming the
/// field.
pub fn check_tag_counts(hashtags: usize, mentions: usize) -> Result<(), String> {
    if hashtags > MAX_HASHTAGS {
        return Err(format!(
            "may have at most {MAX_HASHTAGS} hashtags (has {hashtags})"
        ));
    }
    if mentions > MAX_MENTIONS {
        return Err(format!(
            "may mention at most {MAX_MENTIONS} users (has {mentions})"
        ));
    }
    Ok(())
}

macro_rules! newtype {
    ($(#[$doc:meta])* $name:ident, $check:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = String;
            fn try_from(raw: String) -> Result<Self, String> {
                let check: fn(String) -> Result<String, String> = $check;
                check(raw).map(Self)
            }
        }

        impl From<$name> for String {
            fn from(v: $name) -> String {
                v.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

newtype!(
    /// 3-30 of `[a-z0-9._]`, stored lower-case so uniqueness is case-insensitive.
    Username,
    |raw| {
        let v = raw.to_ascii_lowercase();
        let n = v.chars().count();
        if !(3..=30).contains(&n) {
            return Err("must be 3-30 characters".into());
        }
        if !v.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '_') {
            return Err("may contain only letters, digits, '.' and '_'".into());
        }
        if v.starts_with('.') || v.ends_with('.') || v.contains("..") {
            return Err("may not start or end with '.' or contain '..'".into());
        }
        Ok(v)
    }
);

newtype!(
    /// A plausible address (one '@', a dotted domain, no spaces), at most 254 bytes,
    /// stored lower-case so uniqueness is case-insensitive.
    Email,
    |raw| {
        let v = raw.to_ascii_lowercase();
        let valid_shape = match v.split_once('@') {
            Some((local, domain)) => {
                !local.is_empty()
                    && local.len() <= 64
                    && !domain.contains('@')
                    && domain.contains('.')
                    && !domain.starts_with('.')
                    && !domain.ends_with('.')
                    && !domain.contains("..")
            }
            None => false,
        };
        if v.len() > 254 || !valid_shape || v.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err("must be a valid email address".into());
        }
        Ok(v)
    }
);

/// Whether `c` is a Unicode format character (general category Cf, Unicode 16): invisible
/// characters that change how the text around them is shown. Listed by hand so that the
/// rule does not move with a dependency's tables.
fn is_format_char(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{0600}'..='\u{0605}'
            | '\u{061C}'
            | '\u{06DD}'
            | '\u{070F}'
            | '\u{0890}'..='\u{0891}'
            | '\u{08E2}'
            | '\u{180E}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{206F}'
            | '\u{FEFF}'
            | '\u{FFF9}'..='\u{FFFB}'
            | '\u{110BD}'
            | '\u{110CD}'
            | '\u{13430}'..='\u{1343F}'
            | '\u{1BCA0}'..='\u{1BCA3}'
            | '\u{1D173}'..='\u{1D17A}'
            | '\u{E0001}'
            | '\u{E0020}'..='\u{E007F}'
    )
}

/// A character that a joiner may stand between: visible, not a space or another format
/// character.
fn joinable(c: Option<char>) -> bool {
    c.is_some_and(|c| !c.is_whitespace() && !c.is_control() && !is_format_char(c))
}

/// The first format character that user text may not hold, if any. Text spoofing works
/// through them: a bidirectional override (U+202E) or isolate shows `moc.elgoog` as
/// `google.com` and reorders a caption around a link; marks (U+200E/F, U+061C), zero-width
/// spaces and the word joiner hide characters inside names; tag characters smuggle
/// invisible ASCII. Two kinds are kept because languages and emoji need them, and only
/// where they have that meaning:
/// - the zero-width joiner and non-joiner (U+200D, U+200C) between two visible
///   characters: emoji sequences (👩‍💻) and Indic and Persian writing use them; at an
///   edge, doubled or next to a space they only hide;
/// - tag characters in an emoji tag sequence: U+1F3F4 (🏴), then tags U+E0020–U+E007E,
///   closed by U+E007F (the flags of England, Scotland and Wales).
pub fn refused_format_char(text: &str) -> Option<char> {
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\u{1F3F4}' {
            // An emoji tag sequence: skip its tags when it is closed.
            let run = chars[i + 1..]
                .iter()
                .take_while(|t| ('\u{E0020}'..='\u{E007E}').contains(*t))
                .count();
            if run > 0 && chars.get(i + 1 + run) == Some(&'\u{E007F}') {
                i += run + 2;
                continue;
            }
        } else if c == '\u{200C}' || c == '\u{200D}' {
            let before = i.checked_sub(1).and_then(|j| chars.get(j)).copied();
            if !(joinable(before) && joinable(chars.get(i + 1).copied())) {
                return Some(c);
            }
        } else if is_format_char(c) {
            return Some(c);
        }
        i += 1;
    }
    None
}

/// Refuses text that holds a format character [`refused_format_char`] refuses: why, for a
/// 400 naming the field. Display names, bios, captions, locations and comments use it.
pub fn check_format_chars(text: &str) -> Result<(), String> {
    match refused_format_char(text) {
        Some(c) => Err(format!(
            "may not contain invisible formatting characters such as U+{:04X} (bidirectional overrides, zero-width characters)",
            u32::from(c)
        )),
        None => Ok(()),
    }
}

/// The format characters the schemas' patterns exclude outright (JSON Schema patterns
/// cannot say "between two visible characters"; the API's own check is exact).
macro_rules! refused_format_class {
    () => {
        "\\u00ad\\u0600-\\u0605\\u061c\\u06dd\\u070f\\u0890\\u0891\\u08e2\\u180e\\u200b\\u200e\\u200f\\u202a-\\u202e\\u2060-\\u2064\\u2066-\\u206f\\ufeff\\ufff9-\\ufffb"
    };
}

/// What free text refuses, in words, for the schemas of captions, locations and
/// comments (display names and bios say it in their own terms).
pub const REFUSED_TEXT_CHARS: &str = "no control characters but newline, and no invisible formatting characters (Unicode category Cf: bidirectional overrides, embeddings, isolates and marks, zero-width spaces, word joiners, the byte-order mark; a zero-width joiner or non-joiner only between two visible characters, tag characters only in an emoji flag); a refused character is a 400 `invalid_input` naming the field";

/// The pattern of free text that may hold newlines: no other control character, none of
/// the format characters [`refused_format_char`] refuses wherever they stand.
pub const MULTILINE_TEXT_PATTERN: &str = concat!(
    "^[^\\x00-\\x09\\x0b-\\x1f\\x7f-\\x9f",
    refused_format_class!(),
    "]*$"
);

/// [`MULTILINE_TEXT_PATTERN`], and not only blanks.
pub const NON_BLANK_MULTILINE_TEXT_PATTERN: &str = concat!(
    "^[^\\x00-\\x09\\x0b-\\x1f\\x7f-\\x9f",
    refused_format_class!(),
    "]*[^\\s\\x00-\\x1f\\x7f-\\x9f",
    refused_format_class!(),
    "][^\\x00-\\x09\\x0b-\\x1f\\x7f-\\x9f",
    refused_format_class!(),
    "]*$"
);

/// A new password: 10-128 characters. It cannot be printed (its `Debug` hides it) nor
/// serialised (it has no `Serialize`), so it never reaches a log line or a response; the
/// only way to its text is [`Password::expose`], for the hasher.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct Password(String);

impl Password {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Password {
    type Error = String;
    fn try_from(raw: String) -> Result<Self, String> {
        let n = raw.chars().count();
        if !(10..=128).contains(&n) {
            return Err("must be 10-128 characters".into());
        }
        Ok(Self(raw))
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(..)")
    }
}

/// A password as typed to prove who you are (login, confirming a sensitive change): any
/// text, checked only against the stored hash. Like [`Password`], it cannot be printed or
/// serialised.
#[derive(Clone, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(transparent)]
#[schema(value_type = String, format = Password)]
pub struct PasswordAttempt(String);

impl PasswordAttempt {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<String> for PasswordAttempt {
    fn from(raw: String) -> Self {
        Self(raw)
    }
}

impl std::fmt::Debug for PasswordAttempt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PasswordAttempt(..)")
    }
}

newtype!(
    /// Up to 50 characters of display name, no control characters.
    DisplayName,
    |raw| {
        let v = raw;
        if v.chars().count() > 50 || v.chars().any(char::is_control) {
            return Err("must be at most 50 characters without control characters".into());
        }
        check_format_chars(&v)?;
        Ok(v)
    }
);

newtype!(
    /// Up to 150 characters.
    Bio,
    |raw| {
        let v = raw;
        if v.chars().count() > 150 {
            return Err("must be at most 150 characters".into());
        }
        if v.chars().any(|c| c.is_control() && c != '\n') {
            return Err("may not contain control characters".into());
        }
        check_format_chars(&v)?;
        Ok(v)
    }
);

newtype!(
    /// An http(s) URL of at most 200 characters, or empty to clear it.
    Website,
    |raw| {
        let v = raw;
        if v.is_empty() {
            return Ok(v);
        }
        let rest = v.strip_prefix("https://").or_else(|| v.strip_prefix("http://"));
        let host_ok = rest.is_some_and(|r| {
            let host = r.split(['/', '?', '#']).next().unwrap_or("");
            host.contains('.') && !host.starts_with('.')
        });
        if v.chars().count() > 200 || !host_ok || v.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err("must be an http(s) URL of at most 200 characters".into());
        }
        Ok(v)
    }
);

/// The OpenAPI schema of a validated string: exactly what the rules above accept (they do
/// not trim), so the document is the contract. Usernames and emails are lower-cased after.
macro_rules! string_schema {
    ($name:ident, $desc:expr, $min:expr, $max:expr, $pattern:expr, $format:expr) => {
        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                let pattern: Option<&str> = $pattern;
                let format: Option<utoipa::openapi::KnownFormat> = $format;
                utoipa::openapi::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .description(Some($desc))
                    .min_length($min)
                    .max_length(Some($max))
                    .pattern(pattern)
                    .format(format.map(utoipa::openapi::SchemaFormat::KnownFormat))
                    .into()
            }
        }
        impl utoipa::ToSchema for $name {}
    };
}

string_schema!(
    Username,
    "3-30 of letters, digits, '.' and '_' (case-insensitive; not starting or ending with '.', no '..')",
    Some(3),
    30,
    Some("^[A-Za-z0-9_]+(\\.[A-Za-z0-9_]+)*$"),
    None
);
string_schema!(
    Email,
    "An email address (case-insensitive)",
    Some(3),
    254,
    Some(
        "^[^@\\s\\x00-\\x1f\\x7f-\\x9f]{1,64}@[^@\\s\\x00-\\x1f\\x7f-\\x9f.]+(\\.[^@\\s\\x00-\\x1f\\x7f-\\x9f.]+)+$"
    ),
    None
);
string_schema!(
    Password,
    "10-128 characters",
    Some(10),
    128,
    None,
    Some(utoipa::openapi::KnownFormat::Password)
);
string_schema!(
    DisplayName,
    "At most 50 characters, no control characters and no invisible formatting characters (bidirectional overrides and marks, zero-width spaces; a zero-width joiner only between two visible characters)",
    None,
    50,
    Some(concat!(
        "^[^\\x00-\\x1f\\x7f-\\x9f",
        refused_format_class!(),
        "]*$"
    )),
    None
);
string_schema!(
    Bio,
    "At most 150 characters; newlines allowed; no invisible formatting characters (bidirectional overrides and marks, zero-width spaces; a zero-width joiner only between two visible characters)",
    None,
    150,
    Some(concat!(
        "^[^\\x00-\\x09\\x0b-\\x1f\\x7f-\\x9f",
        refused_format_class!(),
        "]*$"
    )),
    None
);
string_schema!(
    Website,
    "An http(s) URL of at most 200 characters, or empty to clear it",
    None,
    200,
    Some(
        "^(https?://[^\\s\\x00-\\x1f\\x7f-\\x9f/?#.][^\\s\\x00-\\x1f\\x7f-\\x9f/?#]*\\.[^\\s\\x00-\\x1f\\x7f-\\x9f]*)?$"
    ),
    None
);

/// A login is a username or an email address.
impl utoipa::PartialSchema for Login {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .description(Some("A username or an email address (case-insensitive)"))
            .min_length(Some(3))
            .max_length(Some(254))
            .into()
    }
}
impl utoipa::ToSchema for Login {}

// Empty is valid for these optional profile fields. (The types come from a macro, so
// the impls are written out rather than derived.)
#[allow(clippy::derivable_impls)]
impl Default for Bio {
    fn default() -> Self {
        Self(String::new())
    }
}

#[allow(clippy::derivable_impls)]
impl Default for Website {
    fn default() -> Self {
        Self(String::new())
    }
}

/// A username (3-30 plain characters) is always a valid display name.
impl From<&Username> for DisplayName {
    fn from(u: &Username) -> Self {
        Self(u.0.clone())
    }
}

/// A login identifier: a username or an email address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Login {
    Username(Username),
    Email(Email),
}

impl<'de> Deserialize<'de> for Login {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        let parsed = if raw.contains('@') {
            Email::try_from(raw).map(Login::Email)
        } else {
            Username::try_from(raw).map(Login::Username)
        };
        parsed.map_err(|_| serde::de::Error::custom("must be a username or an email address"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Register {
        username: Username,
        email: Email,
        password: Password,
    }

    #[test]
    fn whole_numbers_may_be_written_with_a_fraction_of_zero() {
        #[derive(Deserialize)]
        struct S {
            #[serde(deserialize_with = "whole_number")]
            n: u64,
        }
        let parse = |s: &str| serde_json::from_str::<S>(s).map(|s| s.n);
        assert_eq!(parse(r#"{"n": 187}"#).unwrap(), 187);
        assert_eq!(parse(r#"{"n": 187.0}"#).unwrap(), 187);
        assert!(parse(r#"{"n": 1.5}"#).is_err());
        assert!(parse(r#"{"n": -1}"#).is_err());
        assert!(parse(r#"{"n": "1"}"#).is_err());
    }

    #[test]
    fn usernames_are_normalised_and_checked() {
        assert_eq!(
            Username::try_from("Alice.Doe_1".to_owned())
                .unwrap()
                .as_str(),
            "alice.doe_1"
        );
        for bad in [
            "ab",
            "a b c",
            "alice!",
            &"x".repeat(31),
            ".alice",
            "al..ice",
            "ålice",
        ] {
            assert!(
                Username::try_from(bad.to_owned()).is_err(),
                "{bad} should be refused"
            );
        }
    }

    #[test]
    fn emails_are_normalised_and_checked() {
        assert_eq!(
            Email::try_from("Bob@Example.COM".to_owned())
                .unwrap()
                .as_str(),
            "bob@example.com"
        );
        // What the OpenAPI schema refuses is refused: no silent trimming.
        assert!(Email::try_from(" bob@example.com".to_owned()).is_err());
        for bad in [
            "bob",
            "bob@",
            "@x.com",
            "bob@localhost",
            "a@b@c.com",
            "bob @x.com",
            "bob@x..com",
        ] {
            assert!(
                Email::try_from(bad.to_owned()).is_err(),
                "{bad} should be refused"
            );
        }
    }

    #[test]
    fn passwords_have_bounds_in_characters() {
        assert!(Password::try_from("short".to_owned()).is_err());
        assert!(Password::try_from("x".repeat(129)).is_err());
        assert!(Password::try_from("ééééééééééé".to_owned()).is_ok());
        let secret = Password::try_from("correct horse battery".to_owned()).unwrap();
        assert_eq!(format!("{secret:?}"), "Password(..)");
        let attempt = PasswordAttempt::from("hunter2".to_owned());
        assert_eq!(format!("{attempt:?}"), "PasswordAttempt(..)");
    }

    #[test]
    fn bio_and_website_limits() {
        assert!(Bio::try_from("b".repeat(150)).is_ok());
        assert!(Bio::try_from("b".repeat(151)).is_err());
        assert!(Website::try_from("https://shutter.dev/me".to_owned()).is_ok());
        assert!(Website::try_from(String::new()).is_ok());
        assert!(Website::try_from("javascript:alert(1)".to_owned()).is_err());
    }

    #[test]
    fn hashtags_and_mentions_are_capped() {
        assert!(check_tag_counts(MAX_HASHTAGS, MAX_MENTIONS).is_ok());
        assert!(
            check_tag_counts(MAX_HASHTAGS + 1, 0)
                .unwrap_err()
                .contains("hashtags")
        );
        assert!(
            check_tag_counts(0, MAX_MENTIONS + 1)
                .unwrap_err()
                .contains("mention")
        );
    }

    #[test]
    fn body_errors_name_the_field() {
        let err = parse_json_body::<Register>(
            br#"{"username":"ab","email":"a@b.co","password":"0123456789"}"#,
        )
        .unwrap_err();
        assert_eq!(err.problem().field.as_deref(), Some("username"));

        let err = parse_json_body::<Register>(br#"{"username":"alice","password":"0123456789"}"#)
            .unwrap_err();
        assert_eq!(err.problem().field.as_deref(), Some("email"));

        let err = parse_json_body::<Register>(
            br#"{"username":7,"email":"a@b.co","password":"0123456789"}"#,
        )
        .unwrap_err();
        assert_eq!(err.problem().field.as_deref(), Some("username"));
        assert_eq!(err.status(), 400);
    }

    #[test]
    fn malformed_and_oversize_bodies() {
        let err = parse_json_body::<Register>(b"{\"username\":").unwrap_err();
        assert_eq!(err.problem().code, "malformed_json");
        let err = parse_json_body::<Register>(b"").unwrap_err();
        assert_eq!(err.problem().code, "malformed_json");
        let big = vec![b' '; MAX_BODY_BYTES + 1];
        assert_eq!(parse_json_body::<Register>(&big).unwrap_err().status(), 413);
    }

    #[test]
    fn login_accepts_either_form() {
        let l: Login = serde_json::from_str("\"Alice\"").unwrap();
        assert_eq!(
            l,
            Login::Username(Username::try_from("alice".to_owned()).unwrap())
        );
        let l: Login = serde_json::from_str("\"alice@x.io\"").unwrap();
        assert!(matches!(l, Login::Email(_)));
        assert!(serde_json::from_str::<Login>("\"a\"").is_err());
    }

    #[test]
    fn format_characters_that_spoof_text_are_refused() {
        // GIVEN bidirectional overrides, isolates, marks, zero-width spaces, a BOM, a soft
        // hyphen, tag characters outside a flag, and joiners where they join nothing
        for (text, refused) in [
            ("gnp.\u{202E}exe", '\u{202E}'),
            ("\u{202A}left", '\u{202A}'),
            ("a\u{2066}b\u{2069}", '\u{2066}'),
            ("admin\u{200E}", '\u{200E}'),
            ("\u{200F}x", '\u{200F}'),
            ("x\u{061C}y", '\u{061C}'),
            ("al\u{200B}ice", '\u{200B}'),
            ("\u{FEFF}bob", '\u{FEFF}'),
            ("bo\u{00AD}b", '\u{00AD}'),
            ("a\u{2060}b", '\u{2060}'),
            ("hi\u{E0041}\u{E0042}", '\u{E0041}'),
            ("\u{1F3F4}\u{E0067}\u{E0062}", '\u{E0067}'),
            ("\u{200D}alice", '\u{200D}'),
            ("alice\u{200D}", '\u{200D}'),
            ("a\u{200D}\u{200D}b", '\u{200D}'),
            ("a \u{200C}b", '\u{200C}'),
        ] {
            // THEN the first refused one is named, and every text type refuses it
            assert_eq!(refused_format_char(text), Some(refused), "{text:?}");
            assert!(check_format_chars(text).unwrap_err().contains("U+"));
            assert!(DisplayName::try_from(text.to_owned()).is_err(), "{text:?}");
            assert!(Bio::try_from(text.to_owned()).is_err(), "{text:?}");
        }
        // GIVEN what languages and emoji need: joiners between visible characters, flag
        // tag sequences, and ordinary text in any script
        for text in [
            "Ana Lúcia",
            "👩\u{200D}💻 dev",
            "❤\u{FE0F}\u{200D}🔥",
            "🏳\u{FE0F}\u{200D}🌈",
            "\u{1F3F4}\u{E0067}\u{E0062}\u{E0065}\u{E006E}\u{E0067}\u{E007F} fan",
            "می\u{200C}خواهم",
            "क्\u{200D}ष",
            "שלום עולם",
            "مرحبا",
            "line one\nline two",
            "",
        ] {
            // THEN they pass
            assert_eq!(refused_format_char(text), None, "{text:?}");
            assert!(Bio::try_from(text.to_owned()).is_ok(), "{text:?}");
        }
    }
}
