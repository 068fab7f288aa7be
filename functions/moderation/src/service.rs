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
    self, ModAction, ModlogEntry, ModlogFilter, QueueEntry, Reason, Report, ReportStatus, Role,
    RoleChange, Target, TargetType,
};
use crate::store::{self, ModerationStore, QueueChange};

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

impl<S: ModerationStore, D: Directory> App<S, D> {
    fn cursors(&self) -> Result<&CursorSigner, ApiError> {
        self.cursors.as_ref().ok_or_else(|| {
            ApiError::internal(std::io::Error::other("this function has no cursor key"))
        })
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
        // A deleted account's still-valid token files nothing (its tombstone arrived with
        // `UserDeleted`), as every other write refuses it.
        if self
            .directory
            .account_deleted(&caller.user_id)
            .await
            .map_err(errors::api)?
        {
            return Err(ApiError::Unauthorized("the account no longer exists"));
        }
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

    /// The report queue, one entry per target, oldest first.
    pub async fn reports(
        &self,
        caller: &Caller,
        status: ReportStatus,
        page: &PageRequest,
    ) -> Result<Page<QueueEntry>, ApiError> {
        require_staff(caller)?;
        let scope = format!("reports:{}", status.as_str());
        let after = self.after(&scope, page)?;
        let limit = usize::from(page.limit);
        let entries = self
            .store
            .queue(status, after.as_deref(), limit + 1)
            .await
            .map_err(errors::api)?;
        self.paged(&scope, entries, limit)
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
        let after = self.after(&scope, page)?;
        let limit = usize::from(page.limit);
        let entries = self
            .store
            .modlog(filter, after.as_deref(), limit + 1)
            .await
            .map_err(errors::api)?;
        self.paged(&scope, entries, limit)
    }

    fn after(&self, scope: &str, page: &PageRequest) -> Result<Option<String>, ApiError> {
        let cursors = self.cursors()?;
        page.cursor
            .as_deref()
            .map(|c| cursors.verify::<Position>(scope, c).map(|p| p.after))
            .transpose()
    }

    /// A page of up to `limit` of `entries` (read one more than that, to know whether
    /// more follow), with the cursor after its last entry if they do.
    fn paged<T>(
        &self,
        scope: &str,
        mut entries: Vec<(String, T)>,
        limit: usize,
    ) -> Result<Page<T>, ApiError> {
        let more = entries.len() > limit;
        entries.truncate(limit);
        let next_cursor = match (more, entries.last()) {
            (true, Some((after, _))) => Some(self.cursors()?.sign(
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
            cursors: Some(CursorSigner::new(b"test-key".to_vec())),
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
        assert_eq!(queue.items[0].report_count, 2);
        assert_eq!(queue.items[0].reasons, vec![Reason::Spam, Reason::Hate]);
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
            .map(|e| e.target.id.clone())
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
