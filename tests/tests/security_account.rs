//! Account security and text spoofing, tried as an attacker would through the devstack:
//! an email change with a stolen access token alone, registration as a way to learn
//! which emails have accounts, a deleted account's username taken over at once, and
//! bidirectional overrides and other invisible format characters in display names, bios,
//! captions and comments. Every refusal is a clear 4xx that changed nothing.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test, with its location

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use shutter_e2e::{Answer, PASSWORD, PNG, TestApp, User, eventually, token_subject};

const WAIT: Duration = Duration::from_secs(90);

async fn me(app: &TestApp, user: &User) -> Value {
    let answer = app
        .call(Method::GET, "/v1/users/me", Some(&user.access_token), None)
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.body);
    answer.body
}

async fn patch_me(app: &TestApp, user: &User, body: Value) -> Answer {
    app.call(
        Method::PATCH,
        "/v1/users/me",
        Some(&user.access_token),
        Some(body),
    )
    .await
}

async fn register(app: &TestApp, username: &str, email: &str, password: &str) -> Answer {
    app.call(
        Method::POST,
        "/v1/auth/register",
        None,
        Some(json!({"username": username, "email": email, "password": password})),
    )
    .await
}

fn problem(answer: &Answer) -> (StatusCode, Option<&str>, Option<&str>) {
    (
        answer.status,
        answer.body["code"].as_str(),
        answer.body["field"].as_str(),
    )
}

/// The types of the events on `shutter.identity` keyed by `user_id`, at least `expected`.
async fn identity_events(app: &TestApp, user_id: &str, expected: usize) -> Vec<Value> {
    app.events_keyed("shutter.identity", user_id, expected)
        .await
}

fn types(events: &[Value]) -> Vec<&str> {
    events.iter().filter_map(|e| e["type"].as_str()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stolen_access_token_cannot_move_the_account_to_another_email() {
    let app = &TestApp::shared().await;
    let victim = app.user(&TestApp::unique("vic")).await;
    let own_email = format!("{}@example.com", victim.username);
    let thief_email = format!("thief-{}@example.com", victim.username);

    // The thief has the access token, not the password.
    let without = patch_me(app, &victim, json!({"email": thief_email})).await;
    assert_eq!(
        problem(&without),
        (
            StatusCode::BAD_REQUEST,
            Some("invalid_input"),
            Some("current_password")
        )
    );
    let wrong = patch_me(
        app,
        &victim,
        json!({"email": thief_email, "current_password": "a good guess, surely", "settings": {"push_notifications": false}}),
    )
    .await;
    assert_eq!(
        problem(&wrong),
        (
            StatusCode::FORBIDDEN,
            Some("password_mismatch"),
            Some("current_password")
        )
    );
    // Nothing changed: not the email, not the settings sent along, and the thief's
    // address does not log in.
    let account = me(app, &victim).await;
    assert_eq!(account["email"], own_email.as_str());
    assert_eq!(account["settings"]["push_notifications"], true);
    assert_eq!(
        app.login(&thief_email, PASSWORD).await.status,
        StatusCode::UNAUTHORIZED
    );

    // The owner, with the password, moves the account.
    let new_email = format!("new-{}@example.com", victim.username);
    let moved = patch_me(
        app,
        &victim,
        json!({"email": new_email, "current_password": PASSWORD}),
    )
    .await;
    assert_eq!(moved.status, StatusCode::OK, "{:?}", moved.body);
    assert_eq!(moved.body["email"], new_email.as_str());
    assert_eq!(app.login(&new_email, PASSWORD).await.status, StatusCode::OK);
    assert_eq!(
        app.login(&own_email, PASSWORD).await.status,
        StatusCode::UNAUTHORIZED
    );
    // One email change went out: the refused attempts published nothing.
    let events = identity_events(app, &victim.id, 2).await;
    assert_eq!(types(&events), ["UserRegistered", "UserEmailChanged"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registration_does_not_reveal_which_emails_have_accounts() {
    let app = &TestApp::shared().await;
    let alice = app.user(&TestApp::unique("alice")).await;
    let alice_email = format!("{}@example.com", alice.username);

    // A new email and a taken one (in another case) get the same answer: status, and a
    // body of what was sent, with no id.
    let fresh_name = TestApp::unique("fresh");
    let fresh = register(
        app,
        &fresh_name,
        &format!("{fresh_name}@example.com"),
        "another long password",
    )
    .await;
    let probe_name = TestApp::unique("probe");
    let probe = register(
        app,
        &probe_name,
        &alice_email.to_uppercase(),
        "another long password",
    )
    .await;
    assert_eq!(fresh.status, StatusCode::ACCEPTED, "{:?}", fresh.body);
    assert_eq!(probe.status, fresh.status);
    assert_eq!(
        fresh.body,
        json!({"username": fresh_name, "email": format!("{fresh_name}@example.com")})
    );
    assert_eq!(
        probe.body,
        json!({"username": probe_name, "email": alice_email})
    );
    assert_eq!(
        probe.headers.get("content-type"),
        fresh.headers.get("content-type")
    );

    // Nothing was created for the probe: it does not log in, and alice's account is as
    // it was (her password, her id).
    assert_eq!(
        app.login(&probe_name, "another long password").await.status,
        StatusCode::UNAUTHORIZED
    );
    let alice_again = app.login(&alice_email, PASSWORD).await;
    assert_eq!(alice_again.status, StatusCode::OK);
    assert_eq!(
        token_subject(alice_again.body["access_token"].as_str().unwrap()),
        alice.id
    );
    assert_eq!(
        app.login(&alice_email, "another long password")
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    // The probe's name is held as a created account's would be, so a second
    // registration does not tell the two apart either.
    for name in [&fresh_name, &probe_name] {
        let again = register(
            app,
            name,
            &format!("again-{name}@example.com"),
            "another long password",
        )
        .await;
        assert_eq!(
            problem(&again),
            (
                StatusCode::CONFLICT,
                Some("username_taken"),
                Some("username")
            ),
            "{name}"
        );
    }
    // The attempt is recorded for alice (her notice by email comes later), and nothing
    // else happened to her account.
    let events = identity_events(app, &alice.id, 2).await;
    assert_eq!(
        types(&events),
        ["UserRegistered", "RegistrationWithTakenEmail"]
    );
    assert_eq!(events[1]["data"]["attempted_username"], probe_name.as_str());
    assert!(events[1]["data"].get("email").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_accounts_username_cannot_be_taken_over() {
    let app = &TestApp::shared().await;
    let old = app.user(&TestApp::unique("old")).await;
    let deleted = app
        .call(
            Method::DELETE,
            "/v1/users/me",
            Some(&old.access_token),
            Some(json!({"password": PASSWORD})),
        )
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{:?}", deleted.body);

    // Someone else asks for the name at once, in any case: it is taken.
    let impostor = register(
        app,
        &old.username.to_uppercase(),
        &format!("impostor-{}@example.com", old.username),
        PASSWORD,
    )
    .await;
    assert_eq!(
        problem(&impostor),
        (
            StatusCode::CONFLICT,
            Some("username_taken"),
            Some("username")
        )
    );
    // Nothing was made: the name logs in to nothing, the impostor's email is free.
    assert_eq!(
        app.login(&old.username, PASSWORD).await.status,
        StatusCode::UNAUTHORIZED
    );
    let impostor_email = format!("impostor-{}@example.com", old.username);
    assert_eq!(
        app.login(&impostor_email, PASSWORD).await.status,
        StatusCode::UNAUTHORIZED
    );
    // The old email is free at once (the quarantine is the name's).
    let elsewhere = app.user(&TestApp::unique("newname")).await;
    let freed = patch_me(
        app,
        &elsewhere,
        json!({"email": format!("{}@example.com", old.username), "current_password": PASSWORD}),
    )
    .await;
    assert_eq!(freed.status, StatusCode::OK, "{:?}", freed.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_the_quarantine_the_name_is_its_new_owners_everywhere() {
    // A quarantine of 0.0001 days (9 seconds) instead of 30.
    let mut config = devstack::DevstackConfig::for_tests();
    config
        .parameters
        .insert("UsernameQuarantineDays".to_owned(), "0.0001".to_owned());
    let stack = TestApp::spawn_with(config).await;
    let app = &stack;
    let name = TestApp::unique("handle");
    let old = app.user(&name).await;
    let bob = app.user(&TestApp::unique("bob")).await;
    let follow = || async {
        let answer = app
            .call(
                Method::PUT,
                &format!("/v1/users/{name}/follow"),
                Some(&bob.access_token),
                None,
            )
            .await;
        (answer.status == StatusCode::OK).then_some(answer.body)
    };
    eventually("bob follows the old owner", WAIT, follow).await;
    let deleted = app
        .call(
            Method::DELETE,
            "/v1/users/me",
            Some(&old.access_token),
            Some(json!({"password": PASSWORD})),
        )
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);

    // Once the quarantine is over, someone new registers the name.
    let newcomer_email = format!("newcomer-{name}@example.com");
    eventually("the quarantine to end", WAIT, || async {
        let answer = register(app, &name, &newcomer_email, PASSWORD).await;
        match answer.status {
            StatusCode::ACCEPTED => Some(()),
            StatusCode::CONFLICT => None,
            other => panic!("{other}: {:?}", answer.body),
        }
    })
    .await;
    let tokens = app.login(&name, PASSWORD).await;
    assert_eq!(tokens.status, StatusCode::OK);
    let newcomer_id = token_subject(tokens.body["access_token"].as_str().unwrap());
    assert_ne!(newcomer_id, old.id);

    // Every service finds the new owner by the name: the profile, a follow, a mention.
    eventually("the new owner's profile", WAIT, || async {
        let profile = app
            .call(
                Method::GET,
                &format!("/v1/profiles/{name}"),
                Some(&bob.access_token),
                None,
            )
            .await;
        (profile.body["id"] == newcomer_id.as_str()).then_some(())
    })
    .await;
    let followed = eventually("bob follows the new owner by name", WAIT, follow).await;
    assert_eq!(followed["state"], "following", "{followed:?}");
    let following_path = format!("/v1/users/{}/following", bob.username);
    eventually("bob's following to be the new owner", WAIT, || async {
        let page = app
            .call(Method::GET, &following_path, Some(&bob.access_token), None)
            .await;
        let ids: Vec<String> = page.body["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|u| u["user_id"].as_str().map(str::to_owned))
            .collect();
        (ids == [newcomer_id.clone()]).then_some(())
    })
    .await;
    let mention = eventually("a mention of the name to reach its new owner", WAIT, || async {
        let created = app
            .call(
                Method::POST,
                "/v1/posts",
                Some(&bob.access_token),
                Some(json!({"caption": format!("hello @{name}"), "media": [{"content_type": "image/png", "size": PNG.len()}]})),
            )
            .await;
        assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
        let mentions = created.body["post"]["mentions"].clone();
        (mentions != json!([])).then_some(mentions)
    })
    .await;
    assert_eq!(mention, json!([{"user_id": newcomer_id, "username": name}]));
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bidi_overrides_and_invisible_characters_are_refused_everywhere() {
    let app = &TestApp::shared().await;
    let mallory = app.user(&TestApp::unique("mal")).await;
    let profile_path = "/v1/profiles/me";
    eventually("mallory's profile", WAIT, || async {
        let answer = app
            .call(Method::GET, profile_path, Some(&mallory.access_token), None)
            .await;
        (answer.status == StatusCode::OK).then_some(())
    })
    .await;
    let before = app
        .call(Method::GET, profile_path, Some(&mallory.access_token), None)
        .await
        .body;

    // A display name that shows "admin" with "exe.gnp" reversed, a bio with a zero-width
    // space, a right-to-left mark, an isolate.
    for (body, field) in [
        (
            json!({"display_name": "admin\u{202E}gnp.exe"}),
            "display_name",
        ),
        (json!({"display_name": "\u{200F}official"}), "display_name"),
        (json!({"bio": "sup\u{200B}port team"}), "bio"),
        (
            json!({"bio": "fine", "display_name": "a\u{2066}b\u{2069}"}),
            "display_name",
        ),
    ] {
        let answer = app
            .call(
                Method::PATCH,
                profile_path,
                Some(&mallory.access_token),
                Some(body.clone()),
            )
            .await;
        assert_eq!(
            problem(&answer),
            (StatusCode::BAD_REQUEST, Some("invalid_input"), Some(field)),
            "{body}"
        );
    }
    let after = app
        .call(Method::GET, profile_path, Some(&mallory.access_token), None)
        .await
        .body;
    assert_eq!(after, before, "refused edits change nothing");
    // What languages and emoji need is kept: a joiner in an emoji sequence.
    let fine = app
        .call(
            Method::PATCH,
            profile_path,
            Some(&mallory.access_token),
            Some(json!({"display_name": "👩\u{200D}💻 Mal", "bio": "می\u{200C}خواهم"})),
        )
        .await;
    assert_eq!(fine.status, StatusCode::OK, "{:?}", fine.body);
    assert_eq!(fine.body["display_name"], "👩\u{200D}💻 Mal");

    // A caption, on create and on edit, and a location.
    let created = app
        .call(
            Method::POST,
            "/v1/posts",
            Some(&mallory.access_token),
            Some(json!({"caption": "free \u{202E}3pm.suriv", "media": [{"content_type": "image/png", "size": PNG.len()}]})),
        )
        .await;
    assert_eq!(
        problem(&created),
        (
            StatusCode::BAD_REQUEST,
            Some("invalid_input"),
            Some("caption")
        )
    );
    let post = app.published_post(&mallory).await;
    let path = format!("/v1/posts/{post}");
    let shown = app
        .call(Method::GET, &path, Some(&mallory.access_token), None)
        .await
        .body;
    for (body, field) in [
        (
            json!({"caption": "edited \u{2067}x", "version": shown["version"]}),
            "caption",
        ),
        (
            json!({"location": "Lis\u{FEFF}bon", "version": shown["version"]}),
            "location",
        ),
    ] {
        let edit = app
            .call(
                Method::PATCH,
                &path,
                Some(&mallory.access_token),
                Some(body.clone()),
            )
            .await;
        assert_eq!(
            problem(&edit),
            (StatusCode::BAD_REQUEST, Some("invalid_input"), Some(field)),
            "{body}"
        );
    }
    let unchanged = app
        .call(Method::GET, &path, Some(&mallory.access_token), None)
        .await
        .body;
    assert_eq!(
        (&unchanged["caption"], &unchanged["version"]),
        (&shown["caption"], &shown["version"])
    );
    // The posts service learns mallory's username from her UserRegistered event (its
    // own copy), which a reordered delivery may bring after the profile's: wait for it.
    let mine = eventually("mallory's posts by username", WAIT, || async {
        let answer = app
            .call(
                Method::GET,
                &format!("/v1/users/{}/posts", mallory.username),
                Some(&mallory.access_token),
                None,
            )
            .await;
        (answer.status == StatusCode::OK).then_some(answer.body)
    })
    .await;
    assert_eq!(
        mine["items"].as_array().map(Vec::len),
        Some(1),
        "only the good post exists: {mine:?}"
    );

    // A comment: refused; a good one after it is the only one listed.
    let comments = format!("/v1/posts/{post}/comments");
    let refused = app
        .call(
            Method::POST,
            &comments,
            Some(&mallory.access_token),
            Some(json!({"text": "click \u{202D}here\u{202C}"})),
        )
        .await;
    assert_eq!(
        problem(&refused),
        (StatusCode::BAD_REQUEST, Some("invalid_input"), Some("text"))
    );
    // (The comments service learns of the post from its event: 404 until then.)
    eventually("the good comment to be taken", WAIT, || async {
        let good = app
            .call(
                Method::POST,
                &comments,
                Some(&mallory.access_token),
                Some(json!({"text": "a fine comment"})),
            )
            .await;
        match good.status {
            StatusCode::ACCEPTED => Some(()),
            StatusCode::NOT_FOUND => None,
            other => panic!("{other}: {:?}", good.body),
        }
    })
    .await;
    let listed = eventually("the good comment", WAIT, || async {
        let page = app
            .call(Method::GET, &comments, Some(&mallory.access_token), None)
            .await;
        let items = page.body["items"].as_array().cloned().unwrap_or_default();
        (!items.is_empty()).then_some(items)
    })
    .await;
    let texts: Vec<&str> = listed.iter().filter_map(|c| c["text"].as_str()).collect();
    assert_eq!(texts, ["a fine comment"]);
}
