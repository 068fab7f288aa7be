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

use serde_json::Value;

use crate::client::SearchError;
use crate::docs::INDEXES;
use crate::store::IndexAdmin;

pub use shutter_http::custom_resource::{
    AnswerError, CustomResourceRequest, CustomResourceResponse, HttpResponder, Responder,
};

/// Why the indexes could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("indexes/{index}.json is not JSON: {source}")]
    Mappings {
        index: &'static str,
        source: serde_json::Error,
    },
    #[error(transparent)]
    Search(#[from] SearchError),
    #[error("{0} is not a request type")]
    RequestType(String),
}

/// Applies every index of [`INDEXES`]; returns their names.
pub async fn apply_indexes<A: IndexAdmin>(admin: &A) -> Result<Vec<&'static str>, SetupError> {
    let mut done = Vec::new();
    for (name, text) in INDEXES {
        let body: Value = serde_json::from_str(text).map_err(|source| SetupError::Mappings {
            index: name,
            source,
        })?;
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

/// Handles one custom resource request and answers CloudFormation (the error's text is
/// the reason the stack shows).
pub async fn handle<A: IndexAdmin, R: Responder>(
    admin: &A,
    responder: &R,
    request: &CustomResourceRequest,
) -> Result<CustomResourceResponse, AnswerError> {
    let outcome = match request.request_type.as_str() {
        "Create" | "Update" => apply_indexes(admin)
            .await
            .map(|names| format!("applied {}", names.join(", "))),
        "Delete" => Ok("indexes kept".to_owned()),
        other => Err(SetupError::RequestType(other.to_owned())),
    };
    shutter_http::custom_resource::answer(responder, request, "shutter-search-indexes", outcome)
        .await
}

/// [`handle`] as a Lambda handler, answering through the request's `ResponseURL`.
pub async fn on_request<S: IndexAdmin, C>(
    app: &crate::App<S, C>,
    request: CustomResourceRequest,
) -> Result<CustomResourceResponse, AnswerError> {
    handle(&app.search, &HttpResponder::default(), &request).await
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use async_trait::async_trait;
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
        async fn exists(&self, index: &str) -> Result<bool, SearchError> {
            if self.fail {
                return Err(SearchError::Unavailable("unreachable".into()));
            }
            Ok(self.existing.iter().any(|e| e == index))
        }
        async fn create(&self, index: &str, body: &Value) -> Result<(), SearchError> {
            assert!(body["mappings"].is_object() && body["settings"].is_object());
            self.calls.lock().unwrap().push(format!("create {index}"));
            Ok(())
        }
        async fn put_mappings(&self, index: &str, mappings: &Value) -> Result<(), SearchError> {
            assert!(mappings["properties"].is_object());
            self.calls.lock().unwrap().push(format!("mappings {index}"));
            Ok(())
        }
    }

    #[async_trait]
    impl Responder for Fake {
        async fn respond(&self, url: &str, r: &CustomResourceResponse) -> Result<(), AnswerError> {
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
        let failed = fake.sent.lock().unwrap()[0].1.reason.clone();
        assert!(failed.contains("OpenSearch unavailable"), "{failed}");
        let r = handle(&fake, &fake, &request("Delete")).await.unwrap();
        assert_eq!((r.status, r.reason.as_str()), ("SUCCESS", "indexes kept"));
        assert_eq!(fake.sent.lock().unwrap().len(), 2);
    }
}
