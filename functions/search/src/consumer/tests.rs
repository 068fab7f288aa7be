//! The indexer against the in-memory OpenSearch: whole batches, as MSK delivers them.

#![allow(clippy::unwrap_used)]

use std::sync::atomic::Ordering;

use base64::Engine;
use serde_json::{Value, json};
use shutter_core::{CommentId, PostId, UserId};
use shutter_events::{
    BlockFacts, CommentAdded, CommentDeleted, CommentEdited, CommentLikeFacts, EdgeFacts,
    EngagementChanged, Envelope, Event, KafkaEvent, KafkaRecord, LikeFacts, MemoryPoisonQueue,
    PostDeleted, PostFacts, ProfileFacts, UserDeleted, UserEmailChanged, UserRegistered,
};

use super::*;
use crate::docs::RELATIONS_INDEX;
use crate::store::memory::MemoryIndex;

type TestApp = App<MemoryIndex>;

fn app() -> TestApp {
    App {
        search: MemoryIndex::default(),
        cursors: (),
    }
}

fn ev(event: Event) -> Envelope {
    Envelope::new(event, None, "corr")
}

fn kafka(values: &[String]) -> KafkaEvent {
    let mut b = KafkaEvent::default();
    for (i, value) in values.iter().enumerate() {
        let mut r = KafkaRecord::default();
        r.offset = i as i64;
        r.value = Some(base64::engine::general_purpose::STANDARD.encode(value));
        b.records
            .entry("shutter.posts-0".into())
            .or_default()
            .push(r);
    }
    b
}

fn batch(events: &[Envelope]) -> KafkaEvent {
    let values: Vec<String> = events.iter().map(|e| e.to_json().unwrap()).collect();
    kafka(&values)
}

async fn run_kafka(app: &TestApp, event: &KafkaEvent) -> Result<MemoryPoisonQueue, ConsumeError> {
    let q = MemoryPoisonQueue::default();
    let batch = apply(app, Batch::decode(&INDEXER, event)).await?;
    batch.finish(&INDEXER, &q).await?;
    Ok(q)
}

async fn run(app: &TestApp, events: &[Envelope]) -> MemoryPoisonQueue {
    run_kafka(app, &batch(events)).await.unwrap()
}

fn uid(id: &str) -> UserId {
    UserId::trusted(id)
}

fn post(id: &str, author: &str, caption: &str, version: u64) -> Envelope {
    let facts = PostFacts {
        post_id: PostId::trusted(id),
        author_id: uid(author),
        caption: caption.into(),
        location: None,
        hashtags: vec!["Beach".into()],
        mentions: vec![],
        created_at: "2026-11-29T00:00:00.000Z".into(),
        version,
        media: vec![],
    };
    ev(if version == 1 {
        Event::PostPublished(facts)
    } else {
        Event::PostUpdated(facts)
    })
}

fn post_deleted(id: &str, author: &str) -> Envelope {
    ev(Event::PostDeleted(PostDeleted {
        post_id: PostId::trusted(id),
        author_id: uid(author),
        deleted_by: uid(author),
    }))
}

fn like(user: &str, seq: u64, added: bool) -> Envelope {
    let facts = LikeFacts {
        post_id: PostId::trusted("p"),
        post_author_id: uid("a"),
        user_id: uid(user),
        seq,
        at: "t".into(),
    };
    ev(if added {
        Event::LikeAdded(facts)
    } else {
        Event::LikeRemoved(facts)
    })
}

fn edge(follower: &str, followee: &str, seq: u64) -> EdgeFacts {
    EdgeFacts {
        follower_id: uid(follower),
        followee_id: uid(followee),
        seq,
        at: "t".into(),
        reason: None,
    }
}

fn block(seq: u64, on: bool) -> Envelope {
    let facts = BlockFacts {
        blocker_id: uid("a"),
        blocked_id: uid("b"),
        seq,
        at: "t".into(),
    };
    ev(if on {
        Event::UserBlocked(facts)
    } else {
        Event::UserUnblocked(facts)
    })
}

fn registered(user: &str) -> Envelope {
    ev(Event::UserRegistered(UserRegistered {
        user_id: uid(user),
        username: "ann".into(),
        created_at: "t".into(),
    }))
}

fn profile(private: bool) -> Envelope {
    ev(Event::ProfileUpdated(ProfileFacts {
        user_id: uid("a"),
        username: "ann".into(),
        display_name: "Ann Lee".into(),
        private,
        avatar_key: None,
        version: 0,
        private_since: None,
    }))
}

fn source(app: &TestApp, index: &str, id: &str) -> Option<Value> {
    app.search.source(index, id)
}

#[tokio::test]
async fn posts_are_indexed_and_an_older_version_never_overwrites_a_newer() {
    let app = app();
    run(
        &app,
        &[
            post("p", "a", "first words", 1),
            post("p", "a", "second words", 3),
        ],
    )
    .await;
    run(&app, &[post("p", "a", "stale words", 2)]).await;
    let doc = source(&app, POSTS_INDEX, "p").unwrap();
    assert_eq!(
        (doc["caption"].as_str(), doc["version"].as_u64()),
        (Some("second words"), Some(3))
    );
    assert_eq!(
        doc["hashtags"],
        json!(["beach"]),
        "hashtags are kept lower-cased"
    );
}

#[tokio::test]
async fn a_deleted_post_stays_deleted_whatever_arrives_late() {
    let app = app();
    run(&app, &[post("p", "a", "hello", 1)]).await;
    run(&app, &[post_deleted("p", "a")]).await;
    run(&app, &[post("p", "a", "back from the dead", 5)]).await;
    let tombstone = source(&app, POSTS_INDEX, "p").unwrap();
    assert_eq!(tombstone["deleted"], true);
    assert!(
        tombstone.get("popularity").is_none(),
        "a rank feature must be positive"
    );
}

#[tokio::test]
async fn like_counts_follow_the_newest_seq_of_each_like_and_survive_replays() {
    let app = app();
    run(&app, &[post("p", "a", "hello", 1)]).await;
    let events = [
        like("u1", 1, true),
        like("u2", 1, true),
        like("u2", 2, false),
        like("u3", 1, true),
    ];
    run(&app, &events).await;
    run(&app, &events).await; // redelivery
    run(&app, &[like("u2", 1, true)]).await; // out of order: older than the unlike
    assert_eq!(source(&app, POSTS_INDEX, "p").unwrap()["like_count"], 2);
    assert_eq!(source(&app, POSTS_INDEX, "p").unwrap()["popularity"], 3);
    // An edit keeps the count.
    run(&app, &[post("p", "a", "edited", 2)]).await;
    assert_eq!(source(&app, POSTS_INDEX, "p").unwrap()["like_count"], 2);
}

#[tokio::test]
async fn follows_and_blocks_apply_only_newer_seqs() {
    let app = app();
    run(&app, &[block(2, false), block(1, true)]).await;
    assert_eq!(
        source(&app, RELATIONS_INDEX, "block:a:b").unwrap()["active"],
        false
    );
    run(
        &app,
        &[
            ev(Event::FollowStarted(edge("a", "c", 1))),
            ev(Event::FollowRequested(edge("a", "d", 1))),
        ],
    )
    .await;
    assert_eq!(
        source(&app, RELATIONS_INDEX, "follow:a:c").unwrap()["active"],
        true
    );
    assert!(
        source(&app, RELATIONS_INDEX, "follow:a:d").is_none(),
        "requests are not follows"
    );
    run(&app, &[ev(Event::FollowEnded(edge("a", "c", 2)))]).await;
    assert_eq!(
        source(&app, RELATIONS_INDEX, "follow:a:c").unwrap()["active"],
        false
    );
}

#[tokio::test]
async fn users_follow_their_profile_and_a_privacy_change_reflags_their_posts() {
    let app = app();
    run(&app, &[registered("a"), post("p", "a", "hello", 1)]).await;
    run(&app, &[profile(true)]).await;
    assert_eq!(
        source(&app, USERS_INDEX, "a").unwrap()["display_name"],
        "Ann Lee"
    );
    assert_eq!(
        source(&app, POSTS_INDEX, "p").unwrap()["author_private"],
        true
    );
    // A registration replayed later does not undo the profile.
    run(&app, &[registered("a")]).await;
    assert_eq!(source(&app, USERS_INDEX, "a").unwrap()["private"], true);
    // New posts of a private author are private from the start.
    run(&app, &[post("q", "a", "second", 1)]).await;
    assert_eq!(
        source(&app, POSTS_INDEX, "q").unwrap()["author_private"],
        true
    );
    run(
        &app,
        &[
            ev(Event::UserDeleted(UserDeleted {
                user_id: uid("a"),
                username: "ann".into(),
            })),
            profile(false),
        ],
    )
    .await;
    assert_eq!(source(&app, USERS_INDEX, "a").unwrap()["deleted"], true);
}

fn standing(banned: Option<bool>, seq: u64) -> Envelope {
    ev(match banned {
        Some(banned) => Event::UserSuspended(shutter_events::UserSuspended {
            user_id: uid("a"),
            username: "ann".into(),
            banned,
            until: (!banned).then(|| "2026-12-08T00:00:00Z".into()),
            seq,
        }),
        None => Event::UserReinstated(shutter_events::UserReinstated {
            user_id: uid("a"),
            username: "ann".into(),
            seq,
        }),
    })
}

fn removed(kind: shutter_events::RemovedKind, target: &str, post: &str) -> Envelope {
    ev(Event::ContentRemoved(shutter_events::ContentRemoved {
        kind,
        target_id: target.into(),
        post_id: PostId::trusted(post),
        author_id: uid("a"),
        note: "spam".into(),
        removed_by: uid("m"),
        removed_at: "t".into(),
    }))
}

/// (user banned, every post of theirs flagged banned)
fn banned_state(app: &TestApp) -> (bool, Vec<bool>) {
    let user = source(app, USERS_INDEX, "a").unwrap();
    let mut posts: Vec<(String, Value)> = app.search.all(POSTS_INDEX).into_iter().collect();
    posts.sort_by(|a, b| a.0.cmp(&b.0));
    (
        user["banned"] == true,
        posts
            .iter()
            .map(|(_, p)| p["author_banned"] == true)
            .collect(),
    )
}

#[tokio::test]
async fn a_ban_flags_the_user_and_their_posts_until_a_newer_reinstatement() {
    // GIVEN a user with two posts
    let app = app();
    run(
        &app,
        &[
            registered("a"),
            post("p", "a", "one", 1),
            post("q", "a", "two", 1),
        ],
    )
    .await;
    // WHEN they are banned (seq 2), and the ban is delivered twice
    run(&app, &[standing(Some(true), 2)]).await;
    let before = app.search.all(USERS_INDEX);
    let q = run(&app, &[standing(Some(true), 2)]).await;
    // THEN the user and both posts are flagged, and the redelivery changed nothing
    assert_eq!(banned_state(&app), (true, vec![true, true]));
    assert_eq!(app.search.all(USERS_INDEX), before);
    assert!(q.positions().is_empty());
    // AND a post published while banned is flagged from the start
    run(&app, &[post("r", "a", "three", 1)]).await;
    assert_eq!(banned_state(&app), (true, vec![true, true, true]));
    // WHEN a late reinstatement of an older seq arrives THEN it is ignored
    run(&app, &[standing(None, 1)]).await;
    assert_eq!(banned_state(&app), (true, vec![true, true, true]));
    // WHEN a newer reinstatement arrives THEN everything is back
    run(&app, &[standing(None, 3)]).await;
    assert_eq!(banned_state(&app), (false, vec![false, false, false]));
    assert_eq!(source(&app, USERS_INDEX, "a").unwrap()["standing_seq"], 3);
    // AND a later time-limited suspension hides nothing in search
    run(&app, &[standing(Some(false), 4)]).await;
    assert_eq!(banned_state(&app), (false, vec![false, false, false]));
    // AND a ban delivered out of order after it (seq 3 < 4) does not take
    run(&app, &[standing(Some(true), 3)]).await;
    assert_eq!(banned_state(&app), (false, vec![false, false, false]));
}

#[tokio::test]
async fn a_post_removed_by_staff_stays_gone_and_a_removed_comment_changes_nothing() {
    use shutter_events::RemovedKind;
    let app = app();
    run(&app, &[post("p", "a", "hello", 1)]).await;
    let before = app.search.all(POSTS_INDEX);
    // A comment's removal: nothing to index.
    let q = run(&app, &[removed(RemovedKind::Comment, "c", "p")]).await;
    assert!(q.positions().is_empty());
    assert_eq!(app.search.all(POSTS_INDEX), before);
    // The post's removal, delivered twice, then a late edit.
    run(&app, &[removed(RemovedKind::Post, "p", "p")]).await;
    run(&app, &[removed(RemovedKind::Post, "p", "p")]).await;
    run(&app, &[post("p", "a", "back from the dead", 5)]).await;
    let tombstone = source(&app, POSTS_INDEX, "p").unwrap();
    assert_eq!(tombstone["deleted"], true);
    assert_eq!(tombstone["caption"], "");
}

#[tokio::test]
async fn an_avatar_change_is_a_profile_change() {
    let app = app();
    run(&app, &[registered("a")]).await;
    run(
        &app,
        &[ev(Event::AvatarChanged(ProfileFacts {
            user_id: uid("a"),
            username: "ann".into(),
            display_name: "Ann with a face".into(),
            private: false,
            avatar_key: Some("avatars/a.jpg".into()),
            version: 0,
            private_since: None,
        }))],
    )
    .await;
    assert_eq!(
        source(&app, USERS_INDEX, "a").unwrap()["display_name"],
        "Ann with a face"
    );
}

#[tokio::test]
async fn a_racing_writer_is_read_again_not_overwritten() {
    let app = app();
    run(&app, &[post("p", "a", "hello", 1)]).await;
    let mut raced = source(&app, POSTS_INDEX, "p").unwrap();
    raced["like_count"] = json!(9);
    app.search.touch(POSTS_INDEX, "p", raced);
    run(&app, &[post("p", "a", "edited", 2)]).await;
    let doc = source(&app, POSTS_INDEX, "p").unwrap();
    assert_eq!(
        (doc["caption"].as_str(), doc["like_count"].as_i64()),
        (Some("edited"), Some(9))
    );
}

#[tokio::test]
async fn the_same_batch_twice_changes_nothing_the_second_time() {
    // GIVEN a batch of every kind of effect, applied once
    let app = app();
    let events = [
        registered("a"),
        profile(true),
        post("p", "a", "hello", 1),
        like("u1", 1, true),
        block(1, true),
        ev(Event::FollowStarted(edge("a", "c", 1))),
    ];
    run(&app, &events).await;
    let before: Vec<_> = [POSTS_INDEX, USERS_INDEX, RELATIONS_INDEX]
        .iter()
        .map(|i| app.search.all(i))
        .collect();
    // WHEN it is delivered again
    let q = run(&app, &events).await;
    // THEN every document is as it was, and nothing is poison
    let after: Vec<_> = [POSTS_INDEX, USERS_INDEX, RELATIONS_INDEX]
        .iter()
        .map(|i| app.search.all(i))
        .collect();
    assert_eq!(before, after);
    assert!(q.positions().is_empty());
}

#[tokio::test]
async fn refused_items_are_poison_and_overload_fails_the_batch() {
    let app = app();
    app.search.fail.lock().unwrap().insert("bad".into(), 400);
    let undecodable = r#"{"id":"01J","type":"PostPublished","version":1,"occurred_at":"t","actor":null,"aggregate_id":"x","correlation_id":"c","data":{"post":1}}"#;
    let q = run_kafka(
        &app,
        &kafka(&[
            post("bad", "a", "x", 1).to_json().unwrap(),
            post("good", "a", "y", 1).to_json().unwrap(),
            undecodable.to_owned(),
        ]),
    )
    .await
    .unwrap();
    assert!(source(&app, POSTS_INDEX, "good").is_some());
    let mut sent = q.sent.lock().unwrap().clone();
    sent.sort();
    let positions: Vec<&str> = sent.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(
        positions,
        ["shutter.posts-0@0", "shutter.posts-0@2"],
        "the refused post and the undecodable one, once each"
    );
    assert!(sent[0].1.contains("injected"), "{}", sent[0].1);
    assert!(sent[1].1.contains("PostPublished"), "{}", sent[1].1);

    app.search.fail.lock().unwrap().insert("busy".into(), 429);
    let err = run_kafka(&app, &batch(&[post("busy", "a", "x", 1)]))
        .await
        .err()
        .unwrap();
    assert!(matches!(err, ConsumeError::Retry(_)), "{err}");
}

#[tokio::test]
async fn an_unreachable_cluster_fails_the_batch_and_gives_nothing_up() {
    // GIVEN a cluster that cannot be reached
    let app = app();
    app.search.down.store(true, Ordering::Relaxed);
    // WHEN a batch arrives
    let result = run_kafka(&app, &batch(&[post("p", "a", "x", 1), like("u", 1, true)])).await;
    // THEN the batch fails to be retried (the DLQ is only written when a batch finishes)
    assert!(matches!(result, Err(ConsumeError::Retry(_))));
    // AND once the cluster is back the same batch applies
    app.search.down.store(false, Ordering::Relaxed);
    let q = run(&app, &[post("p", "a", "x", 1), like("u", 1, true)]).await;
    assert!(q.positions().is_empty());
    assert_eq!(source(&app, POSTS_INDEX, "p").unwrap()["like_count"], 1);
}

#[tokio::test]
async fn unhandled_and_unknown_events_are_skipped_not_poison() {
    let app = app();
    let unknown = r#"{"id":"01J","type":"StoryPosted","version":1,"occurred_at":"t","actor":null,"aggregate_id":"s","correlation_id":"c","data":{}}"#;
    let created = ev(Event::PostCreated(PostFacts {
        post_id: PostId::trusted("p"),
        author_id: uid("a"),
        caption: "draft".into(),
        location: None,
        hashtags: vec![],
        mentions: vec![],
        created_at: "t".into(),
        version: 1,
        media: vec![],
    }));
    let q = run_kafka(
        &app,
        &kafka(&[unknown.to_owned(), created.to_json().unwrap()]),
    )
    .await
    .unwrap();
    assert!(q.positions().is_empty());
    assert!(
        source(&app, POSTS_INDEX, "p").is_none(),
        "a post is searchable from its publication"
    );
    for index in [POSTS_INDEX, USERS_INDEX, RELATIONS_INDEX] {
        assert!(app.search.all(index).is_empty(), "{index}");
    }
}

/// One event of each type (the match is exhaustive: a new type must be placed here).
fn sample(t: EventType) -> Event {
    let post = PostFacts {
        post_id: PostId::trusted("p"),
        author_id: uid("a"),
        caption: "c".into(),
        location: None,
        hashtags: vec![],
        mentions: vec![],
        created_at: "t".into(),
        version: 1,
        media: vec![],
    };
    let profile = ProfileFacts {
        user_id: uid("a"),
        username: "ann".into(),
        display_name: "Ann".into(),
        private: false,
        avatar_key: None,
        version: 0,
        private_since: None,
    };
    let like = LikeFacts {
        post_id: PostId::trusted("p"),
        post_author_id: uid("a"),
        user_id: uid("u"),
        seq: 1,
        at: "t".into(),
    };
    let block = BlockFacts {
        blocker_id: uid("a"),
        blocked_id: uid("b"),
        seq: 1,
        at: "t".into(),
    };
    let comment_like = CommentLikeFacts {
        comment_id: CommentId::trusted("c"),
        post_id: PostId::trusted("p"),
        user_id: uid("u"),
    };
    match t {
        EventType::UserRegistered => Event::UserRegistered(UserRegistered {
            user_id: uid("a"),
            username: "ann".into(),
            created_at: "t".into(),
        }),
        EventType::UserEmailChanged => {
            Event::UserEmailChanged(UserEmailChanged { user_id: uid("a") })
        }
        EventType::UserDeleted => Event::UserDeleted(UserDeleted {
            user_id: uid("a"),
            username: "ann".into(),
        }),
        EventType::UserSuspended => Event::UserSuspended(shutter_events::UserSuspended {
            user_id: uid("a"),
            username: "ann".into(),
            banned: true,
            until: None,
            seq: 1,
        }),
        EventType::UserReinstated => Event::UserReinstated(shutter_events::UserReinstated {
            user_id: uid("a"),
            username: "ann".into(),
            seq: 2,
        }),
        EventType::ContentRemoved => Event::ContentRemoved(shutter_events::ContentRemoved {
            kind: shutter_events::RemovedKind::Post,
            target_id: "p".into(),
            post_id: PostId::trusted("p"),
            author_id: uid("a"),
            note: "spam".into(),
            removed_by: uid("m"),
            removed_at: "t".into(),
        }),
        EventType::ProfileUpdated => Event::ProfileUpdated(profile),
        EventType::AvatarChanged => Event::AvatarChanged(profile),
        EventType::PostCreated => Event::PostCreated(post),
        EventType::PostPublished => Event::PostPublished(post),
        EventType::PostUpdated => Event::PostUpdated(post),
        EventType::PostDeleted => Event::PostDeleted(PostDeleted {
            post_id: PostId::trusted("p"),
            author_id: uid("a"),
            deleted_by: uid("a"),
        }),
        EventType::PostEngagementChanged => Event::PostEngagementChanged(EngagementChanged {
            post_id: PostId::trusted("p"),
            like_delta: 1,
            comment_delta: 0,
        }),
        EventType::LikeAdded => Event::LikeAdded(like),
        EventType::LikeRemoved => Event::LikeRemoved(like),
        EventType::CommentAdded => Event::CommentAdded(CommentAdded {
            comment_id: CommentId::trusted("c"),
            post_id: PostId::trusted("p"),
            author_id: uid("a"),
            reply_to: None,
            text: "t".into(),
            hashtags: vec![],
            mentions: vec![],
            created_at: "t".into(),
        }),
        EventType::CommentEdited => Event::CommentEdited(CommentEdited {
            comment_id: CommentId::trusted("c"),
            post_id: PostId::trusted("p"),
            author_id: uid("a"),
            text: "t".into(),
            hashtags: vec![],
            mentions: vec![],
        }),
        EventType::CommentDeleted => Event::CommentDeleted(CommentDeleted {
            comment_id: CommentId::trusted("c"),
            post_id: PostId::trusted("p"),
            author_id: uid("a"),
            deleted_by: uid("a"),
        }),
        EventType::CommentLikeAdded => Event::CommentLikeAdded(comment_like),
        EventType::CommentLikeRemoved => Event::CommentLikeRemoved(comment_like),
        EventType::FollowRequested => Event::FollowRequested(edge("a", "b", 1)),
        EventType::FollowRequestCancelled => Event::FollowRequestCancelled(edge("a", "b", 1)),
        EventType::FollowStarted => Event::FollowStarted(edge("a", "b", 1)),
        EventType::FollowEnded => Event::FollowEnded(edge("a", "b", 1)),
        EventType::UserBlocked => Event::UserBlocked(block),
        EventType::UserUnblocked => Event::UserUnblocked(block),
        EventType::RegistrationWithTakenEmail => {
            Event::RegistrationWithTakenEmail(shutter_events::RegistrationWithTakenEmail {
                user_id: uid("a"),
                attempted_username: "ann".into(),
                at: "t".into(),
            })
        }
    }
}

#[test]
fn the_indexer_handles_exactly_the_events_it_acts_on() {
    for t in EventType::ALL {
        let event = sample(*t);
        assert_eq!(event.event_type(), *t);
        assert_eq!(
            effect(&event).is_some(),
            INDEXER.handles.contains(*t),
            "{}",
            t.as_str()
        );
    }
    assert_eq!(crate::CONSUMERS, [&INDEXER]);
}
