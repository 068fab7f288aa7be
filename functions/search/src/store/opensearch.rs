//! The ports over the real cluster: each is a few REST calls of [`OpenSearch`], with the
//! query and answer shapes that only OpenSearch needs to know (`_mget`, `_bulk` NDJSON,
//! aggregations).

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;
use serde_json::{Value, json};
use shutter_core::UserId;

use super::{BulkOp, IndexAdmin, IndexStore, ItemResult, SearchIndex, Stored, Version};
use crate::client::{OpenSearch, SearchError};
use crate::docs::{POSTS_INDEX, RELATIONS_INDEX, USERS_INDEX, UserDoc};
use crate::model::Relations;

/// The most edges of one viewer read per search (blocks both ways and approved follows).
const MAX_RELATIONS: usize = 5_000;

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
    async fn relations(&self, viewer: &UserId) -> Result<Relations, SearchError> {
        let viewer = viewer.as_str();
        let body = json!({
            "size": MAX_RELATIONS,
            "query": {"bool": {
                "filter": [{"term": {"active": true}}],
                "should": [
                    {"bool": {"filter": [{"term": {"kind": "block"}}, {"term": {"a": viewer}}]}},
                    {"bool": {"filter": [{"term": {"kind": "block"}}, {"term": {"b": viewer}}]}},
                    {"bool": {"filter": [{"term": {"kind": "follow"}}, {"term": {"a": viewer}}]}}
                ],
                "minimum_should_match": 1
            }}
        });
        let out = self
            .call(
                http::Method::POST,
                &format!("/{RELATIONS_INDEX}/_search"),
                Some(&body),
            )
            .await?;
        let mut relations = Relations::default();
        for hit in out["hits"]["hits"].as_array().into_iter().flatten() {
            let s = &hit["_source"];
            let (Some(kind), Some(a), Some(b)) =
                (s["kind"].as_str(), s["a"].as_str(), s["b"].as_str())
            else {
                continue;
            };
            match kind {
                "block" if a == viewer => relations.hidden.insert(UserId::trusted(b)),
                "block" => relations.hidden.insert(UserId::trusted(a)),
                "follow" => relations.following.insert(UserId::trusted(b)),
                _ => false,
            };
        }
        Ok(relations)
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
    use super::*;

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
