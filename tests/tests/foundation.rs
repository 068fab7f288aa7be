//! The foundation's user stories, through the real request and event paths: the HTTP
//! gateway with its JWT authorizer, the function binaries, moto, DynamoDB Streams, the
//! outbox publisher, tansu and the MSK consumer.
//!
//! One devstack serves every story in this file (starting one costs seconds); each story
//! is its own test and uses its own users, so they do not interfere.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test, with its location

use std::time::Duration;

use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use shutter_e2e::{PASSWORD, PNG, TestApp, eventually};

const WAIT: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_login_and_read_my_account() {
    let app = &TestApp::shared().await;
    let alice = app.user(&TestApp::unique("alice")).await;
    let me = app
        .call(Method::GET, "/v1/users/me", Some(&alice.access_token), None)
        .await;
    assert_eq!(me.status, StatusCode::OK, "{:?}", me.body);
    assert_eq!(me.body["username"], alice.username.as_str());
    let email = format!("{}@example.com", alice.username);
    assert_eq!(me.body["email"], email.as_str());
    assert!(me.body.get("password_hash").is_none());

    let by_email = app.login(&email.to_uppercase(), PASSWORD).await;
    assert_eq!(by_email.status, StatusCode::OK);
    assert_eq!(by_email.body["token_type"], "Bearer");
    assert_eq!(by_email.body["expires_in"], 900);

    // Duplicate username or email, in any case: 409 naming the field.
    let dup = app
        .call(
            Method::POST,
            "/v1/auth/register",
            None,
            Some(json!({"username": alice.username.to_uppercase(), "email": "other@example.com", "password": PASSWORD})),
        )
        .await;
    assert_eq!(
        (dup.status, dup.body["code"].as_str()),
        (StatusCode::CONFLICT, Some("username_taken"))
    );

    // Failures look the same whether the user exists or not.
    let wrong_password = app.login(&alice.username, "not the password").await;
    let no_such_user = app.login("nobody-here", PASSWORD).await;
    assert_eq!(wrong_password.status, StatusCode::UNAUTHORIZED);
    assert_eq!(wrong_password.body["code"], no_such_user.body["code"]);
    assert_eq!(wrong_password.body["detail"], no_such_user.body["detail"]);
}

/// The signing key the devstack generated, read from the local Secrets Manager.
async fn devstack_signing_key(app: &TestApp) -> (String, EncodingKey) {
    let aws = app.aws().await;
    let secrets = aws_sdk_secretsmanager::Client::new(&aws);
    let list = secrets.list_secrets().send().await.expect("list secrets");
    let arn = list
        .secret_list()
        .iter()
        .find(|s| s.name().is_some_and(|n| n.contains("signing-key")))
        .and_then(|s| s.arn())
        .expect("the devstack stored a signing key")
        .to_owned();
    let secret = secrets
        .get_secret_value()
        .secret_id(arn)
        .send()
        .await
        .expect("read secret");
    let parsed: Value = serde_json::from_str(secret.secret_string().unwrap_or("{}")).expect("json");
    let kid = parsed["active_kid"]
        .as_str()
        .expect("active_kid")
        .to_owned();
    let pem = parsed["keys"]
        .as_array()
        .and_then(|keys| keys.iter().find(|k| k["kid"] == kid.as_str()))
        .and_then(|k| k["private_key_pem"].as_str())
        .expect("active key");
    (
        kid,
        EncodingKey::from_rsa_pem(pem.as_bytes()).expect("rsa pem"),
    )
}

fn claims(app: &TestApp, sub: &str, username: &str, exp_offset: i64, nbf_offset: i64) -> Value {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    json!({
        "iss": app.stack.base_url(), "aud": "shutter-api", "sub": sub, "username": username,
        "scope": "user", "jti": shutter_core::new_id(), "iat": now, "nbf": now + nbf_offset, "exp": now + exp_offset,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_authorizer_refuses_bad_tokens() {
    let app = &TestApp::shared().await;
    let me = |token: Option<String>| async move {
        app.call(Method::GET, "/v1/users/me", token.as_deref(), None)
            .await
    };
    let alice = app.user(&TestApp::unique("alice")).await;
    let sub = {
        let payload = alice.access_token.split('.').nth(1).unwrap();
        let decoded: Value = serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(payload)
                .unwrap(),
        )
        .unwrap();
        decoded["sub"].as_str().unwrap().to_owned()
    };

    let missing = me(None).await;
    assert_eq!(missing.status, StatusCode::UNAUTHORIZED);
    assert!(
        missing
            .headers
            .get("www-authenticate")
            .is_some_and(|v| v.to_str().unwrap().starts_with("Bearer"))
    );

    let (kid, real_key) = devstack_signing_key(app).await;
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(kid.clone());

    // Control: a token we sign with the real key and good claims is accepted.
    let good = jsonwebtoken::encode(
        &header,
        &claims(app, &sub, &alice.username, 300, 0),
        &real_key,
    )
    .unwrap();
    assert_eq!(me(Some(good)).await.status, StatusCode::OK);

    let other_key = EncodingKey::from_rsa_pem(include_bytes!(
        "../../functions/identity/tests/fixtures/test-signing-key.pem"
    ))
    .unwrap();
    let forged = jsonwebtoken::encode(
        &header,
        &claims(app, &sub, &alice.username, 300, 0),
        &other_key,
    )
    .unwrap();
    let expired = jsonwebtoken::encode(
        &header,
        &claims(app, &sub, &alice.username, -120, -600),
        &real_key,
    )
    .unwrap();
    let not_yet = jsonwebtoken::encode(
        &header,
        &claims(app, &sub, &alice.username, 3600, 1800),
        &real_key,
    )
    .unwrap();
    let mut wrong_aud = claims(app, &sub, &alice.username, 300, 0);
    wrong_aud["aud"] = json!("someone-else");
    let wrong_aud = jsonwebtoken::encode(&header, &wrong_aud, &real_key).unwrap();
    let mut wrong_iss = claims(app, &sub, &alice.username, 300, 0);
    wrong_iss["iss"] = json!("https://evil.example");
    let wrong_iss = jsonwebtoken::encode(&header, &wrong_iss, &real_key).unwrap();
    let b64 = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    let alg_none = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "typ": "JWT", "kid": kid})),
        b64(&claims(app, &sub, &alice.username, 300, 0))
    );
    let hs256 = jsonwebtoken::encode(
        &Header {
            kid: Some(kid.clone()),
            ..Header::new(Algorithm::HS256)
        },
        &claims(app, &sub, &alice.username, 300, 0),
        &EncodingKey::from_secret(b"guessable"),
    )
    .unwrap();
    for (name, token) in [
        ("signed by another key", forged),
        ("expired", expired),
        ("not yet valid", not_yet),
        ("wrong audience", wrong_aud),
        ("wrong issuer", wrong_iss),
        ("alg none", alg_none),
        ("HS256", hs256),
        ("garbage", "not.a.jwt".to_owned()),
    ] {
        let answer = me(Some(token)).await;
        assert_eq!(
            answer.status,
            StatusCode::UNAUTHORIZED,
            "{name} must be refused"
        );
    }

    // A token without the route's scope is forbidden.
    let mut no_scope = claims(app, &sub, &alice.username, 300, 0);
    no_scope["scope"] = json!("");
    let no_scope = jsonwebtoken::encode(&header, &no_scope, &real_key).unwrap();
    assert_eq!(me(Some(no_scope)).await.status, StatusCode::FORBIDDEN);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_clear_errors_and_changes_nothing() {
    let app = &TestApp::shared().await;
    let email = format!("{}@example.com", TestApp::unique("x"));
    let malformed = app
        .call_raw(
            Method::POST,
            "/v1/auth/register",
            None,
            "application/json",
            b"{\"username\":".to_vec(),
        )
        .await;
    assert_eq!(
        (malformed.status, malformed.body["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("malformed_json"))
    );
    assert!(
        malformed.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/problem+json"),
        "errors are problem+json"
    );

    let wrong_type = app
        .call(
            Method::POST,
            "/v1/auth/register",
            None,
            Some(json!({"username": 5, "email": email, "password": PASSWORD})),
        )
        .await;
    assert_eq!(
        (wrong_type.status, wrong_type.body["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("username"))
    );

    let oversize = format!("{{\"username\":\"{}\"}}", "a".repeat(70 * 1024));
    let too_big = app
        .call_raw(
            Method::POST,
            "/v1/auth/register",
            None,
            "application/json",
            oversize.into_bytes(),
        )
        .await;
    assert_eq!(too_big.status, StatusCode::PAYLOAD_TOO_LARGE);

    let unknown = app.call(Method::GET, "/v1/no-such-route", None, None).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    let wrong_method = app.call(Method::DELETE, "/v1/auth/login", None, None).await;
    assert_eq!(wrong_method.status, StatusCode::METHOD_NOT_ALLOWED);

    // None of the refused registrations exists.
    assert_eq!(
        app.login(&email, PASSWORD).await.status,
        StatusCode::UNAUTHORIZED
    );
}

async fn profile_of(app: &TestApp, token: &str, username: &str) -> Option<Value> {
    let answer = app
        .call(
            Method::GET,
            &format!("/v1/profiles/{username}"),
            Some(token),
            None,
        )
        .await;
    (answer.status == StatusCode::OK).then_some(answer.body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registration_creates_exactly_one_profile() {
    let app = &TestApp::shared().await;
    let bob = app.user(&TestApp::unique("bob")).await;
    let profile = eventually("bob's profile", WAIT, || {
        profile_of(app, &bob.access_token, &bob.username)
    })
    .await;
    assert_eq!(
        (profile["id"].as_str(), profile["display_name"].as_str()),
        (Some(bob.id.as_str()), Some(bob.username.as_str()))
    );
    assert_eq!(profile["follower_count"], 0);

    // The event went to Kafka once, and the consumer applied it once.
    let aws = app.aws().await;
    let ddb = aws_sdk_dynamodb::Client::new(&aws);
    let table = app.stack.table_name("ProfilesTable");
    let items = ddb
        .scan()
        .table_name(&table)
        .send()
        .await
        .expect("scan profiles")
        .items
        .unwrap_or_default();
    let markers = items
        .iter()
        .filter(|i| {
            i.get("pk")
                .and_then(|v| v.as_s().ok())
                .is_some_and(|pk| pk.starts_with("PROCESSED#profiles-identity-events#"))
        })
        .count();
    let profiles_of_bob = items
        .iter()
        .filter(|i| i.get("pk").and_then(|v| v.as_s().ok()) == Some(&format!("PROFILE#{}", bob.id)))
        .count();
    assert_eq!(profiles_of_bob, 1);
    let registered_events = kafka_events_for(app, "shutter.identity", &bob.id).await;
    assert_eq!(
        registered_events.len(),
        1,
        "one UserRegistered for bob on the topic: {registered_events:?}"
    );
    assert!(markers >= 1);

    // Redelivery (Kafka is at-least-once): the same event again changes nothing.
    let before = profile_of(app, &bob.access_token, &bob.username).await;
    let record = &registered_events[0];
    let replay = json!({
        "eventSource": "aws:kafka",
        "records": {"shutter.identity-0": [{
            "topic": "shutter.identity", "partition": 0, "offset": 0, "timestamp": 0, "timestampType": "CREATE_TIME",
            "key": base64::engine::general_purpose::STANDARD.encode(&bob.id),
            "value": base64::engine::general_purpose::STANDARD.encode(record.to_string()), "headers": []
        }]}
    });
    app.stack
        .invoke("ProfilesIdentityEventsFunction", replay)
        .await
        .expect("replayed batch succeeds");
    assert_eq!(
        profile_of(app, &bob.access_token, &bob.username).await,
        before
    );
}

/// Every event on `topic` whose aggregate is `aggregate_id`, read from the beginning.
async fn kafka_events_for(app: &TestApp, topic: &str, aggregate_id: &str) -> Vec<Value> {
    use rdkafka::config::ClientConfig;
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::message::Message;
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", app.stack.kafka_bootstrap())
        .set("group.id", format!("e2e-{}", shutter_core::new_id()))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    consumer.subscribe(&[topic]).expect("subscribe");
    let mut events = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let mut idle = 0;
    while std::time::Instant::now() < deadline && idle < 30 {
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(msg)) => {
                idle = 0;
                if msg.key() == Some(aggregate_id.as_bytes())
                    && let Some(value) = msg
                        .payload()
                        .and_then(|p| serde_json::from_slice::<Value>(p).ok())
                {
                    events.push(value);
                }
            }
            _ => idle += if events.is_empty() { 0 } else { 1 },
        }
    }
    events.retain(|e| e["type"] == "UserRegistered");
    // Publishing is at least once (a retried publisher batch sends an event again with
    // the same id; consumers deduplicate by it): count each event once.
    let mut seen = std::collections::HashSet::new();
    events.retain(|e| seen.insert(e["id"].to_string()));
    events
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn profiles_are_edited_only_by_their_owner() {
    let app = &TestApp::shared().await;
    let carol = app.user(&TestApp::unique("carol")).await;
    let dave = app.user(&TestApp::unique("dave")).await;
    eventually("carol's profile", WAIT, || {
        profile_of(app, &carol.access_token, &carol.username)
    })
    .await;
    eventually("dave's profile", WAIT, || {
        profile_of(app, &dave.access_token, &dave.username)
    })
    .await;

    let edit = json!({"display_name": "Carol C.", "bio": "photos of clouds", "website": "https://carol.example", "private": true});
    let updated = app
        .call(
            Method::PATCH,
            "/v1/profiles/me",
            Some(&carol.access_token),
            Some(edit),
        )
        .await;
    assert_eq!(updated.status, StatusCode::OK, "{:?}", updated.body);
    let seen = profile_of(app, &dave.access_token, &carol.username)
        .await
        .expect("carol's profile");
    assert_eq!(
        (
            seen["display_name"].as_str(),
            seen["bio"].as_str(),
            seen["private"].as_bool()
        ),
        (Some("Carol C."), Some("photos of clouds"), Some(true))
    );

    // Dave's PATCH changes only Dave: there is no way to name someone else's profile.
    let hijack = app
        .call(
            Method::PATCH,
            "/v1/profiles/me",
            Some(&dave.access_token),
            Some(json!({"bio": "hacked", "user_id": carol.id})),
        )
        .await;
    assert_eq!(
        hijack.status,
        StatusCode::BAD_REQUEST,
        "unknown fields are refused"
    );
    assert_eq!(
        profile_of(app, &dave.access_token, &carol.username)
            .await
            .unwrap()["bio"],
        "photos of clouds"
    );

    let too_long = app
        .call(
            Method::PATCH,
            "/v1/profiles/me",
            Some(&carol.access_token),
            Some(json!({"bio": "b".repeat(151)})),
        )
        .await;
    assert_eq!(
        (too_long.status, too_long.body["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("bio"))
    );
    assert_eq!(
        profile_of(app, &dave.access_token, &carol.username)
            .await
            .unwrap()["bio"],
        "photos of clouds"
    );

    let missing = app
        .call(
            Method::GET,
            "/v1/profiles/nobody.at.all",
            Some(&dave.access_token),
            None,
        )
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
}

async fn refresh(app: &TestApp, token: &str) -> shutter_e2e::Answer {
    app.call(
        Method::POST,
        "/v1/auth/refresh",
        None,
        Some(json!({"refresh_token": token})),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_tokens_rotate_and_reuse_revokes_the_session() {
    let app = &TestApp::shared().await;
    let erin = app.user(&TestApp::unique("erin")).await;
    let rotated = refresh(app, &erin.refresh_token).await;
    assert_eq!(rotated.status, StatusCode::OK, "{:?}", rotated.body);
    let second = rotated.body["refresh_token"].as_str().unwrap().to_owned();
    let new_access = rotated.body["access_token"].as_str().unwrap();
    assert_eq!(
        app.call(Method::GET, "/v1/users/me", Some(new_access), None)
            .await
            .status,
        StatusCode::OK
    );

    assert_eq!(
        refresh(app, &erin.refresh_token).await.status,
        StatusCode::UNAUTHORIZED,
        "reuse is refused"
    );
    assert_eq!(
        refresh(app, &second).await.status,
        StatusCode::UNAUTHORIZED,
        "and it revoked the family"
    );

    // Logout ends a session.
    let fresh = app.login(&erin.username, PASSWORD).await.body;
    let token = fresh["refresh_token"].as_str().unwrap();
    let out = app
        .call(
            Method::POST,
            "/v1/auth/logout",
            fresh["access_token"].as_str(),
            Some(json!({"refresh_token": token})),
        )
        .await;
    assert_eq!(out.status, StatusCode::NO_CONTENT);
    assert_eq!(refresh(app, token).await.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_change_ends_sessions() {
    let app = &TestApp::shared().await;
    let frank = app.user(&TestApp::unique("frank")).await;
    let wrong = app
        .call(Method::POST, "/v1/users/me/password", Some(&frank.access_token), Some(json!({"current_password": "nope nope nope", "new_password": "a brand new password"})))
        .await;
    assert_eq!(
        (wrong.status, wrong.body["field"].as_str()),
        (StatusCode::FORBIDDEN, Some("current_password"))
    );
    let changed = app
        .call(
            Method::POST,
            "/v1/users/me/password",
            Some(&frank.access_token),
            Some(json!({"current_password": PASSWORD, "new_password": "a brand new password"})),
        )
        .await;
    assert_eq!(changed.status, StatusCode::NO_CONTENT, "{:?}", changed.body);
    assert_eq!(
        refresh(app, &frank.refresh_token).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.login(&frank.username, PASSWORD).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.login(&frank.username, "a brand new password")
            .await
            .status,
        StatusCode::OK
    );
}

async fn upload(app: &TestApp, token: &str, bytes: &[u8]) -> String {
    let form = app
        .call(
            Method::POST,
            "/v1/profiles/me/avatar",
            Some(token),
            Some(json!({"content_type": "image/png", "size": bytes.len()})),
        )
        .await;
    assert_eq!(form.status, StatusCode::CREATED, "{:?}", form.body);
    let upload = &form.body["upload"];
    let mut multipart = reqwest::multipart::Form::new();
    for (k, v) in upload["fields"].as_object().unwrap() {
        multipart = multipart.text(k.clone(), v.as_str().unwrap().to_owned());
    }
    multipart = multipart.part(
        "file",
        reqwest::multipart::Part::bytes(bytes.to_vec()).file_name("avatar.png"),
    );
    let resp = app
        .http
        .post(upload["url"].as_str().unwrap())
        .multipart(multipart)
        .send()
        .await
        .expect("upload");
    assert!(
        resp.status().is_success(),
        "S3 accepted the POST: {}",
        resp.status()
    );
    form.body["key"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn avatars_upload_straight_to_s3_and_are_verified() {
    let app = &TestApp::shared().await;
    let gina = app.user(&TestApp::unique("gina")).await;
    eventually("gina's profile", WAIT, || {
        profile_of(app, &gina.access_token, &gina.username)
    })
    .await;

    let refused = app
        .call(
            Method::POST,
            "/v1/profiles/me/avatar",
            Some(&gina.access_token),
            Some(json!({"content_type": "image/gif", "size": 10})),
        )
        .await;
    assert_eq!(
        (refused.status, refused.body["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("content_type"))
    );
    let too_big = app
        .call(
            Method::POST,
            "/v1/profiles/me/avatar",
            Some(&gina.access_token),
            Some(json!({"content_type": "image/png", "size": 6_000_000})),
        )
        .await;
    assert_eq!(too_big.body["field"], "size");

    let key = upload(app, &gina.access_token, PNG).await;
    let profile = eventually("gina's avatar", WAIT, || async {
        profile_of(app, &gina.access_token, &gina.username)
            .await
            .filter(|p| p["avatar_url"].is_string())
    })
    .await;
    let url = profile["avatar_url"].as_str().unwrap();
    assert!(url.contains(&key), "{url}");
    let fetched = app
        .http
        .get(url)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    // The avatar is the upload re-encoded (no metadata survives): the same pixels.
    let pixels = |bytes: &[u8]| {
        shutter_media::images::decode_upright(bytes, shutter_media::MediaType::Png, u64::MAX)
            .map(|image| image.to_rgba8().into_raw())
            .ok()
    };
    assert!(pixels(PNG).is_some());
    assert_eq!(pixels(&fetched), pixels(PNG));

    // A text file declared as PNG is deleted and never becomes the avatar.
    let fake = upload(app, &gina.access_token, b"this is not an image, just text").await;
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&app.aws().await)
            .force_path_style(true)
            .build(),
    );
    let bucket = app.stack.bucket_name("MediaBucket");
    eventually("the fake avatar's deletion", WAIT, || async {
        s3.head_object()
            .bucket(&bucket)
            .key(&fake)
            .send()
            .await
            .is_err()
            .then_some(())
    })
    .await;
    let profile = profile_of(app, &gina.access_token, &gina.username)
        .await
        .unwrap();
    assert!(profile["avatar_url"].as_str().unwrap().contains(&key));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn account_deletion_erases_the_user_everywhere() {
    let app = &TestApp::shared().await;
    let hank = app.user(&TestApp::unique("hank")).await;
    let ivy = app.user(&TestApp::unique("ivy")).await;
    eventually("hank's profile", WAIT, || {
        profile_of(app, &ivy.access_token, &hank.username)
    })
    .await;

    let no_password = app
        .call(
            Method::DELETE,
            "/v1/users/me",
            Some(&hank.access_token),
            Some(json!({"password": "wrong wrong wrong"})),
        )
        .await;
    assert_eq!(
        (no_password.status, no_password.body["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("password_mismatch"))
    );
    let deleted = app
        .call(
            Method::DELETE,
            "/v1/users/me",
            Some(&hank.access_token),
            Some(json!({"password": PASSWORD})),
        )
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{:?}", deleted.body);

    assert_eq!(
        app.login(&hank.username, PASSWORD).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        refresh(app, &hank.refresh_token).await.status,
        StatusCode::UNAUTHORIZED
    );
    eventually("hank's profile to go", WAIT, || async {
        profile_of(app, &ivy.access_token, &hank.username)
            .await
            .is_none()
            .then_some(())
    })
    .await;
    // The username is quarantined (tests/tests/security_account.rs: until when).
    let reused = app.register(&hank.username).await;
    assert_eq!(
        (reused.status, reused.body["code"].as_str()),
        (StatusCode::CONFLICT, Some("username_taken"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_documents_itself() {
    let app = &TestApp::shared().await;
    let doc = app.call(Method::GET, "/openapi.json", None, None).await;
    assert_eq!(doc.status, StatusCode::OK);
    assert!(doc.body["openapi"].as_str().unwrap().starts_with("3.1"));
    assert_eq!(
        doc.body["servers"][0]["url"],
        app.stack.base_url(),
        "Swagger UI calls this devstack"
    );
    assert!(doc.body["paths"]["/v1/users/me"]["get"].is_object());
    let ui = app.http.get(app.url("/docs/")).send().await.unwrap();
    assert_eq!(ui.status(), StatusCode::OK);
    assert!(
        ui.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(
        ui.text().await.unwrap().contains("swagger-ui"),
        "the UI's assets are served locally"
    );
}
