//! Blocks honoured per entry, tried as an attacker would (issue 13): someone who blocked
//! you, or whom you blocked, is not among a post's likers or commenters as you see them,
//! and does not turn up in your searches however many accounts you follow.
//!
//! The likes and comments services learn of a block from its `UserBlocked` event (their
//! directory), so a block hides the blocker's entries once the event has reached them. The
//! stories wait for that moment through something the block already hid before this
//! change (the blocker's own post is a 404 to the blocked), then look at once: what they
//! assert never depends on timing.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test, with its location

use std::collections::BTreeSet;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use shutter_e2e::{PNG, TestApp, User, eventually};

const WAIT: Duration = Duration::from_secs(90);

/// alice's post; carol will block mallory and mallory will block erin; dan is neither.
/// carol and erin each have a post of their own, to tell when a service knows the block.
struct Scene {
    alice: User,
    carol: User,
    dan: User,
    erin: User,
    mallory: User,
    post: String,
    carol_post: String,
    erin_post: String,
}

impl Scene {
    async fn new(app: &TestApp) -> Self {
        let names = ["alice", "carol", "dan", "erin", "mallory"].map(TestApp::unique);
        let (alice, carol, dan, erin, mallory) = futures::join!(
            app.user(&names[0]),
            app.user(&names[1]),
            app.user(&names[2]),
            app.user(&names[3]),
            app.user(&names[4])
        );
        let (post, carol_post, erin_post) = futures::join!(
            app.published_post(&alice),
            app.published_post(&carol),
            app.published_post(&erin)
        );
        Self {
            alice,
            carol,
            dan,
            erin,
            mallory,
            post,
            carol_post,
            erin_post,
        }
    }

    /// Waits until the service behind `/v1/posts/{id}/{list}` knows the three posts (its
    /// directory learns of them from `PostPublished`): each list answers mallory.
    async fn until_posts_known(&self, app: &TestApp, list: &str) {
        for post in [&self.post, &self.carol_post, &self.erin_post] {
            let path = format!("/v1/posts/{post}/{list}");
            eventually(&format!("{list}: the posts to be known"), WAIT, || async {
                let answer = app
                    .call(Method::GET, &path, Some(&self.mallory.access_token), None)
                    .await;
                (answer.status == StatusCode::OK).then_some(())
            })
            .await;
        }
    }

    /// carol blocks mallory and mallory blocks erin, through the follows service.
    async fn block(&self, app: &TestApp) {
        for (blocker, blocked) in [(&self.carol, &self.mallory), (&self.mallory, &self.erin)] {
            let path = format!("/v1/users/{}/block", blocked.username);
            let answer = app
                .call(Method::PUT, &path, Some(&blocker.access_token), None)
                .await;
            assert_eq!(answer.status, StatusCode::OK, "{answer:?}");
        }
    }

    /// Waits until the service behind `/v1/posts/{id}/{list}`, which knows the posts
    /// ([`Scene::until_posts_known`]), knows both blocks: carol's and erin's posts are a
    /// 404 to mallory there.
    async fn until_blocks_known(&self, app: &TestApp, list: &str) {
        for post in [&self.carol_post, &self.erin_post] {
            let path = format!("/v1/posts/{post}/{list}");
            eventually(&format!("{list}: the blocks to be known"), WAIT, || async {
                let answer = app
                    .call(Method::GET, &path, Some(&self.mallory.access_token), None)
                    .await;
                (answer.status == StatusCode::NOT_FOUND).then_some(())
            })
            .await;
        }
    }
}

/// Every item of the list at `path` that `user` is shown, page by page of `limit`.
async fn every_item(app: &TestApp, user: &User, path: &str, limit: u16) -> Vec<Value> {
    let (mut items, mut cursor) = (Vec::new(), None::<String>);
    for _ in 0..50 {
        let query = match &cursor {
            Some(c) => format!("{path}?limit={limit}&cursor={c}"),
            None => format!("{path}?limit={limit}"),
        };
        let page = app
            .call(Method::GET, &query, Some(&user.access_token), None)
            .await;
        assert_eq!(page.status, StatusCode::OK, "{query}: {page:?}");
        let got = page.body["items"].as_array().unwrap();
        assert!(got.len() <= usize::from(limit), "{page:?}");
        items.extend(got.iter().cloned());
        match page.body["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return items,
        }
    }
    panic!("{path}: the pages never ended");
}

fn field(items: &[Value], name: &str) -> Vec<String> {
    items
        .iter()
        .map(|i| i[name].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn likers_who_block_you_or_whom_you_block_are_not_listed_to_you() {
    let app = TestApp::shared().await;
    let s = Scene::new(&app).await;
    // GIVEN carol, dan and erin like alice's post
    s.until_posts_known(&app, "likes").await;
    let likes = format!("/v1/posts/{}/likes", s.post);
    for liker in [&s.carol, &s.dan, &s.erin] {
        let path = format!("/v1/posts/{}/like", s.post);
        let answer = app
            .call(Method::PUT, &path, Some(&liker.access_token), None)
            .await;
        assert_eq!(answer.status, StatusCode::OK, "{answer:?}");
    }
    let everyone = BTreeSet::from([s.carol.id.clone(), s.dan.id.clone(), s.erin.id.clone()]);
    let seen = every_item(&app, &s.mallory, &likes, 100).await;
    assert_eq!(
        field(&seen, "user_id").into_iter().collect::<BTreeSet<_>>(),
        everyone
    );
    // WHEN carol blocks mallory and mallory blocks erin, and the likes service knows it
    s.block(&app).await;
    s.until_blocks_known(&app, "likes").await;
    // THEN mallory sees dan only, in pages of 100 or of 1
    for limit in [100, 1] {
        let seen = every_item(&app, &s.mallory, &likes, limit).await;
        assert_eq!(
            field(&seen, "user_id"),
            std::slice::from_ref(&s.dan.id),
            "limit {limit}"
        );
    }
    // AND alice, whom nobody blocks, still sees all three
    let seen = every_item(&app, &s.alice, &likes, 100).await;
    assert_eq!(
        field(&seen, "user_id").into_iter().collect::<BTreeSet<_>>(),
        everyone
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn comments_by_one_who_blocks_you_or_whom_you_block_are_not_listed_to_you() {
    let app = TestApp::shared().await;
    let s = Scene::new(&app).await;
    // GIVEN threads on alice's post: carol's (dan answers), dan's (carol answers), erin's
    s.until_posts_known(&app, "comments").await;
    let comments = format!("/v1/posts/{}/comments", s.post);
    let comment = |by: &User, text: &str, reply_to: Option<String>| {
        let (app, comments, token) = (&app, comments.clone(), by.access_token.clone());
        let body = json!({"text": text, "reply_to": reply_to});
        async move {
            let answer = app
                .call(Method::POST, &comments, Some(&token), Some(body))
                .await;
            assert_eq!(answer.status, StatusCode::ACCEPTED, "{answer:?}");
            answer.body["id"].as_str().unwrap().to_owned()
        }
    };
    let by_carol = comment(&s.carol, "from carol", None).await;
    let by_dan = comment(&s.dan, "from dan", None).await;
    comment(&s.erin, "from erin", None).await;
    comment(&s.dan, "dan answers carol", Some(by_carol)).await;
    comment(&s.carol, "carol answers dan", Some(by_dan)).await;
    let all = [
        "from carol",
        "dan answers carol",
        "from dan",
        "carol answers dan",
        "from erin",
    ];
    eventually("the comments to be stored", WAIT, || async {
        let seen = every_item(&app, &s.alice, &comments, 100).await;
        (field(&seen, "text") == all).then_some(())
    })
    .await;
    // WHEN carol blocks mallory and mallory blocks erin, and the comments service knows it
    s.block(&app).await;
    s.until_blocks_known(&app, "comments").await;
    // THEN mallory sees dan's comments only, his reply to carol's included, in pages of
    // 100 or of 1
    for limit in [100, 1] {
        let seen = every_item(&app, &s.mallory, &comments, limit).await;
        assert_eq!(
            field(&seen, "text"),
            ["dan answers carol", "from dan"],
            "limit {limit}"
        );
    }
    // AND alice still sees them all
    let seen = every_item(&app, &s.alice, &comments, 100).await;
    assert_eq!(field(&seen, "text"), all);
}

/// Follows of `follower` as `search-indexer` keeps them (`shutter-relations`, id
/// `follow:<a>:<b>`, versioned by `seq`), written straight to OpenSearch: the state an
/// attacker reaches by following that many accounts, without sending thousands of events
/// through every consumer of `shutter.follows`.
async fn index_follows(app: &TestApp, follower: &str, how_many: usize) {
    let mut body = String::new();
    for _ in 0..how_many {
        let followee = shutter_core::new_id();
        let action = json!({"index": {"_index": "shutter-relations", "_id": format!("follow:{follower}:{followee}"),
                                      "version": 1, "version_type": "external"}});
        let edge =
            json!({"kind": "follow", "a": follower, "b": followee, "active": true, "seq": 1});
        body.push_str(&format!("{action}\n{edge}\n"));
    }
    let answer = app
        .http
        .post(format!("{}/_bulk?refresh=true", app.stack.opensearch_url()))
        .header("content-type", "application/x-ndjson")
        .body(body)
        .send()
        .await
        .unwrap();
    let answer: Value = answer.json().await.unwrap();
    assert_eq!(answer["errors"], false, "{answer}");
}

/// `GET path` as `user`, after asking OpenSearch to make every write searchable.
async fn search(app: &TestApp, user: &User, path: &str) -> Value {
    app.http
        .post(format!("{}/_refresh", app.stack.opensearch_url()))
        .send()
        .await
        .unwrap();
    let answer = app
        .call(Method::GET, path, Some(&user.access_token), None)
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{path}: {answer:?}");
    answer.body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn following_thousands_does_not_push_a_block_out_of_your_searches() {
    let app = TestApp::shared().await;
    // GIVEN carol, whose post and profile mallory finds, and mallory, who follows 5,001
    // accounts
    let names = ["carol", "mallory"].map(TestApp::unique);
    let (carol, mallory) = futures::join!(app.user(&names[0]), app.user(&names[1]));
    let word = TestApp::unique("lagoon").replace('_', "");
    let created = app
        .call(
            Method::POST,
            "/v1/posts",
            Some(&carol.access_token),
            Some(json!({"caption": format!("{word} at dawn #{word}"),
                        "media": [{"content_type": "image/png", "size": PNG.len()}]})),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{created:?}");
    let post = created.body["post"]["id"].as_str().unwrap().to_owned();
    assert!(
        app.upload(&created.body["uploads"][0]["upload"], PNG)
            .await
            .is_success()
    );
    index_follows(&app, &mallory.id, 5_001).await;
    let posts = format!("/v1/search/posts?q={word}");
    let users = format!("/v1/search/users?q={}", carol.username);
    let tags = format!("/v1/search/hashtags?q={word}");
    eventually("carol's post and profile to be found", WAIT, || async {
        let found = search(&app, &mallory, &posts).await;
        let who = search(&app, &mallory, &users).await;
        (found["items"][0]["id"] == post.as_str()
            && who["items"][0]["username"] == carol.username.as_str())
        .then_some(())
    })
    .await;
    // WHEN carol blocks mallory, and the block is indexed (carol no longer finds her)
    let path = format!("/v1/users/{}/block", mallory.username);
    let answer = app
        .call(Method::PUT, &path, Some(&carol.access_token), None)
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{answer:?}");
    let mallory_by_name = format!("/v1/search/users?q={}", mallory.username);
    eventually("the block to be indexed", WAIT, || async {
        let found = search(&app, &carol, &mallory_by_name).await;
        (found["items"] == json!([])).then_some(())
    })
    .await;
    // THEN mallory finds neither carol's post, nor carol, nor her hashtag's post
    assert_eq!(search(&app, &mallory, &posts).await["items"], json!([]));
    assert_eq!(search(&app, &mallory, &users).await["items"], json!([]));
    assert_eq!(search(&app, &mallory, &tags).await["items"], json!([]));
}
