//! The home feed's user stories through the devstack: follows and posts become feeds
//! (fan-out and backfill), pages with the cursor, likes and deletions show, a private
//! account's posts come after approval, and a block or an unfollow takes posts away.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test, with its location

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use shutter_e2e::{Answer, TestApp, User, eventually};

const WAIT: Duration = Duration::from_secs(90);

/// Three users of a story's own and their posts: bob follows ann, cat follows ann and
/// bob; then ann posts p1, bob p2 and ann p3.
struct Friends {
    ann: User,
    bob: User,
    cat: User,
    p1: String,
    p2: String,
    p3: String,
}

impl Friends {
    async fn new(app: &TestApp) -> Self {
        let mut users = Vec::new();
        for name in ["feed.ann", "feed.bob", "feed.cat"] {
            users.push(app.user(&TestApp::unique(name)).await);
        }
        let [ann, bob, cat] = <[User; 3]>::try_from(users).unwrap();
        follow(app, &bob, &ann, "following").await;
        follow(app, &cat, &ann, "following").await;
        follow(app, &cat, &bob, "following").await;
        let p1 = app.published_post(&ann).await;
        let p2 = app.published_post(&bob).await;
        let p3 = app.published_post(&ann).await;
        Self {
            ann,
            bob,
            cat,
            p1,
            p2,
            p3,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follows_and_posts_become_feeds_newest_first() {
    let app = &TestApp::shared().await;
    let Friends {
        ann,
        bob,
        cat,
        p1,
        p2,
        p3,
    } = &Friends::new(app).await;

    // Each sees exactly the posts of whom they follow, and their own, newest first.
    feed_becomes(app, ann, &[p3, p1]).await;
    feed_becomes(app, bob, &[p3, p2, p1]).await;
    feed_becomes(app, cat, &[p3, p2, p1]).await;
    // Paging one at a time returns every post once, in order.
    assert_eq!(
        paged(app, cat, 1).await,
        [p3.clone(), p2.clone(), p1.clone()]
    );
    // Each post is hydrated with its author.
    let page = call(app, cat, Method::GET, "/v1/feed", None).await;
    assert_eq!(
        page.body["items"][1]["author"]["username"],
        bob.username.as_str()
    );
    assert_eq!(page.body["items"][1]["media"].as_array().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unfollowing_or_deleting_a_post_takes_it_from_feeds() {
    let app = &TestApp::shared().await;
    let Friends {
        ann,
        bob,
        cat,
        p1,
        p2,
        p3,
    } = &Friends::new(app).await;
    feed_becomes(app, bob, &[p3, p2, p1]).await;
    feed_becomes(app, cat, &[p3, p2, p1]).await;

    // Unfollowing takes bob's post from cat's feed; a deleted post leaves every feed.
    let unfollow = call(
        app,
        cat,
        Method::DELETE,
        &format!("/v1/users/{}/follow", bob.username),
        None,
    )
    .await;
    assert_eq!(unfollow.status, StatusCode::OK);
    feed_becomes(app, cat, &[p3, p1]).await;
    let deleted = call(app, ann, Method::DELETE, &format!("/v1/posts/{p1}"), None).await;
    assert!(deleted.status.is_success(), "{deleted:?}");
    feed_becomes(app, bob, &[p3, p2]).await;
    feed_becomes(app, cat, &[p3]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_accounts_posts_reach_a_follower_once_approved() {
    let app = &TestApp::shared().await;
    let mut users = Vec::new();
    for name in ["feed.ann", "feed.cat", "feed.dan"] {
        users.push(app.user(&TestApp::unique(name)).await);
    }
    let [ann, cat, dan] = &<[User; 3]>::try_from(users).unwrap();
    // cat follows ann, who posted p3.
    follow(app, cat, ann, "following").await;
    let p3 = &app.published_post(ann).await;
    feed_becomes(app, cat, &[p3]).await;

    // A private account's posts reach a follower once she approves them (backfill).
    eventually("dan's profile to turn private", WAIT, || async {
        let private = call(
            app,
            dan,
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
    let dans_followers = format!("/v1/users/{}/followers", dan.username);
    eventually(
        "the follows service to know dan is private",
        WAIT,
        || async {
            let answer = call(app, cat, Method::GET, &dans_followers, None).await;
            (answer.status == StatusCode::FORBIDDEN).then_some(())
        },
    )
    .await;
    let p4 = &app.published_post(dan).await;
    follow(app, cat, dan, "requested").await;
    feed_becomes(app, cat, &[p3]).await;
    let approve = call(
        app,
        dan,
        Method::POST,
        &format!("/v1/follow-requests/{}/approve", cat.id),
        None,
    )
    .await;
    assert_eq!(approve.status, StatusCode::OK, "{approve:?}");
    feed_becomes(app, cat, &[p4, p3]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_block_takes_the_blockers_posts_from_the_feed() {
    let app = &TestApp::shared().await;
    let mut users = Vec::new();
    for name in ["feed.ann", "feed.cat", "feed.dan"] {
        users.push(app.user(&TestApp::unique(name)).await);
    }
    let [ann, cat, dan] = &<[User; 3]>::try_from(users).unwrap();
    // cat follows ann and dan, who posted p3 and p4.
    follow(app, cat, ann, "following").await;
    follow(app, cat, dan, "following").await;
    let p3 = &app.published_post(ann).await;
    let p4 = &app.published_post(dan).await;
    feed_becomes(app, cat, &[p4, p3]).await;

    // A block ends the follow both ways: ann's posts leave cat's feed.
    let block = call(
        app,
        ann,
        Method::PUT,
        &format!("/v1/users/{}/block", cat.username),
        None,
    )
    .await;
    assert_eq!(block.status, StatusCode::OK);
    feed_becomes(app, cat, &[p4]).await;
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

/// `who` asks to follow `whom` once the follows service knows `whom`.
async fn follow(app: &TestApp, who: &User, whom: &User, expected: &str) {
    let path = format!("/v1/users/{}/follow", whom.username);
    let state = eventually("the follows service to know the user", WAIT, || async {
        let answer = call(app, who, Method::PUT, &path, None).await;
        (answer.status == StatusCode::OK).then(|| answer.body["state"].as_str().unwrap().to_owned())
    })
    .await;
    assert_eq!(state, expected);
}

/// Every post id of the viewer's feed, paging `limit` at a time.
async fn paged(app: &TestApp, viewer: &User, limit: usize) -> Vec<String> {
    let mut ids = Vec::new();
    let mut path = format!("/v1/feed?limit={limit}");
    loop {
        let page = call(app, viewer, Method::GET, &path, None).await;
        assert_eq!(page.status, StatusCode::OK, "{:?}", page.body);
        for item in page.body["items"].as_array().unwrap() {
            ids.push(item["id"].as_str().unwrap().to_owned());
        }
        match page.body["next_cursor"].as_str() {
            Some(cursor) => path = format!("/v1/feed?limit={limit}&cursor={cursor}"),
            None => return ids,
        }
    }
}

/// Waits until the viewer's whole feed is exactly `expected`, in order.
async fn feed_becomes(app: &TestApp, viewer: &User, expected: &[&String]) {
    let expected: Vec<String> = expected.iter().map(|s| (*s).clone()).collect();
    let mut last = Vec::new();
    let found = tokio::time::timeout(WAIT, async {
        loop {
            last = paged(app, viewer, 20).await;
            if last == expected {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await;
    assert!(
        found.is_ok(),
        "{}'s feed stayed {last:?}, expected {expected:?}",
        viewer.username
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn likes_show_in_the_feed() {
    let app = &TestApp::shared().await;
    let Friends { cat, p2, .. } = &Friends::new(app).await;
    let post = p2.as_str();
    let path = format!("/v1/posts/{post}/like");
    eventually("the likes service to know the post", WAIT, || async {
        (call(app, cat, Method::PUT, &path, None).await.status == StatusCode::OK).then_some(())
    })
    .await;
    eventually("the like to show in the feed", WAIT, || async {
        let page = call(app, cat, Method::GET, "/v1/feed", None).await;
        let item = page.body["items"]
            .as_array()?
            .iter()
            .find(|i| i["id"] == post)?
            .clone();
        (item["liked_by_me"] == true && item["like_count"] == 1).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cursors_are_bound_to_their_viewer() {
    let app = &TestApp::shared().await;
    let Friends {
        ann,
        cat,
        p1,
        p2,
        p3,
        ..
    } = &Friends::new(app).await;
    feed_becomes(app, cat, &[p3, p2, p1]).await;
    let page = call(app, cat, Method::GET, "/v1/feed?limit=1", None).await;
    let cursor = page.body["next_cursor"].as_str().unwrap().to_owned();
    // The same cursor with its last character changed.
    let last = if cursor.ends_with('A') { "B" } else { "A" };
    let tampered = format!("{}{last}", &cursor[..cursor.len() - 1]);
    for (who, path) in [
        (ann, format!("/v1/feed?cursor={cursor}")),
        (cat, format!("/v1/feed?cursor={tampered}")),
        (cat, "/v1/feed?cursor=forged".to_owned()),
        (cat, "/v1/feed?limit=101".to_owned()),
    ] {
        let answer = call(app, who, Method::GET, &path, None).await;
        assert_eq!(
            answer.status,
            StatusCode::BAD_REQUEST,
            "{path}: {:?}",
            answer.body
        );
    }
    let anonymous = app.call(Method::GET, "/v1/feed", None, None).await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
}

/// The fan-out consumer on the devstack's table: a batch that failed halfway (half the
/// followers written) and is delivered again, twice, leaves each follower exactly one
/// entry; a late redelivery of an older follow event changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fan_out_retries_and_redeliveries_do_not_duplicate() {
    use shutter_core::{PostId, UserId};
    use shutter_directory::DynamoDirectory;
    use shutter_events::work::{MemoryWorkQueue, WithWork};
    use shutter_events::{EdgeFacts, Envelope, Event, PostFacts};
    use shutter_feed::model::{Entry, FanOut};
    use shutter_feed::store::{DynamoFeedStore, FeedReader, FeedStore};
    use shutter_feed::{Timelines, fanout, worker};

    let app = TestApp::spawn().await;
    let aws = app.aws().await;
    let table = shutter_store::Table::new(&aws, app.stack.table_name("FeedTable"));
    // The consumer and its worker in-process, the work queue in memory, 25 followers a
    // chunk.
    let feed = WithWork {
        app: Timelines {
            store: DynamoFeedStore::new(table.clone()),
            directory: DynamoDirectory { table },
            settings: FanOut {
                celebrity_followers: 10_000,
            },
        },
        work: MemoryWorkQueue::default(),
        page: 25,
    };
    let work = || async {
        let failed = feed.work.drain(100, |job| worker::chunk(&feed, job)).await;
        assert!(failed.is_empty(), "{failed:?}");
    };
    let store = &feed.store;
    let author = UserId::generate();
    let followers: Vec<UserId> = (0..60).map(|_| UserId::generate()).collect();
    let edge = |follower: &UserId, seq: u64| EdgeFacts {
        follower_id: follower.clone(),
        followee_id: author.clone(),
        seq,
        at: "t".to_owned(),
        reason: None,
    };
    for f in &followers {
        let started = Envelope::new(Event::FollowStarted(edge(f, 1)), Some(f), "test");
        fanout::apply(&feed, started.clone()).await.unwrap();
        // Redelivered: the follower is listed once.
        fanout::apply(&feed, started).await.unwrap();
    }
    assert_eq!(store.author_meta(&author).await.unwrap().follower_count, 60);
    let post = PostId::generate();
    let published = Envelope::new(
        Event::PostPublished(PostFacts {
            post_id: post.clone(),
            author_id: author.clone(),
            caption: "hi".to_owned(),
            location: None,
            hashtags: vec![],
            mentions: vec![],
            created_at: shutter_core::now_rfc3339(),
            version: 2,
            media: vec![],
        }),
        Some(&author),
        "test",
    );
    // What a crash halfway through the first delivery leaves behind.
    let entry = Entry::new(&published.occurred_at, &post, &author);
    store
        .add_to_timelines(&followers[..30], std::slice::from_ref(&entry))
        .await
        .unwrap();
    for _ in 0..2 {
        fanout::apply(&feed, published.clone()).await.unwrap();
        work().await;
    }
    for f in &followers {
        let timeline = store.timeline(f, None, 10).await.unwrap();
        assert_eq!(timeline, std::slice::from_ref(&entry), "{f}");
    }
    // An older follow event arriving late does not undo the newer state.
    let ended = Envelope::new(Event::FollowEnded(edge(&followers[0], 2)), None, "test");
    fanout::apply(&feed, ended.clone()).await.unwrap();
    fanout::apply(&feed, ended).await.unwrap();
    let late_start = Envelope::new(Event::FollowStarted(edge(&followers[0], 1)), None, "test");
    fanout::apply(&feed, late_start).await.unwrap();
    work().await;
    assert!(
        store
            .timeline(&followers[0], None, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.author_meta(&author).await.unwrap().follower_count, 59);
    app.stop().await;
}
