//! Moderation actions through the devstack, as a moderator would take them with the API:
//! the queue previews what is reported (the post's caption and a thumbnail link that
//! downloads); removing a post hides it from everyone but its author, who sees why;
//! suspending its author refuses their login and refresh at once (403
//! `account_suspended`), ends their sessions, and refuses their still-valid token's writes
//! as soon as the services have the event; lifting it lets them log in again; the modlog
//! holds each action; bad requests change nothing.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test, with its location

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use shutter_e2e::{Answer, PASSWORD, TestApp, User, eventually};

const WAIT: Duration = Duration::from_secs(90);

async fn report(app: &TestApp, user: &User, kind: &str, id: &str) -> Answer {
    app.call(
        Method::POST,
        "/v1/reports",
        Some(&user.access_token),
        Some(json!({"target": {"type": kind, "id": id}, "reason": "spam"})),
    )
    .await
}

/// Reports `id` as `user`, once the moderation service knows the target.
async fn reported(app: &TestApp, user: &User, kind: &str, id: &str) {
    let answer = app.report_when_known(user, kind, id, "spam").await;
    assert_eq!(answer.status, StatusCode::CREATED, "{:?}", answer.body);
}

async fn resolve(app: &TestApp, staff: &User, entry: &str, body: Value) -> Answer {
    app.call(
        Method::POST,
        &format!("/v1/admin/reports/{entry}/resolve"),
        Some(&staff.access_token),
        Some(body),
    )
    .await
}

async fn open_queue(app: &TestApp, staff: &User) -> Vec<Value> {
    let answer = app
        .call(
            Method::GET,
            "/v1/admin/reports?status=open",
            Some(&staff.access_token),
            None,
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.body);
    answer.body["items"].as_array().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_moderator_removes_a_post_suspends_its_author_and_lifts_it() {
    // GIVEN an admin (by AdminUsernames), an author with a published post, and a fan
    let (app, admin) = TestApp::with_admin().await;
    let author = app.user(&TestApp::unique("author")).await;
    let fan = app.user(&TestApp::unique("fan")).await;
    let post = app.published_post(&author).await;

    // WHEN the fan reports the post
    reported(&app, &fan, "post", &post).await;
    // (a repeat is the same report, and counts against the fan's daily report limit)
    let repeat = report(&app, &fan, "post", &post).await;
    assert_eq!(repeat.status, StatusCode::OK, "{:?}", repeat.body);
    let policy = repeat
        .headers
        .get("ratelimit-policy")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    assert!(policy.starts_with("\"reports-1d\""), "{policy}");
    // THEN the queue shows it with its preview, and the thumbnail link downloads
    let entry_id = format!("post-{post}");
    let queue = open_queue(&app, &admin).await;
    let entry = queue.iter().find(|e| e["id"] == entry_id.as_str()).unwrap();
    assert_eq!(entry["report_count"], 1);
    assert_eq!(entry["preview"]["type"], "post");
    assert_eq!(entry["preview"]["caption"], "a post #test");
    assert_eq!(
        entry["preview"]["author_username"],
        author.username.as_str()
    );
    let thumbnail = entry["preview"]["thumbnail_url"].as_str().unwrap();
    let image = reqwest::get(thumbnail).await.unwrap();
    assert_eq!(image.status(), StatusCode::OK, "{thumbnail}");
    assert!(!image.bytes().await.unwrap().is_empty());

    // AND bad resolutions are refused and change nothing
    let malformed = app
        .call_raw(
            Method::POST,
            &format!("/v1/admin/reports/{entry_id}/resolve"),
            Some(&admin.access_token),
            "application/json",
            b"{not json".to_vec(),
        )
        .await;
    assert_eq!(malformed.status, StatusCode::BAD_REQUEST);
    for (body, field) in [
        (json!({"action": "suspend", "note": "n"}), "duration_hours"),
        (json!({"action": "dismiss", "note": ""}), "note"),
        (json!({"action": "explode", "note": "n"}), ""),
        (json!({"action": "dismiss", "note": "n", "extra": 1}), ""),
    ] {
        let answer = resolve(&app, &admin, &entry_id, body.clone()).await;
        assert_eq!(
            answer.status,
            StatusCode::BAD_REQUEST,
            "{body}: {:?}",
            answer.body
        );
        if !field.is_empty() {
            assert_eq!(answer.body["field"], field, "{body}");
        }
    }
    let unknown = resolve(
        &app,
        &admin,
        &format!("post-{}", shutter_core::new_id()),
        json!({"action": "dismiss", "note": "n"}),
    )
    .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert_eq!(open_queue(&app, &admin).await.len(), queue.len());

    // WHEN the moderator removes the post with a note
    let removed = resolve(
        &app,
        &admin,
        &entry_id,
        json!({"action": "remove_content", "note": "spam link"}),
    )
    .await;
    assert_eq!(removed.status, StatusCode::OK, "{:?}", removed.body);
    assert_eq!(removed.body["status"], "resolved");
    assert_eq!(removed.body["resolution"]["action"], "remove_content");
    // (a second resolution is a conflict)
    let again = resolve(
        &app,
        &admin,
        &entry_id,
        json!({"action": "dismiss", "note": "n"}),
    )
    .await;
    assert_eq!(
        (again.status, again.body["code"].as_str()),
        (StatusCode::CONFLICT, Some("already_resolved"))
    );
    // THEN the post is gone for the fan, and its author sees why
    let path = format!("/v1/posts/{post}");
    eventually("the post to be hidden from others", WAIT, || async {
        let answer = app
            .call(Method::GET, &path, Some(&fan.access_token), None)
            .await;
        (answer.status == StatusCode::NOT_FOUND).then_some(())
    })
    .await;
    let own = app
        .call(Method::GET, &path, Some(&author.access_token), None)
        .await;
    assert_eq!(own.status, StatusCode::OK, "{:?}", own.body);
    assert_eq!(own.body["removed"]["note"], "spam link", "{:?}", own.body);

    // WHEN the fan reports the author, and the moderator suspends them for an hour
    reported(&app, &fan, "user", &author.id).await;
    let suspended = resolve(
        &app,
        &admin,
        &format!("user-{}", author.id),
        json!({"action": "suspend", "duration_hours": 1, "note": "cool off"}),
    )
    .await;
    assert_eq!(suspended.status, StatusCode::OK, "{:?}", suspended.body);
    let until = suspended.body["resolution"]["until"]
        .as_str()
        .unwrap()
        .to_owned();
    // THEN login (with the right password) and refresh are refused at once, saying until
    let login = app.login(&author.username, PASSWORD).await;
    assert_eq!(
        (login.status, login.body["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("account_suspended")),
        "{:?}",
        login.body
    );
    assert_eq!(login.body["until"], until.as_str());
    let refresh = app
        .call(
            Method::POST,
            "/v1/auth/refresh",
            None,
            Some(json!({"refresh_token": author.refresh_token})),
        )
        .await;
    assert_eq!(refresh.status, StatusCode::FORBIDDEN, "{:?}", refresh.body);
    // AND the still-valid access token writes nothing once the services know
    eventually("the author's writes to be refused", WAIT, || async {
        let answer = app
            .call(
                Method::POST,
                "/v1/posts",
                Some(&author.access_token),
                Some(json!({"caption": "still here", "media": [{"content_type": "image/png", "size": 100}]})),
            )
            .await;
        (answer.status == StatusCode::FORBIDDEN
            && answer.body["code"] == "account_suspended")
            .then_some(())
    })
    .await;
    // AND the lookup shows the suspension
    let lookup_path = format!("/v1/admin/users/{}", author.username);
    let lookup = app
        .call(Method::GET, &lookup_path, Some(&admin.access_token), None)
        .await;
    assert_eq!(lookup.status, StatusCode::OK, "{:?}", lookup.body);
    assert_eq!(lookup.body["suspension"]["until"], until.as_str());

    // AND the modlog holds both actions, by the admin
    let modlog = app
        .call(
            Method::GET,
            &format!("/v1/admin/modlog?moderator={}", admin.id),
            Some(&admin.access_token),
            None,
        )
        .await;
    assert_eq!(modlog.status, StatusCode::OK, "{:?}", modlog.body);
    let actions: Vec<(&str, &str)> = modlog.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap(),
                e["target"]["id"].as_str().unwrap(),
            )
        })
        .collect();
    assert!(
        actions.contains(&("remove_content", post.as_str())),
        "{actions:?}"
    );
    assert!(
        actions.contains(&("suspend", author.id.as_str())),
        "{actions:?}"
    );

    // WHEN the suspension is lifted THEN the author logs in again; the old session stays
    // ended; a second lift is a conflict
    let unsuspend = format!("/v1/admin/users/{}/unsuspend", author.username);
    let lifted = app
        .call(
            Method::POST,
            &unsuspend,
            Some(&admin.access_token),
            Some(json!({"note": "appeal accepted"})),
        )
        .await;
    assert_eq!(lifted.status, StatusCode::OK, "{:?}", lifted.body);
    assert_eq!(lifted.body["suspension"], Value::Null);
    let login = app.login(&author.username, PASSWORD).await;
    assert_eq!(login.status, StatusCode::OK, "{:?}", login.body);
    let old = app
        .call(
            Method::POST,
            "/v1/auth/refresh",
            None,
            Some(json!({"refresh_token": author.refresh_token})),
        )
        .await;
    assert_eq!(old.status, StatusCode::UNAUTHORIZED);
    let twice = app
        .call(
            Method::POST,
            &unsuspend,
            Some(&admin.access_token),
            Some(json!({"note": "again"})),
        )
        .await;
    assert_eq!(
        (twice.status, twice.body["code"].as_str()),
        (StatusCode::CONFLICT, Some("not_suspended"))
    );
    app.stop().await;
}
