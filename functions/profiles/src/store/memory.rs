//! An in-memory store with the DynamoDB adapter's conditions and conflict labels, for unit
//! tests: use cases and consumers decide on it exactly as on the real table.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use async_trait::async_trait;
use shutter_core::validate::Username;
use shutter_core::{EventId, UserId};
use shutter_events::Envelope;
use shutter_store::{StoreError, StoreResult};

use super::{
    CountersStore, HANDLE_MOVED, MARKER_MOVED, PROCESSED, PROFILE_EXISTS, ProfilesStore, STALE,
    STANDING_NEWER, Standing, USERNAME_HELD,
};
use crate::model::{Counted, Counter, Delta, Marker, Profile};

/// Both ports in memory.
#[derive(Debug, Default)]
pub struct MemoryProfilesStore {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    profiles: HashMap<UserId, Profile>,
    /// The counters items; `None` once the profile is erased (the tombstone).
    counts: HashMap<UserId, Option<HashMap<Counter, i64>>>,
    handles: HashMap<String, UserId>,
    processed: HashSet<(String, EventId)>,
    markers: HashMap<Counted, Marker>,
    /// user -> (standing, seq)
    standings: HashMap<UserId, (Standing, u64)>,
    events: Vec<Envelope>,
}

impl State {
    fn count(&self, user_id: &UserId, counter: Counter) -> i64 {
        self.counts
            .get(user_id)
            .and_then(|c| c.as_ref())
            .and_then(|c| c.get(&counter))
            .copied()
            .unwrap_or(0)
    }

    fn gone(&self, user_id: &UserId) -> bool {
        matches!(self.counts.get(user_id), Some(None))
    }
}

fn poisoned<T>(_: T) -> StoreError {
    StoreError::Unavailable("poisoned lock".into())
}

impl MemoryProfilesStore {
    fn state(&self) -> StoreResult<std::sync::MutexGuard<'_, State>> {
        self.state.lock().map_err(poisoned)
    }

    /// Every event saved so far, in order.
    pub fn events(&self) -> Vec<Envelope> {
        self.state
            .lock()
            .map(|s| s.events.clone())
            .unwrap_or_default()
    }

    pub fn profile_count(&self) -> usize {
        self.state.lock().map(|s| s.profiles.len()).unwrap_or(0)
    }

    /// The raw value of a user's counter (it may go below zero only if a rule is broken).
    pub fn count_of(&self, user_id: &UserId, counter: Counter) -> i64 {
        self.state
            .lock()
            .map(|s| s.count(user_id, counter))
            .unwrap_or(0)
    }
}

#[async_trait]
impl ProfilesStore for MemoryProfilesStore {
    async fn by_id(&self, user_id: &UserId) -> StoreResult<Option<Profile>> {
        let st = self.state()?;
        let clamp = |c| u64::try_from(st.count(user_id, c)).unwrap_or(0);
        Ok(st.profiles.get(user_id).map(|p| Profile {
            follower_count: clamp(Counter::Followers),
            following_count: clamp(Counter::Following),
            post_count: clamp(Counter::Posts),
            ..p.clone()
        }))
    }

    async fn by_username(&self, username: &Username) -> StoreResult<Option<Profile>> {
        let user_id = self.state()?.handles.get(username.as_str()).cloned();
        match user_id {
            Some(user_id) => self.by_id(&user_id).await,
            None => Ok(None),
        }
    }

    async fn blocked_between(&self, a: &UserId, b: &UserId) -> StoreResult<bool> {
        let st = self.state()?;
        let blocks = |blocker: &UserId, blocked: &UserId| {
            st.markers
                .get(&Counted::Block {
                    blocker: blocker.clone(),
                    blocked: blocked.clone(),
                })
                .is_some_and(|m| m.counted)
        };
        Ok(blocks(a, b) || blocks(b, a))
    }

    async fn standing(&self, user_id: &UserId) -> StoreResult<Standing> {
        Ok(self
            .state()?
            .standings
            .get(user_id)
            .map(|(s, _)| s.clone())
            .unwrap_or_default())
    }

    async fn set_standing(
        &self,
        user_id: &UserId,
        banned: bool,
        until: Option<&str>,
        seq: u64,
    ) -> StoreResult<()> {
        let mut st = self.state()?;
        if st.standings.get(user_id).is_some_and(|(_, s)| *s >= seq) {
            return Err(StoreError::Conflict(STANDING_NEWER));
        }
        let standing = Standing {
            deleted: false,
            banned,
            suspended_until: until.map(str::to_owned),
        };
        st.standings.insert(user_id.clone(), (standing, seq));
        Ok(())
    }

    async fn save(
        &self,
        previous: &Profile,
        updated: &Profile,
        event: &Envelope,
    ) -> StoreResult<()> {
        let mut st = self.state()?;
        match st.profiles.get(&previous.user_id) {
            Some(current) if current.updated_at == previous.updated_at => {}
            _ => return Err(StoreError::Conflict(STALE)),
        }
        st.profiles.insert(updated.user_id.clone(), updated.clone());
        st.events.push(event.clone());
        Ok(())
    }

    async fn create(
        &self,
        consumer: &str,
        event_id: &EventId,
        profile: &Profile,
    ) -> StoreResult<()> {
        let mut st = self.state()?;
        let marker = (consumer.to_owned(), event_id.clone());
        if st.processed.contains(&marker) {
            return Err(StoreError::Conflict(PROCESSED));
        }
        if st.profiles.contains_key(&profile.user_id) {
            return Err(StoreError::Conflict(PROFILE_EXISTS));
        }
        if st.handles.contains_key(profile.username.as_str()) {
            return Err(StoreError::Conflict(USERNAME_HELD));
        }
        st.processed.insert(marker);
        st.handles
            .insert(profile.username.to_string(), profile.user_id.clone());
        st.profiles.insert(profile.user_id.clone(), profile.clone());
        Ok(())
    }

    async fn erase(
        &self,
        consumer: &str,
        event_id: &EventId,
        user_id: &UserId,
    ) -> StoreResult<Option<Profile>> {
        let existing = self.by_id(user_id).await?;
        let mut st = self.state()?;
        let marker = (consumer.to_owned(), event_id.clone());
        if st.processed.contains(&marker) {
            return Err(StoreError::Conflict(PROCESSED));
        }
        if let Some(p) = &existing
            && st
                .handles
                .get(p.username.as_str())
                .is_some_and(|holder| holder != user_id)
        {
            return Err(StoreError::Conflict(HANDLE_MOVED));
        }
        st.processed.insert(marker);
        if let Some(p) = &existing {
            st.profiles.remove(user_id);
            st.standings.remove(user_id);
            st.counts.insert(user_id.clone(), None);
            st.handles.remove(p.username.as_str());
        }
        Ok(existing)
    }
}

#[async_trait]
impl CountersStore for MemoryProfilesStore {
    async fn marker(&self, counted: &Counted) -> StoreResult<Option<Marker>> {
        Ok(self.state()?.markers.get(counted).copied())
    }

    async fn count(
        &self,
        counted: &Counted,
        previous: Option<&Marker>,
        next: &Marker,
        deltas: &[Delta],
    ) -> StoreResult<()> {
        let mut st = self.state()?;
        if st.markers.get(counted) != previous {
            return Err(StoreError::Conflict(MARKER_MOVED));
        }
        st.markers.insert(counted.clone(), *next);
        for delta in deltas {
            if st.gone(&delta.user_id) {
                continue;
            }
            if let Some(counts) = st
                .counts
                .entry(delta.user_id.clone())
                .or_insert_with(|| Some(HashMap::new()))
            {
                *counts.entry(delta.counter).or_default() += delta.by;
            }
        }
        Ok(())
    }
}
