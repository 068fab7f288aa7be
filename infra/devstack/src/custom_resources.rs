//! CloudFormation custom resources. A resource of type `AWS::CloudFormation::CustomResource`
//! or `Custom::*` whose `ServiceToken` is one of the template's functions gets the `Create`
//! request that CloudFormation sends on a stack's first deploy, once the resources are
//! provisioned and the functions started, and before the stack is ready (so, say, search
//! indexes exist before any consumer or route runs). Its answer is read, as CloudFormation
//! reads it, from a `ResponseURL` the devstack serves for the purpose; a `FAILED` answer
//! (or none) stops the start-up with the function's reason. A custom resource served by
//! anything else (an SNS topic, a Lambda outside the template) is skipped.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use serde_json::{Value, json};

use crate::Error;
use crate::runtime::Function;
use crate::template::{Resolver, Template};

type Answers = Arc<Mutex<HashMap<String, Value>>>;

/// True for the resource types CloudFormation hands to a custom resource provider.
pub fn is_custom_resource(resource_type: &str) -> bool {
    resource_type == "AWS::CloudFormation::CustomResource" || resource_type.starts_with("Custom::")
}

/// Sends each custom resource served by a template function its `Create` request and
/// checks the answer. Returns the logical ids created.
pub async fn create_all(
    template: &Template,
    resolver: &Resolver,
    functions: &HashMap<String, Arc<Function>>,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<Vec<String>, Error> {
    let resources: Vec<(String, String, Value)> = template
        .resources()
        .filter(|(_, ty, _)| is_custom_resource(ty))
        .map(|(id, ty, _)| {
            let props = template.resource(id)["Properties"].clone();
            (id.to_owned(), ty.to_owned(), props)
        })
        .collect();
    if resources.is_empty() {
        return Ok(Vec::new());
    }
    // The functions by ARN, as a ServiceToken names them.
    let by_arn: HashMap<String, String> = template
        .resources_of("AWS::Serverless::Function")
        .filter_map(|(id, _)| {
            let arn = resolver.attr(id, "Arn")?.to_owned();
            let name = resolver.get_ref(id)?.as_str()?.to_owned();
            Some((arn, name))
        })
        .collect();

    let answers: Answers = Arc::default();
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .map_err(|e| Error::Service(format!("custom resource responses: {e}")))?;
    let port = listener
        .local_addr()
        .map_err(|e| Error::Service(e.to_string()))?
        .port();
    let app = axum::Router::new()
        .route("/{request_id}", axum::routing::put(record))
        .with_state(answers.clone());
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });

    let mut created = Vec::new();
    let result = async {
        for (id, ty, raw) in resources {
            let props = resolver.resolve(&raw)?;
            let token = props["ServiceToken"].as_str().unwrap_or_default();
            let Some(function) = by_arn.get(token).and_then(|name| functions.get(name)) else {
                progress(&format!("custom resource {id}: its ServiceToken is not a function of the template; skipped"));
                continue;
            };
            progress(&format!("creating custom resource {id}"));
            let request_id = ulid::Ulid::new().to_string();
            let mut properties = props.clone();
            if let Some(map) = properties.as_object_mut() {
                map.remove("ServiceToken");
            }
            let event = json!({
                "RequestType": "Create",
                "ServiceToken": token,
                "ResponseURL": format!("http://127.0.0.1:{port}/{request_id}"),
                "StackId": format!("arn:aws:cloudformation:{}:{}:stack/shutter-local/local", crate::template::REGION, crate::template::ACCOUNT),
                "RequestId": request_id,
                "LogicalResourceId": id,
                "ResourceType": ty,
                "ResourceProperties": properties,
            });
            let invoked = tokio::time::timeout(Duration::from_secs(120), function.invoke(&event)).await;
            let answer = answers.lock().ok().and_then(|a| a.get(&request_id).cloned());
            match (invoked, answer) {
                (_, Some(a)) if a["Status"] == "SUCCESS" => created.push(id),
                (_, Some(a)) => {
                    return Err(Error::Functions(format!(
                        "custom resource {id} failed: {}",
                        a["Reason"].as_str().unwrap_or("no reason given")
                    )));
                }
                (Ok(Err(e)), None) => {
                    return Err(Error::Functions(format!(
                        "custom resource {id}: its function failed without answering: {e}"
                    )));
                }
                (_, None) => {
                    return Err(Error::Functions(format!(
                        "custom resource {id}: no answer at its ResponseURL"
                    )));
                }
            }
        }
        Ok(())
    }
    .await;
    server.abort();
    result.map(|()| created)
}

async fn record(
    State(answers): State<Answers>,
    Path(request_id): Path<String>,
    body: Bytes,
) -> &'static str {
    let value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    if let Ok(mut a) = answers.lock() {
        a.insert(request_id, value);
    }
    ""
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn custom_resource_types() {
        assert!(is_custom_resource("Custom::SearchIndexes"));
        assert!(is_custom_resource("AWS::CloudFormation::CustomResource"));
        assert!(!is_custom_resource("AWS::SQS::Queue"));
    }
}
