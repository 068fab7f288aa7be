//! The comment writes queue: `POST /v1/posts/{id}/comments` sends each accepted comment on
//! it, `comments-writer` stores them. The port, its SQS adapter
//! (`COMMENT_WRITES_QUEUE_URL`) and an in-memory fake.

use std::sync::Mutex;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use shutter_store::Cause;

use crate::model::Comment;

/// A comment on its way to `comments-writer`: the message body, as JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommentWrite {
    pub comment: Comment,
    pub correlation_id: String,
}

/// Why a write could not be queued.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("comment write could not be encoded: {0}")]
    Encode(#[from] serde_json::Error),
    #[error("comment writes queue unavailable: {0}")]
    Unavailable(#[source] Cause),
}

/// The queue that carries comment writes.
#[async_trait]
pub trait WriteQueue: Send + Sync {
    async fn send(&self, write: &CommentWrite) -> Result<(), QueueError>;
}

/// The SQS adapter.
#[derive(Debug, Clone)]
pub struct SqsWriteQueue {
    /// Built on first use (see [`shutter_store::SdkClient`]).
    pub client: shutter_store::SdkClient<aws_sdk_sqs::Client>,
    pub queue_url: String,
}

impl SqsWriteQueue {
    pub fn from_env(config: &shutter_store::SdkConfig) -> Result<Self, shutter_store::ConfigError> {
        Ok(Self {
            client: shutter_store::SdkClient::new(config, aws_sdk_sqs::Client::new),
            queue_url: shutter_store::env("COMMENT_WRITES_QUEUE_URL")?,
        })
    }
}

#[async_trait]
impl WriteQueue for SqsWriteQueue {
    async fn send(&self, write: &CommentWrite) -> Result<(), QueueError> {
        let body = serde_json::to_string(write)?;
        self.client
            .get()
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(body)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| QueueError::Unavailable(Box::new(e)))
    }
}

/// An in-memory queue for unit tests: what was sent, until taken.
#[derive(Debug, Default)]
pub struct MemoryWriteQueue {
    sent: Mutex<Vec<CommentWrite>>,
}

impl MemoryWriteQueue {
    /// The writes sent since the last call, oldest first.
    pub fn take(&self) -> Vec<CommentWrite> {
        std::mem::take(&mut *self.sent.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

#[async_trait]
impl WriteQueue for MemoryWriteQueue {
    async fn send(&self, write: &CommentWrite) -> Result<(), QueueError> {
        self.sent
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(write.clone());
        Ok(())
    }
}
