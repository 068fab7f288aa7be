//! Account export, through the devstack: a user with posts, comments, likes, follows and
//! a block asks for an export, is told to wait while it runs, and downloads one NDJSON
//! archive that holds every one of them. Nobody else gets their link, and a deleted
//! account's token can neither start nor read an export. The devstack's work queues take
//! two items a chunk (`WorkPageSize` 2), so the worker pages through every section.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test, with its location

use std::collections::HashSet;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use shutter_e2e::{Answer, PASSWORD, TestApp, User, eventually};

const WAIT: Duration = Duration::from_secs(120);
const EXPORT: &str = "/v1/users/me/export";

/// A devstack whose work queues' chunks handle two items each.
async fn small_pages() -> TestApp {
    let mut config = devstack::DevstackConfig::for_tests();
    config
        .parameters
        .insert("WorkPageSize".to_owned(), "2".to_owned());
    config
        .parameters
        .insert("LikesDirectoryCacheMillis".to_owned(), "0".to_owned());
    TestApp::spawn_with(config).await
}

async fn export(app: &TestApp, user: &User, method: Method) -> Answer {
    app.call(method, EXPORT, Some(&user.access_token), None)
        .await
}

/// `who` does `method path` once the service behind it knows what it names (it learns
/// of users and posts from their events): until it answers `ok`.
async fn once_known(
    app: &TestApp,
    who: &User,
    method: Method,
    path: &str,
    body: Option<Value>,
    ok: StatusCode,
) -> Value {
    eventually(&format!("{method} {path}"), WAIT, || async {
        let answer = app
            .call(method.clone(), path, Some(&who.access_token), body.clone())
            .await;
        (answer.status == ok).then_some(answer.body)
    })
    .await
}

/// The archive's lines, downloaded from `url` with no token.
async fn download(app: &TestApp, url: &str) -> Vec<Value> {
    let resp = app.http.get(url).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK, "the download link works");
    let text = resp.text().await.unwrap();
    text.lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

fn of_type<'a>(lines: &'a [Value], kind: &str) -> Vec<&'a Value> {
    lines.iter().filter(|l| l["type"] == kind).collect()
}

fn ids<'a>(lines: &[&'a Value], field: &str) -> HashSet<&'a str> {
    lines.iter().filter_map(|l| l[field].as_str()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_holds_everything_the_account_owns_and_only_its_owner_gets_it() {
    let app = &small_pages().await;
    let owner = app.user(&TestApp::unique("own")).await;
    let friend = app.user(&TestApp::unique("fri")).await;
    let fan = app.user(&TestApp::unique("fan")).await;
    let pest = app.user(&TestApp::unique("pes")).await;
    let stranger = app.user(&TestApp::unique("str")).await;

    // Three posts of the owner's (two chunks of posts), one of the friend's.
    let mut posts = Vec::new();
    for _ in 0..3 {
        posts.push(app.published_post(&owner).await);
    }
    let friends_post = app.published_post(&friend).await;

    // Three comments (two on the friend's post, one on the owner's), likes of two posts.
    let comments = [
        (friends_post.as_str(), "first comment of the export"),
        (friends_post.as_str(), "second comment of the export"),
        (posts[0].as_str(), "third comment of the export"),
    ];
    for (post, text) in comments {
        once_known(
            app,
            &owner,
            Method::POST,
            &format!("/v1/posts/{post}/comments"),
            Some(json!({"text": text})),
            StatusCode::ACCEPTED,
        )
        .await;
    }
    for post in [friends_post.as_str(), posts[1].as_str()] {
        once_known(
            app,
            &owner,
            Method::PUT,
            &format!("/v1/posts/{post}/like"),
            None,
            StatusCode::OK,
        )
        .await;
    }
    // Follows both ways, and a block.
    once_known(
        app,
        &owner,
        Method::PUT,
        &format!("/v1/users/{}/follow", friend.username),
        None,
        StatusCode::OK,
    )
    .await;
    once_known(
        app,
        &fan,
        Method::PUT,
        &format!("/v1/users/{}/follow", owner.username),
        None,
        StatusCode::OK,
    )
    .await;
    once_known(
        app,
        &friend,
        Method::PUT,
        &format!("/v1/users/{}/follow", owner.username),
        None,
        StatusCode::OK,
    )
    .await;
    once_known(
        app,
        &owner,
        Method::PUT,
        &format!("/v1/users/{}/block", pest.username),
        None,
        StatusCode::OK,
    )
    .await;

    // The comments are written moments after they were accepted.
    for (post, expected) in [(friends_post.as_str(), 2), (posts[0].as_str(), 1)] {
        let path = format!("/v1/posts/{post}/comments");
        eventually("the comments to be stored", WAIT, || async {
            let list = app
                .call(Method::GET, &path, Some(&owner.access_token), None)
                .await;
            (list.body["items"].as_array().map_or(0, Vec::len) >= expected).then_some(())
        })
        .await;
    }

    // Nobody has an export until they ask.
    assert_eq!(
        export(app, &owner, Method::GET).await.status,
        StatusCode::NOT_FOUND
    );

    // Ask: 202, pending. Asking again while it is not finished: 409 export_in_progress.
    let started = export(app, &owner, Method::POST).await;
    assert_eq!(started.status, StatusCode::ACCEPTED, "{:?}", started.body);
    assert_eq!(started.body["state"], "pending");
    assert!(started.body["download_url"].is_null());
    let export_id = started.body["export_id"].as_str().unwrap().to_owned();
    let again = export(app, &owner, Method::POST).await;
    if again.status == StatusCode::CONFLICT {
        assert_eq!(again.body["code"], "export_in_progress", "{:?}", again.body);
    } else {
        // It finished already (the devstack is quick): the cool-down refuses it then.
        assert_eq!(again.body["code"], "export_cooldown", "{:?}", again.body);
    }

    // It runs, then is ready with a link.
    let ready = eventually("the export to be ready", WAIT, || async {
        let answer = export(app, &owner, Method::GET).await;
        assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.body);
        assert_ne!(answer.body["state"], "failed", "{:?}", answer.body);
        (answer.body["state"] == "ready").then_some(answer.body)
    })
    .await;
    assert_eq!(ready["export_id"], export_id.as_str());
    assert!(ready["completed_at"].is_string());
    assert!(ready["download_expires_at"].is_string());
    let url = ready["download_url"].as_str().unwrap();

    let lines = download(app, url).await;
    let header = &lines[0];
    assert_eq!(header["type"], "export");
    assert_eq!(header["export_id"], export_id.as_str());
    let account = of_type(&lines, "account");
    assert_eq!(account.len(), 1);
    assert_eq!(account[0]["user_id"], owner.id.as_str());
    assert_eq!(account[0]["username"], owner.username.as_str());
    assert_eq!(
        account[0]["email"],
        format!("{}@example.com", owner.username)
    );
    assert!(account[0].get("password_hash").is_none());
    assert_eq!(of_type(&lines, "profile").len(), 1);

    // Every post, each with a link to its media that works.
    let exported_posts = of_type(&lines, "post");
    assert_eq!(
        ids(&exported_posts, "id"),
        posts.iter().map(String::as_str).collect()
    );
    let media_url = exported_posts[0]["media"][0]["url"].as_str().unwrap();
    let media = app.http.get(media_url).send().await.unwrap();
    assert_eq!(media.status(), StatusCode::OK, "the media link works");

    let texts: HashSet<&str> = of_type(&lines, "comment")
        .iter()
        .filter_map(|c| c["text"].as_str())
        .collect();
    assert_eq!(texts, comments.iter().map(|(_, t)| *t).collect());
    assert_eq!(
        ids(&of_type(&lines, "like"), "post_id"),
        HashSet::from([friends_post.as_str(), posts[1].as_str()])
    );
    assert_eq!(
        ids(&of_type(&lines, "following"), "user_id"),
        HashSet::from([friend.id.as_str()])
    );
    assert_eq!(
        ids(&of_type(&lines, "follower"), "user_id"),
        HashSet::from([fan.id.as_str(), friend.id.as_str()])
    );
    assert_eq!(
        ids(&of_type(&lines, "block"), "user_id"),
        HashSet::from([pest.id.as_str()])
    );
    // Nothing of anyone else's: the friend's post is only there as a liked post.
    assert!(!ids(&exported_posts, "id").contains(friends_post.as_str()));

    // Another user's token reaches only their own (absent) export, never this link.
    let other = export(app, &stranger, Method::GET).await;
    assert_eq!(other.status, StatusCode::NOT_FOUND, "{:?}", other.body);
    assert!(!other.body.to_string().contains(&export_id));

    // A deleted account's token, still valid, can neither read nor start an export.
    let deleted = app
        .call(
            Method::DELETE,
            "/v1/users/me",
            Some(&owner.access_token),
            Some(json!({"password": PASSWORD})),
        )
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{:?}", deleted.body);
    let read = export(app, &owner, Method::GET).await;
    assert_eq!(read.status, StatusCode::NOT_FOUND, "{:?}", read.body);
    assert!(read.body["download_url"].is_null());
    let start = export(app, &owner, Method::POST).await;
    assert_eq!(start.status, StatusCode::NOT_FOUND, "{:?}", start.body);
    assert!(start.body["export_id"].is_null());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_account_cannot_start_an_export() {
    let app = &TestApp::shared().await;
    let gone = app.user(&TestApp::unique("gon")).await;
    let deleted = app
        .call(
            Method::DELETE,
            "/v1/users/me",
            Some(&gone.access_token),
            Some(json!({"password": PASSWORD})),
        )
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{:?}", deleted.body);
    let start = export(app, &gone, Method::POST).await;
    assert_eq!(start.status, StatusCode::NOT_FOUND, "{:?}", start.body);
    let read = export(app, &gone, Method::GET).await;
    assert_eq!(read.status, StatusCode::NOT_FOUND, "{:?}", read.body);
}
