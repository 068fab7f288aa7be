//! Moderation through the devstack: an admin named by the `AdminUsernames` parameter
//! grants roles, roles reach tokens at refresh, the gateway keeps plain users and
//! moderators out of what their scopes do not cover (before any function runs), reports
//! name only what the reporter can see and are idempotent, and the modlog shows every
//! role change.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test, with its location

use std::time::Duration;

use base64::Engine;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use shutter_e2e::{Answer, TestApp, User, eventually};

const WAIT: Duration = Duration::from_secs(90);

/// The functions behind `/v1/admin/`, by logical id.
const ADMIN_FUNCTIONS: [&str; 7] = [
    "AdminRolesGrantFunction",
    "AdminRolesRevokeFunction",
    "AdminReportsFunction",
    "AdminModlogFunction",
    "AdminReportsResolveFunction",
    "AdminUsersUnsuspendFunction",
    "AdminUsersGetFunction",
];

/// The `scope` claim of an access token (its payload, unverified: the gateway verifies).
fn scopes(token: &str) -> Vec<String> {
    let payload = token.split('.').nth(1).unwrap();
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap();
    claims["scope"]
        .as_str()
        .unwrap()
        .split(' ')
        .map(str::to_owned)
        .collect()
}

async fn refreshed(app: &TestApp, user: &User) -> String {
    let answer = app
        .call(
            Method::POST,
            "/v1/auth/refresh",
            None,
            Some(json!({"refresh_token": user.refresh_token})),
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.body);
    answer.body["access_token"].as_str().unwrap().to_owned()
}

fn invocations(app: &TestApp) -> Vec<u64> {
    ADMIN_FUNCTIONS
        .iter()
        .map(|f| app.stack.invocations(f))
        .collect()
}

/// Every `/v1/admin/` route, called with `token`.
async fn every_admin_route(app: &TestApp, token: &str, someone: &str) -> Vec<(String, Answer)> {
    let role = format!("/v1/admin/users/{someone}/roles/moderator");
    let lookup = format!("/v1/admin/users/{someone}");
    let unsuspend = format!("/v1/admin/users/{someone}/unsuspend");
    let resolve = format!("/v1/admin/reports/post-{}/resolve", shutter_core::new_id());
    let mut answers = Vec::new();
    for (method, path) in [
        (Method::PUT, role.as_str()),
        (Method::DELETE, role.as_str()),
        (Method::GET, "/v1/admin/reports"),
        (Method::GET, "/v1/admin/modlog"),
        (Method::POST, resolve.as_str()),
        (Method::POST, unsuspend.as_str()),
        (Method::GET, lookup.as_str()),
    ] {
        let answer = app.call(method.clone(), path, Some(token), None).await;
        answers.push((format!("{method} {path}"), answer));
    }
    answers
}

async fn report(app: &TestApp, user: &User, kind: &str, id: &str, reason: &str) -> Answer {
    app.call(
        Method::POST,
        "/v1/reports",
        Some(&user.access_token),
        Some(json!({"target": {"type": kind, "id": id}, "reason": reason, "note": "please look"})),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admins_grant_roles_moderators_read_reports_and_the_gateway_keeps_others_out() {
    // GIVEN a devstack whose AdminUsernames names one account, which then registers
    let (app, admin) = TestApp::with_admin().await;
    assert!(scopes(&admin.access_token).contains(&"admin".to_owned()));
    let moderator = app.user(&TestApp::unique("mod")).await;
    let plain = app.user(&TestApp::unique("plain")).await;
    let author = app.user(&TestApp::unique("author")).await;
    assert_eq!(scopes(&plain.access_token), vec!["user"]);

    // THEN a plain user's token is refused on every admin route by the gateway: no
    // function runs
    let before = invocations(&app);
    for (route, answer) in every_admin_route(&app, &plain.access_token, &plain.username).await {
        assert_eq!(
            answer.status,
            StatusCode::FORBIDDEN,
            "{route}: {:?}",
            answer.body
        );
    }
    assert_eq!(
        invocations(&app),
        before,
        "the gateway answered, not the functions"
    );

    // WHEN the admin makes the moderator a moderator (twice: the same answer)
    let grant = format!("/v1/admin/users/{}/roles/moderator", moderator.username);
    for _ in 0..2 {
        let answer = app
            .call(
                Method::PUT,
                &grant,
                Some(&admin.access_token),
                Some(json!({"reason": "trusted"})),
            )
            .await;
        assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.body);
        assert_eq!(answer.body["roles"], json!(["user", "moderator"]));
        assert_eq!(answer.body["user_id"], moderator.id.as_str());
    }
    // (an unknown role is a 400, an unknown user a 404, and the admin keeps their own role)
    let answer = app
        .call(
            Method::PUT,
            &format!("/v1/admin/users/{}/roles/root", moderator.username),
            Some(&admin.access_token),
            None,
        )
        .await;
    assert_eq!(
        (answer.status, answer.body["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("role"))
    );
    let answer = app
        .call(
            Method::PUT,
            &format!(
                "/v1/admin/users/{}/roles/moderator",
                TestApp::unique("nobody")
            ),
            Some(&admin.access_token),
            None,
        )
        .await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    let answer = app
        .call(
            Method::DELETE,
            &format!("/v1/admin/users/{}/roles/admin", admin.username),
            Some(&admin.access_token),
            None,
        )
        .await;
    assert_eq!(
        (answer.status, answer.body["code"].as_str()),
        (StatusCode::CONFLICT, Some("own_admin_role"))
    );

    // THEN the role reaches the moderator's token at the next refresh, not before
    let stale = app
        .call(
            Method::GET,
            "/v1/admin/reports",
            Some(&moderator.access_token),
            None,
        )
        .await;
    assert_eq!(stale.status, StatusCode::FORBIDDEN);
    let moderator_token = refreshed(&app, &moderator).await;
    assert!(scopes(&moderator_token).contains(&"moderator".to_owned()));
    let queue = app
        .call(
            Method::GET,
            "/v1/admin/reports",
            Some(&moderator_token),
            None,
        )
        .await;
    assert_eq!(queue.status, StatusCode::OK, "{:?}", queue.body);

    // AND a moderator cannot grant roles: the gateway refuses (admin scope only)
    let before = app.stack.invocations("AdminRolesGrantFunction");
    let answer = app
        .call(
            Method::PUT,
            &format!("/v1/admin/users/{}/roles/moderator", plain.username),
            Some(&moderator_token),
            None,
        )
        .await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    assert_eq!(app.stack.invocations("AdminRolesGrantFunction"), before);

    // WHEN a user reports a post they can see (once the moderation service has learned
    // of it from the posts topic), twice
    let post = app.published_post(&author).await;
    let first = eventually("the post to be reportable", WAIT, || async {
        let answer = report(&app, &plain, "post", &post, "spam").await;
        (answer.status == StatusCode::CREATED).then_some(answer.body)
    })
    .await;
    let again = report(&app, &plain, "post", &post, "hate").await;
    // THEN the second is the first report, unchanged
    assert_eq!(again.status, StatusCode::OK, "{:?}", again.body);
    assert_eq!(again.body["id"], first["id"]);
    assert_eq!(again.body["reason"], "spam");

    // AND what the reporter cannot see is 404: unknown targets, and a user who blocked them
    for (kind, id) in [
        ("post", shutter_core::new_id()),
        ("comment", shutter_core::new_id()),
        ("user", shutter_core::new_id()),
    ] {
        let answer = report(&app, &plain, kind, &id, "spam").await;
        assert_eq!(
            answer.status,
            StatusCode::NOT_FOUND,
            "{kind}: {:?}",
            answer.body
        );
    }
    let blocked = app
        .call(
            Method::PUT,
            &format!("/v1/users/{}/block", plain.username),
            Some(&author.access_token),
            None,
        )
        .await;
    assert!(blocked.status.is_success(), "{:?}", blocked.body);
    eventually(
        "the block to hide the author from the reporter",
        WAIT,
        || async {
            let answer = report(&app, &plain, "user", &author.id, "harassment").await;
            (answer.status == StatusCode::NOT_FOUND).then_some(())
        },
    )
    .await;
    // AND nobody reports themselves
    let answer = report(&app, &plain, "user", &plain.id, "spam").await;
    assert_eq!(
        (answer.status, answer.body["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("target"))
    );

    // THEN the moderator's queue has one entry for the post, with one report
    let queue = app
        .call(
            Method::GET,
            "/v1/admin/reports?status=open",
            Some(&moderator_token),
            None,
        )
        .await;
    assert_eq!(queue.status, StatusCode::OK);
    let entries: Vec<&Value> = queue.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["target"]["id"] == post.as_str())
        .collect();
    assert_eq!(entries.len(), 1, "{:?}", queue.body);
    assert_eq!(entries[0]["report_count"], 1);
    assert_eq!(entries[0]["reasons"], json!(["spam"]));
    assert_eq!(entries[0]["target"]["type"], "post");

    // AND the modlog shows the grant (once), by the admin, on the moderator
    let log = app
        .call(
            Method::GET,
            &format!("/v1/admin/modlog?moderator={}", admin.id),
            Some(&moderator_token),
            None,
        )
        .await;
    assert_eq!(log.status, StatusCode::OK, "{:?}", log.body);
    let items = log.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{:?}", log.body);
    assert_eq!(items[0]["action"], "grant_role");
    assert_eq!(items[0]["role"], "moderator");
    assert_eq!(items[0]["reason"], "trusted");
    assert_eq!(
        items[0]["target"],
        json!({"type": "user", "id": moderator.id})
    );
    assert_eq!(items[0]["moderator_username"], admin.username.as_str());
    let on_target = app
        .call(
            Method::GET,
            &format!(
                "/v1/admin/modlog?target_type=user&target_id={}",
                moderator.id
            ),
            Some(&moderator_token),
            None,
        )
        .await;
    assert_eq!(on_target.body["items"].as_array().unwrap().len(), 1);

    app.stop().await;
}
