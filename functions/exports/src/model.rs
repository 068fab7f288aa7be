//! The archive's shape and the worker's position in it: pure, no I/O.
//!
//! The archive is one NDJSON file (`application/x-ndjson`, UTF-8, one JSON object a
//! line, each with its `type`): first `export` (the header), then `account` and
//! `profile`, then every `post`, `comment`, `like`, `comment_like`, `following`,
//! `follower` and `block`, section by section. Each chunk of the worker writes the lines
//! of one page of one section as a part (`exports/<user>/<export>/parts/<n>.ndjson`);
//! the last chunk joins the parts, in order, into the archive.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// The sections of an archive, in the order they are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Section {
    /// The header, the account (identity) and the profile: one page.
    Account,
    Posts,
    Comments,
    Likes,
    CommentLikes,
    Following,
    Followers,
    Blocks,
}

impl Section {
    pub const ALL: [Section; 8] = [
        Section::Account,
        Section::Posts,
        Section::Comments,
        Section::Likes,
        Section::CommentLikes,
        Section::Following,
        Section::Followers,
        Section::Blocks,
    ];

    /// The section after this one; none after the last.
    pub fn next(self) -> Option<Section> {
        let i = Self::ALL.iter().position(|s| *s == self)?;
        Self::ALL.get(i + 1).copied()
    }
}

/// One page of a section: its lines, and where the next page starts (none: the section
/// is done).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Page {
    pub lines: Vec<Value>,
    pub next: Option<String>,
}

/// Where the worker is: the section and position of the next page, and the number of the
/// next part. The job's cursor, as JSON. `section` none: every section is written, and
/// what is left is joining the parts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    pub section: Option<Section>,
    #[serde(default)]
    pub after: Option<String>,
    pub part: u32,
}

impl Default for Position {
    fn default() -> Self {
        Self {
            section: Some(Section::Account),
            after: None,
            part: 0,
        }
    }
}

impl Position {
    /// The position a job's cursor names (none: the start). A cursor that does not read
    /// is a bad job, never a reason to start again.
    pub fn from_cursor(cursor: Option<&str>) -> Result<Self, serde_json::Error> {
        match cursor {
            None => Ok(Self::default()),
            Some(raw) => serde_json::from_str(raw),
        }
    }

    pub fn to_cursor(&self) -> String {
        // A struct of strings and numbers always serialises.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The position after a page of this one's section that ended at `next`.
    pub fn after_page(&self, next: Option<String>) -> Self {
        let part = self.part.saturating_add(1);
        match next {
            Some(after) => Self {
                section: self.section,
                after: Some(after),
                part,
            },
            None => Self {
                section: self.section.and_then(Section::next),
                after: None,
                part,
            },
        }
    }
}

/// Where an export's objects go: every key of one export shares this prefix (the parts
/// and the archive), under `exports/`, which the bucket's lifecycle rule expires.
pub fn export_prefix(user_id: &str, export_id: &str) -> String {
    format!("exports/{user_id}/{export_id}/")
}

/// The key of part `n` (zero-padded, so parts list in order).
pub fn part_key(user_id: &str, export_id: &str, n: u32) -> String {
    format!("{}parts/{n:06}.ndjson", export_prefix(user_id, export_id))
}

/// The prefix of the parts.
pub fn parts_prefix(user_id: &str, export_id: &str) -> String {
    format!("{}parts/", export_prefix(user_id, export_id))
}

/// The archive's key: one file, named so that a download keeps a meaningful name.
pub fn archive_key(user_id: &str, export_id: &str) -> String {
    format!(
        "{}shutter-export-{export_id}.ndjson",
        export_prefix(user_id, export_id)
    )
}

pub const ARCHIVE_CONTENT_TYPE: &str = "application/x-ndjson";

/// Lines as NDJSON bytes: one object a line, each line ended.
pub fn ndjson(lines: &[Value]) -> Vec<u8> {
    let mut out = Vec::new();
    for line in lines {
        // A Value always serialises.
        out.extend(serde_json::to_vec(line).unwrap_or_default());
        out.push(b'\n');
    }
    out
}

/// `value` (an object) with its `type` first added; a non-object is wrapped as `data`.
pub fn line(kind: &str, value: Value) -> Value {
    match value {
        Value::Object(mut map) => {
            map.insert("type".to_owned(), Value::String(kind.to_owned()));
            Value::Object(map)
        }
        other => json!({"type": kind, "data": other}),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_position_walks_every_section_then_the_join() {
        let mut at = Position::default();
        let mut seen = vec![];
        while let Some(section) = at.section {
            seen.push(section);
            at = at.after_page(None);
        }
        assert_eq!(seen, Section::ALL.to_vec());
        assert_eq!(at.part, 8);
    }

    #[test]
    fn a_page_with_more_stays_in_its_section_and_counts_a_part() {
        let at = Position::default().after_page(None);
        let next = at.after_page(Some("p1".into()));
        assert_eq!(next.section, Some(Section::Posts));
        assert_eq!(next.after.as_deref(), Some("p1"));
        assert_eq!(next.part, 2);
        assert_eq!(
            Position::from_cursor(Some(&next.to_cursor())).unwrap(),
            next
        );
    }

    #[test]
    fn a_cursor_that_does_not_read_is_an_error_not_a_restart() {
        assert!(Position::from_cursor(Some("nonsense")).is_err());
        assert_eq!(Position::from_cursor(None).unwrap(), Position::default());
    }

    #[test]
    fn parts_sort_in_the_order_they_were_written() {
        let mut keys: Vec<String> = [10, 2, 1].iter().map(|n| part_key("u", "e", *n)).collect();
        keys.sort();
        assert_eq!(
            keys,
            vec![
                part_key("u", "e", 1),
                part_key("u", "e", 2),
                part_key("u", "e", 10)
            ]
        );
        assert!(keys[0].starts_with(&parts_prefix("u", "e")));
        assert!(archive_key("u", "e").starts_with("exports/u/e/"));
    }

    #[test]
    fn lines_are_typed_and_each_ends_its_line() {
        let bytes = ndjson(&[line("post", json!({"id": "p"})), line("x", json!(1))]);
        let text = String::from_utf8(bytes).unwrap();
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines[0]["type"], "post");
        assert_eq!(lines[0]["id"], "p");
        assert_eq!(lines[1], json!({"type": "x", "data": 1}));
        assert!(text.ends_with('\n'));
    }
}
