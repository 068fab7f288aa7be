//! Media in S3: the types Shutter accepts (checked by their magic bytes, never by what a
//! client declares), browser-style POST uploads signed with SigV4 so clients send bytes
//! straight to S3 and S3 itself refuses a wrong type or size, and the S3 adapter the
//! services read, write and delete objects with. moto does not enforce POST policies, so
//! consumers check uploaded objects again (size and real type).

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use aws_credential_types::provider::ProvideCredentials;
use aws_lambda_events::event::s3::S3Event;
use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use shutter_core::ApiError;
use time::OffsetDateTime;
use time::macros::format_description;

pub const UPLOAD_URL_TTL: Duration = Duration::from_secs(10 * 60);
const VIEW_URL_TTL: Duration = Duration::from_secs(60 * 60);

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
pub async fn for_each_upload<F, Fut>(event: &SqsEvent, mut handle: F) -> SqsBatchResponse
where
    F: FnMut(String) -> Fut,
    Fut: std::future::Future<Output = Result<(), ApiError>>,
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
    ) -> Result<UploadForm, ApiError>;
    async fn head(&self, key: &str) -> Result<Option<ObjectInfo>, ApiError>;
    async fn first_bytes(&self, key: &str, n: u64) -> Result<Vec<u8>, ApiError>;
    /// The whole object, or `None` when it is gone.
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, ApiError>;
    async fn put(&self, key: &str, media_type: MediaType, bytes: Vec<u8>) -> Result<(), ApiError>;
    async fn delete(&self, key: &str) -> Result<(), ApiError>;
    async fn delete_prefix(&self, prefix: &str) -> Result<(), ApiError>;
    /// A URL a client can fetch the object from.
    async fn view_url(&self, key: &str) -> Result<String, ApiError>;
}

/// The S3 adapter. Upload forms and view URLs are signed here with SigV4, so a function
/// that only hands out URLs (most endpoints) is built with [`S3MediaStore::urls_from_env`]
/// and carries no S3 client: about a megabyte less per binary (the client's endpoint
/// rules and codecs). Reading, writing and deleting objects needs [`S3MediaStore::from_env`].
#[derive(Debug, Clone)]
pub struct S3MediaStore {
    objects: Option<aws_sdk_s3::Client>,
    pub config: shutter_store::SdkConfig,
    pub bucket: String,
}

impl S3MediaStore {
    /// URLs and objects: with the S3 client.
    pub fn from_env(config: &shutter_store::SdkConfig) -> Result<Self, shutter_store::ConfigError> {
        // moto (and other local S3s) need path-style addressing.
        let s3_config = aws_sdk_s3::config::Builder::from(config)
            .force_path_style(std::env::var("AWS_ENDPOINT_URL").is_ok())
            .build();
        Ok(Self {
            objects: Some(aws_sdk_s3::Client::from_conf(s3_config)),
            ..Self::urls_from_env(config)?
        })
    }

    /// Upload forms and view URLs only; the object methods answer 500.
    pub fn urls_from_env(
        config: &shutter_store::SdkConfig,
    ) -> Result<Self, shutter_store::ConfigError> {
        Ok(Self {
            objects: None,
            config: config.clone(),
            bucket: shutter_store::env("MEDIA_BUCKET")?,
        })
    }

    fn client(&self) -> Result<&aws_sdk_s3::Client, ApiError> {
        self.objects.as_ref().ok_or_else(|| {
            ApiError::internal(std::io::Error::other(
                "this function was built for media URLs only (S3MediaStore::urls_from_env)",
            ))
        })
    }

    fn region(&self) -> String {
        self.config
            .region()
            .map(|r| r.to_string())
            .unwrap_or_else(|| "us-east-1".to_owned())
    }

    async fn credentials(&self) -> Result<aws_credential_types::Credentials, ApiError> {
        let provider = self.config.credentials_provider().ok_or_else(|| {
            ApiError::internal(std::io::Error::other("no AWS credentials provider"))
        })?;
        provider.provide_credentials().await.map_err(internal)
    }

    fn bucket_url(&self, region: &str) -> String {
        match std::env::var("AWS_ENDPOINT_URL") {
            Ok(endpoint) => format!("{}/{}", endpoint.trim_end_matches('/'), self.bucket),
            Err(_) => format!("https://{}.s3.{region}.amazonaws.com", self.bucket),
        }
    }
}

/// A pre-signed GET of `key` under `bucket_url`, valid for `ttl` from `now`: SigV4 in the
/// query string, as S3 presigns (unsigned payload, the key's path encoded once).
pub fn presigned_get(
    bucket_url: &str,
    key: &str,
    region: &str,
    credentials: &aws_credential_types::Credentials,
    now: SystemTime,
    ttl: Duration,
) -> Result<String, ApiError> {
    use aws_sigv4::http_request::{
        PercentEncodingMode, SignableBody, SignableRequest, SignatureLocation, SigningSettings,
        UriPathNormalizationMode, sign,
    };
    let path: String = key
        .split('/')
        .map(|segment| percent_encoding::utf8_percent_encode(segment, S3_KEY_SEGMENT).to_string())
        .collect::<Vec<_>>()
        .join("/");
    let url = format!("{}/{path}", bucket_url.trim_end_matches('/'));
    let mut settings = SigningSettings::default();
    settings.signature_location = SignatureLocation::QueryParams;
    settings.expires_in = Some(ttl);
    settings.percent_encoding_mode = PercentEncodingMode::Single;
    settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
    let identity = credentials.clone().into();
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name("s3")
        .time(now)
        .settings(settings)
        .build()
        .map_err(internal)?
        .into();
    let signable = SignableRequest::new(
        "GET",
        &url,
        std::iter::empty(),
        SignableBody::UnsignedPayload,
    )
    .map_err(internal)?;
    let (instructions, _) = sign(signable, &params).map_err(internal)?.into_parts();
    let mut request = http::Request::get(&url).body(()).map_err(internal)?;
    instructions.apply_to_request_http1x(&mut request);
    Ok(request.uri().to_string())
}

/// What S3 leaves as it is in a key's path segment: RFC 3986's unreserved characters.
const S3_KEY_SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

fn internal(e: impl std::error::Error + Send + Sync + 'static) -> ApiError {
    ApiError::internal(e)
}

#[async_trait]
impl MediaStore for S3MediaStore {
    async fn presign_upload(
        &self,
        key: &str,
        media_type: MediaType,
        max_bytes: u64,
    ) -> Result<UploadForm, ApiError> {
        let region = self.region();
        let creds = self.credentials().await?;
        let now = SystemTime::now();
        let form = post_policy(&PolicyInput {
            bucket: &self.bucket,
            key,
            content_type: media_type.mime(),
            max_bytes,
            region: &region,
            access_key: creds.access_key_id(),
            secret_key: creds.secret_access_key(),
            session_token: creds.session_token(),
            now,
        })?;
        Ok(UploadForm {
            url: self.bucket_url(&region),
            ..form
        })
    }

    async fn head(&self, key: &str) -> Result<Option<ObjectInfo>, ApiError> {
        match self
            .client()?
            .head_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(out) => Ok(Some(ObjectInfo {
                size: out.content_length().unwrap_or(0).max(0) as u64,
                content_type: out.content_type().map(str::to_owned),
            })),
            Err(e) if e.as_service_error().is_some_and(|se| se.is_not_found()) => Ok(None),
            Err(e) => Err(internal(e)),
        }
    }

    async fn first_bytes(&self, key: &str, n: u64) -> Result<Vec<u8>, ApiError> {
        let out = self
            .client()?
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .range(format!("bytes=0-{}", n.saturating_sub(1)))
            .send()
            .await
            .map_err(internal)?;
        let bytes = out.body.collect().await.map_err(internal)?.into_bytes();
        Ok(bytes.iter().take(n as usize).copied().collect())
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, ApiError> {
        match self
            .client()?
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(out) => Ok(Some(
                out.body
                    .collect()
                    .await
                    .map_err(internal)?
                    .into_bytes()
                    .to_vec(),
            )),
            Err(e) if e.as_service_error().is_some_and(|se| se.is_no_such_key()) => Ok(None),
            Err(e) => Err(internal(e)),
        }
    }

    async fn put(&self, key: &str, media_type: MediaType, bytes: Vec<u8>) -> Result<(), ApiError> {
        self.client()?
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(media_type.mime())
            .body(bytes.into())
            .send()
            .await
            .map(|_| ())
            .map_err(internal)
    }

    async fn delete(&self, key: &str) -> Result<(), ApiError> {
        self.client()?
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map(|_| ())
            .map_err(internal)
    }

    async fn delete_prefix(&self, prefix: &str) -> Result<(), ApiError> {
        let mut pages = self
            .client()?
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(prefix)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            for object in page.map_err(internal)?.contents() {
                if let Some(key) = object.key() {
                    self.delete(key).await?;
                }
            }
        }
        Ok(())
    }

    async fn view_url(&self, key: &str) -> Result<String, ApiError> {
        let region = self.region();
        let creds = self.credentials().await?;
        presigned_get(
            &self.bucket_url(&region),
            key,
            &region,
            &creds,
            SystemTime::now(),
            VIEW_URL_TTL,
        )
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
/// type and at most `max_bytes`.
pub fn post_policy(input: &PolicyInput<'_>) -> Result<UploadForm, ApiError> {
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
}

impl MemoryMedia {
    fn objects(&self) -> Result<std::sync::MutexGuard<'_, Objects>, ApiError> {
        self.objects
            .lock()
            .map_err(|_| ApiError::internal(std::io::Error::other("poisoned lock")))
    }

    /// Stores an object as a client upload would (test set-up).
    pub fn upload(&self, key: &str, content_type: &str, bytes: Vec<u8>) {
        if let Ok(mut objects) = self.objects() {
            objects.insert(key.to_owned(), (content_type.to_owned(), bytes));
        }
    }
}

#[async_trait]
impl MediaStore for MemoryMedia {
    async fn presign_upload(
        &self,
        key: &str,
        media_type: MediaType,
        max_bytes: u64,
    ) -> Result<UploadForm, ApiError> {
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
    async fn head(&self, key: &str) -> Result<Option<ObjectInfo>, ApiError> {
        Ok(self.objects()?.get(key).map(|(ct, b)| ObjectInfo {
            size: b.len() as u64,
            content_type: Some(ct.clone()),
        }))
    }
    async fn first_bytes(&self, key: &str, n: u64) -> Result<Vec<u8>, ApiError> {
        Ok(self
            .objects()?
            .get(key)
            .map(|(_, b)| b.iter().take(n as usize).copied().collect())
            .unwrap_or_default())
    }
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, ApiError> {
        Ok(self.objects()?.get(key).map(|(_, b)| b.clone()))
    }
    async fn put(&self, key: &str, media_type: MediaType, bytes: Vec<u8>) -> Result<(), ApiError> {
        self.objects()?
            .insert(key.to_owned(), (media_type.mime().to_owned(), bytes));
        Ok(())
    }
    async fn delete(&self, key: &str) -> Result<(), ApiError> {
        self.objects()?.remove(key);
        Ok(())
    }
    async fn delete_prefix(&self, prefix: &str) -> Result<(), ApiError> {
        self.objects()?.retain(|k, _| !k.starts_with(prefix));
        Ok(())
    }
    async fn view_url(&self, key: &str) -> Result<String, ApiError> {
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
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_369_353_600); // 2013-05-24T00:00:00Z
        let url = presigned_get(
            "https://examplebucket.s3.amazonaws.com",
            "test.txt",
            "us-east-1",
            &creds,
            at,
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
        // A session token (Lambda's role credentials) is signed in too; odd keys are
        // encoded once, slashes kept.
        let session =
            aws_credential_types::Credentials::new("AK", "SK", Some("TOKEN".into()), None, "t");
        let url = presigned_get(
            "http://127.0.0.1:5000/media",
            "a b/c+d.jpg",
            "us-east-1",
            &session,
            at,
            VIEW_URL_TTL,
        )
        .unwrap();
        assert!(
            url.starts_with("http://127.0.0.1:5000/media/a%20b/c%2Bd.jpg?"),
            "{url}"
        );
        assert!(url.contains("X-Amz-Security-Token=TOKEN"), "{url}");
    }

    #[tokio::test]
    async fn a_urls_only_store_refuses_object_calls_with_an_internal_error() {
        let config = shutter_store::SdkConfig::builder().build();
        let store = S3MediaStore {
            objects: None,
            config,
            bucket: "b".into(),
        };
        let err = store.delete("k").await.unwrap_err();
        assert_eq!(err.status(), 500);
    }
}
