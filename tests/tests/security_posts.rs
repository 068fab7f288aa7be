//! Security stories of posts and comments, tried through the devstack as an attacker
//! would (issue 13): one post cannot break the system (hashtags and mentions are capped;
//! a post at the caps, or one of the hundreds of hashtags older captions could hold, is
//! edited and deleted by its author and by staff), a deleted account's still-valid token
//! writes nothing that stays, and a retried comment is stored once.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test, with its location

use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use shutter_e2e::{PASSWORD, TestApp, User, eventually};

const WAIT: Duration = Duration::from_secs(90);

async fn user(app: &TestApp, name: &str) -> User {
    app.user(&TestApp::unique(name)).await
}

async fn get(app: &TestApp, user: &User, path: &str) -> shutter_e2e::Answer {
    app.call(Method::GET, path, Some(&user.access_token), None)
        .await
}

/// `#<prefix>0 #<prefix>1 ...`: `n` distinct hashtags.
fn tags(prefix: &str, n: usize) -> String {
    (0..n)
        .map(|i| format!("#{prefix}{i}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// `@<prefix>0 ...`: `n` distinct mentions (of nobody, unless such users exist).
fn mentions(prefix: &str, n: usize) -> String {
    (0..n)
        .map(|i| format!("@{prefix}{i}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A unique lower-case hashtag prefix for this story.
fn tag_prefix(name: &str) -> String {
    TestApp::unique(name).replace('_', "x")
}

fn create_body(caption: &str) -> Value {
    json!({"caption": caption, "media": [{"content_type": "image/png", "size": shutter_e2e::PNG.len()}]})
}

/// Creates a post with `caption`, uploads its PNG and waits until it is published.
async fn published(app: &TestApp, author: &User, caption: &str) -> Value {
    let created = app
        .call(
            Method::POST,
            "/v1/posts",
            Some(&author.access_token),
            Some(create_body(caption)),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    let id = created.body["post"]["id"].as_str().unwrap().to_owned();
    let uploaded = app
        .upload(&created.body["uploads"][0]["upload"], shutter_e2e::PNG)
        .await;
    assert!(uploaded.is_success(), "S3 took the upload: {uploaded}");
    let path = format!("/v1/posts/{id}");
    eventually("the post to be published", WAIT, || async {
        let post = get(app, author, &path).await;
        (post.body["status"] == "published").then_some(post.body)
    })
    .await
}

/// The ids `viewer` is shown under `#tag`.
async fn listed_under(app: &TestApp, viewer: &User, tag: &str) -> Vec<String> {
    let answer = get(app, viewer, &format!("/v1/hashtags/{tag}/posts?limit=100")).await;
    assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.body);
    answer.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap().to_owned())
        .collect()
}

fn ddb(aws: &aws_config::SdkConfig) -> aws_sdk_dynamodb::Client {
    aws_sdk_dynamodb::Client::new(aws)
}

/// Whether the posts table holds the item (`pk`, `sk`).
async fn posts_item(app: &TestApp, pk: &str, sk: &str) -> bool {
    ddb(&app.aws().await)
        .get_item()
        .table_name(app.stack.table_name("PostsTable"))
        .key("pk", AttributeValue::S(pk.to_owned()))
        .key("sk", AttributeValue::S(sk.to_owned()))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item
        .is_some()
}

/// How many of the hashtags `#<prefix>0..n` still hold an entry of `post`.
async fn tag_entries(app: &TestApp, prefix: &str, n: usize, post: &str) -> usize {
    let mut left = 0;
    for i in 0..n {
        if posts_item(app, &format!("TAG#{prefix}{i}"), &format!("POST#{post}")).await {
            left += 1;
        }
    }
    left
}

/// A user granted the moderator role (as operators do, in the identity table), logged in
/// again so that the token carries it; the access token.
async fn moderator(app: &TestApp) -> String {
    let moderator = user(app, "mod").await;
    ddb(&app.aws().await)
        .update_item()
        .table_name(app.stack.table_name("IdentityTable"))
        .key("pk", AttributeValue::S(format!("USER#{}", moderator.id)))
        .key("sk", AttributeValue::S("ACCOUNT".into()))
        .update_expression("SET #roles = :roles")
        .expression_attribute_names("#roles", "roles")
        .expression_attribute_values(
            ":roles",
            AttributeValue::L(vec![
                AttributeValue::S("user".into()),
                AttributeValue::S("moderator".into()),
            ]),
        )
        .send()
        .await
        .unwrap();
    let login = app.login(&moderator.username, PASSWORD).await;
    login.body["access_token"].as_str().unwrap().to_owned()
}

/// Waits until the comments service knows `post` (its `PostPublished`).
async fn known_to_comments(app: &TestApp, viewer: &User, post: &str) {
    let path = format!("/v1/posts/{post}/comments");
    eventually("the comments service to know the post", WAIT, || async {
        (get(app, viewer, &path).await.status == StatusCode::OK).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_many_hashtags_or_mentions_are_refused_before_anything_is_written() {
    let app = &TestApp::shared().await;
    let ann = &user(app, "capped").await;
    let prefix = tag_prefix("c");
    // A caption with 100 hashtags (before the caps: a post that never published and
    // then could not be deleted), one with 31, one with 21 mentions.
    for caption in [
        tags(&prefix, 100),
        tags(&prefix, 31),
        mentions("nobody", 21),
    ] {
        let answer = app
            .call(
                Method::POST,
                "/v1/posts",
                Some(&ann.access_token),
                Some(create_body(&caption)),
            )
            .await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{:?}", answer.body);
        assert_eq!(answer.body["code"], "invalid_input");
        assert_eq!(answer.body["field"], "caption");
    }
    // An edit past the caps is refused the same way, and the post stays as it was.
    let post = published(app, ann, &tags(&prefix, 30)).await;
    let id = post["id"].as_str().unwrap();
    let path = format!("/v1/posts/{id}");
    let edit = app
        .call(
            Method::PATCH,
            &path,
            Some(&ann.access_token),
            Some(json!({"caption": tags(&prefix, 31), "version": post["version"]})),
        )
        .await;
    assert_eq!(edit.status, StatusCode::BAD_REQUEST, "{:?}", edit.body);
    assert_eq!(edit.body["field"], "caption");
    let after = get(app, ann, &path).await.body;
    assert_eq!(after["version"], post["version"]);
    assert_eq!(after["hashtags"].as_array().unwrap().len(), 30);
    // Nothing of the refused creates was written: the author has the one post.
    let mine_path = format!("/v1/users/{}/posts", ann.username);
    let mine = eventually("the posts service to know the author", WAIT, || async {
        let mine = get(app, ann, &mine_path).await;
        (mine.status == StatusCode::OK).then_some(mine.body)
    })
    .await;
    assert_eq!(mine["items"].as_array().unwrap().len(), 1, "{mine:?}");
    // Comments: 31 hashtags or 21 mentions are a 400 naming `text`, nothing queued.
    known_to_comments(app, ann, id).await;
    for text in [tags(&prefix, 31), mentions("nobody", 21)] {
        let answer = app
            .call(
                Method::POST,
                &format!("/v1/posts/{id}/comments"),
                Some(&ann.access_token),
                Some(json!({"text": text})),
            )
            .await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{:?}", answer.body);
        assert_eq!(answer.body["field"], "text");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_post_at_the_caps_is_edited_and_deleted_by_its_author_and_by_a_moderator() {
    let app = &TestApp::shared().await;
    let ann = &user(app, "atcaps").await;
    let bob = &user(app, "mentioned").await;
    let staff = moderator(app).await;
    // bob is known to the posts service before he is mentioned.
    let bobs = published(app, bob, "hello").await;
    let bobs_path = format!("/v1/posts/{}", bobs["id"].as_str().unwrap());
    eventually("the posts service to know bob", WAIT, || async {
        (get(app, ann, &bobs_path).await.status == StatusCode::OK).then_some(())
    })
    .await;
    let (first, second) = (tag_prefix("a"), tag_prefix("b"));
    // GIVEN two posts at the caps: 30 hashtags and 20 mentions (bob and 19 nobodies)
    let caption = |prefix: &str| {
        format!(
            "{} @{} {}",
            tags(prefix, 30),
            bob.username,
            mentions("nobody", 19)
        )
    };
    let post = published(app, ann, &caption(&first)).await;
    let id = post["id"].as_str().unwrap().to_owned();
    assert_eq!(post["hashtags"].as_array().unwrap().len(), 30);
    assert_eq!(post["mentions"].as_array().unwrap().len(), 1, "{post:?}");
    assert_eq!(post["mentions"][0]["username"], bob.username.as_str());
    for i in [0, 29] {
        let tag = format!("{first}{i}");
        eventually(&format!("the post under #{tag}"), WAIT, || async {
            listed_under(app, bob, &tag)
                .await
                .contains(&id)
                .then_some(())
        })
        .await;
    }
    assert_eq!(tag_entries(app, &first, 30, &id).await, 30);
    // WHEN its author swaps all 30 hashtags for 30 others
    let path = format!("/v1/posts/{id}");
    let edit = app
        .call(
            Method::PATCH,
            &path,
            Some(&ann.access_token),
            Some(json!({"caption": caption(&second), "version": post["version"]})),
        )
        .await;
    assert_eq!(edit.status, StatusCode::OK, "{:?}", edit.body);
    // THEN the index follows: the new hashtags list it, the old ones do not
    assert_eq!(tag_entries(app, &second, 30, &id).await, 30);
    assert_eq!(tag_entries(app, &first, 30, &id).await, 0);
    assert!(
        listed_under(app, bob, &format!("{second}7"))
            .await
            .contains(&id)
    );
    assert!(
        !listed_under(app, bob, &format!("{first}7"))
            .await
            .contains(&id)
    );
    // WHEN a moderator deletes it THEN it is gone with every entry
    let deleted = app.call(Method::DELETE, &path, Some(&staff), None).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{:?}", deleted.body);
    assert_eq!(get(app, ann, &path).await.status, StatusCode::NOT_FOUND);
    assert!(!posts_item(app, &format!("POST#{id}"), "POST").await);
    assert_eq!(tag_entries(app, &second, 30, &id).await, 0);
    // AND another post at the caps is deleted by its author, with every entry
    let third = tag_prefix("c");
    let other = published(app, ann, &caption(&third)).await;
    let other_id = other["id"].as_str().unwrap();
    assert_eq!(tag_entries(app, &third, 30, other_id).await, 30);
    let deleted = app
        .call(
            Method::DELETE,
            &format!("/v1/posts/{other_id}"),
            Some(&ann.access_token),
            None,
        )
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{:?}", deleted.body);
    assert!(!posts_item(app, &format!("POST#{other_id}"), "POST").await);
    assert_eq!(tag_entries(app, &third, 30, other_id).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_post_with_hundreds_of_hashtags_from_before_the_caps_is_deleted_cleanly() {
    let app = &TestApp::shared().await;
    let ann = &user(app, "legacy").await;
    let staff = moderator(app).await;
    let prefix = tag_prefix("l");
    let post = published(app, ann, "old times").await;
    let id = post["id"].as_str().unwrap().to_owned();
    // GIVEN a post as captions without caps could make it: 150 hashtags, of which an
    // interrupted index holds only the first 60
    let caption = tags(&prefix, 150);
    let hashtags: Vec<AttributeValue> = (0..150)
        .map(|i| AttributeValue::S(format!("{prefix}{i}")))
        .collect();
    let client = ddb(&app.aws().await);
    let table = app.stack.table_name("PostsTable");
    client
        .update_item()
        .table_name(&table)
        .key("pk", AttributeValue::S(format!("POST#{id}")))
        .key("sk", AttributeValue::S("POST".into()))
        .update_expression("SET caption = :c, hashtags = :h")
        .expression_attribute_values(":c", AttributeValue::S(caption))
        .expression_attribute_values(":h", AttributeValue::L(hashtags))
        .send()
        .await
        .unwrap();
    for i in 0..60 {
        client
            .put_item()
            .table_name(&table)
            .item("pk", AttributeValue::S(format!("TAG#{prefix}{i}")))
            .item("sk", AttributeValue::S(format!("POST#{id}")))
            .item("post_id", AttributeValue::S(id.clone()))
            .item("author_id", AttributeValue::S(ann.id.clone()))
            .send()
            .await
            .unwrap();
    }
    assert!(
        listed_under(app, ann, &format!("{prefix}5"))
            .await
            .contains(&id)
    );
    // WHEN a moderator deletes it (one transaction of 150 tags: over DynamoDB's 100)
    let path = format!("/v1/posts/{id}");
    let deleted = app.call(Method::DELETE, &path, Some(&staff), None).await;
    // THEN it is gone, with every entry
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{:?}", deleted.body);
    assert_eq!(get(app, ann, &path).await.status, StatusCode::NOT_FOUND);
    assert!(!posts_item(app, &format!("POST#{id}"), "POST").await);
    assert_eq!(tag_entries(app, &prefix, 150, &id).await, 0);
    assert!(!posts_item(app, &format!("AUTHOR#{}", ann.id), &format!("POST#{id}")).await);
}

/// The comments table's items under `pk`.
async fn comment_items(
    app: &TestApp,
    pk: &str,
) -> Vec<std::collections::HashMap<String, AttributeValue>> {
    ddb(&app.aws().await)
        .query()
        .table_name(app.stack.table_name("CommentsTable"))
        .key_condition_expression("pk = :pk")
        .expression_attribute_values(":pk", AttributeValue::S(pk.to_owned()))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .items
        .unwrap_or_default()
}

/// Whether comment `id` is stored and not deleted.
async fn comment_stored(app: &TestApp, id: &str) -> bool {
    comment_items(app, &format!("COMMENT#{id}"))
        .await
        .iter()
        .any(|item| {
            item.get("sk") == Some(&AttributeValue::S("COMMENT".into()))
                && item.get("deleted") != Some(&AttributeValue::Bool(true))
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_accounts_token_writes_nothing_that_stays() {
    let app = &TestApp::shared().await;
    let host = &user(app, "host").await;
    let leaver = &user(app, "leaver").await;
    let hosts = published(app, host, "comment here").await;
    let hosts_id = hosts["id"].as_str().unwrap().to_owned();
    let comments_path = format!("/v1/posts/{hosts_id}/comments");
    known_to_comments(app, leaver, &hosts_id).await;
    // GIVEN the leaver has a post and a comment
    let own = published(app, leaver, "mine").await;
    let own_path = format!("/v1/posts/{}", own["id"].as_str().unwrap());
    let said = app
        .call(
            Method::POST,
            &comments_path,
            Some(&leaver.access_token),
            Some(json!({"text": "before"})),
        )
        .await;
    assert_eq!(said.status, StatusCode::ACCEPTED, "{:?}", said.body);
    let said_id = said.body["id"].as_str().unwrap().to_owned();
    eventually("the comment to be stored", WAIT, || async {
        comment_stored(app, &said_id).await.then_some(())
    })
    .await;
    // WHEN the account is deleted, and its token (valid for minutes more) writes at once:
    // the window before UserDeleted reaches the posts and comments services
    let gone = app
        .call(
            Method::DELETE,
            "/v1/users/me",
            Some(&leaver.access_token),
            Some(json!({"password": PASSWORD})),
        )
        .await;
    assert_eq!(gone.status, StatusCode::NO_CONTENT, "{:?}", gone.body);
    let window_post = app
        .call(
            Method::POST,
            "/v1/posts",
            Some(&leaver.access_token),
            Some(create_body("in the window #ghost")),
        )
        .await;
    let window_comment = app
        .call(
            Method::POST,
            &comments_path,
            Some(&leaver.access_token),
            Some(json!({"text": "in the window"})),
        )
        .await;
    // THEN each is refused, or accepted and then erased by the deletion cascade
    assert!(
        [StatusCode::CREATED, StatusCode::UNAUTHORIZED].contains(&window_post.status),
        "{:?}",
        window_post.body
    );
    assert!(
        [StatusCode::ACCEPTED, StatusCode::UNAUTHORIZED].contains(&window_comment.status),
        "{:?}",
        window_comment.body
    );
    // The cascades have run once the leaver's earlier post and comment are gone.
    eventually("the leaver's post to be deleted", WAIT, || async {
        (get(app, host, &own_path).await.status == StatusCode::NOT_FOUND).then_some(())
    })
    .await;
    eventually("the leaver's comment to be erased", WAIT, || async {
        (!comment_stored(app, &said_id).await).then_some(())
    })
    .await;
    if let Some(id) = window_post.body["post"]["id"].as_str() {
        eventually("the post made in the window to be erased", WAIT, || async {
            (!posts_item(app, &format!("POST#{id}"), "POST").await).then_some(())
        })
        .await;
    }
    if let Some(id) = window_comment.body["id"].as_str() {
        eventually(
            "the comment made in the window to be erased",
            WAIT,
            || async { (!comment_stored(app, id).await).then_some(()) },
        )
        .await;
    }
    // AND from then on the token writes nothing: posts, edits and comments are 401
    let post = app
        .call(
            Method::POST,
            "/v1/posts",
            Some(&leaver.access_token),
            Some(create_body("after #ghost")),
        )
        .await;
    assert_eq!(post.status, StatusCode::UNAUTHORIZED, "{:?}", post.body);
    let edit = app
        .call(
            Method::PATCH,
            &own_path,
            Some(&leaver.access_token),
            Some(json!({"caption": "back", "version": 2})),
        )
        .await;
    assert_eq!(edit.status, StatusCode::UNAUTHORIZED, "{:?}", edit.body);
    let comment = app
        .call(
            Method::POST,
            &comments_path,
            Some(&leaver.access_token),
            Some(json!({"text": "after"})),
        )
        .await;
    assert_eq!(
        comment.status,
        StatusCode::UNAUTHORIZED,
        "{:?}",
        comment.body
    );
    let edit = app
        .call(
            Method::PATCH,
            &format!("/v1/comments/{said_id}"),
            Some(&leaver.access_token),
            Some(json!({"text": "back"})),
        )
        .await;
    assert_eq!(edit.status, StatusCode::UNAUTHORIZED, "{:?}", edit.body);
    // AND none of it is stored: no post of the leaver's, no comment on the host's post
    assert!(
        comment_items(app, &format!("USER#{}", leaver.id))
            .await
            .is_empty()
    );
    let listed = get(app, host, &comments_path).await;
    assert_eq!(listed.body["items"], json!([]), "{:?}", listed.body);
    let authored = ddb(&app.aws().await)
        .query()
        .table_name(app.stack.table_name("PostsTable"))
        .key_condition_expression("pk = :pk")
        .expression_attribute_values(":pk", AttributeValue::S(format!("AUTHOR#{}", leaver.id)))
        .consistent_read(true)
        .send()
        .await
        .unwrap();
    assert_eq!(authored.count, 0);
}

/// Sends a comment with `Idempotency-Key: key`.
async fn comment_with_key(
    app: &TestApp,
    user: &User,
    post: &str,
    key: &str,
    text: &str,
) -> reqwest::Response {
    app.http
        .post(app.url(&format!("/v1/posts/{post}/comments")))
        .bearer_auth(&user.access_token)
        .header("idempotency-key", key)
        .json(&json!({"text": text}))
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_comment_is_stored_once() {
    let app = &TestApp::shared().await;
    let ann = &user(app, "poster").await;
    let bob = &user(app, "retrier").await;
    let post = published(app, ann, "say something").await;
    let id = post["id"].as_str().unwrap().to_owned();
    known_to_comments(app, bob, &id).await;
    // GIVEN bob's comment was accepted, and he sends it again with the same key (his
    // connection dropped before the answer)
    let first = comment_with_key(app, bob, &id, "retry-1", "only once").await;
    assert_eq!(first.status(), StatusCode::ACCEPTED);
    let first = TestApp::answer(first).await;
    let again = comment_with_key(app, bob, &id, "retry-1", "only once").await;
    // THEN the same comment comes back, said to be a replay
    assert_eq!(again.status(), StatusCode::ACCEPTED);
    assert_eq!(
        again
            .headers()
            .get("idempotent-replayed")
            .and_then(|v| v.to_str().ok()),
        Some("true")
    );
    let again = TestApp::answer(again).await;
    assert_eq!(again.body["id"], first.body["id"]);
    // AND the same key with another text is refused
    let other = TestApp::answer(comment_with_key(app, bob, &id, "retry-1", "another").await).await;
    assert_eq!(other.status, StatusCode::CONFLICT, "{:?}", other.body);
    assert_eq!(other.body["code"], "idempotency_key_reused");
    // AND one comment is stored, one CommentAdded sent, and the post counts one
    let path = format!("/v1/posts/{id}/comments");
    eventually("the comment to be listed", WAIT, || async {
        let listed = get(app, ann, &path).await;
        (listed.body["items"]
            .as_array()
            .is_some_and(|i| !i.is_empty()))
        .then_some(())
    })
    .await;
    let added: Vec<Value> = app
        .events_keyed("shutter.comments", &id, 1)
        .await
        .into_iter()
        .filter(|e| e["type"] == "CommentAdded")
        .collect();
    assert_eq!(added.len(), 1, "{added:?}");
    let listed = get(app, ann, &path).await;
    let items = listed.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{items:?}");
    assert_eq!(items[0]["id"], first.body["id"]);
    assert_eq!(
        comment_items(app, &format!("USER#{}", bob.id)).await.len(),
        1
    );
    let post_path = format!("/v1/posts/{id}");
    eventually("the post to count one comment", WAIT, || async {
        (get(app, ann, &post_path).await.body["comment_count"] == 1).then_some(())
    })
    .await;
}
