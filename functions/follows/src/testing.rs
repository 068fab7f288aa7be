//! What the unit tests share: an App on the memory fakes, with users by name.

#![allow(clippy::unwrap_used)]

use std::collections::HashMap;

use shutter_core::validate::Username;
use shutter_core::{CursorSigner, UserId};
use shutter_directory::{Author, MemoryDirectory};
use shutter_events::EventType;
use shutter_events::work::{MemoryWorkQueue, WithWork};
use shutter_http::Caller;

use crate::App;
use crate::store::memory::MemoryFollowsStore;

pub type TestApp = App<MemoryFollowsStore, MemoryDirectory>;

/// An App on the memory fakes, with a work queue in memory (two items a chunk), and the
/// users it knows, by name.
pub struct World {
    pub app: WithWork<TestApp, MemoryWorkQueue>,
    pub ids: HashMap<&'static str, UserId>,
}

/// GIVEN these users (name, private account) in the directory, and nothing between them.
pub fn world(users: &[(&'static str, bool)]) -> World {
    let directory = MemoryDirectory::default();
    let mut ids = HashMap::new();
    for (name, private) in users {
        let id = UserId::generate();
        directory.add_author(Author {
            user_id: id.clone(),
            username: (*name).to_owned(),
            display_name: name.to_uppercase(),
            private: *private,
            avatar_key: None,
            version: 0,
            private_since: None,
        });
        ids.insert(*name, id);
    }
    World {
        app: WithWork {
            app: App {
                store: MemoryFollowsStore::default(),
                directory,
                cursors: shutter_store::CursorKey::ready(CursorSigner::new(b"test key".to_vec())),
            },
            work: MemoryWorkQueue::default(),
            page: 2,
        },
        ids,
    }
}

pub fn username(name: &str) -> Username {
    Username::try_from(name.to_owned()).unwrap()
}

impl World {
    pub fn id(&self, name: &str) -> UserId {
        self.ids[name].clone()
    }

    /// `name` as a verified caller with the `user` scope.
    pub fn caller(&self, name: &str) -> Caller {
        Caller {
            user_id: self.id(name),
            username: name.to_owned(),
            scopes: vec!["user".to_owned()],
        }
    }

    /// `name` as a moderator.
    pub fn staff(&self, name: &str) -> Caller {
        Caller {
            scopes: vec!["user".to_owned(), "moderator".to_owned()],
            ..self.caller(name)
        }
    }

    /// Runs the work handed on until none is left, as `follows-cascade-worker` would.
    pub async fn work(&self) {
        let failed = self
            .app
            .work
            .drain(10_000, |job| crate::worker::chunk(&self.app, job))
            .await;
        assert!(failed.is_empty(), "{failed:?}");
    }

    /// The types of the events committed so far, in order.
    pub fn events(&self) -> Vec<EventType> {
        self.app
            .store
            .events()
            .iter()
            .map(|e| e.event_type())
            .collect()
    }
}
