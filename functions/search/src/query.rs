//! The OpenSearch query bodies of the three searches, pure. The caller's text only ever
//! reaches OpenSearch as the *value* of a `match`, `match_bool_prefix`, `term` or `prefix`
//! query, never as query syntax (no `query_string`), so `title:(a OR b) AND *` is
//! searched for as words.
//!
//! Privacy and blocks are applied inside every query: tombstones, blocked authors both
//! ways, and private authors unless the viewer is them, staff or an approved follower.
//! Bans likewise: a banned account, and its posts, only for staff and the account itself.
//!
//! A ban is a flag on the documents (`banned` on the user, `author_banned` on each of
//! their posts, re-flagged by the indexer as privacy is) rather than a list of banned
//! users sent with every query: bans are rare and long-lived, the flag costs one term per
//! query however many there are, and the hashtag counts (an aggregation, with no per-hit
//! check afterwards) are filtered by it too. The flags are tested as `must_not ... true`,
//! so documents written before bans existed (no field) count as not banned.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::model::{HashtagPrefix, QueryText, Viewer};

/// Buckets read to find the hashtags that start with the query.
const HASHTAG_BUCKETS: usize = 200;

/// Where a posts search resumes: the sort values of the last hit, and the instant the
/// first page was ranked at (so recency scores, and the order, hold across pages).
/// `tied` are the hits of the page whose score ties the last one's: they are left out of
/// the next page, so an engine that does not give back a score exactly as it printed it
/// (osmem keeps some in 64 bits, prints 32) cannot show a hit twice.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PostsPosition {
    pub at: i64,
    pub after: Vec<Value>,
    #[serde(default)]
    pub tied: Vec<String>,
}

/// A filter that keeps documents whose `flag` is set for staff and the viewer's own
/// (`own` the field naming whose it is); `None` for staff, who see them all.
fn unless_flagged(viewer: &Viewer, flag: &str, own: &str) -> Option<Value> {
    (!viewer.staff).then(|| {
        json!({"bool": {"should": [
            {"bool": {"must_not": [{"term": {flag: true}}]}},
            {"term": {own: viewer.user_id}}
        ], "minimum_should_match": 1}})
    })
}

/// The filters that keep tombstones out, a private author's posts for those who may see
/// them, and a banned author's for staff and the author.
fn posts_filter(viewer: &Viewer) -> Vec<Value> {
    let mut filters = vec![json!({"term": {"deleted": false}})];
    if let Some(allowed) = viewer.private_authors_seen() {
        filters.push(json!({"bool": {"should": [
            {"term": {"author_private": false}},
            {"terms": {"author_id": allowed}}
        ], "minimum_should_match": 1}}));
    }
    filters.extend(unless_flagged(viewer, "author_banned", "author_id"));
    filters
}

/// A posts search: words over captions and locations, the words as hashtags, and the
/// posts of `authors` (those whose names start with the text); blended with recency (half
/// the boost at a week old) and popularity (log of likes), newest first among equals.
pub fn posts(
    q: &QueryText,
    viewer: &Viewer,
    authors: &[String],
    at_millis: i64,
    after: Option<&PostsPosition>,
    size: usize,
) -> Value {
    let words = q.hashtag_words();
    let mut should = vec![
        json!({"match": {"caption": {"query": q.as_str(), "boost": 2.0}}}),
        json!({"match": {"location": {"query": q.as_str()}}}),
    ];
    if !words.is_empty() {
        should.push(json!({"terms": {"hashtags": words, "boost": 3.0}}));
    }
    if !authors.is_empty() {
        should.push(json!({"terms": {"author_id": authors, "boost": 1.5}}));
    }
    let mut body = json!({
        "size": size,
        "track_total_hits": false,
        "query": {"bool": {
            "must": [{"bool": {"should": should, "minimum_should_match": 1}}],
            // Added to the text score: recency (1 for now, 1/2 a week ago) and popularity
            // (the log of likes). Both are cheap to rank by (no script, no per-hit function).
            "should": [
                {"distance_feature": {"field": "created_at", "origin": at_millis, "pivot": "7d", "boost": 1.0}},
                {"rank_feature": {"field": "popularity", "log": {"scaling_factor": 1}, "boost": 0.5}}
            ],
            "filter": posts_filter(viewer),
            "must_not": [{"terms": {"author_id": viewer.hidden()}}]
        }},
        "sort": [{"_score": "desc"}, {"created_at": "desc"}, {"post_id": "asc"}]
    });
    if let Some(position) = after {
        body["search_after"] = json!(position.after);
        if !position.tied.is_empty() {
            body["query"]["bool"]["must_not"]
                .as_array_mut()
                .into_iter()
                .for_each(|m| m.push(json!({"ids": {"values": position.tied}})));
        }
    }
    body
}

/// Users whose username or display name starts with `q` (for typeahead and for finding
/// posts by author), blocked ones left out, and banned ones but for staff and themselves.
pub fn users(q: &QueryText, viewer: &Viewer, size: usize) -> Value {
    let lower = q.as_str().trim().to_lowercase();
    let mut filter = vec![json!({"term": {"deleted": false}})];
    filter.extend(unless_flagged(viewer, "banned", "user_id"));
    json!({
        "size": size,
        "track_total_hits": false,
        "query": {"bool": {
            "should": [
                {"term": {"username": {"value": lower, "boost": 10.0}}},
                {"prefix": {"username": {"value": lower, "boost": 4.0}}},
                {"match_bool_prefix": {"display_name": {"query": q.as_str()}}}
            ],
            "minimum_should_match": 1,
            "filter": filter,
            "must_not": [{"terms": {"user_id": viewer.hidden()}}]
        }},
        "sort": [{"_score": "desc"}, {"username": "asc"}]
    })
}

/// The hashtags of the posts the viewer may see that carry one starting with `tag`,
/// counted (a post's other hashtags come back in the buckets too).
pub fn hashtags(tag: &HashtagPrefix, viewer: &Viewer) -> Value {
    let mut filter = posts_filter(viewer);
    filter.push(json!({"prefix": {"hashtags": {"value": tag.as_str()}}}));
    json!({
        "size": 0,
        "query": {"bool": {"filter": filter, "must_not": [{"terms": {"author_id": viewer.hidden()}}]}},
        "aggs": {"tags": {"terms": {"field": "hashtags", "size": HASHTAG_BUCKETS}}}
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::model::Relations;
    use shutter_core::UserId;
    use std::collections::HashSet;

    fn viewer(staff: bool) -> Viewer {
        Viewer {
            user_id: UserId::trusted("V"),
            staff,
            relations: Relations {
                hidden: HashSet::from([UserId::trusted("B")]),
                following: HashSet::new(),
            },
        }
    }

    #[test]
    fn staff_see_private_posts_but_never_tombstones_or_blocked_authors() {
        // GIVEN a staff viewer who blocked B
        let q = QueryText::parse("sun").unwrap();
        // WHEN their posts query is built
        let body = posts(&q, &viewer(true), &[], 0, None, 10);
        // THEN only tombstones are filtered, and B is left out
        assert_eq!(
            body["query"]["bool"]["filter"],
            json!([{"term": {"deleted": false}}])
        );
        assert_eq!(
            body["query"]["bool"]["must_not"],
            json!([{"terms": {"author_id": ["B"]}}])
        );
        // AND a user's hashtag search keeps the privacy and ban filters
        let tag = HashtagPrefix::parse(&q).unwrap();
        let body = hashtags(&tag, &viewer(false));
        let filter = body["query"]["bool"]["filter"].as_array().unwrap();
        assert_eq!(filter.len(), 4);
        assert_eq!(filter[3], json!({"prefix": {"hashtags": {"value": "sun"}}}));
    }

    #[test]
    fn banned_accounts_and_their_posts_are_filtered_for_all_but_staff_and_themselves() {
        let q = QueryText::parse("sun").unwrap();
        let unless_banned = |flag: &str, own: &str| {
            json!({"bool": {"should": [
                {"bool": {"must_not": [{"term": {flag: true}}]}},
                {"term": {own: "V"}}
            ], "minimum_should_match": 1}})
        };
        // GIVEN a user: posts, hashtags and users are filtered on the ban, theirs kept
        let v = viewer(false);
        let posts_filter = posts(&q, &v, &[], 0, None, 10)["query"]["bool"]["filter"].clone();
        assert_eq!(posts_filter[2], unless_banned("author_banned", "author_id"));
        let tag = HashtagPrefix::parse(&q).unwrap();
        assert_eq!(
            hashtags(&tag, &v)["query"]["bool"]["filter"][2],
            unless_banned("author_banned", "author_id")
        );
        assert_eq!(
            users(&q, &v, 5)["query"]["bool"]["filter"],
            json!([{"term": {"deleted": false}}, unless_banned("banned", "user_id")])
        );
        // AND staff see them all
        assert_eq!(
            users(&q, &viewer(true), 5)["query"]["bool"]["filter"],
            json!([{"term": {"deleted": false}}])
        );
    }
}
