//! The world the unit tests share: ann has published a post; bob, carol and a moderator
//! exist; an App over the memory fakes.

#![allow(clippy::unwrap_used)]

use shutter_core::{CommentId, CursorSigner, PostId, UserId};
use shutter_directory::{Author, MemoryDirectory, PostRef};
use shutter_events::work::{MemoryWorkQueue, WithWork};
use shutter_events::{Envelope, Event, EventType};
use shutter_http::Caller;
use shutter_store::CursorKey;

use crate::App;
use crate::model::{CommentText, CommentView};
use crate::queue::MemoryWriteQueue;
use crate::service::NewComment;
use crate::store::memory::MemoryCommentsStore;

pub(crate) type TestApp = App<MemoryCommentsStore, MemoryDirectory, MemoryWriteQueue, CursorKey>;

/// A user of the tests.
#[derive(Clone)]
pub(crate) struct Who {
    pub id: UserId,
    pub name: &'static str,
    pub scope: &'static str,
}

impl Who {
    /// The caller as the access token would say.
    pub fn caller(&self) -> Caller {
        Caller {
            user_id: self.id.clone(),
            username: self.name.to_owned(),
            scopes: self.scope.split(' ').map(str::to_owned).collect(),
        }
    }
}

pub(crate) struct World {
    /// The App, with a work queue in memory (two items a chunk) for the consumer and the
    /// worker.
    pub app: WithWork<TestApp, MemoryWorkQueue>,
    pub ann: Who,
    pub bob: Who,
    pub carol: Who,
    pub staff: Who,
    pub post: PostId,
}

fn who(name: &'static str, scope: &'static str) -> Who {
    Who {
        id: UserId::generate(),
        name,
        scope,
    }
}

pub(crate) fn world() -> World {
    let dir = MemoryDirectory::default();
    let (ann, bob, carol, staff) = (
        who("ann", "user"),
        who("bob", "user"),
        who("carol", "user"),
        who("mod", "user moderator"),
    );
    for w in [&ann, &bob, &carol, &staff] {
        dir.add_author(Author {
            user_id: w.id.clone(),
            username: w.name.to_owned(),
            display_name: w.name.to_owned(),
            private: false,
            avatar_key: None,
            version: 0,
            private_since: None,
        });
    }
    let post = PostId::generate();
    dir.add_post(PostRef {
        post_id: post.clone(),
        author_id: ann.id.clone(),
    });
    World {
        app: WithWork {
            app: App {
                store: MemoryCommentsStore::default(),
                directory: dir,
                queue: MemoryWriteQueue::default(),
                cursors: CursorKey::ready(CursorSigner::new(b"test key".to_vec())),
            },
            work: MemoryWorkQueue::default(),
            page: 2,
        },
        ann,
        bob,
        carol,
        staff,
        post,
    }
}

pub(crate) fn text(raw: &str) -> CommentText {
    CommentText::try_from(raw.to_owned()).unwrap()
}

impl World {
    /// Runs the work handed on until none is left, as `comments-cascade-worker` would.
    pub async fn work(&self) {
        let failed = self
            .app
            .work
            .drain(10_000, |job| crate::worker::chunk(&self.app, job))
            .await;
        assert!(failed.is_empty(), "{failed:?}");
    }

    /// Accepts a comment on the post and stores what was queued, as `comments-writer`
    /// would; the accepted view.
    pub async fn comment(&self, by: &Who, raw: &str, reply_to: Option<&CommentId>) -> CommentView {
        // Ids order by millisecond (within one, at random), so comments are a tick apart.
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        let new = NewComment {
            post_id: self.post.clone(),
            text: text(raw),
            reply_to: reply_to.cloned(),
        };
        let accepted = self.app.create(&by.caller(), new, "corr").await.unwrap();
        self.write_queued().await;
        accepted
    }

    /// Runs the writer's use case on everything queued.
    pub async fn write_queued(&self) {
        for write in self.app.queue.take() {
            self.app.write_comment(&write).await.unwrap();
        }
    }

    /// Every comment of the post as `by` sees it.
    pub async fn listed(&self, by: &Who) -> Vec<CommentView> {
        let page = shutter_core::PageRequest::parse(Some("100"), None).unwrap();
        self.app
            .list(&by.caller(), &self.post, &page)
            .await
            .unwrap()
            .items
    }

    pub fn event_types(&self) -> Vec<EventType> {
        self.app
            .store
            .events()
            .iter()
            .map(Envelope::event_type)
            .collect()
    }

    /// The events of the store, of the type `keep` picks.
    pub fn events<T>(&self, keep: impl Fn(&Event) -> Option<T>) -> Vec<T> {
        self.app
            .store
            .events()
            .iter()
            .filter_map(|e| keep(&e.event))
            .collect()
    }

    /// Makes ann's account private.
    pub async fn ann_goes_private(&self) {
        let event = Envelope::new(
            Event::ProfileUpdated(shutter_events::ProfileFacts {
                user_id: self.ann.id.clone(),
                username: "ann".into(),
                display_name: "ann".into(),
                private: true,
                avatar_key: None,
                version: 0,
                private_since: None,
            }),
            Some(&self.ann.id),
            "c",
        );
        shutter_directory::Directory::apply(&self.app.directory, &event)
            .await
            .unwrap();
    }

    /// The post is deleted (as `PostDeleted` tells the directory).
    pub fn post_deleted(&self) -> Envelope {
        Envelope::new(
            Event::PostDeleted(shutter_events::PostDeleted {
                post_id: self.post.clone(),
                author_id: self.ann.id.clone(),
                deleted_by: self.ann.id.clone(),
            }),
            Some(&self.ann.id),
            "c",
        )
    }

    /// `who` is suspended until `until` (RFC 3339), or banned (`None`), with `seq`: the
    /// event as the moderation service emits it.
    pub fn suspended(&self, who: &Who, until: Option<&str>, seq: u64) -> Envelope {
        Envelope::new(
            Event::UserSuspended(shutter_events::UserSuspended {
                user_id: who.id.clone(),
                username: who.name.to_owned(),
                banned: until.is_none(),
                until: until.map(str::to_owned),
                seq,
            }),
            Some(&self.staff.id),
            "mod",
        )
    }

    /// `who`'s suspension or ban is lifted, with `seq`.
    pub fn reinstated(&self, who: &Who, seq: u64) -> Envelope {
        Envelope::new(
            Event::UserReinstated(shutter_events::UserReinstated {
                user_id: who.id.clone(),
                username: who.name.to_owned(),
                seq,
            }),
            Some(&self.staff.id),
            "mod",
        )
    }

    /// Staff removed comment `c` with `note`.
    pub fn comment_removed(&self, c: &CommentView, note: &str) -> Envelope {
        Envelope::new(
            Event::ContentRemoved(shutter_events::ContentRemoved {
                kind: shutter_events::RemovedKind::Comment,
                target_id: c.id.to_string(),
                post_id: c.post_id.clone(),
                author_id: c.author.id.clone(),
                note: note.to_owned(),
                removed_by: self.staff.id.clone(),
                removed_at: shutter_core::now_rfc3339(),
            }),
            Some(&self.staff.id),
            "mod",
        )
    }
}
