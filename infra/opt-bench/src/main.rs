//! Times what the warm path does on the CPU, per operation: serde_json (a DynamoDB Query
//! response of a feed page read and a page of 20 posts written), SigV4 signing of one
//! DynamoDB request, and rustls (a full TLS 1.3 handshake in memory, 4 KB of records
//! each way, and the trust anchors made into a root store). Run it built with the
//! release profile as it is (`opt-level = "z"`) and again with the crates at 3:
//!
//! ```text
//! cargo run --release -p opt-bench
//! cargo run --release -p opt-bench --config 'profile.release.package.serde_json.opt-level=3' \
//!   --config 'profile.release.package.aws-sigv4.opt-level=3' \
//!   --config 'profile.release.package.rustls.opt-level=3' --config 'profile.release.package.ring.opt-level=3'
//! ```

use std::hint::black_box;
use std::io::{Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

#[derive(Serialize, Deserialize)]
struct Media {
    key: String,
    content_type: String,
    width: u32,
    height: u32,
}

#[derive(Serialize, Deserialize)]
struct Post {
    id: String,
    author_id: String,
    author_username: String,
    caption: String,
    hashtags: Vec<String>,
    media: Vec<Media>,
    like_count: u64,
    comment_count: u64,
    liked_by_me: bool,
    created_at: String,
}

#[derive(Serialize, Deserialize)]
struct Page {
    items: Vec<Post>,
    next_cursor: Option<String>,
}

fn page() -> Page {
    Page {
        items: (0..20)
            .map(|i| Post {
                id: format!("01JEXAMPLE{i:016}"),
                author_id: "01JAUTHOR0000000000000000".into(),
                author_username: "alice_cloudwatcher".into(),
                caption: "clouds over the bay this morning #clouds #sky #photo".into(),
                hashtags: vec!["clouds".into(), "sky".into(), "photo".into()],
                media: vec![Media {
                    key: format!("media/01JAUTHOR/01JEXAMPLE{i:016}/0.jpg"),
                    content_type: "image/jpeg".into(),
                    width: 1080,
                    height: 1350,
                }],
                like_count: 1234 + i,
                comment_count: 56,
                liked_by_me: i % 3 == 0,
                created_at: "2026-12-07T00:00:00.000Z".into(),
            })
            .collect(),
        next_cursor: Some("eyJrIjoiMDFKRVhBTVBMRSJ9.c2lnbmF0dXJl".into()),
    }
}

/// A DynamoDB Query response of 20 items, as the wire has it.
fn dynamo_response() -> String {
    let item = |i: u32| {
        json!({
            "pk": {"S": "FEED#01JVIEWER000000000000000"},
            "sk": {"S": format!("POST#01JEXAMPLE{i:016}")},
            "author_id": {"S": "01JAUTHOR0000000000000000"},
            "caption": {"S": "clouds over the bay this morning #clouds #sky #photo"},
            "media": {"L": [{"M": {"key": {"S": "media/x/0.jpg"}, "width": {"N": "1080"}, "height": {"N": "1350"}}}]},
            "like_count": {"N": "1234"},
            "created_at": {"S": "2026-12-07T00:00:00.000Z"},
        })
    };
    json!({"Count": 20, "ScannedCount": 20, "Items": (0..20).map(item).collect::<Vec<_>>(),
        "LastEvaluatedKey": {"pk": {"S": "FEED#x"}, "sk": {"S": "POST#y"}}})
    .to_string()
}

/// Median time of one call of `f`, over rounds of `per_round` calls.
fn time(name: &str, per_round: u32, mut f: impl FnMut()) -> Duration {
    for _ in 0..per_round {
        f();
    }
    let mut rounds: Vec<Duration> = (0..31)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..per_round {
                f();
            }
            t.elapsed() / per_round
        })
        .collect();
    rounds.sort();
    let median = rounds[rounds.len() / 2];
    println!("| {name} | {:.2} µs |", median.as_secs_f64() * 1e6);
    median
}

fn sign_dynamo_request(identity: &aws_smithy_runtime_api::client::identity::Identity, body: &[u8]) {
    use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(identity)
        .region("eu-west-1")
        .name("dynamodb")
        .time(std::time::SystemTime::now())
        .settings(SigningSettings::default())
        .build()
        .map(Into::into);
    let Ok(params) = params else { return };
    let headers = [
        ("content-type", "application/x-amz-json-1.0"),
        ("x-amz-target", "DynamoDB_20120810.Query"),
        ("host", "dynamodb.eu-west-1.amazonaws.com"),
        (
            "amz-sdk-invocation-id",
            "a2b6d8d6-4c1e-4f4e-9e51-0c9b6d8d6d8d",
        ),
    ];
    if let Ok(req) = SignableRequest::new(
        "POST",
        "https://dynamodb.eu-west-1.amazonaws.com/",
        headers.into_iter(),
        SignableBody::Bytes(body),
    ) {
        let _ = black_box(sign(req, &params));
    }
}

fn pem_items(pem: &str, tag: &str) -> Vec<Vec<u8>> {
    use base64_free::decode;
    let begin = format!("-----BEGIN {tag}-----");
    let end = format!("-----END {tag}-----");
    pem.split(&begin)
        .skip(1)
        .filter_map(|rest| rest.split(&end).next())
        .map(|b64| decode(&b64.split_whitespace().collect::<String>()))
        .collect()
}

/// A few lines of base64 decoding, to keep this crate's tree to what it measures.
mod base64_free {
    pub fn decode(s: &str) -> Vec<u8> {
        let val = |c: u8| match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            _ => 63,
        };
        let bytes: Vec<u8> = s.bytes().filter(|&c| c != b'=').collect();
        let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
        for chunk in bytes.chunks(4) {
            let mut acc = 0u32;
            for (i, &c) in chunk.iter().enumerate() {
                acc |= u32::from(val(c)) << (18 - 6 * i);
            }
            let n = chunk.len().saturating_sub(1);
            for i in 0..n {
                out.push((acc >> (16 - 8 * i)) as u8);
            }
        }
        out
    }
}

/// A throwaway certificate for `bench.local` and its key (PEM), made by openssl at each run:
/// no private key is kept in the repository, even a test one.
fn throwaway_certificate() -> Option<(String, String)> {
    let dir = std::env::temp_dir().join(format!("opt-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).ok()?;
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let made = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
        ])
        .args(["-nodes", "-days", "1", "-subj", "/CN=bench.local"])
        .args(["-addext", "subjectAltName=DNS:bench.local"])
        // An end-entity certificate, as webpki wants (openssl's default is a CA).
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .args(["-addext", "keyUsage=digitalSignature"])
        .args(["-addext", "extendedKeyUsage=serverAuth", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    let pair = made
        .then(|| {
            Some((
                std::fs::read_to_string(&cert).ok()?,
                std::fs::read_to_string(&key).ok()?,
            ))
        })
        .flatten();
    let _ = std::fs::remove_dir_all(&dir);
    pair
}

fn tls_pair() -> Option<(Arc<rustls::ClientConfig>, Arc<rustls::ServerConfig>)> {
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let (cert_pem, key_pem) = throwaway_certificate()?;
    let cert = CertificateDer::from(pem_items(&cert_pem, "CERTIFICATE").pop()?);
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
        pem_items(&key_pem, "PRIVATE KEY").pop()?,
    ));
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.clone()).ok()?;
    let client = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .ok()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let server = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .ok()?
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .ok()?;
    Some((Arc::new(client), Arc::new(server)))
}

/// One handshake and 4 KB each way, in memory.
fn tls_exchange(client: &Arc<rustls::ClientConfig>, server: &Arc<rustls::ServerConfig>) -> bool {
    let Ok(name) = rustls::pki_types::ServerName::try_from("bench.local") else {
        return false;
    };
    let (Ok(mut c), Ok(mut s)) = (
        rustls::ClientConnection::new(client.clone(), name),
        rustls::ServerConnection::new(server.clone()),
    ) else {
        return false;
    };
    let payload = [7u8; 4096];
    let _ = c.writer().write_all(&payload);
    let mut got = vec![0u8; 8192];
    let mut wire = Vec::with_capacity(16384);
    for _ in 0..10 {
        wire.clear();
        while c.wants_write() {
            let _ = c.write_tls(&mut wire);
        }
        let mut slice = &wire[..];
        while !slice.is_empty() {
            if s.read_tls(&mut slice).is_err() {
                return false;
            }
        }
        let _ = s.process_new_packets();
        if let Ok(n) = s.reader().read(&mut got)
            && n > 0
        {
            let _ = s.writer().write_all(&payload);
        }
        wire.clear();
        while s.wants_write() {
            let _ = s.write_tls(&mut wire);
        }
        let mut slice = &wire[..];
        while !slice.is_empty() {
            if c.read_tls(&mut slice).is_err() {
                return false;
            }
        }
        let _ = c.process_new_packets();
        if let Ok(n) = c.reader().read(&mut got)
            && n >= 4096
        {
            return true;
        }
    }
    false
}

fn main() {
    println!("| operation | median |");
    println!("|---|---:|");
    let page = page();
    let page_json = serde_json::to_string(&page).unwrap_or_default();
    let response = dynamo_response();
    time(
        "serde_json: a DynamoDB Query response (20 items) to a Value",
        200,
        || {
            black_box(serde_json::from_str::<Value>(black_box(&response)).ok());
        },
    );
    time("serde_json: a feed page (20 posts) to JSON", 500, || {
        black_box(serde_json::to_string(black_box(&page)).ok());
    });
    time("serde_json: a feed page (20 posts) from JSON", 500, || {
        black_box(serde_json::from_str::<Page>(black_box(&page_json)).ok());
    });
    let identity = aws_credential_types::Credentials::new(
        "AKIDEXAMPLE",
        "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        Some("session-token".into()),
        None,
        "bench",
    )
    .into();
    let body = br#"{"TableName":"feed","KeyConditionExpression":"pk = :pk","ExpressionAttributeValues":{":pk":{"S":"FEED#01JVIEWER"}},"Limit":20}"#;
    time("aws-sigv4: sign one DynamoDB request", 500, || {
        sign_dynamo_request(&identity, body)
    });
    time("rustls: webpki-roots into a root store", 200, || {
        black_box(rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        });
    });
    if let Some((client, server)) = tls_pair() {
        assert!(
            tls_exchange(&client, &server),
            "the in-memory TLS exchange completes"
        );
        time(
            "rustls (ring): TLS 1.3 handshake + 4 KB each way",
            20,
            || {
                black_box(tls_exchange(&client, &server));
            },
        );
    }
}
