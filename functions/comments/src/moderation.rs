//! How suspensions, bans and removals (the moderation service's `UserSuspended`,
//! `UserReinstated` and `ContentRemoved`, through `comments-directory-events`) act on
//! comments: unit tests of the rules over the memory fakes.

#![allow(clippy::unwrap_used)]

use shutter_core::PageRequest;
use shutter_events::{Envelope, EventType};

use crate::consumer::apply;
use crate::service::NewComment;
use crate::testing::{Who, World, text, world};

/// The event, delivered twice (as Kafka may).
async fn deliver_twice(w: &World, event: Envelope) {
    apply(&w.app, event.clone()).await.unwrap();
    apply(&w.app, event).await.unwrap();
}

fn texts(listed: &[crate::model::CommentView]) -> Vec<&str> {
    listed.iter().map(|c| c.text.as_str()).collect()
}

fn new_comment(w: &World, raw: &str) -> NewComment {
    NewComment {
        post_id: w.post.clone(),
        text: text(raw),
        reply_to: None,
    }
}

/// Every write `who` may try on `theirs` (their comment) and `other` (someone else's),
/// each answer's status and code.
async fn every_write(
    w: &World,
    who: &Who,
    theirs: &crate::model::CommentView,
    other: &crate::model::CommentView,
) -> Vec<(u16, String)> {
    let me = who.caller();
    let answers = [
        w.app
            .create(&me, new_comment(w, "again"), "c")
            .await
            .map(|_| ()),
        w.app
            .edit(&me, &theirs.id, text("edited"), "c")
            .await
            .map(|_| ()),
        w.app.like(&me, &other.id, "c").await,
        w.app.unlike(&me, &other.id, "c").await,
        w.app.delete(&me, &theirs.id, "c").await.map(|_| ()),
    ];
    answers
        .into_iter()
        .map(|a| match a {
            Ok(()) => (200, String::new()),
            Err(e) => (e.status(), e.problem().code),
        })
        .collect()
}

#[tokio::test]
async fn a_suspended_accounts_token_writes_nothing_until_it_is_reinstated() {
    // GIVEN bob's comment and carol's, then bob suspended for an hour (delivered twice)
    let w = world();
    let bobs = w.comment(&w.bob, "bob's", None).await;
    let carols = w.comment(&w.carol, "carol's", None).await;
    let until = "2999-01-01T00:00:00.000Z";
    deliver_twice(&w, w.suspended(&w.bob, Some(until), 1)).await;
    let (comments, events) = (w.app.store.comments(), w.app.store.events());
    // WHEN bob's still-valid token comments, edits, likes, unlikes and deletes
    let answers = every_write(&w, &w.bob, &bobs, &carols).await;
    // THEN each is a 403 account_suspended saying until when, and nothing changed
    assert_eq!(answers, vec![(403, "account_suspended".to_owned()); 5]);
    let err = w
        .app
        .create(&w.bob.caller(), new_comment(&w, "x"), "c")
        .await
        .unwrap_err();
    assert_eq!(err.problem().until.as_deref(), Some(until));
    assert!(w.app.queue.take().is_empty());
    assert_eq!(w.app.store.comments(), comments);
    assert_eq!(w.app.store.events(), events);
    // AND he still reads, and others still see his comment (a suspension hides nothing)
    assert_eq!(texts(&w.listed(&w.bob).await), ["bob's", "carol's"]);
    assert_eq!(texts(&w.listed(&w.carol).await), ["bob's", "carol's"]);
    // WHEN the suspension is lifted (seq 2), and the suspension is delivered again late
    deliver_twice(&w, w.reinstated(&w.bob, 2)).await;
    apply(&w.app, w.suspended(&w.bob, Some(until), 1))
        .await
        .unwrap();
    // THEN his writes pass again
    let answers = every_write(&w, &w.bob, &bobs, &carols).await;
    assert!(answers.iter().all(|(s, _)| *s == 200), "{answers:?}");
}

#[tokio::test]
async fn a_suspension_that_ended_refuses_nothing_and_a_deleted_account_stays_a_401() {
    let w = world();
    let carols = w.comment(&w.carol, "carol's", None).await;
    apply(
        &w.app,
        w.suspended(&w.bob, Some("2001-01-01T00:00:00.000Z"), 1),
    )
    .await
    .unwrap();
    w.app.like(&w.bob.caller(), &carols.id, "c").await.unwrap();
    let gone = Envelope::new(
        shutter_events::Event::UserDeleted(shutter_events::UserDeleted {
            user_id: w.carol.id.clone(),
            username: "carol".into(),
        }),
        Some(&w.carol.id),
        "c",
    );
    apply(&w.app, gone).await.unwrap();
    let err = w
        .app
        .unlike(&w.carol.caller(), &carols.id, "c")
        .await
        .unwrap_err();
    assert_eq!(err.status(), 401);
}

#[tokio::test]
async fn a_banned_authors_comments_are_hidden_from_others_until_the_ban_is_lifted() {
    // GIVEN bob's comment with carol's reply, and ann's comment
    let w = world();
    let bobs = w.comment(&w.bob, "bob's", None).await;
    w.comment(&w.carol, "carol answers", Some(&bobs.id)).await;
    w.comment(&w.ann, "ann's", None).await;
    // WHEN bob is banned
    deliver_twice(&w, w.suspended(&w.bob, None, 1)).await;
    // THEN others no longer see his comment (the reply under it stays) nor may like it
    assert_eq!(texts(&w.listed(&w.carol).await), ["carol answers", "ann's"]);
    assert_eq!(texts(&w.listed(&w.ann).await), ["carol answers", "ann's"]);
    let err = w.app.like(&w.carol.caller(), &bobs.id, "c").await;
    assert_eq!(err.unwrap_err().status(), 404);
    // AND bob and staff still see it
    assert_eq!(
        texts(&w.listed(&w.bob).await),
        ["bob's", "carol answers", "ann's"]
    );
    assert_eq!(texts(&w.listed(&w.staff).await).len(), 3);
    // AND his writes are refused as banned: 403 without `until`
    let err = w
        .app
        .create(&w.bob.caller(), new_comment(&w, "x"), "c")
        .await
        .unwrap_err();
    assert_eq!((err.status(), err.problem().until), (403, None));
    // WHEN the ban is lifted THEN all comes back
    deliver_twice(&w, w.reinstated(&w.bob, 2)).await;
    assert_eq!(
        texts(&w.listed(&w.carol).await),
        ["bob's", "carol answers", "ann's"]
    );
    w.app.like(&w.carol.caller(), &bobs.id, "c").await.unwrap();
}

#[tokio::test]
async fn a_removed_comment_is_shown_to_its_author_with_the_note_and_to_nobody_else() {
    // GIVEN bob's comment with carol's reply, liked by ann
    let w = world();
    let bobs = w.comment(&w.bob, "bob's", None).await;
    w.comment(&w.carol, "carol answers", Some(&bobs.id)).await;
    w.app.like(&w.ann.caller(), &bobs.id, "c").await.unwrap();
    let events = w.event_types();
    // WHEN staff remove it (delivered twice), then again with another note
    deliver_twice(&w, w.comment_removed(&bobs, "spam")).await;
    apply(&w.app, w.comment_removed(&bobs, "second thoughts"))
        .await
        .unwrap();
    // THEN others see the reply only, and may not like it
    assert_eq!(texts(&w.listed(&w.carol).await), ["carol answers"]);
    assert_eq!(texts(&w.listed(&w.ann).await), ["carol answers"]);
    let err = w.app.like(&w.carol.caller(), &bobs.id, "c").await;
    assert_eq!(err.unwrap_err().status(), 404);
    // AND bob sees it with the first note; staff see it too
    let mine = w.listed(&w.bob).await;
    assert_eq!(texts(&mine), ["bob's", "carol answers"]);
    let removal = mine[0].removed.clone().unwrap();
    assert_eq!(removal.note, "spam");
    assert!(mine[1].removed.is_none());
    assert_eq!(w.listed(&w.staff).await.len(), 2);
    // AND it emits nothing: the post's comment count (CommentAdded minus CommentDeleted)
    // still counts it, its likes stay
    assert_eq!(w.event_types(), events);
    assert_eq!(mine[0].like_count, 1);
    // WHEN bob edits it THEN 409 comment_removed; he may delete it, which un-counts it
    let err = w
        .app
        .edit(&w.bob.caller(), &bobs.id, text("innocent"), "c")
        .await
        .unwrap_err();
    assert_eq!(
        (err.status(), err.problem().code.as_str()),
        (409, "comment_removed")
    );
    assert_eq!(
        w.app.delete(&w.bob.caller(), &bobs.id, "c").await.unwrap(),
        2
    );
    assert_eq!(
        w.event_types()[events.len()..],
        [EventType::CommentDeleted, EventType::CommentDeleted]
    );
    // AND a removal of a comment gone since changes nothing
    apply(&w.app, w.comment_removed(&bobs, "late"))
        .await
        .unwrap();
    assert_eq!(w.app.store.comment_count(), 0);
}

#[tokio::test]
async fn a_removal_naming_no_comment_id_is_poison_and_a_posts_removal_hides_its_comments() {
    let w = world();
    let bobs = w.comment(&w.bob, "bob's", None).await;
    let mut bad = w.comment_removed(&bobs, "x");
    if let shutter_events::Event::ContentRemoved(r) = &mut bad.event {
        r.target_id = "not an id".into();
    }
    let err = apply(&w.app, bad).await.unwrap_err();
    assert!(
        matches!(err, shutter_events::ConsumeError::Poison(_)),
        "{err}"
    );
    // A post's removal tombstones it in the directory: its comments are not listed.
    let mut post = w.comment_removed(&bobs, "the post");
    if let shutter_events::Event::ContentRemoved(r) = &mut post.event {
        r.kind = shutter_events::RemovedKind::Post;
        r.target_id = w.post.to_string();
    }
    apply(&w.app, post).await.unwrap();
    let page = PageRequest::parse(None, None).unwrap();
    let err = w.app.list(&w.carol.caller(), &w.post, &page).await;
    assert_eq!(err.unwrap_err().status(), 404);
    assert!(w.app.store.comments()[0].removed.is_none());
}
