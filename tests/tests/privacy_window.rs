//! The privacy window: an account that turns private is still public to each service
//! until the `ProfileUpdated` reaches that service's directory. Decisions made on that
//! stale copy are undone when it arrives: a follow that started after the switch becomes
//! the pending request it should have been (with its events, counters exact), and a post
//! published in the window is shown to followers only (post, feed, search). A follow made
//! before the switch stands.
//!
//! The window is made certain, not raced: the broker is frozen (SIGSTOP on tansu) from
//! just before the switch until the follow and the post are done, so no event can arrive
//! in between, as under a broker backlog.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test, with its location

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use shutter_e2e::{Answer, PNG, Stopped, TestApp, User, eventually};

const WAIT: Duration = Duration::from_secs(120);

async fn call(
    app: &TestApp,
    user: &User,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> Answer {
    app.call(method, path, Some(&user.access_token), body).await
}

async fn get(app: &TestApp, user: &User, path: &str) -> Answer {
    call(app, user, Method::GET, path, None).await
}

/// `who` follows `whom` once the follows service knows `whom`; the state answered.
async fn follow(app: &TestApp, who: &User, whom: &User) -> String {
    let path = format!("/v1/users/{}/follow", whom.username);
    eventually("the follows service to know the user", WAIT, || async {
        let answer = call(app, who, Method::PUT, &path, None).await;
        (answer.status == StatusCode::OK).then(|| answer.body["state"].as_str().unwrap().to_owned())
    })
    .await
}

/// Waits until `whose` profile shows (followers, following) to themselves.
async fn counts_become(app: &TestApp, whose: &User, expected: (u64, u64)) {
    eventually(
        &format!("{}'s counters to be {expected:?}", whose.username),
        WAIT,
        || async {
            let profile = get(app, whose, &format!("/v1/profiles/{}", whose.username)).await;
            let counts = (
                profile.body["follower_count"].as_u64().unwrap_or(99),
                profile.body["following_count"].as_u64().unwrap_or(99),
            );
            (counts == expected).then_some(())
        },
    )
    .await;
}

/// The usernames of a followers, following or requests page.
fn usernames(page: &Answer) -> Vec<String> {
    assert_eq!(page.status, StatusCode::OK, "{page:?}");
    page.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["username"].as_str().unwrap().to_owned())
        .collect()
}

fn ids(page: &Answer) -> Vec<String> {
    assert_eq!(page.status, StatusCode::OK, "{page:?}");
    page.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_owned())
        .collect()
}

/// Creates a post with `caption` and one PNG and uploads it; its id. Publication needs
/// no broker (S3 notifies the posts service through SQS).
async fn post(app: &TestApp, author: &User, caption: &str) -> String {
    let media = json!([{"content_type": "image/png", "size": PNG.len()}]);
    let body = json!({"caption": caption, "media": media});
    let created = call(app, author, Method::POST, "/v1/posts", Some(body)).await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    let id = created.body["post"]["id"].as_str().unwrap().to_owned();
    let uploaded = app.upload(&created.body["uploads"][0]["upload"], PNG).await;
    assert!(uploaded.is_success(), "S3 took the upload: {uploaded}");
    let path = format!("/v1/posts/{id}");
    eventually("the post to be published", WAIT, || async {
        (get(app, author, &path).await.body["status"] == "published").then_some(())
    })
    .await;
    id
}

async fn feed(app: &TestApp, user: &User) -> Vec<String> {
    ids(&get(app, user, "/v1/feed?limit=50").await)
}

/// A posts search for `q` as `user`, after asking OpenSearch to make every write
/// searchable.
async fn search(app: &TestApp, user: &User, q: &str) -> Vec<String> {
    app.http
        .post(format!("{}/_refresh", app.stack.opensearch_url()))
        .send()
        .await
        .unwrap();
    ids(&get(app, user, &format!("/v1/search/posts?q={q}")).await)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follow_and_a_post_in_the_window_are_decided_by_the_privacy_in_force() {
    let app = TestApp::shared().await;
    let pid = app.stack.broker_pid().expect("the devstack runs tansu");
    let [bob, ann, cat, dan, zed] = ["bob", "ann", "cat", "dan", "zed"].map(TestApp::unique);
    let (bob, ann, cat, dan, zed) = futures::join!(
        app.user(&bob),
        app.user(&ann),
        app.user(&cat),
        app.user(&dan),
        app.user(&zed)
    );
    let word = TestApp::unique("lagoon").replace('_', "");

    // GIVEN ann follows the public bob (before the switch), and zed has a post
    assert_eq!(follow(&app, &ann, &bob).await, "following");
    counts_become(&app, &bob, (1, 0)).await;
    // (cat is known to the follows service, and bob's profile to the profiles service)
    assert_eq!(follow(&app, &cat, &zed).await, "following");
    let unfollow = format!("/v1/users/{}/follow", zed.username);
    assert_eq!(
        call(&app, &cat, Method::DELETE, &unfollow, None)
            .await
            .status,
        StatusCode::OK
    );
    counts_become(&app, &zed, (0, 0)).await;
    let zeds = post(&app, &zed, "a public post").await;

    // WHEN bob turns private, and at once (no event can arrive: the broker is frozen)
    // cat follows him and bob posts
    let frozen = Stopped::new(vec![pid]);
    let private = call(
        &app,
        &bob,
        Method::PATCH,
        "/v1/profiles/me",
        Some(json!({"private": true})),
    )
    .await;
    assert_eq!(private.status, StatusCode::OK, "{:?}", private.body);
    assert_eq!(private.body["private"], true);
    let path = format!("/v1/users/{}/follow", bob.username);
    let window_follow = call(&app, &cat, Method::PUT, &path, None).await;
    assert_eq!(window_follow.status, StatusCode::OK, "{window_follow:?}");
    // the follows service still has bob as public: this is the window
    assert_eq!(
        window_follow.body["state"], "following",
        "{window_follow:?}"
    );
    let window_post = post(&app, &bob, &format!("a {word} in the window")).await;
    drop(frozen);

    // THEN once the event arrives, cat's follow is a pending request, to both sides
    eventually("cat's follow to be a request", WAIT, || async {
        let requests = usernames(&get(&app, &bob, "/v1/follow-requests").await);
        (requests == [cat.username.as_str()]).then_some(())
    })
    .await;
    let followers = get(&app, &bob, &format!("/v1/users/{}/followers", bob.username)).await;
    assert_eq!(usernames(&followers), [ann.username.as_str()]);
    let cats = get(&app, &cat, &format!("/v1/users/{}/following", cat.username)).await;
    assert_eq!(usernames(&cats), Vec::<String>::new());
    let again = call(&app, &cat, Method::PUT, &path, None).await;
    assert_eq!(again.body["state"], "requested", "{again:?}");
    // AND the counters count ann only, exactly
    counts_become(&app, &bob, (1, 0)).await;
    counts_become(&app, &cat, (0, 0)).await;
    counts_become(&app, &ann, (0, 1)).await;
    // AND cat's edge moved with its events, each once: started, ended (awaits approval),
    // requested
    let events = app.events_keyed("shutter.follows", &cat.id, 5).await;
    let to_bob: Vec<&Value> = events
        .iter()
        .filter(|e| e["data"]["followee_id"] == bob.id.as_str())
        .collect();
    let moves: Vec<(&str, u64)> = to_bob
        .iter()
        .map(|e| {
            (
                e["type"].as_str().unwrap(),
                e["data"]["seq"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        moves,
        [
            ("FollowStarted", 1),
            ("FollowEnded", 2),
            ("FollowRequested", 3)
        ],
        "{to_bob:?}"
    );
    assert_eq!(to_bob[1]["data"]["reason"], "awaits_approval");
    assert_eq!(to_bob[1]["actor"], bob.id.as_str());

    // AND the window post is bob's and ann's (she followed before), nobody else's
    let post_path = format!("/v1/posts/{window_post}");
    eventually("the window post to be hidden from others", WAIT, || async {
        let seen_by_ann = get(&app, &ann, &post_path).await.status == StatusCode::OK;
        let dans = get(&app, &dan, &post_path).await.status;
        let cats = get(&app, &cat, &post_path).await.status;
        (seen_by_ann && dans == StatusCode::NOT_FOUND && cats == StatusCode::NOT_FOUND)
            .then_some(())
    })
    .await;
    assert_eq!(get(&app, &bob, &post_path).await.status, StatusCode::OK);
    // in feeds: ann's has it; cat's does not once the feed has her follow's end (she
    // follows zed after it: one partition, in order, so zed's post in her feed says the
    // end was applied before)
    eventually("the window post in ann's feed", WAIT, || async {
        feed(&app, &ann).await.contains(&window_post).then_some(())
    })
    .await;
    assert_eq!(follow(&app, &cat, &zed).await, "following");
    eventually("zed's post in cat's feed", WAIT, || async {
        feed(&app, &cat).await.contains(&zeds).then_some(())
    })
    .await;
    assert!(!feed(&app, &cat).await.contains(&window_post));
    assert!(!feed(&app, &dan).await.contains(&window_post));
    // in search: bob and ann find it, dan and cat do not
    eventually(
        "the window post indexed and hidden from others",
        WAIT,
        || async {
            let found = search(&app, &bob, &word).await == [window_post.clone()]
                && search(&app, &ann, &word).await == [window_post.clone()];
            let hidden = search(&app, &dan, &word).await.is_empty()
                && search(&app, &cat, &word).await.is_empty();
            (found && hidden).then_some(())
        },
    )
    .await;

    // AND bob may approve cat's request as any other
    let approve = format!("/v1/follow-requests/{}/approve", cat.id);
    let approved = call(&app, &bob, Method::POST, &approve, None).await;
    assert_eq!(approved.status, StatusCode::OK, "{approved:?}");
    assert_eq!(approved.body["state"], "following");
    counts_become(&app, &bob, (2, 0)).await;
    counts_become(&app, &cat, (0, 2)).await;
}
