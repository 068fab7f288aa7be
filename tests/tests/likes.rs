//! The likes service's user stories through the devstack: the gateway and its authorizer,
//! the like functions, the outbox to Kafka, and the directory consumer that tells the
//! likes service which posts exist and who may see them.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test, with its location

use std::collections::BTreeSet;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use shutter_e2e::{PASSWORD, TestApp, User, eventually};

const WAIT: Duration = Duration::from_secs(90);
const LIKERS: usize = 50;

fn like_path(post: &str) -> String {
    format!("/v1/posts/{post}/like")
}

/// Waits until the likes service knows the post (its directory consumer has read
/// `PostPublished`): the author's own like is then 200.
async fn like_once_visible(app: &TestApp, user: &User, post: &str) {
    eventually("the likes service to know the post", WAIT, || async {
        let answer = app
            .call(
                Method::PUT,
                &like_path(post),
                Some(&user.access_token),
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
}

/// Every liker of `post`, paging through `GET /v1/posts/{id}/likes` 7 at a time.
async fn likers(app: &TestApp, user: &User, post: &str) -> Vec<Value> {
    let mut items = Vec::new();
    let mut path = format!("/v1/posts/{post}/likes?limit=7");
    loop {
        let page = app
            .call(Method::GET, &path, Some(&user.access_token), None)
            .await;
        assert_eq!(page.status, StatusCode::OK, "{:?}", page.body);
        items.extend(page.body["items"].as_array().unwrap().iter().cloned());
        match page.body["next_cursor"].as_str() {
            Some(cursor) => path = format!("/v1/posts/{post}/likes?limit=7&cursor={cursor}"),
            None => return items,
        }
    }
}

async fn like_events(app: &TestApp, post: &str, expected: usize) -> Vec<Value> {
    app.events_keyed("shutter.likes", post, expected).await
}

/// `like_count` as the posts service counts it from the like events.
async fn like_count(app: &TestApp, user: &User, post: &str) -> Option<i64> {
    let answer = app
        .call(
            Method::GET,
            &format!("/v1/posts/{post}"),
            Some(&user.access_token),
            None,
        )
        .await;
    answer.body["like_count"].as_i64()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_users_like_a_post_twice_and_it_counts_fifty() {
    let app = &TestApp::shared().await;
    // GIVEN a published post and 50 users
    let author = app.user(&TestApp::unique("liked.author")).await;
    let post = app.published_post(&author).await;
    let users: Vec<User> = futures::future::join_all(
        (0..LIKERS)
            .map(|i| async move { app.user(&TestApp::unique(&format!("liker{i:02}"))).await }),
    )
    .await;
    like_once_visible(app, &users[0], &post).await;

    // WHEN each likes it twice, all at once
    let answers = futures::future::join_all(users.iter().flat_map(|u| {
        let path = like_path(&post);
        (0..2).map(move |_| {
            let path = path.clone();
            async move {
                app.call(Method::PUT, &path, Some(&u.access_token), None)
                    .await
            }
        })
    }))
    .await;

    // THEN every answer says liked, there are 50 likers and 50 LikeAdded events, and the
    // posts service counts 50
    for answer in &answers {
        assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.body);
        assert_eq!(answer.body, json!({"post_id": post, "liked": true}));
    }
    let listed = likers(app, &author, &post).await;
    let ids: BTreeSet<&str> = listed
        .iter()
        .map(|l| l["user_id"].as_str().unwrap())
        .collect();
    let expected: BTreeSet<&str> = users.iter().map(|u| u.id.as_str()).collect();
    assert_eq!(listed.len(), LIKERS, "one entry per liker");
    assert_eq!(ids, expected);
    let times: Vec<&str> = listed
        .iter()
        .map(|l| l["liked_at"].as_str().unwrap())
        .collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "newest first");
    let named = listed
        .iter()
        .find(|l| l["user_id"] == users[3].id.as_str())
        .unwrap();
    assert_eq!(named["username"], users[3].username.as_str());
    let events = like_events(app, &post, LIKERS).await;
    assert_eq!(events.len(), LIKERS, "one LikeAdded per like: {events:#?}");
    for e in &events {
        assert_eq!(e["type"], "LikeAdded");
        assert_eq!(e["data"]["seq"], 1);
        assert_eq!(e["data"]["post_author_id"], author.id.as_str());
        assert_eq!(e["data"]["post_id"], post.as_str());
    }
    eventually("like_count 50", WAIT, || async {
        (like_count(app, &author, &post).await == Some(LIKERS as i64)).then_some(())
    })
    .await;

    // WHEN 10 of them unlike it (twice each)
    let answers = futures::future::join_all(users[..10].iter().flat_map(|u| {
        let path = like_path(&post);
        (0..2).map(move |_| {
            let path = path.clone();
            async move {
                app.call(Method::DELETE, &path, Some(&u.access_token), None)
                    .await
            }
        })
    }))
    .await;
    for answer in &answers {
        assert_eq!(answer.body, json!({"post_id": post, "liked": false}));
    }

    // THEN 40 likers are left, and exactly 10 LikeRemoved events follow
    assert_eq!(likers(app, &author, &post).await.len(), LIKERS - 10);
    let events = like_events(app, &post, LIKERS + 10).await;
    let removed: Vec<&Value> = events
        .iter()
        .filter(|e| e["type"] == "LikeRemoved")
        .collect();
    assert_eq!(removed.len(), 10);
    assert!(removed.iter().all(|e| e["data"]["seq"] == 2));
    eventually("like_count 40", WAIT, || async {
        (like_count(app, &author, &post).await == Some((LIKERS - 10) as i64)).then_some(())
    })
    .await;

    // WHEN a liker deletes their account
    let gone = &users[LIKERS - 1];
    let deleted = app
        .call(
            Method::DELETE,
            "/v1/users/me",
            Some(&gone.access_token),
            Some(json!({"password": PASSWORD})),
        )
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{:?}", deleted.body);

    // THEN their like goes, with a LikeRemoved so the count drops, and their still-valid
    // token cannot like again
    eventually("the deleted liker's like to go", WAIT, || async {
        (likers(app, &author, &post).await.len() == LIKERS - 11).then_some(())
    })
    .await;
    eventually("like_count 39", WAIT, || async {
        (like_count(app, &author, &post).await == Some((LIKERS - 11) as i64)).then_some(())
    })
    .await;
    let again = app
        .call(
            Method::PUT,
            &like_path(&post),
            Some(&gone.access_token),
            None,
        )
        .await;
    assert_eq!(again.status, StatusCode::UNAUTHORIZED, "{:?}", again.body);

    // WHEN the author deletes the post, THEN its likes are dropped with it
    let deleted = app
        .call(
            Method::DELETE,
            &format!("/v1/posts/{post}"),
            Some(&author.access_token),
            None,
        )
        .await;
    assert!(deleted.status.is_success(), "{:?}", deleted.body);
    let table = app.stack.table_name("LikesTable");
    let dynamo = aws_sdk_dynamodb::Client::new(&app.aws().await);
    // (Its likes live in the post's partition and the 8 partitions of its likers list.)
    let partitions: Vec<String> = std::iter::once(format!("POST#{post}"))
        .chain((0..8).map(|n| format!("POST#{post}#LIST#{n}")))
        .collect();
    eventually("the deleted post's likes to be dropped", WAIT, || async {
        for pk in &partitions {
            let out = dynamo
                .query()
                .table_name(&table)
                .key_condition_expression("pk = :pk")
                .expression_attribute_values(
                    ":pk",
                    aws_sdk_dynamodb::types::AttributeValue::S(pk.clone()),
                )
                .send()
                .await
                .unwrap();
            if out.count > 0 {
                return None;
            }
        }
        Some(())
    })
    .await;
    // (Each environment may reuse what it found in the directory for 2 s.)
    eventually("the deleted post's likers to be 404", WAIT, || async {
        let answer = app
            .call(
                Method::GET,
                &format!("/v1/posts/{post}/likes"),
                Some(&author.access_token),
                None,
            )
            .await;
        (answer.status == StatusCode::NOT_FOUND).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_accounts_post_hides_its_likers() {
    let app = &TestApp::shared().await;
    // GIVEN a private account's published post that its author likes
    let author = app.user(&TestApp::unique("private.author")).await;
    // (The profile follows registration through the identity topic.)
    eventually("the author's profile to turn private", WAIT, || async {
        let answer = app
            .call(
                Method::PATCH,
                "/v1/profiles/me",
                Some(&author.access_token),
                Some(json!({"private": true})),
            )
            .await;
        (answer.status == StatusCode::OK).then_some(())
    })
    .await;
    let post = app.published_post(&author).await;
    like_once_visible(app, &author, &post).await;
    let stranger = app.user(&TestApp::unique("stranger")).await;
    // The directory learns of the privacy change from the profiles topic.
    eventually("the post to be hidden from others", WAIT, || async {
        let answer = app
            .call(
                Method::GET,
                &format!("/v1/posts/{post}/likes"),
                Some(&stranger.access_token),
                None,
            )
            .await;
        (answer.status == StatusCode::NOT_FOUND).then_some(())
    })
    .await;

    // THEN the author sees the likers; a stranger can neither see nor like
    assert_eq!(likers(app, &author, &post).await.len(), 1);
    let answer = app
        .call(
            Method::PUT,
            &like_path(&post),
            Some(&stranger.access_token),
            None,
        )
        .await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    assert_eq!(answer.body["code"], "not_found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_clear_errors() {
    let app = &TestApp::shared().await;
    let user = app.user(&TestApp::unique("curious")).await;
    let post = shutter_core::new_id();
    let no_token = app.call(Method::PUT, &like_path(&post), None, None).await;
    assert_eq!(no_token.status, StatusCode::UNAUTHORIZED);
    let no_token = app
        .call(Method::GET, &format!("/v1/posts/{post}/likes"), None, None)
        .await;
    assert_eq!(no_token.status, StatusCode::UNAUTHORIZED);
    let bad_id = app
        .call(
            Method::PUT,
            "/v1/posts/not-a-ulid/like",
            Some(&user.access_token),
            None,
        )
        .await;
    assert_eq!(
        (bad_id.status, &bad_id.body["field"]),
        (StatusCode::BAD_REQUEST, &json!("id"))
    );
    let unknown = app
        .call(
            Method::PUT,
            &like_path(&post),
            Some(&user.access_token),
            None,
        )
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    let forged = app
        .call(
            Method::GET,
            &format!("/v1/posts/{post}/likes?cursor=eyJhZnRlciI6IkxJS0VEI1oifQ.AAAA"),
            Some(&user.access_token),
            None,
        )
        .await;
    assert_eq!(
        (forged.status, &forged.body["field"]),
        (StatusCode::BAD_REQUEST, &json!("cursor"))
    );
}
