//! Media in S3: the types Shutter accepts (checked by their magic bytes, never by what a
//! client declares), browser-style POST uploads signed with SigV4 so clients send bytes
//! straight to S3 and S3 itself refuses a wrong type or size, and the S3 adapter the
//! services read, write and delete objects with. moto does not enforce POST policies, so
//! consumers check uploaded objects again (size and real type). Nothing a client uploads is
//! stored as it came: images go through [`images`] (decoded under a pixel cap, turned
//! upright, re-encoded) and videos through [`mp4`] (location and other metadata blanked).

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use aws_credential_types::provider::ProvideCredentials;
use aws_lambda_events::event::s3::S3Event;
use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use shutter_store::StoreError;
use time::OffsetDateTime;
use time::macros::format_description;

pub mod images;
pub mod mp4;
pub mod s3;

pub const UPLOAD_URL_TTL: Duration = Duration::from_secs(10 * 60);
const VIEW_URL_TTL: Duration = Duration::from_secs(60 * 60);

/// The tag every upload form requires, `shutter-upload=unverified`, as S3's POST `tagging`
/// field takes it. The bucket's lifecycle rule expires avatar uploads that still carry it
/// after 14 days (template.yaml): an upload nobody verified. [`MediaStore::mark_verified`]
/// removes it from an upload that is kept where it was uploaded.
pub const UNVERIFIED_UPLOAD_TAGGING: &str = "<Tagging><TagSet><Tag><Key>shutter-upload</Key><Value>unverified</Value></Tag></TagSet></Tagging>";

/// Why an upload was refused: a sentence the post's media item or the log keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal(pub String);

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The user metadata [`MediaStore::put`] writes on every object (`x-amz-meta-shutter-origin`):
/// the object was written by Shutter, not uploaded by a client. A client cannot forge it:
/// S3 refuses a POST upload with a form field its signed policy does not name, and the
/// policies ([`post_policy`]) name no `x-amz-meta-*` field.
const ORIGIN_HEADER: &str = "x-amz-meta-shutter-origin";
const ORIGIN_SHUTTER: &str = "shutter";

/// Who wrote an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// A client, through an upload form: not checked yet.
    Upload,
    /// Shutter itself ([`MediaStore::put`]): a processed file.
    Shutter,
}

/// The media types Shutter stores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum MediaType {
    #[serde(rename = "image/jpeg")]
    Jpeg,
    #[serde(rename = "image/png")]
    Png,
    #[serde(rename = "image/webp")]
    Webp,
    #[serde(rename = "video/mp4")]
    Mp4,
}

impl MediaType {
    pub const ALL: [Self; 4] = [Self::Jpeg, Self::Png, Self::Webp, Self::Mp4];

    pub fn mime(self) -> &'static str {
        match self {
            Self::Jpeg => "image/jpeg",
            Self::Png => "image/png",
            Self::Webp => "image/webp",
            Self::Mp4 => "video/mp4",
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            Self::Jpeg => "jpg",
            Self::Png => "png",
            Self::Webp => "webp",
            Self::Mp4 => "mp4",
        }
    }

    pub fn is_image(self) -> bool {
        self != Self::Mp4
    }

    pub fn from_mime(mime: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|t| t.mime().eq_ignore_ascii_case(mime.trim()))
    }

    /// The type the file's first bytes (16 are enough) say it is.
    pub fn sniff(head: &[u8]) -> Option<Self> {
        if head.starts_with(&[0xFF, 0xD8, 0xFF]) {
            Some(Self::Jpeg)
        } else if head.starts_with(&[0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A]) {
            Some(Self::Png)
        } else if head.len() >= 12 && &head[0..4] == b"RIFF" && &head[8..12] == b"WEBP" {
            Some(Self::Webp)
        } else if head.len() >= 12 && &head[4..8] == b"ftyp" {
            Some(Self::Mp4)
        } else {
            None
        }
    }
}

/// S3 notifications URL-encode keys (`+` for space).
pub fn decode_s3_key(raw: &str) -> String {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                match u8::from_str_radix(
                    std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("zz"),
                    16,
                ) {
                    Ok(b) => {
                        out.push(b);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Runs `handle` on the key of every object an SQS batch of S3 notifications announces.
/// A message whose handling fails (retryably: `handle` decides what is final) is reported
/// as a batch item failure, so SQS redelivers it alone and not the rest of the batch.
pub async fn for_each_upload<F, Fut, E>(event: &SqsEvent, mut handle: F) -> SqsBatchResponse
where
    F: FnMut(String) -> Fut,
    Fut: std::future::Future<Output = Result<(), E>>,
    E: std::fmt::Display,
{
    let mut response = SqsBatchResponse::default();
    for message in &event.records {
        let id = message.message_id.clone().unwrap_or_default();
        let body = message.body.as_deref().unwrap_or("");
        // S3 sends a test event when the notification is configured; it has no records.
        let Ok(s3_event) = serde_json::from_str::<S3Event>(body) else {
            tracing::warn!(message_id = %id, "not an S3 event; dropped");
            continue;
        };
        for record in &s3_event.records {
            let Some(key) = record.s3.object.key.as_deref().map(decode_s3_key) else {
                continue;
            };
            if let Err(err) = handle(key.clone()).await {
                tracing::warn!(message_id = %id, key = %key, error = %err, "upload handling failed; retried");
                let mut failure = BatchItemFailure::default();
                failure.item_identifier = id.clone();
                response.batch_item_failures.push(failure);
                break;
            }
        }
    }
    response
}

/// A pre-signed POST: the client sends `fields` plus `file` as multipart/form-data to `url`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct UploadForm {
    pub url: String,
    pub method: &'static str,
    pub fields: BTreeMap<String, String>,
    pub expires_at: String,
}

/// What S3 says of a stored object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    pub size: u64,
    pub content_type: Option<String>,
}

#[async_trait]
pub trait MediaStore: Send + Sync {
    async fn presign_upload(
        &self,
        key: &str,
        media_type: MediaType,
        max_bytes: u64,
    ) -> Result<UploadForm, StoreError>;
    async fn head(&self, key: &str) -> Result<Option<ObjectInfo>, StoreError>;
    /// [`MediaStore::head`] and who wrote the object, in one request.
    async fn head_with_origin(&self, key: &str)
    -> Result<Option<(ObjectInfo, Origin)>, StoreError>;
    async fn first_bytes(&self, key: &str, n: u64) -> Result<Vec<u8>, StoreError>;
    /// The whole object, or `None` when it is gone.
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// Writes an object as Shutter's own ([`Origin::Shutter`]), with no tags.
    async fn put(&self, key: &str, media_type: MediaType, bytes: Vec<u8>)
    -> Result<(), StoreError>;
    async fn delete(&self, key: &str) -> Result<(), StoreError>;
    async fn delete_prefix(&self, prefix: &str) -> Result<(), StoreError>;
    /// Keeps an upload: removes its tags, so the lifecycle rule for unverified uploads
    /// leaves it. Nothing to do for an object that is gone.
    async fn mark_verified(&self, key: &str) -> Result<(), StoreError>;
    /// A URL a client can fetch the object from.
    async fn view_url(&self, key: &str) -> Result<String, StoreError>;
}

/// The S3 adapter. Upload forms and view URLs are signed here with SigV4; objects are
/// read, written and deleted with signed requests ([`s3`]), not through the S3 SDK client,
/// whose code is about a megabyte per binary.
#[derive(Debug, Clone)]
pub struct S3MediaStore {
    config: shutter_store::SdkConfig,
    bucket: String,
    // Both fixed by the config: worked out once, not for every URL a feed page signs.
    region: String,
    bucket_url: String,
    objects: s3::S3Objects,
}

/// Keys per ListObjectsV2 page: S3's maximum.
const LIST_PAGE_KEYS: u32 = 1000;

impl S3MediaStore {
    /// The bucket named by `MEDIA_BUCKET`.
    pub fn from_env(config: &shutter_store::SdkConfig) -> Result<Self, shutter_store::ConfigError> {
        Ok(Self::new(config, shutter_store::env("MEDIA_BUCKET")?))
    }

    pub fn new(config: &shutter_store::SdkConfig, bucket: impl Into<String>) -> Self {
        let bucket = bucket.into();
        let region = config
            .region()
            .map(|r| r.to_string())
            .unwrap_or_else(|| "us-east-1".to_owned());
        // Virtual-hosted on AWS, path-style on a local endpoint (moto serves every bucket
        // on one host).
        let bucket_url = match config.endpoint_url() {
            Some(endpoint) => format!("{}/{bucket}", endpoint.trim_end_matches('/')),
            None => format!("https://{bucket}.s3.{region}.amazonaws.com/"),
        };
        Self {
            config: config.clone(),
            bucket,
            region,
            bucket_url,
            objects: s3::S3Objects::default(),
        }
    }

    async fn credentials(&self) -> Result<aws_credential_types::Credentials, StoreError> {
        let provider = self.config.credentials_provider().ok_or_else(|| {
            StoreError::unavailable(std::io::Error::other("no AWS credentials provider"))
        })?;
        provider.provide_credentials().await.map_err(internal)
    }

    fn signer<'a>(&'a self, credentials: &'a aws_credential_types::Credentials) -> s3::Signer<'a> {
        s3::Signer {
            region: &self.region,
            credentials,
            now: SystemTime::now(),
        }
    }

    /// One signed call; `what` names it in errors and logs.
    async fn call(
        &self,
        what: &str,
        method: http::Method,
        url: &str,
        headers: &[(&str, &str)],
        body: Bytes,
    ) -> Result<s3::Reply, StoreError> {
        let credentials = self.credentials().await?;
        let build = || {
            let mut request = http::Request::builder().method(method.clone()).uri(url);
            for (name, value) in headers {
                request = request.header(*name, *value);
            }
            request.body(body.clone()).map_err(internal)
        };
        let sign =
            |request: &mut http::Request<Bytes>| self.signer(&credentials).sign_headers(request);
        self.objects.send(what, build, sign).await
    }

    async fn object_call(
        &self,
        what: &str,
        method: http::Method,
        key: &str,
        headers: &[(&str, &str)],
        body: Bytes,
    ) -> Result<s3::Reply, StoreError> {
        let url = s3::object_url(&self.bucket_url, key);
        self.call(what, method, &url, headers, body).await
    }

    /// One page of the keys under `prefix` (ListObjectsV2), at most `max_keys`, starting
    /// where the page before ended (`after`, its `next`).
    pub async fn list_page(
        &self,
        prefix: &str,
        after: Option<&str>,
        max_keys: u32,
    ) -> Result<s3::ListPage, StoreError> {
        let encode = |v: &str| percent_encoding::utf8_percent_encode(v, s3::UNRESERVED).to_string();
        // In the canonical order (sorted by name), so the URL is signed as sent.
        let mut query = String::new();
        if let Some(token) = after {
            query = format!("continuation-token={}&", encode(token));
        }
        query += &format!("list-type=2&max-keys={max_keys}&prefix={}", encode(prefix));
        let url = format!("{}?{query}", self.bucket_url);
        let reply = self
            .call("list", http::Method::GET, &url, &[], Bytes::new())
            .await?;
        if reply.status != 200 {
            return Err(reply.into_error("list"));
        }
        s3::ListPage::parse(&reply.body)
    }

    /// Writes an object that is not a media file (an account export's archive or one of
    /// its parts) with its own content type, as Shutter's own.
    pub async fn put_object(
        &self,
        key: &str,
        content_type: &str,
        bytes: Vec<u8>,
    ) -> Result<(), StoreError> {
        let reply = self
            .object_call(
                "put",
                http::Method::PUT,
                key,
                &[
                    ("content-type", content_type),
                    (ORIGIN_HEADER, ORIGIN_SHUTTER),
                ],
                bytes.into(),
            )
            .await?;
        match reply.status {
            200 => Ok(()),
            _ => Err(reply.into_error("put")),
        }
    }

    /// A URL a client can fetch the object from for `ttl` (SigV4 caps it at 7 days).
    pub async fn presigned_get(&self, key: &str, ttl: Duration) -> Result<String, StoreError> {
        let credentials = self.credentials().await?;
        self.signer(&credentials)
            .presign_get(&s3::object_url(&self.bucket_url, key), ttl)
    }
}

fn internal(e: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    StoreError::unavailable(e)
}

#[async_trait]
impl MediaStore for S3MediaStore {
    async fn presign_upload(
        &self,
        key: &str,
        media_type: MediaType,
        max_bytes: u64,
    ) -> Result<UploadForm, StoreError> {
        let creds = self.credentials().await?;
        let now = SystemTime::now();
        let form = post_policy(&PolicyInput {
            bucket: &self.bucket,
            key,
            content_type: media_type.mime(),
            max_bytes,
            region: &self.region,
            access_key: creds.access_key_id(),
            secret_key: creds.secret_access_key(),
            session_token: creds.session_token(),
            now,
        })?;
        Ok(UploadForm {
            url: self.bucket_url.clone(),
            ..form
        })
    }

    async fn head(&self, key: &str) -> Result<Option<ObjectInfo>, StoreError> {
        Ok(self.head_with_origin(key).await?.map(|(info, _)| info))
    }

    async fn head_with_origin(
        &self,
        key: &str,
    ) -> Result<Option<(ObjectInfo, Origin)>, StoreError> {
        let reply = self
            .object_call("head", http::Method::HEAD, key, &[], Bytes::new())
            .await?;
        match reply.status {
            200 => {
                let origin = match reply.headers.get(ORIGIN_HEADER) {
                    Some(v) if v == ORIGIN_SHUTTER => Origin::Shutter,
                    _ => Origin::Upload,
                };
                let info = ObjectInfo {
                    size: reply.content_length().unwrap_or(0),
                    content_type: reply.content_type().map(str::to_owned),
                };
                Ok(Some((info, origin)))
            }
            404 => Ok(None),
            _ => Err(reply.into_error("head")),
        }
    }

    async fn first_bytes(&self, key: &str, n: u64) -> Result<Vec<u8>, StoreError> {
        let range = format!("bytes=0-{}", n.saturating_sub(1));
        let reply = self
            .object_call(
                "ranged get",
                http::Method::GET,
                key,
                &[("range", &range)],
                Bytes::new(),
            )
            .await?;
        match reply.status {
            200 | 206 => Ok(reply.body.into_iter().take(n as usize).collect()),
            _ => Err(reply.into_error("ranged get")),
        }
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let reply = self
            .object_call("get", http::Method::GET, key, &[], Bytes::new())
            .await?;
        match reply.status {
            200 => Ok(Some(reply.body)),
            404 if reply.error_code().as_deref() == Some("NoSuchKey") => Ok(None),
            _ => Err(reply.into_error("get")),
        }
    }

    async fn put(
        &self,
        key: &str,
        media_type: MediaType,
        bytes: Vec<u8>,
    ) -> Result<(), StoreError> {
        let reply = self
            .object_call(
                "put",
                http::Method::PUT,
                key,
                &[
                    ("content-type", media_type.mime()),
                    (ORIGIN_HEADER, ORIGIN_SHUTTER),
                ],
                bytes.into(),
            )
            .await?;
        match reply.status {
            200 => Ok(()),
            _ => Err(reply.into_error("put")),
        }
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        // S3 answers 204 whether or not the object was there.
        let reply = self
            .object_call("delete", http::Method::DELETE, key, &[], Bytes::new())
            .await?;
        match reply.status {
            200 | 204 => Ok(()),
            _ => Err(reply.into_error("delete")),
        }
    }

    async fn delete_prefix(&self, prefix: &str) -> Result<(), StoreError> {
        let mut after = None;
        loop {
            let page = self
                .list_page(prefix, after.as_deref(), LIST_PAGE_KEYS)
                .await?;
            for key in &page.keys {
                self.delete(key).await?;
            }
            match page.next {
                Some(next) => after = Some(next),
                None => return Ok(()),
            }
        }
    }

    async fn mark_verified(&self, key: &str) -> Result<(), StoreError> {
        // DeleteObjectTagging: 204 when the tags are gone, 404 when the object is.
        let url = format!("{}?tagging", s3::object_url(&self.bucket_url, key));
        let reply = self
            .call("untag", http::Method::DELETE, &url, &[], Bytes::new())
            .await?;
        match reply.status {
            200 | 204 | 404 => Ok(()),
            _ => Err(reply.into_error("untag")),
        }
    }

    async fn view_url(&self, key: &str) -> Result<String, StoreError> {
        let credentials = self.credentials().await?;
        self.signer(&credentials)
            .presign_get(&s3::object_url(&self.bucket_url, key), VIEW_URL_TTL)
    }
}

/// Inputs of an S3 POST policy.
pub struct PolicyInput<'a> {
    pub bucket: &'a str,
    pub key: &'a str,
    pub content_type: &'a str,
    pub max_bytes: u64,
    pub region: &'a str,
    pub access_key: &'a str,
    pub secret_key: &'a str,
    pub session_token: Option<&'a str>,
    pub now: SystemTime,
}

/// Builds and signs (SigV4) an S3 POST policy that allows exactly one key, one content
/// type and at most `max_bytes`, and tags the object as an unverified upload.
pub fn post_policy(input: &PolicyInput<'_>) -> Result<UploadForm, StoreError> {
    let now = OffsetDateTime::from(input.now);
    let date = now
        .format(format_description!("[year][month][day]"))
        .map_err(internal)?;
    let amz_date = now
        .format(format_description!(
            "[year][month][day]T[hour][minute][second]Z"
        ))
        .map_err(internal)?;
    let expires = now + UPLOAD_URL_TTL;
    let expiration = expires
        .format(format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second].000Z"
        ))
        .map_err(internal)?;
    let credential = format!(
        "{}/{date}/{}/s3/aws4_request",
        input.access_key, input.region
    );

    let mut fields = BTreeMap::from([
        ("key".to_owned(), input.key.to_owned()),
        ("Content-Type".to_owned(), input.content_type.to_owned()),
        ("x-amz-algorithm".to_owned(), "AWS4-HMAC-SHA256".to_owned()),
        ("x-amz-credential".to_owned(), credential),
        ("x-amz-date".to_owned(), amz_date),
        ("tagging".to_owned(), UNVERIFIED_UPLOAD_TAGGING.to_owned()),
    ]);
    if let Some(token) = input.session_token {
        fields.insert("x-amz-security-token".to_owned(), token.to_owned());
    }
    let mut conditions = vec![
        serde_json::json!({"bucket": input.bucket}),
        serde_json::json!(["content-length-range", 1, input.max_bytes]),
    ];
    conditions.extend(fields.iter().map(|(k, v)| serde_json::json!({ k: v })));
    let policy = serde_json::json!({"expiration": expiration, "conditions": conditions});
    let policy_b64 = STANDARD.encode(policy.to_string());
    let signing_key =
        aws_sigv4::sign::v4::generate_signing_key(input.secret_key, input.now, input.region, "s3");
    let signature = aws_sigv4::sign::v4::calculate_signature(signing_key, policy_b64.as_bytes());
    fields.insert("policy".to_owned(), policy_b64);
    fields.insert("x-amz-signature".to_owned(), signature);
    Ok(UploadForm {
        url: String::new(),
        method: "POST",
        fields,
        expires_at: shutter_core::rfc3339(expires),
    })
}

/// Stored objects: key -> (content type, bytes).
type Objects = HashMap<String, (String, Vec<u8>)>;

/// Objects in memory, for unit tests.
#[derive(Debug, Default)]
pub struct MemoryMedia {
    pub objects: Mutex<Objects>,
    /// The keys [`MediaStore::mark_verified`] was called for (their uploads kept).
    pub verified: Mutex<std::collections::BTreeSet<String>>,
    /// The keys last written by [`MediaStore::put`] ([`Origin::Shutter`]).
    pub written: Mutex<std::collections::BTreeSet<String>>,
}

impl MemoryMedia {
    fn objects(&self) -> Result<std::sync::MutexGuard<'_, Objects>, StoreError> {
        self.objects
            .lock()
            .map_err(|_| StoreError::unavailable(std::io::Error::other("poisoned lock")))
    }

    /// Stores an object as a client upload would (test set-up).
    pub fn upload(&self, key: &str, content_type: &str, bytes: Vec<u8>) {
        if let Ok(mut objects) = self.objects() {
            objects.insert(key.to_owned(), (content_type.to_owned(), bytes));
        }
        if let Ok(mut written) = self.written() {
            written.remove(key);
        }
    }

    fn written(
        &self,
    ) -> Result<std::sync::MutexGuard<'_, std::collections::BTreeSet<String>>, StoreError> {
        self.written
            .lock()
            .map_err(|_| StoreError::unavailable(std::io::Error::other("poisoned lock")))
    }
}

#[async_trait]
impl MediaStore for MemoryMedia {
    async fn presign_upload(
        &self,
        key: &str,
        media_type: MediaType,
        max_bytes: u64,
    ) -> Result<UploadForm, StoreError> {
        let fields = BTreeMap::from([
            ("key".to_owned(), key.to_owned()),
            ("Content-Type".to_owned(), media_type.mime().to_owned()),
            ("max-bytes".to_owned(), max_bytes.to_string()),
        ]);
        Ok(UploadForm {
            url: "https://s3.test/media".into(),
            method: "POST",
            fields,
            expires_at: "later".into(),
        })
    }
    async fn head(&self, key: &str) -> Result<Option<ObjectInfo>, StoreError> {
        Ok(self.objects()?.get(key).map(|(ct, b)| ObjectInfo {
            size: b.len() as u64,
            content_type: Some(ct.clone()),
        }))
    }
    async fn head_with_origin(
        &self,
        key: &str,
    ) -> Result<Option<(ObjectInfo, Origin)>, StoreError> {
        let origin = if self.written()?.contains(key) {
            Origin::Shutter
        } else {
            Origin::Upload
        };
        Ok(self.head(key).await?.map(|info| (info, origin)))
    }
    async fn first_bytes(&self, key: &str, n: u64) -> Result<Vec<u8>, StoreError> {
        Ok(self
            .objects()?
            .get(key)
            .map(|(_, b)| b.iter().take(n as usize).copied().collect())
            .unwrap_or_default())
    }
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.objects()?.get(key).map(|(_, b)| b.clone()))
    }
    async fn put(
        &self,
        key: &str,
        media_type: MediaType,
        bytes: Vec<u8>,
    ) -> Result<(), StoreError> {
        self.objects()?
            .insert(key.to_owned(), (media_type.mime().to_owned(), bytes));
        self.written()?.insert(key.to_owned());
        Ok(())
    }
    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.objects()?.remove(key);
        self.written()?.remove(key);
        Ok(())
    }
    async fn delete_prefix(&self, prefix: &str) -> Result<(), StoreError> {
        self.objects()?.retain(|k, _| !k.starts_with(prefix));
        Ok(())
    }
    async fn mark_verified(&self, key: &str) -> Result<(), StoreError> {
        if self.objects()?.contains_key(key) {
            self.verified
                .lock()
                .map_err(|_| StoreError::unavailable(std::io::Error::other("poisoned lock")))?
                .insert(key.to_owned());
        }
        Ok(())
    }
    async fn view_url(&self, key: &str) -> Result<String, StoreError> {
        Ok(format!("https://s3.test/media/{key}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notification_keys_are_url_decoded() {
        assert_eq!(decode_s3_key("avatars/a+b%2Fc.png"), "avatars/a b/c.png");
        assert_eq!(decode_s3_key("100%"), "100%");
    }

    #[test]
    fn sniffs_real_types_from_magic_bytes() {
        assert_eq!(
            MediaType::sniff(&[0xFF, 0xD8, 0xFF, 0xE0, 0, 0]),
            Some(MediaType::Jpeg)
        );
        assert_eq!(
            MediaType::sniff(b"\x89PNG\r\n\x1a\n\0\0"),
            Some(MediaType::Png)
        );
        assert_eq!(
            MediaType::sniff(b"RIFF\0\0\0\0WEBPVP8 "),
            Some(MediaType::Webp)
        );
        assert_eq!(
            MediaType::sniff(b"\0\0\0\x18ftypmp42"),
            Some(MediaType::Mp4)
        );
        assert_eq!(MediaType::sniff(b"hello, I am text"), None);
        assert_eq!(MediaType::sniff(b""), None);
    }

    #[test]
    fn policies_pin_key_type_and_size_and_are_signed() {
        let input = PolicyInput {
            bucket: "media",
            key: "avatars/u/1.png",
            content_type: "image/png",
            max_bytes: 5 * 1024 * 1024,
            region: "us-east-1",
            access_key: "AKIDEXAMPLE",
            secret_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            session_token: None,
            now: SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
        };
        let form = post_policy(&input).unwrap();
        let policy: serde_json::Value =
            serde_json::from_slice(&STANDARD.decode(&form.fields["policy"]).unwrap()).unwrap();
        let conditions = policy["conditions"].as_array().unwrap();
        assert!(conditions.contains(&serde_json::json!(["content-length-range", 1, 5_242_880])));
        assert!(conditions.contains(&serde_json::json!({"key": "avatars/u/1.png"})));
        assert!(conditions.contains(&serde_json::json!({"Content-Type": "image/png"})));
        // The upload is tagged unverified (the form must send that exact tagging).
        assert!(conditions.contains(&serde_json::json!({"tagging": UNVERIFIED_UPLOAD_TAGGING})));
        assert_eq!(form.fields["tagging"], UNVERIFIED_UPLOAD_TAGGING);
        assert_eq!(policy["expiration"], "2023-11-14T22:23:20.000Z");
        assert_eq!(
            form.fields["x-amz-credential"],
            "AKIDEXAMPLE/20231114/us-east-1/s3/aws4_request"
        );
        assert_eq!(form.fields["x-amz-signature"].len(), 64);
        // Same input, same signature; another secret, another signature.
        assert_eq!(
            post_policy(&input).unwrap().fields["x-amz-signature"],
            form.fields["x-amz-signature"]
        );
        let other = PolicyInput {
            secret_key: "other",
            ..input
        };
        assert_ne!(
            post_policy(&other).unwrap().fields["x-amz-signature"],
            form.fields["x-amz-signature"]
        );
    }

    #[test]
    fn view_urls_are_signed_as_s3_documents_it() {
        // The example of "Authenticating Requests: Using Query Parameters (AWS Signature
        // Version 4)" in the Amazon S3 API reference, signature included.
        let creds = aws_credential_types::Credentials::new(
            "AKIAIOSFODNN7EXAMPLE",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            None,
            None,
            "example",
        );
        let signer = s3::Signer {
            region: "us-east-1",
            credentials: &creds,
            now: SystemTime::UNIX_EPOCH + Duration::from_secs(1_369_353_600), // 2013-05-24
        };
        let url = signer
            .presign_get(
                "https://examplebucket.s3.amazonaws.com/test.txt",
                Duration::from_secs(86_400),
            )
            .unwrap();
        assert!(
            url.starts_with("https://examplebucket.s3.amazonaws.com/test.txt?"),
            "{url}"
        );
        for part in [
            "X-Amz-Algorithm=AWS4-HMAC-SHA256",
            "X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request",
            "X-Amz-Date=20130524T000000Z",
            "X-Amz-Expires=86400",
            "X-Amz-SignedHeaders=host",
            "X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404",
        ] {
            assert!(url.contains(part), "{part} in {url}");
        }
        // A session token (Lambda's role credentials) is signed in too.
        let session =
            aws_credential_types::Credentials::new("AK", "SK", Some("TOKEN".into()), None, "t");
        let url = s3::Signer {
            credentials: &session,
            ..signer
        }
        .presign_get(
            &s3::object_url("http://127.0.0.1:5000/media", "a b/c+d.jpg"),
            VIEW_URL_TTL,
        )
        .unwrap();
        assert!(
            url.starts_with("http://127.0.0.1:5000/media/a%20b/c%2Bd.jpg?"),
            "{url}"
        );
        assert!(url.contains("X-Amz-Security-Token=TOKEN"), "{url}");
    }

    #[test]
    fn buckets_are_virtual_hosted_on_aws_and_path_style_locally() {
        let region = shutter_store::dynamodb::config::Region::new("eu-west-1");
        let aws = shutter_store::SdkConfig::builder()
            .region(region.clone())
            .build();
        assert_eq!(
            S3MediaStore::new(&aws, "media-1").bucket_url,
            "https://media-1.s3.eu-west-1.amazonaws.com/"
        );
        let local = shutter_store::SdkConfig::builder()
            .region(region)
            .endpoint_url("http://127.0.0.1:5000/")
            .build();
        assert_eq!(
            S3MediaStore::new(&local, "media-1").bucket_url,
            "http://127.0.0.1:5000/media-1"
        );
    }
}
