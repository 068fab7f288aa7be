//! The media adapter (`shutter_media::S3MediaStore`, signed requests without the S3 SDK)
//! against the local S3 (moto), read back and written with an independent client (the
//! S3 SDK): what one writes the other reads, byte for byte, with its type; missing objects
//! are `None`, a missing bucket is an error; listings page; prefix deletes stop at their
//! prefix; a kept upload loses its tags. And against a local server that fails on purpose: passing failures are retried,
//! lasting ones end in an error after three attempts.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use aws_sdk_s3::primitives::ByteStream;
use devstack::services::start_moto;
use shutter_media::{MediaStore, MediaType, S3MediaStore};
use shutter_store::StoreError;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const BUCKET: &str = "media-adapter";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_writes_lists_and_deletes_objects_as_s3_does() {
    let logs = tempfile::tempdir().expect("log dir");
    let moto = start_moto(logs.path()).await.expect("moto starts");
    let config = devstack::sdk_config(&moto.url).await;
    let sdk = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&config)
            .force_path_style(true)
            .build(),
    );
    sdk.create_bucket()
        .bucket(BUCKET)
        .send()
        .await
        .expect("bucket");
    let store = S3MediaStore::new(&config, BUCKET);

    // Written here, read by the SDK: bytes and type. The key needs encoding.
    let png = b"\x89PNG\r\n\x1a\n-some-image-bytes".to_vec();
    let key = "avatars/u1/a b+c~d.png";
    store
        .put(key, MediaType::Png, png.clone())
        .await
        .expect("put");
    let read = sdk
        .get_object()
        .bucket(BUCKET)
        .key(key)
        .send()
        .await
        .expect("sdk get");
    assert_eq!(read.content_type(), Some("image/png"));
    assert_eq!(
        read.body.collect().await.unwrap().into_bytes().as_ref(),
        png
    );

    // Written by the SDK, read here.
    let jpeg = b"\xFF\xD8\xFF\xE0 a jpeg of sorts".to_vec();
    sdk.put_object()
        .bucket(BUCKET)
        .key("posts/p1/0.jpg")
        .content_type("image/jpeg")
        .body(ByteStream::from(jpeg.clone()))
        .send()
        .await
        .expect("sdk put");
    assert_eq!(
        store.head("posts/p1/0.jpg").await.expect("head"),
        Some(shutter_media::ObjectInfo {
            size: jpeg.len() as u64,
            content_type: Some("image/jpeg".into()),
        })
    );
    assert_eq!(
        store.get("posts/p1/0.jpg").await.expect("get").as_deref(),
        Some(jpeg.as_slice())
    );
    assert_eq!(
        store.first_bytes("posts/p1/0.jpg", 4).await.expect("range"),
        &jpeg[..4]
    );
    assert_eq!(
        store.first_bytes(key, 1000).await.expect("short object"),
        png,
        "a range past the end gives the whole object"
    );

    // A view URL fetches the object.
    let url = store.view_url(key).await.expect("view url");
    let fetched = reqwest::get(&url).await.expect("fetch");
    assert_eq!(fetched.status(), 200, "{url}");
    assert_eq!(fetched.bytes().await.unwrap().as_ref(), png);

    // Missing objects are None, not errors.
    assert_eq!(store.head("posts/none.jpg").await.expect("head"), None);
    assert_eq!(store.get("posts/none.jpg").await.expect("get"), None);

    // Listings page in key order; a prefix delete leaves the rest.
    let keys: Vec<String> = (0..5).map(|i| format!("avatars/u2/{i}.png")).collect();
    for k in &keys {
        store
            .put(k, MediaType::Png, png.clone())
            .await
            .expect("put");
    }
    let mut listed = Vec::new();
    let mut after = None;
    let mut pages = 0;
    loop {
        let page = store
            .list_page("avatars/u2/", after.as_deref(), 2)
            .await
            .expect("list");
        assert!(page.keys.len() <= 2);
        pages += 1;
        listed.extend(page.keys);
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    assert_eq!(listed, keys);
    assert_eq!(pages, 3);
    store
        .delete_prefix("avatars/u2/")
        .await
        .expect("delete prefix");
    assert!(
        store
            .list_page("avatars/u2/", None, 1000)
            .await
            .expect("list")
            .keys
            .is_empty()
    );
    assert!(store.head(key).await.expect("head").is_some(), "u1 stays");

    // An upload tagged unverified (as the upload forms tag it) loses its tags when it is
    // kept. (A gone object: S3 answers 404, below; moto answers 500.)
    sdk.put_object()
        .bucket(BUCKET)
        .key("avatars/u3/01.png")
        .tagging("shutter-upload=unverified")
        .body(ByteStream::from(png.clone()))
        .send()
        .await
        .expect("sdk put tagged");
    let tags = |k: &'static str| {
        let sdk = sdk.clone();
        async move {
            sdk.get_object_tagging()
                .bucket(BUCKET)
                .key(k)
                .send()
                .await
                .expect("tags")
                .tag_set()
                .len()
        }
    };
    assert_eq!(tags("avatars/u3/01.png").await, 1);
    store
        .mark_verified("avatars/u3/01.png")
        .await
        .expect("mark verified");
    assert_eq!(tags("avatars/u3/01.png").await, 0);

    // Deleting is idempotent.
    store.delete(key).await.expect("delete");
    store.delete(key).await.expect("delete again");
    assert_eq!(store.head(key).await.expect("head"), None);

    // A bucket that is not there is an error, never an empty answer.
    let nowhere = S3MediaStore::new(&config, "no-such-bucket");
    // (404 NoSuchBucket: a refusal that waiting does not cure.)
    assert!(matches!(
        nowhere.get("k").await.unwrap_err(),
        StoreError::Corrupt(_)
    ));
    assert!(matches!(
        nowhere
            .put("k", MediaType::Png, png.clone())
            .await
            .unwrap_err(),
        StoreError::Corrupt(_)
    ));
    assert!(nowhere.list_page("", None, 10).await.is_err());

    moto.stop().await;
}

/// A local HTTP server that answers each request with the next status of `statuses` (the
/// last one forever after), counting requests.
async fn scripted_server(statuses: Vec<u16>) -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let count = Arc::new(AtomicUsize::new(0));
    let served = count.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let n = served.fetch_add(1, Ordering::SeqCst);
            let status = statuses[n.min(statuses.len() - 1)];
            let mut head = [0u8; 4096];
            let _ = socket.read(&mut head).await;
            let body = if status == 200 { "fine" } else { "" };
            let answer = format!(
                "HTTP/1.1 {status} X\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = socket.write_all(answer.as_bytes()).await;
        }
    });
    (url, count)
}

#[tokio::test]
async fn passing_failures_are_retried_and_lasting_ones_end_in_an_error() {
    let (url, count) = scripted_server(vec![503, 500, 200]).await;
    let config = devstack::sdk_config(&url).await;
    let store = S3MediaStore::new(&config, "b");
    assert_eq!(
        store.get("k").await.expect("third attempt").as_deref(),
        Some(b"fine".as_slice())
    );
    assert_eq!(count.load(Ordering::SeqCst), 3);

    let (url, count) = scripted_server(vec![503]).await;
    let store = S3MediaStore::new(&devstack::sdk_config(&url).await, "b");
    assert!(matches!(
        store.get("k").await.unwrap_err(),
        StoreError::Unavailable(_)
    ));
    assert_eq!(count.load(Ordering::SeqCst), 3, "three attempts, no more");

    // A client error is final at once.
    let (url, count) = scripted_server(vec![403]).await;
    let store = S3MediaStore::new(&devstack::sdk_config(&url).await, "b");
    assert!(store.put("k", MediaType::Jpeg, vec![1]).await.is_err());
    assert_eq!(count.load(Ordering::SeqCst), 1);

    // Untagging an object that is gone (S3: 404 NoSuchKey) leaves nothing to do.
    let (url, _) = scripted_server(vec![404]).await;
    let store = S3MediaStore::new(&devstack::sdk_config(&url).await, "b");
    store
        .mark_verified("k")
        .await
        .expect("a gone object is no error");
}
