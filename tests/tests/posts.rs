//! Posts through the devstack: create with two uploads (a real JPEG carrying GPS data, a
//! text file passed off as a PNG), processing, publication, lists by author and hashtag,
//! edits with optimistic concurrency, idempotent creates, privacy and deletion.

#![allow(clippy::unwrap_used)]

use std::io::Cursor;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use shutter_e2e::{TestApp, User, eventually};
use shutter_posts::media::fixtures::jpeg_with_gps;

const WAIT: Duration = Duration::from_secs(60);

async fn get(app: &TestApp, user: &User, path: &str) -> shutter_e2e::Answer {
    app.call(Method::GET, path, Some(&user.access_token), None)
        .await
}

/// A user of this story's own.
async fn user(app: &TestApp, name: &str) -> User {
    app.user(&TestApp::unique(name)).await
}

/// Creates a post with `caption` and one PNG, uploads it, waits until it is published.
async fn published_with_caption(app: &TestApp, author: &User, caption: &str) -> String {
    let created = app
        .call(
            Method::POST,
            "/v1/posts",
            Some(&author.access_token),
            Some(json!({"caption": caption, "media": [{"content_type": "image/png", "size": shutter_e2e::PNG.len()}]})),
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
        (get(app, author, &path).await.body["status"] == "published").then_some(())
    })
    .await;
    id
}

/// Waits until the posts service knows `user` (from its registration event): until then
/// their list is 404.
async fn known_to_posts(app: &TestApp, viewer: &User, user: &User) {
    let path = format!("/v1/users/{}/posts", user.username);
    eventually("the posts service to know the user", WAIT, || async {
        (get(app, viewer, &path).await.status == StatusCode::OK).then_some(())
    })
    .await;
}

/// Waits until `viewer` finds `post` first in the list of `hashtag`.
async fn first_under_hashtag(app: &TestApp, viewer: &User, hashtag: &str, post: &str) {
    let path = format!("/v1/hashtags/{hashtag}/posts");
    eventually(
        &format!("the post to be listed under #{hashtag}"),
        WAIT,
        || async { (get(app, viewer, &path).await.body["items"][0]["id"] == post).then_some(()) },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn media_is_checked_stripped_and_published() {
    let app = &TestApp::shared().await;
    let (author, other) = (&user(app, "poster").await, &user(app, "onlooker").await);
    // Mentions resolve against the posts service's copy of the users, kept from their
    // registration events: wait until it knows the one mentioned.
    let others_posts = format!("/v1/users/{}/posts", other.username);
    eventually("the posts service to know onlooker", WAIT, || async {
        (get(app, author, &others_posts).await.status == StatusCode::OK).then_some(())
    })
    .await;
    let jpeg = jpeg_with_gps(1600, 1200);
    let fake_png = b"I am a text file, renamed to look like a .png".to_vec();
    let created = app
        .call(
            Method::POST,
            "/v1/posts",
            Some(&author.access_token),
            Some(json!({"caption": format!("Sunset at the #Beach with @{} and @nobody_here", other.username), "location": "Lisbon",
                "media": [{"content_type": "image/jpeg", "size": jpeg.len()}, {"content_type": "image/png", "size": fake_png.len()}]})),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    let post = &created.body["post"];
    let id = post["id"].as_str().unwrap().to_owned();
    assert_eq!(post["status"], "pending");
    assert_eq!(post["hashtags"], json!(["beach"]));
    // A mention of a missing user stays text only.
    assert_eq!(
        post["mentions"],
        json!([{"user_id": other.id, "username": other.username}])
    );
    assert_eq!(created.body["uploads"].as_array().unwrap().len(), 2);
    // Pending posts are the author's alone.
    assert_eq!(
        get(app, other, &format!("/v1/posts/{id}")).await.status,
        StatusCode::NOT_FOUND
    );

    let uploads = created.body["uploads"].as_array().unwrap();
    assert!(app.upload(&uploads[0]["upload"], &jpeg).await.is_success());
    assert!(
        app.upload(&uploads[1]["upload"], &fake_png)
            .await
            .is_success()
    );
    let published = eventually("the post to be published", WAIT, || async {
        let answer = get(app, author, &format!("/v1/posts/{id}")).await;
        (answer.body["status"] == "published").then_some(answer.body)
    })
    .await;
    let media = published["media"].as_array().unwrap();
    assert_eq!(
        (media[0]["status"].as_str(), media[1]["status"].as_str()),
        (Some("ready"), Some("rejected"))
    );
    assert!(media[1]["url"].is_null());

    // What is served has no metadata, is upright and has a thumbnail.
    let display = app
        .http
        .get(media[0]["url"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let thumbnail = app
        .http
        .get(media[0]["thumbnail_url"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    for served in [&display, &thumbnail] {
        assert_eq!(&served[..3], &[0xFF, 0xD8, 0xFF], "a JPEG");
        assert!(
            exif::Reader::new()
                .read_from_container(&mut Cursor::new(&served[..]))
                .is_err(),
            "no EXIF left"
        );
        assert!(!served.windows(4).any(|w| w == b"Exif"));
    }
    assert!(thumbnail.len() < display.len());
    // The uploads themselves (GPS included) are gone from the bucket.
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&app.aws().await)
            .force_path_style(true)
            .build(),
    );
    let left = s3
        .list_objects_v2()
        .bucket(app.stack.bucket_name("MediaBucket"))
        .prefix(format!("post-uploads/{}/{id}/", author.id))
        .send()
        .await
        .unwrap();
    assert_eq!(left.key_count(), Some(0));

    // Now others see it, with its counters.
    // Now others see it (once the posts service knows its author), with its counters.
    let seen = eventually("others to see the post", WAIT, || async {
        let answer = get(app, other, &format!("/v1/posts/{id}")).await;
        (answer.status == StatusCode::OK).then_some(answer)
    })
    .await;
    assert_eq!(
        (
            seen.body["like_count"].as_i64(),
            seen.body["liked_by_me"].as_bool()
        ),
        (Some(0), Some(false))
    );
    assert_eq!(seen.body["author"]["username"], author.username.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_creates_change_nothing() {
    let app = &TestApp::shared().await;
    // An author with one published post, known to the posts service.
    let author = &user(app, "poster").await;
    app.published_post(author).await;
    known_to_posts(app, author, author).await;
    let cases = [
        (json!({"caption": "x", "media": []}), "media"),
        (
            json!({"caption": "x", "media": [{"content_type": "image/gif", "size": 10}]}),
            "media[0].content_type",
        ),
        (
            json!({"caption": "x", "media": [{"content_type": "image/png", "size": 10 * 1024 * 1024 + 1}]}),
            "media[0].size",
        ),
        (
            json!({"caption": "x".repeat(2201), "media": [{"content_type": "image/png", "size": 10}]}),
            "caption",
        ),
        (
            json!({"caption": 5, "media": [{"content_type": "image/png", "size": 10}]}),
            "caption",
        ),
    ];
    for (body, field) in cases {
        let answer = app
            .call(
                Method::POST,
                "/v1/posts",
                Some(&author.access_token),
                Some(body),
            )
            .await;
        assert_eq!(
            answer.status,
            StatusCode::BAD_REQUEST,
            "{field}: {:?}",
            answer.body
        );
        assert_eq!(answer.body["field"], field);
    }
    let page = get(app, author, &format!("/v1/users/{}/posts", author.username)).await;
    assert_eq!(
        page.body["items"].as_array().unwrap().len(),
        1,
        "only the first post exists"
    );
    let bad_id = get(app, author, "/v1/posts/not-a-ulid").await;
    assert_eq!(
        (bad_id.status, bad_id.body["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("id"))
    );
    let no_token = app
        .call(Method::POST, "/v1/posts", None, Some(json!({})))
        .await;
    assert_eq!(no_token.status, StatusCode::UNAUTHORIZED);
}

async fn create_with_key(app: &TestApp, user: &User, key: &str, body: &Value) -> reqwest::Response {
    app.http
        .post(app.url("/v1/posts"))
        .bearer_auth(&user.access_token)
        .header("idempotency-key", key)
        .json(body)
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retried_creates_return_the_same_post() {
    let app = &TestApp::shared().await;
    // An author with one published post, known to the posts service.
    let author = &user(app, "poster").await;
    app.published_post(author).await;
    known_to_posts(app, author, author).await;
    let body =
        json!({"caption": "once #only", "media": [{"content_type": "image/png", "size": 67}]});
    let first = create_with_key(app, author, "retry-1", &body).await;
    assert_eq!(first.status(), StatusCode::CREATED);
    let first: Value = first.json().await.unwrap();
    let again = create_with_key(app, author, "retry-1", &body).await;
    assert_eq!(again.status(), StatusCode::CREATED);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    let again: Value = again.json().await.unwrap();
    assert_eq!(again["post"]["id"], first["post"]["id"]);
    let different = create_with_key(
        app,
        author,
        "retry-1",
        &json!({"caption": "other", "media": [{"content_type": "image/png", "size": 67}]}),
    )
    .await;
    assert_eq!(different.status(), StatusCode::CONFLICT);
    // One post for the key (plus the one published before): the author sees two.
    let page = get(app, author, &format!("/v1/users/{}/posts", author.username)).await;
    assert_eq!(
        page.body["items"].as_array().unwrap().len(),
        2,
        "{:?}",
        page.body
    );
    let deleted = app
        .call(
            Method::DELETE,
            &format!("/v1/posts/{}", first["post"]["id"].as_str().unwrap()),
            Some(&author.access_token),
            None,
        )
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edits_are_the_authors_and_version_checked() {
    let app = &TestApp::shared().await;
    let (author, other) = (&user(app, "poster").await, &user(app, "onlooker").await);
    // Hashtags of this story's own, so no other story's posts are listed under them.
    let (beach, shore) = (TestApp::unique("beach"), TestApp::unique("shore"));
    let id = &published_with_caption(app, author, &format!("Sunset at the #{beach}")).await;
    first_under_hashtag(app, other, &beach, id).await;
    let path = format!("/v1/posts/{id}");
    let current = get(app, author, &path).await.body;
    let version = current["version"].as_u64().unwrap();
    let stranger = app
        .call(
            Method::PATCH,
            &path,
            Some(&other.access_token),
            Some(json!({"caption": "mine now", "version": version})),
        )
        .await;
    assert_eq!(stranger.status, StatusCode::FORBIDDEN);
    let edited = app
        .call(
            Method::PATCH,
            &path,
            Some(&author.access_token),
            Some(json!({"caption": format!("Dusk at the #{shore}"), "version": version})),
        )
        .await;
    assert_eq!(edited.status, StatusCode::OK, "{:?}", edited.body);
    assert_eq!(
        (
            edited.body["hashtags"].clone(),
            edited.body["version"].as_u64()
        ),
        (json!([shore]), Some(version + 1))
    );
    let stale = app
        .call(
            Method::PATCH,
            &path,
            Some(&author.access_token),
            Some(json!({"caption": "lost update", "version": version})),
        )
        .await;
    assert_eq!(
        (stale.status, stale.body["code"].as_str()),
        (StatusCode::CONFLICT, Some("version_conflict"))
    );
    // The hashtag index followed the caption.
    let shore = get(app, other, &format!("/v1/hashtags/{shore}/posts")).await;
    assert_eq!(shore.body["items"][0]["id"], id.as_str());
    let beach = get(
        app,
        other,
        &format!("/v1/hashtags/{}/posts", beach.to_uppercase()),
    )
    .await;
    assert_eq!(beach.body["items"], json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_page_newest_first() {
    let app = &TestApp::shared().await;
    let (author, other) = (&user(app, "poster").await, &user(app, "onlooker").await);
    // The author has published a post already.
    app.published_post(author).await;
    known_to_posts(app, other, author).await;
    let mut made = Vec::new();
    for _ in 0..3 {
        made.push(app.published_post(author).await);
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/users/{}/posts?limit=2&cursor={c}", author.username),
            None => format!("/v1/users/{}/posts?limit=2", author.username),
        };
        let page = get(app, other, &path).await;
        assert_eq!(page.status, StatusCode::OK, "{:?}", page.body);
        seen.extend(
            page.body["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["id"].as_str().unwrap().to_owned()),
        );
        match page.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen.len(), 4, "every published post once: {seen:?}");
    let mut sorted = seen.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(seen, sorted, "newest first");
    assert_eq!(seen[0], made[2]);
    let first = get(
        app,
        other,
        &format!("/v1/users/{}/posts?limit=2", author.username),
    )
    .await;
    let cursor = first.body["next_cursor"].as_str().unwrap();
    let tampered = format!("{}x", cursor);
    assert_eq!(
        get(
            app,
            other,
            &format!("/v1/users/{}/posts?cursor={tampered}", author.username)
        )
        .await
        .status,
        StatusCode::BAD_REQUEST
    );
    // A cursor of one list is refused by another.
    assert_eq!(
        get(
            app,
            other,
            &format!("/v1/hashtags/test/posts?cursor={cursor}")
        )
        .await
        .status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        get(app, other, "/v1/users/nobody_at_all/posts")
            .await
            .status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_accounts_hide_their_posts() {
    let app = &TestApp::shared().await;
    let other = &user(app, "onlooker").await;
    let hermit = user(app, "hermit").await;
    let id = app.published_post(&hermit).await;
    // Public at first: others see it once the posts service knows the author.
    eventually("others to see hermit's post", WAIT, || async {
        (get(app, other, &format!("/v1/posts/{id}")).await.status == StatusCode::OK).then_some(())
    })
    .await;
    // The profile follows registration through its event.
    eventually("hermit's profile to turn private", WAIT, || async {
        let answer = app
            .call(
                Method::PATCH,
                "/v1/profiles/me",
                Some(&hermit.access_token),
                Some(json!({"private": true})),
            )
            .await;
        (answer.status == StatusCode::OK).then_some(())
    })
    .await;
    eventually("the post to be hidden", WAIT, || async {
        (get(app, other, &format!("/v1/posts/{id}")).await.status == StatusCode::NOT_FOUND)
            .then_some(())
    })
    .await;
    eventually("hermit's list to be refused to others", WAIT, || async {
        (get(app, other, &format!("/v1/users/{}/posts", hermit.username))
            .await
            .status
            == StatusCode::FORBIDDEN)
            .then_some(())
    })
    .await;
    assert_eq!(
        get(app, &hermit, &format!("/v1/posts/{id}")).await.status,
        StatusCode::OK
    );
    let tagged = get(app, other, "/v1/hashtags/test/posts?limit=100").await;
    assert!(
        !tagged.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["id"] == id.as_str())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletion_is_the_authors_or_staffs() {
    let app = &TestApp::shared().await;
    let (author, other) = (&user(app, "poster").await, &user(app, "onlooker").await);
    // A hashtag of this story's own, so no other story's posts are listed under it.
    let shore = TestApp::unique("shore");
    let id = &published_with_caption(app, author, &format!("Dusk at the #{shore}")).await;
    first_under_hashtag(app, other, &shore, id).await;
    let path = format!("/v1/posts/{id}");
    assert_eq!(
        app.call(Method::DELETE, &path, Some(&other.access_token), None)
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.call(Method::DELETE, &path, Some(&author.access_token), None)
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(get(app, author, &path).await.status, StatusCode::NOT_FOUND);
    let shore = get(app, other, &format!("/v1/hashtags/{shore}/posts")).await;
    assert_eq!(shore.body["items"], json!([]));
    // Its media go too, through PostDeleted.
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&app.aws().await)
            .force_path_style(true)
            .build(),
    );
    let bucket = app.stack.bucket_name("MediaBucket");
    eventually("the post's media to be deleted", WAIT, || async {
        let left = s3
            .list_objects_v2()
            .bucket(&bucket)
            .prefix(format!("post-media/{id}/"))
            .send()
            .await
            .unwrap();
        (left.key_count() == Some(0)).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_accounts_posts_go_with_it() {
    let app = &TestApp::shared().await;
    let other = &user(app, "onlooker").await;
    let leaver = user(app, "leaver").await;
    let id = app.published_post(&leaver).await;
    let path = format!("/v1/posts/{id}");
    eventually("others to see leaver's post", WAIT, || async {
        (get(app, other, &path).await.status == StatusCode::OK).then_some(())
    })
    .await;
    let gone = app
        .call(
            Method::DELETE,
            "/v1/users/me",
            Some(&leaver.access_token),
            Some(json!({"password": shutter_e2e::PASSWORD})),
        )
        .await;
    assert_eq!(gone.status, StatusCode::NO_CONTENT, "{:?}", gone.body);
    // UserDeleted reaches posts-events, which deletes the posts (each with PostDeleted).
    let aws = app.aws().await;
    let ddb = aws_sdk_dynamodb::Client::new(&aws);
    let table = app.stack.table_name("PostsTable");
    eventually("leaver's post to be deleted", WAIT, || async {
        let item = ddb
            .get_item()
            .table_name(&table)
            .key(
                "pk",
                aws_sdk_dynamodb::types::AttributeValue::S(format!("POST#{id}")),
            )
            .key(
                "sk",
                aws_sdk_dynamodb::types::AttributeValue::S("POST".into()),
            )
            .send()
            .await
            .unwrap();
        item.item.is_none().then_some(())
    })
    .await;
    assert_eq!(get(app, other, &path).await.status, StatusCode::NOT_FOUND);
    assert_eq!(
        get(app, other, &format!("/v1/users/{}/posts", leaver.username))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_moderator_deletes_anyones_post() {
    let app = &TestApp::shared().await;
    let author = &user(app, "poster").await;
    let id = app.published_post(author).await;
    let moderator = user(app, "moderator1").await;
    // Roles are granted by operators, in the identity table; the next login carries them.
    let ddb = aws_sdk_dynamodb::Client::new(&app.aws().await);
    ddb.update_item()
        .table_name(app.stack.table_name("IdentityTable"))
        .key(
            "pk",
            aws_sdk_dynamodb::types::AttributeValue::S(format!("USER#{}", moderator.id)),
        )
        .key(
            "sk",
            aws_sdk_dynamodb::types::AttributeValue::S("ACCOUNT".into()),
        )
        .update_expression("SET #roles = :roles")
        .expression_attribute_names("#roles", "roles")
        .expression_attribute_values(
            ":roles",
            aws_sdk_dynamodb::types::AttributeValue::L(vec![
                aws_sdk_dynamodb::types::AttributeValue::S("user".into()),
                aws_sdk_dynamodb::types::AttributeValue::S("moderator".into()),
            ]),
        )
        .send()
        .await
        .unwrap();
    let login = app.login(&moderator.username, shutter_e2e::PASSWORD).await;
    let token = login.body["access_token"].as_str().unwrap().to_owned();
    let path = format!("/v1/posts/{id}");
    let edit = app
        .call(
            Method::PATCH,
            &path,
            Some(&token),
            Some(json!({"caption": "moderated", "version": 1})),
        )
        .await;
    assert_eq!(
        edit.status,
        StatusCode::FORBIDDEN,
        "moderators delete, they do not edit"
    );
    assert_eq!(
        app.call(Method::DELETE, &path, Some(&token), None)
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(get(app, author, &path).await.status, StatusCode::NOT_FOUND);
}
