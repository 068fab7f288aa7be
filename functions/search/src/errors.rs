//! The one place where OpenSearch failures become client-facing errors. A search that
//! OpenSearch could not answer is the server's failure whatever the cluster said (the
//! query is built here, from values only): an opaque 500, its cause logged by the edge.

use shutter_core::ApiError;

use crate::client::SearchError;

/// An OpenSearch failure as a client of the search endpoints sees it.
pub(crate) fn api(err: SearchError) -> ApiError {
    ApiError::internal(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_failures_are_opaque_server_errors() {
        for err in [
            SearchError::Unavailable("timed out".into()),
            SearchError::Rejected {
                status: 400,
                reason: "parsing_exception: secret detail".into(),
            },
        ] {
            let api = api(err);
            assert_eq!(api.status(), 500);
            let problem = serde_json::to_string(&api.problem()).unwrap_or_default();
            assert!(!problem.contains("secret detail"), "{problem}");
        }
    }
}
