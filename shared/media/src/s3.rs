//! S3 objects over SigV4-signed HTTP requests: the five calls Shutter makes (HEAD, GET with
//! or without a range, PUT, DELETE, ListObjectsV2) sent through the SDKs' own hyper +
//! rustls connector, without the S3 SDK client. The client's code, endpoint rules and
//! codecs are about a megabyte per binary; without them the image functions fit Lambda's
//! 5 MB budget. Signing is aws-sigv4's, checked against the S3 API reference's examples.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SignatureLocation,
    SigningSettings, UriPathNormalizationMode, sign,
};
use aws_smithy_runtime_api::client::http::{HttpConnector, HttpConnectorSettings};
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::byte_stream::ByteStream;
use bytes::Bytes;
use shutter_store::StoreError;

/// Attempts of one call when S3 is briefly unavailable (5xx, a dropped connection): the
/// SDK's standard retry count.
const ATTEMPTS: u32 = 3;
const CONNECT_TIMEOUT: Duration = Duration::from_millis(3100);
const READ_TIMEOUT: Duration = Duration::from_secs(30);

/// What S3 and SigV4 leave as it is in a path segment or a query value: RFC 3986's
/// unreserved characters.
pub const UNRESERVED: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// `key` as a URL path under `bucket_url`, each segment encoded once, slashes kept.
pub fn object_url(bucket_url: &str, key: &str) -> String {
    let path: String = key
        .split('/')
        .map(|segment| percent_encoding::utf8_percent_encode(segment, UNRESERVED).to_string())
        .collect::<Vec<_>>()
        .join("/");
    format!("{}/{path}", bucket_url.trim_end_matches('/'))
}

fn internal(e: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    StoreError::unavailable(e)
}

fn failure(message: String) -> StoreError {
    StoreError::unavailable(std::io::Error::other(message))
}

/// Who signs, where, and when.
#[derive(Debug, Clone, Copy)]
pub struct Signer<'a> {
    pub region: &'a str,
    pub credentials: &'a Credentials,
    pub now: SystemTime,
}

impl Signer<'_> {
    fn settings(location: SignatureLocation) -> SigningSettings {
        let mut settings = SigningSettings::default();
        settings.signature_location = location;
        // S3 signs the path as sent (encoded once, not normalised) and wants the payload
        // hash in x-amz-content-sha256.
        settings.percent_encoding_mode = PercentEncodingMode::Single;
        settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
        settings
    }

    fn apply(
        &self,
        settings: SigningSettings,
        request: &mut http::Request<Bytes>,
        body: SignableBody<'_>,
    ) -> Result<(), StoreError> {
        let identity = self.credentials.clone().into();
        let params = aws_sigv4::sign::v4::SigningParams::builder()
            .identity(&identity)
            .region(self.region)
            .name("s3")
            .time(self.now)
            .settings(settings)
            .build()
            .map_err(internal)?
            .into();
        let uri = request.uri().to_string();
        let headers = request
            .headers()
            .iter()
            .map(|(name, value)| Ok((name.as_str(), value.to_str().map_err(internal)?)))
            .collect::<Result<Vec<_>, StoreError>>()?;
        let signable =
            SignableRequest::new(request.method().as_str(), &uri, headers.into_iter(), body)
                .map_err(internal)?;
        let (instructions, _) = sign(signable, &params).map_err(internal)?.into_parts();
        instructions.apply_to_request_http1x(request);
        Ok(())
    }

    /// Signs `request` in its Authorization header, the payload hashed into
    /// x-amz-content-sha256 (S3 checks the body against it).
    pub fn sign_headers(&self, request: &mut http::Request<Bytes>) -> Result<(), StoreError> {
        let mut settings = Self::settings(SignatureLocation::Headers);
        settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
        let body = request.body().clone(); // a reference count, not a copy
        self.apply(settings, request, SignableBody::Bytes(&body))
    }

    /// A pre-signed GET of `url`, valid for `ttl`: SigV4 in the query string, as S3
    /// presigns (unsigned payload).
    pub fn presign_get(&self, url: &str, ttl: Duration) -> Result<String, StoreError> {
        let mut settings = Self::settings(SignatureLocation::QueryParams);
        settings.expires_in = Some(ttl);
        let mut request = http::Request::get(url)
            .body(Bytes::new())
            .map_err(internal)?;
        self.apply(settings, &mut request, SignableBody::UnsignedPayload)?;
        Ok(request.uri().to_string())
    }
}

/// An answer from S3.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Vec<u8>,
}

impl Reply {
    /// The `<Code>` of an S3 error body (`NoSuchKey`, `SlowDown`...), if it has one.
    pub fn error_code(&self) -> Option<String> {
        let text = std::str::from_utf8(&self.body).ok()?;
        let mut doc = aws_smithy_xml::decode::Document::new(text);
        let mut root = doc.root_element().ok()?;
        while let Some(mut tag) = root.next_tag() {
            if tag.start_el().matches("Code") {
                return aws_smithy_xml::decode::try_data(&mut tag)
                    .ok()
                    .map(|c| c.into_owned());
            }
        }
        None
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn content_length(&self) -> Option<u64> {
        self.header("content-length").and_then(|v| v.parse().ok())
    }

    pub fn content_type(&self) -> Option<&str> {
        self.header("content-type")
    }

    /// An error naming the call and what S3 said.
    pub fn into_error(self, what: &str) -> StoreError {
        let code = self.error_code().unwrap_or_default();
        let message = format!("S3 {what}: HTTP {} {code}", self.status);
        // A refusal (bad request, no permission, no bucket) does not pass with time.
        if (400..500).contains(&self.status) && self.status != 429 {
            StoreError::corrupt_because(message)
        } else {
            failure(message)
        }
    }
}

/// One page of ListObjectsV2.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ListPage {
    pub keys: Vec<String>,
    /// Where the next page starts, when there is one.
    pub next: Option<String>,
}

impl ListPage {
    pub fn parse(body: &[u8]) -> Result<Self, StoreError> {
        use aws_smithy_xml::decode::{Document, try_data};
        let text = std::str::from_utf8(body).map_err(internal)?;
        let mut doc = Document::new(text);
        let mut root = doc.root_element().map_err(internal)?;
        if !root.start_el().matches("ListBucketResult") {
            return Err(failure("S3 list: not a ListBucketResult".into()));
        }
        let mut page = Self::default();
        let mut truncated = false;
        while let Some(mut tag) = root.next_tag() {
            if tag.start_el().matches("Contents") {
                while let Some(mut field) = tag.next_tag() {
                    if field.start_el().matches("Key") {
                        page.keys
                            .push(try_data(&mut field).map_err(internal)?.into_owned());
                    }
                }
            } else if tag.start_el().matches("IsTruncated") {
                truncated = try_data(&mut tag).map_err(internal)? == "true";
            } else if tag.start_el().matches("NextContinuationToken") {
                page.next = Some(try_data(&mut tag).map_err(internal)?.into_owned());
            }
        }
        if !truncated {
            page.next = None;
        }
        Ok(page)
    }
}

/// Sends signed requests to one bucket. Its connector (and the TLS roots) is made on the
/// first call, so a function that only hands out URLs never pays for it.
#[derive(Clone)]
pub struct S3Objects {
    connector: Arc<OnceLock<aws_smithy_http_client::Connector>>,
}

impl std::fmt::Debug for S3Objects {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Objects").finish_non_exhaustive()
    }
}

impl Default for S3Objects {
    fn default() -> Self {
        Self {
            connector: Arc::new(OnceLock::new()),
        }
    }
}

impl S3Objects {
    fn connector(&self) -> &aws_smithy_http_client::Connector {
        self.connector.get_or_init(|| {
            use aws_smithy_http_client::tls;
            aws_smithy_http_client::Connector::builder()
                .connector_settings(
                    HttpConnectorSettings::builder()
                        .connect_timeout(CONNECT_TIMEOUT)
                        .read_timeout(READ_TIMEOUT)
                        .build(),
                )
                .sleep_impl(aws_smithy_async::rt::sleep::TokioSleep::new())
                .tls_provider(tls::Provider::Rustls(
                    tls::rustls_provider::CryptoMode::Ring,
                ))
                .build()
        })
    }

    /// Sends the request `build` makes, signed afresh on each attempt; retries what S3
    /// says is passing (5xx) and connections that failed or timed out.
    pub async fn send(
        &self,
        what: &str,
        build: impl Fn() -> Result<http::Request<Bytes>, StoreError>,
        sign: impl Fn(&mut http::Request<Bytes>) -> Result<(), StoreError>,
    ) -> Result<Reply, StoreError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut request = build()?;
            sign(&mut request)?;
            let request =
                aws_smithy_runtime_api::http::Request::try_from(request.map(SdkBody::from))
                    .map_err(internal)?;
            let retryable = match self.connector().call(request).await {
                Ok(response) => {
                    let status = response.status().as_u16();
                    let response = response.try_into_http1x().map_err(internal)?;
                    let (parts, body) = response.into_parts();
                    let reply = Reply {
                        status,
                        headers: parts.headers,
                        body: ByteStream::new(body)
                            .collect()
                            .await
                            .map_err(internal)?
                            .to_vec(),
                    };
                    if status < 500 || attempt >= ATTEMPTS {
                        return Ok(reply);
                    }
                    format!("HTTP {status}")
                }
                Err(e) if (e.is_io() || e.is_timeout()) && attempt < ATTEMPTS => e.to_string(),
                Err(e) => return Err(failure(format!("S3 {what}: {e}"))),
            };
            tracing::warn!(call = what, attempt, reason = %retryable, "S3 call retried");
            tokio::time::sleep(Duration::from_millis(50 << attempt)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example_signer(credentials: &Credentials) -> Signer<'_> {
        Signer {
            region: "us-east-1",
            credentials,
            // 2013-05-24T00:00:00Z, the examples' time.
            now: SystemTime::UNIX_EPOCH + Duration::from_secs(1_369_353_600),
        }
    }

    fn example_credentials() -> Credentials {
        Credentials::new(
            "AKIAIOSFODNN7EXAMPLE",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            None,
            None,
            "example",
        )
    }

    fn authorization(request: &http::Request<Bytes>) -> &str {
        request.headers()["authorization"].to_str().unwrap()
    }

    // The examples of "Signature Calculations for the Authorization Header: Transferring
    // Payload in a Single Chunk" in the Amazon S3 API reference, signatures included.
    #[test]
    fn a_ranged_get_is_signed_as_s3_documents_it() {
        let creds = example_credentials();
        let mut request = http::Request::get("https://examplebucket.s3.amazonaws.com/test.txt")
            .header("range", "bytes=0-9")
            .body(Bytes::new())
            .unwrap();
        example_signer(&creds).sign_headers(&mut request).unwrap();
        assert_eq!(
            authorization(&request),
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, \
             SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, \
             Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
        );
        assert_eq!(
            request.headers()["x-amz-content-sha256"],
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn a_put_signs_its_body_as_s3_documents_it() {
        let creds = example_credentials();
        let mut request = http::Request::put(object_url(
            "https://examplebucket.s3.amazonaws.com",
            "test$file.text",
        ))
        .header("date", "Fri, 24 May 2013 00:00:00 GMT")
        .header("x-amz-storage-class", "REDUCED_REDUNDANCY")
        .body(Bytes::from_static(b"Welcome to Amazon S3."))
        .unwrap();
        example_signer(&creds).sign_headers(&mut request).unwrap();
        assert!(
            authorization(&request).ends_with(
                "Signature=98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd"
            ),
            "{}",
            authorization(&request)
        );
    }

    #[test]
    fn a_listing_is_signed_as_s3_documents_it() {
        let creds = example_credentials();
        let mut request =
            http::Request::get("https://examplebucket.s3.amazonaws.com/?max-keys=2&prefix=J")
                .body(Bytes::new())
                .unwrap();
        example_signer(&creds).sign_headers(&mut request).unwrap();
        assert!(
            authorization(&request).ends_with(
                "Signature=34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7"
            ),
            "{}",
            authorization(&request)
        );
    }

    #[test]
    fn session_tokens_are_sent_and_signed() {
        let creds = Credentials::new("AK", "SK", Some("TOKEN".into()), None, "t");
        let mut request = http::Request::delete("http://127.0.0.1:5000/media/k")
            .body(Bytes::new())
            .unwrap();
        example_signer(&creds).sign_headers(&mut request).unwrap();
        assert_eq!(request.headers()["x-amz-security-token"], "TOKEN");
        assert!(authorization(&request).contains("x-amz-security-token"));
    }

    #[test]
    fn keys_are_encoded_once_with_slashes_kept() {
        assert_eq!(
            object_url("http://127.0.0.1:5000/media/", "a b/c+d~e.jpg"),
            "http://127.0.0.1:5000/media/a%20b/c%2Bd~e.jpg"
        );
    }

    #[test]
    fn list_pages_give_their_keys_and_where_the_next_starts() {
        let page = ListPage::parse(
            br#"<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Name>media</Name><Prefix>avatars/u/</Prefix><KeyCount>2</KeyCount><MaxKeys>2</MaxKeys>
  <IsTruncated>true</IsTruncated>
  <Contents><Key>avatars/u/1.png</Key><Size>10</Size></Contents>
  <Contents><Key>avatars/u/a&amp;b.png</Key><Size>11</Size></Contents>
  <NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=</NextContinuationToken>
</ListBucketResult>"#,
        )
        .unwrap();
        assert_eq!(page.keys, ["avatars/u/1.png", "avatars/u/a&b.png"]);
        assert_eq!(
            page.next.as_deref(),
            Some("1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=")
        );
        let last = ListPage::parse(
            b"<ListBucketResult><IsTruncated>false</IsTruncated></ListBucketResult>",
        )
        .unwrap();
        assert_eq!(last, ListPage::default());
        assert!(ListPage::parse(b"<Error><Code>NoSuchBucket</Code></Error>").is_err());
        assert!(ListPage::parse(b"not xml").is_err());
    }

    #[test]
    fn error_bodies_give_their_code() {
        let reply = Reply {
            status: 404,
            headers: http::HeaderMap::new(),
            body: b"<?xml version=\"1.0\"?><Error><Code>NoSuchKey</Code><Message>gone</Message></Error>".to_vec(),
        };
        assert_eq!(reply.error_code().as_deref(), Some("NoSuchKey"));
        let empty = Reply {
            status: 404,
            headers: http::HeaderMap::new(),
            body: Vec::new(),
        };
        assert_eq!(empty.error_code(), None);
    }
}
