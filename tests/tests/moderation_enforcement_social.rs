//! Moderation enforced by the comments, follows and profiles services, through the
//! devstack. The stories play the moderation service's part: they produce
//! `UserSuspended`, `UserReinstated` and `ContentRemoved` on the identity topic as it
//! would publish them (each twice: Kafka delivers at least once), and watch what users
//! then get.
//!
//! - a suspended account's still-valid token comments, follows and edits its profile no
//!   more (403 `account_suspended` with `until`) but still reads, and writes again once
//!   reinstated;
//! - a banned user's profile is a 404 to others, their comments and their place in
//!   follower lists are hidden from others (not from them), and all come back when the ban
//!   is lifted;
//! - a removed comment is gone from the list for others (its replies stay) and shown to
//!   its author with the note, the first removal standing; the post's comment count does
//!   not move.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test, with its location

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use shutter_core::{PostId, UserId};
use shutter_e2e::{Answer, PNG, TestApp, User, eventually};
use shutter_events::{ContentRemoved, Event, RemovedKind, UserReinstated, UserSuspended};

const WAIT: Duration = Duration::from_secs(90);

/// `user` suspended for an hour from now, or banned; and the `until` it carries.
fn suspended(user: &User, banned: bool, seq: u64) -> (Event, Option<String>) {
    let until = (!banned)
        .then(|| shutter_core::rfc3339(time::OffsetDateTime::now_utc() + time::Duration::hours(1)));
    let event = Event::UserSuspended(UserSuspended {
        user_id: UserId::trusted(&user.id),
        username: user.username.clone(),
        banned,
        until: until.clone(),
        seq,
    });
    (event, until)
}

fn reinstated(user: &User, seq: u64) -> Event {
    Event::UserReinstated(UserReinstated {
        user_id: UserId::trusted(&user.id),
        username: user.username.clone(),
        seq,
    })
}

fn comments_path(post: &str) -> String {
    format!("/v1/posts/{post}/comments")
}

/// Every comment of `post` as `user` sees them.
async fn comments(app: &TestApp, user: &User, post: &str) -> Vec<Value> {
    let path = format!("{}?limit=100", comments_path(post));
    let answer = app.call_as(user, Method::GET, &path, None).await;
    assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.body);
    answer.body["items"].as_array().unwrap().clone()
}

fn texts(comments: &[Value]) -> Vec<&str> {
    comments
        .iter()
        .map(|c| c["text"].as_str().unwrap())
        .collect()
}

/// Waits until `user` sees the comments of `post` as `expected` (text, in order).
async fn until_listed(app: &TestApp, user: &User, post: &str, expected: &[&str]) -> Vec<Value> {
    eventually(
        &format!("{} to see {expected:?}", user.username),
        WAIT,
        || async {
            let listed = comments(app, user, post).await;
            (texts(&listed) == expected).then_some(listed)
        },
    )
    .await
}

async fn comment(
    app: &TestApp,
    user: &User,
    post: &str,
    text: &str,
    reply_to: Option<&str>,
) -> Answer {
    app.call_as(
        user,
        Method::POST,
        &comments_path(post),
        Some(json!({"text": text, "reply_to": reply_to})),
    )
    .await
}

/// A comment accepted for `user` (once the comments service knows the post); its id.
async fn accepted(
    app: &TestApp,
    user: &User,
    post: &str,
    text: &str,
    reply_to: Option<&str>,
) -> String {
    eventually("the comment to be accepted", WAIT, || async {
        let answer = comment(app, user, post, text, reply_to).await;
        if answer.status == StatusCode::NOT_FOUND {
            return None;
        }
        assert_eq!(answer.status, StatusCode::ACCEPTED, "{:?}", answer.body);
        Some(answer.body["id"].as_str().unwrap().to_owned())
    })
    .await
}

async fn follow(app: &TestApp, who: &User, whom: &User) -> Answer {
    let path = format!("/v1/users/{}/follow", whom.username);
    app.call_as(who, Method::PUT, &path, None).await
}

/// Follows `whom` once the follows service knows them.
async fn followed(app: &TestApp, who: &User, whom: &User) {
    eventually("the follow to pass", WAIT, || async {
        (follow(app, who, whom).await.status == StatusCode::OK).then_some(())
    })
    .await;
}

async fn patch_profile(app: &TestApp, user: &User, body: Value) -> Answer {
    app.call_as(user, Method::PATCH, "/v1/profiles/me", Some(body))
        .await
}

async fn avatar_form(app: &TestApp, user: &User) -> Answer {
    let body = json!({"content_type": "image/png", "size": PNG.len()});
    app.call_as(user, Method::POST, "/v1/profiles/me/avatar", Some(body))
        .await
}

fn suspension(answer: &Answer) -> Option<(StatusCode, Option<&str>, Option<&str>)> {
    (answer.status == StatusCode::FORBIDDEN).then(|| {
        (
            answer.status,
            answer.body["code"].as_str(),
            answer.body["until"].as_str(),
        )
    })
}

/// Write probes that change nothing whichever way they are answered, one per service:
/// taking back a like of no comment (404 when active), unfollowing one never followed
/// (200) and an empty profile edit (200). Each is 403 once that service knows the
/// suspension.
async fn probes(app: &TestApp, user: &User, other: &User) -> [StatusCode; 3] {
    let unlike = format!("/v1/comments/{}/like", shutter_core::new_id());
    let unfollow = format!("/v1/users/{}/follow", other.username);
    [
        app.call_as(user, Method::DELETE, &unlike, None)
            .await
            .status,
        app.call_as(user, Method::DELETE, &unfollow, None)
            .await
            .status,
        patch_profile(app, user, json!({})).await.status,
    ]
}

async fn until_probes(app: &TestApp, user: &User, other: &User, refused: bool) {
    let what = if refused { "refused" } else { "passed" };
    eventually(&format!("every write probe {what}"), WAIT, || async {
        let answers = probes(app, user, other).await;
        answers
            .iter()
            .all(|s| (*s == StatusCode::FORBIDDEN) == refused)
            .then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_suspended_accounts_token_comments_follows_and_edits_nothing_until_reinstated() {
    let app = TestApp::shared().await;
    // GIVEN ann's post with bob's comment, and bob, who follows nobody yet
    let ann = app.user(&TestApp::unique("sus_ann")).await;
    let bob = app.user(&TestApp::unique("sus_bob")).await;
    let post = app.published_post(&ann).await;
    let first = accepted(&app, &bob, &post, "before", None).await;
    until_listed(&app, &ann, &post, &["before"]).await;
    // WHEN bob is suspended for an hour (the event delivered twice)
    let (event, until) = suspended(&bob, false, 1);
    app.produce_twice(event, &UserId::trusted(&ann.id)).await;
    until_probes(&app, &bob, &ann, true).await;
    // THEN his still-valid token comments, edits and deletes his comment, follows, edits
    // his profile or privacy and asks for an avatar form no more: each a 403
    // account_suspended saying until when
    let refused = [
        comment(&app, &bob, &post, "during", None).await,
        app.call_as(
            &bob,
            Method::PATCH,
            &format!("/v1/comments/{first}"),
            Some(json!({"text": "edited"})),
        )
        .await,
        app.call_as(
            &bob,
            Method::POST,
            &format!("/v1/comments/{first}/like"),
            None,
        )
        .await,
        app.call_as(&bob, Method::DELETE, &format!("/v1/comments/{first}"), None)
            .await,
        follow(&app, &bob, &ann).await,
        app.call_as(
            &bob,
            Method::PUT,
            &format!("/v1/users/{}/block", ann.username),
            None,
        )
        .await,
        patch_profile(&app, &bob, json!({"bio": "suspended?", "private": true})).await,
        avatar_form(&app, &bob).await,
    ];
    for answer in &refused {
        assert_eq!(
            suspension(answer),
            Some((
                StatusCode::FORBIDDEN,
                Some("account_suspended"),
                until.as_deref()
            )),
            "{:?}",
            answer.body
        );
    }
    // AND he still reads: the comments, his profile, ann's followers
    assert_eq!(texts(&comments(&app, &bob, &post).await), ["before"]);
    let me = app
        .call_as(&bob, Method::GET, "/v1/profiles/me", None)
        .await;
    assert_eq!(me.status, StatusCode::OK, "{:?}", me.body);
    assert_eq!(me.body["bio"], "", "the refused edit changed nothing");
    let followers = format!("/v1/users/{}/followers", ann.username);
    assert_eq!(
        app.call_as(&bob, Method::GET, &followers, None)
            .await
            .status,
        StatusCode::OK
    );
    // AND others still see him and his comment (a suspension hides nothing)
    let his = app
        .call_as(
            &ann,
            Method::GET,
            &format!("/v1/profiles/{}", bob.username),
            None,
        )
        .await;
    assert_eq!(his.status, StatusCode::OK);
    // WHEN he is reinstated (a higher seq, delivered twice)
    app.produce_twice(reinstated(&bob, 2), &UserId::trusted(&ann.id))
        .await;
    until_probes(&app, &bob, &ann, false).await;
    // THEN his writes pass again
    accepted(&app, &bob, &post, "after", None).await;
    until_listed(&app, &ann, &post, &["before", "after"]).await;
    assert_eq!(follow(&app, &bob, &ann).await.status, StatusCode::OK);
    let edited = patch_profile(&app, &bob, json!({"bio": "back"})).await;
    assert_eq!(edited.status, StatusCode::OK, "{:?}", edited.body);
    assert_eq!(avatar_form(&app, &bob).await.status, StatusCode::CREATED);
}

#[tokio::test]
async fn a_banned_users_profile_comments_and_follows_are_hidden_from_others_until_lifted() {
    let app = TestApp::shared().await;
    // GIVEN ann's post with bob's comment and carol's reply to it; bob and carol follow ann
    let ann = app.user(&TestApp::unique("ban_ann")).await;
    let bob = app.user(&TestApp::unique("ban_bob")).await;
    let carol = app.user(&TestApp::unique("ban_carol")).await;
    let post = app.published_post(&ann).await;
    let bobs = accepted(&app, &bob, &post, "bob's", None).await;
    until_listed(&app, &ann, &post, &["bob's"]).await;
    accepted(&app, &carol, &post, "carol answers", Some(&bobs)).await;
    until_listed(&app, &ann, &post, &["bob's", "carol answers"]).await;
    followed(&app, &bob, &ann).await;
    followed(&app, &carol, &ann).await;
    let followers_path = format!("/v1/users/{}/followers", ann.username);
    let followers = |viewer: &User| {
        let (app, path, viewer) = (&app, followers_path.clone(), viewer.clone());
        async move {
            let answer = app.call_as(&viewer, Method::GET, &path, None).await;
            assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.body);
            let mut names: Vec<String> = answer.body["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["username"].as_str().unwrap().to_owned())
                .collect();
            names.sort();
            names
        }
    };
    let both = {
        let mut v = vec![bob.username.clone(), carol.username.clone()];
        v.sort();
        v
    };
    assert_eq!(followers(&carol).await, both);
    let profile_path = format!("/v1/profiles/{}", bob.username);
    // WHEN bob is banned (delivered twice)
    let (event, _) = suspended(&bob, true, 1);
    app.produce_twice(event, &UserId::trusted(&ann.id)).await;
    // THEN carol is told his profile does not exist
    eventually("bob's profile to be a 404 to carol", WAIT, || async {
        let answer = app.call_as(&carol, Method::GET, &profile_path, None).await;
        (answer.status == StatusCode::NOT_FOUND).then_some(())
    })
    .await;
    // AND his comment is gone from the list for carol and ann (carol's reply stays)
    until_listed(&app, &carol, &post, &["carol answers"]).await;
    until_listed(&app, &ann, &post, &["carol answers"]).await;
    // AND he is left out of ann's followers as carol sees them; his own lists are a 404
    eventually("bob to leave ann's followers", WAIT, || async {
        (followers(&carol).await == [carol.username.clone()]).then_some(())
    })
    .await;
    let his_lists = format!("/v1/users/{}/following", bob.username);
    assert_eq!(
        app.call_as(&carol, Method::GET, &his_lists, None)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    // AND he himself still sees his profile, his comment and his place among ann's followers
    assert_eq!(
        app.call_as(&bob, Method::GET, &profile_path, None)
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        texts(&comments(&app, &bob, &post).await),
        ["bob's", "carol answers"]
    );
    assert_eq!(followers(&bob).await, both);
    // AND his writes are refused as a ban: 403 without `until`
    let refused = comment(&app, &bob, &post, "still here", None).await;
    assert_eq!(
        suspension(&refused),
        Some((StatusCode::FORBIDDEN, Some("account_suspended"), None))
    );
    // WHEN the ban is lifted THEN all comes back for carol
    app.produce_twice(reinstated(&bob, 2), &UserId::trusted(&ann.id))
        .await;
    eventually("bob's profile to come back", WAIT, || async {
        let answer = app.call_as(&carol, Method::GET, &profile_path, None).await;
        (answer.status == StatusCode::OK).then_some(())
    })
    .await;
    until_listed(&app, &carol, &post, &["bob's", "carol answers"]).await;
    eventually("bob to be back among ann's followers", WAIT, || async {
        (followers(&carol).await == both).then_some(())
    })
    .await;
}

/// Staff removed `comment` (by `author`, on `post`) with `note`.
fn removed(comment: &str, post: &str, author: &User, staff: &User, note: &str) -> Event {
    Event::ContentRemoved(ContentRemoved {
        kind: RemovedKind::Comment,
        target_id: comment.to_owned(),
        post_id: PostId::trusted(post),
        author_id: UserId::trusted(&author.id),
        note: note.to_owned(),
        removed_by: UserId::trusted(&staff.id),
        removed_at: shutter_core::now_rfc3339(),
    })
}

/// Waits until the posts service counts `expected` comments on `post`.
async fn until_counted(app: &TestApp, user: &User, post: &str, expected: u64) {
    eventually(&format!("comment_count {expected}"), WAIT, || async {
        let answer = app
            .call_as(user, Method::GET, &format!("/v1/posts/{post}"), None)
            .await;
        (answer.body["comment_count"].as_u64() == Some(expected)).then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_removed_comment_is_gone_for_others_and_shown_to_its_author_with_the_note() {
    let app = TestApp::shared().await;
    // GIVEN ann's post with bob's two comments and carol's reply to the first, counted
    let ann = app.user(&TestApp::unique("rm_ann")).await;
    let bob = app.user(&TestApp::unique("rm_bob")).await;
    let carol = app.user(&TestApp::unique("rm_carol")).await;
    let staff = app.user(&TestApp::unique("rm_mod")).await;
    let post = app.published_post(&ann).await;
    let first = accepted(&app, &bob, &post, "spam spam", None).await;
    until_listed(&app, &ann, &post, &["spam spam"]).await;
    accepted(&app, &carol, &post, "carol answers", Some(&first)).await;
    until_listed(&app, &ann, &post, &["spam spam", "carol answers"]).await;
    let second = accepted(&app, &bob, &post, "also spam", None).await;
    until_listed(
        &app,
        &ann,
        &post,
        &["spam spam", "carol answers", "also spam"],
    )
    .await;
    until_counted(&app, &ann, &post, 3).await;
    // WHEN staff remove the first (delivered twice), then again with another note
    app.produce_twice(
        removed(&first, &post, &bob, &staff, "spam"),
        &UserId::trusted(&staff.id),
    )
    .await;
    app.produce_twice(
        removed(&first, &post, &bob, &staff, "second thoughts"),
        &UserId::trusted(&staff.id),
    )
    .await;
    // THEN it is gone for carol and ann, carol's reply stays
    until_listed(&app, &carol, &post, &["carol answers", "also spam"]).await;
    until_listed(&app, &ann, &post, &["carol answers", "also spam"]).await;
    // AND bob sees it with the first note (the second removal changed nothing: it was
    // applied before the removal of his second comment, which is keyed as it is)
    app.produce_twice(
        removed(&second, &post, &bob, &staff, "more spam"),
        &UserId::trusted(&staff.id),
    )
    .await;
    until_listed(&app, &carol, &post, &["carol answers"]).await;
    let his = comments(&app, &bob, &post).await;
    assert_eq!(texts(&his), ["spam spam", "carol answers", "also spam"]);
    assert_eq!(his[0]["removed"]["note"], "spam", "{:?}", his[0]);
    assert!(his[0]["removed"]["removed_at"].is_string());
    assert_eq!(his[2]["removed"]["note"], "more spam");
    assert!(his[1].get("removed").is_none(), "{:?}", his[1]);
    // AND others may not like it, and he may not edit it (409 comment_removed)
    let like = app
        .call_as(
            &carol,
            Method::POST,
            &format!("/v1/comments/{first}/like"),
            None,
        )
        .await;
    assert_eq!(like.status, StatusCode::NOT_FOUND, "{:?}", like.body);
    let edit = app
        .call_as(
            &bob,
            Method::PATCH,
            &format!("/v1/comments/{first}"),
            Some(json!({"text": "innocent"})),
        )
        .await;
    assert_eq!(
        (edit.status, edit.body["code"].as_str()),
        (StatusCode::CONFLICT, Some("comment_removed"))
    );
    // AND the post's count still counts every comment written and not deleted
    until_counted(&app, &ann, &post, 3).await;
}
