//! The comments service's user stories through the devstack: the gateway and its
//! authorizer, the comment functions, the writes queue and `comments-writer`, the outbox
//! to Kafka, the directory consumer that tells the comments service which posts exist, and
//! the posts service counting the comments from their events.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test, with its location

use std::collections::BTreeSet;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use shutter_e2e::{PASSWORD, TestApp, User, eventually};

const WAIT: Duration = Duration::from_secs(90);
const FANS: usize = 8;

fn comments_path(post: &str) -> String {
    format!("/v1/posts/{post}/comments")
}

/// One page of a post's comments.
async fn page(app: &TestApp, user: &User, post: &str, query: &str) -> Value {
    let answer = app
        .call(
            Method::GET,
            &format!("{}?{query}", comments_path(post)),
            Some(&user.access_token),
            None,
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.body);
    answer.body
}

/// Every comment of `post`, as `user` sees them.
async fn all_comments(app: &TestApp, user: &User, post: &str) -> Vec<Value> {
    page(app, user, post, "limit=100").await["items"]
        .as_array()
        .unwrap()
        .clone()
}

fn texts(comments: &[Value]) -> Vec<String> {
    comments
        .iter()
        .map(|c| c["text"].as_str().unwrap().to_owned())
        .collect()
}

/// Waits until the comments of `post` read `expected` (text, in order).
async fn until_listed(app: &TestApp, user: &User, post: &str, expected: &[&str]) -> Vec<Value> {
    eventually(&format!("comments {expected:?}"), WAIT, || async {
        let comments = all_comments(app, user, post).await;
        (texts(&comments) == expected).then_some(comments)
    })
    .await
}

async fn comment(
    app: &TestApp,
    user: &User,
    post: &str,
    text: &str,
    reply_to: Option<&str>,
) -> Value {
    let answer = app
        .call(
            Method::POST,
            &comments_path(post),
            Some(&user.access_token),
            Some(json!({"text": text, "reply_to": reply_to})),
        )
        .await;
    assert_eq!(answer.status, StatusCode::ACCEPTED, "{:?}", answer.body);
    answer.body
}

/// Waits until the posts service counts `expected` comments on `post`.
async fn until_counted(app: &TestApp, user: &User, post: &str, expected: u64) {
    let path = format!("/v1/posts/{post}");
    eventually(&format!("comment_count {expected}"), WAIT, || async {
        let answer = app
            .call(Method::GET, &path, Some(&user.access_token), None)
            .await;
        (answer.body["comment_count"].as_u64() == Some(expected)).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn comments_replies_edits_likes_and_deletes() {
    let app = &TestApp::shared().await;
    let ann = app.user(&TestApp::unique("ann")).await;
    let bob = app.user(&TestApp::unique("bob")).await;
    let carol = app.user(&TestApp::unique("carol")).await;
    let post = app.published_post(&ann).await;

    // The comments service learns of the post from its event.
    eventually("the comments service to know the post", WAIT, || async {
        let answer = app
            .call(
                Method::GET,
                &comments_path(&post),
                Some(&bob.access_token),
                None,
            )
            .await;
        assert!(
            matches!(answer.status, StatusCode::OK | StatusCode::NOT_FOUND),
            "{answer:?}"
        );
        (answer.status == StatusCode::OK).then_some(())
    })
    .await;

    // Bad input is refused and names the field; nothing is queued.
    for (body, field) in [
        (json!({"text": ""}), "text"),
        (json!({"text": "x".repeat(2_201)}), "text"),
        (json!({"text": "bell\u{7}"}), "text"),
        (json!({"text": "hi", "reply_to": "not-an-id"}), "reply_to"),
        (
            json!({"text": "hi", "reply_to": shutter_core::new_id()}),
            "reply_to",
        ),
    ] {
        let answer = app
            .call(
                Method::POST,
                &comments_path(&post),
                Some(&bob.access_token),
                Some(body),
            )
            .await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{:?}", answer.body);
        assert_eq!(answer.body["field"], field, "{:?}", answer.body);
    }
    let unknown = app
        .call(
            Method::POST,
            &comments_path(&shutter_core::new_id()),
            Some(&bob.access_token),
            Some(json!({"text": "hello?"})),
        )
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);

    // A comment is accepted as it will be stored, then listed.
    let first_text = format!("First! #Sunset for @{}", ann.username);
    let first = comment(app, &bob, &post, &first_text, None).await;
    assert_eq!(first["author"]["username"], bob.username.as_str());
    assert_eq!(first["hashtags"], json!(["sunset"]));
    assert_eq!(first["mentions"][0]["username"], ann.username.as_str());
    assert_eq!(
        (first["like_count"].as_u64(), first["liked_by_me"].as_bool()),
        (Some(0), Some(false))
    );
    let first_id = first["id"].as_str().unwrap().to_owned();
    let listed = until_listed(app, &carol, &post, &[&first_text]).await;
    assert_eq!(listed[0], first);

    // Replies sit under their parent; a reply to a reply joins the top-level thread.
    let reply = comment(app, &carol, &post, "agreed", Some(&first_id)).await;
    assert_eq!(reply["reply_to"], first_id.as_str());
    let nested = comment(app, &ann, &post, "thanks both", reply["id"].as_str()).await;
    assert_eq!(nested["reply_to"], first_id.as_str());
    let second = comment(app, &bob, &post, "second thought", None).await;
    let third = comment(app, &carol, &post, "third", None).await;
    let order = [
        first_text.as_str(),
        "agreed",
        "thanks both",
        "second thought",
        "third",
    ];
    until_listed(app, &ann, &post, &order).await;

    // The author edits; others may neither edit nor delete.
    let edit = app
        .call(
            Method::PATCH,
            &format!("/v1/comments/{first_id}"),
            Some(&bob.access_token),
            Some(json!({"text": "First! #GoldenHour"})),
        )
        .await;
    assert_eq!(edit.status, StatusCode::OK, "{:?}", edit.body);
    assert_eq!(edit.body["hashtags"], json!(["goldenhour"]));
    let not_yours = app
        .call(
            Method::PATCH,
            &format!("/v1/comments/{first_id}"),
            Some(&carol.access_token),
            Some(json!({"text": "pwned"})),
        )
        .await;
    assert_eq!(
        not_yours.status,
        StatusCode::FORBIDDEN,
        "{:?}",
        not_yours.body
    );
    let not_yours = app
        .call(
            Method::DELETE,
            &format!("/v1/comments/{first_id}"),
            Some(&carol.access_token),
            None,
        )
        .await;
    assert_eq!(
        not_yours.status,
        StatusCode::FORBIDDEN,
        "{:?}",
        not_yours.body
    );

    // Liking twice counts once.
    let like_path = format!("/v1/comments/{first_id}/like");
    for _ in 0..2 {
        let liked = app
            .call(Method::POST, &like_path, Some(&carol.access_token), None)
            .await;
        assert_eq!(liked.status, StatusCode::NO_CONTENT, "{:?}", liked.body);
    }
    let seen_by_carol = all_comments(app, &carol, &post).await;
    assert_eq!(seen_by_carol[0]["text"], "First! #GoldenHour");
    assert_eq!(seen_by_carol[0]["like_count"], 1);
    assert_eq!(seen_by_carol[0]["liked_by_me"], true);
    assert_eq!(
        all_comments(app, &ann, &post).await[0]["liked_by_me"],
        false
    );

    // Many users liking one comment at once, each twice, count once each.
    let fans: Vec<User> = futures::future::join_all(
        (0..FANS).map(|i| async move { app.user(&TestApp::unique(&format!("fan{i}"))).await }),
    )
    .await;
    let second_like = format!("/v1/comments/{}/like", second["id"].as_str().unwrap());
    let answers = futures::future::join_all(fans.iter().flat_map(|fan| {
        let path = second_like.clone();
        (0..2).map(move |_| {
            let path = path.clone();
            async move {
                app.call(Method::POST, &path, Some(&fan.access_token), None)
                    .await
            }
        })
    }))
    .await;
    for answer in &answers {
        assert_eq!(answer.status, StatusCode::NO_CONTENT, "{:?}", answer.body);
    }
    let seen = all_comments(app, &ann, &post).await;
    assert_eq!(seen[3]["id"], second["id"]);
    assert_eq!(seen[3]["like_count"], FANS);

    // Pages of 2 give every comment once, in order; a tampered cursor is refused.
    let mut paged = Vec::new();
    let mut query = "limit=2".to_owned();
    loop {
        let body = page(app, &ann, &post, &query).await;
        let items = body["items"].as_array().unwrap();
        assert!(items.len() <= 2);
        paged.extend(items.iter().map(|c| c["id"].as_str().unwrap().to_owned()));
        match body["next_cursor"].as_str() {
            Some(cursor) => {
                let tampered = app
                    .call(
                        Method::GET,
                        &format!("{}?limit=2&cursor={cursor}x", comments_path(&post)),
                        Some(&ann.access_token),
                        None,
                    )
                    .await;
                assert_eq!(tampered.status, StatusCode::BAD_REQUEST);
                assert_eq!(tampered.body["field"], "cursor");
                query = format!("limit=2&cursor={cursor}");
            }
            None => break,
        }
    }
    let ids: Vec<String> = all_comments(app, &ann, &post)
        .await
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(paged, ids);
    until_counted(app, &ann, &post, 5).await;

    // The post's author deletes bob's second comment.
    let deleted = app
        .call(
            Method::DELETE,
            &format!("/v1/comments/{}", second["id"].as_str().unwrap()),
            Some(&ann.access_token),
            None,
        )
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{:?}", deleted.body);

    // Bob deletes his first comment and its replies go with it.
    let deleted = app
        .call(
            Method::DELETE,
            &format!("/v1/comments/{first_id}"),
            Some(&bob.access_token),
            None,
        )
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{:?}", deleted.body);
    let left = all_comments(app, &bob, &post).await;
    assert_eq!(texts(&left), vec!["third"]);
    assert_eq!(left[0]["id"], third["id"]);
    until_counted(app, &ann, &post, 1).await;

    // A deleted account takes its comment likes and its comments with it.
    let third_id = third["id"].as_str().unwrap();
    let liked = app
        .call(
            Method::POST,
            &format!("/v1/comments/{third_id}/like"),
            Some(&bob.access_token),
            None,
        )
        .await;
    assert_eq!(liked.status, StatusCode::NO_CONTENT, "{:?}", liked.body);
    assert_eq!(all_comments(app, &ann, &post).await[0]["like_count"], 1);
    delete_account(app, &bob).await;
    eventually("bob's like to be taken back", WAIT, || async {
        let comments = all_comments(app, &ann, &post).await;
        (comments[0]["like_count"] == 0).then_some(())
    })
    .await;
    delete_account(app, &carol).await;
    until_listed(app, &ann, &post, &[]).await;
    until_counted(app, &ann, &post, 0).await;

    // Each change went to Kafka exactly once: every comment was added once and deleted
    // once (replies and the deleted accounts' comments included), and each like counted.
    let events = comment_events(app, &post, 14 + FANS).await;
    let of = |kind: &str| -> Vec<&Value> { events.iter().filter(|e| e["type"] == kind).collect() };
    let ids = |kind: &str| -> BTreeSet<String> {
        of(kind)
            .iter()
            .map(|e| e["data"]["comment_id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(of("CommentAdded").len(), 5, "{events:#?}");
    assert_eq!(of("CommentDeleted").len(), 5, "{events:#?}");
    assert_eq!(ids("CommentAdded"), ids("CommentDeleted"));
    assert_eq!(of("CommentEdited").len(), 1);
    assert_eq!(of("CommentLikeAdded").len(), 2 + FANS);
    assert_eq!(of("CommentLikeRemoved").len(), 1);
    assert_eq!(events.len(), 14 + FANS, "{events:#?}");
    let added = of("CommentAdded")
        .into_iter()
        .find(|e| e["data"]["comment_id"] == first_id.as_str())
        .unwrap();
    assert_eq!(added["aggregate_id"], post.as_str());
    assert_eq!(added["data"]["post_id"], post.as_str());
    assert_eq!(added["data"]["author_id"], bob.id.as_str());
    assert_eq!(added["data"]["hashtags"], json!(["sunset"]));
    let by_owner = of("CommentDeleted")
        .into_iter()
        .find(|e| e["data"]["comment_id"] == second["id"])
        .unwrap();
    assert_eq!(by_owner["data"]["deleted_by"], ann.id.as_str());
}

async fn comment_events(app: &TestApp, post: &str, expected: usize) -> Vec<Value> {
    app.events_keyed("shutter.comments", post, expected).await
}

async fn delete_account(app: &TestApp, user: &User) {
    let answer = app
        .call(
            Method::DELETE,
            "/v1/users/me",
            Some(&user.access_token),
            Some(json!({"password": PASSWORD})),
        )
        .await;
    assert_eq!(answer.status, StatusCode::NO_CONTENT, "{:?}", answer.body);
}

/// The comments table's items whose `pk` is `pk`.
async fn items_under(app: &TestApp, pk: &str) -> usize {
    let aws = app.aws().await;
    let ddb = aws_sdk_dynamodb::Client::new(&aws);
    ddb.query()
        .table_name(app.stack.table_name("CommentsTable"))
        .key_condition_expression("pk = :pk")
        .expression_attribute_values(
            ":pk",
            aws_sdk_dynamodb::types::AttributeValue::S(pk.to_owned()),
        )
        .send()
        .await
        .expect("query the comments table")
        .items
        .unwrap_or_default()
        .len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_posts_comments_are_erased() {
    let app = &TestApp::shared().await;
    let dan = app.user(&TestApp::unique("dan")).await;
    let erin = app.user(&TestApp::unique("erin")).await;
    let post = app.published_post(&dan).await;
    eventually("the comments service to know the post", WAIT, || async {
        let answer = app
            .call(
                Method::GET,
                &comments_path(&post),
                Some(&erin.access_token),
                None,
            )
            .await;
        (answer.status == StatusCode::OK).then_some(())
    })
    .await;
    let parent = comment(app, &erin, &post, "nice", None).await;
    // A comment is stored moments after it is accepted: reply once it is there.
    until_listed(app, &erin, &post, &["nice"]).await;
    let reply = comment(app, &dan, &post, "thanks", parent["id"].as_str()).await;
    until_listed(app, &erin, &post, &["nice", "thanks"]).await;
    let deleted = app
        .call(
            Method::DELETE,
            &format!("/v1/posts/{post}"),
            Some(&dan.access_token),
            None,
        )
        .await;
    assert!(deleted.status.is_success(), "{:?}", deleted.body);
    let post_pk = format!("POST#{post}");
    eventually("the post's comments to be erased", WAIT, || async {
        (items_under(app, &post_pk).await == 0).then_some(())
    })
    .await;
    for c in [&parent, &reply] {
        let lookup = format!("COMMENT#{}", c["id"].as_str().unwrap());
        assert_eq!(items_under(app, &lookup).await, 0, "{lookup}");
    }
    let answer = app
        .call(
            Method::GET,
            &comments_path(&post),
            Some(&erin.access_token),
            None,
        )
        .await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
}
