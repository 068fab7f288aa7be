//! A small client for moto's JSON-protocol APIs (DynamoDB, DynamoDB Streams, SQS).
//!
//! Raw JSON keeps DynamoDB stream records exactly as AWS writes them, which is what Lambda
//! hands to functions, and lets CloudFormation properties pass straight through to
//! `CreateTable`. moto does not check signatures; it routes on the credential scope.

use serde_json::Value;

use crate::Error;
use crate::template::REGION;

#[derive(Debug, Clone)]
pub struct MotoJson {
    http: reqwest::Client,
    endpoint: String,
}

impl MotoJson {
    pub fn new(endpoint: &str) -> Self {
        Self {
            http: reqwest::Client::new(),
            endpoint: endpoint.to_owned(),
        }
    }

    /// Calls `target` (e.g. `DynamoDB_20120810.CreateTable`) of `service`.
    pub async fn call(&self, service: &str, target: &str, body: &Value) -> Result<Value, Error> {
        let auth = format!(
            "AWS4-HMAC-SHA256 Credential=test/20260101/{REGION}/{service}/aws4_request, SignedHeaders=host, Signature=0"
        );
        let resp = self
            .http
            .post(&self.endpoint)
            .header("authorization", auth)
            .header("x-amz-target", target)
            .header("content-type", "application/x-amz-json-1.0")
            .body(body.to_string())
            .send()
            .await
            .map_err(|e| Error::Aws(format!("{target}: {e}")))?;
        let status = resp.status();
        let text = resp
            .text()
            .await
            .map_err(|e| Error::Aws(format!("{target}: {e}")))?;
        let value: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if !status.is_success() {
            return Err(Error::Aws(format!("{target} failed ({status}): {text}")));
        }
        Ok(value)
    }

    pub async fn dynamodb(&self, op: &str, body: &Value) -> Result<Value, Error> {
        self.call("dynamodb", &format!("DynamoDB_20120810.{op}"), body)
            .await
    }

    /// Creates `table` with a string hash key `pk` and a `NEW_IMAGE` stream (what the
    /// tests of the local DynamoDB need): the `CreateTable` answer.
    pub async fn create_streamed_table(&self, table: &str) -> Result<Value, Error> {
        self.dynamodb(
            "CreateTable",
            &serde_json::json!({
                "TableName": table,
                "BillingMode": "PAY_PER_REQUEST",
                "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
                "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
                "StreamSpecification": {"StreamEnabled": true, "StreamViewType": "NEW_IMAGE"},
            }),
        )
        .await
    }

    pub async fn streams(&self, op: &str, body: &Value) -> Result<Value, Error> {
        self.call("dynamodb", &format!("DynamoDBStreams_20120810.{op}"), body)
            .await
    }

    pub async fn sqs(&self, op: &str, body: &Value) -> Result<Value, Error> {
        self.call("sqs", &format!("AmazonSQS.{op}"), body).await
    }
}
