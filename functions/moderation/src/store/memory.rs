//! The in-memory fake: the same conditions and labels as [`super::dynamo`].

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Mutex;

use async_trait::async_trait;
use shutter_core::{PostId, UserId};
use shutter_events::Envelope;
use shutter_store::{StoreError, StoreResult};

use super::{
    DUPLICATE_REPORT, ModerationStore, QueueChange, STALE_QUEUE, STALE_ROLES, STALE_STANDING,
    StandingChange, modlog_position, queue_position, resolved_position,
};
use crate::model::{
    CommentRef, ModlogEntry, ModlogFilter, PostPreview, QueueEntry, Report, ReportStatus,
    StaffAccount, Target,
};

#[derive(Debug, Default)]
struct State {
    accounts: HashMap<String, StaffAccount>,
    reports: HashMap<(String, UserId), Report>,
    open: HashMap<String, String>,
    queue: BTreeMap<(ReportStatusKey, String), QueueEntry>,
    modlog: Vec<ModlogEntry>,
    comments: HashMap<String, CommentRef>,
    deleted_comments: HashSet<String>,
    posts: HashMap<PostId, Option<PostPreview>>,
    /// Events written with the changes (the outbox), oldest first.
    events: Vec<Envelope>,
}

impl State {
    fn apply_standing(&mut self, change: &StandingChange) -> StoreResult<()> {
        let key = change.account.username.to_lowercase();
        match self.accounts.get_mut(&key) {
            Some(stored) if stored.standing_seq == change.account.standing_seq => {
                stored.suspension.clone_from(&change.suspension);
                stored.standing_seq += 1;
            }
            _ => return Err(StoreError::Conflict(STALE_STANDING)),
        }
        self.events.push(change.event.clone());
        Ok(())
    }
}

type ReportStatusKey = &'static str;

#[derive(Debug, Default)]
pub struct MemoryModerationStore {
    state: Mutex<State>,
}

fn poisoned<T>(_: T) -> StoreError {
    StoreError::corrupt_because("memory store lock poisoned")
}

impl MemoryModerationStore {
    /// An account as identity would have stored it.
    pub fn add_account(&self, account: StaffAccount) {
        if let Ok(mut s) = self.state.lock() {
            s.accounts.insert(account.username.to_lowercase(), account);
        }
    }

    pub fn roles_of(&self, username: &str) -> Vec<String> {
        self.state
            .lock()
            .ok()
            .and_then(|s| s.accounts.get(username).map(|a| a.roles.clone()))
            .unwrap_or_default()
    }

    /// The whole modlog, oldest first.
    pub fn modlog_entries(&self) -> Vec<ModlogEntry> {
        self.state
            .lock()
            .map(|s| s.modlog.clone())
            .unwrap_or_default()
    }

    /// The events written so far, oldest first.
    pub fn events(&self) -> Vec<Envelope> {
        self.state
            .lock()
            .map(|s| s.events.clone())
            .unwrap_or_default()
    }

    pub fn report_count(&self) -> usize {
        self.state.lock().map(|s| s.reports.len()).unwrap_or(0)
    }
}

#[async_trait]
impl ModerationStore for MemoryModerationStore {
    async fn account_by_username(&self, username: &str) -> StoreResult<Option<StaffAccount>> {
        let s = self.state.lock().map_err(poisoned)?;
        Ok(s.accounts.get(&username.to_lowercase()).cloned())
    }

    async fn account(&self, user_id: &UserId) -> StoreResult<Option<StaffAccount>> {
        let s = self.state.lock().map_err(poisoned)?;
        Ok(s.accounts.values().find(|a| a.user_id == *user_id).cloned())
    }

    async fn resolve(
        &self,
        open: &QueueEntry,
        resolved: &QueueEntry,
        entry: &ModlogEntry,
        standing: Option<&StandingChange>,
        events: &[Envelope],
    ) -> StoreResult<()> {
        let mut s = self.state.lock().map_err(poisoned)?;
        let pos = queue_position(open);
        let target = open.target.key();
        if s.open.get(&target) != Some(&pos) || s.queue.get(&("open", pos.clone())) != Some(open) {
            return Err(StoreError::Conflict(STALE_QUEUE));
        }
        // All or nothing: the standing is checked before anything changes.
        if let Some(change) = standing {
            s.apply_standing(change)?;
        }
        s.open.remove(&target);
        s.queue.remove(&("open", pos));
        s.queue
            .insert(("resolved", resolved_position(resolved)), resolved.clone());
        s.modlog.push(entry.clone());
        s.events.extend(events.iter().cloned());
        Ok(())
    }

    async fn set_standing(
        &self,
        standing: &StandingChange,
        entry: &ModlogEntry,
    ) -> StoreResult<()> {
        let mut s = self.state.lock().map_err(poisoned)?;
        s.apply_standing(standing)?;
        s.modlog.push(entry.clone());
        Ok(())
    }

    async fn set_roles(
        &self,
        account: &StaffAccount,
        roles: &[String],
        entry: &ModlogEntry,
    ) -> StoreResult<()> {
        let mut s = self.state.lock().map_err(poisoned)?;
        let key = account.username.to_lowercase();
        match s.accounts.get_mut(&key) {
            Some(stored) if stored.roles == account.roles => stored.roles = roles.to_vec(),
            _ => return Err(StoreError::Conflict(STALE_ROLES)),
        }
        s.modlog.push(entry.clone());
        Ok(())
    }

    async fn report(&self, target: &Target, reporter: &UserId) -> StoreResult<Option<Report>> {
        let s = self.state.lock().map_err(poisoned)?;
        Ok(s.reports.get(&(target.key(), reporter.clone())).cloned())
    }

    async fn reported(&self, target: &Target) -> StoreResult<bool> {
        let s = self.state.lock().map_err(poisoned)?;
        Ok(s.reports.keys().any(|(t, _)| *t == target.key()))
    }

    async fn open_entry(&self, target: &Target) -> StoreResult<Option<QueueEntry>> {
        let s = self.state.lock().map_err(poisoned)?;
        Ok(s.open
            .get(&target.key())
            .and_then(|pos| s.queue.get(&("open", pos.clone())))
            .cloned())
    }

    async fn file(&self, report: &Report, queue: &QueueChange) -> StoreResult<()> {
        let mut s = self.state.lock().map_err(poisoned)?;
        let report_key = (report.target.key(), report.reporter_id.clone());
        if s.reports.contains_key(&report_key) {
            return Err(StoreError::Conflict(DUPLICATE_REPORT));
        }
        let target = report.target.key();
        match queue {
            QueueChange::Open(entry) => {
                if s.open.contains_key(&target) {
                    return Err(StoreError::Conflict(STALE_QUEUE));
                }
                let pos = queue_position(entry);
                s.open.insert(target, pos.clone());
                s.queue.insert(("open", pos), entry.clone());
            }
            QueueChange::Bump { from, to } => {
                let pos = queue_position(from);
                if s.open.get(&target) != Some(&pos)
                    || s.queue.get(&("open", pos.clone())) != Some(from)
                {
                    return Err(StoreError::Conflict(STALE_QUEUE));
                }
                s.queue.insert(("open", pos), to.clone());
            }
        }
        s.reports.insert(report_key, report.clone());
        Ok(())
    }

    async fn queue(
        &self,
        status: ReportStatus,
        after: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<(String, QueueEntry)>> {
        let s = self.state.lock().map_err(poisoned)?;
        let newest_first = status == ReportStatus::Resolved;
        let mut entries: Vec<(String, QueueEntry)> = s
            .queue
            .iter()
            .filter(|((st, pos), _)| {
                *st == status.as_str()
                    && after.is_none_or(|a| {
                        if newest_first {
                            pos.as_str() < a
                        } else {
                            pos.as_str() > a
                        }
                    })
            })
            .map(|((_, pos), e)| (pos.clone(), e.clone()))
            .collect();
        if newest_first {
            entries.reverse();
        }
        entries.truncate(limit);
        Ok(entries)
    }

    async fn modlog(
        &self,
        filter: &ModlogFilter,
        after: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<(String, ModlogEntry)>> {
        let s = self.state.lock().map_err(poisoned)?;
        let mut entries: Vec<(String, ModlogEntry)> = s
            .modlog
            .iter()
            .filter(|e| match filter {
                ModlogFilter::All => true,
                ModlogFilter::ByModerator(m) => e.moderator_id == *m,
                ModlogFilter::OnTarget(t) => e.target == *t,
            })
            .map(|e| (modlog_position(e), e.clone()))
            .filter(|(pos, _)| after.is_none_or(|a| pos.as_str() < a))
            .collect();
        entries.sort_by(|a, b| b.0.cmp(&a.0));
        entries.truncate(limit);
        Ok(entries)
    }

    async fn comment(&self, comment_id: &str) -> StoreResult<Option<CommentRef>> {
        let s = self.state.lock().map_err(poisoned)?;
        Ok(s.comments.get(comment_id).cloned())
    }

    async fn edit_comment(&self, comment_id: &str, text: &str) -> StoreResult<()> {
        let mut s = self.state.lock().map_err(poisoned)?;
        if let Some(c) = s.comments.get_mut(comment_id) {
            text.clone_into(&mut c.text);
        }
        Ok(())
    }

    async fn post_preview(&self, post_id: &PostId) -> StoreResult<Option<PostPreview>> {
        let s = self.state.lock().map_err(poisoned)?;
        Ok(s.posts.get(post_id).cloned().flatten())
    }

    async fn put_post_preview(&self, preview: &PostPreview) -> StoreResult<()> {
        let mut s = self.state.lock().map_err(poisoned)?;
        match s.posts.get(&preview.post_id) {
            Some(None) => {}
            Some(Some(kept)) if kept.version >= preview.version => {}
            _ => {
                s.posts
                    .insert(preview.post_id.clone(), Some(preview.clone()));
            }
        }
        Ok(())
    }

    async fn forget_post(&self, post_id: &PostId) -> StoreResult<()> {
        let mut s = self.state.lock().map_err(poisoned)?;
        s.posts.insert(post_id.clone(), None);
        Ok(())
    }

    async fn put_comment(&self, comment: &CommentRef) -> StoreResult<()> {
        let mut s = self.state.lock().map_err(poisoned)?;
        if !s.deleted_comments.contains(&comment.comment_id) {
            s.comments
                .insert(comment.comment_id.clone(), comment.clone());
        }
        Ok(())
    }

    async fn delete_comment(&self, comment_id: &str) -> StoreResult<()> {
        let mut s = self.state.lock().map_err(poisoned)?;
        s.comments.remove(comment_id);
        s.deleted_comments.insert(comment_id.to_owned());
        Ok(())
    }
}
