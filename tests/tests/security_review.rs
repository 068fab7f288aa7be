//! What the audit of issue 13 found still open, tried as an attacker would through the
//! devstack: a deleted account's still-valid token likes, likes comments, follows,
//! blocks and edits nothing that stays (posts and comments are in `security_posts`);
//! a login does not tell a missing account from a wrong password; and a comment edit or
//! a username refuses bidirectional overrides as a new comment does.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test, with its location

use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use shutter_e2e::{Answer, PASSWORD, PNG, TestApp, User, eventually};

const WAIT: Duration = Duration::from_secs(90);

fn ddb(aws: &aws_config::SdkConfig) -> aws_sdk_dynamodb::Client {
    aws_sdk_dynamodb::Client::new(aws)
}

/// The item (`pk`, `sk`) of table `table` (a template resource name), if stored.
async fn item(
    app: &TestApp,
    table: &str,
    pk: &str,
    sk: &str,
) -> Option<std::collections::HashMap<String, AttributeValue>> {
    ddb(&app.aws().await)
        .get_item()
        .table_name(app.stack.table_name(table))
        .key("pk", AttributeValue::S(pk.to_owned()))
        .key("sk", AttributeValue::S(sk.to_owned()))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item
}

async fn call(
    app: &TestApp,
    user: &User,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> Answer {
    app.call(method, path, Some(&user.access_token), body).await
}

fn problem(answer: &Answer) -> (StatusCode, Option<&str>, Option<&str>) {
    (
        answer.status,
        answer.body["code"].as_str(),
        answer.body["field"].as_str(),
    )
}

/// Sends `method path` as `user` until it answers `want` (the service behind it learns
/// of the post, comment or user from an event): the answer.
async fn until(app: &TestApp, user: &User, method: Method, path: &str, want: StatusCode) -> Answer {
    eventually(
        &format!("{method} {path} to answer {want}"),
        WAIT,
        || async {
            let answer = call(app, user, method.clone(), path, None).await;
            (answer.status == want).then_some(answer)
        },
    )
    .await
}

/// A comment of `by` on `post`, once it is listed; its id.
async fn comment(app: &TestApp, by: &User, post: &str, text: &str) -> String {
    let path = format!("/v1/posts/{post}/comments");
    let said = call(app, by, Method::POST, &path, Some(json!({"text": text}))).await;
    assert_eq!(said.status, StatusCode::ACCEPTED, "{:?}", said.body);
    let id = said.body["id"].as_str().unwrap().to_owned();
    eventually("the comment to be listed", WAIT, || async {
        let listed = call(app, by, Method::GET, &path, None).await;
        listed.body["items"]
            .as_array()?
            .iter()
            .any(|c| c["id"] == id.as_str())
            .then_some(())
    })
    .await;
    id
}

/// Whether the comments table holds `user`'s like of comment `id`.
async fn comment_liked(app: &TestApp, id: &str, user: &User) -> bool {
    item(
        app,
        "CommentsTable",
        &format!("COMMENT#{id}"),
        &format!("LIKE#{}", user.id),
    )
    .await
    .is_some()
}

/// The state of the follows edge `follower` → `followee` as stored (`none` if absent).
async fn edge_state(app: &TestApp, follower: &User, followee: &User) -> String {
    let edge = item(
        app,
        "FollowsTable",
        &format!("EDGE#{}", follower.id),
        &format!("TO#{}", followee.id),
    )
    .await;
    match edge.as_ref().and_then(|e| e.get("state")) {
        Some(AttributeValue::S(state)) => state.clone(),
        _ => "none".to_owned(),
    }
}

/// Whether `blocker` blocks `blocked`, as stored.
async fn blocks(app: &TestApp, blocker: &User, blocked: &User) -> bool {
    let block = item(
        app,
        "FollowsTable",
        &format!("BLOCK#{}", blocker.id),
        &format!("TO#{}", blocked.id),
    )
    .await;
    block.and_then(|b| b.get("blocked").cloned()) == Some(AttributeValue::Bool(true))
}

/// The post's `like_count` as its author reads it.
async fn like_count(app: &TestApp, author: &User, post: &str) -> Value {
    call(app, author, Method::GET, &format!("/v1/posts/{post}"), None)
        .await
        .body["like_count"]
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_accounts_token_likes_follows_blocks_and_edits_nothing_that_stays() {
    let app = &TestApp::shared().await;
    let names = ["host", "cat", "leaver"].map(TestApp::unique);
    let (host, cat, leaver) = futures::join!(
        app.user(&names[0]),
        app.user(&names[1]),
        app.user(&names[2])
    );
    let (hosts, cats) = futures::join!(app.published_post(&host), app.published_post(&cat));
    // GIVEN the leaver likes host's post and host's comment, and follows host
    until(
        app,
        &leaver,
        Method::GET,
        &format!("/v1/posts/{hosts}/comments"),
        StatusCode::OK,
    )
    .await;
    let hosts_comment = comment(app, &host, &hosts, "from the host").await;
    let cats_comment = comment(app, &cat, &hosts, "from cat").await;
    until(
        app,
        &leaver,
        Method::PUT,
        &format!("/v1/posts/{hosts}/like"),
        StatusCode::OK,
    )
    .await;
    let liked = call(
        app,
        &leaver,
        Method::POST,
        &format!("/v1/comments/{hosts_comment}/like"),
        None,
    )
    .await;
    assert_eq!(liked.status, StatusCode::NO_CONTENT, "{:?}", liked.body);
    let follow_host = format!("/v1/users/{}/follow", host.username);
    until(app, &leaver, Method::PUT, &follow_host, StatusCode::OK).await;
    // (and the services the window writes reach know cat and her post)
    until(
        app,
        &leaver,
        Method::GET,
        &format!("/v1/posts/{cats}/likes"),
        StatusCode::OK,
    )
    .await;
    until(
        app,
        &leaver,
        Method::GET,
        &format!("/v1/profiles/{}", cat.username),
        StatusCode::OK,
    )
    .await;
    eventually("host's post to count the like", WAIT, || async {
        (like_count(app, &host, &hosts).await == 1).then_some(())
    })
    .await;
    assert!(comment_liked(app, &hosts_comment, &leaver).await);
    assert_eq!(edge_state(app, &leaver, &host).await, "following");

    // WHEN the account is deleted, and its token (valid for minutes more) writes at once,
    // before UserDeleted reaches the likes, comments and follows services
    let gone = call(
        app,
        &leaver,
        Method::DELETE,
        "/v1/users/me",
        Some(json!({"password": PASSWORD})),
    )
    .await;
    assert_eq!(gone.status, StatusCode::NO_CONTENT, "{:?}", gone.body);
    let like_cats = format!("/v1/posts/{cats}/like");
    let like_cats_comment = format!("/v1/comments/{cats_comment}/like");
    let follow_cat = format!("/v1/users/{}/follow", cat.username);
    let window = [
        call(app, &leaver, Method::PUT, &like_cats, None).await,
        call(app, &leaver, Method::POST, &like_cats_comment, None).await,
        call(app, &leaver, Method::PUT, &follow_cat, None).await,
    ];
    // THEN each is refused, or taken and then undone by the deletion cascade
    for answer in &window {
        assert!(
            answer.status.is_success() || answer.status == StatusCode::UNAUTHORIZED,
            "{answer:?}"
        );
    }
    // The cascades have run once what the leaver did before is undone, in each service.
    eventually("the likes cascade", WAIT, || async {
        (like_count(app, &host, &hosts).await == 0).then_some(())
    })
    .await;
    eventually("the comments cascade", WAIT, || async {
        (!comment_liked(app, &hosts_comment, &leaver).await).then_some(())
    })
    .await;
    eventually("the follows cascade", WAIT, || async {
        (edge_state(app, &leaver, &host).await == "none").then_some(())
    })
    .await;
    // AND what the window wrote is undone too
    eventually("the window's writes to be undone", WAIT, || async {
        (like_count(app, &cat, &cats).await == 0
            && !comment_liked(app, &cats_comment, &leaver).await
            && edge_state(app, &leaver, &cat).await == "none")
            .then_some(())
    })
    .await;

    // AND from then on the token writes nothing: each write is a 401 (problem+json)
    let block_cat = format!("/v1/users/{}/block", cat.username);
    for (method, path) in [
        (Method::PUT, &like_cats),
        (Method::POST, &like_cats_comment),
        (Method::PUT, &follow_cat),
        (Method::PUT, &block_cat),
    ] {
        let answer = call(app, &leaver, method.clone(), path, None).await;
        assert_eq!(
            problem(&answer),
            (StatusCode::UNAUTHORIZED, Some("unauthorized"), None),
            "{method} {path}: {:?}",
            answer.body
        );
    }
    // Its profile and account are gone: editing them is a 404.
    let profile = call(
        app,
        &leaver,
        Method::PATCH,
        "/v1/profiles/me",
        Some(json!({"bio": "still here"})),
    )
    .await;
    assert_eq!(profile.status, StatusCode::NOT_FOUND, "{:?}", profile.body);
    let account = call(
        app,
        &leaver,
        Method::PATCH,
        "/v1/users/me",
        Some(json!({"settings": {"push_notifications": false}})),
    )
    .await;
    assert_eq!(account.status, StatusCode::NOT_FOUND, "{:?}", account.body);
    // An avatar uploaded with a form it can still get is deleted, never served.
    let form = call(
        app,
        &leaver,
        Method::POST,
        "/v1/profiles/me/avatar",
        Some(json!({"content_type": "image/png", "size": PNG.len()})),
    )
    .await;
    if form.status == StatusCode::CREATED {
        assert!(app.upload(&form.body["upload"], PNG).await.is_success());
        let key = form.body["key"].as_str().unwrap().to_owned();
        let s3 = aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(&app.aws().await)
                .force_path_style(true)
                .build(),
        );
        let bucket = app.stack.bucket_name("MediaBucket");
        eventually("the orphan avatar's deletion", WAIT, || async {
            s3.head_object()
                .bucket(&bucket)
                .key(&key)
                .send()
                .await
                .is_err()
                .then_some(())
        })
        .await;
    } else {
        assert!(form.status.is_client_error(), "{:?}", form.body);
    }
    // AND nothing of it is stored: no like, no comment like, no follow, no block
    assert_eq!(like_count(app, &cat, &cats).await, 0);
    assert!(!comment_liked(app, &cats_comment, &leaver).await);
    assert_eq!(edge_state(app, &leaver, &cat).await, "none");
    assert!(!blocks(app, &leaver, &cat).await);
    let listed = call(
        app,
        &cat,
        Method::GET,
        &format!("/v1/posts/{hosts}/comments"),
        None,
    )
    .await;
    let cats_listed = listed.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == cats_comment.as_str())
        .cloned()
        .unwrap();
    assert_eq!(cats_listed["like_count"], 0, "{cats_listed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_answers_a_missing_account_as_a_wrong_password() {
    let app = &TestApp::shared().await;
    let alice = app.user(&TestApp::unique("alice")).await;
    let missing = TestApp::unique("nobody");
    // WHEN logging in as alice with a wrong password, and as accounts that do not exist
    // (by name and by email)
    let wrong = app.login(&alice.username, "not her password at all").await;
    let wrong_email = app
        .login(
            &format!("{}@example.com", alice.username),
            "not her password at all",
        )
        .await;
    let nobody = app.login(&missing, "not her password at all").await;
    let no_email = app
        .login(&format!("{missing}@example.com"), "not her password at all")
        .await;
    // THEN every answer is the same 401: status, content type, code, title and detail
    let shape = |a: &Answer| {
        (
            a.status,
            a.headers.get("content-type").cloned(),
            a.body["code"].clone(),
            a.body["title"].clone(),
            a.body["detail"].clone(),
            a.body["field"].clone(),
        )
    };
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED, "{:?}", wrong.body);
    for other in [&wrong_email, &nobody, &no_email] {
        assert_eq!(shape(other), shape(&wrong), "{:?}", other.body);
    }
    // AND the same keys: nothing extra tells them apart
    let keys = |a: &Answer| {
        let mut k: Vec<String> = a.body.as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    };
    assert_eq!(keys(&nobody), keys(&wrong));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_comment_edit_and_a_username_refuse_bidi_overrides_too() {
    let app = &TestApp::shared().await;
    let mallory = app.user(&TestApp::unique("mal")).await;
    let post = app.published_post(&mallory).await;
    until(
        app,
        &mallory,
        Method::GET,
        &format!("/v1/posts/{post}/comments"),
        StatusCode::OK,
    )
    .await;
    let id = comment(app, &mallory, &post, "a fine comment").await;
    // WHEN mallory edits it to hide a reversed file name, or an isolate, or a BOM
    let path = format!("/v1/comments/{id}");
    for text in [
        "see \u{202E}fdp.exe",
        "a\u{2066}b\u{2069}",
        "\u{FEFF}x",
        "#a\u{200B}b",
    ] {
        let edit = call(
            app,
            &mallory,
            Method::PATCH,
            &path,
            Some(json!({"text": text})),
        )
        .await;
        // THEN it is a 400 naming `text`
        assert_eq!(
            problem(&edit),
            (StatusCode::BAD_REQUEST, Some("invalid_input"), Some("text")),
            "{text:?}"
        );
    }
    // AND the comment is as it was, and no CommentEdited went out
    let listed = call(
        app,
        &mallory,
        Method::GET,
        &format!("/v1/posts/{post}/comments"),
        None,
    )
    .await;
    assert_eq!(
        listed.body["items"][0]["text"], "a fine comment",
        "{:?}",
        listed.body
    );
    let events = app.events_keyed("shutter.comments", &post, 1).await;
    assert!(
        events.iter().all(|e| e["type"] != "CommentEdited"),
        "{events:?}"
    );
    // AND a username with a right-to-left override is refused before anything is made
    let name = format!("adm\u{202E}{}", TestApp::unique("n"));
    let registered = app
        .call(
            Method::POST,
            "/v1/auth/register",
            None,
            Some(json!({"username": name, "email": format!("{}@example.com", TestApp::unique("bidi")), "password": PASSWORD})),
        )
        .await;
    assert_eq!(
        problem(&registered),
        (
            StatusCode::BAD_REQUEST,
            Some("invalid_input"),
            Some("username")
        )
    );
}
