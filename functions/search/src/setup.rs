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
use serde_json::Value;
use shutter_core::ApiError;

use crate::client::OpenSearch;
use crate::docs::INDEXES;

pub use shutter_http::custom_resource::{
    CustomResourceRequest, CustomResourceResponse, HttpResponder, Responder,
};

/// What applying the indexes needs of OpenSearch.
#[async_trait]
pub trait IndexAdmin: Send + Sync {
    async fn exists(&self, index: &str) -> Result<bool, ApiError>;
    async fn create(&self, index: &str, body: &Value) -> Result<(), ApiError>;
    async fn put_mappings(&self, index: &str, mappings: &Value) -> Result<(), ApiError>;
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
    shutter_http::custom_resource::answer(responder, request, "shutter-search-indexes", outcome)
        .await
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
