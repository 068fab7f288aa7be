//! The ports over the real cluster: each is a few REST calls of [`OpenSearch`], with the
//! query and answer shapes that only OpenSearch needs to know (`_mget`, `_bulk` NDJSON,
//! aggregations).

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;
use serde_json::{Value, json};
use shutter_core::UserId;

use super::{BulkOp, EdgeSide, IndexAdmin, IndexStore, ItemResult, SearchIndex, Stored, Version};
use crate::client::{OpenSearch, SearchError};
use crate::docs::{POSTS_INDEX, RELATIONS_INDEX, USERS_INDEX, UserDoc};

fn stored_of(doc: &Value) -> Option<Stored> {
    if doc["found"].as_bool() != Some(true) {
        return None;
    }
    Some(Stored {
        source: doc["_source"].clone(),
        seq_no: doc["_seq_no"].as_u64().unwrap_or(0),
        primary_term: doc["_primary_term"].as_u64().unwrap_or(1),
    })
}

impl OpenSearch {
    /// `_mget` of `ids` in `index`: the documents found, by id.
    async fn mget<I: serde::Serialize + Sync>(
        &self,
        index: &str,
        ids: &[I],
    ) -> Result<HashMap<String, Stored>, SearchError> {
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        let out = self
            .call(
                http::Method::POST,
                &format!("/{index}/_mget"),
                Some(&json!({"ids": ids})),
            )
            .await?;
        Ok(out["docs"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|d| Some((d["_id"].as_str()?.to_owned(), stored_of(d)?)))
            .collect())
    }
}

#[async_trait]
impl IndexStore for OpenSearch {
    async fn get(
        &self,
        index: &str,
        ids: &[String],
    ) -> Result<HashMap<String, Stored>, SearchError> {
        self.mget(index, ids).await
    }

    async fn bulk(&self, ops: &[BulkOp], refresh: bool) -> Result<Vec<ItemResult>, SearchError> {
        if ops.is_empty() {
            return Ok(Vec::new());
        }
        let mut body = Vec::new();
        for op in ops {
            for line in ndjson(op) {
                serde_json::to_writer(&mut body, &line)
                    .map_err(|e| SearchError::Malformed(e.to_string()))?;
                body.push(b'\n');
            }
        }
        let path = if refresh {
            "/_bulk?refresh=wait_for"
        } else {
            "/_bulk"
        };
        let (status, value) = self
            .send(http::Method::POST, path, Some(body), "application/x-ndjson")
            .await?;
        if !(200..300).contains(&status) {
            return Err(SearchError::from_status(status, &value));
        }
        let items = value["items"].as_array().cloned().unwrap_or_default();
        if items.len() != ops.len() {
            return Err(SearchError::Malformed(format!(
                "bulk answered {} items for {} operations",
                items.len(),
                ops.len()
            )));
        }
        Ok(items
            .iter()
            .map(|item| {
                let result = item
                    .as_object()
                    .and_then(|o| o.values().next())
                    .cloned()
                    .unwrap_or(Value::Null);
                ItemResult {
                    status: result["status"].as_u64().unwrap_or(500) as u16,
                    error_type: result["error"]["type"].as_str().map(str::to_owned),
                    reason: result["error"]["reason"].as_str().map(str::to_owned),
                }
            })
            .collect())
    }

    async fn like_counts(&self, post_ids: &[String]) -> Result<HashMap<String, i64>, SearchError> {
        if post_ids.is_empty() {
            return Ok(HashMap::new());
        }
        let body = json!({
            "size": 0,
            "query": {"bool": {"filter": [
                {"term": {"kind": "like"}},
                {"term": {"active": true}},
                {"terms": {"b": post_ids}}
            ]}},
            "aggs": {"posts": {"terms": {"field": "b", "size": post_ids.len()}}}
        });
        let out = self
            .call(
                http::Method::POST,
                &format!("/{RELATIONS_INDEX}/_search"),
                Some(&body),
            )
            .await?;
        let mut counts: HashMap<String, i64> = post_ids.iter().map(|p| (p.clone(), 0)).collect();
        for bucket in out["aggregations"]["posts"]["buckets"]
            .as_array()
            .into_iter()
            .flatten()
        {
            if let (Some(key), Some(n)) = (bucket["key"].as_str(), bucket["doc_count"].as_i64()) {
                counts.insert(key.to_owned(), n);
            }
        }
        Ok(counts)
    }

    async fn posts_of(
        &self,
        author_id: &str,
        after: Option<&str>,
        size: usize,
    ) -> Result<Vec<String>, SearchError> {
        let mut body = json!({
            "size": size,
            "_source": false,
            "query": {"bool": {"filter": [{"term": {"author_id": author_id}}]}},
            "sort": [{"post_id": "asc"}]
        });
        if let Some(after) = after {
            body["search_after"] = json!([after]);
        }
        let out = self
            .call(
                http::Method::POST,
                &format!("/{POSTS_INDEX}/_search"),
                Some(&body),
            )
            .await?;
        Ok(out["hits"]["hits"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|h| h["_id"].as_str().map(str::to_owned))
            .collect())
    }
}

#[async_trait]
impl SearchIndex for OpenSearch {
    async fn edge_page(
        &self,
        viewer: &UserId,
        side: EdgeSide,
        after: Option<&UserId>,
        size: usize,
    ) -> Result<Vec<UserId>, SearchError> {
        let body = edge_page_query(viewer, side, after, size);
        let out = self
            .call(
                http::Method::POST,
                &format!("/{RELATIONS_INDEX}/_search"),
                Some(&body),
            )
            .await?;
        edge_page_answer(&out, side)
    }

    async fn search(&self, index: &str, body: &Value) -> Result<Value, SearchError> {
        self.call(http::Method::POST, &format!("/{index}/_search"), Some(body))
            .await
    }

    async fn users(&self, ids: &HashSet<UserId>) -> Result<HashMap<UserId, UserDoc>, SearchError> {
        let ids: Vec<&str> = ids.iter().map(UserId::as_str).collect();
        Ok(self
            .mget(USERS_INDEX, &ids)
            .await?
            .into_values()
            .filter_map(|stored| {
                let user: UserDoc = serde_json::from_value(stored.source).ok()?;
                Some((UserId::trusted(user.user_id.clone()), user))
            })
            .collect())
    }
}

#[async_trait]
impl IndexAdmin for OpenSearch {
    async fn exists(&self, index: &str) -> Result<bool, SearchError> {
        let (status, body) = self
            .send(
                http::Method::HEAD,
                &format!("/{index}"),
                None,
                "application/json",
            )
            .await?;
        match status {
            200 => Ok(true),
            404 => Ok(false),
            _ => Err(SearchError::from_status(status, &body)),
        }
    }

    async fn create(&self, index: &str, body: &Value) -> Result<(), SearchError> {
        self.call(http::Method::PUT, &format!("/{index}"), Some(body))
            .await?;
        Ok(())
    }

    async fn put_mappings(&self, index: &str, mappings: &Value) -> Result<(), SearchError> {
        self.call(
            http::Method::PUT,
            &format!("/{index}/_mapping"),
            Some(mappings),
        )
        .await?;
        Ok(())
    }
}

/// The viewer's field, the other user's field and the kind of the edges on `side`.
fn edge_fields(side: EdgeSide) -> (&'static str, &'static str, &'static str) {
    match side {
        EdgeSide::Blocking => ("a", "b", "block"),
        EdgeSide::BlockedBy => ("b", "a", "block"),
        EdgeSide::Following => ("a", "b", "follow"),
    }
}

/// One page of the viewer's active edges on `side`, sorted by the other user's id (unique
/// per viewer and kind), resumed with `search_after`.
fn edge_page_query(viewer: &UserId, side: EdgeSide, after: Option<&UserId>, size: usize) -> Value {
    let (me, other, kind) = edge_fields(side);
    let mut body = json!({
        "size": size,
        "track_total_hits": false,
        "query": {"bool": {"filter": [
            {"term": {"kind": kind}},
            {"term": {me: viewer.as_str()}},
            {"term": {"active": true}}
        ]}},
        "sort": [{other: "asc"}]
    });
    if let Some(after) = after {
        body["search_after"] = json!([after.as_str()]);
    }
    body
}

/// The other users of a page of edges. An answer without a hits array, or a hit without
/// the other user, is malformed: read as "no edges", it would let a block through.
fn edge_page_answer(out: &Value, side: EdgeSide) -> Result<Vec<UserId>, SearchError> {
    let (_, other, _) = edge_fields(side);
    let hits = out["hits"]["hits"]
        .as_array()
        .ok_or_else(|| SearchError::Malformed("an edges page without hits".into()))?;
    hits.iter()
        .map(|hit| {
            hit["_source"][other]
                .as_str()
                .map(UserId::trusted)
                .ok_or_else(|| SearchError::Malformed(format!("an edge without `{other}`")))
        })
        .collect()
}

/// The action line and, but for deletes, the source line of one bulk operation.
fn ndjson(op: &BulkOp) -> Vec<Value> {
    match op {
        BulkOp::Index {
            index,
            id,
            source,
            version,
        } => {
            let mut action = json!({"_index": index, "_id": id});
            match version {
                Version::External(v) => {
                    action["version"] = json!(v);
                    action["version_type"] = json!("external");
                }
                Version::Cas {
                    seq_no,
                    primary_term,
                } => {
                    action["if_seq_no"] = json!(seq_no);
                    action["if_primary_term"] = json!(primary_term);
                }
                Version::Create => {
                    return vec![json!({"create": action}), source.clone()];
                }
            }
            vec![json!({"index": action}), source.clone()]
        }
        BulkOp::Update { index, id, doc } => vec![
            json!({"update": {"_index": index, "_id": id, "retry_on_conflict": 5}}),
            json!({"doc": doc}),
        ],
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn edge_pages_are_sorted_by_the_other_user_and_malformed_answers_are_errors() {
        let (viewer, after) = (UserId::trusted("V"), UserId::trusted("X"));
        let body = edge_page_query(&viewer, EdgeSide::BlockedBy, Some(&after), 7);
        assert_eq!(body["size"], 7);
        assert_eq!(body["sort"], json!([{"a": "asc"}]));
        assert_eq!(body["search_after"], json!(["X"]));
        assert_eq!(
            body["query"]["bool"]["filter"],
            json!([{"term": {"kind": "block"}}, {"term": {"b": "V"}}, {"term": {"active": true}}])
        );
        let first = edge_page_query(&viewer, EdgeSide::Following, None, 3);
        assert_eq!(first.get("search_after"), None);
        assert_eq!(
            first["query"]["bool"]["filter"][0],
            json!({"term": {"kind": "follow"}})
        );
        // Answers: the other users; anything else fails rather than read as no edges.
        let page = json!({"hits": {"hits": [{"_source": {"a": "B1", "b": "V"}}]}});
        assert_eq!(
            edge_page_answer(&page, EdgeSide::BlockedBy).unwrap(),
            [UserId::trusted("B1")]
        );
        for bad in [
            json!({}),
            json!({"hits": {}}),
            json!({"hits": {"hits": [{"_source": {"b": "V"}}]}}),
        ] {
            assert!(
                edge_page_answer(&bad, EdgeSide::BlockedBy).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn bulk_lines_carry_the_versioning_of_each_operation() {
        let op = |version| BulkOp::Index {
            index: "i".into(),
            id: "x".into(),
            source: json!({"a": 1}),
            version,
        };
        assert_eq!(
            ndjson(&op(Version::External(7)))[0],
            json!({"index": {"_index": "i", "_id": "x", "version": 7, "version_type": "external"}})
        );
        assert_eq!(
            ndjson(&op(Version::Cas {
                seq_no: 3,
                primary_term: 1
            }))[0],
            json!({"index": {"_index": "i", "_id": "x", "if_seq_no": 3, "if_primary_term": 1}})
        );
        assert_eq!(
            ndjson(&op(Version::Create)),
            vec![
                json!({"create": {"_index": "i", "_id": "x"}}),
                json!({"a": 1})
            ]
        );
        assert_eq!(
            ndjson(&BulkOp::Update {
                index: "i".into(),
                id: "x".into(),
                doc: json!({"b": true})
            }),
            vec![
                json!({"update": {"_index": "i", "_id": "x", "retry_on_conflict": 5}}),
                json!({"doc": {"b": true}})
            ]
        );
    }
}
