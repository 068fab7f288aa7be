//! `outbox-topics`: the CloudFormation custom resource that creates the Kafka topics on
//! MSK (CloudFormation has no resource for a topic), and the devstack's tansu the same
//! way at start-up.
//!
//! Create and Update create each listed topic that is missing, with `Partitions`
//! partitions and `ReplicationFactor` replicas (-1: the cluster's default, which MSK
//! Serverless requires). A topic that exists is left as it is: Kafka cannot take
//! partitions away, and adding some would move keys to other partitions and break the
//! per-aggregate order. Delete keeps the topics: events outlive a stack update that
//! replaces the resource.

use async_trait::async_trait;
use serde_json::Value;
use shutter_core::ApiError;
use shutter_http::custom_resource::{
    CustomResourceRequest, CustomResourceResponse, Responder, answer,
};

/// What creating topics needs of the cluster.
#[async_trait]
pub trait TopicAdmin: Send + Sync {
    /// Creates the topic; false when it was already there.
    async fn create_topic(
        &self,
        name: &str,
        partitions: i32,
        replication: i16,
    ) -> Result<bool, ApiError>;
}

#[async_trait]
impl TopicAdmin for shutter_events::publisher::KafkaPublisher {
    async fn create_topic(
        &self,
        name: &str,
        partitions: i32,
        replication: i16,
    ) -> Result<bool, ApiError> {
        shutter_events::publisher::KafkaPublisher::create_topic(self, name, partitions, replication)
            .await
            .map_err(ApiError::internal)
    }
}

/// The resource's properties, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicsSpec {
    pub topics: Vec<String>,
    pub partitions: i32,
    pub replication_factor: i16,
}

impl TopicsSpec {
    pub fn from_properties(props: &Value) -> Result<Self, ApiError> {
        let topics: Vec<String> = props["Topics"]
            .as_array()
            .ok_or_else(|| ApiError::invalid("Topics", "a list of topic names is required"))?
            .iter()
            .map(|t| {
                t.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| ApiError::invalid("Topics", "each topic is a name"))
            })
            .collect::<Result<_, _>>()?;
        if topics.is_empty() {
            return Err(ApiError::invalid("Topics", "at least one topic"));
        }
        for t in &topics {
            // Kafka's own rule for topic names.
            let legal = !t.is_empty()
                && t.len() <= 249
                && t != "."
                && t != ".."
                && t.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
            if !legal {
                return Err(ApiError::invalid(
                    "Topics",
                    format!("{t:?} is not a legal topic name"),
                ));
            }
        }
        let partitions = number(props, "Partitions", 3)?;
        if !(1..=1000).contains(&partitions) {
            return Err(ApiError::invalid("Partitions", "between 1 and 1000"));
        }
        let replication = number(props, "ReplicationFactor", -1)?;
        let replication_factor = i16::try_from(replication)
            .ok()
            .filter(|r| *r == -1 || (1..=7).contains(r))
            .ok_or_else(|| {
                ApiError::invalid("ReplicationFactor", "-1 (the cluster's default) or 1 to 7")
            })?;
        Ok(Self {
            topics,
            partitions,
            replication_factor,
        })
    }
}

/// A number property: CloudFormation sends every scalar as a string; the devstack may not.
fn number(props: &Value, name: &'static str, default: i32) -> Result<i32, ApiError> {
    match &props[name] {
        Value::Null => Some(default),
        Value::Number(n) => n.as_i64().and_then(|n| i32::try_from(n).ok()),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
    .ok_or_else(|| ApiError::invalid(name, "a whole number"))
}

/// Creates the missing topics; the reason names the ones made and the ones kept.
pub async fn create_topics<A: TopicAdmin>(
    admin: &A,
    spec: &TopicsSpec,
) -> Result<String, ApiError> {
    let (mut made, mut kept) = (Vec::new(), Vec::new());
    for topic in &spec.topics {
        if admin
            .create_topic(topic, spec.partitions, spec.replication_factor)
            .await?
        {
            tracing::info!(topic, partitions = spec.partitions, "topic created");
            made.push(topic.as_str());
        } else {
            kept.push(topic.as_str());
        }
    }
    Ok(format!(
        "created [{}], already there [{}]",
        made.join(", "),
        kept.join(", ")
    ))
}

/// Handles one custom resource request and answers CloudFormation.
pub async fn handle<A: TopicAdmin, R: Responder>(
    admin: &A,
    responder: &R,
    request: &CustomResourceRequest,
) -> Result<CustomResourceResponse, ApiError> {
    let outcome = match request.request_type.as_str() {
        "Create" | "Update" => match TopicsSpec::from_properties(&request.resource_properties) {
            Ok(spec) => create_topics(admin, &spec).await,
            Err(e) => Err(e),
        },
        "Delete" => Ok("topics kept".to_owned()),
        other => Err(ApiError::invalid(
            "RequestType",
            format!("{other} is not a request type"),
        )),
    };
    answer(responder, request, "shutter-kafka-topics", outcome).await
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::sync::Mutex;

    use serde_json::json;

    use super::*;

    #[derive(Default)]
    struct Fake {
        existing: Vec<&'static str>,
        created: Mutex<Vec<(String, i32, i16)>>,
        sent: Mutex<Vec<CustomResourceResponse>>,
    }

    #[async_trait]
    impl TopicAdmin for Fake {
        async fn create_topic(
            &self,
            name: &str,
            partitions: i32,
            replication: i16,
        ) -> Result<bool, ApiError> {
            if self.existing.contains(&name) {
                return Ok(false);
            }
            self.created
                .lock()
                .unwrap()
                .push((name.to_owned(), partitions, replication));
            Ok(true)
        }
    }

    #[async_trait]
    impl Responder for Fake {
        async fn respond(&self, _url: &str, r: &CustomResourceResponse) -> Result<(), ApiError> {
            self.sent.lock().unwrap().push(r.clone());
            Ok(())
        }
    }

    fn request(kind: &str, props: Value) -> CustomResourceRequest {
        serde_json::from_value(json!({
            "RequestType": kind, "ResponseURL": "https://example.com/r", "StackId": "s",
            "RequestId": "r", "LogicalResourceId": "KafkaTopics", "ResourceType": "Custom::KafkaTopics",
            "ServiceToken": "arn", "ResourceProperties": props,
        }))
        .unwrap()
    }

    #[tokio::test]
    async fn creates_the_missing_topics_with_the_partitions_cloudformation_sends_as_strings() {
        let fake = Fake {
            existing: vec!["shutter.identity"],
            ..Fake::default()
        };
        let props = json!({"Topics": ["shutter.identity", "shutter.posts"], "Partitions": "6", "ReplicationFactor": "-1"});
        let r = handle(&fake, &fake, &request("Create", props))
            .await
            .unwrap();
        assert_eq!(r.status, "SUCCESS");
        assert_eq!(
            r.reason,
            "created [shutter.posts], already there [shutter.identity]"
        );
        assert_eq!(
            *fake.created.lock().unwrap(),
            [("shutter.posts".to_owned(), 6, -1)]
        );
        assert_eq!(r.physical_resource_id, "shutter-kafka-topics");
    }

    #[tokio::test]
    async fn bad_properties_fail_the_deploy_and_create_nothing() {
        for props in [
            json!({}),
            json!({"Topics": []}),
            json!({"Topics": ["bad topic"]}),
            json!({"Topics": ["ok"], "Partitions": "0"}),
            json!({"Topics": ["ok"], "Partitions": "three"}),
            json!({"Topics": ["ok"], "ReplicationFactor": "0"}),
            json!({"Topics": [".."]}),
        ] {
            let fake = Fake::default();
            let r = handle(&fake, &fake, &request("Update", props.clone()))
                .await
                .unwrap();
            assert_eq!(r.status, "FAILED", "{props}");
            assert!(fake.created.lock().unwrap().is_empty());
            assert_eq!(fake.sent.lock().unwrap().len(), 1, "answered: {props}");
        }
    }

    #[tokio::test]
    async fn delete_keeps_the_topics_and_answers() {
        let fake = Fake::default();
        let r = handle(&fake, &fake, &request("Delete", json!({"Topics": ["x"]})))
            .await
            .unwrap();
        assert_eq!((r.status, r.reason.as_str()), ("SUCCESS", "topics kept"));
        assert!(fake.created.lock().unwrap().is_empty());
    }
}
