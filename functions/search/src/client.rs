//! The OpenSearch REST client: JSON over reqwest (rustls), with every request signed with
//! SigV4 (service `es`) when the endpoint is an Amazon OpenSearch Service domain, and sent
//! as is to a local osmem-server or a self-hosted cluster.
//!
//! It also implements the service's ports ([`crate::indexer::IndexStore`],
//! [`crate::handlers::SearchStore`]) on top of the few REST calls they need.

use std::collections::{HashMap, HashSet};
use std::time::SystemTime;

use async_trait::async_trait;
use aws_credential_types::provider::ProvideCredentials;
use serde_json::{Value, json};
use shutter_core::ApiError;

use crate::docs::{RELATIONS_INDEX, UserDoc};
use crate::handlers::{Relations, SearchStore};
use crate::indexer::{BulkOp, IndexStore, ItemResult, Stored, Version};
use crate::{POSTS_INDEX, USERS_INDEX};

/// How long one request may take before it counts as a retryable failure.
const TIMEOUT: std::time::Duration = std::time::Duration::from_secs(8);

/// Signs requests for an Amazon OpenSearch Service domain.
#[derive(Debug, Clone)]
struct Signer {
    credentials: aws_credential_types::provider::SharedCredentialsProvider,
    region: String,
}

/// A client of one OpenSearch endpoint.
#[derive(Debug, Clone)]
pub struct OpenSearch {
    base: url::Url,
    http: reqwest::Client,
    signer: Option<Signer>,
}

/// Why an OpenSearch call failed; every one is retryable from the caller's point of view
/// (the cluster was unreachable, overloaded, or answered something unexpected).
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("OpenSearch request failed: {0}")]
    Transport(#[from] reqwest::Error),
    #[error("OpenSearch answered {status}: {body}")]
    Status { status: u16, body: String },
    #[error("request could not be signed: {0}")]
    Signing(String),
}

impl From<ClientError> for ApiError {
    fn from(e: ClientError) -> Self {
        ApiError::internal(e)
    }
}

impl OpenSearch {
    /// The endpoint named by `OPENSEARCH_URL`; requests are signed when it is an Amazon
    /// OpenSearch Service domain (`*.es.amazonaws.com`), with the function's credentials.
    pub fn from_env(aws: &shutter_store::SdkConfig) -> Result<Self, shutter_store::ConfigError> {
        let raw = shutter_store::env("OPENSEARCH_URL")?;
        let base = url::Url::parse(&raw).map_err(|e| shutter_store::ConfigError::Invalid {
            name: "OPENSEARCH_URL",
            reason: e.to_string(),
        })?;
        let aws_domain = base
            .host_str()
            .is_some_and(|h| h.ends_with(".es.amazonaws.com"));
        let signer = match (aws_domain, aws.credentials_provider(), aws.region()) {
            (false, _, _) => None,
            (true, Some(credentials), Some(region)) => Some(Signer {
                credentials,
                region: region.to_string(),
            }),
            (true, _, _) => {
                return Err(shutter_store::ConfigError::Invalid {
                    name: "OPENSEARCH_URL",
                    reason: "an AWS domain needs credentials and a region to sign with".into(),
                });
            }
        };
        Ok(Self::new(base, signer))
    }

    /// An unsigned client of `url` (local osmem-server, tests, benchmarks).
    pub fn unsigned(url: &str) -> Result<Self, url::ParseError> {
        Ok(Self::new(url::Url::parse(url)?, None))
    }

    fn new(base: url::Url, signer: Option<Signer>) -> Self {
        let http = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .build()
            .unwrap_or_default();
        Self { base, http, signer }
    }

    /// Sends one request; answers the status and the parsed body (`Null` when empty).
    pub async fn send(
        &self,
        method: http::Method,
        path_and_query: &str,
        body: Option<Vec<u8>>,
        content_type: &str,
    ) -> Result<(u16, Value), ClientError> {
        let mut url = self.base.clone();
        let (path, query) = match path_and_query.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (path_and_query, None),
        };
        url.set_path(&format!(
            "{}{}",
            self.base.path().trim_end_matches('/'),
            path
        ));
        url.set_query(query);
        let body = body.unwrap_or_default();
        let mut request = http::Request::builder()
            .method(method)
            .uri(url.as_str())
            .header("content-type", content_type)
            .body(body.clone())
            .map_err(|e| ClientError::Signing(e.to_string()))?;
        if let Some(signer) = &self.signer {
            sign(signer, &mut request).await?;
        }
        let request = reqwest::Request::try_from(request.map(reqwest::Body::from))?;
        let response = self.http.execute(request).await?;
        let status = response.status().as_u16();
        let bytes = response.bytes().await?;
        let value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| json!(String::from_utf8_lossy(&bytes)))
        };
        Ok((status, value))
    }

    /// A JSON request that must succeed (2xx).
    pub async fn call(
        &self,
        method: http::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, ClientError> {
        let bytes = body.map(|b| serde_json::to_vec(b).unwrap_or_default());
        let (status, value) = self.send(method, path, bytes, "application/json").await?;
        if (200..300).contains(&status) {
            Ok(value)
        } else {
            Err(ClientError::Status {
                status,
                body: truncate(&value.to_string()),
            })
        }
    }

    /// `_bulk`: one status per operation, in order.
    pub async fn bulk(
        &self,
        ops: &[BulkOp],
        refresh: bool,
    ) -> Result<Vec<ItemResult>, ClientError> {
        if ops.is_empty() {
            return Ok(Vec::new());
        }
        let mut body = Vec::new();
        for op in ops {
            for line in op.ndjson() {
                serde_json::to_writer(&mut body, &line).unwrap_or_default();
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
            return Err(ClientError::Status {
                status,
                body: truncate(&value.to_string()),
            });
        }
        let items = value["items"].as_array().cloned().unwrap_or_default();
        if items.len() != ops.len() {
            return Err(ClientError::Status {
                status,
                body: format!(
                    "bulk answered {} items for {} operations",
                    items.len(),
                    ops.len()
                ),
            });
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
}

fn truncate(s: &str) -> String {
    s.chars().take(500).collect()
}

async fn sign(signer: &Signer, request: &mut http::Request<Vec<u8>>) -> Result<(), ClientError> {
    use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
    let bad = |e: &dyn std::fmt::Display| ClientError::Signing(e.to_string());
    let credentials = signer
        .credentials
        .provide_credentials()
        .await
        .map_err(|e| bad(&e))?;
    let identity = credentials.into();
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region(&signer.region)
        .name("es")
        .time(SystemTime::now())
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| bad(&e))?
        .into();
    let uri = request.uri().to_string();
    let headers: Vec<(String, String)> = request
        .headers()
        .iter()
        .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
        .collect();
    let signable = SignableRequest::new(
        request.method().as_str(),
        &uri,
        headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        SignableBody::Bytes(request.body()),
    )
    .map_err(|e| bad(&e))?;
    let (instructions, _) = sign(signable, &params).map_err(|e| bad(&e))?.into_parts();
    instructions.apply_to_request_http1x(request);
    Ok(())
}

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

#[async_trait]
impl IndexStore for OpenSearch {
    async fn get(&self, index: &str, ids: &[String]) -> Result<HashMap<String, Stored>, ApiError> {
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        let body = json!({"ids": ids});
        let out = self
            .call(http::Method::POST, &format!("/{index}/_mget"), Some(&body))
            .await?;
        Ok(out["docs"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|d| Some((d["_id"].as_str()?.to_owned(), stored_of(d)?)))
            .collect())
    }

    async fn bulk(&self, ops: &[BulkOp], refresh: bool) -> Result<Vec<ItemResult>, ApiError> {
        Ok(OpenSearch::bulk(self, ops, refresh).await?)
    }

    async fn like_counts(&self, post_ids: &[String]) -> Result<HashMap<String, i64>, ApiError> {
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
    ) -> Result<Vec<String>, ApiError> {
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

/// The most edges of one viewer read per search (blocks both ways and approved follows).
const MAX_RELATIONS: usize = 5_000;

#[async_trait]
impl SearchStore for OpenSearch {
    async fn relations(&self, viewer: &str) -> Result<Relations, ApiError> {
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
                "block" if a == viewer => relations.hidden.insert(b.to_owned()),
                "block" => relations.hidden.insert(a.to_owned()),
                "follow" => relations.following.insert(b.to_owned()),
                _ => false,
            };
        }
        Ok(relations)
    }

    async fn search(&self, index: &str, body: &Value) -> Result<Value, ApiError> {
        Ok(self
            .call(http::Method::POST, &format!("/{index}/_search"), Some(body))
            .await?)
    }

    async fn users(&self, ids: &HashSet<String>) -> Result<HashMap<String, UserDoc>, ApiError> {
        let ids: Vec<&String> = ids.iter().collect();
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        let out = self
            .call(
                http::Method::POST,
                &format!("/{USERS_INDEX}/_mget"),
                Some(&json!({"ids": ids})),
            )
            .await?;
        Ok(out["docs"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|d| {
                let stored = stored_of(d)?;
                let user: UserDoc = serde_json::from_value(stored.source).ok()?;
                Some((user.user_id.clone(), user))
            })
            .collect())
    }
}

impl BulkOp {
    /// The action line and, but for deletes, the source line.
    fn ndjson(&self) -> Vec<Value> {
        match self {
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
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
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
            op(Version::External(7)).ndjson()[0],
            json!({"index": {"_index": "i", "_id": "x", "version": 7, "version_type": "external"}})
        );
        assert_eq!(
            op(Version::Cas {
                seq_no: 3,
                primary_term: 1
            })
            .ndjson()[0],
            json!({"index": {"_index": "i", "_id": "x", "if_seq_no": 3, "if_primary_term": 1}})
        );
        assert_eq!(
            op(Version::Create).ndjson()[0],
            json!({"create": {"_index": "i", "_id": "x"}})
        );
    }

    #[test]
    fn only_aws_domains_are_signed() {
        assert!(
            OpenSearch::unsigned("http://127.0.0.1:9200")
                .unwrap()
                .signer
                .is_none()
        );
    }
}
