//! The search service's user stories through the devstack: posts, profiles and likes flow
//! through the outbox and Kafka to `search-indexer`, which keeps osmem-server's indexes
//! (created at start-up by the `SearchIndexes` custom resource); the searches answer
//! through the gateway. Blocks go through the follows service, and also as hand-made
//! `shutter.follows` events of its contract (to replay stale ones on purpose).
//!
//! Tests wait by polling (and ask OpenSearch to refresh before each look), and assert the
//! order of results, never their scores.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test, with its location

use std::collections::BTreeSet;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use shutter_core::UserId;
use shutter_e2e::{PNG, TestApp, User, eventually};
use shutter_events::{BlockFacts, EdgeFacts, Envelope, Event};

const WAIT: Duration = Duration::from_secs(90);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn search_user_stories() {
    let app = TestApp::spawn().await;
    let s = Story::new(&app).await;
    posts_are_found_by_words_hashtags_and_author_in_a_sensible_order(&s).await;
    users_and_hashtags_are_found_as_you_type(&s).await;
    pages_return_each_hit_once_and_cursors_cannot_be_forged(&s).await;
    hostile_queries_get_a_400_or_a_literal_search(&s).await;
    an_edited_caption_is_found_by_its_new_words_only(&s).await;
    a_private_accounts_posts_are_for_its_followers(&s).await;
    a_blocked_users_posts_and_profile_disappear(&s).await;
    a_deleted_post_disappears(&s).await;
    app.stop().await;
}

struct Story<'a> {
    app: &'a TestApp,
    alice: User,
    bob: User,
    carol: User,
    /// alice: "Golden sunset over the sea", then "Morning coffee by the sea".
    sunset: String,
    coffee: String,
    /// bob: "Beach volleyball at sunset", newest.
    volley: String,
}

impl<'a> Story<'a> {
    async fn new(app: &'a TestApp) -> Self {
        let (alice, bob, carol) =
            futures::join!(app.user("alice"), app.user("bobby"), app.user("carol"));
        update_profile(app, &alice, json!({"display_name": "Alice Liddell"})).await;
        let sunset = post(app, &alice, "Golden sunset over the sea #Sunset #beach").await;
        let coffee = post(app, &alice, "Morning coffee by the sea #coffee").await;
        let volley = post(app, &bob, "Beach volleyball at sunset #beach #sports").await;
        Self {
            app,
            alice,
            bob,
            carol,
            sunset,
            coffee,
            volley,
        }
    }

    /// `GET path` as `user`, after asking OpenSearch to make every write searchable.
    async fn get(&self, user: &User, path: &str) -> shutter_e2e::Answer {
        self.app
            .http
            .post(format!("{}/_refresh", self.app.stack.opensearch_url()))
            .send()
            .await
            .unwrap();
        self.app
            .call(Method::GET, path, Some(&user.access_token), None)
            .await
    }

    /// The ids of the first page of a posts search.
    async fn posts(&self, user: &User, q: &str) -> Vec<String> {
        let answer = self
            .get(user, &format!("/v1/search/posts?q={}", enc(q)))
            .await;
        assert_eq!(answer.status, StatusCode::OK, "{q}: {answer:?}");
        ids(&answer.body)
    }

    /// Waits until a posts search answers `expected` (in that order).
    async fn until_posts(&self, user: &User, q: &str, expected: &[&str]) {
        let what = format!("search {q:?} to find {expected:?}");
        eventually(&what, WAIT, || async {
            (self.posts(user, q).await == expected).then_some(())
        })
        .await;
    }
}

fn enc(q: &str) -> String {
    url_encode(q)
}

fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn ids(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_owned())
        .collect()
}

fn usernames(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["username"].as_str().unwrap().to_owned())
        .collect()
}

/// Creates a post with `caption` and one PNG, uploads it, waits until it is published.
async fn post(app: &TestApp, author: &User, caption: &str) -> String {
    let created = app
        .call(
            Method::POST,
            "/v1/posts",
            Some(&author.access_token),
            Some(json!({"caption": caption, "media": [{"content_type": "image/png", "size": PNG.len()}]})),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{created:?}");
    let id = created.body["post"]["id"].as_str().unwrap().to_owned();
    let uploaded = app.upload(&created.body["uploads"][0]["upload"], PNG).await;
    assert!(uploaded.is_success(), "{uploaded}");
    let path = format!("/v1/posts/{id}");
    eventually("the post to be published", WAIT, || async {
        let post = app
            .call(Method::GET, &path, Some(&author.access_token), None)
            .await;
        (post.body["status"] == "published").then_some(())
    })
    .await;
    id
}

/// PATCHes the user's profile once the profiles service has made it (from
/// `UserRegistered`).
async fn update_profile(app: &TestApp, user: &User, patch: Value) {
    eventually("the profile to exist", WAIT, || async {
        let answer = app
            .call(
                Method::PATCH,
                "/v1/profiles/me",
                Some(&user.access_token),
                Some(patch.clone()),
            )
            .await;
        assert!(
            matches!(answer.status, StatusCode::OK | StatusCode::NOT_FOUND),
            "{answer:?}"
        );
        (answer.status == StatusCode::OK).then_some(())
    })
    .await;
}

/// Produces an event of the follows service's contract to `shutter.follows`.
/// Plays the follows service's part: `event` as it would publish it.
async fn follows_event(app: &TestApp, event: Event) {
    let actor = UserId::trusted(event.aggregate_id());
    app.produce(&[Envelope::new(event, Some(&actor), "e2e-search")])
        .await;
}

fn edge(follower: &str, followee: &str, seq: u64) -> EdgeFacts {
    EdgeFacts {
        follower_id: UserId::trusted(follower),
        followee_id: UserId::trusted(followee),
        seq,
        at: shutter_core::now_rfc3339(),
        reason: None,
    }
}

fn block(blocker: &str, blocked: &str, seq: u64) -> BlockFacts {
    BlockFacts {
        blocker_id: UserId::trusted(blocker),
        blocked_id: UserId::trusted(blocked),
        seq,
        at: shutter_core::now_rfc3339(),
    }
}

async fn posts_are_found_by_words_hashtags_and_author_in_a_sensible_order(s: &Story<'_>) {
    let carol = &s.carol;
    // Both beach posts: bob's names the beach in its caption and is newer.
    s.until_posts(carol, "beach", &[&s.volley, &s.sunset]).await;
    // Words: "sunset" is in both captions; alice's has it as a hashtag too.
    s.until_posts(carol, "golden sunset", &[&s.sunset, &s.volley])
        .await;
    assert_eq!(
        s.posts(carol, "volleyball").await,
        std::slice::from_ref(&s.volley)
    );
    // A hashtag, with or without its #, any case.
    assert_eq!(
        s.posts(carol, "#coffee").await,
        std::slice::from_ref(&s.coffee)
    );
    assert_eq!(
        s.posts(carol, "#SPORTS").await,
        std::slice::from_ref(&s.volley)
    );
    // The author's name as typed so far brings their posts.
    let by_author: BTreeSet<String> = s.posts(carol, "ali").await.into_iter().collect();
    assert_eq!(
        by_author,
        BTreeSet::from([s.sunset.clone(), s.coffee.clone()])
    );
    // The items carry the author and the counts.
    let page = s.get(carol, "/v1/search/posts?q=volleyball").await;
    let item = &page.body["items"][0];
    assert_eq!(item["author"]["username"], "bobby");
    assert_eq!(item["hashtags"], json!(["beach", "sports"]));
    assert!(page.body["next_cursor"].is_null());
    assert!(s.posts(carol, "nothing-like-this").await.is_empty());

    // Likes are counted from the likes service's events.
    for user in [&s.alice, &s.carol] {
        // 404 until the likes service has read the post's PostPublished.
        eventually("a like of the coffee post", WAIT, || async {
            let liked = s
                .app
                .call(
                    Method::PUT,
                    &format!("/v1/posts/{}/like", s.coffee),
                    Some(&user.access_token),
                    None,
                )
                .await;
            assert!(
                matches!(liked.status, StatusCode::OK | StatusCode::NOT_FOUND),
                "{liked:?}"
            );
            (liked.status == StatusCode::OK).then_some(())
        })
        .await;
    }
    eventually("the likes to be counted", WAIT, || async {
        let page = s.get(carol, "/v1/search/posts?q=coffee").await;
        (page.body["items"][0]["like_count"] == 2).then_some(())
    })
    .await;
}

async fn users_and_hashtags_are_found_as_you_type(s: &Story<'_>) {
    let carol = &s.carol;
    let users = |q: &'static str| async move {
        let answer = s
            .get(carol, &format!("/v1/search/users?q={}", enc(q)))
            .await;
        assert_eq!(answer.status, StatusCode::OK, "{answer:?}");
        answer.body
    };
    eventually("alice's display name to be indexed", WAIT, || async {
        let page = users("Alice L").await;
        (page["items"].as_array().unwrap().len() == 1).then_some(())
    })
    .await;
    let page = users("ali").await;
    assert_eq!(page["items"][0]["username"], "alice");
    assert_eq!(page["items"][0]["display_name"], "Alice Liddell");
    assert!(page["next_cursor"].is_null());
    assert_eq!(usernames(&users("bob").await), ["bobby"]);
    assert_eq!(
        usernames(&users("CAROL").await),
        ["carol"],
        "usernames are case-insensitive"
    );

    let tags = s.get(carol, "/v1/search/hashtags?q=%23s").await;
    assert_eq!(tags.status, StatusCode::OK, "{tags:?}");
    assert_eq!(
        tags.body["items"],
        json!([{"tag": "sports", "post_count": 1}, {"tag": "sunset", "post_count": 1}])
    );
    let tags = s.get(carol, "/v1/search/hashtags?q=bea").await;
    assert_eq!(
        tags.body["items"],
        json!([{"tag": "beach", "post_count": 2}])
    );
}

async fn pages_return_each_hit_once_and_cursors_cannot_be_forged(s: &Story<'_>) {
    let carol = &s.carol;
    let q = enc("sea beach sunset coffee");
    let mut seen = Vec::new();
    let mut path = format!("/v1/search/posts?q={q}&limit=1");
    loop {
        let page = s.get(carol, &path).await;
        assert_eq!(page.status, StatusCode::OK, "{page:?}");
        seen.extend(ids(&page.body));
        match page.body["next_cursor"].as_str() {
            Some(c) => path = format!("/v1/search/posts?q={q}&limit=1&cursor={c}"),
            None => break,
        }
        assert!(seen.len() <= 3, "more pages than hits: {seen:?}");
    }
    let unique: BTreeSet<&String> = seen.iter().collect();
    assert_eq!((seen.len(), unique.len()), (3, 3), "{seen:?}");

    let first = s
        .get(carol, &format!("/v1/search/posts?q={q}&limit=1"))
        .await;
    let cursor = first.body["next_cursor"].as_str().unwrap().to_owned();
    let (payload, _) = cursor.split_once('.').unwrap();
    for (query, bad) in [
        (q.clone(), format!("{payload}.AAAA")),
        (q.clone(), "not-a-cursor".to_owned()),
        // A cursor is bound to its query.
        ("coffee".to_owned(), cursor.clone()),
    ] {
        let answer = s
            .get(carol, &format!("/v1/search/posts?q={query}&cursor={bad}"))
            .await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{answer:?}");
        assert_eq!(answer.body["field"], "cursor");
    }
}

async fn hostile_queries_get_a_400_or_a_literal_search(s: &Story<'_>) {
    let carol = &s.carol;
    let long = "a".repeat(10_000);
    for endpoint in ["posts", "users", "hashtags"] {
        for q in [long.as_str(), "", "   "] {
            let answer = s
                .get(carol, &format!("/v1/search/{endpoint}?q={}", enc(q)))
                .await;
            assert_eq!(
                answer.status,
                StatusCode::BAD_REQUEST,
                "{endpoint} {answer:?}"
            );
            assert_eq!(answer.body["field"], "q");
            assert_eq!(answer.headers["content-type"], "application/problem+json");
        }
        let missing = s.get(carol, &format!("/v1/search/{endpoint}")).await;
        assert_eq!(missing.status, StatusCode::BAD_REQUEST);
        for q in [
            r#"title:(a OR b) AND *"#,
            r#"{"match_all":{}}"#,
            r#"\\ \" \\\\"#,
            r#""unbalanced quote"#,
            "sunset)) OR caption:*",
            "* ? ~ ^ [a TO z]",
            "#",
            "a\u{7f}",
        ] {
            let answer = s
                .get(carol, &format!("/v1/search/{endpoint}?q={}", enc(q)))
                .await;
            assert!(
                matches!(answer.status, StatusCode::OK | StatusCode::BAD_REQUEST),
                "{endpoint} {q:?}: {answer:?}"
            );
            if answer.status == StatusCode::OK {
                // Searched as words: never everything.
                assert!(
                    answer.body["items"].as_array().unwrap().len() < 3,
                    "{endpoint} {q:?} matched everything: {answer:?}"
                );
            } else {
                assert_eq!(answer.body["field"], "q");
            }
        }
    }
}

async fn an_edited_caption_is_found_by_its_new_words_only(s: &Story<'_>) {
    let current = s
        .app
        .call(
            Method::GET,
            &format!("/v1/posts/{}", s.sunset),
            Some(&s.alice.access_token),
            None,
        )
        .await;
    let edited = s
        .app
        .call(
            Method::PATCH,
            &format!("/v1/posts/{}", s.sunset),
            Some(&s.alice.access_token),
            Some(json!({"caption": "Moonrise over the harbour #moon", "version": current.body["version"]})),
        )
        .await;
    assert_eq!(edited.status, StatusCode::OK, "{edited:?}");
    s.until_posts(&s.carol, "moonrise harbour", &[&s.sunset])
        .await;
    assert!(!s.posts(&s.carol, "golden").await.contains(&s.sunset));
    assert!(!s.posts(&s.carol, "#sunset").await.contains(&s.sunset));
}

async fn a_private_accounts_posts_are_for_its_followers(s: &Story<'_>) {
    let dave = s.app.user("dave").await;
    update_profile(s.app, &dave, json!({"private": true})).await;
    // The privacy change reaches the index through its own topic; the post is written
    // once it has (a post indexed before it is re-flagged later, which is not this story).
    eventually("dave's privacy in the index", WAIT, || async {
        let users = s.get(&s.carol, "/v1/search/users?q=dav").await;
        (users.body["items"][0]["private"] == true).then_some(())
    })
    .await;
    let secret = post(s.app, &dave, "A secret lagoon #lagoon").await;
    // dave sees his own post; carol does not, and the hashtag counts none for her.
    s.until_posts(&dave, "lagoon", &[&secret]).await;
    assert!(s.posts(&s.carol, "lagoon").await.is_empty());
    let tags = s.get(&s.carol, "/v1/search/hashtags?q=lagoon").await;
    assert_eq!(tags.body["items"], json!([]));
    // Private accounts are still found by name.
    let users = s.get(&s.carol, "/v1/search/users?q=dav").await;
    assert_eq!(users.body["items"][0]["private"], true);
    // Once dave approves carol's follow, she sees it.
    follows_event(s.app, Event::FollowStarted(edge(&s.carol.id, &dave.id, 2))).await;
    s.until_posts(&s.carol, "lagoon", &[&secret]).await;
    // An older, redelivered event of the same edge changes nothing; a newer end does.
    follows_event(s.app, Event::FollowEnded(edge(&s.carol.id, &dave.id, 1))).await;
    follows_event(s.app, Event::FollowEnded(edge(&s.carol.id, &dave.id, 3))).await;
    s.until_posts(&s.carol, "lagoon", &[]).await;
}

async fn a_blocked_users_posts_and_profile_disappear(s: &Story<'_>) {
    let carol = &s.carol;
    assert!(s.posts(carol, "volleyball").await.contains(&s.volley));
    // bob blocks carol: neither sees the other.
    follows_event(s.app, Event::UserBlocked(block(&s.bob.id, &carol.id, 1))).await;
    s.until_posts(carol, "volleyball", &[]).await;
    let users = s.get(carol, "/v1/search/users?q=bobby").await;
    assert_eq!(users.body["items"], json!([]));
    let tags = s.get(carol, "/v1/search/hashtags?q=sports").await;
    assert_eq!(tags.body["items"], json!([]));
    let users = s.get(&s.bob, "/v1/search/users?q=carol").await;
    assert_eq!(
        users.body["items"],
        json!([]),
        "the blocker does not see them either"
    );
    // Others still see bob's post.
    assert_eq!(
        s.posts(&s.alice, "volleyball").await,
        std::slice::from_ref(&s.volley)
    );
    // Unblocked: back.
    follows_event(s.app, Event::UserUnblocked(block(&s.bob.id, &carol.id, 2))).await;
    s.until_posts(carol, "volleyball", &[&s.volley]).await;

    // The same through the follows service: carol blocks alice, then unblocks her.
    let block = |method: Method| async move {
        let answer = s
            .app
            .call(
                method,
                "/v1/users/alice/block",
                Some(&carol.access_token),
                None,
            )
            .await;
        assert!(answer.status.is_success(), "{answer:?}");
    };
    block(Method::PUT).await;
    s.until_posts(carol, "coffee", &[]).await;
    let users = s.get(&s.alice, "/v1/search/users?q=carol").await;
    assert_eq!(users.body["items"], json!([]));
    block(Method::DELETE).await;
    s.until_posts(carol, "coffee", &[&s.coffee]).await;
}

async fn a_deleted_post_disappears(s: &Story<'_>) {
    let deleted = s
        .app
        .call(
            Method::DELETE,
            &format!("/v1/posts/{}", s.volley),
            Some(&s.bob.access_token),
            None,
        )
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{deleted:?}");
    s.until_posts(&s.carol, "volleyball", &[]).await;
    s.until_posts(&s.bob, "volleyball", &[]).await;
    let tags = s.get(&s.carol, "/v1/search/hashtags?q=sports").await;
    assert_eq!(tags.body["items"], json!([]));
}
