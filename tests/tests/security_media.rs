//! Media, tried as an attacker would (issue 13): nothing a client uploads is stored as it
//! came. An avatar with GPS in its EXIF is stored re-encoded without it; a small PNG that
//! claims 20,000 × 20,000 pixels (a decompression bomb) is refused, as an avatar and as
//! post media, and nothing of it is stored; an MP4 that says where it was shot is served
//! without its location boxes and its GPS track.

use std::io::Cursor;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use shutter_e2e::{TestApp, User, eventually};
use shutter_media::MediaType;
use shutter_posts::media::fixtures::{LOCATION, black_png, jpeg_with_gps, mp4_with_location};

const WAIT: Duration = Duration::from_secs(60);

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// A client for the devstack's S3, to read what is really stored.
async fn s3(app: &TestApp) -> aws_sdk_s3::Client {
    aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&app.aws().await)
            .force_path_style(true)
            .build(),
    )
}

/// The keys stored under `prefix`.
async fn keys_under(app: &TestApp, prefix: &str) -> Vec<String> {
    let listed = s3(app)
        .await
        .list_objects_v2()
        .bucket(app.stack.bucket_name("MediaBucket"))
        .prefix(prefix)
        .send()
        .await
        .expect("S3 lists the bucket");
    listed
        .contents()
        .iter()
        .filter_map(|o| o.key().map(str::to_owned))
        .collect()
}

/// The object at `key`, if there is one.
async fn stored(app: &TestApp, key: &str) -> Option<Vec<u8>> {
    let got = s3(app)
        .await
        .get_object()
        .bucket(app.stack.bucket_name("MediaBucket"))
        .key(key)
        .send()
        .await
        .ok()?;
    Some(got.body.collect().await.ok()?.into_bytes().to_vec())
}

async fn profile(app: &TestApp, user: &User) -> Option<Value> {
    let answer = app
        .call(
            Method::GET,
            &format!("/v1/profiles/{}", user.username),
            Some(&user.access_token),
            None,
        )
        .await;
    (answer.status == StatusCode::OK).then_some(answer.body)
}

/// A user whose profile exists.
async fn user_with_profile(app: &TestApp, name: &str) -> User {
    let user = app.user(&TestApp::unique(name)).await;
    eventually("the profile", WAIT, || profile(app, &user)).await;
    user
}

/// Uploads `bytes` as `user`'s avatar of type `content_type`; its key.
async fn upload_avatar(app: &TestApp, user: &User, content_type: &str, bytes: &[u8]) -> String {
    let form = app
        .call(
            Method::POST,
            "/v1/profiles/me/avatar",
            Some(&user.access_token),
            Some(json!({"content_type": content_type, "size": bytes.len()})),
        )
        .await;
    assert_eq!(form.status, StatusCode::CREATED, "{:?}", form.body);
    let status = app.upload(&form.body["upload"], bytes).await;
    assert!(status.is_success(), "S3 took the upload: {status}");
    form.body["key"].as_str().unwrap_or_default().to_owned()
}

/// Creates a post of `author` with one upload per item of `media` (content type, bytes),
/// uploads them and waits until the post is settled; the post as its author reads it.
async fn settled_post(app: &TestApp, author: &User, media: &[(&str, &[u8])]) -> Value {
    let declared: Vec<Value> = media
        .iter()
        .map(|(content_type, bytes)| json!({"content_type": content_type, "size": bytes.len()}))
        .collect();
    let created = app
        .call(
            Method::POST,
            "/v1/posts",
            Some(&author.access_token),
            Some(json!({"caption": "what is in the file", "media": declared})),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    let id = created.body["post"]["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    for (upload, (_, bytes)) in created.body["uploads"]
        .as_array()
        .into_iter()
        .flatten()
        .zip(media)
    {
        let status = app.upload(&upload["upload"], bytes).await;
        assert!(status.is_success(), "S3 took the upload: {status}");
    }
    let path = format!("/v1/posts/{id}");
    eventually("the post to be settled", WAIT, || async {
        let post = app
            .call(Method::GET, &path, Some(&author.access_token), None)
            .await;
        (post.body["status"] != "pending").then_some(post.body)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_avatar_with_gps_in_its_exif_is_stored_without_it() {
    let app = &TestApp::shared().await;
    let mona = user_with_profile(app, "mona").await;
    // GIVEN a photo with GPS coordinates in its EXIF, taken sideways (orientation 6)
    let photo = jpeg_with_gps(1600, 1200);
    let exif = exif::Reader::new()
        .read_from_container(&mut Cursor::new(&photo))
        .expect("the photo has EXIF");
    assert!(
        exif.get_field(exif::Tag::GPSLatitudeRef, exif::In::PRIMARY)
            .is_some()
    );
    // WHEN mona makes it her avatar
    let key = upload_avatar(app, &mona, "image/jpeg", &photo).await;
    let avatar = eventually("mona's avatar", WAIT, || async {
        profile(app, &mona)
            .await
            .filter(|p| p["avatar_url"].is_string())
    })
    .await;
    assert!(
        avatar["avatar_url"]
            .as_str()
            .unwrap_or_default()
            .contains(&key)
    );
    // THEN what S3 stores is a fresh JPEG: no EXIF (no GPS), upright, at most 1080 px
    let bytes = stored(app, &key).await.expect("the avatar is stored");
    assert_ne!(bytes, photo);
    assert!(
        exif::Reader::new()
            .read_from_container(&mut Cursor::new(&bytes))
            .is_err(),
        "the stored avatar has no EXIF"
    );
    assert!(!contains(&bytes, b"Exif"));
    let image = shutter_media::images::decode_upright(&bytes, MediaType::Jpeg, u64::MAX)
        .expect("the stored avatar is a JPEG");
    assert_eq!((image.width(), image.height()), (810, 1080));
    // AND the avatar URL serves that same clean file
    let served = app
        .http
        .get(avatar["avatar_url"].as_str().unwrap_or_default())
        .send()
        .await
        .expect("S3 answers");
    assert_eq!(served.status(), StatusCode::OK);
    assert_eq!(served.bytes().await.expect("a body").to_vec(), bytes);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_decompression_bomb_avatar_is_refused_and_nothing_is_stored() {
    let app = &TestApp::shared().await;
    let nico = user_with_profile(app, "nico").await;
    // GIVEN a valid PNG of a few kilobytes that claims 20,000 × 20,000 pixels
    let bomb = black_png(20_000, 20_000);
    assert!(bomb.len() < 1_000_000, "a small file: {} bytes", bomb.len());
    // WHEN nico uploads it as his avatar
    let key = upload_avatar(app, &nico, "image/png", &bomb).await;
    // THEN it is deleted unread, and nothing of his is stored
    eventually("the bomb's deletion", WAIT, || async {
        stored(app, &key).await.is_none().then_some(())
    })
    .await;
    assert_eq!(
        keys_under(app, &format!("avatars/{}/", nico.id)).await,
        Vec::<String>::new()
    );
    // AND his profile has no avatar
    let now = profile(app, &nico).await.expect("nico's profile");
    assert!(now["avatar_url"].is_null(), "{now}");
    // AND a real image still becomes his avatar (the refusal did not wedge anything)
    let key = upload_avatar(app, &nico, "image/png", &black_png(64, 64)).await;
    eventually("nico's avatar", WAIT, || async {
        profile(app, &nico)
            .await
            .filter(|p| p["avatar_url"].as_str().is_some_and(|u| u.contains(&key)))
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_decompression_bomb_in_a_post_is_rejected_and_nothing_is_stored() {
    let app = &TestApp::shared().await;
    let olga = app.user(&TestApp::unique("olga")).await;
    // GIVEN a post whose one image is a PNG claiming 20,000 × 20,000 pixels
    let bomb = black_png(20_000, 20_000);
    // WHEN it is uploaded
    let post = settled_post(app, &olga, &[("image/png", &bomb)]).await;
    // THEN the post is rejected, as media failures are reported, and nothing is stored
    assert_eq!(post["status"], "rejected", "{post}");
    assert_eq!(post["media"][0]["status"], "rejected", "{post}");
    assert!(post["media"][0]["url"].is_null());
    let id = post["id"].as_str().unwrap_or_default();
    assert_eq!(
        keys_under(app, &format!("post-uploads/{}/{id}/", olga.id)).await,
        Vec::<String>::new(),
        "the upload is deleted"
    );
    assert_eq!(
        keys_under(app, &format!("post-media/{id}/")).await,
        Vec::<String>::new(),
        "no rendition is made"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_video_is_served_without_its_location() {
    let app = &TestApp::shared().await;
    let pia = app.user(&TestApp::unique("pia")).await;
    // GIVEN a video that says where it was shot: ©xyz, an Apple location key, loci, and a
    // GPS track whose sample is in the media data; and a copy with a web page appended
    let video = mp4_with_location();
    assert!(contains(&video, LOCATION.as_bytes()) && contains(&video, b"\xA9xyz"));
    let mut polyglot = video.clone();
    polyglot.extend_from_slice(b"<html><script>alert(document.cookie)</script></html>");
    // WHEN pia posts both
    let post = settled_post(
        app,
        &pia,
        &[("video/mp4", &video), ("video/mp4", &polyglot)],
    )
    .await;
    // THEN the post is published with the video, and the polyglot is rejected
    assert_eq!(post["status"], "published", "{post}");
    assert_eq!(
        (
            post["media"][0]["status"].as_str(),
            post["media"][1]["status"].as_str()
        ),
        (Some("ready"), Some("rejected")),
        "{post}"
    );
    // AND what is served has no location anywhere, and the same frames
    let served = app
        .http
        .get(post["media"][0]["url"].as_str().unwrap_or_default())
        .send()
        .await
        .expect("S3 answers");
    assert_eq!(served.status(), StatusCode::OK);
    let served = served.bytes().await.expect("a body").to_vec();
    for gone in [
        LOCATION.as_bytes(),
        b"\xA9xyz",
        b"loci",
        b"GPS fix",
        b"com.apple.quicktime.location",
    ] {
        assert!(
            !contains(&served, gone),
            "{} is gone",
            String::from_utf8_lossy(gone)
        );
    }
    assert_eq!(served.len(), video.len(), "no byte moved");
    assert_eq!(&served[..24], &video[..24], "the same ftyp");
    assert!(contains(&served, &b"frame-data-".repeat(20)));
    assert!(!contains(&served, b"<script"));
    // AND no upload is left behind
    let id = post["id"].as_str().unwrap_or_default();
    assert_eq!(
        keys_under(app, &format!("post-uploads/{}/{id}/", pia.id)).await,
        Vec::<String>::new()
    );
}
