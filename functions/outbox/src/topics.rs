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
use shutter_events::publisher::{KafkaPublisher, PublishError};
use shutter_http::custom_resource::{
    AnswerError, CustomResourceRequest, CustomResourceResponse, HttpResponder, Responder,
};
use shutter_store::SdkConfig;

use crate::SetupError;

/// The physical id CloudFormation knows the resource by.
const PHYSICAL_ID: &str = "shutter-kafka-topics";

/// Why the resource failed; CloudFormation shows it as the reason the deploy failed.
#[derive(Debug, thiserror::Error)]
pub enum TopicsError {
    /// The resource's properties (or the request) are not what it takes: nothing is
    /// created.
    #[error("invalid input in {field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    /// The cluster could not be reached, or refused.
    #[error(transparent)]
    Cluster(#[from] PublishError),
}

impl TopicsError {
    fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        Self::Invalid {
            field,
            reason: reason.into(),
        }
    }
}

/// What creating topics needs of the cluster.
#[async_trait]
pub trait TopicAdmin: Send + Sync {
    /// Creates the topic; false when it was already there.
    async fn create_topic(
        &self,
        name: &str,
        partitions: i32,
        replication: i16,
    ) -> Result<bool, PublishError>;
}

#[async_trait]
impl TopicAdmin for KafkaPublisher {
    async fn create_topic(
        &self,
        name: &str,
        partitions: i32,
        replication: i16,
    ) -> Result<bool, PublishError> {
        KafkaPublisher::create_topic(self, name, partitions, replication).await
    }
}

/// What the function works with: the cluster, and where answers go.
#[derive(Debug)]
pub struct Topics<A, R> {
    pub admin: A,
    pub responder: R,
}

/// The deployed function's dependencies.
pub type Live = Topics<KafkaPublisher, HttpResponder>;

impl Live {
    pub async fn from_env(aws: &SdkConfig) -> Result<Self, SetupError> {
        Ok(Topics {
            admin: crate::kafka(aws).await?,
            responder: HttpResponder::default(),
        })
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
    pub fn from_properties(props: &Value) -> Result<Self, TopicsError> {
        let topics: Vec<String> = props["Topics"]
            .as_array()
            .ok_or_else(|| TopicsError::invalid("Topics", "a list of topic names is required"))?
            .iter()
            .map(|t| {
                t.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| TopicsError::invalid("Topics", "each topic is a name"))
            })
            .collect::<Result<_, _>>()?;
        if topics.is_empty() {
            return Err(TopicsError::invalid("Topics", "at least one topic"));
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
                return Err(TopicsError::invalid(
                    "Topics",
                    format!("{t:?} is not a legal topic name"),
                ));
            }
        }
        let partitions = number(props, "Partitions", 3)?;
        if !(1..=1000).contains(&partitions) {
            return Err(TopicsError::invalid("Partitions", "between 1 and 1000"));
        }
        let replication = number(props, "ReplicationFactor", -1)?;
        let replication_factor = i16::try_from(replication)
            .ok()
            .filter(|r| *r == -1 || (1..=7).contains(r))
            .ok_or_else(|| {
                TopicsError::invalid("ReplicationFactor", "-1 (the cluster's default) or 1 to 7")
            })?;
        Ok(Self {
            topics,
            partitions,
            replication_factor,
        })
    }
}

/// A number property: CloudFormation sends every scalar as a string; the devstack may not.
fn number(props: &Value, name: &'static str, default: i32) -> Result<i32, TopicsError> {
    match &props[name] {
        Value::Null => Some(default),
        Value::Number(n) => n.as_i64().and_then(|n| i32::try_from(n).ok()),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
    .ok_or_else(|| TopicsError::invalid(name, "a whole number"))
}

/// Creates the missing topics; the reason names the ones made and the ones kept.
pub async fn create_topics<A: TopicAdmin>(
    admin: &A,
    spec: &TopicsSpec,
) -> Result<String, TopicsError> {
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

/// Handles one custom resource request and answers CloudFormation, whatever the outcome
/// (a stack never waits an hour for a silent resource).
pub async fn handle<A: TopicAdmin, R: Responder>(
    app: &Topics<A, R>,
    request: CustomResourceRequest,
) -> Result<CustomResourceResponse, AnswerError> {
    let outcome = match request.request_type.as_str() {
        "Create" | "Update" => match TopicsSpec::from_properties(&request.resource_properties) {
            Ok(spec) => create_topics(&app.admin, &spec).await,
            Err(e) => Err(e),
        },
        "Delete" => Ok("topics kept".to_owned()),
        other => Err(TopicsError::invalid(
            "RequestType",
            format!("{other} is not a request type"),
        )),
    };
    shutter_http::custom_resource::answer(&app.responder, &request, PHYSICAL_ID, outcome).await
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::sync::Mutex;

    use serde_json::json;

    use super::*;

    /// A cluster with some topics already there, recording what it is asked to create.
    #[derive(Default)]
    struct Cluster {
        existing: Vec<&'static str>,
        down: bool,
        created: Mutex<Vec<(String, i32, i16)>>,
    }

    #[async_trait]
    impl TopicAdmin for Cluster {
        async fn create_topic(
            &self,
            name: &str,
            partitions: i32,
            replication: i16,
        ) -> Result<bool, PublishError> {
            if self.down {
                return Err(PublishError::Setup("brokers unreachable".into()));
            }
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

    /// CloudFormation's side: the answers it received.
    #[derive(Default)]
    struct Recorder {
        sent: Mutex<Vec<CustomResourceResponse>>,
    }

    #[async_trait]
    impl Responder for Recorder {
        async fn respond(&self, _url: &str, r: &CustomResourceResponse) -> Result<(), AnswerError> {
            self.sent.lock().unwrap().push(r.clone());
            Ok(())
        }
    }

    fn app(cluster: Cluster) -> Topics<Cluster, Recorder> {
        Topics {
            admin: cluster,
            responder: Recorder::default(),
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
        let app = app(Cluster {
            existing: vec!["shutter.identity"],
            ..Cluster::default()
        });
        let props = json!({"Topics": ["shutter.identity", "shutter.posts"], "Partitions": "6", "ReplicationFactor": "-1"});
        let r = handle(&app, request("Create", props)).await.unwrap();
        assert_eq!(r.status, "SUCCESS");
        assert_eq!(
            r.reason,
            "created [shutter.posts], already there [shutter.identity]"
        );
        assert_eq!(
            *app.admin.created.lock().unwrap(),
            [("shutter.posts".to_owned(), 6, -1)]
        );
        assert_eq!(r.physical_resource_id, "shutter-kafka-topics");
        assert_eq!(*app.responder.sent.lock().unwrap(), [r]);
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
            let app = app(Cluster::default());
            let r = handle(&app, request("Update", props.clone()))
                .await
                .unwrap();
            assert_eq!(r.status, "FAILED", "{props}");
            assert!(
                r.reason.starts_with("KafkaTopics: invalid input in "),
                "{}",
                r.reason
            );
            assert!(app.admin.created.lock().unwrap().is_empty());
            assert_eq!(
                app.responder.sent.lock().unwrap().len(),
                1,
                "answered: {props}"
            );
        }
    }

    #[tokio::test]
    async fn delete_keeps_the_topics_and_answers() {
        let app = app(Cluster::default());
        let r = handle(&app, request("Delete", json!({"Topics": ["x"]})))
            .await
            .unwrap();
        assert_eq!((r.status, r.reason.as_str()), ("SUCCESS", "topics kept"));
        assert!(app.admin.created.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn an_unreachable_cluster_fails_the_deploy_with_the_reason() {
        let app = app(Cluster {
            down: true,
            ..Cluster::default()
        });
        let props = json!({"Topics": ["shutter.posts"]});
        let r = handle(&app, request("Create", props)).await.unwrap();
        assert_eq!(r.status, "FAILED");
        assert_eq!(r.reason, "KafkaTopics: kafka: brokers unreachable");
        assert_eq!(app.responder.sent.lock().unwrap().len(), 1);
    }
}
