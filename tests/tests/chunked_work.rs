//! Work that grows with data leaves the per-record path: fan-outs and account-deletion
//! cascades go through each service's work queue a page at a time. These stories run on a
//! devstack of their own whose `WorkPageSize` is 2, so a handful of users takes several
//! chunks (each chunk one SQS message, its continuation sent before it is acknowledged),
//! and check that the end state is exactly what one pass over everything would leave:
//! every follower has the post once, an ex-follower never gets it, and a deleted account's
//! follows, likes, comments, comment likes, posts and timeline go with every counter
//! moved exactly once (the events on the topics are counted too).

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test, with its location

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use shutter_e2e::{PASSWORD, TestApp, User, eventually};

const WAIT: Duration = Duration::from_secs(120);

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

async fn call(
    app: &TestApp,
    user: &User,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> Value {
    let answer = app.call(method, path, Some(&user.access_token), body).await;
    assert!(answer.status.is_success(), "{path}: {answer:?}");
    answer.body
}

/// `who` follows `whom` once the follows service knows `whom`.
async fn follow(app: &TestApp, who: &User, whom: &User) {
    let path = format!("/v1/users/{}/follow", whom.username);
    eventually("the follows service to know the user", WAIT, || async {
        let answer = app
            .call(Method::PUT, &path, Some(&who.access_token), None)
            .await;
        (answer.status == StatusCode::OK && answer.body["state"] == "following").then_some(())
    })
    .await;
}

/// `who` likes `post` once the likes service knows it.
async fn like(app: &TestApp, who: &User, post: &str) {
    let path = format!("/v1/posts/{post}/like");
    eventually("the likes service to know the post", WAIT, || async {
        let answer = app
            .call(Method::PUT, &path, Some(&who.access_token), None)
            .await;
        (answer.status == StatusCode::OK).then_some(())
    })
    .await;
}

/// `who` comments on `post` once the comments service knows it; the comment's id.
async fn comment(app: &TestApp, who: &User, post: &str, text: &str) -> String {
    let path = format!("/v1/posts/{post}/comments");
    eventually("the comments service to know the post", WAIT, || async {
        let answer = app
            .call(
                Method::POST,
                &path,
                Some(&who.access_token),
                Some(json!({"text": text})),
            )
            .await;
        (answer.status == StatusCode::ACCEPTED)
            .then(|| answer.body["id"].as_str().unwrap().to_owned())
    })
    .await
}

/// Sends `method` `path` as `who` until it succeeds (what it names exists by then).
async fn until_ok(app: &TestApp, who: &User, method: Method, path: &str) {
    let mut last = None;
    let done = tokio::time::timeout(WAIT, async {
        loop {
            let answer = app
                .call(method.clone(), path, Some(&who.access_token), None)
                .await;
            if answer.status.is_success() {
                return;
            }
            last = Some(answer);
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await;
    assert!(done.is_ok(), "{method} {path}: {last:?}");
}

/// Every post id of the viewer's feed, newest first.
async fn feed(app: &TestApp, viewer: &User) -> Vec<String> {
    let page = call(app, viewer, Method::GET, "/v1/feed?limit=100", None).await;
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_owned())
        .collect()
}

async fn feed_becomes(app: &TestApp, viewer: &User, expected: &[&String]) {
    let expected: Vec<String> = expected.iter().map(|s| (*s).clone()).collect();
    eventually(
        &format!("{}'s feed to be {expected:?}", viewer.username),
        WAIT,
        || async { (feed(app, viewer).await == expected).then_some(()) },
    )
    .await;
}

/// Waits until `path` (as `viewer` reads it) has `field` equal to `expected`.
async fn until_field(app: &TestApp, viewer: &User, path: &str, field: &str, expected: Value) {
    eventually(&format!("{path} {field} = {expected}"), WAIT, || async {
        let answer = app
            .call(Method::GET, path, Some(&viewer.access_token), None)
            .await;
        (answer.status == StatusCode::OK && answer.body[field] == expected).then_some(())
    })
    .await;
}

/// The like count of each comment on `post`, by comment id.
async fn comment_likes(app: &TestApp, viewer: &User, post: &str) -> Vec<(String, Value)> {
    let page = call(
        app,
        viewer,
        Method::GET,
        &format!("/v1/posts/{post}/comments?limit=100"),
        None,
    )
    .await;
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["id"].as_str().unwrap().to_owned(),
                c["like_count"].clone(),
            )
        })
        .collect()
}

/// The types of the events on `topic` keyed by `key`, once `expected` arrived and the
/// topic stayed quiet (so an extra one would show).
async fn event_types(app: &TestApp, topic: &str, key: &str, expected: usize) -> Vec<String> {
    let mut types: Vec<String> = app
        .events_keyed(topic, key, expected)
        .await
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_owned())
        .collect();
    types.sort();
    types
}

/// The number of items under `pk` in the table `table` (a template resource).
async fn items_under(app: &TestApp, table: &str, pk: &str) -> usize {
    let aws = app.aws().await;
    aws_sdk_dynamodb::Client::new(&aws)
        .query()
        .table_name(app.stack.table_name(table))
        .key_condition_expression("pk = :pk")
        .expression_attribute_values(
            ":pk",
            aws_sdk_dynamodb::types::AttributeValue::S(pk.to_owned()),
        )
        .send()
        .await
        .expect("query")
        .items
        .unwrap_or_default()
        .len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_post_reaches_every_follower_a_page_at_a_time_and_never_an_ex_follower() {
    let app = small_pages().await;
    let ann = app.user(&TestApp::unique("fan.ann")).await;
    let mut fans = Vec::new();
    for i in 0..5 {
        fans.push(app.user(&TestApp::unique(&format!("fan.f{i}"))).await);
    }
    for fan in &fans {
        follow(&app, fan, &ann).await;
    }

    // ann's post reaches her five followers: three chunks of followers.
    let p1 = app.published_post(&ann).await;
    for fan in &fans {
        feed_becomes(&app, fan, &[&p1]).await;
    }

    // The first unfollows: her post leaves his feed, and her next post never reaches it.
    let quitter = &fans[0];
    call(
        &app,
        quitter,
        Method::DELETE,
        &format!("/v1/users/{}/follow", ann.username),
        None,
    )
    .await;
    feed_becomes(&app, quitter, &[]).await;
    let p2 = app.published_post(&ann).await;
    for fan in &fans[1..] {
        feed_becomes(&app, fan, &[&p2, &p1]).await;
    }
    assert!(feed(&app, quitter).await.is_empty());

    // A deleted post leaves every follower's feed, a page of followers at a time.
    call(&app, &ann, Method::DELETE, &format!("/v1/posts/{p1}"), None).await;
    for fan in &fans[1..] {
        feed_becomes(&app, fan, &[&p2]).await;
    }
    feed_becomes(&app, &ann, &[&p2]).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_account_takes_everything_of_its_own_with_every_counter_moved_once() {
    let app = small_pages().await;
    let gone = app.user(&TestApp::unique("gone")).await;
    let mut others = Vec::new();
    for name in ["ann", "bob", "cat"] {
        others.push(app.user(&TestApp::unique(name)).await);
    }
    // Each of the others has a post with a comment of their own on it; gone follows them
    // and they follow gone; gone likes each post, comments on it and likes its owner's
    // comment; gone has two posts of its own, in its followers' feeds.
    let mut posts = Vec::new();
    let mut own_comments = Vec::new();
    for other in &others {
        let post = app.published_post(other).await;
        own_comments.push(comment(&app, other, &post, "mine").await);
        posts.push(post);
        follow(&app, &gone, other).await;
        follow(&app, other, &gone).await;
    }
    for (post, own) in posts.iter().zip(&own_comments) {
        like(&app, &gone, post).await;
        comment(&app, &gone, post, "gone's").await;
        until_ok(
            &app,
            &gone,
            Method::POST,
            &format!("/v1/comments/{own}/like"),
        )
        .await;
    }
    let gones_posts = [
        app.published_post(&gone).await,
        app.published_post(&gone).await,
    ];
    for (post, other) in posts.iter().zip(&others) {
        let path = format!("/v1/posts/{post}");
        until_field(&app, other, &path, "like_count", json!(1)).await;
        until_field(&app, other, &path, "comment_count", json!(2)).await;
    }
    for other in &others {
        let path = format!("/v1/profiles/{}", other.username);
        until_field(&app, other, &path, "follower_count", json!(1)).await;
        until_field(&app, other, &path, "following_count", json!(1)).await;
        eventually("gone's posts in the feed", WAIT, || async {
            let ids = feed(&app, other).await;
            gones_posts.iter().all(|p| ids.contains(p)).then_some(())
        })
        .await;
    }

    // WHEN gone deletes the account
    let deleted = app
        .call(
            Method::DELETE,
            "/v1/users/me",
            Some(&gone.access_token),
            Some(json!({"password": PASSWORD})),
        )
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{:?}", deleted.body);

    // THEN every follow of it ended: the others' counts are back to zero
    let ann = &others[0];
    for other in &others {
        let path = format!("/v1/profiles/{}", other.username);
        until_field(&app, ann, &path, "follower_count", json!(0)).await;
        until_field(&app, ann, &path, "following_count", json!(0)).await;
    }
    // AND its likes, comments and comment likes are gone, each counted down once
    for ((post, own), other) in posts.iter().zip(&own_comments).zip(&others) {
        let path = format!("/v1/posts/{post}");
        until_field(&app, other, &path, "like_count", json!(0)).await;
        until_field(&app, other, &path, "comment_count", json!(1)).await;
        eventually("the comment like to be taken back", WAIT, || async {
            let likes = comment_likes(&app, other, post).await;
            (likes == [(own.clone(), json!(0))]).then_some(())
        })
        .await;
        assert_eq!(
            event_types(&app, "shutter.likes", post, 2).await,
            ["LikeAdded", "LikeRemoved"],
            "{post}"
        );
        assert_eq!(
            event_types(&app, "shutter.comments", post, 5).await,
            [
                "CommentAdded",
                "CommentAdded",
                "CommentDeleted",
                "CommentLikeAdded",
                "CommentLikeRemoved"
            ],
            "{post}"
        );
    }
    // AND its posts are deleted, and leave its followers' feeds
    for post in &gones_posts {
        let path = format!("/v1/posts/{post}");
        eventually("gone's post to go", WAIT, || async {
            let answer = app
                .call(Method::GET, &path, Some(&ann.access_token), None)
                .await;
            (answer.status == StatusCode::NOT_FOUND).then_some(())
        })
        .await;
    }
    for (post, other) in posts.iter().zip(&others) {
        feed_becomes(&app, other, &[post]).await;
    }
    // AND its own timeline is cleared
    let timeline = format!("TL#{}", gone.id);
    eventually("gone's timeline to be cleared", WAIT, || async {
        (items_under(&app, "FeedTable", &timeline).await == 0).then_some(())
    })
    .await;
    app.stop().await;
}
