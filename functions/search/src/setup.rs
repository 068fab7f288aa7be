//! `search-indexes`: the CloudFormation custom resource that applies the index mappings
//! and settings of `indexes/*.json` on every deploy (the devstack sends it the same
//! `Create` request at start-up).
//!
//! Create and Update create each missing index with its settings and mappings, and put the
//! mappings of an existing one (adding fields works in place; changing a field's type
//! needs a new index and a reindex, which OpenSearch refuses here, failing the deploy
//! rather than serving a half-applied mapping). Delete keeps the indexes: data outlives a
//! stack update that replaces the resource. Every request is answered, success or not,
//! by a PUT of the result to its pre-signed `ResponseURL`, so a stack never hangs.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use shutter_core::ApiError;

use crate::client::OpenSearch;
use crate::docs::INDEXES;

/// A CloudFormation custom resource request (the fields this resource reads).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CustomResourceRequest {
    pub request_type: String,
    #[serde(rename = "ResponseURL")]
    pub response_url: String,
    pub stack_id: String,
    pub request_id: String,
    pub logical_resource_id: String,
    #[serde(default)]
    pub physical_resource_id: Option<String>,
}

/// The answer CloudFormation reads from the response URL.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct CustomResourceResponse {
    pub status: &'static str,
    pub reason: String,
    pub physical_resource_id: String,
    pub stack_id: String,
    pub request_id: String,
    pub logical_resource_id: String,
}

/// What applying the indexes needs of OpenSearch.
#[async_trait]
pub trait IndexAdmin: Send + Sync {
    async fn exists(&self, index: &str) -> Result<bool, ApiError>;
    async fn create(&self, index: &str, body: &Value) -> Result<(), ApiError>;
    async fn put_mappings(&self, index: &str, mappings: &Value) -> Result<(), ApiError>;
}

/// Where the answer goes (the pre-signed S3 URL in AWS, the devstack locally).
#[async_trait]
pub trait Responder: Send + Sync {
    async fn respond(&self, url: &str, response: &CustomResourceResponse) -> Result<(), ApiError>;
}

/// Applies every index of [`INDEXES`]; returns their names.
pub async fn apply_indexes<A: IndexAdmin>(admin: &A) -> Result<Vec<&'static str>, ApiError> {
    let mut done = Vec::new();
    for (name, text) in INDEXES {
        let body: Value = serde_json::from_str(text).map_err(ApiError::internal)?;
        if admin.exists(name).await? {
            admin.put_mappings(name, &body["mappings"]).await?;
        } else {
            admin.create(name, &body).await?;
        }
        tracing::info!(index = name, "index applied");
        done.push(name);
    }
    Ok(done)
}

/// Handles one custom resource request and answers CloudFormation.
pub async fn handle<A: IndexAdmin, R: Responder>(
    admin: &A,
    responder: &R,
    request: &CustomResourceRequest,
) -> Result<CustomResourceResponse, ApiError> {
    let outcome = match request.request_type.as_str() {
        "Create" | "Update" => apply_indexes(admin)
            .await
            .map(|names| format!("applied {}", names.join(", "))),
        "Delete" => Ok("indexes kept".to_owned()),
        other => Err(ApiError::invalid(
            "RequestType",
            format!("{other} is not a request type"),
        )),
    };
    let (status, reason) = match outcome {
        Ok(reason) => ("SUCCESS", reason),
        Err(e) => {
            tracing::error!(error = %e, source = ?std::error::Error::source(&e), "indexes not applied");
            ("FAILED", format!("indexes not applied: {e}"))
        }
    };
    let response = CustomResourceResponse {
        status,
        reason,
        physical_resource_id: request
            .physical_resource_id
            .clone()
            .unwrap_or_else(|| "shutter-search-indexes".to_owned()),
        stack_id: request.stack_id.clone(),
        request_id: request.request_id.clone(),
        logical_resource_id: request.logical_resource_id.clone(),
    };
    responder.respond(&request.response_url, &response).await?;
    Ok(response)
}

#[async_trait]
impl IndexAdmin for OpenSearch {
    async fn exists(&self, index: &str) -> Result<bool, ApiError> {
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
            _ => Err(ApiError::internal(crate::client::ClientError::Status {
                status,
                body: body.to_string(),
            })),
        }
    }

    async fn create(&self, index: &str, body: &Value) -> Result<(), ApiError> {
        self.call(http::Method::PUT, &format!("/{index}"), Some(body))
            .await?;
        Ok(())
    }

    async fn put_mappings(&self, index: &str, mappings: &Value) -> Result<(), ApiError> {
        self.call(
            http::Method::PUT,
            &format!("/{index}/_mapping"),
            Some(mappings),
        )
        .await?;
        Ok(())
    }
}

/// Answers with an HTTP PUT of the JSON, without a content type (the pre-signed URL was
/// signed without one), or into a file for a `file://` URL.
#[derive(Debug, Clone, Default)]
pub struct HttpResponder {
    pub client: reqwest::Client,
}

#[async_trait]
impl Responder for HttpResponder {
    async fn respond(&self, url: &str, response: &CustomResourceResponse) -> Result<(), ApiError> {
        let body = serde_json::to_vec(response).map_err(ApiError::internal)?;
        // `file://` lets a local run (`cargo lambda invoke` with the sample event) keep
        // the answer; CloudFormation always sends an https URL.
        if let Some(path) = url.strip_prefix("file://") {
            return std::fs::write(path, body).map_err(ApiError::internal);
        }
        self.client
            .put(url)
            .body(body)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(ApiError::internal)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::sync::Mutex;

    #[derive(Default)]
    struct Fake {
        existing: Vec<String>,
        calls: Mutex<Vec<String>>,
        sent: Mutex<Vec<(String, CustomResourceResponse)>>,
        fail: bool,
    }

    #[async_trait]
    impl IndexAdmin for Fake {
        async fn exists(&self, index: &str) -> Result<bool, ApiError> {
            if self.fail {
                return Err(ApiError::internal(std::io::Error::other("unreachable")));
            }
            Ok(self.existing.iter().any(|e| e == index))
        }
        async fn create(&self, index: &str, body: &Value) -> Result<(), ApiError> {
            assert!(body["mappings"].is_object() && body["settings"].is_object());
            self.calls.lock().unwrap().push(format!("create {index}"));
            Ok(())
        }
        async fn put_mappings(&self, index: &str, mappings: &Value) -> Result<(), ApiError> {
            assert!(mappings["properties"].is_object());
            self.calls.lock().unwrap().push(format!("mappings {index}"));
            Ok(())
        }
    }

    #[async_trait]
    impl Responder for Fake {
        async fn respond(&self, url: &str, r: &CustomResourceResponse) -> Result<(), ApiError> {
            self.sent.lock().unwrap().push((url.to_owned(), r.clone()));
            Ok(())
        }
    }

    fn request(kind: &str) -> CustomResourceRequest {
        serde_json::from_value(serde_json::json!({
            "RequestType": kind, "ResponseURL": "https://example.com/r", "StackId": "s",
            "RequestId": "r", "LogicalResourceId": "SearchIndexes", "ResourceType": "Custom::SearchIndexes",
            "ServiceToken": "arn", "ResourceProperties": {}
        }))
        .unwrap()
    }

    #[tokio::test]
    async fn create_makes_missing_indexes_and_updates_the_mappings_of_existing_ones() {
        let fake = Fake {
            existing: vec!["shutter-users".into()],
            ..Fake::default()
        };
        let r = handle(&fake, &fake, &request("Create")).await.unwrap();
        assert_eq!(r.status, "SUCCESS");
        assert_eq!(
            *fake.calls.lock().unwrap(),
            [
                "create shutter-posts",
                "mappings shutter-users",
                "create shutter-relations"
            ]
        );
        assert_eq!(fake.sent.lock().unwrap()[0].0, "https://example.com/r");
    }

    #[tokio::test]
    async fn failures_and_deletes_are_answered_too() {
        let fake = Fake {
            fail: true,
            ..Fake::default()
        };
        assert_eq!(
            handle(&fake, &fake, &request("Update"))
                .await
                .unwrap()
                .status,
            "FAILED"
        );
        let r = handle(&fake, &fake, &request("Delete")).await.unwrap();
        assert_eq!((r.status, r.reason.as_str()), ("SUCCESS", "indexes kept"));
        assert_eq!(fake.sent.lock().unwrap().len(), 2);
    }
}
