//! A service's own copy of the public facts it needs from other services: who the authors
//! are (from the identity and profiles events), which posts are published (from the posts
//! events), and who follows or blocks whom (from the follows events). Each service owns
//! its tables, so the likes, comments, posts, follows and feed services keep this copy in
//! their own table, fed by their own consumer, and decide who may see a post from it
//! without reading another service's table.
//!
//! Every event is applied idempotently and out-of-order events are tolerated: a deleted
//! post or author leaves a tombstone, so a late or redelivered publish cannot bring it
//! back; a pair's follow or block changes only to a higher `seq`.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use shutter_core::{PostId, UserId};
use shutter_events::{Envelope, Event, EventSet, EventType};
use shutter_store::{
    AttributeValue, Consistency, StoreError, StoreResult, Table, Write, n, to_item,
};

/// The events a directory applies: a consumer that keeps a directory handles at least
/// these.
pub const EVENTS: EventSet = EventSet::of(&[
    EventType::UserRegistered,
    EventType::ProfileUpdated,
    EventType::AvatarChanged,
    EventType::UserDeleted,
    EventType::UserSuspended,
    EventType::UserReinstated,
    EventType::ContentRemoved,
    EventType::PostPublished,
    EventType::PostDeleted,
    EventType::FollowStarted,
    EventType::FollowEnded,
    EventType::UserBlocked,
    EventType::UserUnblocked,
]);

/// The events that tell a directory who the users are, for services whose directory holds
/// only users (not posts, follows or blocks).
pub const USER_EVENTS: EventSet = EventSet::of(&[
    EventType::UserRegistered,
    EventType::ProfileUpdated,
    EventType::AvatarChanged,
    EventType::UserDeleted,
    EventType::UserSuspended,
    EventType::UserReinstated,
]);

/// Tombstones outlive any redelivery (Kafka keeps records a week).
const TOMBSTONE_TTL_SECONDS: i64 = 8 * 24 * 3600;

/// What a service knows of a user who may author posts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Author {
    pub user_id: UserId,
    pub username: String,
    pub display_name: String,
    pub private: bool,
    #[serde(default)]
    pub avatar_key: Option<String>,
    /// The profile's version this copy is from: only a newer profile event replaces it.
    #[serde(default)]
    pub version: u64,
    /// While private: when the account turned private (RFC 3339), if its events say.
    #[serde(default)]
    pub private_since: Option<String>,
}

/// What a service knows of a published post.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PostRef {
    pub post_id: PostId,
    pub author_id: UserId,
}

/// Who is looking: the verified caller.
#[derive(Debug, Clone, Copy)]
pub struct Viewer<'a> {
    pub user_id: &'a UserId,
    /// Moderators and admins see everything.
    pub staff: bool,
}

/// What stands between a viewer and an author.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Access {
    /// The viewer is an approved follower of the author.
    pub follows: bool,
    /// One of the two blocks the other.
    pub blocked: bool,
    /// The author is banned: their content is hidden from all but staff and themselves.
    pub author_banned: bool,
}

/// Whether an account may still act, as far as this directory knows: deleted (a
/// tombstone), banned, or suspended until a time (RFC 3339, as `now_rfc3339` writes it,
/// so it compares as a string). An account the directory does not know (yet) is active.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Standing {
    pub deleted: bool,
    pub banned: bool,
    pub suspended_until: Option<String>,
}

/// Why an account's still-valid token may not write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inactive {
    Deleted,
    /// Suspended until (RFC 3339), or banned (`None`).
    Suspended {
        until: Option<String>,
    },
}

impl Standing {
    /// `None` if the account may act at `now` (RFC 3339).
    pub fn refusal(&self, now: &str) -> Option<Inactive> {
        if self.deleted {
            Some(Inactive::Deleted)
        } else if self.banned {
            Some(Inactive::Suspended { until: None })
        } else {
            self.suspended_until
                .as_ref()
                .filter(|until| until.as_str() > now)
                .map(|until| Inactive::Suspended {
                    until: Some(until.clone()),
                })
        }
    }
}

impl From<Inactive> for shutter_core::ApiError {
    fn from(inactive: Inactive) -> Self {
        match inactive {
            Inactive::Deleted => Self::Unauthorized("the account no longer exists"),
            Inactive::Suspended { until } => Self::AccountSuspended { until },
        }
    }
}

/// Refuses a write by `user_id` if its account is deleted (401), suspended or banned
/// (403 `account_suspended`) as far as `directory` knows. A suspension reaches the
/// directory by its event, seconds after staff decided it: in that window the account's
/// writes still pass (the access token's short life bounds it, and its refresh is refused
/// at once by identity).
pub async fn refuse_inactive<D: Directory + ?Sized>(
    directory: &D,
    user_id: &UserId,
) -> Result<(), shutter_core::ApiError> {
    let standing = directory
        .account_standing(user_id)
        .await
        .map_err(shutter_core::ApiError::internal)?;
    match standing.refusal(&shutter_core::now_rfc3339()) {
        None => Ok(()),
        Some(inactive) => Err(inactive.into()),
    }
}

#[async_trait]
pub trait Directory: Send + Sync {
    async fn author(&self, user_id: &UserId) -> StoreResult<Option<Author>>;
    async fn author_by_username(&self, username: &str) -> StoreResult<Option<Author>>;
    async fn post(&self, post_id: &PostId) -> StoreResult<Option<PostRef>>;
    /// Whether `viewer` follows `author`, and whether either blocks the other.
    async fn access(&self, viewer: &UserId, author: &UserId) -> StoreResult<Access>;
    /// Which of `others` block `viewer`, are blocked by them, or are banned: the authors
    /// whose entries a list filtered per entry leaves out, in one batch of reads (the
    /// default asks [`Directory::access`] once each).
    async fn blocked_among(
        &self,
        viewer: &UserId,
        others: &[UserId],
    ) -> StoreResult<HashSet<UserId>> {
        let mut blocked = HashSet::new();
        for other in others.iter().filter(|o| *o != viewer) {
            let access = self.access(viewer, other).await?;
            if access.blocked || access.author_banned {
                blocked.insert(other.clone());
            }
        }
        Ok(blocked)
    }
    /// The authors of those of `usernames` who exist (the others are left out), for the
    /// mentions of a text: in batches of reads (the default asks
    /// [`Directory::author_by_username`] once each).
    async fn authors_by_username(&self, usernames: &[String]) -> StoreResult<Vec<Author>> {
        let mut found = Vec::new();
        for username in usernames {
            if let Some(author) = self.author_by_username(username).await? {
                found.push(author);
            }
        }
        Ok(found)
    }
    /// Whether `user_id`'s account is deleted as far as this directory knows (it holds
    /// the account's tombstone): a deleted account's still-valid token is refused with
    /// it. An account the directory does not know (yet) is not deleted.
    async fn account_deleted(&self, user_id: &UserId) -> StoreResult<bool> {
        Ok(self.account_standing(user_id).await?.deleted)
    }
    /// Whether the account is deleted, suspended or banned (see [`refuse_inactive`]). No
    /// default: one that answered "active" would let a wrapper that forgot it fail open.
    async fn account_standing(&self, user_id: &UserId) -> StoreResult<Standing>;
    /// Applies one event of [`EVENTS`]; others change nothing. Idempotent.
    async fn apply(&self, event: &Envelope) -> StoreResult<()>;
}

/// The rule for who sees an author's posts (and their likes and comments): the author and
/// staff always; nobody the author blocks or who blocks the author; for a private account
/// only its approved followers; for a public one everyone else.
pub async fn may_see<D: Directory + ?Sized>(
    directory: &D,
    author: &Author,
    viewer: Viewer<'_>,
) -> StoreResult<bool> {
    if viewer.staff || *viewer.user_id == author.user_id {
        return Ok(true);
    }
    let access = directory.access(viewer.user_id, &author.user_id).await?;
    Ok(!access.blocked && !access.author_banned && (!author.private || access.follows))
}

/// The post and its author, if the post is published and `viewer` may see it. Anything
/// else is `None`, which callers answer as "not found", so a private account's posts are
/// not revealed to exist.
pub async fn visible_post<D: Directory + ?Sized>(
    directory: &D,
    post_id: &PostId,
    viewer: Viewer<'_>,
) -> StoreResult<Option<(PostRef, Author)>> {
    let Some(post) = directory.post(post_id).await? else {
        return Ok(None);
    };
    let Some(author) = directory.author(&post.author_id).await? else {
        return Ok(None);
    };
    Ok(may_see(directory, &author, viewer)
        .await?
        .then_some((post, author)))
}

/// Which pair a follow or block change is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum PairKind {
    Follow,
    Block,
}

impl PairKind {
    fn key(self) -> &'static str {
        match self {
            PairKind::Follow => "FOLLOW",
            PairKind::Block => "BLOCK",
        }
    }
}

/// The change an event makes to the directory: a pure decision, then I/O.
#[derive(Debug, PartialEq)]
enum Change {
    /// Create the author if unknown (registration); never overwrites.
    AuthorRegistered(Author),
    /// Replace the author's public facts (profile edits), unless deleted or the copy is
    /// from a newer version of the profile.
    AuthorUpdated(Author),
    AuthorDeleted {
        user_id: UserId,
        username: String,
    },
    /// The account's standing from `seq` on (a suspension, a ban, or neither).
    Standing {
        user_id: UserId,
        banned: bool,
        until: Option<String>,
        seq: u64,
    },
    PostPublished(PostRef),
    PostDeleted(PostId),
    /// A pair's follow or block holds or not from `seq` on.
    Pair {
        kind: PairKind,
        from: UserId,
        to: UserId,
        holds: bool,
        seq: u64,
    },
    Nothing,
}

fn change_of(event: &Event) -> Change {
    let profile = |p: &shutter_events::ProfileFacts| Author {
        user_id: p.user_id.clone(),
        username: p.username.clone(),
        display_name: p.display_name.clone(),
        private: p.private,
        avatar_key: p.avatar_key.clone(),
        version: p.version,
        private_since: p.private_since.clone().filter(|_| p.private),
    };
    let edge = |e: &shutter_events::EdgeFacts, holds| Change::Pair {
        kind: PairKind::Follow,
        from: e.follower_id.clone(),
        to: e.followee_id.clone(),
        holds,
        seq: e.seq,
    };
    let block = |b: &shutter_events::BlockFacts, holds| Change::Pair {
        kind: PairKind::Block,
        from: b.blocker_id.clone(),
        to: b.blocked_id.clone(),
        holds,
        seq: b.seq,
    };
    match event {
        Event::UserRegistered(u) => Change::AuthorRegistered(Author {
            user_id: u.user_id.clone(),
            username: u.username.clone(),
            display_name: u.username.clone(),
            private: false,
            avatar_key: None,
            version: 0,
            private_since: None,
        }),
        Event::ProfileUpdated(p) | Event::AvatarChanged(p) => Change::AuthorUpdated(profile(p)),
        Event::UserDeleted(u) => Change::AuthorDeleted {
            user_id: u.user_id.clone(),
            username: u.username.clone(),
        },
        Event::PostPublished(p) => Change::PostPublished(PostRef {
            post_id: p.post_id.clone(),
            author_id: p.author_id.clone(),
        }),
        Event::PostDeleted(p) => Change::PostDeleted(p.post_id.clone()),
        // A removed post is gone for everyone but its author, whom the posts service
        // serves without asking the directory.
        Event::ContentRemoved(r) if r.kind == shutter_events::RemovedKind::Post => {
            Change::PostDeleted(r.post_id.clone())
        }
        Event::UserSuspended(u) => Change::Standing {
            user_id: u.user_id.clone(),
            banned: u.banned,
            until: u.until.clone(),
            seq: u.seq,
        },
        Event::UserReinstated(u) => Change::Standing {
            user_id: u.user_id.clone(),
            banned: false,
            until: None,
            seq: u.seq,
        },
        Event::FollowStarted(e) => edge(e, true),
        Event::FollowEnded(e) => edge(e, false),
        Event::UserBlocked(b) => block(b, true),
        Event::UserUnblocked(b) => block(b, false),
        _ => Change::Nothing,
    }
}

/// The DynamoDB adapter: items `DIR#AUTHOR#<id>`, `DIR#USERNAME#<name>`,
/// `DIR#POST#<id>` and `DIR#<FOLLOW|BLOCK>#<from>#<to>` (sort key `DIR`) in the host
/// service's table.
#[derive(Debug, Clone)]
pub struct DynamoDirectory {
    pub table: Table,
}

const SK: &str = "DIR";

fn author_pk(user_id: &str) -> String {
    format!("DIR#AUTHOR#{user_id}")
}
fn username_pk(username: &str) -> String {
    format!("DIR#USERNAME#{}", username.to_ascii_lowercase())
}
fn standing_pk(user_id: &str) -> String {
    format!("DIR#STANDING#{user_id}")
}
fn post_pk(post_id: &str) -> String {
    format!("DIR#POST#{post_id}")
}
fn pair_pk(kind: PairKind, from: &str, to: &str) -> String {
    format!("DIR#{}#{from}#{to}", kind.key())
}

#[derive(Debug, Serialize, Deserialize)]
struct UsernameEntry {
    user_id: UserId,
}

/// A write whose condition failing means "already applied": the event changes nothing.
fn applied(result: StoreResult<()>) -> StoreResult<()> {
    match result {
        Err(StoreError::Conflict(_)) => Ok(()),
        other => other,
    }
}

impl DynamoDirectory {
    async fn live<T: serde::de::DeserializeOwned>(&self, pk: &str) -> StoreResult<Option<T>> {
        let Some(item) = self.table.get_item(pk, SK).await? else {
            return Ok(None);
        };
        if shutter_store::bool_attr(&item, "deleted") {
            return Ok(None);
        }
        shutter_store::from_item(item).map(Some)
    }

    /// Writes `value` at `pk` unless a tombstone is there (or, with `only_new`, anything).
    async fn put<T: Serialize>(&self, pk: &str, value: &T, only_new: bool) -> StoreResult<()> {
        let mut item = to_item(value)?;
        item.extend(shutter_store::key(pk, SK));
        let write = if only_new {
            Write::put(item).if_absent("exists")
        } else {
            Write::put(item).when(
                "tombstone",
                "attribute_not_exists(pk) OR attribute_not_exists(deleted)",
            )
        };
        applied(self.table.write(write).await)
    }

    /// Points `author`'s username at them, unless their account is deleted (their author
    /// item is a tombstone), so a late or redelivered event of a deleted account cannot
    /// take the name back from its next owner. An older tombstone of the name itself (as
    /// deletions left them before they were keyed by user) is overwritten.
    async fn point_username(&self, author: &Author) -> StoreResult<()> {
        let mut entry = to_item(&UsernameEntry {
            user_id: author.user_id.clone(),
        })?;
        entry.extend(shutter_store::key(username_pk(&author.username), SK));
        let writes = vec![
            account_alive(&author.user_id, "tombstone"),
            Write::put(entry),
        ];
        applied(self.table.transact(writes).await)
    }

    /// Replaces the author's copy unless a tombstone is there or the copy is from a newer
    /// version of the profile (a redelivered or late older event must not bring back the
    /// privacy it had). An event without a version (0) replaces any live copy.
    async fn put_author(&self, author: &Author) -> StoreResult<()> {
        if author.version == 0 {
            return self.put(&author_pk(&author.user_id), author, false).await;
        }
        let mut item = to_item(author)?;
        item.extend(shutter_store::key(author_pk(&author.user_id), SK));
        let write = Write::put(item)
            .when(
                "tombstone_or_newer",
                "attribute_not_exists(pk) OR (attribute_not_exists(deleted) \
                 AND (attribute_not_exists(version) OR version < :version))",
            )
            .value(":version", n(author.version));
        applied(self.table.write(write).await)
    }

    async fn tombstone(&self, pk: &str) -> StoreResult<()> {
        let mut item = shutter_store::key(pk, SK);
        item.insert("deleted".to_owned(), AttributeValue::Bool(true));
        item.insert(
            "ttl".to_owned(),
            n(shutter_store::epoch_seconds() + TOMBSTONE_TTL_SECONDS),
        );
        self.table.write(Write::put(item)).await
    }
}

/// A transaction guard that fails with `label` if `user_id`'s account is deleted (its
/// directory item is a tombstone): a deleted account's still-valid token cannot make a
/// change that commits after the deletion was applied.
pub fn account_alive(user_id: &UserId, label: &'static str) -> Write {
    Write::check(
        shutter_store::key(author_pk(user_id), SK),
        label,
        "attribute_not_exists(deleted)",
    )
}

#[async_trait]
impl Directory for DynamoDirectory {
    async fn author(&self, user_id: &UserId) -> StoreResult<Option<Author>> {
        self.live(&author_pk(user_id)).await
    }

    async fn author_by_username(&self, username: &str) -> StoreResult<Option<Author>> {
        match self.live::<UsernameEntry>(&username_pk(username)).await? {
            Some(entry) => self.author(&entry.user_id).await,
            None => Ok(None),
        }
    }

    async fn post(&self, post_id: &PostId) -> StoreResult<Option<PostRef>> {
        self.live(&post_pk(post_id)).await
    }

    /// Two batches of reads whatever the number: the usernames' entries, then their
    /// authors (tombstones of either left out), in the order of `usernames`.
    async fn authors_by_username(&self, usernames: &[String]) -> StoreResult<Vec<Author>> {
        use std::collections::BTreeSet;
        let live = |item: &shutter_store::Item| !shutter_store::bool_attr(item, "deleted");
        // Each key once: DynamoDB refuses a batch that names a key twice.
        let names: BTreeSet<String> = usernames.iter().map(|u| username_pk(u)).collect();
        let entries = self
            .table
            .batch_get(names.iter().map(|pk| shutter_store::key(pk, SK)).collect())
            .await?;
        let mut user_of: HashMap<String, UserId> = HashMap::new();
        for item in entries.into_iter().filter(live) {
            let pk = shutter_store::string_attr(&item, "pk").map(str::to_owned);
            let entry: UsernameEntry = shutter_store::from_item(item)?;
            if let Some(pk) = pk {
                user_of.insert(pk, entry.user_id);
            }
        }
        let ids: BTreeSet<String> = user_of.values().map(|id| author_pk(id)).collect();
        let mut authors: HashMap<UserId, Author> = HashMap::new();
        let items = self
            .table
            .batch_get(ids.iter().map(|pk| shutter_store::key(pk, SK)).collect())
            .await?;
        for item in items.into_iter().filter(live) {
            let author: Author = shutter_store::from_item(item)?;
            authors.insert(author.user_id.clone(), author);
        }
        Ok(usernames
            .iter()
            .filter_map(|u| user_of.get(&username_pk(u)))
            .filter_map(|id| authors.get(id).cloned())
            .collect())
    }

    /// One batch read: the author's item (a tombstone?) and their standing.
    async fn account_standing(&self, user_id: &UserId) -> StoreResult<Standing> {
        let (author, standing) = (author_pk(user_id), standing_pk(user_id));
        let keys = vec![
            shutter_store::key(&author, SK),
            shutter_store::key(&standing, SK),
        ];
        let (items, _) = self
            .table
            .batch_get_counted(keys, Consistency::Eventual)
            .await?;
        let mut found = Standing::default();
        for item in &items {
            match shutter_store::string_attr(item, "pk") {
                Some(pk) if pk == author => {
                    found.deleted = shutter_store::bool_attr(item, "deleted");
                }
                Some(pk) if pk == standing => {
                    found.banned = shutter_store::bool_attr(item, "banned");
                    found.suspended_until =
                        shutter_store::string_attr(item, "until").map(str::to_owned);
                }
                _ => {}
            }
        }
        Ok(found)
    }

    async fn apply(&self, event: &Envelope) -> StoreResult<()> {
        match change_of(&event.event) {
            Change::AuthorRegistered(author) => {
                self.point_username(&author).await?;
                self.put(&author_pk(&author.user_id), &author, true).await
            }
            Change::AuthorUpdated(author) => {
                self.point_username(&author).await?;
                self.put_author(&author).await
            }
            Change::AuthorDeleted { user_id, username } => {
                self.tombstone(&author_pk(&user_id)).await?;
                // The tombstone is the user's, not the name's: the name's entry goes only
                // while it is still this user's, and its next owner is found at once.
                let release = Write::delete(shutter_store::key(username_pk(&username), SK))
                    .when("moved", "user_id = :id")
                    .value(":id", AttributeValue::S(user_id.to_string()));
                applied(self.table.write(release).await)
            }
            Change::Standing {
                user_id,
                banned,
                until,
                seq,
            } => {
                let mut item = shutter_store::key(standing_pk(&user_id), SK);
                item.insert("banned".to_owned(), AttributeValue::Bool(banned));
                if let Some(until) = until {
                    item.insert("until".to_owned(), AttributeValue::S(until));
                }
                item.insert("seq".to_owned(), n(seq));
                // Only a newer suspension or reinstatement replaces an older one.
                let write = Write::put(item)
                    .when("older", "attribute_not_exists(pk) OR seq < :seq")
                    .value(":seq", n(seq));
                applied(self.table.write(write).await)
            }
            Change::PostPublished(post) => self.put(&post_pk(&post.post_id), &post, false).await,
            Change::PostDeleted(post_id) => self.tombstone(&post_pk(&post_id)).await,
            Change::Pair {
                kind,
                from,
                to,
                holds,
                seq,
            } => {
                let mut item = shutter_store::key(pair_pk(kind, &from, &to), SK);
                item.insert("holds".to_owned(), AttributeValue::Bool(holds));
                item.insert("seq".to_owned(), n(seq));
                // Only a newer change of the pair replaces an older one.
                let write = Write::put(item)
                    .when("older", "attribute_not_exists(pk) OR seq < :seq")
                    .value(":seq", n(seq));
                applied(self.table.write(write).await)
            }
            Change::Nothing => Ok(()),
        }
    }

    async fn access(&self, viewer: &UserId, author: &UserId) -> StoreResult<Access> {
        let keys = [
            pair_pk(PairKind::Follow, viewer, author),
            pair_pk(PairKind::Block, viewer, author),
            pair_pk(PairKind::Block, author, viewer),
            standing_pk(author),
        ];
        let to_read = keys.iter().map(|pk| shutter_store::key(pk, SK)).collect();
        let (items, _) = self
            .table
            .batch_get_counted(to_read, Consistency::Eventual)
            .await?;
        let holding: Vec<&str> = items
            .iter()
            .filter(|item| {
                shutter_store::bool_attr(item, "holds") || shutter_store::bool_attr(item, "banned")
            })
            .filter_map(|item| shutter_store::string_attr(item, "pk"))
            .collect();
        Ok(Access {
            follows: holding.contains(&keys[0].as_str()),
            blocked: holding.contains(&keys[1].as_str()) || holding.contains(&keys[2].as_str()),
            author_banned: holding.contains(&keys[3].as_str()),
        })
    }

    /// Three keys per distinct other user (a block each way, their standing), read in
    /// batches of 100.
    async fn blocked_among(
        &self,
        viewer: &UserId,
        others: &[UserId],
    ) -> StoreResult<HashSet<UserId>> {
        let mut by_key: HashMap<String, &UserId> = HashMap::new();
        for other in others.iter().filter(|o| *o != viewer) {
            by_key.insert(pair_pk(PairKind::Block, viewer, other), other);
            by_key.insert(pair_pk(PairKind::Block, other, viewer), other);
            by_key.insert(standing_pk(other), other);
        }
        if by_key.is_empty() {
            return Ok(HashSet::new());
        }
        // Each key once: DynamoDB refuses a batch that names a key twice.
        let to_read = by_key.keys().map(|pk| shutter_store::key(pk, SK)).collect();
        let (items, _) = self
            .table
            .batch_get_counted(to_read, Consistency::Eventual)
            .await?;
        Ok(items
            .iter()
            .filter(|item| {
                shutter_store::bool_attr(item, "holds") || shutter_store::bool_attr(item, "banned")
            })
            .filter_map(|item| shutter_store::string_attr(item, "pk"))
            .filter_map(|pk| by_key.get(pk).map(|other| (*other).clone()))
            .collect())
    }
}

/// (kind, from, to) of a follow or block pair.
type PairKey = (PairKind, UserId, UserId);
/// (holds, seq) of a pair.
type PairState = (bool, u64);

/// (banned, until, seq) of an account's standing.
type StandingState = (bool, Option<String>, u64);

/// An in-memory directory for unit tests, with the same rules.
#[derive(Debug, Default)]
pub struct MemoryDirectory {
    authors: Mutex<HashMap<UserId, Option<Author>>>,
    posts: Mutex<HashMap<PostId, Option<PostRef>>>,
    pairs: Mutex<HashMap<PairKey, PairState>>,
    standings: Mutex<HashMap<UserId, StandingState>>,
}

fn poisoned<T>(_: T) -> StoreError {
    StoreError::Unavailable("poisoned lock".into())
}

impl MemoryDirectory {
    /// Adds an author directly (test set-up).
    pub fn add_author(&self, author: Author) {
        if let Ok(mut authors) = self.authors.lock() {
            authors.insert(author.user_id.clone(), Some(author));
        }
    }

    /// Adds a published post directly (test set-up).
    pub fn add_post(&self, post: PostRef) {
        if let Ok(mut posts) = self.posts.lock() {
            posts.insert(post.post_id.clone(), Some(post));
        }
    }
}

#[async_trait]
impl Directory for MemoryDirectory {
    async fn author(&self, user_id: &UserId) -> StoreResult<Option<Author>> {
        Ok(self
            .authors
            .lock()
            .map_err(poisoned)?
            .get(user_id)
            .cloned()
            .flatten())
    }

    async fn author_by_username(&self, username: &str) -> StoreResult<Option<Author>> {
        Ok(self
            .authors
            .lock()
            .map_err(poisoned)?
            .values()
            .flatten()
            .find(|a| a.username.eq_ignore_ascii_case(username))
            .cloned())
    }

    async fn post(&self, post_id: &PostId) -> StoreResult<Option<PostRef>> {
        Ok(self
            .posts
            .lock()
            .map_err(poisoned)?
            .get(post_id)
            .cloned()
            .flatten())
    }

    async fn account_standing(&self, user_id: &UserId) -> StoreResult<Standing> {
        let deleted = matches!(
            self.authors.lock().map_err(poisoned)?.get(user_id),
            Some(None)
        );
        let (banned, suspended_until) = self
            .standings
            .lock()
            .map_err(poisoned)?
            .get(user_id)
            .map(|(banned, until, _)| (*banned, until.clone()))
            .unwrap_or_default();
        Ok(Standing {
            deleted,
            banned,
            suspended_until,
        })
    }

    async fn apply(&self, event: &Envelope) -> StoreResult<()> {
        let mut authors = self.authors.lock().map_err(poisoned)?;
        let mut posts = self.posts.lock().map_err(poisoned)?;
        match change_of(&event.event) {
            Change::AuthorRegistered(a) => {
                authors.entry(a.user_id.clone()).or_insert(Some(a));
            }
            Change::AuthorUpdated(a) => {
                if let Some(slot @ Some(_)) = authors.get_mut(&a.user_id) {
                    let newer =
                        a.version == 0 || slot.as_ref().is_none_or(|c| c.version < a.version);
                    if newer {
                        *slot = Some(a);
                    }
                } else if !authors.contains_key(&a.user_id) {
                    authors.insert(a.user_id.clone(), Some(a));
                }
            }
            Change::AuthorDeleted { user_id, .. } => {
                authors.insert(user_id, None);
            }
            Change::PostPublished(p) => {
                posts.entry(p.post_id.clone()).or_insert(Some(p));
            }
            Change::PostDeleted(id) => {
                posts.insert(id, None);
            }
            Change::Standing {
                user_id,
                banned,
                until,
                seq,
            } => {
                let mut standings = self.standings.lock().map_err(poisoned)?;
                let slot = standings.entry(user_id).or_insert((false, None, 0));
                if slot.2 < seq {
                    *slot = (banned, until, seq);
                }
            }
            Change::Pair {
                kind,
                from,
                to,
                holds,
                seq,
            } => {
                let mut pairs = self.pairs.lock().map_err(poisoned)?;
                let slot = pairs.entry((kind, from, to)).or_insert((false, 0));
                if slot.1 < seq {
                    *slot = (holds, seq);
                }
            }
            Change::Nothing => {}
        }
        Ok(())
    }

    async fn access(&self, viewer: &UserId, author: &UserId) -> StoreResult<Access> {
        let pairs = self.pairs.lock().map_err(poisoned)?;
        let holds = |kind, from: &UserId, to: &UserId| {
            pairs
                .get(&(kind, from.clone(), to.clone()))
                .is_some_and(|p| p.0)
        };
        let author_banned = self
            .standings
            .lock()
            .map_err(poisoned)?
            .get(author)
            .is_some_and(|s| s.0);
        Ok(Access {
            follows: holds(PairKind::Follow, viewer, author),
            blocked: holds(PairKind::Block, viewer, author)
                || holds(PairKind::Block, author, viewer),
            author_banned,
        })
    }

    async fn blocked_among(
        &self,
        viewer: &UserId,
        others: &[UserId],
    ) -> StoreResult<HashSet<UserId>> {
        let pairs = self.pairs.lock().map_err(poisoned)?;
        let standings = self.standings.lock().map_err(poisoned)?;
        let holds = |from: &UserId, to: &UserId| {
            pairs
                .get(&(PairKind::Block, from.clone(), to.clone()))
                .is_some_and(|p| p.0)
        };
        let banned = |u: &UserId| standings.get(u).is_some_and(|s| s.0);
        Ok(others
            .iter()
            .filter(|o| *o != viewer && (holds(viewer, o) || holds(o, viewer) || banned(o)))
            .cloned()
            .collect())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use shutter_events::{BlockFacts, EdgeFacts, PostDeleted, PostFacts, ProfileFacts};

    fn env(event: Event) -> Envelope {
        Envelope::new(event, None, "corr")
    }

    fn ids() -> (UserId, UserId, UserId, PostId) {
        (
            UserId::generate(),
            UserId::generate(),
            UserId::generate(),
            PostId::generate(),
        )
    }

    fn registered(user: &UserId, name: &str) -> Envelope {
        env(Event::UserRegistered(shutter_events::UserRegistered {
            user_id: user.clone(),
            username: name.into(),
            created_at: "t".into(),
        }))
    }

    fn facts(post: &PostId, author: &UserId) -> PostFacts {
        PostFacts {
            post_id: post.clone(),
            author_id: author.clone(),
            caption: String::new(),
            location: None,
            hashtags: vec![],
            mentions: vec![],
            created_at: "t".into(),
            version: 1,
            media: vec![],
        }
    }

    fn profile(user: &UserId, private: bool) -> Envelope {
        env(Event::ProfileUpdated(ProfileFacts {
            user_id: user.clone(),
            username: "ann".into(),
            display_name: "Ann".into(),
            private,
            avatar_key: None,
            version: 0,
            private_since: None,
        }))
    }

    fn profile_at(user: &UserId, private: bool, version: u64) -> Envelope {
        env(Event::ProfileUpdated(ProfileFacts {
            user_id: user.clone(),
            username: "ann".into(),
            display_name: "Ann".into(),
            private,
            avatar_key: None,
            version,
            private_since: private.then(|| format!("2026-01-01T00:00:0{version}.000Z")),
        }))
    }

    #[tokio::test]
    async fn an_older_profile_version_never_replaces_a_newer_one() {
        // GIVEN ann turned private (version 2), then public (version 3)
        let (ann, _, _, _) = ids();
        let dir = MemoryDirectory::default();
        dir.apply(&registered(&ann, "ann")).await.unwrap();
        dir.apply(&profile_at(&ann, true, 2)).await.unwrap();
        let private = dir.author(&ann).await.unwrap().unwrap();
        assert!(private.private);
        assert_eq!(
            private.private_since.as_deref(),
            Some("2026-01-01T00:00:02.000Z")
        );
        dir.apply(&profile_at(&ann, false, 3)).await.unwrap();
        // WHEN the private version is delivered again, late
        dir.apply(&profile_at(&ann, true, 2)).await.unwrap();
        // THEN the copy stays public, from version 3
        let now = dir.author(&ann).await.unwrap().unwrap();
        assert!(!now.private);
        assert_eq!((now.version, now.private_since), (3, None));
    }

    fn viewer(id: &UserId) -> Viewer<'_> {
        Viewer {
            user_id: id,
            staff: false,
        }
    }

    fn suspended(user: &UserId, banned: bool, until: Option<&str>, seq: u64) -> Envelope {
        env(Event::UserSuspended(shutter_events::UserSuspended {
            user_id: user.clone(),
            username: "ann".into(),
            banned,
            until: until.map(str::to_owned),
            seq,
        }))
    }

    #[tokio::test]
    async fn a_suspension_refuses_writes_until_it_ends_and_a_late_one_does_not_return() {
        let (ann, _, _, _) = ids();
        let dir = MemoryDirectory::default();
        dir.apply(&registered(&ann, "ann")).await.unwrap();
        assert!(refuse_inactive(&dir, &ann).await.is_ok());
        // GIVEN a suspension until far in the future (seq 1)
        let until = "2999-01-01T00:00:00.000Z";
        dir.apply(&suspended(&ann, false, Some(until), 1))
            .await
            .unwrap();
        let refused = refuse_inactive(&dir, &ann).await.unwrap_err();
        assert_eq!(refused.problem().code, "account_suspended");
        assert_eq!(refused.problem().until.as_deref(), Some(until));
        // and one that ended already refuses nothing
        let standing = dir.account_standing(&ann).await.unwrap();
        assert_eq!(standing.refusal("2999-01-01T00:00:00.001Z"), None);
        // WHEN it is lifted (seq 2) and the suspension is delivered again, late
        dir.apply(&env(Event::UserReinstated(
            shutter_events::UserReinstated {
                user_id: ann.clone(),
                username: "ann".into(),
                seq: 2,
            },
        )))
        .await
        .unwrap();
        dir.apply(&suspended(&ann, false, Some(until), 1))
            .await
            .unwrap();
        // THEN the account stays active
        assert!(refuse_inactive(&dir, &ann).await.is_ok());
    }

    #[tokio::test]
    async fn a_banned_authors_posts_and_entries_are_hidden_from_all_but_them_and_staff() {
        let (ann, bob, staff, post) = ids();
        let dir = MemoryDirectory::default();
        dir.apply(&registered(&ann, "ann")).await.unwrap();
        dir.apply(&env(Event::PostPublished(facts(&post, &ann))))
            .await
            .unwrap();
        dir.apply(&suspended(&ann, true, None, 1)).await.unwrap();
        assert!(
            visible_post(&dir, &post, viewer(&bob))
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            visible_post(&dir, &post, viewer(&ann))
                .await
                .unwrap()
                .is_some()
        );
        let as_staff = Viewer {
            user_id: &staff,
            staff: true,
        };
        assert!(visible_post(&dir, &post, as_staff).await.unwrap().is_some());
        let hidden = dir.blocked_among(&bob, &[ann.clone(), staff.clone()]).await;
        assert_eq!(hidden.unwrap(), HashSet::from([ann.clone()]));
        let refused = refuse_inactive(&dir, &ann).await.unwrap_err();
        assert_eq!((refused.status(), refused.problem().until), (403, None));
    }

    #[tokio::test]
    async fn a_removed_post_is_gone_from_the_directory() {
        let (ann, bob, staff, post) = ids();
        let dir = MemoryDirectory::default();
        dir.apply(&registered(&ann, "ann")).await.unwrap();
        dir.apply(&env(Event::PostPublished(facts(&post, &ann))))
            .await
            .unwrap();
        dir.apply(&env(Event::ContentRemoved(
            shutter_events::ContentRemoved {
                kind: shutter_events::RemovedKind::Post,
                target_id: post.to_string(),
                post_id: post.clone(),
                author_id: ann.clone(),
                note: "spam".into(),
                removed_by: staff,
                removed_at: "2026-01-01T00:00:00.000Z".into(),
            },
        )))
        .await
        .unwrap();
        dir.apply(&env(Event::PostPublished(facts(&post, &ann))))
            .await
            .unwrap();
        assert!(
            visible_post(&dir, &post, viewer(&bob))
                .await
                .unwrap()
                .is_none()
        );
    }

    #[tokio::test]
    async fn a_private_authors_posts_are_seen_by_the_author_and_staff_only() {
        let (ann, bob, staff, post) = ids();
        let dir = MemoryDirectory::default();
        dir.apply(&registered(&ann, "ann")).await.unwrap();
        dir.apply(&env(Event::PostPublished(facts(&post, &ann))))
            .await
            .unwrap();
        assert!(
            visible_post(&dir, &post, viewer(&bob))
                .await
                .unwrap()
                .is_some()
        );
        dir.apply(&profile(&ann, true)).await.unwrap();
        assert!(
            visible_post(&dir, &post, viewer(&bob))
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            visible_post(&dir, &post, viewer(&ann))
                .await
                .unwrap()
                .is_some()
        );
        let as_staff = Viewer {
            user_id: &staff,
            staff: true,
        };
        assert!(visible_post(&dir, &post, as_staff).await.unwrap().is_some());
        let found = dir.author_by_username("ANN").await.unwrap().unwrap();
        assert_eq!(found.display_name, "Ann");
    }

    #[tokio::test]
    async fn approved_followers_see_a_private_account_and_blocks_hide_both_ways() {
        let (ann, bob, cat, post) = ids();
        let dir = MemoryDirectory::default();
        dir.apply(&registered(&ann, "ann")).await.unwrap();
        dir.apply(&profile(&ann, true)).await.unwrap();
        dir.add_post(PostRef {
            post_id: post.clone(),
            author_id: ann.clone(),
        });
        let edge = |started: bool, seq: u64| {
            let e = EdgeFacts {
                follower_id: bob.clone(),
                followee_id: ann.clone(),
                seq,
                at: "t".into(),
                reason: None,
            };
            env(if started {
                Event::FollowStarted(e)
            } else {
                Event::FollowEnded(e)
            })
        };
        assert!(
            visible_post(&dir, &post, viewer(&bob))
                .await
                .unwrap()
                .is_none()
        );
        dir.apply(&edge(true, 2)).await.unwrap();
        assert!(
            visible_post(&dir, &post, viewer(&bob))
                .await
                .unwrap()
                .is_some()
        );
        // A late, older event does not undo a newer one.
        dir.apply(&edge(false, 1)).await.unwrap();
        assert!(
            visible_post(&dir, &post, viewer(&bob))
                .await
                .unwrap()
                .is_some()
        );
        dir.apply(&edge(false, 3)).await.unwrap();
        assert!(
            visible_post(&dir, &post, viewer(&bob))
                .await
                .unwrap()
                .is_none()
        );
        // A block hides a public account's posts both ways.
        dir.apply(&profile(&ann, false)).await.unwrap();
        assert!(
            visible_post(&dir, &post, viewer(&cat))
                .await
                .unwrap()
                .is_some()
        );
        let block = |blocked: bool, seq: u64| {
            let b = BlockFacts {
                blocker_id: cat.clone(),
                blocked_id: ann.clone(),
                seq,
                at: "t".into(),
            };
            env(if blocked {
                Event::UserBlocked(b)
            } else {
                Event::UserUnblocked(b)
            })
        };
        dir.apply(&block(true, 1)).await.unwrap();
        assert!(
            visible_post(&dir, &post, viewer(&cat))
                .await
                .unwrap()
                .is_none()
        );
        dir.apply(&block(false, 2)).await.unwrap();
        assert!(
            visible_post(&dir, &post, viewer(&cat))
                .await
                .unwrap()
                .is_some()
        );
    }

    #[tokio::test]
    async fn deletions_win_over_late_or_repeated_events() {
        let (ann, _, _, post) = ids();
        let dir = MemoryDirectory::default();
        let published = env(Event::PostPublished(facts(&post, &ann)));
        dir.apply(&registered(&ann, "ann")).await.unwrap();
        dir.apply(&published).await.unwrap();
        dir.apply(&env(Event::PostDeleted(PostDeleted {
            post_id: post.clone(),
            author_id: ann.clone(),
            deleted_by: ann.clone(),
        })))
        .await
        .unwrap();
        dir.apply(&published).await.unwrap();
        assert_eq!(dir.post(&post).await.unwrap(), None);
        dir.apply(&env(Event::UserDeleted(shutter_events::UserDeleted {
            user_id: ann.clone(),
            username: "ann".into(),
        })))
        .await
        .unwrap();
        dir.apply(&registered(&ann, "ann")).await.unwrap();
        assert_eq!(dir.author(&ann).await.unwrap(), None);
    }

    #[tokio::test]
    async fn blocked_among_names_the_users_blocked_either_way_as_far_as_the_events_say() {
        // GIVEN ann, who blocks bob and is blocked by cat; dan, a block lifted since
        let (ann, bob, cat, _) = ids();
        let dan = UserId::generate();
        let dir = MemoryDirectory::default();
        let block = |from: &UserId, to: &UserId, holds: bool, seq: u64| {
            let b = BlockFacts {
                blocker_id: from.clone(),
                blocked_id: to.clone(),
                seq,
                at: "t".into(),
            };
            env(if holds {
                Event::UserBlocked(b)
            } else {
                Event::UserUnblocked(b)
            })
        };
        let everyone = [ann.clone(), bob.clone(), cat.clone(), dan.clone()];
        // WHEN no block event has arrived yet THEN nobody is hidden (the window)
        assert!(dir.blocked_among(&ann, &everyone).await.unwrap().is_empty());
        dir.apply(&block(&ann, &bob, true, 1)).await.unwrap();
        dir.apply(&block(&cat, &ann, true, 1)).await.unwrap();
        dir.apply(&block(&dan, &ann, true, 1)).await.unwrap();
        dir.apply(&block(&dan, &ann, false, 2)).await.unwrap();
        // THEN both directions count, a lifted block does not, and ann is not her own
        let hidden = dir.blocked_among(&ann, &everyone).await.unwrap();
        assert_eq!(hidden, HashSet::from([bob.clone(), cat.clone()]));
        // AND the default, one access read per user, agrees
        struct PerUser<'a>(&'a MemoryDirectory);
        #[async_trait]
        impl Directory for PerUser<'_> {
            async fn author(&self, u: &UserId) -> StoreResult<Option<Author>> {
                self.0.author(u).await
            }
            async fn author_by_username(&self, n: &str) -> StoreResult<Option<Author>> {
                self.0.author_by_username(n).await
            }
            async fn post(&self, p: &PostId) -> StoreResult<Option<PostRef>> {
                self.0.post(p).await
            }
            async fn access(&self, v: &UserId, a: &UserId) -> StoreResult<Access> {
                self.0.access(v, a).await
            }
            async fn account_standing(&self, u: &UserId) -> StoreResult<Standing> {
                self.0.account_standing(u).await
            }
            async fn apply(&self, e: &Envelope) -> StoreResult<()> {
                self.0.apply(e).await
            }
        }
        let default = PerUser(&dir).blocked_among(&ann, &everyone).await.unwrap();
        assert_eq!(default, hidden);
    }

    #[test]
    fn the_directory_reads_exactly_its_events() {
        let (ann, bob, _, post) = ids();
        let like = Event::LikeAdded(shutter_events::LikeFacts {
            post_id: post,
            post_author_id: ann,
            user_id: bob,
            seq: 1,
            at: "t".into(),
        });
        assert_eq!(change_of(&like), Change::Nothing);
        assert!(!EVENTS.contains(EventType::LikeAdded));
        assert!(USER_EVENTS.iter().all(|t| EVENTS.contains(t)));
        for t in EVENTS.iter() {
            assert!(
                ["User", "Profile", "Avatar", "Post", "Follow", "Content"]
                    .iter()
                    .any(|p| t.as_str().starts_with(p)),
                "{t:?}"
            );
        }
    }
}
