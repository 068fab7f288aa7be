//! The DynamoDB adapter over the identity table (the layout is in [`super`]).

use async_trait::async_trait;
use serde::Deserialize;
use shutter_core::{PostId, UserId};
use shutter_events::{Envelope, outbox_write};
use shutter_store::{
    AttributeValue, Item, Query, StoreError, StoreResult, Table, Write, from_item, key, n, s,
    to_item,
};

use super::{
    DUPLICATE_REPORT, ModerationStore, QueueChange, STALE_QUEUE, STALE_ROLES, STALE_STANDING,
    StandingChange, modlog_position, queue_position, resolved_position,
};
use crate::model::{
    CommentRef, ModlogEntry, ModlogFilter, PostPreview, QueueEntry, Report, ReportStatus,
    StaffAccount, Suspension, Target,
};

/// A modlog entry with this id exists already (an id collision).
const MODLOG_EXISTS: &str = "modlog_exists";

#[derive(Debug, Clone)]
pub struct DynamoModerationStore {
    pub table: Table,
}

fn target_pk(target: &Target) -> String {
    format!("MODTARGET#{}", target.key())
}
fn queue_pk(status: ReportStatus) -> String {
    format!("MODQUEUE#{}", status.as_str())
}
fn post_pk(post_id: &str) -> String {
    format!("MODPOST#{post_id}")
}
fn account_key(user_id: &UserId) -> Item {
    key(format!("USER#{user_id}"), "ACCOUNT")
}
fn comment_pk(comment_id: &str) -> String {
    format!("MODCOMMENT#{comment_id}")
}
fn modlog_pk(filter: &ModlogFilter) -> String {
    match filter {
        ModlogFilter::All => "MODLOG#ALL".to_owned(),
        ModlogFilter::ByModerator(m) => format!("MODLOG#BY#{m}"),
        ModlogFilter::OnTarget(t) => format!("MODLOG#ON#{}", t.key()),
    }
}

/// `value` serialised, at `pk` / `sk`.
fn keyed<T: serde::Serialize>(value: &T, pk: String, sk: String) -> StoreResult<Item> {
    let mut item = to_item(value)?;
    item.extend(key(pk, sk));
    Ok(item)
}

fn strings(values: &[String]) -> AttributeValue {
    AttributeValue::L(values.iter().map(|v| s(v.as_str())).collect())
}

/// The three copies of a modlog entry, each written only if new.
fn modlog_writes(entry: &ModlogEntry) -> StoreResult<Vec<Write>> {
    let sk = modlog_position(entry);
    [
        ModlogFilter::All,
        ModlogFilter::ByModerator(entry.moderator_id.clone()),
        ModlogFilter::OnTarget(entry.target.clone()),
    ]
    .iter()
    .map(|f| Ok(Write::put(keyed(entry, modlog_pk(f), sk.clone())?).if_absent(MODLOG_EXISTS)))
    .collect()
}

#[derive(Deserialize)]
struct Pointer {
    user_id: Option<UserId>,
}

#[derive(Deserialize)]
struct AccountRoles {
    user_id: UserId,
    username: String,
    #[serde(default)]
    roles: Vec<String>,
    #[serde(default)]
    suspension: Option<Suspension>,
    #[serde(default)]
    standing_seq: u64,
}

impl From<AccountRoles> for StaffAccount {
    fn from(a: AccountRoles) -> Self {
        StaffAccount {
            user_id: a.user_id,
            username: a.username,
            roles: a.roles,
            suspension: a.suspension,
            standing_seq: a.standing_seq,
        }
    }
}

/// The account's new standing, if its `standing_seq` is still the one read; a suspension
/// also bumps `refresh_epoch`, so every refresh token of the account dies with it.
fn standing_writes(change: &StandingChange) -> StoreResult<Vec<Write>> {
    let account = &change.account;
    let update = match &change.suspension {
        Some(suspension) => Write::update(
            account_key(&account.user_id),
            "SET suspension = :suspension, standing_seq = :seq, \
             refresh_epoch = refresh_epoch + :one, updated_at = :at",
        )
        .value(":suspension", AttributeValue::M(to_item(suspension)?))
        .value(":one", n(1)),
        None => Write::update(
            account_key(&account.user_id),
            "SET standing_seq = :seq, updated_at = :at REMOVE suspension",
        ),
    }
    .when(
        STALE_STANDING,
        "attribute_exists(pk) AND (attribute_not_exists(standing_seq) OR standing_seq = :old)",
    )
    .value(":seq", n(account.standing_seq + 1))
    .value(":old", n(account.standing_seq))
    .value(":at", s(shutter_core::now_rfc3339()));
    Ok(vec![update, outbox_write(&change.event)?])
}

#[derive(Deserialize)]
struct OpenPointer {
    opened: String,
}

/// Items as the stored type, with their sort keys (the list positions).
fn positioned<T: serde::de::DeserializeOwned>(items: Vec<Item>) -> StoreResult<Vec<(String, T)>> {
    items
        .into_iter()
        .map(|item| {
            let sk = shutter_store::string_attr(&item, "sk")
                .ok_or_else(|| StoreError::corrupt_because("an item without sk"))?
                .to_owned();
            Ok((sk, from_item(item)?))
        })
        .collect()
}

#[async_trait]
impl ModerationStore for DynamoModerationStore {
    async fn account_by_username(&self, username: &str) -> StoreResult<Option<StaffAccount>> {
        let pointer: Option<Pointer> = self
            .table
            .get(&format!("USERNAME#{}", username.to_lowercase()), "USERNAME")
            .await?;
        // A quarantined username points at no account.
        let Some(user_id) = pointer.and_then(|p| p.user_id) else {
            return Ok(None);
        };
        self.account(&user_id).await
    }

    async fn account(&self, user_id: &UserId) -> StoreResult<Option<StaffAccount>> {
        let account: Option<AccountRoles> = self
            .table
            .get(&format!("USER#{user_id}"), "ACCOUNT")
            .await?;
        Ok(account.map(StaffAccount::from))
    }

    async fn resolve(
        &self,
        open: &QueueEntry,
        resolved: &QueueEntry,
        entry: &ModlogEntry,
        standing: Option<&StandingChange>,
        events: &[Envelope],
    ) -> StoreResult<()> {
        let pos = queue_position(open);
        let mut writes = vec![
            Write::delete(key(queue_pk(ReportStatus::Open), pos.as_str()))
                .when(STALE_QUEUE, "report_count = :count")
                .value(":count", n(open.report_count)),
            Write::delete(key(target_pk(&open.target), "OPEN"))
                .when(STALE_QUEUE, "opened = :pos")
                .value(":pos", s(pos.as_str())),
            Write::put(keyed(
                resolved,
                queue_pk(ReportStatus::Resolved),
                resolved_position(resolved),
            )?)
            .if_absent(STALE_QUEUE),
        ];
        writes.extend(modlog_writes(entry)?);
        if let Some(change) = standing {
            writes.extend(standing_writes(change)?);
        }
        for event in events {
            writes.push(outbox_write(event)?);
        }
        self.table.transact(writes).await
    }

    async fn set_standing(
        &self,
        standing: &StandingChange,
        entry: &ModlogEntry,
    ) -> StoreResult<()> {
        let mut writes = standing_writes(standing)?;
        writes.extend(modlog_writes(entry)?);
        self.table.transact(writes).await
    }

    async fn set_roles(
        &self,
        account: &StaffAccount,
        roles: &[String],
        entry: &ModlogEntry,
    ) -> StoreResult<()> {
        let mut writes = vec![
            Write::update(
                key(format!("USER#{}", account.user_id), "ACCOUNT"),
                "SET #roles = :roles, updated_at = :at",
            )
            .when(STALE_ROLES, "attribute_exists(pk) AND #roles = :old")
            .name("#roles", "roles")
            .value(":roles", strings(roles))
            .value(":old", strings(&account.roles))
            .value(":at", s(entry.at.as_str())),
        ];
        writes.extend(modlog_writes(entry)?);
        self.table.transact(writes).await
    }

    async fn report(&self, target: &Target, reporter: &UserId) -> StoreResult<Option<Report>> {
        self.table
            .get(&target_pk(target), &format!("REPORT#{reporter}"))
            .await
    }

    async fn reported(&self, target: &Target) -> StoreResult<bool> {
        let query = Query::partition(target_pk(target))
            .after(Some("REPORT#"))
            .limit(1);
        let found = self.table.query(&query).await?;
        Ok(found.iter().any(|item| {
            shutter_store::string_attr(item, "sk").is_some_and(|sk| sk.starts_with("REPORT#"))
        }))
    }

    async fn open_entry(&self, target: &Target) -> StoreResult<Option<QueueEntry>> {
        let pointer: Option<OpenPointer> = self.table.get(&target_pk(target), "OPEN").await?;
        match pointer {
            None => Ok(None),
            Some(p) => {
                self.table
                    .get(&queue_pk(ReportStatus::Open), &p.opened)
                    .await
            }
        }
    }

    async fn file(&self, report: &Report, queue: &QueueChange) -> StoreResult<()> {
        let pk = target_pk(&report.target);
        let mut writes = vec![
            Write::put(keyed(
                report,
                pk.clone(),
                format!("REPORT#{}", report.reporter_id),
            )?)
            .if_absent(DUPLICATE_REPORT),
        ];
        match queue {
            QueueChange::Open(entry) => {
                let pos = queue_position(entry);
                let mut pointer = key(pk, "OPEN");
                pointer.insert("opened".to_owned(), s(pos.as_str()));
                writes.push(Write::put(pointer).if_absent(STALE_QUEUE));
                writes.push(
                    Write::put(keyed(entry, queue_pk(ReportStatus::Open), pos)?)
                        .if_absent(STALE_QUEUE),
                );
            }
            QueueChange::Bump { from, to } => {
                let pos = queue_position(from);
                writes.push(
                    Write::check(key(pk, "OPEN"), STALE_QUEUE, "opened = :pos")
                        .value(":pos", s(pos.as_str())),
                );
                writes.push(
                    Write::put(keyed(to, queue_pk(ReportStatus::Open), pos)?)
                        .when(STALE_QUEUE, "report_count = :count")
                        .value(":count", n(from.report_count)),
                );
            }
        }
        self.table.transact(writes).await
    }

    /// Open entries oldest first; resolved ones newest first.
    async fn queue(
        &self,
        status: ReportStatus,
        after: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<(String, QueueEntry)>> {
        let mut query = Query::partition(queue_pk(status)).after(after).limit(limit);
        if status == ReportStatus::Resolved {
            query = query.newest_first();
        }
        positioned(self.table.query(&query).await?)
    }

    async fn modlog(
        &self,
        filter: &ModlogFilter,
        after: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<(String, ModlogEntry)>> {
        let query = Query::partition(modlog_pk(filter))
            .newest_first()
            .after(after)
            .limit(limit);
        positioned(self.table.query(&query).await?)
    }

    async fn comment(&self, comment_id: &str) -> StoreResult<Option<CommentRef>> {
        let Some(item) = self
            .table
            .get_item(&comment_pk(comment_id), "COMMENT")
            .await?
        else {
            return Ok(None);
        };
        if shutter_store::bool_attr(&item, "deleted") {
            return Ok(None);
        }
        from_item(item).map(Some)
    }

    async fn edit_comment(&self, comment_id: &str, text: &str) -> StoreResult<()> {
        let write = Write::update(key(comment_pk(comment_id), "COMMENT"), "SET #text = :text")
            .when(
                "comment_unknown",
                "attribute_exists(pk) AND attribute_not_exists(deleted)",
            )
            .name("#text", "text")
            .value(":text", s(text));
        match self.table.write(write).await {
            Err(StoreError::Conflict(_)) => Ok(()),
            other => other,
        }
    }

    async fn post_preview(&self, post_id: &PostId) -> StoreResult<Option<PostPreview>> {
        let Some(item) = self.table.get_item(&post_pk(post_id), "POST").await? else {
            return Ok(None);
        };
        if shutter_store::bool_attr(&item, "deleted") {
            return Ok(None);
        }
        from_item(item).map(Some)
    }

    async fn put_post_preview(&self, preview: &PostPreview) -> StoreResult<()> {
        let write = Write::put(keyed(preview, post_pk(&preview.post_id), "POST".into())?)
            .when(
                "post_newer",
                "attribute_not_exists(pk) OR (attribute_not_exists(deleted) AND version < :version)",
            )
            .value(":version", n(preview.version));
        match self.table.write(write).await {
            Err(StoreError::Conflict(_)) => Ok(()),
            other => other,
        }
    }

    async fn forget_post(&self, post_id: &PostId) -> StoreResult<()> {
        let mut tombstone = key(post_pk(post_id), "POST");
        tombstone.insert("deleted".to_owned(), AttributeValue::Bool(true));
        tombstone.insert(
            "ttl".to_owned(),
            n(shutter_store::epoch_seconds() + 8 * 24 * 3600),
        );
        self.table.write(Write::put(tombstone)).await
    }

    async fn put_comment(&self, comment: &CommentRef) -> StoreResult<()> {
        let write = Write::put(keyed(
            comment,
            comment_pk(&comment.comment_id),
            "COMMENT".into(),
        )?)
        .if_absent("comment_known");
        match self.table.write(write).await {
            // Known already, or deleted: either way nothing to do.
            Err(StoreError::Conflict(_)) => Ok(()),
            other => other,
        }
    }

    async fn delete_comment(&self, comment_id: &str) -> StoreResult<()> {
        let mut tombstone = key(comment_pk(comment_id), "COMMENT");
        tombstone.insert("deleted".to_owned(), AttributeValue::Bool(true));
        tombstone.insert(
            "ttl".to_owned(),
            n(shutter_store::epoch_seconds() + 8 * 24 * 3600),
        );
        self.table.write(Write::put(tombstone)).await
    }
}
