//! The search service's user stories through the devstack: posts, profiles and likes flow
//! through the outbox and Kafka to `search-indexer`, which keeps osmem-server's indexes
//! (created at start-up by the `SearchIndexes` custom resource); the searches answer
//! through the gateway. Blocks go through the follows service, and also as hand-made
//! `shutter.follows` events of its contract (to replay stale ones on purpose).
//!
//! Tests wait by polling (and ask OpenSearch to refresh before each look), and assert the
//! order of results, never their scores.
//!
//! Every story is its own test on the shared devstack, with users and posts of its own
//! ([`Story::new`]): the words of its captions, hashtags and display names start with a
//! tag of its own, so no other story's search finds them.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test, with its location

use std::collections::BTreeSet;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use shutter_core::UserId;
use shutter_e2e::{PNG, TestApp, User, eventually};
use shutter_events::{
    BlockFacts, ContentRemoved, EdgeFacts, Envelope, Event, PostFacts, RemovedKind, UserReinstated,
    UserSuspended,
};

const WAIT: Duration = Duration::from_secs(90);

struct Story<'a> {
    app: &'a TestApp,
    /// What every word of this story starts with (see [`Story::mine`]).
    tag: String,
    /// alice, "Alice Liddell"; bobby; carol (their usernames end with a few letters).
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
    /// A story's own users and posts, on the shared devstack.
    async fn new(app: &'a TestApp) -> Self {
        let tag = TestApp::unique("s").replace('_', "");
        let names = ["alice", "bobby", "carol"].map(TestApp::unique);
        let (alice, bob, carol) = futures::join!(
            app.user(&names[0]),
            app.user(&names[1]),
            app.user(&names[2])
        );
        let mut s = Self {
            app,
            tag,
            alice,
            bob,
            carol,
            sunset: String::new(),
            coffee: String::new(),
            volley: String::new(),
        };
        let name = s.mine("Alice Liddell");
        update_profile(app, &s.alice, json!({"display_name": name})).await;
        let caption = s.mine("Golden sunset over the sea #Sunset #beach");
        s.sunset = post(app, &s.alice, &caption).await;
        let caption = s.mine("Morning coffee by the sea #coffee");
        s.coffee = post(app, &s.alice, &caption).await;
        let caption = s.mine("Beach volleyball at sunset #beach #sports");
        s.volley = post(app, &s.bob, &caption).await;
        s.until_indexed().await;
        s
    }

    /// Waits until the index holds the story's users (alice by her display name) and its
    /// three posts.
    async fn until_indexed(&self) {
        eventually("the story's users to be indexed", WAIT, || async {
            let alice = self.mine("Alice Liddell");
            self.finds_first(&alice, &self.alice).await?;
            self.finds_first(&self.bob.username, &self.bob).await?;
            self.finds_first(&self.carol.username, &self.carol).await
        })
        .await;
        let words = self.mine("sea beach sunset coffee");
        eventually("the story's posts to be indexed", WAIT, || async {
            (self.posts(&self.carol, &words).await.len() == 3).then_some(())
        })
        .await;
    }

    /// Whether a users search for `q` finds `user` first.
    async fn finds_first(&self, q: &str, user: &User) -> Option<()> {
        let path = format!("/v1/search/users?q={}", enc(q));
        let page = self.get(&self.carol, &path).await;
        (page.body["items"][0]["username"] == user.username.as_str()).then_some(())
    }

    /// `text` with each word (after its `#`, if a hashtag) made this story's own:
    /// `#Sunset` becomes `#<tag>_Sunset`, one word for OpenSearch and a hashtag still.
    fn mine(&self, text: &str) -> String {
        text.split(' ')
            .map(|word| match word.strip_prefix('#') {
                Some(tag) => format!("#{}_{tag}", self.tag),
                None => format!("{}_{word}", self.tag),
            })
            .collect::<Vec<_>>()
            .join(" ")
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

/// A name as typed so far: all but its last letter.
fn typing(name: &str) -> &str {
    &name[..name.len() - 1]
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn posts_are_found_by_words_hashtags_and_author_in_a_sensible_order() {
    let app = TestApp::shared().await;
    let s = &Story::new(&app).await;
    let carol = &s.carol;
    // Both beach posts: bob's names the beach in its caption and is newer.
    s.until_posts(carol, &s.mine("beach"), &[&s.volley, &s.sunset])
        .await;
    // Words: "sunset" is in both captions; alice's has it as a hashtag too.
    s.until_posts(carol, &s.mine("golden sunset"), &[&s.sunset, &s.volley])
        .await;
    assert_eq!(
        s.posts(carol, &s.mine("volleyball")).await,
        std::slice::from_ref(&s.volley)
    );
    // A hashtag, with or without its #, any case.
    assert_eq!(
        s.posts(carol, &s.mine("#coffee")).await,
        std::slice::from_ref(&s.coffee)
    );
    assert_eq!(
        s.posts(carol, &s.mine("#SPORTS")).await,
        std::slice::from_ref(&s.volley)
    );
    // The author's name as typed so far brings their posts.
    let by_author: BTreeSet<String> = s.posts(carol, &s.mine("ali")).await.into_iter().collect();
    assert_eq!(
        by_author,
        BTreeSet::from([s.sunset.clone(), s.coffee.clone()])
    );
    // The items carry the author and the counts.
    let page = s
        .get(
            carol,
            &format!("/v1/search/posts?q={}", enc(&s.mine("volleyball"))),
        )
        .await;
    let item = &page.body["items"][0];
    assert_eq!(item["author"]["username"], s.bob.username.as_str());
    assert_eq!(item["hashtags"], json!([s.mine("beach"), s.mine("sports")]));
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
        let page = s
            .get(
                carol,
                &format!("/v1/search/posts?q={}", enc(&s.mine("coffee"))),
            )
            .await;
        (page.body["items"][0]["like_count"] == 2).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_and_hashtags_are_found_as_you_type() {
    let app = TestApp::shared().await;
    let s = &Story::new(&app).await;
    let carol = &s.carol;
    let users = |q: String| async move {
        let answer = s
            .get(carol, &format!("/v1/search/users?q={}", enc(&q)))
            .await;
        assert_eq!(answer.status, StatusCode::OK, "{answer:?}");
        answer.body
    };
    eventually("alice's display name to be indexed", WAIT, || async {
        let page = users(s.mine("Alice L")).await;
        (page["items"].as_array().unwrap().len() == 1).then_some(())
    })
    .await;
    let page = users(s.mine("ali")).await;
    assert_eq!(page["items"][0]["username"], s.alice.username.as_str());
    assert_eq!(page["items"][0]["display_name"], s.mine("Alice Liddell"));
    assert!(page["next_cursor"].is_null());
    assert_eq!(
        usernames(&users(typing(&s.bob.username).to_owned()).await),
        [s.bob.username.as_str()]
    );
    assert_eq!(
        usernames(&users(carol.username.to_uppercase()).await),
        [carol.username.as_str()],
        "usernames are case-insensitive"
    );

    let tags = s
        .get(
            carol,
            &format!("/v1/search/hashtags?q={}", enc(&s.mine("#s"))),
        )
        .await;
    assert_eq!(tags.status, StatusCode::OK, "{tags:?}");
    assert_eq!(
        tags.body["items"],
        json!([{"tag": s.mine("sports"), "post_count": 1}, {"tag": s.mine("sunset"), "post_count": 1}])
    );
    let tags = s
        .get(
            carol,
            &format!("/v1/search/hashtags?q={}", enc(&s.mine("bea"))),
        )
        .await;
    assert_eq!(
        tags.body["items"],
        json!([{"tag": s.mine("beach"), "post_count": 2}])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_return_each_hit_once_and_cursors_cannot_be_forged() {
    let app = TestApp::shared().await;
    let s = &Story::new(&app).await;
    let carol = &s.carol;
    let q = enc(&s.mine("sea beach sunset coffee"));
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
        (enc(&s.mine("coffee")), cursor.clone()),
    ] {
        let answer = s
            .get(carol, &format!("/v1/search/posts?q={query}&cursor={bad}"))
            .await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{answer:?}");
        assert_eq!(answer.body["field"], "cursor");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_queries_get_a_400_or_a_literal_search() {
    let app = TestApp::shared().await;
    let s = &Story::new(&app).await;
    let carol = &s.carol;
    let long = "a".repeat(10_000);
    let sunset_or_anything = format!("{})) OR caption:*", s.mine("sunset"));
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
            &sunset_or_anything,
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edited_caption_is_found_by_its_new_words_only() {
    let app = TestApp::shared().await;
    let s = &Story::new(&app).await;
    s.until_posts(&s.carol, &s.mine("golden"), &[&s.sunset])
        .await;
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
            Some(json!({"caption": s.mine("Moonrise over the harbour #moon"), "version": current.body["version"]})),
        )
        .await;
    assert_eq!(edited.status, StatusCode::OK, "{edited:?}");
    s.until_posts(&s.carol, &s.mine("moonrise harbour"), &[&s.sunset])
        .await;
    assert!(
        !s.posts(&s.carol, &s.mine("golden"))
            .await
            .contains(&s.sunset)
    );
    assert!(
        !s.posts(&s.carol, &s.mine("#sunset"))
            .await
            .contains(&s.sunset)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_accounts_posts_are_for_its_followers() {
    let app = TestApp::shared().await;
    let s = &Story::new(&app).await;
    let dave = s.app.user(&TestApp::unique("dave")).await;
    let daves = format!("/v1/search/users?q={}", typing(&dave.username));
    let lagoon = s.mine("lagoon");
    update_profile(s.app, &dave, json!({"private": true})).await;
    // The privacy change reaches the index through its own topic; the post is written
    // once it has (a post indexed before it is re-flagged later, which is not this story).
    eventually("dave's privacy in the index", WAIT, || async {
        let users = s.get(&s.carol, &daves).await;
        (users.body["items"][0]["private"] == true).then_some(())
    })
    .await;
    let secret = post(s.app, &dave, &s.mine("A secret lagoon #lagoon")).await;
    // dave sees his own post; carol does not, and the hashtag counts none for her.
    s.until_posts(&dave, &lagoon, &[&secret]).await;
    assert!(s.posts(&s.carol, &lagoon).await.is_empty());
    let tags = s
        .get(&s.carol, &format!("/v1/search/hashtags?q={lagoon}"))
        .await;
    assert_eq!(tags.body["items"], json!([]));
    // Private accounts are still found by name.
    let users = s.get(&s.carol, &daves).await;
    assert_eq!(users.body["items"][0]["private"], true);
    // Once dave approves carol's follow, she sees it.
    follows_event(s.app, Event::FollowStarted(edge(&s.carol.id, &dave.id, 2))).await;
    s.until_posts(&s.carol, &lagoon, &[&secret]).await;
    // An older, redelivered event of the same edge changes nothing; a newer end does.
    follows_event(s.app, Event::FollowEnded(edge(&s.carol.id, &dave.id, 1))).await;
    follows_event(s.app, Event::FollowEnded(edge(&s.carol.id, &dave.id, 3))).await;
    s.until_posts(&s.carol, &lagoon, &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blocked_users_posts_and_profile_disappear() {
    let app = TestApp::shared().await;
    let s = &Story::new(&app).await;
    let carol = &s.carol;
    let (volleyball, coffee) = (&s.mine("volleyball"), &s.mine("coffee"));
    s.until_posts(carol, volleyball, &[&s.volley]).await;
    // bob blocks carol: neither sees the other.
    follows_event(s.app, Event::UserBlocked(block(&s.bob.id, &carol.id, 1))).await;
    s.until_posts(carol, volleyball, &[]).await;
    let users = s
        .get(carol, &format!("/v1/search/users?q={}", s.bob.username))
        .await;
    assert_eq!(users.body["items"], json!([]));
    let tags = s
        .get(
            carol,
            &format!("/v1/search/hashtags?q={}", s.mine("sports")),
        )
        .await;
    assert_eq!(tags.body["items"], json!([]));
    let users = s
        .get(&s.bob, &format!("/v1/search/users?q={}", carol.username))
        .await;
    assert_eq!(
        users.body["items"],
        json!([]),
        "the blocker does not see them either"
    );
    // Others still see bob's post.
    assert_eq!(
        s.posts(&s.alice, volleyball).await,
        std::slice::from_ref(&s.volley)
    );
    // Unblocked: back.
    follows_event(s.app, Event::UserUnblocked(block(&s.bob.id, &carol.id, 2))).await;
    s.until_posts(carol, volleyball, &[&s.volley]).await;

    // The same through the follows service: carol blocks alice, then unblocks her.
    let block = |method: Method| async move {
        let answer = s
            .app
            .call(
                method,
                &format!("/v1/users/{}/block", s.alice.username),
                Some(&carol.access_token),
                None,
            )
            .await;
        assert!(answer.status.is_success(), "{answer:?}");
    };
    block(Method::PUT).await;
    s.until_posts(carol, coffee, &[]).await;
    let users = s
        .get(&s.alice, &format!("/v1/search/users?q={}", carol.username))
        .await;
    assert_eq!(users.body["items"], json!([]));
    block(Method::DELETE).await;
    s.until_posts(carol, coffee, &[&s.coffee]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_post_disappears() {
    let app = TestApp::shared().await;
    let s = &Story::new(&app).await;
    let volleyball = &s.mine("volleyball");
    s.until_posts(&s.carol, volleyball, &[&s.volley]).await;
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
    s.until_posts(&s.carol, volleyball, &[]).await;
    s.until_posts(&s.bob, volleyball, &[]).await;
    let tags = s
        .get(
            &s.carol,
            &format!("/v1/search/hashtags?q={}", s.mine("sports")),
        )
        .await;
    assert_eq!(tags.body["items"], json!([]));
}

/// Plays the moderation service's part: `event` on the Identity topic, keyed as it would
/// publish it.
async fn moderation_event(app: &TestApp, event: Event) {
    app.produce(&[Envelope::new(event, None, "e2e-search-moderation")])
        .await;
}

/// Sends `events` one after the other to one `partition` of their topics (not by key):
/// the indexer reads a partition in order, so the effect of the last one is a barrier
/// proving the earlier ones were read (and, when they changed nothing, ignored).
async fn produce_in_order(app: &TestApp, partition: i32, events: &[Event]) {
    use rdkafka::config::ClientConfig;
    use rdkafka::producer::{FutureProducer, FutureRecord};
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", app.stack.kafka_bootstrap())
        .set("compression.type", "none")
        .create()
        .unwrap();
    for event in events {
        let envelope = Envelope::new(event.clone(), None, "e2e-search-moderation");
        let payload = envelope.to_json().unwrap();
        let record = FutureRecord::to(envelope.topic().name())
            .key(&envelope.aggregate_id)
            .partition(partition)
            .payload(&payload);
        if let Err((err, _)) = producer.send(record, Duration::from_secs(30)).await {
            panic!("the event reaches the broker: {err}");
        }
    }
}

/// `UserSuspended` of `user` (a ban when `banned`, else a suspension for a day).
fn suspended(user: &User, banned: bool, seq: u64) -> Event {
    Event::UserSuspended(UserSuspended {
        user_id: UserId::trusted(&user.id),
        username: user.username.clone(),
        banned,
        until: (!banned).then(|| "2099-01-01T00:00:00Z".to_owned()),
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

impl Story<'_> {
    /// The usernames a users search for `q` finds for `user`.
    async fn users(&self, user: &User, q: &str) -> Vec<String> {
        let answer = self
            .get(user, &format!("/v1/search/users?q={}", enc(q)))
            .await;
        assert_eq!(answer.status, StatusCode::OK, "{answer:?}");
        usernames(&answer.body)
    }

    /// The hashtags (with their counts) a hashtag search for `q` finds for `user`.
    async fn tags(&self, user: &User, q: &str) -> Value {
        let answer = self
            .get(user, &format!("/v1/search/hashtags?q={}", enc(q)))
            .await;
        assert_eq!(answer.status, StatusCode::OK, "{answer:?}");
        answer.body["items"].clone()
    }

    /// Waits until a users search for `q` by `user` finds exactly `expected`.
    async fn until_users(&self, user: &User, q: &str, expected: &[&str]) {
        let what = format!("users search {q:?} to find {expected:?}");
        eventually(&what, WAIT, || async {
            (self.users(user, q).await == expected).then_some(())
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_banned_user_and_their_posts_are_hidden_from_others_until_reinstated() {
    let app = TestApp::shared().await;
    let s = &Story::new(&app).await;
    let (alice, bob, carol) = (&s.alice, &s.bob, &s.carol);
    let volleyball = &s.mine("volleyball");
    let sports = &s.mine("sports");
    s.until_posts(carol, volleyball, &[&s.volley]).await;
    // A suspension for a while hides nothing in search (the account's writes are refused
    // elsewhere); the ban that follows it (seq 2, delivered twice) hides bob and his posts.
    moderation_event(s.app, suspended(bob, false, 1)).await;
    moderation_event(s.app, suspended(bob, true, 2)).await;
    moderation_event(s.app, suspended(bob, true, 2)).await;
    s.until_posts(carol, volleyball, &[]).await;
    s.until_users(carol, &bob.username, &[]).await;
    eventually("bob's hashtags to be hidden", WAIT, || async {
        (s.tags(carol, sports).await == json!([])).then_some(())
    })
    .await;
    assert!(s.posts(alice, volleyball).await.is_empty(), "from everyone");
    assert!(s.users(alice, &bob.username).await.is_empty());
    // bob himself still finds himself and his posts.
    assert_eq!(
        s.posts(bob, volleyball).await,
        std::slice::from_ref(&s.volley)
    );
    assert_eq!(s.users(bob, &bob.username).await, [bob.username.as_str()]);
    assert_eq!(
        s.tags(bob, sports).await,
        json!([{"tag": sports, "post_count": 1}])
    );

    // A late reinstatement of an older seq changes nothing: dave's ban, sent after it on
    // the same partition, is the proof it was read.
    let dave = s.app.user(&TestApp::unique("dave")).await;
    s.until_users(carol, &dave.username, &[&dave.username])
        .await;
    produce_in_order(s.app, 0, &[reinstated(bob, 1), suspended(&dave, true, 1)]).await;
    s.until_users(carol, &dave.username, &[]).await;
    assert!(s.posts(carol, volleyball).await.is_empty());
    assert!(s.users(carol, &bob.username).await.is_empty());

    // A newer reinstatement lifts the ban: bob and his post are back for everyone.
    moderation_event(s.app, reinstated(bob, 3)).await;
    s.until_posts(carol, volleyball, &[&s.volley]).await;
    s.until_users(carol, &bob.username, &[&bob.username]).await;
    assert_eq!(
        s.tags(carol, sports).await,
        json!([{"tag": sports, "post_count": 1}])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_post_removed_by_staff_is_gone_for_good() {
    let app = TestApp::shared().await;
    let s = &Story::new(&app).await;
    let (bob, carol) = (&s.bob, &s.carol);
    let volleyball = &s.mine("volleyball");
    s.until_posts(carol, volleyball, &[&s.volley]).await;
    // Staff remove bob's post.
    moderation_event(
        s.app,
        Event::ContentRemoved(ContentRemoved {
            kind: RemovedKind::Post,
            target_id: s.volley.clone(),
            post_id: shutter_core::PostId::trusted(&s.volley),
            author_id: UserId::trusted(&bob.id),
            note: "spam".into(),
            removed_by: UserId::trusted(&s.alice.id),
            removed_at: shutter_core::now_rfc3339(),
        }),
    )
    .await;
    // It is gone from search, for bob too (he still sees it, and why, on his profile).
    s.until_posts(carol, volleyball, &[]).await;
    s.until_posts(bob, volleyball, &[]).await;
    assert_eq!(s.tags(carol, &s.mine("sports")).await, json!([]));
    // A late edit of it (a newer version) does not bring it back: an edit of alice's
    // coffee post, sent after it on the same partition, is the proof it was read.
    let edit = |id: &str, author: &User, caption: &str| {
        Event::PostUpdated(PostFacts {
            post_id: shutter_core::PostId::trusted(id),
            author_id: UserId::trusted(&author.id),
            caption: s.mine(caption),
            location: None,
            hashtags: vec![],
            mentions: vec![],
            created_at: shutter_core::now_rfc3339(),
            version: 1_000,
            media: vec![],
        })
    };
    produce_in_order(
        s.app,
        0,
        &[
            edit(&s.volley, bob, "Beach volleyball resurrected"),
            edit(&s.coffee, &s.alice, "Morning espresso by the sea"),
        ],
    )
    .await;
    s.until_posts(carol, &s.mine("espresso"), &[&s.coffee])
        .await;
    for who in [carol, bob] {
        assert!(s.posts(who, volleyball).await.is_empty());
        assert!(s.posts(who, &s.mine("resurrected")).await.is_empty());
    }
}
