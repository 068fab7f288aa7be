//! Creates, in the local stack, everything template.yaml declares: secrets for the
//! `*SecretArn` parameters, DynamoDB tables (streams, TTL), SQS queues (redrive), S3
//! buckets (notifications to SQS) and Kafka topics. It fills a [`Resolver`] with each
//! resource's local name and attributes as it goes.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use aws_lc_rs::encoding::AsDer;
use base64::Engine;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use serde_json::{Value, json};

use crate::Error;
use crate::aws::MotoJson;
use crate::template::{ACCOUNT, REGION, Resolver, Template, scalar_string};

/// What provisioning made, for the gateway, runtime and mappings.
#[derive(Debug, Clone, Default)]
pub struct Provisioned {
    pub resolver: Resolver,
    /// queue ARN → queue URL
    pub queue_urls: HashMap<String, String>,
    /// logical id → physical name, for tables, queues and buckets
    pub names: HashMap<String, String>,
}

impl Provisioned {
    pub fn queue_url(&self, arn: &str) -> Result<&str, Error> {
        self.queue_urls
            .get(arn)
            .map(String::as_str)
            .ok_or_else(|| Error::Template(format!("no local queue has the ARN {arn}")))
    }
}

pub struct Context<'a> {
    pub template: &'a Template,
    pub moto: &'a MotoJson,
    pub moto_url: &'a str,
    pub kafka_bootstrap: &'a str,
    pub overrides: &'a HashMap<String, String>,
    pub progress: &'a (dyn Fn(&str) + Sync),
}

pub async fn provision(cx: &Context<'_>) -> Result<Provisioned, Error> {
    let mut out = Provisioned::default();
    parameters(cx, &mut out).await?;
    for (id, _, props) in cx.template.resources() {
        // Names first, so that any resource may refer to any other.
        let ty = cx.template.resource(id)["Type"]
            .as_str()
            .unwrap_or_default();
        match ty {
            "AWS::Serverless::Function" => {
                let name = props["FunctionName"].as_str().unwrap_or(id).to_owned();
                out.resolver.set_attr(
                    id,
                    "Arn",
                    format!("arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"),
                );
                out.resolver.set_ref(id, name);
            }
            "AWS::Serverless::HttpApi" | "AWS::Serverless::Api" => {
                out.resolver.set_ref(id, "local")
            }
            _ => {}
        }
    }
    tables(cx, &mut out).await?;
    queues(cx, &mut out).await?;
    buckets(cx, &mut out).await?;
    topics(cx).await?;
    Ok(out)
}

/// Parameter values: the caller's overrides, then template defaults, then local stand-ins.
/// Every `*SecretArn` parameter gets a secret in moto, so no key is ever in the template:
/// `SigningKeySecretArn` a fresh RSA key set, `PublicJwksSecretArn` that set's public JWKS
/// (as infra/scripts/signing-key.sh writes the two), any other a random key.
async fn parameters(cx: &Context<'_>, out: &mut Provisioned) -> Result<(), Error> {
    let aws = crate::sdk_config(cx.moto_url).await;
    let secrets = aws_sdk_secretsmanager::Client::new(&aws);
    // Made on first use, whichever of the two secrets comes first.
    let mut signing_keys: Option<String> = None;
    let mut signing = || -> Result<String, Error> {
        if signing_keys.is_none() {
            signing_keys = Some(signing_key_secret()?);
        }
        Ok(signing_keys.clone().unwrap_or_default())
    };
    for (name, decl) in cx.template.parameters() {
        let ty = decl["Type"].as_str().unwrap_or("String");
        let value: Value = if let Some(v) = cx.overrides.get(name) {
            json!(v)
        } else if let Some(stem) = name.strip_suffix("SecretArn") {
            (cx.progress)(&format!("creating secret for {name}"));
            let secret_name = format!("shutter-local/{}", kebab(stem));
            let value = match stem {
                "SigningKey" => signing()?,
                "PublicJwks" => public_jwks_secret(&signing()?)?,
                _ => random_key(),
            };
            let created = secrets
                .create_secret()
                .name(&secret_name)
                .secret_string(&value)
                .send()
                .await
                .map_err(|e| {
                    Error::Aws(format!(
                        "create secret {secret_name}: {}",
                        aws_sdk_secretsmanager::error::DisplayErrorContext(e)
                    ))
                })?;
            let arn = created.arn().unwrap_or_default().to_owned();
            out.resolver.set_secret(&arn, &secret_name, &value);
            json!(arn)
        } else if let Some(default) = decl.get("Default") {
            default.clone()
        } else if ty.starts_with("List<") || ty == "CommaDelimitedList" {
            json!([format!("local-{}", kebab(name))])
        } else if ty == "Number" {
            json!("0")
        } else if name.ends_with("Arn") {
            json!(format!("arn:aws:local:{REGION}:{ACCOUNT}:{}", kebab(name)))
        } else {
            json!(format!("local-{}", kebab(name)))
        };
        let value = if ty.starts_with("List<") || ty == "CommaDelimitedList" {
            match value {
                Value::String(s) => Value::Array(s.split(',').map(|p| json!(p.trim())).collect()),
                other => other,
            }
        } else {
            json!(scalar_string(&value))
        };
        out.resolver.set_ref(name, value);
    }
    Ok(())
}

fn kebab(s: &str) -> String {
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('-');
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

fn random_key() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// A fresh RSA 2048 key in the secret's shape, as infra/scripts/signing-key.sh makes it.
pub fn signing_key_secret() -> Result<String, Error> {
    let pair = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048)
        .map_err(|e| Error::Service(format!("RSA key generation failed: {e}")))?;
    let der = pair
        .as_der()
        .map_err(|e| Error::Service(format!("RSA key encoding failed: {e}")))?;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der.as_ref());
    let body: Vec<&str> = b64
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap_or_default())
        .collect();
    let pem = format!(
        "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
        body.join("\n")
    );
    let kid = format!("local-{}", ulid::Ulid::new().to_string().to_lowercase());
    Ok(json!({"active_kid": kid, "keys": [{"kid": kid, "private_key_pem": pem}]}).to_string())
}

/// The public half of a signing-key secret, as the JWKS `{"keys": [...]}` that auth-jwks
/// publishes (each key's `kid`, RS256, for signatures).
pub fn public_jwks_secret(signing_secret: &str) -> Result<String, Error> {
    use jsonwebtoken::jwk::{Jwk, JwkSet, KeyAlgorithm, PublicKeyUse};
    let bad = |why: String| Error::Service(format!("signing key secret: {why}"));
    let parsed: Value = serde_json::from_str(signing_secret).map_err(|e| bad(e.to_string()))?;
    let mut set = JwkSet { keys: Vec::new() };
    for key in parsed["keys"].as_array().into_iter().flatten() {
        let pem = key["private_key_pem"].as_str().unwrap_or_default();
        let encoding = jsonwebtoken::EncodingKey::from_rsa_pem(pem.as_bytes())
            .map_err(|e| bad(e.to_string()))?;
        let mut jwk: Jwk = Jwk::from_encoding_key(&encoding, jsonwebtoken::Algorithm::RS256)
            .map_err(|e| bad(e.to_string()))?;
        jwk.common.key_id = key["kid"].as_str().map(str::to_owned);
        jwk.common.public_key_use = Some(PublicKeyUse::Signature);
        jwk.common.key_algorithm = Some(KeyAlgorithm::RS256);
        set.keys.push(jwk);
    }
    serde_json::to_string(&set).map_err(|e| bad(e.to_string()))
}

async fn tables(cx: &Context<'_>, out: &mut Provisioned) -> Result<(), Error> {
    for (id, raw) in cx.template.resources_of("AWS::DynamoDB::Table") {
        let props = out.resolver.resolve(raw)?;
        let name = props["TableName"].as_str().unwrap_or(id).to_owned();
        (cx.progress)(&format!("creating table {name}"));
        let mut req = json!({
            "TableName": name,
            "AttributeDefinitions": props["AttributeDefinitions"],
            "KeySchema": props["KeySchema"],
            "BillingMode": props["BillingMode"].as_str().unwrap_or("PAY_PER_REQUEST"),
        });
        for key in [
            "GlobalSecondaryIndexes",
            "LocalSecondaryIndexes",
            "ProvisionedThroughput",
        ] {
            if !props[key].is_null() {
                req[key] = props[key].clone();
            }
        }
        if let Some(view) = props["StreamSpecification"]["StreamViewType"].as_str() {
            req["StreamSpecification"] = json!({"StreamEnabled": true, "StreamViewType": view});
        }
        let created = cx.moto.dynamodb("CreateTable", &req).await?;
        if let Some(ttl) = props["TimeToLiveSpecification"].as_object()
            && ttl.get("Enabled") == Some(&json!(true))
        {
            cx.moto
                    .dynamodb(
                        "UpdateTimeToLive",
                        &json!({"TableName": name, "TimeToLiveSpecification": {"AttributeName": ttl["AttributeName"], "Enabled": true}}),
                    )
                    .await?;
        }
        let desc = &created["TableDescription"];
        out.resolver
            .set_attr(id, "Arn", desc["TableArn"].as_str().unwrap_or_default());
        if let Some(stream) = desc["LatestStreamArn"].as_str() {
            out.resolver.set_attr(id, "StreamArn", stream);
        }
        out.resolver.set_ref(id, name.clone());
        out.names.insert(id.to_owned(), name);
    }
    Ok(())
}

const QUEUE_ATTRIBUTES: &[&str] = &[
    "VisibilityTimeout",
    "MessageRetentionPeriod",
    "DelaySeconds",
    "MaximumMessageSize",
    "ReceiveMessageWaitTimeSeconds",
    "FifoQueue",
    "ContentBasedDeduplication",
];

async fn queues(cx: &Context<'_>, out: &mut Provisioned) -> Result<(), Error> {
    let queues: Vec<(&str, &Value)> = cx.template.resources_of("AWS::SQS::Queue").collect();
    // Create them all first: a redrive policy names another queue's ARN.
    for (id, raw) in &queues {
        let name = raw["QueueName"]
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| {
                if raw["FifoQueue"] == json!(true) {
                    format!("{id}.fifo")
                } else {
                    (*id).to_owned()
                }
            });
        (cx.progress)(&format!("creating queue {name}"));
        let mut attributes = serde_json::Map::new();
        if raw["FifoQueue"] == json!(true) {
            attributes.insert("FifoQueue".into(), json!("true"));
        }
        let created = cx
            .moto
            .sqs(
                "CreateQueue",
                &json!({"QueueName": name, "Attributes": attributes}),
            )
            .await?;
        let url = created["QueueUrl"].as_str().unwrap_or_default().to_owned();
        let arn = format!("arn:aws:sqs:{REGION}:{ACCOUNT}:{name}");
        out.resolver.set_attr(id, "Arn", arn.clone());
        out.resolver.set_attr(id, "QueueName", name.clone());
        out.resolver.set_attr(id, "QueueUrl", url.clone());
        out.resolver.set_ref(id, url.clone());
        out.queue_urls.insert(arn, url);
        out.names.insert((*id).to_owned(), name);
    }
    for (id, raw) in &queues {
        let props = out.resolver.resolve(raw)?;
        let mut attributes = serde_json::Map::new();
        for key in QUEUE_ATTRIBUTES.iter().filter(|k| **k != "FifoQueue") {
            if !props[*key].is_null() {
                attributes.insert((*key).to_owned(), json!(scalar_string(&props[*key])));
            }
        }
        if let Some(redrive) = props["RedrivePolicy"].as_object() {
            let policy = json!({
                "deadLetterTargetArn": redrive.get("deadLetterTargetArn"),
                "maxReceiveCount": redrive.get("maxReceiveCount").map(scalar_string),
            });
            attributes.insert("RedrivePolicy".into(), json!(policy.to_string()));
        }
        if !attributes.is_empty() {
            let url = out
                .resolver
                .attr(id, "QueueUrl")
                .unwrap_or_default()
                .to_owned();
            cx.moto
                .sqs(
                    "SetQueueAttributes",
                    &json!({"QueueUrl": url, "Attributes": attributes}),
                )
                .await?;
        }
    }
    Ok(())
}

async fn buckets(cx: &Context<'_>, out: &mut Provisioned) -> Result<(), Error> {
    use aws_sdk_s3::types::{
        Event, FilterRule, FilterRuleName, NotificationConfiguration,
        NotificationConfigurationFilter, QueueConfiguration, S3KeyFilter,
    };
    let aws = crate::sdk_config(cx.moto_url).await;
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&aws)
            .force_path_style(true)
            .build(),
    );
    let ids: Vec<&str> = cx
        .template
        .resources_of("AWS::S3::Bucket")
        .map(|(id, _)| id)
        .collect();
    for id in &ids {
        let raw = &cx.template.resource(id)["Properties"];
        let name = raw["BucketName"]
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| format!("shutter-local-{}", id.to_lowercase()));
        out.resolver.set_ref(id, name.clone());
        out.resolver
            .set_attr(id, "Arn", format!("arn:aws:s3:::{name}"));
        out.resolver
            .set_attr(id, "DomainName", format!("{name}.s3.amazonaws.com"));
        out.resolver.set_attr(
            id,
            "RegionalDomainName",
            format!("{name}.s3.{REGION}.amazonaws.com"),
        );
        out.names.insert((*id).to_owned(), name);
    }
    for id in ids {
        let name = out.names[id].clone();
        (cx.progress)(&format!("creating bucket {name}"));
        s3.create_bucket().bucket(&name).send().await.map_err(|e| {
            Error::Aws(format!(
                "create bucket {name}: {}",
                aws_sdk_s3::error::DisplayErrorContext(e)
            ))
        })?;
        let props = out
            .resolver
            .resolve(&cx.template.resource(id)["Properties"])?;
        let mut queue_configs = Vec::new();
        for q in props["NotificationConfiguration"]["QueueConfigurations"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let rules = q["Filter"]["S3Key"]["Rules"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|r| {
                    FilterRule::builder()
                        .name(FilterRuleName::from(
                            r["Name"]
                                .as_str()
                                .unwrap_or_default()
                                .to_lowercase()
                                .as_str(),
                        ))
                        .value(r["Value"].as_str().unwrap_or_default())
                        .build()
                })
                .collect::<Vec<_>>();
            let mut config = QueueConfiguration::builder()
                .queue_arn(q["Queue"].as_str().unwrap_or_default())
                .events(Event::from(q["Event"].as_str().unwrap_or_default()));
            if !rules.is_empty() {
                config = config.filter(
                    NotificationConfigurationFilter::builder()
                        .key(S3KeyFilter::builder().set_filter_rules(Some(rules)).build())
                        .build(),
                );
            }
            queue_configs.push(
                config
                    .build()
                    .map_err(|e| Error::Template(format!("{id} notification: {e}")))?,
            );
        }
        if !queue_configs.is_empty() {
            s3.put_bucket_notification_configuration()
                .bucket(&name)
                .notification_configuration(
                    NotificationConfiguration::builder()
                        .set_queue_configurations(Some(queue_configs))
                        .build(),
                )
                .send()
                .await
                .map_err(|e| {
                    Error::Aws(format!(
                        "bucket {name} notifications: {}",
                        aws_sdk_s3::error::DisplayErrorContext(e)
                    ))
                })?;
        }
    }
    Ok(())
}

async fn topics(cx: &Context<'_>) -> Result<(), Error> {
    let topics = cx.template.kafka_topics();
    if topics.is_empty() {
        return Ok(());
    }
    (cx.progress)(&format!("creating Kafka topics {}", topics.join(", ")));
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", cx.kafka_bootstrap)
        .create()
        .map_err(|e| Error::Kafka(format!("admin client: {e}")))?;
    let new: Vec<NewTopic> = topics
        .iter()
        .map(|t| NewTopic::new(t, 3, TopicReplication::Fixed(1)))
        .collect();
    let created = create_topics(&admin, &new).await;
    // Destroying a client joins its threads, which may wait on the broker: not here.
    let _ = std::thread::Builder::new()
        .name("kafka-admin-drop".into())
        .spawn(move || drop(admin));
    created
}

async fn create_topics(
    admin: &AdminClient<DefaultClientContext>,
    new: &[NewTopic<'_>],
) -> Result<(), Error> {
    let start = Instant::now();
    loop {
        let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
        match admin.create_topics(new, &opts).await {
            Ok(results) => {
                for r in results {
                    if let Err((topic, code)) = r
                        && code != rdkafka::types::RDKafkaErrorCode::TopicAlreadyExists
                    {
                        return Err(Error::Kafka(format!("create topic {topic}: {code}")));
                    }
                }
                return Ok(());
            }
            Err(e) if start.elapsed() < Duration::from_secs(30) => {
                tracing::debug!("topics not created yet: {e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => return Err(Error::Kafka(format!("create topics: {e}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_signing_keys_sign_rs256_tokens() {
        let secret: Value = serde_json::from_str(&signing_key_secret().unwrap()).unwrap();
        let pem = secret["keys"][0]["private_key_pem"].as_str().unwrap();
        assert_eq!(secret["active_kid"], secret["keys"][0]["kid"]);
        let key = jsonwebtoken::EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap();
        let token = jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256),
            &json!({"sub": "x"}),
            &key,
        );
        assert!(token.is_ok(), "{token:?}");
    }

    #[test]
    fn the_public_jwks_verifies_what_the_signing_keys_sign_and_holds_no_private_part() {
        let signing = signing_key_secret().unwrap();
        let secret: Value = serde_json::from_str(&signing).unwrap();
        let kid = secret["active_kid"].as_str().unwrap();
        let pem = secret["keys"][0]["private_key_pem"].as_str().unwrap();
        let jwks: jsonwebtoken::jwk::JwkSet =
            serde_json::from_str(&public_jwks_secret(&signing).unwrap()).unwrap();
        let raw = public_jwks_secret(&signing).unwrap();
        assert!(!raw.contains("\"d\""), "{raw}");
        let key = jsonwebtoken::EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap();
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
        header.kid = Some(kid.to_owned());
        let token = jsonwebtoken::encode(&header, &json!({"sub": "x"}), &key).unwrap();
        let decoding = jsonwebtoken::DecodingKey::from_jwk(jwks.find(kid).unwrap()).unwrap();
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
        validation.required_spec_claims.clear();
        validation.validate_exp = false;
        assert!(jsonwebtoken::decode::<Value>(&token, &decoding, &validation).is_ok());
    }

    #[test]
    fn parameter_names_become_secret_names() {
        assert_eq!(kebab("SigningKey"), "signing-key");
        assert_eq!(kebab("CursorKey"), "cursor-key");
    }
}
