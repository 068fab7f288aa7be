//! The local gateway does not depend on the broker. With events in flight and the
//! devstack's Kafka frozen (SIGSTOP on tansu), reads and writes are answered as usual;
//! once the broker resumes, the events written meanwhile arrive, once. On AWS, API
//! Gateway and the request path never wait on MSK; locally they must not either.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test, with its location

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use shutter_core::UserId;
use shutter_e2e::{Answer, Stopped, TestApp, User, eventually};
use shutter_events::{Envelope, Event, ProfileFacts};

const WAIT: Duration = Duration::from_secs(90);

/// Every answer here takes milliseconds: a request still unanswered after this stalled.
const PATIENCE: Duration = Duration::from_secs(5);

/// The functions that consume `shutter.profiles`.
const PROFILE_CONSUMERS: [&str; 6] = [
    "FeedEventsFunction",
    "SearchIndexerFunction",
    "PostsEventsFunction",
    "LikesDirectoryEventsFunction",
    "FollowsDirectoryEventsFunction",
    "CommentsDirectoryEventsFunction",
];

/// Sends a request that must be answered within [`PATIENCE`].
async fn promptly(
    app: &TestApp,
    client: &reqwest::Client,
    user: &User,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> Answer {
    let mut request = client
        .request(method.clone(), app.url(path))
        .bearer_auth(&user.access_token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    match request.send().await {
        Ok(response) => TestApp::answer(response).await,
        Err(e) => panic!("{method} {path} with the broker frozen: {e}"),
    }
}

async fn follow(app: &TestApp, who: &User, whom: &User) {
    let path = format!("/v1/users/{}/follow", whom.username);
    eventually("the follows service to know the user", WAIT, || async {
        let answer = app
            .call(Method::PUT, &path, Some(&who.access_token), None)
            .await;
        (answer.status == StatusCode::OK).then_some(())
    })
    .await;
}

/// Waits until `whose` profile shows `n` followers to `viewer`.
async fn follower_count_becomes(app: &TestApp, viewer: &User, whose: &User, n: u64) {
    let path = format!("/v1/profiles/{}", whose.username);
    eventually(&format!("{n} followers counted"), WAIT, || async {
        let answer = app
            .call(Method::GET, &path, Some(&viewer.access_token), None)
            .await;
        (answer.body["follower_count"] == n).then_some(())
    })
    .await;
}

fn profile_consumer_invocations(app: &TestApp) -> u64 {
    PROFILE_CONSUMERS
        .iter()
        .map(|f| app.stack.invocations(f))
        .sum()
}

/// Profiles of made-up users: six consumers' worth of batches, so some are in flight (and
/// more fetched, waiting) when the broker freezes, each to be committed afterwards.
fn backlog(n: usize) -> Vec<Envelope> {
    (0..n)
        .map(|i| {
            let user_id = UserId::generate();
            Envelope::new(
                Event::ProfileUpdated(ProfileFacts {
                    user_id: user_id.clone(),
                    username: format!("backlog_{i}"),
                    display_name: format!("Backlog {i}"),
                    private: false,
                    avatar_key: None,
                    version: 0,
                    private_since: None,
                }),
                Some(&user_id),
                "broker-freeze-backlog",
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_broker_stalls_no_request_and_its_events_arrive_when_it_resumes() {
    // Apart, as the devstack binary is: a stall shows as requests timing out.
    let app = TestApp::spawn_apart(devstack::DevstackConfig::for_tests()).await;
    let pid = app.stack.broker_pid().expect("the devstack runs tansu");
    let ann = app.user(&TestApp::unique("ann")).await;
    let bob = app.user(&TestApp::unique("bob")).await;
    let carol = app.user(&TestApp::unique("carol")).await;
    let post = app.published_post(&ann).await;
    // The follows service knows ann and bob once carol can follow them.
    follow(&app, &carol, &ann).await;
    follow(&app, &carol, &bob).await;
    follower_count_becomes(&app, &bob, &ann, 1).await;

    // GIVEN events in flight: consumers at work on a backlog when the broker freezes
    // (what the setup sent is consumed first, so that the batches counted next are the
    // backlog's: a late setup batch once passed for the backlog, and the freeze came
    // before the backlog was fetched)
    eventually("the setup's events to be consumed", WAIT, || async {
        let was = profile_consumer_invocations(&app);
        tokio::time::sleep(Duration::from_secs(2)).await;
        (profile_consumer_invocations(&app) == was).then_some(())
    })
    .await;
    let before = profile_consumer_invocations(&app);
    // Big enough that each consumer is still at work when the freeze comes however fast
    // the machine is (with 600, a quick run had taken it all before the freeze).
    app.produce(&backlog(3000)).await;
    eventually(
        "the profile consumers to take the backlog",
        WAIT,
        // (one batch for each consumer on average: every consumer is on the backlog)
        || async {
            (profile_consumer_invocations(&app) >= before + PROFILE_CONSUMERS.len() as u64)
                .then_some(())
        },
    )
    .await;
    let frozen = Stopped::new(vec![pid]);
    let at_freeze = profile_consumer_invocations(&app);

    // WHEN clients read and write meanwhile
    // THEN every request is answered, promptly
    let client = reqwest::Client::builder()
        .timeout(PATIENCE)
        .build()
        .unwrap();
    let me = promptly(&app, &client, &ann, Method::GET, "/v1/users/me", None).await;
    assert_eq!(me.status, StatusCode::OK, "{:?}", me.body);
    assert_eq!(me.body["username"], ann.username.as_str());
    let read = promptly(
        &app,
        &client,
        &bob,
        Method::GET,
        &format!("/v1/posts/{post}"),
        None,
    )
    .await;
    assert_eq!(read.status, StatusCode::OK, "{:?}", read.body);
    assert_eq!(read.body["status"], "published");
    let profile = promptly(
        &app,
        &client,
        &bob,
        Method::GET,
        &format!("/v1/profiles/{}", ann.username),
        None,
    )
    .await;
    assert_eq!(profile.status, StatusCode::OK, "{:?}", profile.body);
    assert_eq!(profile.body["username"], ann.username.as_str());
    let patched = promptly(
        &app,
        &client,
        &ann,
        Method::PATCH,
        "/v1/profiles/me",
        Some(json!({"bio": "written while Kafka slept"})),
    )
    .await;
    assert_eq!(patched.status, StatusCode::OK, "{:?}", patched.body);
    assert_eq!(patched.body["bio"], "written while Kafka slept");
    let followed = promptly(
        &app,
        &client,
        &bob,
        Method::PUT,
        &format!("/v1/users/{}/follow", ann.username),
        None,
    )
    .await;
    assert_eq!(followed.status, StatusCode::OK, "{:?}", followed.body);
    assert_eq!(followed.body["state"], "following");
    // AND the consumers go on with what they had fetched, each batch committed to a
    // broker that does not answer, and the gateway still answers
    eventually(
        "a consumer batch to end with the broker frozen (a poller stuck on the broker?)",
        WAIT,
        || async { (profile_consumer_invocations(&app) > at_freeze).then_some(()) },
    )
    .await;
    let again = promptly(&app, &client, &bob, Method::GET, "/v1/users/me", None).await;
    assert_eq!(again.status, StatusCode::OK, "{:?}", again.body);
    assert_eq!(again.body["username"], bob.username.as_str());

    // AND once the broker resumes, the follow made meanwhile is counted, once
    drop(frozen);
    follower_count_becomes(&app, &bob, &ann, 2).await;
    let bobs = app
        .call(
            Method::GET,
            &format!("/v1/profiles/{}", bob.username),
            Some(&ann.access_token),
            None,
        )
        .await;
    assert_eq!(bobs.body["following_count"], 1, "{:?}", bobs.body);
    app.stop().await;
}
