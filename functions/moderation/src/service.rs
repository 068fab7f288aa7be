//! Use cases: load, decide ([`crate::model`]), save ([`crate::store`]).

use serde::{Deserialize, Serialize};
use shutter_core::validate::Username;
use shutter_core::{ApiError, CommentId, CursorSigner, Page, PageRequest, PostId, UserId};
use shutter_directory::{Directory, Viewer, visible_post};
use shutter_http::Caller;
use shutter_store::StoreError;
use utoipa::ToSchema;

use crate::App;
use crate::errors;
use crate::model::{
    self, ModAction, ModlogEntry, ModlogFilter, Preview, QueueEntry, QueueItem, Reason, Report,
    ReportStatus, Resolution, Role, RoleChange, StaffAccount, Suspension, Target, TargetType,
    Verdict,
};
use crate::store::{self, ModerationStore, QueueChange, StandingChange};

/// How often a use case reads again and retries after losing a race.
const ATTEMPTS: usize = 3;

/// An account's staff roles after a change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct AccountRoles {
    #[schema(value_type = String)]
    pub user_id: UserId,
    pub username: String,
    /// Every role the account holds (`user` and any staff roles)
    pub roles: Vec<String>,
}

/// `POST /v1/reports`'s body.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewReport {
    pub target: Target,
    pub reason: Reason,
    /// Up to 1000 characters of context for the moderators
    #[serde(default)]
    pub note: Option<String>,
}

/// A role change's optional body: why.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleChangeReason {
    /// Up to 1000 characters, kept in the modlog
    #[serde(default)]
    pub reason: Option<String>,
}

/// `POST /v1/admin/reports/{id}/resolve`'s body.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResolveRequest {
    pub action: Verdict,
    /// For `suspend` (required there, refused elsewhere): 1 to 8760 hours
    #[serde(default)]
    pub duration_hours: Option<u32>,
    /// Why, 1 to 1000 characters: kept in the modlog and shown to a removed content's
    /// author
    pub note: String,
}

/// `POST /v1/admin/users/{username}/unsuspend`'s body.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UnsuspendRequest {
    /// Why, 1 to 1000 characters: kept in the modlog
    pub note: String,
}

/// An account as staff look it up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct UserStanding {
    #[schema(value_type = String)]
    pub user_id: UserId,
    pub username: String,
    pub roles: Vec<String>,
    /// The suspension or ban that holds now, if any
    pub suspension: Option<Suspension>,
    /// The newest staff actions on the user (up to 20)
    pub actions: Vec<ModlogEntry>,
}

/// How many of a user's actions their lookup shows.
const LOOKUP_ACTIONS: usize = 20;

/// A required free-text field: as [`note`], but absent or blank is a 400.
fn required_note(field: &str, raw: String) -> Result<String, ApiError> {
    note(field, Some(raw))?.ok_or_else(|| ApiError::invalid(field, "is required"))
}

/// When a suspension of `hours` from `now` ends (RFC 3339).
fn suspension_end(hours: u32) -> String {
    let end = time::OffsetDateTime::now_utc() + time::Duration::hours(i64::from(hours));
    shutter_core::rfc3339(end)
}

/// A list cursor's payload: the sort key read last.
#[derive(Debug, Serialize, Deserialize)]
struct Position {
    after: String,
}

fn require_admin(caller: &Caller) -> Result<(), ApiError> {
    if caller.has_scope("admin") {
        Ok(())
    } else {
        Err(ApiError::Forbidden)
    }
}

fn require_staff(caller: &Caller) -> Result<(), ApiError> {
    if caller.is_staff() {
        Ok(())
    } else {
        Err(ApiError::Forbidden)
    }
}

/// A free-text field: trimmed, empty as absent, at most [`model::MAX_NOTE_CHARS`].
fn note(field: &str, raw: Option<String>) -> Result<Option<String>, ApiError> {
    let Some(text) = raw.map(|t| t.trim().to_owned()).filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    if text.chars().count() > model::MAX_NOTE_CHARS {
        return Err(ApiError::invalid(
            field,
            format!("must be at most {} characters", model::MAX_NOTE_CHARS),
        ));
    }
    if text.chars().any(|c| c.is_control() && c != '\n') {
        return Err(ApiError::invalid(
            field,
            "must not contain control characters",
        ));
    }
    Ok(Some(text))
}

fn valid_username(raw: &str) -> Result<Username, ApiError> {
    Username::try_from(raw.to_owned())
        .map_err(|_| ApiError::invalid("username", "is not a valid username"))
}

/// The reported content is gone (deleted meanwhile): nothing to remove or act on.
fn gone() -> ApiError {
    ApiError::conflict(
        "target_gone",
        "id",
        "the reported content no longer exists; dismiss the report",
    )
}

/// Staff may not suspend themselves; only admins may suspend staff.
fn may_suspend(caller: &Caller, account: &StaffAccount) -> Result<(), ApiError> {
    if account.user_id == caller.user_id {
        return Err(ApiError::invalid("id", "you cannot suspend yourself"));
    }
    let staff = account
        .roles
        .iter()
        .any(|r| r == "moderator" || r == "admin");
    if staff && !caller.has_scope("admin") {
        return Err(ApiError::Forbidden);
    }
    Ok(())
}

/// The change that suspends (or bans) `account` with `suspension`, and its event.
fn suspended(caller: &Caller, account: StaffAccount, suspension: Suspension) -> StandingChange {
    let event = shutter_events::Envelope::new(
        shutter_events::Event::UserSuspended(shutter_events::UserSuspended {
            user_id: account.user_id.clone(),
            username: account.username.clone(),
            banned: suspension.banned,
            until: suspension.until.clone(),
            seq: account.standing_seq + 1,
        }),
        Some(&caller.user_id),
        &shutter_core::new_id(),
    );
    StandingChange {
        account,
        suspension: Some(suspension),
        event,
    }
}

impl<S: ModerationStore, D: Directory> App<S, D> {
    /// The cursor key, read on its first use (see [`shutter_store::CursorKey`]).
    async fn cursors(&self) -> Result<&CursorSigner, ApiError> {
        self.cursors
            .as_ref()
            .ok_or_else(|| {
                ApiError::internal(std::io::Error::other("this function has no cursor key"))
            })?
            .signer()
            .await
    }

    /// Grants (`grant`) or revokes `role` of `username`'s account, as the admin `caller`,
    /// and logs the change. Idempotent: a change the roles already reflect writes and logs
    /// nothing.
    pub async fn change_role(
        &self,
        caller: &Caller,
        username: &str,
        role: Role,
        grant: bool,
        reason: Option<String>,
    ) -> Result<AccountRoles, ApiError> {
        require_admin(caller)?;
        // A suspended or deleted staff account's still-valid token acts no more.
        shutter_directory::refuse_inactive(&self.directory, &caller.user_id).await?;
        let username = Username::try_from(username.to_owned())
            .map_err(|_| ApiError::invalid("username", "is not a valid username"))?;
        let reason = note("reason", reason)?;
        for _ in 0..ATTEMPTS {
            let account = self
                .store
                .account_by_username(username.as_str())
                .await
                .map_err(errors::api)?
                .ok_or(ApiError::NotFound("user"))?;
            let change = if grant {
                model::grant(&account.roles, role)
            } else {
                model::revoke(&caller.user_id, &account.user_id, &account.roles, role)?
            };
            let RoleChange::To(roles) = change else {
                return Ok(AccountRoles {
                    user_id: account.user_id,
                    username: account.username,
                    roles: account.roles,
                });
            };
            let (id, at) = shutter_core::new_id_and_time();
            let entry = ModlogEntry {
                id,
                at,
                moderator_id: caller.user_id.clone(),
                moderator_username: caller.username.clone(),
                action: if grant {
                    ModAction::GrantRole
                } else {
                    ModAction::RevokeRole
                },
                target: Target {
                    kind: TargetType::User,
                    id: account.user_id.to_string(),
                },
                role: Some(role),
                reason: reason.clone(),
                until: None,
                report: None,
            };
            match self.store.set_roles(&account, &roles, &entry).await {
                Ok(()) => {
                    tracing::info!(target_user = %account.user_id, role = role.as_str(), grant, "role changed");
                    return Ok(AccountRoles {
                        user_id: account.user_id,
                        username: account.username,
                        roles,
                    });
                }
                Err(StoreError::Conflict(store::STALE_ROLES)) => continue,
                Err(other) => return Err(errors::api(other)),
            }
        }
        Err(errors::api(StoreError::Conflict(store::STALE_ROLES)))
    }

    /// Whether `caller` can see `target`, and whose it is: a 404 for what does not exist
    /// or they may not see (so reporting reveals nothing), a 400 for a malformed id.
    async fn owner_of_visible(&self, caller: &Caller, target: &Target) -> Result<UserId, ApiError> {
        let viewer = Viewer {
            user_id: &caller.user_id,
            staff: caller.is_staff(),
        };
        let blocked = |author: &UserId| {
            let author = author.clone();
            async move {
                if viewer.staff || author == caller.user_id {
                    return Ok::<bool, ApiError>(false);
                }
                Ok(self
                    .directory
                    .access(&caller.user_id, &author)
                    .await
                    .map_err(errors::api)?
                    .blocked)
            }
        };
        match target.kind {
            TargetType::Post => {
                let id = PostId::parse("target.id", &target.id)?;
                let (_, author) = visible_post(&self.directory, &id, viewer)
                    .await
                    .map_err(errors::api)?
                    .ok_or(ApiError::NotFound("post"))?;
                Ok(author.user_id)
            }
            TargetType::Comment => {
                let id = CommentId::parse("target.id", &target.id)?;
                let comment = self
                    .store
                    .comment(&id)
                    .await
                    .map_err(errors::api)?
                    .ok_or(ApiError::NotFound("comment"))?;
                visible_post(&self.directory, &comment.post_id, viewer)
                    .await
                    .map_err(errors::api)?
                    .ok_or(ApiError::NotFound("comment"))?;
                if blocked(&comment.author_id).await? {
                    return Err(ApiError::NotFound("comment"));
                }
                Ok(comment.author_id)
            }
            TargetType::User => {
                let id = UserId::parse("target.id", &target.id)?;
                let author = self
                    .directory
                    .author(&id)
                    .await
                    .map_err(errors::api)?
                    .ok_or(ApiError::NotFound("user"))?;
                if blocked(&author.user_id).await? {
                    return Err(ApiError::NotFound("user"));
                }
                Ok(author.user_id)
            }
        }
    }

    /// Files `caller`'s report; `true` when it is new. A repeat of a report (same reporter,
    /// same target) is that report, unchanged.
    pub async fn file_report(
        &self,
        caller: &Caller,
        new: NewReport,
    ) -> Result<(Report, bool), ApiError> {
        let note = note("note", new.note)?;
        // A deleted or suspended account's still-valid token files nothing, as every other
        // write refuses it.
        shutter_directory::refuse_inactive(&self.directory, &caller.user_id).await?;
        // Canonical ids (upper-case ULIDs), so that one target has one key.
        let mut target = new.target;
        target.id = shutter_core::parse_id("target.id", &target.id)?.to_string();
        let owner = self.owner_of_visible(caller, &target).await?;
        if owner == caller.user_id {
            return Err(ApiError::invalid(
                "target",
                "is you or yours: you cannot report yourself",
            ));
        }
        for _ in 0..ATTEMPTS {
            if let Some(existing) = self
                .store
                .report(&target, &caller.user_id)
                .await
                .map_err(errors::api)?
            {
                return Ok((existing, false));
            }
            let (id, created_at) = shutter_core::new_id_and_time();
            let report = Report {
                id,
                target: target.clone(),
                reason: new.reason,
                note: note.clone(),
                reporter_id: caller.user_id.clone(),
                created_at,
            };
            let change = match self.store.open_entry(&target).await.map_err(errors::api)? {
                None => QueueChange::Open(QueueEntry::opened(&report)),
                Some(from) => QueueChange::Bump {
                    to: from.with(&report),
                    from,
                },
            };
            match self.store.file(&report, &change).await {
                Ok(()) => return Ok((report, true)),
                Err(StoreError::Conflict(store::DUPLICATE_REPORT | store::STALE_QUEUE)) => {
                    continue;
                }
                Err(other) => return Err(errors::api(other)),
            }
        }
        Err(errors::concurrent_update())
    }

    /// The report queue, one entry per target with its preview: open entries oldest
    /// first, resolved ones newest first.
    pub async fn reports(
        &self,
        caller: &Caller,
        status: ReportStatus,
        page: &PageRequest,
    ) -> Result<Page<QueueItem>, ApiError> {
        require_staff(caller)?;
        let scope = format!("reports:{}", status.as_str());
        let after = self.after(&scope, page).await?;
        let limit = usize::from(page.limit);
        let entries = self
            .store
            .queue(status, after.as_deref(), limit + 1)
            .await
            .map_err(errors::api)?;
        let Page { items, next_cursor } = self.paged(&scope, entries, limit).await?;
        // One preview per entry, at most a page's worth (the limit bounds the reads).
        let previews =
            futures::future::try_join_all(items.iter().map(|e| self.preview(&e.target))).await?;
        let items = items
            .into_iter()
            .zip(previews)
            .map(|(mut entry, preview)| {
                // Entries stored before ids were kept get theirs from the target.
                entry.id = entry.target.entry_id();
                QueueItem { entry, preview }
            })
            .collect();
        Ok(Page { items, next_cursor })
    }

    /// What staff see of a target; `None` if it is gone.
    async fn preview(&self, target: &Target) -> Result<Option<Preview>, ApiError> {
        let username = |user: UserId| async move {
            Ok::<String, ApiError>(
                self.directory
                    .author(&user)
                    .await
                    .map_err(errors::api)?
                    .map(|a| a.username)
                    .unwrap_or_default(),
            )
        };
        Ok(match target.kind {
            TargetType::Post => {
                let id = PostId::trusted(&target.id);
                let Some(post) = self.store.post_preview(&id).await.map_err(errors::api)? else {
                    return Ok(None);
                };
                Some(Preview::Post {
                    author_username: username(post.author_id).await?,
                    caption: post.caption,
                    thumbnail_url: self.signed(post.thumbnail_key.as_deref()).await?,
                })
            }
            TargetType::Comment => {
                let Some(comment) = self.store.comment(&target.id).await.map_err(errors::api)?
                else {
                    return Ok(None);
                };
                Some(Preview::Comment {
                    author_username: username(comment.author_id).await?,
                    text: comment.text,
                    post_id: comment.post_id.to_string(),
                })
            }
            TargetType::User => {
                let id = UserId::trusted(&target.id);
                let Some(author) = self.directory.author(&id).await.map_err(errors::api)? else {
                    return Ok(None);
                };
                Some(Preview::User {
                    avatar_url: self.signed(author.avatar_key.as_deref()).await?,
                    username: author.username,
                    display_name: author.display_name,
                })
            }
        })
    }

    /// A short-lived link to a media object, when this function signs links.
    async fn signed(&self, key: Option<&str>) -> Result<Option<String>, ApiError> {
        match (&self.media, key) {
            (Some(media), Some(key)) => {
                Ok(Some(media.view_url(key).await.map_err(ApiError::internal)?))
            }
            _ => Ok(None),
        }
    }

    /// Resolves the open queue entry `entry_id` with `request`, as the staff `caller`:
    /// the entry closes and the action is logged; removal and suspension take effect
    /// through their events (see the crate docs), in the same transaction.
    pub async fn resolve(
        &self,
        caller: &Caller,
        entry_id: &str,
        request: ResolveRequest,
    ) -> Result<QueueEntry, ApiError> {
        require_staff(caller)?;
        // A suspended or deleted staff account's still-valid token acts no more.
        shutter_directory::refuse_inactive(&self.directory, &caller.user_id).await?;
        let target = Target::of_entry_id(entry_id)?;
        let note = required_note("note", request.note)?;
        let until = match (request.action, request.duration_hours) {
            (Verdict::Suspend, Some(hours))
                if (1..=model::MAX_SUSPENSION_HOURS).contains(&hours) =>
            {
                Some(suspension_end(hours))
            }
            (Verdict::Suspend, Some(_)) => {
                return Err(ApiError::invalid("duration_hours", "must be 1 to 8760"));
            }
            (Verdict::Suspend, None) => {
                return Err(ApiError::invalid(
                    "duration_hours",
                    "is required to suspend",
                ));
            }
            (_, Some(_)) => {
                return Err(ApiError::invalid("duration_hours", "is only for suspend"));
            }
            (_, None) => None,
        };
        if request.action == Verdict::RemoveContent && target.kind == TargetType::User {
            return Err(ApiError::invalid(
                "action",
                "remove_content is for posts and comments; suspend or ban a user",
            ));
        }
        for _ in 0..ATTEMPTS {
            let Some(open) = self.store.open_entry(&target).await.map_err(errors::api)? else {
                return Err(self.not_open(&target).await?);
            };
            let (id, at) = shutter_core::new_id_and_time();
            let resolution = Resolution {
                action: request.action,
                note: note.clone(),
                moderator_id: caller.user_id.clone(),
                moderator_username: caller.username.clone(),
                at: at.clone(),
                until: until.clone(),
            };
            let resolved = QueueEntry {
                id: target.entry_id(),
                status: ReportStatus::Resolved,
                resolution: Some(resolution),
                ..open.clone()
            };
            let mut entry = ModlogEntry {
                id,
                at: at.clone(),
                moderator_id: caller.user_id.clone(),
                moderator_username: caller.username.clone(),
                action: request.action.into(),
                target: target.clone(),
                role: None,
                reason: Some(note.clone()),
                until: until.clone(),
                report: Some(target.entry_id()),
            };
            let mut events = Vec::new();
            let mut standing = None;
            match request.action {
                Verdict::Dismiss => {}
                Verdict::RemoveContent => {
                    events.push(self.removal(caller, &target, &note, &at).await?);
                }
                Verdict::Suspend | Verdict::Ban => {
                    let owner = self.owner(&target).await?;
                    let account = self
                        .store
                        .account(&owner)
                        .await
                        .map_err(errors::api)?
                        .ok_or(ApiError::NotFound("user"))?;
                    may_suspend(caller, &account)?;
                    // A suspension is an action on the account, whatever was reported.
                    entry.target = Target {
                        kind: TargetType::User,
                        id: account.user_id.to_string(),
                    };
                    let suspension = Suspension {
                        banned: request.action == Verdict::Ban,
                        until: until.clone(),
                        note: note.clone(),
                        at: at.clone(),
                        moderator_id: caller.user_id.clone(),
                    };
                    standing = Some(suspended(caller, account, suspension));
                }
            }
            match self
                .store
                .resolve(&open, &resolved, &entry, standing.as_ref(), &events)
                .await
            {
                Ok(()) => {
                    tracing::info!(target = %target.key(), action = ?request.action, "report resolved");
                    return Ok(resolved);
                }
                Err(StoreError::Conflict(store::STALE_QUEUE | store::STALE_STANDING)) => continue,
                Err(other) => return Err(errors::api(other)),
            }
        }
        Err(errors::concurrent_update())
    }

    /// Why there is no open entry to resolve: 409 if the target was reported and its
    /// entry is resolved, 404 if it was never reported.
    async fn not_open(&self, target: &Target) -> Result<ApiError, ApiError> {
        let reported = self.store.reported(target).await.map_err(errors::api)?;
        Ok(if !reported {
            ApiError::NotFound("report")
        } else {
            ApiError::conflict(
                "already_resolved",
                "id",
                "the target's reports are resolved; a new report opens a new entry",
            )
        })
    }

    /// Whose the target is: the user, or the author of the post or comment.
    async fn owner(&self, target: &Target) -> Result<UserId, ApiError> {
        match target.kind {
            TargetType::User => Ok(UserId::trusted(&target.id)),
            TargetType::Post => Ok(self
                .directory
                .post(&PostId::trusted(&target.id))
                .await
                .map_err(errors::api)?
                .ok_or_else(gone)?
                .author_id),
            TargetType::Comment => Ok(self
                .store
                .comment(&target.id)
                .await
                .map_err(errors::api)?
                .ok_or_else(gone)?
                .author_id),
        }
    }

    /// The `ContentRemoved` event of a post or comment that still exists.
    async fn removal(
        &self,
        caller: &Caller,
        target: &Target,
        note: &str,
        at: &str,
    ) -> Result<shutter_events::Envelope, ApiError> {
        let (kind, post_id, author_id) = match target.kind {
            TargetType::Post => {
                let post = self
                    .directory
                    .post(&PostId::trusted(&target.id))
                    .await
                    .map_err(errors::api)?
                    .ok_or_else(gone)?;
                (
                    shutter_events::RemovedKind::Post,
                    post.post_id,
                    post.author_id,
                )
            }
            TargetType::Comment => {
                let comment = self
                    .store
                    .comment(&target.id)
                    .await
                    .map_err(errors::api)?
                    .ok_or_else(gone)?;
                (
                    shutter_events::RemovedKind::Comment,
                    comment.post_id,
                    comment.author_id,
                )
            }
            TargetType::User => return Err(ApiError::invalid("action", "is not for users")),
        };
        Ok(shutter_events::Envelope::new(
            shutter_events::Event::ContentRemoved(shutter_events::ContentRemoved {
                kind,
                target_id: target.id.clone(),
                post_id,
                author_id,
                note: note.to_owned(),
                removed_by: caller.user_id.clone(),
                removed_at: at.to_owned(),
            }),
            Some(&caller.user_id),
            &shutter_core::new_id(),
        ))
    }

    /// Lifts `username`'s suspension or ban, as the staff `caller`, and logs it.
    pub async fn unsuspend(
        &self,
        caller: &Caller,
        username: &str,
        request: UnsuspendRequest,
    ) -> Result<UserStanding, ApiError> {
        require_staff(caller)?;
        // A suspended or deleted staff account's still-valid token acts no more.
        shutter_directory::refuse_inactive(&self.directory, &caller.user_id).await?;
        let note = required_note("note", request.note)?;
        let username = valid_username(username)?;
        let now = shutter_core::now_rfc3339();
        for _ in 0..ATTEMPTS {
            let account = self
                .store
                .account_by_username(username.as_str())
                .await
                .map_err(errors::api)?
                .ok_or(ApiError::NotFound("user"))?;
            if !account.suspension.as_ref().is_some_and(|s| s.holds(&now)) {
                return Err(ApiError::conflict(
                    "not_suspended",
                    "username",
                    "the account is neither suspended nor banned",
                ));
            }
            let (id, at) = shutter_core::new_id_and_time();
            let entry = ModlogEntry {
                id,
                at,
                moderator_id: caller.user_id.clone(),
                moderator_username: caller.username.clone(),
                action: ModAction::Unsuspend,
                target: Target {
                    kind: TargetType::User,
                    id: account.user_id.to_string(),
                },
                role: None,
                reason: Some(note.clone()),
                until: None,
                report: None,
            };
            let event = shutter_events::Envelope::new(
                shutter_events::Event::UserReinstated(shutter_events::UserReinstated {
                    user_id: account.user_id.clone(),
                    username: account.username.clone(),
                    seq: account.standing_seq + 1,
                }),
                Some(&caller.user_id),
                &shutter_core::new_id(),
            );
            let change = StandingChange {
                account: account.clone(),
                suspension: None,
                event,
            };
            match self.store.set_standing(&change, &entry).await {
                Ok(()) => {
                    tracing::info!(target_user = %account.user_id, "suspension lifted");
                    return self.lookup(caller, username.as_str()).await;
                }
                Err(StoreError::Conflict(store::STALE_STANDING)) => continue,
                Err(other) => return Err(errors::api(other)),
            }
        }
        Err(errors::concurrent_update())
    }

    /// `username`'s roles, standing and the newest staff actions on them.
    pub async fn lookup(&self, caller: &Caller, username: &str) -> Result<UserStanding, ApiError> {
        require_staff(caller)?;
        let username = valid_username(username)?;
        let account = self
            .store
            .account_by_username(username.as_str())
            .await
            .map_err(errors::api)?
            .ok_or(ApiError::NotFound("user"))?;
        let target = Target {
            kind: TargetType::User,
            id: account.user_id.to_string(),
        };
        let actions = self
            .store
            .modlog(&ModlogFilter::OnTarget(target), None, LOOKUP_ACTIONS)
            .await
            .map_err(errors::api)?
            .into_iter()
            .map(|(_, e)| e)
            .collect();
        let now = shutter_core::now_rfc3339();
        Ok(UserStanding {
            user_id: account.user_id,
            username: account.username,
            roles: account.roles,
            suspension: account.suspension.filter(|s| s.holds(&now)),
            actions,
        })
    }

    /// The modlog, newest first, filtered.
    pub async fn modlog(
        &self,
        caller: &Caller,
        filter: &ModlogFilter,
        page: &PageRequest,
    ) -> Result<Page<ModlogEntry>, ApiError> {
        require_staff(caller)?;
        let scope = filter.scope();
        let after = self.after(&scope, page).await?;
        let limit = usize::from(page.limit);
        let entries = self
            .store
            .modlog(filter, after.as_deref(), limit + 1)
            .await
            .map_err(errors::api)?;
        self.paged(&scope, entries, limit).await
    }

    async fn after(&self, scope: &str, page: &PageRequest) -> Result<Option<String>, ApiError> {
        match page.cursor.as_deref() {
            Some(c) => Ok(Some(
                self.cursors().await?.verify::<Position>(scope, c)?.after,
            )),
            None => Ok(None),
        }
    }

    /// A page of up to `limit` of `entries` (read one more than that, to know whether
    /// more follow), with the cursor after its last entry if they do.
    async fn paged<T>(
        &self,
        scope: &str,
        mut entries: Vec<(String, T)>,
        limit: usize,
    ) -> Result<Page<T>, ApiError> {
        let more = entries.len() > limit;
        entries.truncate(limit);
        let next_cursor = match (more, entries.last()) {
            (true, Some((after, _))) => Some(self.cursors().await?.sign(
                scope,
                &Position {
                    after: after.clone(),
                },
            )),
            _ => None,
        };
        Ok(Page {
            items: entries.into_iter().map(|(_, e)| e).collect(),
            next_cursor,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use shutter_core::{CommentId, CursorSigner, PageRequest, PostId, UserId};
    use shutter_directory::{Author, MemoryDirectory, PostRef};
    use shutter_events::{BlockFacts, Envelope, Event};
    use shutter_http::Caller;

    use super::*;
    use crate::model::{CommentRef, StaffAccount};
    use crate::store::memory::MemoryModerationStore;

    struct World {
        app: App<MemoryModerationStore, MemoryDirectory>,
        admin: Caller,
        alice: Caller,
        bob: Caller,
        private: Caller,
    }

    fn caller(name: &str, scope: &str) -> Caller {
        Caller {
            user_id: UserId::generate(),
            username: name.to_owned(),
            scopes: scope.split(' ').map(str::to_owned).collect(),
        }
    }

    /// GIVEN an admin, alice and bob (public), and carol (private), each with an account
    /// and in the directory.
    fn world() -> World {
        let app = App {
            store: MemoryModerationStore::default(),
            directory: MemoryDirectory::default(),
            cursors: Some(shutter_store::CursorKey::ready(CursorSigner::new(
                b"test-key".to_vec(),
            ))),
            media: None,
        };
        let w = World {
            admin: caller("root", "user admin"),
            alice: caller("alice", "user"),
            bob: caller("bob", "user"),
            private: caller("carol", "user"),
            app,
        };
        for c in [&w.admin, &w.alice, &w.bob, &w.private] {
            w.app.store.add_account(StaffAccount {
                user_id: c.user_id.clone(),
                username: c.username.clone(),
                roles: c.scopes.clone(),
                suspension: None,
                standing_seq: 0,
            });
            w.app.directory.add_author(Author {
                user_id: c.user_id.clone(),
                username: c.username.clone(),
                display_name: c.username.clone(),
                private: c.username == "carol",
                avatar_key: None,
                version: 1,
                private_since: None,
            });
        }
        w
    }

    fn post_by(w: &World, author: &Caller) -> PostId {
        let post_id = PostId::generate();
        w.app.directory.add_post(PostRef {
            post_id: post_id.clone(),
            author_id: author.user_id.clone(),
        });
        post_id
    }

    fn new_report(kind: TargetType, id: &str, reason: Reason) -> NewReport {
        NewReport {
            target: Target {
                kind,
                id: id.to_owned(),
            },
            reason,
            note: Some("  look  ".into()),
        }
    }

    fn page() -> PageRequest {
        PageRequest::parse(None, None).unwrap()
    }

    fn resolve(action: Verdict, hours: Option<u32>, note: &str) -> ResolveRequest {
        ResolveRequest {
            action,
            duration_hours: hours,
            note: note.to_owned(),
        }
    }

    /// bob reports alice's post: its open entry's id.
    async fn reported_post(w: &World) -> (PostId, String) {
        let post = post_by(w, &w.alice);
        w.app
            .file_report(
                &w.bob,
                new_report(TargetType::Post, post.as_str(), Reason::Spam),
            )
            .await
            .unwrap();
        (post.clone(), format!("post-{post}"))
    }

    #[tokio::test]
    async fn removing_a_post_closes_its_entry_logs_it_and_emits_content_removed_once() {
        let w = world();
        let (post, id) = reported_post(&w).await;
        let resolved = w
            .app
            .resolve(
                &w.admin,
                &id,
                resolve(Verdict::RemoveContent, None, " spam link "),
            )
            .await
            .unwrap();
        assert_eq!(resolved.status, ReportStatus::Resolved);
        let resolution = resolved.resolution.unwrap();
        assert_eq!(
            (resolution.action, resolution.note.as_str()),
            (Verdict::RemoveContent, "spam link")
        );
        // THEN the open queue is empty and the resolved one holds it
        let open = w.app.reports(&w.admin, ReportStatus::Open, &page()).await;
        assert!(open.unwrap().items.is_empty());
        let done = w
            .app
            .reports(&w.admin, ReportStatus::Resolved, &page())
            .await
            .unwrap();
        assert_eq!(done.items.len(), 1);
        assert_eq!(done.items[0].entry.id, id);
        // AND one ContentRemoved of the post, for its author, with the note
        let events = w.app.store.events();
        assert_eq!(events.len(), 1);
        match &events[0].event {
            Event::ContentRemoved(r) => {
                assert_eq!((&r.post_id, &r.author_id), (&post, &w.alice.user_id));
                assert_eq!(r.note, "spam link");
            }
            other => panic!("{other:?}"),
        }
        let log = w.app.store.modlog_entries();
        assert_eq!(log.last().unwrap().action, ModAction::RemoveContent);
        // WHEN it is resolved again THEN 409, and nothing more is written
        let again = w
            .app
            .resolve(&w.admin, &id, resolve(Verdict::Dismiss, None, "x"))
            .await
            .unwrap_err();
        assert_eq!(again.problem().code, "already_resolved");
        assert_eq!(w.app.store.events().len(), 1);
        assert_eq!(w.app.store.modlog_entries().len(), log.len());
    }

    #[tokio::test]
    async fn bad_resolutions_are_refused_and_change_nothing() {
        let w = world();
        let (_, id) = reported_post(&w).await;
        let cases = [
            (resolve(Verdict::Suspend, None, "n"), 400, "duration_hours"),
            (
                resolve(Verdict::Suspend, Some(0), "n"),
                400,
                "duration_hours",
            ),
            (
                resolve(Verdict::Suspend, Some(8761), "n"),
                400,
                "duration_hours",
            ),
            (resolve(Verdict::Ban, Some(2), "n"), 400, "duration_hours"),
            (resolve(Verdict::Dismiss, None, "   "), 400, "note"),
            (
                resolve(Verdict::Dismiss, None, &"x".repeat(1001)),
                400,
                "note",
            ),
        ];
        for (request, status, field) in cases {
            let err = w.app.resolve(&w.admin, &id, request).await.unwrap_err();
            assert_eq!(
                (err.status(), err.problem().field.as_deref()),
                (status, Some(field))
            );
        }
        // a user target cannot be "removed"; ids that name no entry are 404
        let user_id = format!("user-{}", w.alice.user_id);
        let err = w
            .app
            .resolve(
                &w.admin,
                &user_id,
                resolve(Verdict::RemoveContent, None, "n"),
            )
            .await
            .unwrap_err();
        assert_eq!(err.problem().field.as_deref(), Some("action"));
        for unknown in [
            "post-nope",
            "spam-01JSAMPLEPOST0000000000000",
            "x",
            &user_id,
        ] {
            let err = w
                .app
                .resolve(&w.admin, unknown, resolve(Verdict::Dismiss, None, "n"))
                .await
                .unwrap_err();
            assert_eq!(err.status(), 404, "{unknown}");
        }
        // a plain user may not resolve at all
        let err = w
            .app
            .resolve(&w.bob, &id, resolve(Verdict::Dismiss, None, "n"))
            .await
            .unwrap_err();
        assert_eq!(err.status(), 403);
        assert!(w.app.store.events().is_empty());
        let open = w.app.reports(&w.admin, ReportStatus::Open, &page()).await;
        assert_eq!(open.unwrap().items.len(), 1);
    }

    #[tokio::test]
    async fn suspending_a_posts_author_writes_the_suspension_and_lifting_it_reinstates() {
        let w = world();
        let (_, id) = reported_post(&w).await;
        w.app
            .resolve(
                &w.admin,
                &id,
                resolve(Verdict::Suspend, Some(1), "cool off"),
            )
            .await
            .unwrap();
        // THEN alice (the author) is suspended for about an hour, with seq 1
        let alice = w.app.lookup(&w.admin, "alice").await.unwrap();
        let suspension = alice.suspension.unwrap();
        assert!(!suspension.banned);
        assert!(suspension.until.unwrap() > shutter_core::now_rfc3339());
        assert_eq!(alice.actions[0].action, ModAction::Suspend);
        let events = w.app.store.events();
        match &events[0].event {
            Event::UserSuspended(u) => {
                assert_eq!((&u.user_id, u.banned, u.seq), (&w.alice.user_id, false, 1));
            }
            other => panic!("{other:?}"),
        }
        // WHEN staff lift it THEN UserReinstated with the next seq, and a second lift is 409
        let lifted = w
            .app
            .unsuspend(
                &w.admin,
                "alice",
                UnsuspendRequest {
                    note: "appeal".into(),
                },
            )
            .await
            .unwrap();
        assert_eq!(lifted.suspension, None);
        let actions: Vec<ModAction> = lifted.actions.iter().map(|a| a.action).collect();
        assert!(actions.contains(&ModAction::Unsuspend) && actions.contains(&ModAction::Suspend));
        match &w.app.store.events()[1].event {
            Event::UserReinstated(u) => assert_eq!(u.seq, 2),
            other => panic!("{other:?}"),
        }
        let again = w
            .app
            .unsuspend(&w.admin, "alice", UnsuspendRequest { note: "x".into() })
            .await
            .unwrap_err();
        assert_eq!(again.problem().code, "not_suspended");
    }

    #[tokio::test]
    async fn moderators_cannot_suspend_staff_or_themselves() {
        let w = world();
        let moderator = caller("mod", "user moderator");
        w.app.store.add_account(StaffAccount {
            user_id: moderator.user_id.clone(),
            username: "mod".into(),
            roles: vec!["user".into(), "moderator".into()],
            suspension: None,
            standing_seq: 0,
        });
        // bob reports the admin (a user target), alice reports the moderator
        for (reporter, target) in [(&w.bob, &w.admin), (&w.alice, &moderator)] {
            w.app.directory.add_author(shutter_directory::Author {
                user_id: target.user_id.clone(),
                username: target.username.clone(),
                display_name: target.username.clone(),
                private: false,
                avatar_key: None,
                version: 1,
                private_since: None,
            });
            w.app
                .file_report(
                    reporter,
                    new_report(TargetType::User, target.user_id.as_str(), Reason::Spam),
                )
                .await
                .unwrap();
        }
        let on_admin = format!("user-{}", w.admin.user_id);
        let err = w
            .app
            .resolve(&moderator, &on_admin, resolve(Verdict::Ban, None, "n"))
            .await
            .unwrap_err();
        assert_eq!(err.status(), 403);
        let on_self = format!("user-{}", moderator.user_id);
        let err = w
            .app
            .resolve(&moderator, &on_self, resolve(Verdict::Ban, None, "n"))
            .await
            .unwrap_err();
        assert_eq!(err.status(), 400);
        assert!(w.app.store.events().is_empty());
    }

    #[tokio::test]
    async fn a_suspended_moderators_token_acts_no_more() {
        // GIVEN an open report, and the admin's own account then banned (its token valid)
        let w = world();
        let (_, id) = reported_post(&w).await;
        w.app
            .directory
            .apply(&Envelope::new(
                Event::UserSuspended(shutter_events::UserSuspended {
                    user_id: w.admin.user_id.clone(),
                    username: "root".into(),
                    banned: true,
                    until: None,
                    seq: 1,
                }),
                None,
                "test",
            ))
            .await
            .unwrap();
        // THEN it can neither resolve, lift a suspension nor change roles
        let resolve = w
            .app
            .resolve(&w.admin, &id, resolve(Verdict::Dismiss, None, "n"))
            .await
            .unwrap_err();
        let lift = w
            .app
            .unsuspend(&w.admin, "alice", UnsuspendRequest { note: "n".into() })
            .await
            .unwrap_err();
        let role = w
            .app
            .change_role(&w.admin, "alice", Role::Moderator, true, None)
            .await
            .unwrap_err();
        for err in [resolve, lift, role] {
            assert_eq!(err.problem().code, "account_suspended");
        }
        // AND nothing changed
        assert!(w.app.store.events().is_empty());
        assert!(w.app.store.modlog_entries().is_empty());
        // (reading stays allowed: the report is still open)
        let open = w.app.reports(&w.admin, ReportStatus::Open, &page()).await;
        assert_eq!(open.unwrap().items.len(), 1);
    }

    #[tokio::test]
    async fn a_suspended_accounts_token_files_no_report() {
        let w = world();
        let post = post_by(&w, &w.alice);
        w.app
            .directory
            .apply(&Envelope::new(
                Event::UserSuspended(shutter_events::UserSuspended {
                    user_id: w.bob.user_id.clone(),
                    username: "bob".into(),
                    banned: true,
                    until: None,
                    seq: 1,
                }),
                None,
                "test",
            ))
            .await
            .unwrap();
        let refused = w
            .app
            .file_report(
                &w.bob,
                new_report(TargetType::Post, post.as_str(), Reason::Spam),
            )
            .await
            .unwrap_err();
        assert_eq!(refused.problem().code, "account_suspended");
    }

    #[tokio::test]
    async fn a_deleted_accounts_token_files_no_report() {
        // GIVEN alice's post, and bob's account deleted (his token still valid)
        let w = world();
        let post = post_by(&w, &w.alice);
        w.app
            .directory
            .apply(&Envelope::new(
                Event::UserDeleted(shutter_events::UserDeleted {
                    user_id: w.bob.user_id.clone(),
                    username: w.bob.username.clone(),
                }),
                Some(&w.bob.user_id),
                "test",
            ))
            .await
            .unwrap();
        // WHEN bob reports it THEN 401, and nothing is queued
        let refused = w
            .app
            .file_report(
                &w.bob,
                new_report(TargetType::Post, post.as_str(), Reason::Spam),
            )
            .await
            .unwrap_err();
        assert_eq!(refused.status(), 401);
        let queue = w
            .app
            .reports(&w.admin, ReportStatus::Open, &page())
            .await
            .unwrap();
        assert!(queue.items.is_empty(), "{:?}", queue.items);
    }

    #[tokio::test]
    async fn an_admin_grants_and_revokes_a_role_and_each_change_is_logged_once() {
        let w = world();
        let granted = w
            .app
            .change_role(
                &w.admin,
                "Alice",
                Role::Moderator,
                true,
                Some("trusted".into()),
            )
            .await
            .unwrap();
        assert_eq!(granted.roles, vec!["user", "moderator"]);
        // A retry changes nothing and logs nothing.
        w.app
            .change_role(&w.admin, "alice", Role::Moderator, true, None)
            .await
            .unwrap();
        assert_eq!(w.app.store.roles_of("alice"), vec!["user", "moderator"]);
        let revoked = w
            .app
            .change_role(&w.admin, "alice", Role::Moderator, false, None)
            .await
            .unwrap();
        assert_eq!(revoked.roles, vec!["user"]);
        let log = w.app.store.modlog_entries();
        assert_eq!(log.len(), 2);
        assert_eq!(
            (log[0].action, log[0].role, log[0].reason.as_deref()),
            (ModAction::GrantRole, Some(Role::Moderator), Some("trusted"))
        );
        assert_eq!(log[0].target.id, w.alice.user_id.as_str());
        assert_eq!(log[0].moderator_id, w.admin.user_id);
        assert_eq!(log[1].action, ModAction::RevokeRole);
    }

    #[tokio::test]
    async fn only_admins_change_roles_unknown_users_are_404_and_an_admin_keeps_their_own() {
        let w = world();
        let moderator = caller("mod", "user moderator");
        let err = w
            .app
            .change_role(&moderator, "bob", Role::Moderator, true, None)
            .await
            .unwrap_err();
        assert_eq!(err.status(), 403);
        let err = w
            .app
            .change_role(&w.admin, "nobody", Role::Moderator, true, None)
            .await
            .unwrap_err();
        assert_eq!(err.status(), 404);
        let err = w
            .app
            .change_role(&w.admin, "root", Role::Admin, false, None)
            .await
            .unwrap_err();
        assert_eq!(err.problem().code, "own_admin_role");
        assert_eq!(w.app.store.roles_of("root"), vec!["user", "admin"]);
        assert_eq!(w.app.store.roles_of("bob"), vec!["user"]);
        assert!(w.app.store.modlog_entries().is_empty());
    }

    #[tokio::test]
    async fn a_repeated_report_is_the_same_report_and_the_queue_has_one_entry_per_target() {
        let w = world();
        let post = post_by(&w, &w.alice);
        let (first, created) = w
            .app
            .file_report(&w.bob, new_report(TargetType::Post, &post, Reason::Spam))
            .await
            .unwrap();
        assert!(created);
        assert_eq!(first.note.as_deref(), Some("look"));
        let (again, created) = w
            .app
            .file_report(&w.bob, new_report(TargetType::Post, &post, Reason::Hate))
            .await
            .unwrap();
        assert!(!created);
        assert_eq!(again, first);
        w.app
            .file_report(&w.admin, new_report(TargetType::Post, &post, Reason::Hate))
            .await
            .unwrap();
        let queue = w
            .app
            .reports(&w.admin, ReportStatus::Open, &page())
            .await
            .unwrap();
        assert_eq!(queue.items.len(), 1);
        assert_eq!(queue.items[0].entry.report_count, 2);
        assert_eq!(
            queue.items[0].entry.reasons,
            vec![Reason::Spam, Reason::Hate]
        );
        assert_eq!(w.app.store.report_count(), 2);
    }

    #[tokio::test]
    async fn what_the_reporter_cannot_see_is_404_and_yourself_is_400() {
        let w = world();
        // carol is private and bob does not follow her: her post, its comments are hidden.
        let hidden = post_by(&w, &w.private);
        let comment = CommentId::generate();
        w.app
            .store
            .put_comment(&CommentRef {
                comment_id: comment.to_string(),
                post_id: hidden.clone(),
                author_id: w.alice.user_id.clone(),
                text: "hi".into(),
            })
            .await
            .unwrap();
        let unknown = PostId::generate();
        for (kind, id) in [
            (TargetType::Post, hidden.to_string()),
            (TargetType::Post, unknown.to_string()),
            (TargetType::Comment, comment.to_string()),
            (TargetType::Comment, CommentId::generate().to_string()),
            (TargetType::User, UserId::generate().to_string()),
        ] {
            let err = w
                .app
                .file_report(&w.bob, new_report(kind, &id, Reason::Other))
                .await
                .unwrap_err();
            assert_eq!(err.status(), 404, "{kind:?} {id}");
        }
        // A block hides both ways.
        let block = Envelope::new(
            Event::UserBlocked(BlockFacts {
                blocker_id: w.alice.user_id.clone(),
                blocked_id: w.bob.user_id.clone(),
                seq: 1,
                at: "2026-01-01T00:00:00.000Z".into(),
            }),
            None,
            "c",
        );
        w.app.directory.apply(&block).await.unwrap();
        let err = w
            .app
            .file_report(
                &w.bob,
                new_report(TargetType::User, &w.alice.user_id, Reason::Spam),
            )
            .await
            .unwrap_err();
        assert_eq!(err.status(), 404);
        // Staff see everything; nobody reports themselves.
        w.app
            .file_report(
                &w.admin,
                new_report(TargetType::Post, &hidden, Reason::Spam),
            )
            .await
            .unwrap();
        let err = w
            .app
            .file_report(
                &w.bob,
                new_report(TargetType::User, &w.bob.user_id, Reason::Spam),
            )
            .await
            .unwrap_err();
        assert_eq!(
            (err.status(), err.problem().field.as_deref()),
            (400, Some("target"))
        );
        let err = w
            .app
            .file_report(&w.bob, new_report(TargetType::Post, "nope", Reason::Spam))
            .await
            .unwrap_err();
        assert_eq!(err.problem().field.as_deref(), Some("target.id"));
        assert_eq!(w.app.store.report_count(), 1);
    }

    #[tokio::test]
    async fn the_queue_is_oldest_first_paged_and_staff_only() {
        let w = world();
        let posts: Vec<PostId> = (0..3).map(|_| post_by(&w, &w.alice)).collect();
        for p in &posts {
            // Distinct milliseconds: the order within one is the ids'.
            tokio::time::sleep(std::time::Duration::from_millis(3)).await;
            w.app
                .file_report(&w.bob, new_report(TargetType::Post, p, Reason::Spam))
                .await
                .unwrap();
        }
        let one = PageRequest::parse(Some("2"), None).unwrap();
        let first = w
            .app
            .reports(&w.admin, ReportStatus::Open, &one)
            .await
            .unwrap();
        assert_eq!(first.items.len(), 2);
        let next = PageRequest::parse(Some("2"), first.next_cursor.as_deref()).unwrap();
        let second = w
            .app
            .reports(&w.admin, ReportStatus::Open, &next)
            .await
            .unwrap();
        assert_eq!(second.items.len(), 1);
        assert!(second.next_cursor.is_none());
        let order: Vec<String> = first
            .items
            .iter()
            .chain(&second.items)
            .map(|e| e.entry.target.id.clone())
            .collect();
        assert_eq!(
            order,
            posts.iter().map(|p| p.to_string()).collect::<Vec<_>>()
        );
        // A cursor of another list is refused; plain users are refused.
        let err = w
            .app
            .modlog(&w.admin, &ModlogFilter::All, &next)
            .await
            .unwrap_err();
        assert_eq!(err.status(), 400);
        let err = w
            .app
            .reports(&w.bob, ReportStatus::Open, &page())
            .await
            .unwrap_err();
        assert_eq!(err.status(), 403);
        assert!(
            w.app
                .reports(&w.admin, ReportStatus::Resolved, &page())
                .await
                .unwrap()
                .items
                .is_empty()
        );
    }

    #[tokio::test]
    async fn the_modlog_filters_by_moderator_and_target_newest_first() {
        let w = world();
        for name in ["alice", "bob"] {
            tokio::time::sleep(std::time::Duration::from_millis(3)).await;
            w.app
                .change_role(&w.admin, name, Role::Moderator, true, None)
                .await
                .unwrap();
        }
        let all = w
            .app
            .modlog(&w.admin, &ModlogFilter::All, &page())
            .await
            .unwrap();
        assert_eq!(all.items.len(), 2);
        assert_eq!(all.items[0].target.id, w.bob.user_id.as_str());
        let on_alice = ModlogFilter::OnTarget(Target {
            kind: TargetType::User,
            id: w.alice.user_id.to_string(),
        });
        let only = w.app.modlog(&w.admin, &on_alice, &page()).await.unwrap();
        assert_eq!(only.items.len(), 1);
        let by_bob = ModlogFilter::ByModerator(w.bob.user_id.clone());
        assert!(
            w.app
                .modlog(&w.admin, &by_bob, &page())
                .await
                .unwrap()
                .items
                .is_empty()
        );
        let err = w
            .app
            .modlog(&w.bob, &ModlogFilter::All, &page())
            .await
            .unwrap_err();
        assert_eq!(err.status(), 403);
    }
}
