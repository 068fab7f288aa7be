//! The follows service's user stories through the devstack: follows, requests to a
//! private account, blocks, lists with the viewer's state, account deletion, and the
//! events on `shutter.follows`.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test, with its location

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use shutter_e2e::{Answer, TestApp, User, eventually};

const WAIT: Duration = Duration::from_secs(90);

/// Registers a user of this story's own for each name (in that order).
async fn users<const N: usize>(app: &TestApp, names: [&str; N]) -> [User; N] {
    let mut users = Vec::new();
    for name in names {
        users.push(app.user(&TestApp::unique(name)).await);
    }
    users.try_into().unwrap()
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

/// `who` follows `whom` once the follows service knows `whom` (until its directory
/// consumer has read the registration, the user is 404).
async fn follow(app: &TestApp, who: &User, whom: &User) -> String {
    let path = format!("/v1/users/{}/follow", whom.username);
    eventually("the follows service to know the user", WAIT, || async {
        let answer = call(app, who, Method::PUT, &path, None).await;
        assert!(
            matches!(answer.status, StatusCode::OK | StatusCode::NOT_FOUND),
            "{answer:?}"
        );
        (answer.status == StatusCode::OK).then(|| answer.body["state"].as_str().unwrap().to_owned())
    })
    .await
}

/// Waits until `viewer` gets `status` for `whose` profile.
async fn profile_status_becomes(app: &TestApp, viewer: &User, whose: &User, status: StatusCode) {
    let path = format!("/v1/profiles/{}", whose.username);
    eventually(&format!("the profile to answer {status}"), WAIT, || async {
        (call(app, viewer, Method::GET, &path, None).await.status == status).then_some(())
    })
    .await;
}

/// Waits until `whose` profile shows (followers, following) as `viewer` reads it.
async fn counts_become(app: &TestApp, viewer: &User, whose: &User, expected: (u64, u64)) {
    let path = format!("/v1/profiles/{}", whose.username);
    eventually("the profile's counters", WAIT, || async {
        let profile = call(app, viewer, Method::GET, &path, None).await;
        let counts = (
            profile.body["follower_count"].as_u64().unwrap_or(99),
            profile.body["following_count"].as_u64().unwrap_or(99),
        );
        (counts == expected).then_some(())
    })
    .await;
}

/// `owner` turns private (once her profile exists); returns when the follows service
/// knows it from ProfileUpdated: a private account's lists are then refused to those who
/// do not follow it, such as `outsider`.
async fn turn_private(app: &TestApp, owner: &User, outsider: &User) {
    let path = format!("/v1/users/{}/followers", owner.username);
    eventually("the profile to turn private", WAIT, || async {
        let private = call(
            app,
            owner,
            Method::PATCH,
            "/v1/profiles/me",
            Some(json!({"private": true})),
        )
        .await;
        // (The profile follows registration through its event: 404 until then.)
        assert!(
            matches!(private.status, StatusCode::OK | StatusCode::NOT_FOUND),
            "{private:?}"
        );
        (private.status == StatusCode::OK).then_some(())
    })
    .await;
    eventually(
        "the follows service to know the account is private",
        WAIT,
        || async {
            let answer = call(app, outsider, Method::GET, &path, None).await;
            (answer.status == StatusCode::FORBIDDEN).then_some(())
        },
    )
    .await;
}

/// `asker` asks to follow the private `owner`, who answers (`approve` or `decline`).
async fn answer_request(app: &TestApp, owner: &User, asker: &User, answer: &str, state: &str) {
    assert_eq!(follow(app, asker, owner).await, "requested");
    let answered = call(
        app,
        owner,
        Method::POST,
        &format!("/v1/follow-requests/{}/{answer}", asker.id),
        None,
    )
    .await;
    assert_eq!(
        (answered.status, answered.body["state"].as_str()),
        (StatusCode::OK, Some(state)),
        "{answered:?}"
    );
}

/// Every entry of a list, paging 2 at a time; the usernames and the viewer's states.
async fn list(app: &TestApp, viewer: &User, path: &str) -> Vec<(String, String)> {
    let mut items = Vec::new();
    let mut next = format!("{path}?limit=2");
    loop {
        let page = call(app, viewer, Method::GET, &next, None).await;
        assert_eq!(page.status, StatusCode::OK, "{:?}", page.body);
        for item in page.body["items"].as_array().unwrap() {
            items.push((
                item["username"].as_str().unwrap().to_owned(),
                item["viewer_state"].as_str().unwrap_or("").to_owned(),
            ));
        }
        match page.body["next_cursor"].as_str() {
            Some(cursor) => next = format!("{path}?limit=2&cursor={cursor}"),
            None => return items,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn following_is_idempotent_and_listed_with_the_viewers_state() {
    let app = &TestApp::shared().await;
    let [ann, bob, cat] = &users(app, ["fann", "fbob", "fcat"]).await;
    assert_eq!(follow(app, ann, bob).await, "following");
    assert_eq!(follow(app, ann, bob).await, "following");
    assert_eq!(follow(app, cat, bob).await, "following");
    assert_eq!(follow(app, ann, cat).await, "following");
    // bob's followers, newest first, as ann sees them: she follows cat.
    let followers = list(app, ann, &format!("/v1/users/{}/followers", bob.username)).await;
    assert_eq!(
        followers,
        [
            (cat.username.clone(), "following".to_owned()),
            (ann.username.clone(), "none".to_owned())
        ]
    );
    let following = list(app, bob, &format!("/v1/users/{}/following", ann.username)).await;
    assert_eq!(
        following,
        [
            (cat.username.clone(), "none".to_owned()),
            (bob.username.clone(), "none".to_owned())
        ]
    );
    // The profiles' counters follow the events, once per edge.
    counts_become(app, cat, bob, (2, 0)).await;
    counts_become(app, cat, ann, (0, 2)).await;
    // One FollowStarted per edge, however often asked.
    let events = app.events_keyed("shutter.follows", &ann.id, 2).await;
    let kinds: Vec<_> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["FollowStarted", "FollowStarted"], "{events:?}");
    assert_eq!(events[0]["data"]["followee_id"], bob.id.as_str());
    assert_eq!(events[0]["data"]["seq"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_account_approves_or_declines_requests() {
    let app = &TestApp::shared().await;
    let [bob, cat, dan] = &users(app, ["fbob", "fcat", "fdan"]).await;
    turn_private(app, cat, dan).await;
    let cats_followers = format!("/v1/users/{}/followers", cat.username);
    assert_eq!(follow(app, dan, cat).await, "requested");
    assert_eq!(follow(app, bob, cat).await, "requested");
    let requests = call(app, cat, Method::GET, "/v1/follow-requests", None).await;
    let ids: Vec<_> = requests.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids, [bob.id.clone(), dan.id.clone()], "{:?}", requests.body);
    // Only cat answers her requests.
    let approve_dan = format!("/v1/follow-requests/{}/approve", dan.id);
    assert_eq!(
        call(app, bob, Method::POST, &approve_dan, None)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    let approved = call(app, cat, Method::POST, &approve_dan, None).await;
    assert_eq!(
        (approved.status, approved.body["state"].as_str()),
        (StatusCode::OK, Some("following"))
    );
    let declined = call(
        app,
        cat,
        Method::POST,
        &format!("/v1/follow-requests/{}/decline", bob.id),
        None,
    )
    .await;
    assert_eq!(
        (declined.status, declined.body["state"].as_str()),
        (StatusCode::OK, Some("none"))
    );
    // Answered requests are gone; answering again finds nothing.
    assert_eq!(
        call(app, cat, Method::POST, &approve_dan, None)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    let requests = call(app, cat, Method::GET, "/v1/follow-requests", None).await;
    assert_eq!(requests.body["items"], json!([]));
    // The approved follower sees cat's lists; the declined one does not.
    let seen = list(app, dan, &cats_followers).await;
    assert!(
        seen.iter().any(|(name, _)| name == &dan.username),
        "{seen:?}"
    );
    assert_eq!(
        call(app, bob, Method::GET, &cats_followers, None)
            .await
            .status,
        StatusCode::FORBIDDEN
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_block_ends_follows_both_ways_and_cannot_be_bypassed() {
    let app = &TestApp::shared().await;
    let [ann, bob, cat] = &users(app, ["fann", "fbob", "fcat"]).await;
    // ann follows bob and cat, and her counters say so.
    assert_eq!(follow(app, ann, bob).await, "following");
    assert_eq!(follow(app, ann, cat).await, "following");
    counts_become(app, cat, ann, (0, 2)).await;
    assert_eq!(follow(app, bob, ann).await, "following");
    let block = format!("/v1/users/{}/block", bob.username);
    for _ in 0..2 {
        let blocked = call(app, ann, Method::PUT, &block, None).await;
        assert_eq!(
            (blocked.status, blocked.body["blocked"].as_bool()),
            (StatusCode::OK, Some(true))
        );
    }
    // Neither follows the other now; bob cannot see ann's lists or follow her, and ann
    // must unblock before following bob.
    let anns_following = list(app, ann, &format!("/v1/users/{}/following", ann.username)).await;
    assert!(
        anns_following.iter().all(|(name, _)| name != &bob.username),
        "{anns_following:?}"
    );
    let anns_followers = format!("/v1/users/{}/followers", ann.username);
    assert_eq!(
        call(app, bob, Method::GET, &anns_followers, None)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    let bob_follows_ann = call(
        app,
        bob,
        Method::PUT,
        &format!("/v1/users/{}/follow", ann.username),
        None,
    )
    .await;
    assert_eq!(bob_follows_ann.status, StatusCode::NOT_FOUND);
    let ann_follows_bob = call(
        app,
        ann,
        Method::PUT,
        &format!("/v1/users/{}/follow", bob.username),
        None,
    )
    .await;
    assert_eq!(
        (
            ann_follows_bob.status,
            ann_follows_bob.body["code"].as_str()
        ),
        (StatusCode::CONFLICT, Some("blocked"))
    );
    // Their profiles are hidden from each other, not from others.
    profile_status_becomes(app, bob, ann, StatusCode::NOT_FOUND).await;
    profile_status_becomes(app, ann, bob, StatusCode::NOT_FOUND).await;
    let anns_profile = format!("/v1/profiles/{}", ann.username);
    let cat_view = call(
        app,
        &app.user(&TestApp::unique("fcatview")).await,
        Method::GET,
        &anns_profile,
        None,
    )
    .await;
    assert_eq!(cat_view.status, StatusCode::OK);
    let unblocked = call(app, ann, Method::DELETE, &block, None).await;
    assert_eq!(
        (unblocked.status, unblocked.body["blocked"].as_bool()),
        (StatusCode::OK, Some(false))
    );
    // The block's ends do not come back; following again is a new follow.
    assert!(
        list(app, bob, &anns_followers)
            .await
            .iter()
            .all(|(name, _)| name != &bob.username)
    );
    profile_status_becomes(app, bob, ann, StatusCode::OK).await;
    assert_eq!(follow(app, bob, ann).await, "following");
    // bob follows ann again; ann follows cat (bob's follow of her ended with the block).
    counts_become(app, bob, ann, (1, 1)).await;
    // ann's events: two follows started, one ended by the block, the block and unblock.
    let events = app.events_keyed("shutter.follows", &ann.id, 5).await;
    let mut kinds: Vec<_> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    kinds.sort_unstable();
    assert_eq!(
        kinds,
        [
            "FollowEnded",
            "FollowStarted",
            "FollowStarted",
            "UserBlocked",
            "UserUnblocked"
        ],
        "{events:?}"
    );
}

/// Waits until `viewer` gets `status` for the post (the posts service learns of follows
/// and blocks from their events).
async fn post_status_becomes(app: &TestApp, viewer: &User, post: &str, status: StatusCode) {
    let path = format!("/v1/posts/{post}");
    eventually(&format!("the post to answer {status}"), WAIT, || async {
        let answer = call(app, viewer, Method::GET, &path, None).await;
        (answer.status == status).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn posts_show_to_approved_followers_and_hide_behind_blocks() {
    let app = &TestApp::shared().await;
    let [ann, bob, cat, dan] = &users(app, ["fann", "fbob", "fcat", "fdan"]).await;
    // cat is private; she approved dan's request and declined bob's.
    turn_private(app, cat, dan).await;
    answer_request(app, cat, dan, "approve", "following").await;
    answer_request(app, cat, bob, "decline", "none").await;
    // cat is private: dan, whom she approved, sees her post; bob, whom she declined, not.
    let cats = app.published_post(cat).await;
    post_status_becomes(app, dan, &cats, StatusCode::OK).await;
    assert_eq!(
        call(app, bob, Method::GET, &format!("/v1/posts/{cats}"), None)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    // ann is public: bob sees her post until she blocks him, and again once she unblocks.
    let anns = app.published_post(ann).await;
    post_status_becomes(app, bob, &anns, StatusCode::OK).await;
    let block = format!("/v1/users/{}/block", bob.username);
    assert_eq!(
        call(app, ann, Method::PUT, &block, None).await.status,
        StatusCode::OK
    );
    post_status_becomes(app, bob, &anns, StatusCode::NOT_FOUND).await;
    assert_eq!(
        call(app, ann, Method::DELETE, &block, None).await.status,
        StatusCode::OK
    );
    post_status_becomes(app, bob, &anns, StatusCode::OK).await;
    // bob asks cat again; when she turns public, his pending request is approved.
    assert_eq!(follow(app, bob, cat).await, "requested");
    let public = call(
        app,
        cat,
        Method::PATCH,
        "/v1/profiles/me",
        Some(json!({"private": false})),
    )
    .await;
    assert_eq!(public.status, StatusCode::OK, "{public:?}");
    eventually("the pending request to be approved", WAIT, || async {
        (follow(app, bob, cat).await == "following").then_some(())
    })
    .await;
    post_status_becomes(app, bob, &cats, StatusCode::OK).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_clear_errors() {
    let app = &TestApp::shared().await;
    let [ann, cat, dan] = &users(app, ["fann", "fcat", "fdan"]).await;
    // cat has two followers: her list has a second page.
    assert_eq!(follow(app, ann, cat).await, "following");
    assert_eq!(follow(app, dan, cat).await, "following");
    // The cases about ann herself need the follows service to know her (until its
    // directory consumer has read her registration, she is a 404 there).
    let anns_followers = format!("/v1/users/{}/followers", ann.username);
    eventually("the follows service to know ann", WAIT, || async {
        let answer = call(app, ann, Method::GET, &anns_followers, None).await;
        (answer.status == StatusCode::OK).then_some(())
    })
    .await;
    let cases: [(Method, String, StatusCode, &str); 7] = [
        (
            Method::PUT,
            format!("/v1/users/{}/follow", ann.username),
            StatusCode::BAD_REQUEST,
            "username",
        ),
        (
            Method::PUT,
            "/v1/users/No%20Such!/follow".to_owned(),
            StatusCode::BAD_REQUEST,
            "username",
        ),
        (
            Method::PUT,
            "/v1/users/nobody.here/follow".to_owned(),
            StatusCode::NOT_FOUND,
            "",
        ),
        (
            Method::PUT,
            "/v1/users/nobody.here/block".to_owned(),
            StatusCode::NOT_FOUND,
            "",
        ),
        (
            Method::POST,
            "/v1/follow-requests/not-an-id/approve".to_owned(),
            StatusCode::BAD_REQUEST,
            "id",
        ),
        (
            Method::GET,
            format!("/v1/users/{}/followers?cursor=forged", ann.username),
            StatusCode::BAD_REQUEST,
            "cursor",
        ),
        (
            Method::GET,
            format!("/v1/users/{}/followers?limit=0", ann.username),
            StatusCode::BAD_REQUEST,
            "limit",
        ),
    ];
    for (method, path, status, field) in cases {
        let answer = call(app, ann, method.clone(), &path, None).await;
        assert_eq!(answer.status, status, "{method} {path}: {:?}", answer.body);
        if !field.is_empty() {
            assert_eq!(answer.body["field"], field, "{method} {path}");
        }
    }
    // A cursor of one list does not open another.
    let page = call(
        app,
        ann,
        Method::GET,
        &format!("/v1/users/{}/followers?limit=1", cat.username),
        None,
    )
    .await;
    let cursor = page.body["next_cursor"].as_str().unwrap();
    let elsewhere = call(
        app,
        ann,
        Method::GET,
        &format!("/v1/users/{}/followers?cursor={cursor}", ann.username),
        None,
    )
    .await;
    assert_eq!(elsewhere.status, StatusCode::BAD_REQUEST);
    let anonymous = app
        .call(
            Method::PUT,
            &format!("/v1/users/{}/follow", ann.username),
            None,
            None,
        )
        .await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_account_leaves_every_list() {
    let app = &TestApp::shared().await;
    let [cat, dan] = &users(app, ["fcat", "fdan"]).await;
    // cat is private and approved dan's request.
    turn_private(app, cat, dan).await;
    answer_request(app, cat, dan, "approve", "following").await;
    let cats_followers = format!("/v1/users/{}/followers", cat.username);
    assert!(
        list(app, cat, &cats_followers)
            .await
            .iter()
            .any(|(n, _)| n == &dan.username)
    );
    let deleted = call(
        app,
        dan,
        Method::DELETE,
        "/v1/users/me",
        Some(json!({"password": shutter_e2e::PASSWORD})),
    )
    .await;
    assert!(deleted.status.is_success(), "{deleted:?}");
    eventually(
        "the deleted account to leave cat's followers",
        WAIT,
        || async {
            let followers = list(app, cat, &cats_followers).await;
            followers
                .iter()
                .all(|(n, _)| n != &dan.username)
                .then_some(())
        },
    )
    .await;
    // Its follow ended with an event saying why.
    let events = app.events_keyed("shutter.follows", &dan.id, 3).await;
    let ended = events.iter().find(|e| e["type"] == "FollowEnded").unwrap();
    assert_eq!(ended["data"]["reason"], "account_deleted");
}
