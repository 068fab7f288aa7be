//! Where archives are written: the exports bucket (`EXPORTS_BUCKET`), whose lifecycle
//! rule expires everything under `exports/` (template.yaml, `ExportArchiveDays`).

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use shutter_media::{MediaStore, S3MediaStore};
use shutter_store::{ConfigError, SdkConfig, StoreResult};

use crate::model::ARCHIVE_CONTENT_TYPE;

/// The archive objects' port.
#[async_trait]
pub trait Archive: Send + Sync {
    /// Writes (or overwrites) an NDJSON object.
    async fn put(&self, key: &str, bytes: Vec<u8>) -> StoreResult<()>;
    /// The object, or none when it is gone.
    async fn get(&self, key: &str) -> StoreResult<Option<Vec<u8>>>;
    /// Every key under `prefix`, in key order.
    async fn keys(&self, prefix: &str) -> StoreResult<Vec<String>>;
    /// Deletes an object (nothing to do when it is gone).
    async fn delete(&self, key: &str) -> StoreResult<()>;
    /// A URL that downloads the object for `ttl`, signed for whoever holds it.
    async fn link(&self, key: &str, ttl: Duration) -> StoreResult<String>;
}

/// The S3 adapter.
#[derive(Debug, Clone)]
pub struct S3Archive {
    pub bucket: S3MediaStore,
}

impl S3Archive {
    pub fn from_env(aws: &SdkConfig) -> Result<Self, ConfigError> {
        Ok(Self {
            bucket: S3MediaStore::new(aws, shutter_store::env("EXPORTS_BUCKET")?),
        })
    }
}

/// Keys per listing request (S3's maximum).
const LIST_KEYS: u32 = 1000;

#[async_trait]
impl Archive for S3Archive {
    async fn put(&self, key: &str, bytes: Vec<u8>) -> StoreResult<()> {
        self.bucket
            .put_object(key, ARCHIVE_CONTENT_TYPE, bytes)
            .await
    }

    async fn get(&self, key: &str) -> StoreResult<Option<Vec<u8>>> {
        MediaStore::get(&self.bucket, key).await
    }

    async fn keys(&self, prefix: &str) -> StoreResult<Vec<String>> {
        let mut keys = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = self
                .bucket
                .list_page(prefix, after.as_deref(), LIST_KEYS)
                .await?;
            keys.extend(page.keys);
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        keys.sort();
        Ok(keys)
    }

    async fn delete(&self, key: &str) -> StoreResult<()> {
        MediaStore::delete(&self.bucket, key).await
    }

    async fn link(&self, key: &str, ttl: Duration) -> StoreResult<String> {
        self.bucket.presigned_get(key, ttl).await
    }
}

/// Archives in memory, for unit tests.
#[derive(Debug, Default)]
pub struct MemoryArchive {
    objects: Mutex<BTreeMap<String, Vec<u8>>>,
}

impl MemoryArchive {
    fn objects(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Vec<u8>>> {
        self.objects.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Every key stored.
    pub fn all_keys(&self) -> Vec<String> {
        self.objects().keys().cloned().collect()
    }
}

#[async_trait]
impl Archive for MemoryArchive {
    async fn put(&self, key: &str, bytes: Vec<u8>) -> StoreResult<()> {
        self.objects().insert(key.to_owned(), bytes);
        Ok(())
    }

    async fn get(&self, key: &str) -> StoreResult<Option<Vec<u8>>> {
        Ok(self.objects().get(key).cloned())
    }

    async fn keys(&self, prefix: &str) -> StoreResult<Vec<String>> {
        Ok(self
            .objects()
            .keys()
            .filter(|k| k.starts_with(prefix))
            .cloned()
            .collect())
    }

    async fn delete(&self, key: &str) -> StoreResult<()> {
        self.objects().remove(key);
        Ok(())
    }

    async fn link(&self, key: &str, ttl: Duration) -> StoreResult<String> {
        Ok(format!("memory://{key}?ttl={}", ttl.as_secs()))
    }
}
