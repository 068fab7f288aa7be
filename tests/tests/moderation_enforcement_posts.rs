//! Moderation enforced by the posts, likes and feed services, through the devstack. The
//! stories play the moderation service's part: they produce `UserSuspended`,
//! `UserReinstated` and `ContentRemoved` on the identity topic as it would publish them
//! (each twice: Kafka delivers at least once), and watch what users then get.
//!
//! - a suspended account's still-valid token writes nothing (403 `account_suspended`
//!   with `until`) but still reads, and writes again once reinstated;
//! - a banned author's posts are hidden from others (post 404, list 404, not in feeds)
//!   but not from the author, and come back when the ban is lifted;
//! - a removed post is 404 to others, shown to its author with the note, leaves feeds and
//!   takes no new likes, for good, its like count unchanged.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test, with its location

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use shutter_core::{PostId, UserId};
use shutter_e2e::{Answer, PNG, TestApp, User, eventually};
use shutter_events::{ContentRemoved, Envelope, Event, RemovedKind, UserReinstated, UserSuspended};

const WAIT: Duration = Duration::from_secs(90);

fn suspended(user: &User, banned: bool, seq: u64) -> Event {
    let until = (!banned)
        .then(|| shutter_core::rfc3339(time::OffsetDateTime::now_utc() + time::Duration::hours(1)));
    Event::UserSuspended(UserSuspended {
        user_id: UserId::trusted(&user.id),
        username: user.username.clone(),
        banned,
        until,
        seq,
    })
}

fn reinstated(user: &User, seq: u64) -> Event {
    Event::UserReinstated(UserReinstated {
        user_id: UserId::trusted(&user.id),
        username: user.username.clone(),
        seq,
    })
}

fn create_body() -> Value {
    json!({"caption": "moderated #e2e", "media": [{"content_type": "image/png", "size": PNG.len()}]})
}

/// A PATCH that changes nothing when it passes the account check (the version is
/// never 0): 409 `version_conflict` for an active account, 403 for a suspended one.
async fn probe_patch(app: &TestApp, user: &User, post: &str) -> Answer {
    app.call_as(
        user,
        Method::PATCH,
        &format!("/v1/posts/{post}"),
        Some(json!({"caption": "x", "version": 0})),
    )
    .await
}

/// Follows `whom` once the follows service knows them.
async fn follow(app: &TestApp, who: &User, whom: &User) {
    let path = format!("/v1/users/{}/follow", whom.username);
    eventually("the follows service to know the user", WAIT, || async {
        (app.call_as(who, Method::PUT, &path, None).await.status == StatusCode::OK).then_some(())
    })
    .await;
}

async fn feed_ids(app: &TestApp, viewer: &User) -> Vec<String> {
    let page = app
        .call_as(viewer, Method::GET, "/v1/feed?limit=100", None)
        .await;
    assert_eq!(page.status, StatusCode::OK, "{:?}", page.body);
    ids(&page.body)
}

/// The ids of a page's items.
fn ids(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap().to_owned())
        .collect()
}

/// The author's post list as `viewer` gets it.
async fn list(app: &TestApp, viewer: &User, author: &User) -> Answer {
    let path = format!("/v1/users/{}/posts?limit=100", author.username);
    app.call_as(viewer, Method::GET, &path, None).await
}

async fn wait_in_feed(app: &TestApp, viewer: &User, post: &str, present: bool) {
    eventually("the feed to show the post or not", WAIT, || async {
        (feed_ids(app, viewer).await.iter().any(|id| id == post) == present).then_some(())
    })
    .await;
}

fn like_path(post: &str) -> String {
    format!("/v1/posts/{post}/like")
}

fn code(answer: &Answer) -> &str {
    answer.body["code"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn a_suspended_account_writes_nothing_until_reinstated_and_still_reads() {
    let app = TestApp::shared().await;
    let ann = app.user(&TestApp::unique("susp.ann")).await;
    let post = app.published_post(&ann).await;
    // The likes service knows the post once an unlike (which changes nothing) passes.
    eventually("the likes service to know the post", WAIT, || async {
        let answer = app
            .call_as(&ann, Method::DELETE, &like_path(&post), None)
            .await;
        (answer.status == StatusCode::OK).then_some(())
    })
    .await;

    // WHEN ann is suspended for an hour (the event delivered twice)
    app.produce_twice(suspended(&ann, false, 1), &UserId::trusted(&ann.id))
        .await;

    // THEN her still-valid token is refused every write, with when it ends
    let refused = eventually("posts to refuse the suspended account", WAIT, || async {
        let answer = probe_patch(&app, &ann, &post).await;
        (answer.status == StatusCode::FORBIDDEN).then_some(answer)
    })
    .await;
    assert_eq!(code(&refused), "account_suspended", "{:?}", refused.body);
    let until = refused.body["until"].as_str().unwrap().to_owned();
    assert!(until > shutter_core::now_rfc3339(), "{until}");
    let created = app
        .call_as(&ann, Method::POST, "/v1/posts", Some(create_body()))
        .await;
    assert_eq!(
        (created.status, code(&created)),
        (StatusCode::FORBIDDEN, "account_suspended")
    );
    assert_eq!(created.body["until"], until.as_str());
    let deleted = app
        .call_as(&ann, Method::DELETE, &format!("/v1/posts/{post}"), None)
        .await;
    assert_eq!(deleted.status, StatusCode::FORBIDDEN, "{:?}", deleted.body);
    let liked = eventually("likes to refuse the suspended account", WAIT, || async {
        let answer = app
            .call_as(&ann, Method::PUT, &like_path(&post), None)
            .await;
        (answer.status == StatusCode::FORBIDDEN).then_some(answer)
    })
    .await;
    assert_eq!(code(&liked), "account_suspended", "{:?}", liked.body);
    assert_eq!(liked.body["until"], until.as_str());
    // (a like that passed before the event reached likes is taken back below, once
    // writes pass again)

    // AND she still reads: her post, her list, her feed
    let read = app
        .call_as(&ann, Method::GET, &format!("/v1/posts/{post}"), None)
        .await;
    assert_eq!(read.status, StatusCode::OK, "{:?}", read.body);
    assert!(read.body.get("removed").is_none());
    let own = list(&app, &ann, &ann).await;
    assert_eq!(own.status, StatusCode::OK);
    assert!(ids(&own.body).contains(&post));
    assert!(feed_ids(&app, &ann).await.contains(&post));

    // WHEN she is reinstated (a higher seq; delivered twice)
    app.produce_twice(reinstated(&ann, 2), &UserId::trusted(&ann.id))
        .await;

    // THEN her writes pass again, in posts and in likes
    eventually(
        "posts to let the reinstated account write",
        WAIT,
        || async {
            let answer = probe_patch(&app, &ann, &post).await;
            (answer.status == StatusCode::CONFLICT).then_some(())
        },
    )
    .await;
    eventually(
        "likes to let the reinstated account write",
        WAIT,
        || async {
            let answer = app
                .call_as(&ann, Method::PUT, &like_path(&post), None)
                .await;
            (answer.status == StatusCode::OK).then_some(())
        },
    )
    .await;
    let created = app
        .call_as(&ann, Method::POST, "/v1/posts", Some(create_body()))
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    let unliked = app
        .call_as(&ann, Method::DELETE, &like_path(&post), None)
        .await;
    assert_eq!(unliked.status, StatusCode::OK, "{:?}", unliked.body);
}

#[tokio::test]
async fn a_banned_authors_posts_are_hidden_from_others_until_the_ban_is_lifted() {
    let app = TestApp::shared().await;
    let ann = app.user(&TestApp::unique("ban.ann")).await;
    let bob = app.user(&TestApp::unique("ban.bob")).await;
    follow(&app, &bob, &ann).await;
    let post = app.published_post(&ann).await;
    let path = format!("/v1/posts/{post}");
    wait_in_feed(&app, &bob, &post, true).await;

    // WHEN ann is banned (delivered twice)
    app.produce_twice(suspended(&ann, true, 1), &UserId::trusted(&ann.id))
        .await;

    // THEN bob gets 404 on her post and her list, and her post leaves his feed
    eventually("the banned author's post to be hidden", WAIT, || async {
        (app.call_as(&bob, Method::GET, &path, None).await.status == StatusCode::NOT_FOUND)
            .then_some(())
    })
    .await;
    let listed = list(&app, &bob, &ann).await;
    assert_eq!(listed.status, StatusCode::NOT_FOUND, "{:?}", listed.body);
    wait_in_feed(&app, &bob, &post, false).await;

    // AND ann still sees it, in her list and her feed; her writes are refused, no end
    let own = app.call_as(&ann, Method::GET, &path, None).await;
    assert_eq!(own.status, StatusCode::OK, "{:?}", own.body);
    assert!(ids(&list(&app, &ann, &ann).await.body).contains(&post));
    assert!(feed_ids(&app, &ann).await.contains(&post));
    let created = app
        .call_as(&ann, Method::POST, "/v1/posts", Some(create_body()))
        .await;
    assert_eq!(
        (created.status, code(&created)),
        (StatusCode::FORBIDDEN, "account_suspended")
    );
    assert!(created.body.get("until").is_none(), "{:?}", created.body);

    // WHEN the ban is lifted THEN bob sees her post again, everywhere
    app.produce_twice(reinstated(&ann, 2), &UserId::trusted(&ann.id))
        .await;
    eventually(
        "the reinstated author's post to show again",
        WAIT,
        || async {
            (app.call_as(&bob, Method::GET, &path, None).await.status == StatusCode::OK)
                .then_some(())
        },
    )
    .await;
    let listed = list(&app, &bob, &ann).await;
    assert_eq!(listed.status, StatusCode::OK, "{:?}", listed.body);
    assert!(ids(&listed.body).contains(&post));
    wait_in_feed(&app, &bob, &post, true).await;
}

#[tokio::test]
async fn a_removed_post_is_gone_for_others_and_shown_to_its_author_with_why() {
    let app = TestApp::shared().await;
    let ann = app.user(&TestApp::unique("rm.ann")).await;
    let bob = app.user(&TestApp::unique("rm.bob")).await;
    let cat = app.user(&TestApp::unique("rm.cat")).await;
    follow(&app, &bob, &ann).await;
    let post = app.published_post(&ann).await;
    let kept = app.published_post(&ann).await;
    let path = format!("/v1/posts/{post}");
    wait_in_feed(&app, &bob, &post, true).await;
    // bob likes it, and the count says so
    eventually("bob's like to be counted", WAIT, || async {
        let _ = app
            .call_as(&bob, Method::PUT, &like_path(&post), None)
            .await;
        let seen = app.call_as(&ann, Method::GET, &path, None).await;
        (seen.body["like_count"] == 1).then_some(())
    })
    .await;

    // WHEN staff remove it (the event delivered twice)
    let removal = Event::ContentRemoved(ContentRemoved {
        kind: RemovedKind::Post,
        target_id: post.clone(),
        post_id: PostId::trusted(&post),
        author_id: UserId::trusted(&ann.id),
        note: "spam, says e2e".into(),
        removed_by: UserId::generate(),
        removed_at: shutter_core::now_rfc3339(),
    });
    app.produce_twice(removal.clone(), &UserId::trusted(&ann.id))
        .await;

    // THEN bob gets 404 on it
    eventually("the removed post to be hidden", WAIT, || async {
        (app.call_as(&bob, Method::GET, &path, None).await.status == StatusCode::NOT_FOUND)
            .then_some(())
    })
    .await;
    // AND ann gets it with the note, its like still counted
    let seen = app.call_as(&ann, Method::GET, &path, None).await;
    assert_eq!(seen.status, StatusCode::OK, "{:?}", seen.body);
    assert_eq!(seen.body["removed"]["note"], "spam, says e2e");
    let removed_at = seen.body["removed"]["removed_at"].clone();
    assert!(removed_at.is_string(), "{:?}", seen.body);
    assert_eq!(seen.body["like_count"], 1);
    // AND it is in her own list (with `removed`), not in hers as bob sees it
    let own = list(&app, &ann, &ann).await;
    let mine = own.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == post.as_str());
    assert_eq!(mine.unwrap()["removed"]["note"], "spam, says e2e");
    let listed = list(&app, &bob, &ann).await;
    assert_eq!(listed.status, StatusCode::OK);
    assert_eq!(ids(&listed.body), std::slice::from_ref(&kept));
    // AND it leaves the feed, and takes no new like
    wait_in_feed(&app, &bob, &post, false).await;
    assert!(feed_ids(&app, &bob).await.contains(&kept));
    eventually("likes to refuse the removed post", WAIT, || async {
        (app.call_as(&cat, Method::PUT, &like_path(&post), None)
            .await
            .status
            == StatusCode::NOT_FOUND)
            .then_some(())
    })
    .await;
    // AND its author cannot edit it back
    let version = seen.body["version"].as_u64().unwrap();
    let edit = app
        .call_as(
            &ann,
            Method::PATCH,
            &path,
            Some(json!({"caption": "innocent", "version": version})),
        )
        .await;
    assert_eq!(
        (edit.status, code(&edit)),
        (StatusCode::CONFLICT, "post_removed")
    );

    // WHEN the removal is delivered again, followed on its partition (same key) by a
    // suspension of ann whose refusal shows the posts service consumed it
    let actor = UserId::trusted(&ann.id);
    let again = |event| Envelope::new(event, Some(&actor), "e2e-moderation");
    app.produce(&[
        again(removal.clone()),
        again(removal),
        again(suspended(&ann, false, 1)),
    ])
    .await;
    eventually("posts to consume the redelivered removal", WAIT, || async {
        (probe_patch(&app, &ann, &kept).await.status == StatusCode::FORBIDDEN).then_some(())
    })
    .await;
    // THEN nothing changed
    let again = app.call_as(&ann, Method::GET, &path, None).await;
    assert_eq!(again.body["removed"]["removed_at"], removed_at);
    assert_eq!(again.body["version"], version);
    assert_eq!(again.body["like_count"], 1);
    assert_eq!(
        app.call_as(&bob, Method::GET, &path, None).await.status,
        StatusCode::NOT_FOUND
    );
    assert!(!feed_ids(&app, &bob).await.contains(&post));
}
