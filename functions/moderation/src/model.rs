//! Moderation's domain: staff roles, reports and modlog entries, and the pure rules that
//! decide what a role change or a report does. No I/O here.

use serde::{Deserialize, Serialize};
use shutter_core::{ApiError, UserId};
use utoipa::ToSchema;

/// The roles staff can be granted. `user` is everyone's and is never granted or revoked
/// here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Moderator,
    Admin,
}

impl Role {
    /// The `{role}` of a path: 400 naming `role` unless it is one staff can hold.
    pub fn parse(raw: &str) -> Result<Self, ApiError> {
        match raw {
            "moderator" => Ok(Self::Moderator),
            "admin" => Ok(Self::Admin),
            _ => Err(ApiError::invalid("role", "must be moderator or admin")),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Moderator => "moderator",
            Self::Admin => "admin",
        }
    }
}

/// What a role change does to an account's roles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoleChange {
    /// The roles already say so: nothing to write, nothing to log (an idempotent retry).
    Unchanged,
    /// Write these roles (and log the change).
    To(Vec<String>),
}

/// Granting `role` to an account holding `roles`.
pub fn grant(roles: &[String], role: Role) -> RoleChange {
    if roles.iter().any(|r| r == role.as_str()) {
        return RoleChange::Unchanged;
    }
    let mut next = roles.to_vec();
    next.push(role.as_str().to_owned());
    RoleChange::To(next)
}

/// Revoking `role` from `target` (holding `roles`) on behalf of `actor`. An admin may not
/// revoke their own admin role: the last admin could otherwise lock everyone out, and a
/// slip of the hand is not undoable by the one who made it.
pub fn revoke(
    actor: &UserId,
    target: &UserId,
    roles: &[String],
    role: Role,
) -> Result<RoleChange, ApiError> {
    if role == Role::Admin && actor == target {
        return Err(ApiError::conflict(
            "own_admin_role",
            "role",
            "an admin cannot remove their own admin role; ask another admin",
        ));
    }
    if !roles.iter().any(|r| r == role.as_str()) {
        return Ok(RoleChange::Unchanged);
    }
    Ok(RoleChange::To(
        roles
            .iter()
            .filter(|r| *r != role.as_str())
            .cloned()
            .collect(),
    ))
}

/// What a report is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TargetType {
    Post,
    Comment,
    User,
}

impl TargetType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Post => "post",
            Self::Comment => "comment",
            Self::User => "user",
        }
    }
}

/// A reported post, comment or user: its type and id (a ULID, checked when parsed).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
pub struct Target {
    #[serde(rename = "type")]
    pub kind: TargetType,
    /// The post's, comment's or user's id (a ULID)
    pub id: String,
}

impl Target {
    /// `<type>#<id>`: how keys and filters name a target.
    pub fn key(&self) -> String {
        format!("{}#{}", self.kind.as_str(), self.id)
    }

    /// `<type>-<id>`: the id of the target's queue entry in paths.
    pub fn entry_id(&self) -> String {
        format!("{}-{}", self.kind.as_str(), self.id)
    }

    /// The target a queue entry's id names; 404 for anything that is not one (an id that
    /// cannot exist names no entry).
    pub fn of_entry_id(raw: &str) -> Result<Self, ApiError> {
        let not_found = || ApiError::NotFound("report");
        let (kind, id) = raw.split_once('-').ok_or_else(not_found)?;
        let kind = match kind {
            "post" => TargetType::Post,
            "comment" => TargetType::Comment,
            "user" => TargetType::User,
            _ => return Err(not_found()),
        };
        let id = shutter_core::parse_id("id", id).map_err(|_| not_found())?;
        Ok(Self {
            kind,
            id: id.to_string(),
        })
    }
}

/// Why something is reported.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    Spam,
    Nudity,
    Harassment,
    Violence,
    Hate,
    SelfHarm,
    Other,
}

/// The longest note a reporter may add (characters).
pub const MAX_NOTE_CHARS: usize = 1000;

/// One user's report of one target: there is at most one per reporter and target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Report {
    /// The report's id (a ULID); the same for every repeat of it
    pub id: String,
    pub target: Target,
    pub reason: Reason,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    #[schema(value_type = String)]
    pub reporter_id: UserId,
    /// RFC 3339
    pub created_at: String,
}

/// Whether a target's reports are still to be looked at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReportStatus {
    Open,
    Resolved,
}

impl ReportStatus {
    pub fn parse(raw: Option<&str>) -> Result<Self, ApiError> {
        match raw {
            None | Some("open") => Ok(Self::Open),
            Some("resolved") => Ok(Self::Resolved),
            Some(_) => Err(ApiError::invalid("status", "must be open or resolved")),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Resolved => "resolved",
        }
    }
}

/// The queue's entry of one target: every report of it, summed up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct QueueEntry {
    /// `<type>-<target id>`: the entry's id in `/v1/admin/reports/{id}/resolve`
    #[serde(default)]
    pub id: String,
    pub target: Target,
    pub status: ReportStatus,
    /// How many users reported it
    pub report_count: u64,
    /// Every reason given, each once, in a stable order
    pub reasons: Vec<Reason>,
    /// When its first open report came (RFC 3339): the queue's order, oldest first
    pub first_reported_at: String,
    /// RFC 3339
    pub last_reported_at: String,
    /// How staff resolved it (resolved entries only)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolution: Option<Resolution>,
}

/// What a moderator does with a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Nothing breaks the rules: the entry closes.
    Dismiss,
    /// The post or comment is hidden from everyone but its author, who sees why.
    RemoveContent,
    /// The account (the target's author) is suspended for `duration_hours`.
    Suspend,
    /// The account is banned until staff lift it; its content is hidden from others.
    Ban,
}

/// The longest suspension (hours): a year. Longer is a ban.
pub const MAX_SUSPENSION_HOURS: u32 = 8760;

/// How a queue entry was resolved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Resolution {
    pub action: Verdict,
    pub note: String,
    #[schema(value_type = String)]
    pub moderator_id: UserId,
    pub moderator_username: String,
    /// RFC 3339
    pub at: String,
    /// The suspension's end (RFC 3339), for `suspend`
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
}

/// An account's suspension or ban, as stored on the account (identity reads it at login
/// and refresh).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Suspension {
    pub banned: bool,
    /// RFC 3339; absent for a ban
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
    pub note: String,
    /// RFC 3339
    pub at: String,
    #[schema(value_type = String)]
    pub moderator_id: UserId,
}

impl Suspension {
    /// Whether it still holds at `now` (RFC 3339).
    pub fn holds(&self, now: &str) -> bool {
        self.banned || self.until.as_deref().is_some_and(|until| until > now)
    }
}

/// What the queue shows of a target, so staff decide without opening it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Preview {
    Post {
        author_username: String,
        caption: String,
        /// A short-lived link to the first medium's thumbnail
        #[serde(skip_serializing_if = "Option::is_none")]
        thumbnail_url: Option<String>,
    },
    Comment {
        author_username: String,
        text: String,
        post_id: String,
    },
    User {
        username: String,
        display_name: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        avatar_url: Option<String>,
    },
}

/// A queue entry with its target's preview (absent when the target is gone).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct QueueItem {
    #[serde(flatten)]
    pub entry: QueueEntry,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preview: Option<Preview>,
}

/// What moderation keeps of a published post for its preview, from the posts events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PostPreview {
    pub post_id: shutter_core::PostId,
    pub author_id: UserId,
    pub caption: String,
    #[serde(default)]
    pub thumbnail_key: Option<String>,
    pub version: u64,
}

impl QueueEntry {
    /// The entry of a target reported for the first time (or again after it was resolved).
    pub fn opened(report: &Report) -> Self {
        Self {
            target: report.target.clone(),
            status: ReportStatus::Open,
            report_count: 1,
            reasons: vec![report.reason],
            first_reported_at: report.created_at.clone(),
            last_reported_at: report.created_at.clone(),
            id: report.target.entry_id(),
            resolution: None,
        }
    }

    /// The entry with one more report.
    pub fn with(&self, report: &Report) -> Self {
        let mut reasons = self.reasons.clone();
        if !reasons.contains(&report.reason) {
            reasons.push(report.reason);
            reasons.sort();
        }
        Self {
            report_count: self.report_count + 1,
            reasons,
            last_reported_at: report.created_at.clone(),
            ..self.clone()
        }
    }
}

/// What a moderator did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ModAction {
    GrantRole,
    RevokeRole,
    Dismiss,
    RemoveContent,
    Suspend,
    Ban,
    Unsuspend,
}

impl From<Verdict> for ModAction {
    fn from(verdict: Verdict) -> Self {
        match verdict {
            Verdict::Dismiss => Self::Dismiss,
            Verdict::RemoveContent => Self::RemoveContent,
            Verdict::Suspend => Self::Suspend,
            Verdict::Ban => Self::Ban,
        }
    }
}

/// One line of the modlog: who did what to which target, why and when. Written once,
/// never changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ModlogEntry {
    /// The entry's id (a ULID)
    pub id: String,
    /// RFC 3339
    pub at: String,
    #[schema(value_type = String)]
    pub moderator_id: UserId,
    pub moderator_username: String,
    pub action: ModAction,
    pub target: Target,
    /// The role granted or revoked, for role actions
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// A suspension's end (RFC 3339)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
    /// The queue entry the action resolved (a suspension over a post names the post's
    /// entry here and its author as the target)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report: Option<String>,
}

/// Which entries of the modlog to list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModlogFilter {
    All,
    ByModerator(UserId),
    OnTarget(Target),
}

impl ModlogFilter {
    /// `?moderator=<user id>` or `?target_type=&target_id=` (not both): 400 naming the
    /// field otherwise.
    pub fn parse(
        moderator: Option<&str>,
        target_type: Option<&str>,
        target_id: Option<&str>,
    ) -> Result<Self, ApiError> {
        match (moderator, target_type, target_id) {
            (None, None, None) => Ok(Self::All),
            (Some(m), None, None) => Ok(Self::ByModerator(UserId::parse("moderator", m)?)),
            (None, Some(t), Some(id)) => {
                let kind = match t {
                    "post" => TargetType::Post,
                    "comment" => TargetType::Comment,
                    "user" => TargetType::User,
                    _ => {
                        return Err(ApiError::invalid(
                            "target_type",
                            "must be post, comment or user",
                        ));
                    }
                };
                shutter_core::parse_id("target_id", id)?;
                Ok(Self::OnTarget(Target {
                    kind,
                    id: id.to_owned(),
                }))
            }
            (Some(_), _, _) => Err(ApiError::invalid(
                "moderator",
                "cannot be combined with a target filter",
            )),
            (None, Some(_), None) => Err(ApiError::invalid(
                "target_id",
                "is required with target_type",
            )),
            (None, None, Some(_)) => Err(ApiError::invalid(
                "target_type",
                "is required with target_id",
            )),
        }
    }

    /// The cursor scope of the listing, so a cursor of one filter is refused by another.
    pub fn scope(&self) -> String {
        match self {
            Self::All => "modlog".to_owned(),
            Self::ByModerator(m) => format!("modlog:by:{m}"),
            Self::OnTarget(t) => format!("modlog:on:{}", t.key()),
        }
    }
}

/// What the moderation service knows of a comment: enough to decide who may see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommentRef {
    pub comment_id: String,
    pub post_id: shutter_core::PostId,
    pub author_id: UserId,
    /// For the queue's preview (from `CommentAdded`, then `CommentEdited`)
    #[serde(default)]
    pub text: String,
}

/// An account as moderation sees it: who, and which roles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaffAccount {
    pub user_id: UserId,
    pub username: String,
    pub roles: Vec<String>,
    /// The suspension or ban on the account, if any (it may have ended)
    pub suspension: Option<Suspension>,
    /// Grows by one with every suspension or reinstatement: the events' `seq`.
    pub standing_seq: u64,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn roles(r: &[&str]) -> Vec<String> {
        r.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn granting_adds_the_role_once() {
        assert_eq!(
            grant(&roles(&["user"]), Role::Moderator),
            RoleChange::To(roles(&["user", "moderator"]))
        );
        assert_eq!(
            grant(&roles(&["user", "moderator"]), Role::Moderator),
            RoleChange::Unchanged
        );
    }

    #[test]
    fn revoking_removes_the_role_and_a_missing_one_is_unchanged() {
        let (a, b) = (UserId::generate(), UserId::generate());
        assert_eq!(
            revoke(&a, &b, &roles(&["user", "moderator"]), Role::Moderator).unwrap(),
            RoleChange::To(roles(&["user"]))
        );
        assert_eq!(
            revoke(&a, &b, &roles(&["user"]), Role::Admin).unwrap(),
            RoleChange::Unchanged
        );
    }

    #[test]
    fn an_admin_cannot_revoke_their_own_admin_role_but_may_drop_moderator() {
        let a = UserId::generate();
        let err = revoke(&a, &a, &roles(&["user", "admin"]), Role::Admin).unwrap_err();
        assert_eq!(err.status(), 409);
        assert_eq!(err.problem().code, "own_admin_role");
        assert!(
            revoke(
                &a,
                &a,
                &roles(&["user", "admin", "moderator"]),
                Role::Moderator
            )
            .is_ok()
        );
    }

    #[test]
    fn only_staff_roles_parse() {
        assert_eq!(Role::parse("admin").unwrap(), Role::Admin);
        for bad in ["user", "Admin", "", "root"] {
            assert_eq!(
                Role::parse(bad).unwrap_err().problem().field.as_deref(),
                Some("role")
            );
        }
    }

    #[test]
    fn a_queue_entry_counts_reports_and_keeps_each_reason_once() {
        let report = |reason, at: &str| Report {
            id: "r".into(),
            target: Target {
                kind: TargetType::Post,
                id: "p".into(),
            },
            reason,
            note: None,
            reporter_id: UserId::generate(),
            created_at: at.into(),
        };
        let e = QueueEntry::opened(&report(Reason::Spam, "t1"))
            .with(&report(Reason::Hate, "t2"))
            .with(&report(Reason::Spam, "t3"));
        assert_eq!(e.report_count, 3);
        assert_eq!(e.reasons, vec![Reason::Spam, Reason::Hate]);
        assert_eq!(
            (e.first_reported_at.as_str(), e.last_reported_at.as_str()),
            ("t1", "t3")
        );
    }

    #[test]
    fn modlog_filters_parse_one_kind_at_a_time() {
        let id = UserId::generate();
        assert_eq!(
            ModlogFilter::parse(None, None, None).unwrap(),
            ModlogFilter::All
        );
        assert_eq!(
            ModlogFilter::parse(Some(&id), None, None).unwrap(),
            ModlogFilter::ByModerator(id.clone())
        );
        assert!(matches!(
            ModlogFilter::parse(None, Some("user"), Some(&id)).unwrap(),
            ModlogFilter::OnTarget(_)
        ));
        for (m, t, i, field) in [
            (Some("x"), None, None, "moderator"),
            (None, Some("page"), Some(id.as_str()), "target_type"),
            (None, Some("user"), None, "target_id"),
            (None, None, Some(id.as_str()), "target_type"),
            (None, Some("user"), Some("nope"), "target_id"),
        ] {
            let err = ModlogFilter::parse(m, t, i).unwrap_err();
            assert_eq!(err.problem().field.as_deref(), Some(field));
        }
    }
}
