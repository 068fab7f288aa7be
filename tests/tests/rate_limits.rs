//! Rate limits and quotas, tried as an abuser would through the devstack: a burst of
//! parallel likes against a lowered limit, password guessing, a flood of registrations
//! from one address, `X-Forwarded-For` as a way out of (or into) a bucket, and the
//! gateway's own route throttles. Each story lowers its limits as template parameters on
//! a devstack of its own; the stories take turns (one devstack at a time on this machine).

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test, with its location

use std::time::Duration;

use futures::StreamExt;
use futures::future::join_all;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use shutter_e2e::{Answer, PASSWORD, TestApp, User, eventually};

const WAIT: Duration = Duration::from_secs(90);

/// One story's devstack at a time.
static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A devstack of the story's own with the test configuration and `lowered` parameters.
async fn stack_with(lowered: &[(&str, &str)]) -> TestApp {
    let mut config = devstack::DevstackConfig::for_tests();
    for (name, value) in lowered {
        config
            .parameters
            .insert((*name).to_owned(), (*value).to_owned());
    }
    TestApp::spawn_with(config).await
}

/// Waits out the last seconds of the current clock window of `seconds`, so that a
/// story's burst is counted in one window.
async fn clear_of_window_end(seconds: u64) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let left = seconds - now % seconds;
    if left < 20 {
        tokio::time::sleep(Duration::from_secs(left + 1)).await;
    }
}

fn header<'a>(answer: &'a Answer, name: &str) -> &'a str {
    answer
        .headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

/// A 429 `rate_limited` naming `limit`, with a `Retry-After` within its window and the
/// rate fields.
fn assert_rate_limited(answer: &Answer, limit: &str, window: u64) {
    assert_eq!(
        answer.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{:?}",
        answer.body
    );
    assert_eq!(header(answer, "content-type"), "application/problem+json");
    assert_eq!(answer.body["code"], "rate_limited", "{:?}", answer.body);
    assert_eq!(answer.body["limit"], limit, "{:?}", answer.body);
    assert_eq!(answer.body["window_seconds"], window, "{:?}", answer.body);
    let retry: u64 = header(answer, "retry-after").parse().unwrap();
    assert!((1..=window).contains(&retry), "Retry-After {retry}");
    assert_eq!(answer.body["retry_after"], retry);
    assert!(
        header(answer, "ratelimit-policy").contains(&format!("\"{limit}-")),
        "{:?}",
        answer.headers
    );
    assert!(
        header(answer, "ratelimit").contains(";r=0;"),
        "{:?}",
        answer.headers
    );
}

/// The likers of `post` (the first page is enough: at most one here).
async fn likers(app: &TestApp, user: &User, post: &str) -> Option<Vec<Value>> {
    let page = app
        .call(
            Method::GET,
            &format!("/v1/posts/{post}/likes"),
            Some(&user.access_token),
            None,
        )
        .await;
    (page.status == StatusCode::OK).then(|| page.body["items"].as_array().unwrap().clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forty_parallel_likes_against_a_limit_of_25_give_exactly_25() {
    let _turn = TURN.lock().await;
    let app = stack_with(&[("LikesPerHour", "25")]).await;
    let author = app.user(&TestApp::unique("author")).await;
    let fan = app.user(&TestApp::unique("fan")).await;
    let posts: Vec<String> = futures::stream::iter(0..40)
        .map(|_| app.published_post(&author))
        .buffer_unordered(8)
        .collect()
        .await;
    // Wait until the likes service knows each post (its likers list answers), without a
    // like that would count.
    for post in &posts {
        eventually("the likes service to know the post", WAIT, || async {
            likers(&app, &fan, post).await
        })
        .await;
    }

    clear_of_window_end(3600).await;
    let answers = join_all(posts.iter().map(|post| {
        let path = format!("/v1/posts/{post}/like");
        let (app, fan) = (&app, &fan);
        async move {
            app.call(Method::PUT, &path, Some(&fan.access_token), None)
                .await
        }
    }))
    .await;
    let ok: Vec<&Answer> = answers
        .iter()
        .filter(|a| a.status == StatusCode::OK)
        .collect();
    let limited: Vec<&Answer> = answers
        .iter()
        .filter(|a| a.status == StatusCode::TOO_MANY_REQUESTS)
        .collect();
    assert_eq!(
        (ok.len(), limited.len()),
        (25, 15),
        "{:?}",
        answers.iter().map(|a| a.status).collect::<Vec<_>>()
    );
    for answer in &limited {
        assert_rate_limited(answer, "likes", 3600);
    }
    // A success carries the policy and what remains of it.
    assert_eq!(
        header(ok[0], "ratelimit-policy"),
        "\"likes-1h\";q=25;w=3600"
    );
    assert!(header(ok[0], "ratelimit").starts_with("\"likes-1h\";r="));

    // Exactly 25 likes exist: the refused requests changed nothing.
    let mut liked = 0;
    for post in &posts {
        let items = likers(&app, &fan, post).await.unwrap();
        liked += items
            .iter()
            .filter(|i| i["user_id"] == fan.id.as_str())
            .count();
    }
    assert_eq!(liked, 25);

    // Someone else's likes are their own.
    let other = app.user(&TestApp::unique("other")).await;
    let answer = app
        .call(
            Method::PUT,
            &format!("/v1/posts/{}/like", posts[0]),
            Some(&other.access_token),
            None,
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.body);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sixth_password_check_in_15_minutes_is_refused_even_when_right() {
    let _turn = TURN.lock().await;
    let app = stack_with(&[
        ("PasswordChecksPerAccount", "5"),
        ("PasswordChecksPerAddress", "20"),
        ("PasswordCheckBackoffTiers", "4"),
    ])
    .await;
    let name = TestApp::unique("victim");
    assert_eq!(app.register(&name).await.status, StatusCode::ACCEPTED);
    let bystander = TestApp::unique("bystander");
    assert_eq!(app.register(&bystander).await.status, StatusCode::ACCEPTED);

    clear_of_window_end(900).await;
    for _ in 0..5 {
        let answer = app.login(&name, "not the password").await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{:?}", answer.body);
        assert!(header(&answer, "ratelimit-policy").contains("\"password_checks-15m\";q=5;w=900"));
    }
    // The right password now: still refused, before any password is checked.
    let answer = app.login(&name, PASSWORD).await;
    assert_rate_limited(&answer, "password_checks", 900);
    assert!(answer.body.get("access_token").is_none());
    // The same account by its email: the same account, the same limit.
    let answer = app.login(&format!("{name}@example.com"), PASSWORD).await;
    assert_rate_limited(&answer, "password_checks", 900);

    // Another account from the same address is not locked out (the address has 20).
    let answer = app.login(&bystander, PASSWORD).await;
    assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.body);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_registrations_from_one_address_stops_at_the_limit() {
    let _turn = TURN.lock().await;
    let app = stack_with(&[("RegistrationsPerAddressPerHour", "5")]).await;
    clear_of_window_end(3600).await;
    // Someone registered before the flood, from the same address.
    let resident = app.user(&TestApp::unique("resident")).await;
    // Bodies that are no registration create nothing and are not counted: each is a 400,
    // and the four registrations left in the hour are still there after them.
    for body in [
        json!({"username": "no email", "password": PASSWORD}),
        json!({"username": TestApp::unique("bot"), "email": "not an email", "password": PASSWORD}),
        json!(["not", "an", "object"]),
        json!({}),
        json!({"username": TestApp::unique("bot")}),
    ] {
        let answer = app
            .http
            .post(app.url("/v1/auth/register"))
            .json(&body)
            .send()
            .await
            .unwrap();
        let answer = TestApp::answer(answer).await;
        assert_eq!(
            answer.status,
            StatusCode::BAD_REQUEST,
            "{body}: {:?}",
            answer.body
        );
    }

    let mut accepted = 1;
    let mut refused = Vec::new();
    for i in 0..8 {
        let username = TestApp::unique("bot");
        // Each claims another address: API Gateway's source address is what counts.
        let answer = app
            .http
            .post(app.url("/v1/auth/register"))
            .header("x-forwarded-for", format!("198.51.100.{i}"))
            .json(&json!({"username": username, "email": format!("{username}@example.com"), "password": PASSWORD}))
            .send()
            .await
            .unwrap();
        let answer = TestApp::answer(answer).await;
        match answer.status {
            StatusCode::ACCEPTED => accepted += 1,
            _ => refused.push((username, answer)),
        }
    }
    assert_eq!((accepted, refused.len()), (5, 4));
    for (username, answer) in &refused {
        assert_rate_limited(answer, "registrations", 3600);
        // Nothing was created: no account has the name.
        let login = app.login(username, PASSWORD).await;
        assert_eq!(login.status, StatusCode::UNAUTHORIZED, "{:?}", login.body);
    }

    // The signed-in resident is not affected.
    let me = app
        .call(
            Method::GET,
            "/v1/users/me",
            Some(&resident.access_token),
            None,
        )
        .await;
    assert_eq!(me.status, StatusCode::OK, "{:?}", me.body);
    let post = app
        .call(
            Method::POST,
            "/v1/posts",
            Some(&resident.access_token),
            Some(json!({"caption": "still here", "media": [{"content_type": "image/png", "size": 67}]})),
        )
        .await;
    assert_eq!(post.status, StatusCode::CREATED, "{:?}", post.body);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn x_forwarded_for_neither_escapes_a_limit_nor_shares_one() {
    let _turn = TURN.lock().await;
    let app = stack_with(&[("FollowsPerHour", "3")]).await;
    let alice = app.user(&TestApp::unique("alice")).await;
    let bob = app.user(&TestApp::unique("bob")).await;
    let mut targets = Vec::new();
    for _ in 0..4 {
        targets.push(app.user(&TestApp::unique("star")).await);
    }
    let follow = |who: &User, whom: &User, forwarded: &str| {
        let req = app
            .http
            .put(app.url(&format!("/v1/users/{}/follow", whom.username)))
            .bearer_auth(&who.access_token)
            .header("x-forwarded-for", forwarded.to_owned());
        async move { TestApp::answer(req.send().await.unwrap()).await }
    };
    // Wait until the follows service knows each target (its followers list answers),
    // without a follow that would count.
    for target in &targets {
        eventually("the follows service to know the user", WAIT, || async {
            let answer = app
                .call(
                    Method::GET,
                    &format!("/v1/users/{}/followers", target.username),
                    Some(&bob.access_token),
                    None,
                )
                .await;
            (answer.status == StatusCode::OK).then_some(())
        })
        .await;
    }

    clear_of_window_end(3600).await;
    // Alice uses up her 3, each time claiming another address; the 4th is refused.
    for (i, target) in targets[..3].iter().enumerate() {
        let answer = follow(&alice, target, &format!("198.51.100.{i}")).await;
        assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.body);
    }
    let answer = follow(&alice, &targets[3], "192.0.2.99").await;
    assert_rate_limited(&answer, "follows", 3600);

    // Bob claims the very address alice used: his count is his own.
    let answer = follow(&bob, &targets[0], "198.51.100.0").await;
    assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.body);
    assert!(
        header(&answer, "ratelimit").contains(";r=2;"),
        "{:?}",
        answer.headers
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_throttles_the_auth_routes_before_any_function_runs() {
    let _turn = TURN.lock().await;
    let app = stack_with(&[("AuthThrottleRate", "1"), ("AuthThrottleBurst", "3")]).await;
    let answers = join_all((0..10).map(|_| app.login("nobody_here", "wrong password"))).await;
    let throttled: Vec<&Answer> = answers
        .iter()
        .filter(|a| a.status == StatusCode::TOO_MANY_REQUESTS)
        .collect();
    assert!(
        throttled.len() >= 6,
        "{:?}",
        answers.iter().map(|a| a.status).collect::<Vec<_>>()
    );
    for answer in &throttled {
        // API Gateway's own answer, not a function's problem+json.
        assert_eq!(answer.body, json!({"message": "Too Many Requests"}));
    }
    // Other routes keep the stage's default throttle.
    for _ in 0..10 {
        let answer = app
            .call(Method::GET, "/.well-known/jwks.json", None, None)
            .await;
        assert_eq!(answer.status, StatusCode::OK);
    }
    // The bucket refills at its rate.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let answer = app.login("nobody_here", "wrong password").await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{:?}", answer.body);
    app.stop().await;
}
