//! Test set-up shared by the unit tests: an App over the memory fakes, authors, posts and
//! requests as API Gateway hands them over.

#![allow(clippy::unwrap_used)]

use shutter_core::{CursorSigner, MediaId, PostId, UserId};
use shutter_directory::{Author, Directory, MemoryDirectory};
use shutter_events::work::{MemoryWorkQueue, WithWork};
use shutter_events::{EdgeFacts, Envelope, Event, EventType};
use shutter_http::lambda_http::{Body, Request, Response};
use shutter_http::test_support::api_request;
use shutter_media::{MediaType, MemoryMedia};

use crate::App;
use crate::model::{Media, MediaStatus, Post, PostStatus, rendition_key};
use crate::store::memory::MemoryPostsStore;

pub(crate) type TestApp = App<MemoryPostsStore, MemoryMedia, MemoryDirectory>;

pub(crate) fn app() -> TestApp {
    App {
        store: MemoryPostsStore::default(),
        media: MemoryMedia::default(),
        directory: MemoryDirectory::default(),
        cursors: Some(shutter_store::CursorKey::ready(CursorSigner::new(
            b"test key".to_vec(),
        ))),
    }
}

/// What the consumer and the worker hold: the App, and a work queue in memory (two items
/// a chunk, so a few posts take several).
pub(crate) type Deps = WithWork<TestApp, MemoryWorkQueue>;

pub(crate) fn deps() -> Deps {
    WithWork {
        app: app(),
        work: MemoryWorkQueue::default(),
        page: 2,
    }
}

/// Runs the work handed on until none is left, as `posts-cascade-worker` would.
pub(crate) async fn work(deps: &Deps) {
    let failed = deps
        .work
        .drain(10_000, |job| crate::worker::chunk(deps, job))
        .await;
    assert!(failed.is_empty(), "{failed:?}");
}

/// GIVEN a user the directory knows as `name`, with a public or private account.
pub(crate) fn user(app: &TestApp, name: &str, private: bool) -> UserId {
    let id = UserId::generate();
    app.directory.add_author(Author {
        user_id: id.clone(),
        username: name.to_owned(),
        display_name: name.to_uppercase(),
        private,
        avatar_key: None,
        version: 0,
        private_since: None,
    });
    id
}

/// GIVEN `follower` follows `followee`.
pub(crate) async fn follows(app: &TestApp, follower: &UserId, followee: &UserId) {
    let started = Event::FollowStarted(EdgeFacts {
        follower_id: follower.clone(),
        followee_id: followee.clone(),
        seq: 1,
        at: "t".into(),
        reason: None,
    });
    app.directory
        .apply(&Envelope::new(started, Some(follower), "c"))
        .await
        .unwrap();
}

/// GIVEN a post of `author` in `status`, captioned `#beach`, with one image (ready once
/// published), stored and listed.
pub(crate) fn post(app: &TestApp, author: &UserId, status: PostStatus) -> Post {
    let id = PostId::generate();
    let mut media = Media::pending(MediaId::generate(), author, &id, MediaType::Jpeg, 100);
    if status == PostStatus::Published {
        media.status = MediaStatus::Ready;
        media.display_key = Some(rendition_key(&id, &media.id, "display", MediaType::Jpeg));
    }
    let post = Post {
        id,
        author_id: author.clone(),
        caption: "Sunset #beach".into(),
        location: None,
        hashtags: vec!["beach".into()],
        mentions: vec![],
        status,
        media: vec![media],
        like_count: 0,
        comment_count: 0,
        version: 2,
        created_at: shutter_core::now_rfc3339(),
        published_at: None,
        removed: None,
    };
    app.store.insert(post.clone());
    post
}

/// A request by `user` (scope `user`, or `user moderator` when `staff`).
pub(crate) fn request(
    method: &str,
    params: &[(&str, &str)],
    body: &str,
    user: &UserId,
    staff: bool,
) -> Request {
    let scope = if staff { "user moderator" } else { "user" };
    api_request(
        method,
        "/v1/posts",
        params,
        body,
        Some((user, "someone", scope)),
    )
}

pub(crate) fn body(resp: &Response<Body>) -> serde_json::Value {
    serde_json::from_slice(resp.body().as_ref()).unwrap()
}

/// The types of the events the store committed, in order.
pub(crate) fn event_types(app: &TestApp) -> Vec<EventType> {
    app.store
        .events()
        .iter()
        .map(Envelope::event_type)
        .collect()
}
