//! The OpenSearch REST client: JSON over reqwest (rustls), with every request signed with
//! SigV4 (service `es`) when the endpoint is an Amazon OpenSearch Service domain, and sent
//! as is to a local osmem-server or a self-hosted cluster.
//!
//! It speaks HTTP only and answers [`SearchError`], which says whether trying again can
//! help; the service's ports are implemented on top of it in [`crate::store::opensearch`].

use std::time::SystemTime;

use aws_credential_types::provider::ProvideCredentials;
use serde_json::{Value, json};
use shutter_store::Cause;

/// How long one request may take before it counts as a retryable failure.
const TIMEOUT: std::time::Duration = std::time::Duration::from_secs(8);

/// Why an OpenSearch call failed, in OpenSearch's terms. Callers decide what it means to
/// them: a 500 for a search, a retry for the indexer.
#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    /// OpenSearch could not be reached, timed out, was overloaded (429) or failed (5xx),
    /// or no credentials could be had to sign with: trying again later can succeed.
    #[error("OpenSearch unavailable: {0}")]
    Unavailable(#[source] Cause),
    /// OpenSearch refused the request (a 4xx other than 429): the same request will be
    /// refused again.
    #[error("OpenSearch refused the request ({status}): {reason}")]
    Rejected { status: u16, reason: String },
    /// A request that could not be built, or an answer that does not read as OpenSearch's.
    #[error("OpenSearch exchange malformed: {0}")]
    Malformed(String),
}

impl SearchError {
    /// True when trying the same request again later can succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Unavailable(_))
    }

    /// The error for a non-2xx answer: 429 and 5xx are the cluster's trouble (retry), any
    /// other status a refusal of this request.
    pub fn from_status(status: u16, body: &Value) -> Self {
        let reason = truncate(&body.to_string());
        match status {
            429 | 500.. => {
                Self::Unavailable(format!("OpenSearch answered {status}: {reason}").into())
            }
            _ => Self::Rejected { status, reason },
        }
    }
}

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
    /// Built on the first request to the cluster (its TLS setup is work a cold start
    /// whose first request is refused before any search need not do); clones share it.
    http: std::sync::Arc<std::sync::OnceLock<reqwest::Client>>,
    signer: Option<Signer>,
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
        Self {
            base,
            http: Default::default(),
            signer,
        }
    }

    fn http(&self) -> &reqwest::Client {
        self.http.get_or_init(|| {
            reqwest::Client::builder()
                .timeout(TIMEOUT)
                .build()
                .unwrap_or_default()
        })
    }

    /// Sends one request; answers the status and the parsed body (`Null` when empty).
    /// Only a failure to exchange is an error here: the status is the caller's to read.
    pub async fn send(
        &self,
        method: http::Method,
        path_and_query: &str,
        body: Option<Vec<u8>>,
        content_type: &str,
    ) -> Result<(u16, Value), SearchError> {
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
            .body(body)
            .map_err(|e| SearchError::Malformed(e.to_string()))?;
        if let Some(signer) = &self.signer {
            sign(signer, &mut request).await?;
        }
        let request = reqwest::Request::try_from(request.map(reqwest::Body::from))
            .map_err(|e| SearchError::Malformed(e.to_string()))?;
        let response = self.http().execute(request).await.map_err(unreachable)?;
        let status = response.status().as_u16();
        let bytes = response.bytes().await.map_err(unreachable)?;
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
    ) -> Result<Value, SearchError> {
        let bytes = body
            .map(serde_json::to_vec)
            .transpose()
            .map_err(|e| SearchError::Malformed(e.to_string()))?;
        let (status, value) = self.send(method, path, bytes, "application/json").await?;
        if (200..300).contains(&status) {
            Ok(value)
        } else {
            Err(SearchError::from_status(status, &value))
        }
    }
}

/// A request that did not get an answer (connection refused, reset, timed out).
fn unreachable(e: reqwest::Error) -> SearchError {
    SearchError::Unavailable(Box::new(e))
}

/// Bodies quoted in errors are cut short: they end up in logs and DLQ reasons.
pub(crate) fn truncate(s: &str) -> String {
    s.chars().take(500).collect()
}

async fn sign(signer: &Signer, request: &mut http::Request<Vec<u8>>) -> Result<(), SearchError> {
    use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
    let bad = |e: &dyn std::fmt::Display| SearchError::Malformed(format!("signing: {e}"));
    // Credentials come from the environment: a failure to have them may pass (a rotation).
    let credentials = signer
        .credentials
        .provide_credentials()
        .await
        .map_err(|e| SearchError::Unavailable(Box::new(e)))?;
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn only_aws_domains_are_signed() {
        assert!(
            OpenSearch::unsigned("http://127.0.0.1:9200")
                .unwrap()
                .signer
                .is_none()
        );
    }

    #[test]
    fn overload_and_server_errors_are_retryable_and_refusals_are_not() {
        for status in [429, 500, 502, 503] {
            assert!(
                SearchError::from_status(status, &json!("busy")).is_retryable(),
                "{status}"
            );
        }
        for status in [400, 403, 404, 409] {
            let err = SearchError::from_status(status, &json!({"error": "no"}));
            assert!(!err.is_retryable(), "{status}");
            assert!(matches!(err, SearchError::Rejected { status: s, .. } if s == status));
        }
    }

    #[tokio::test]
    async fn an_unreachable_cluster_is_unavailable() {
        // Port 9 (discard) on localhost: nothing listens there in a test run.
        let client = OpenSearch::unsigned("http://127.0.0.1:9").unwrap();
        let err = client.call(http::Method::GET, "/", None).await.unwrap_err();
        assert!(err.is_retryable(), "{err}");
    }
}
