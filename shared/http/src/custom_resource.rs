//! CloudFormation custom resources served by a function (search indexes, Kafka topics):
//! the request fields they read, and the answer, PUT to the request's pre-signed
//! `ResponseURL` whatever the outcome, so a stack never waits an hour for a silent one.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A CloudFormation custom resource request (the fields these resources read).
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
    /// The resource's properties as the template gives them (CloudFormation sends every
    /// scalar as a string).
    #[serde(default)]
    pub resource_properties: Value,
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

/// The answer could not be delivered: CloudFormation will wait for it, so the invocation
/// fails and Lambda retries it.
#[derive(Debug, thiserror::Error)]
#[error("the answer to CloudFormation was not delivered: {0}")]
pub struct AnswerError(#[source] pub Box<dyn std::error::Error + Send + Sync>);

/// Where the answer goes (the pre-signed S3 URL in AWS, the devstack locally).
#[async_trait]
pub trait Responder: Send + Sync {
    async fn respond(
        &self,
        url: &str,
        response: &CustomResourceResponse,
    ) -> Result<(), AnswerError>;
}

/// Answers `request` with the outcome of its work: `SUCCESS` with the reason given, or
/// `FAILED` with the error. The physical id stays the one CloudFormation already knows,
/// so an update never replaces the resource.
pub async fn answer<R: Responder + ?Sized, E: std::error::Error>(
    responder: &R,
    request: &CustomResourceRequest,
    physical_id: &str,
    outcome: Result<String, E>,
) -> Result<CustomResourceResponse, AnswerError> {
    let (status, reason) = match outcome {
        Ok(reason) => ("SUCCESS", reason),
        Err(e) => {
            tracing::error!(error = %e, source = ?std::error::Error::source(&e), resource = %request.logical_resource_id, "custom resource failed");
            ("FAILED", format!("{}: {e}", request.logical_resource_id))
        }
    };
    let response = CustomResourceResponse {
        status,
        reason,
        physical_resource_id: request
            .physical_resource_id
            .clone()
            .unwrap_or_else(|| physical_id.to_owned()),
        stack_id: request.stack_id.clone(),
        request_id: request.request_id.clone(),
        logical_resource_id: request.logical_resource_id.clone(),
    };
    responder.respond(&request.response_url, &response).await?;
    Ok(response)
}

/// Answers with an HTTP PUT of the JSON, without a content type (the pre-signed URL was
/// signed without one), or into a file for a `file://` URL.
#[derive(Debug, Clone, Default)]
pub struct HttpResponder {
    pub client: reqwest::Client,
}

#[async_trait]
impl Responder for HttpResponder {
    async fn respond(
        &self,
        url: &str,
        response: &CustomResourceResponse,
    ) -> Result<(), AnswerError> {
        let failed = |e: Box<dyn std::error::Error + Send + Sync>| AnswerError(e);
        let body = serde_json::to_vec(response).map_err(|e| failed(e.into()))?;
        // `file://` lets a local run (`cargo lambda invoke` with the sample event) keep
        // the answer; CloudFormation always sends an https URL.
        if let Some(path) = url.strip_prefix("file://") {
            return std::fs::write(path, body).map_err(|e| failed(e.into()));
        }
        self.client
            .put(url)
            .body(body)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|e| failed(e.into()))?;
        Ok(())
    }
}
