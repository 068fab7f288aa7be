//! Test set-up shared by the unit tests: an App over the memory fakes with a published post.

#![allow(clippy::unwrap_used)]

use shutter_core::{CursorSigner, PostId, UserId};
use shutter_directory::{Author, MemoryDirectory, PostRef};
use shutter_events::Event;
use shutter_events::work::{MemoryWorkQueue, WithWork};
use shutter_http::Caller;

use crate::App;
use crate::store::memory::MemoryLikesStore;

pub(crate) type TestApp = App<MemoryLikesStore, MemoryDirectory>;

pub(crate) struct World {
    pub app: TestApp,
    pub author: UserId,
    pub post: PostId,
}

pub(crate) fn signer() -> CursorSigner {
    CursorSigner::new(b"test key".to_vec())
}

pub(crate) fn app() -> TestApp {
    App {
        store: MemoryLikesStore::default(),
        directory: MemoryDirectory::default(),
        cursors: Some(shutter_store::CursorKey::ready(signer())),
    }
}

/// What the consumer and the worker hold: the App, and a work queue in memory (two items
/// a chunk, so a few likes take several).
pub(crate) type Deps = WithWork<TestApp, MemoryWorkQueue>;

pub(crate) fn deps() -> Deps {
    WithWork {
        app: app(),
        work: MemoryWorkQueue::default(),
        page: 2,
    }
}

/// Runs the work handed on until none is left, as `likes-cascade-worker` would.
pub(crate) async fn work(deps: &Deps) {
    let failed = deps
        .work
        .drain(10_000, |job| crate::worker::chunk(deps, job))
        .await;
    assert!(failed.is_empty(), "{failed:?}");
}

pub(crate) fn author(id: &UserId, name: &str, private: bool) -> Author {
    Author {
        user_id: id.clone(),
        username: name.to_owned(),
        display_name: name.to_uppercase(),
        private,
        avatar_key: None,
        version: 0,
        private_since: None,
    }
}

/// GIVEN a published post by `ann` (private or not).
pub(crate) fn world(private: bool) -> World {
    let app = app();
    let author_id = UserId::generate();
    app.directory.add_author(author(&author_id, "ann", private));
    let post = PostId::generate();
    app.directory.add_post(PostRef {
        post_id: post.clone(),
        author_id: author_id.clone(),
    });
    World {
        app,
        author: author_id,
        post,
    }
}

/// A user with the `user` scope.
pub(crate) fn caller(user: &UserId) -> Caller {
    Caller {
        user_id: user.clone(),
        username: "someone".to_owned(),
        scopes: vec!["user".to_owned()],
    }
}

/// The like events committed so far, as (type, user, seq).
pub(crate) fn like_events(store: &MemoryLikesStore) -> Vec<(&'static str, UserId, u64)> {
    store
        .events()
        .into_iter()
        .map(|e| match e.event {
            Event::LikeAdded(f) => ("LikeAdded", f.user_id, f.seq),
            Event::LikeRemoved(f) => ("LikeRemoved", f.user_id, f.seq),
            other => panic!("not a like event: {other:?}"),
        })
        .collect()
}
