//! The indexer's decisions, pure (no I/O): which documents a batch needs, how its effects
//! fold over them, which conditional writes that makes, and what OpenSearch's answers to
//! them mean. [`super`] does the reads and writes around these.
//!
//! - Edges are written with their `seq` as external version: OpenSearch itself refuses an
//!   older or equal one, so a redelivered or out-of-order event changes nothing.
//! - Posts and users are folded in batch order over the documents as read: a post keeps
//!   its own `version` and takes only newer facts; deletes leave tombstones that nothing
//!   revives; a registration only fills a gap the profile events left. What changed is
//!   written conditionally on the read (`if_seq_no`, or `create` for a new document).
//! - A user's standing (a ban, lifted or not) is a versioned fact of its own: the user
//!   document keeps the highest `seq` of `UserSuspended` / `UserReinstated` folded in
//!   (`standing_seq`) and takes only a higher one, as a post takes only a newer
//!   `version`; profile events leave it as it is. A change of the ban re-flags the
//!   author's posts (`author_banned`), as a change of privacy does (`author_private`).
//! - `like_count` is the number of active like edges, recounted for the posts whose
//!   likes moved (an absolute value, so replays cannot drift); a new post document starts
//!   from the count too.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::effects::Effect;
use crate::docs::{EdgeKind, POSTS_INDEX, PostDoc, RELATIONS_INDEX, USERS_INDEX, UserDoc};
use crate::store::{BulkOp, ItemResult, Outcome, Stored, Version};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Bulk operations, each with the batch records behind it (given up together if
/// OpenSearch refuses the document).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Writes {
    pub ops: Vec<BulkOp>,
    pub owners: Vec<Vec<usize>>,
}

impl Writes {
    fn push(&mut self, op: BulkOp, owners: Vec<usize>) {
        self.ops.push(op);
        self.owners.push(owners);
    }
}

/// The edges of a batch: their writes, and the posts whose likes they move.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EdgePlan {
    pub writes: Writes,
    pub liked_posts: BTreeSet<String>,
}

/// Every edge of `effects` as a write versioned by its `seq`.
pub fn edges(effects: &[(usize, Effect)]) -> Result<EdgePlan, serde_json::Error> {
    let mut plan = EdgePlan::default();
    for (record, effect) in effects {
        let Effect::Edge(edge) = effect else { continue };
        if edge.kind == EdgeKind::Like {
            plan.liked_posts.insert(edge.b.clone());
        }
        plan.writes.push(
            BulkOp::Index {
                index: RELATIONS_INDEX.to_owned(),
                id: edge.id(),
                source: serde_json::to_value(edge)?,
                version: Version::External(edge.seq),
            },
            vec![*record],
        );
    }
    Ok(plan)
}

/// The post and user documents a batch must read (sorted, each once).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reads {
    pub posts: Vec<String>,
    pub users: Vec<String>,
}

impl Reads {
    pub fn is_empty(&self) -> bool {
        self.posts.is_empty() && self.users.is_empty()
    }
}

/// The posts and users `effects` touch, with the posts whose likes moved; a post's author
/// is read for its privacy flag.
pub fn reads(effects: &[(usize, Effect)], liked_posts: &BTreeSet<String>) -> Reads {
    let mut posts = liked_posts.clone();
    let mut users = BTreeSet::new();
    for (_, effect) in effects {
        match effect {
            Effect::Post(f) => {
                posts.insert(f.post_id.to_string());
                users.insert(f.author_id.to_string());
            }
            Effect::PostGone(g) => {
                posts.insert(g.post_id.to_string());
            }
            Effect::Registered(r) => {
                users.insert(r.user_id.to_string());
            }
            Effect::Profile(p) => {
                users.insert(p.user_id.to_string());
            }
            Effect::UserGone(g) => {
                users.insert(g.user_id.to_string());
            }
            Effect::Standing(st) => {
                users.insert(st.user_id.to_string());
            }
            Effect::Edge(_) => {}
        }
    }
    Reads {
        posts: posts.into_iter().collect(),
        users: users.into_iter().collect(),
    }
}

/// The posts whose likes must be counted: those whose likes moved, and those new to the
/// index (a like may have arrived before the post).
pub fn to_count(
    posts: &[String],
    found: &HashMap<String, Stored>,
    liked_posts: &BTreeSet<String>,
) -> Vec<String> {
    posts
        .iter()
        .filter(|id| liked_posts.contains(*id) || !found.contains_key(*id))
        .cloned()
        .collect()
}

/// What a round read: the documents found, and the like counts of [`to_count`]'s posts.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Current {
    pub posts: HashMap<String, Stored>,
    pub users: HashMap<String, Stored>,
    pub like_counts: HashMap<String, i64>,
}

/// An author whose privacy or ban changed: their post documents take the new flags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reflag {
    pub author_id: String,
    pub private: bool,
    pub banned: bool,
}

/// What to write after folding a batch over what was read.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    /// Done first: if that fails, the user document still holds the old flag, so the
    /// retry sees the change again.
    pub reflags: Vec<Reflag>,
    /// The post and user documents that changed, conditional on the read.
    pub writes: Writes,
}

/// One document's state while the batch is folded over it.
struct Slot<T> {
    stored: Option<Stored>,
    current: Option<T>,
    /// The records that changed it.
    owners: Vec<usize>,
}

impl<T> Default for Slot<T> {
    fn default() -> Self {
        Self {
            stored: None,
            current: None,
            owners: Vec::new(),
        }
    }
}

fn slots<T: DeserializeOwned>(stored: HashMap<String, Stored>) -> BTreeMap<String, Slot<T>> {
    stored
        .into_iter()
        .map(|(id, s)| {
            let current = serde_json::from_value(s.source.clone()).ok();
            (
                id,
                Slot {
                    stored: Some(s),
                    current,
                    owners: Vec::new(),
                },
            )
        })
        .collect()
}

/// Folds `effects`, in order, over the documents of `current`.
pub fn plan(
    effects: &[(usize, Effect)],
    liked_posts: &BTreeSet<String>,
    current: Current,
) -> Result<Plan, serde_json::Error> {
    let mut posts: BTreeMap<String, Slot<PostDoc>> = slots(current.posts);
    let mut users: BTreeMap<String, Slot<UserDoc>> = slots(current.users);
    let counts = current.like_counts;

    for (record, effect) in effects {
        match effect {
            Effect::Post(f) => {
                let author = users
                    .get(f.author_id.as_str())
                    .and_then(|s| s.current.as_ref());
                let author_private = author.is_some_and(|u| u.private);
                let author_banned = author.is_some_and(|u| u.banned);
                let s = posts.entry(f.post_id.to_string()).or_default();
                let like_count = match &s.current {
                    Some(p) if p.deleted || p.version >= f.version => continue,
                    Some(p) => p.like_count,
                    None => counts.get(f.post_id.as_str()).copied().unwrap_or(0),
                };
                s.current = Some(PostDoc {
                    post_id: f.post_id.to_string(),
                    author_id: f.author_id.to_string(),
                    caption: f.caption.clone(),
                    location: f.location.clone(),
                    hashtags: f.hashtags.iter().map(|h| h.to_lowercase()).collect(),
                    mentions: f.mentions.iter().map(ToString::to_string).collect(),
                    created_at: Some(f.created_at.clone()),
                    version: f.version,
                    like_count,
                    popularity: None,
                    author_private,
                    author_banned,
                    deleted: false,
                });
                s.owners.push(*record);
            }
            Effect::PostGone(g) => {
                let s = posts.entry(g.post_id.to_string()).or_default();
                if s.current.as_ref().is_some_and(|p| p.deleted) {
                    continue;
                }
                let version = s.current.as_ref().map_or(0, |p| p.version);
                s.current = Some(PostDoc {
                    post_id: g.post_id.to_string(),
                    version,
                    deleted: true,
                    ..PostDoc::default()
                });
                s.owners.push(*record);
            }
            Effect::Registered(r) => {
                let s = users.entry(r.user_id.to_string()).or_default();
                // The profile's events know better; registration only fills a gap.
                if s.current.is_some() {
                    continue;
                }
                s.current = Some(UserDoc {
                    user_id: r.user_id.to_string(),
                    username: r.username.clone(),
                    display_name: r.username.clone(),
                    ..UserDoc::default()
                });
                s.owners.push(*record);
            }
            Effect::Profile(p) => {
                let s = users.entry(p.user_id.to_string()).or_default();
                if s.current.as_ref().is_some_and(|u| u.deleted) {
                    continue;
                }
                // The account's standing is not the profile's to change: kept as folded.
                let (banned, standing_seq) = s
                    .current
                    .as_ref()
                    .map_or((false, 0), |u| (u.banned, u.standing_seq));
                s.current = Some(UserDoc {
                    user_id: p.user_id.to_string(),
                    username: p.username.clone(),
                    display_name: p.display_name.clone(),
                    private: p.private,
                    banned,
                    standing_seq,
                    deleted: false,
                });
                s.owners.push(*record);
            }
            Effect::UserGone(g) => {
                let s = users.entry(g.user_id.to_string()).or_default();
                s.current = Some(UserDoc {
                    user_id: g.user_id.to_string(),
                    deleted: true,
                    ..UserDoc::default()
                });
                s.owners.push(*record);
            }
            Effect::Standing(st) => {
                let s = users.entry(st.user_id.to_string()).or_default();
                match s.current.as_mut() {
                    // Gone for good, or a newer (or this very) decision is already folded.
                    Some(u) if u.deleted || u.standing_seq >= st.seq => continue,
                    Some(u) => {
                        u.banned = st.banned;
                        u.standing_seq = st.seq;
                    }
                    // Before any registration or profile: a document to hold the ban
                    // (those events fill in the rest and keep it).
                    None => {
                        s.current = Some(UserDoc {
                            user_id: st.user_id.to_string(),
                            username: st.username.clone(),
                            display_name: st.username.clone(),
                            banned: st.banned,
                            standing_seq: st.seq,
                            ..UserDoc::default()
                        });
                    }
                }
                s.owners.push(*record);
            }
            Effect::Edge(_) => {}
        }
    }
    for post_id in liked_posts {
        if let Some(s) = posts.get_mut(post_id)
            && let Some(p) = s.current.as_mut()
            && !p.deleted
        {
            p.like_count = counts.get(post_id).copied().unwrap_or(p.like_count);
        }
    }
    for p in posts.values_mut().filter_map(|s| s.current.as_mut()) {
        // A rank feature must be positive, and a tombstone has none.
        p.popularity = (!p.deleted).then(|| p.like_count.max(0) + 1);
    }

    let mut plan = Plan::default();
    for (user_id, s) in &users {
        let before = s
            .stored
            .as_ref()
            .and_then(|st| serde_json::from_value::<UserDoc>(st.source.clone()).ok())
            .map_or((false, false), |u| (u.private, u.banned));
        if let Some(u) = &s.current
            && !u.deleted
            && (u.private, u.banned) != before
        {
            plan.reflags.push(Reflag {
                author_id: user_id.clone(),
                private: u.private,
                banned: u.banned,
            });
        }
    }
    collect_writes(POSTS_INDEX, &posts, &mut plan.writes)?;
    collect_writes(USERS_INDEX, &users, &mut plan.writes)?;
    Ok(plan)
}

/// A write of every document that differs from what was read.
fn collect_writes<T: Serialize>(
    index: &str,
    slots: &BTreeMap<String, Slot<T>>,
    writes: &mut Writes,
) -> Result<(), serde_json::Error> {
    for (id, s) in slots {
        let Some(current) = &s.current else { continue };
        let source = serde_json::to_value(current)?;
        let version = match &s.stored {
            Some(st) if st.source == source => continue,
            Some(st) => Version::Cas {
                seq_no: st.seq_no,
                primary_term: st.primary_term,
            },
            None => Version::Create,
        };
        writes.push(
            BulkOp::Index {
                index: index.to_owned(),
                id: id.clone(),
                source,
                version,
            },
            s.owners.clone(),
        );
    }
    Ok(())
}

/// The partial updates that give `ids` (an author's posts) the author's new flags.
pub fn reflag_ops(ids: &[String], reflag: &Reflag) -> Vec<BulkOp> {
    ids.iter()
        .map(|id| BulkOp::Update {
            index: POSTS_INDEX.to_owned(),
            id: id.clone(),
            doc: serde_json::json!({
                "author_private": reflag.private,
                "author_banned": reflag.banned,
            }),
        })
        .collect()
}

/// What OpenSearch's answers to a set of writes came to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settled {
    /// Documents written.
    pub written: usize,
    /// Writes whose condition failed: a lost race for a document, old news for an edge.
    pub conflicts: usize,
    /// Records whose document OpenSearch refused, with why.
    pub poisoned: Vec<(usize, String)>,
}

/// Reads `results` (one per write, in order). `Err` with the reason when the cluster was
/// overloaded or failed: the batch must be retried.
pub fn settle(writes: &Writes, results: &[ItemResult]) -> Result<Settled, String> {
    let mut settled = Settled::default();
    for (result, owners) in results.iter().zip(&writes.owners) {
        match result.outcome() {
            Outcome::Done => settled.written += 1,
            Outcome::Conflict | Outcome::Missing => settled.conflicts += 1,
            Outcome::Retry => return Err(result.why()),
            Outcome::Poison => settled
                .poisoned
                .extend(owners.iter().map(|i| (*i, result.why()))),
        }
    }
    Ok(settled)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::docs::EdgeDoc;
    use serde_json::{Value, json};
    use shutter_core::{PostId, UserId};
    use shutter_events::{PostDeleted, PostFacts, ProfileFacts, UserDeleted, UserRegistered};

    fn post(id: &str, author: &str, caption: &str, version: u64) -> Effect {
        Effect::Post(PostFacts {
            post_id: PostId::trusted(id),
            author_id: UserId::trusted(author),
            caption: caption.into(),
            location: None,
            hashtags: vec!["Beach".into()],
            mentions: vec![UserId::trusted("m")],
            created_at: "2026-11-29T00:00:00.000Z".into(),
            version,
            media: vec![],
        })
    }

    fn gone(id: &str) -> Effect {
        Effect::PostGone(PostDeleted {
            post_id: PostId::trusted(id),
            author_id: UserId::trusted("a"),
            deleted_by: UserId::trusted("a"),
        })
    }

    fn registered(id: &str) -> Effect {
        Effect::Registered(UserRegistered {
            user_id: UserId::trusted(id),
            username: "ann".into(),
            created_at: "t".into(),
        })
    }

    fn profile(id: &str, private: bool) -> Effect {
        Effect::Profile(ProfileFacts {
            user_id: UserId::trusted(id),
            username: "ann".into(),
            display_name: "Ann Lee".into(),
            private,
            avatar_key: None,
            version: 0,
            private_since: None,
        })
    }

    fn user_gone(id: &str) -> Effect {
        Effect::UserGone(UserDeleted {
            user_id: UserId::trusted(id),
            username: "ann".into(),
        })
    }

    fn standing(id: &str, banned: bool, seq: u64) -> Effect {
        Effect::Standing(super::super::effects::Standing {
            user_id: UserId::trusted(id),
            username: "ann".into(),
            banned,
            seq,
        })
    }

    fn user_stored(banned: bool, standing_seq: u64) -> Current {
        let doc = UserDoc {
            user_id: "a".into(),
            username: "ann".into(),
            display_name: "Ann Lee".into(),
            banned,
            standing_seq,
            ..UserDoc::default()
        };
        Current {
            users: HashMap::from([("a".into(), stored(serde_json::to_value(doc).unwrap(), 5))]),
            ..Current::default()
        }
    }

    fn like(user: &str, post: &str, seq: u64, active: bool) -> Effect {
        Effect::Edge(EdgeDoc {
            kind: EdgeKind::Like,
            a: user.into(),
            b: post.into(),
            active,
            seq,
        })
    }

    fn stored(source: Value, seq_no: u64) -> Stored {
        Stored {
            source,
            seq_no,
            primary_term: 1,
        }
    }

    fn numbered(effects: Vec<Effect>) -> Vec<(usize, Effect)> {
        effects.into_iter().enumerate().collect()
    }

    /// The source and version of the write of `id`, if any.
    fn write_of<'a>(plan: &'a Plan, id: &str) -> Option<(&'a Value, &'a Version, &'a Vec<usize>)> {
        plan.writes
            .ops
            .iter()
            .zip(&plan.writes.owners)
            .find_map(|(op, owners)| match op {
                BulkOp::Index {
                    id: i,
                    source,
                    version,
                    ..
                } if i == id => Some((source, version, owners)),
                _ => None,
            })
    }

    fn post_doc(id: &str, version: u64, like_count: i64, deleted: bool) -> Value {
        let mut doc = PostDoc {
            post_id: id.into(),
            author_id: "a".into(),
            caption: "old".into(),
            version,
            like_count,
            deleted,
            ..PostDoc::default()
        };
        doc.popularity = (!deleted).then_some(like_count + 1);
        serde_json::to_value(doc).unwrap()
    }

    #[test]
    fn a_new_post_is_created_with_its_counted_likes_and_its_authors_flag() {
        // GIVEN a private author and a post that is not indexed yet, with 4 likes counted
        let effects = numbered(vec![profile("a", true), post("p", "a", "hi", 1)]);
        let current = Current {
            like_counts: HashMap::from([("p".into(), 4)]),
            ..Current::default()
        };
        // WHEN the batch is folded
        let plan = plan(&effects, &BTreeSet::new(), current).unwrap();
        // THEN the post is created, private, with lower-cased hashtags and its count
        let (source, version, owners) = write_of(&plan, "p").unwrap();
        assert_eq!(*version, Version::Create);
        assert_eq!(owners, &vec![1]);
        assert_eq!(source["author_private"], true);
        assert_eq!(source["hashtags"], json!(["beach"]));
        assert_eq!(source["mentions"], json!(["m"]));
        assert_eq!(
            (source["like_count"].as_i64(), source["popularity"].as_i64()),
            (Some(4), Some(5))
        );
        // AND the new private user has their posts re-flagged
        assert_eq!(
            plan.reflags,
            [Reflag {
                author_id: "a".into(),
                private: true,
                banned: false
            }]
        );
    }

    #[test]
    fn an_older_or_equal_version_changes_nothing_and_writes_nothing() {
        // GIVEN a post stored at version 3
        let current = Current {
            posts: HashMap::from([("p".into(), stored(post_doc("p", 3, 0, false), 7))]),
            ..Current::default()
        };
        // WHEN versions 2 and 3 arrive
        let effects = numbered(vec![post("p", "a", "stale", 2), post("p", "a", "same", 3)]);
        let plan = plan(&effects, &BTreeSet::new(), current).unwrap();
        // THEN there is nothing to write
        assert_eq!(plan, Plan::default());
    }

    #[test]
    fn a_newer_version_is_written_conditionally_on_the_read_and_keeps_its_likes() {
        let current = Current {
            posts: HashMap::from([("p".into(), stored(post_doc("p", 1, 9, false), 7))]),
            ..Current::default()
        };
        let effects = numbered(vec![post("p", "a", "edited", 2)]);
        let plan = plan(&effects, &BTreeSet::new(), current).unwrap();
        let (source, version, _) = write_of(&plan, "p").unwrap();
        assert_eq!(
            *version,
            Version::Cas {
                seq_no: 7,
                primary_term: 1
            }
        );
        assert_eq!(
            (source["caption"].as_str(), source["like_count"].as_i64()),
            (Some("edited"), Some(9))
        );
    }

    #[test]
    fn a_tombstone_is_never_revived_and_has_no_rank_feature() {
        // GIVEN a post deleted in this batch, then a late edit
        let effects = numbered(vec![
            post("p", "a", "hi", 1),
            gone("p"),
            post("p", "a", "back", 5),
        ]);
        let plan_ = plan(&effects, &BTreeSet::new(), Current::default()).unwrap();
        // THEN the one write is a tombstone owned by the first two records
        let (source, _, owners) = write_of(&plan_, "p").unwrap();
        assert_eq!(source["deleted"], true);
        assert_eq!(source["version"], 1);
        assert!(source.get("popularity").is_none());
        assert_eq!(owners, &vec![0, 1]);
        // AND a stored tombstone takes neither another delete nor an edit
        let current = Current {
            posts: HashMap::from([("p".into(), stored(post_doc("p", 1, 0, true), 3))]),
            ..Current::default()
        };
        let effects = numbered(vec![gone("p"), post("p", "a", "back", 9)]);
        assert_eq!(
            plan(&effects, &BTreeSet::new(), current).unwrap(),
            Plan::default()
        );
    }

    #[test]
    fn likes_recount_only_live_posts() {
        // GIVEN a live post and a deleted one, both liked in this batch
        let current = Current {
            posts: HashMap::from([
                ("p".into(), stored(post_doc("p", 1, 1, false), 1)),
                ("d".into(), stored(post_doc("d", 1, 0, true), 2)),
            ]),
            like_counts: HashMap::from([("p".into(), 3), ("d".into(), 5)]),
            ..Current::default()
        };
        let effects = numbered(vec![like("u", "p", 1, true), like("u", "d", 1, true)]);
        let liked = edges(&effects).unwrap().liked_posts;
        // WHEN folded
        let plan = plan(&effects, &liked, current).unwrap();
        // THEN the live post takes the count, the tombstone is left alone
        let (source, _, owners) = write_of(&plan, "p").unwrap();
        assert_eq!(
            (source["like_count"].as_i64(), source["popularity"].as_i64()),
            (Some(3), Some(4))
        );
        assert!(owners.is_empty(), "a recount belongs to no record");
        assert!(write_of(&plan, "d").is_none());
    }

    #[test]
    fn a_registration_only_fills_a_gap_and_a_deleted_user_stays_deleted() {
        // GIVEN a user whose profile is stored
        let profile_doc = json!({"user_id": "a", "username": "ann", "display_name": "Ann Lee", "private": true, "deleted": false});
        let current = Current {
            users: HashMap::from([("a".into(), stored(profile_doc, 4))]),
            ..Current::default()
        };
        // WHEN the registration is replayed
        let replay = plan(
            &numbered(vec![registered("a")]),
            &BTreeSet::new(),
            current.clone(),
        )
        .unwrap();
        // THEN nothing changes
        assert_eq!(replay, Plan::default());
        // AND a new user is registered with their username as display name
        let new = plan(
            &numbered(vec![registered("n")]),
            &BTreeSet::new(),
            Current::default(),
        )
        .unwrap();
        let (source, version, _) = write_of(&new, "n").unwrap();
        assert_eq!(
            (source["display_name"].as_str(), version),
            (Some("ann"), &Version::Create)
        );
        // AND a deletion followed by a late profile leaves a tombstone, with no re-flag
        let deleted = plan(
            &numbered(vec![user_gone("a"), profile("a", false)]),
            &BTreeSet::new(),
            current,
        )
        .unwrap();
        let (source, _, owners) = write_of(&deleted, "a").unwrap();
        assert_eq!(
            (source["deleted"].as_bool(), source["username"].as_str()),
            (Some(true), Some(""))
        );
        assert_eq!(owners, &vec![0]);
        assert!(deleted.reflags.is_empty());
    }

    #[test]
    fn a_privacy_change_reflags_posts_and_the_posts_of_the_batch_take_it() {
        // GIVEN a public user with a stored post
        let current = Current {
            users: HashMap::from([(
                "a".into(),
                stored(
                    json!({"user_id": "a", "username": "ann", "display_name": "Ann Lee", "private": false, "deleted": false}),
                    1,
                ),
            )]),
            ..Current::default()
        };
        // WHEN they go private, and publish
        let effects = numbered(vec![profile("a", true), post("q", "a", "new", 1)]);
        let plan = plan(&effects, &BTreeSet::new(), current).unwrap();
        // THEN their posts are re-flagged, and the new one is private from the start
        assert_eq!(
            plan.reflags,
            [Reflag {
                author_id: "a".into(),
                private: true,
                banned: false
            }]
        );
        assert_eq!(write_of(&plan, "q").unwrap().0["author_private"], true);
        assert_eq!(
            reflag_ops(&["q".into()], &plan.reflags[0]),
            [BulkOp::Update {
                index: POSTS_INDEX.into(),
                id: "q".into(),
                doc: json!({"author_private": true, "author_banned": false})
            }]
        );
    }

    #[test]
    fn reads_and_counts_cover_what_the_batch_touches() {
        let effects = numbered(vec![
            post("p", "a", "x", 1),
            gone("g"),
            registered("r"),
            like("u", "l", 1, true),
        ]);
        let plan = edges(&effects).unwrap();
        assert_eq!(plan.writes.owners, [vec![3]]);
        assert_eq!(
            plan.writes.ops[0],
            BulkOp::Index {
                index: RELATIONS_INDEX.into(),
                id: "like:u:l".into(),
                source: json!({"kind": "like", "a": "u", "b": "l", "active": true, "seq": 1}),
                version: Version::External(1),
            }
        );
        let reads = reads(&effects, &plan.liked_posts);
        assert_eq!(
            reads,
            Reads {
                posts: vec!["g".into(), "l".into(), "p".into()],
                users: vec!["a".into(), "r".into()],
            }
        );
        // A stored post is counted only if its likes moved.
        let found = HashMap::from([
            ("g".into(), stored(json!({}), 1)),
            ("l".into(), stored(json!({}), 1)),
        ]);
        assert_eq!(
            to_count(&reads.posts, &found, &plan.liked_posts),
            ["l", "p"]
        );
        assert!(self::reads(&[], &BTreeSet::new()).is_empty());
    }

    #[test]
    fn a_ban_flags_the_user_and_reflags_their_posts_and_the_batchs_new_ones() {
        // GIVEN a user in good standing
        // WHEN they are banned (seq 1), then publish, then their profile changes
        let effects = numbered(vec![
            standing("a", true, 1),
            post("q", "a", "new", 1),
            profile("a", false),
        ]);
        let plan = plan(&effects, &BTreeSet::new(), user_stored(false, 0)).unwrap();
        // THEN the user is banned at seq 1 (the profile does not undo it)
        let (source, _, owners) = write_of(&plan, "a").unwrap();
        assert_eq!(
            (source["banned"].as_bool(), source["standing_seq"].as_u64()),
            (Some(true), Some(1))
        );
        assert_eq!(owners, &vec![0, 2]);
        // AND their stored posts are re-flagged, and the new one is flagged from the start
        assert_eq!(
            plan.reflags,
            [Reflag {
                author_id: "a".into(),
                private: false,
                banned: true
            }]
        );
        assert_eq!(write_of(&plan, "q").unwrap().0["author_banned"], true);
        assert_eq!(
            reflag_ops(&["p".into()], &plan.reflags[0])[0],
            BulkOp::Update {
                index: POSTS_INDEX.into(),
                id: "p".into(),
                doc: json!({"author_private": false, "author_banned": true})
            }
        );
    }

    #[test]
    fn a_redelivered_ban_or_a_late_older_reinstatement_changes_nothing() {
        // GIVEN a user banned at seq 2
        let banned = user_stored(true, 2);
        // WHEN the ban is delivered again, and a reinstatement of seq 1 arrives late
        for effects in [
            vec![standing("a", true, 2)],
            vec![standing("a", false, 1)],
            vec![standing("a", true, 2), standing("a", false, 2)],
        ] {
            let plan = plan(&numbered(effects), &BTreeSet::new(), banned.clone()).unwrap();
            // THEN nothing is written and nothing re-flagged
            assert_eq!(plan, Plan::default());
        }
        // AND in one batch, out of order, the newest seq wins whatever the order
        let effects = numbered(vec![standing("a", false, 4), standing("a", true, 3)]);
        let plan = plan(&effects, &BTreeSet::new(), banned.clone()).unwrap();
        let (source, _, owners) = write_of(&plan, "a").unwrap();
        assert_eq!(
            (source.get("banned"), source["standing_seq"].as_u64()),
            (None, Some(4))
        );
        assert_eq!(owners, &vec![0], "the stale ban changed nothing");
        assert_eq!(
            plan.reflags,
            [Reflag {
                author_id: "a".into(),
                private: false,
                banned: false
            }]
        );
    }

    #[test]
    fn a_time_limited_suspension_hides_nothing_and_a_deleted_user_takes_no_standing() {
        // WHEN a user in good standing is suspended for a while
        let plan_ = plan(
            &numbered(vec![standing("a", false, 1)]),
            &BTreeSet::new(),
            user_stored(false, 0),
        )
        .unwrap();
        // THEN only the seq is kept: no ban, no re-flag
        let (source, _, _) = write_of(&plan_, "a").unwrap();
        assert_eq!(
            (source.get("banned"), source["standing_seq"].as_u64()),
            (None, Some(1))
        );
        assert!(plan_.reflags.is_empty());
        // AND a deleted user's tombstone takes no ban
        let tombstone = Current {
            users: HashMap::from([(
                "a".into(),
                stored(
                    json!({"user_id": "a", "username": "", "display_name": "", "private": false, "deleted": true}),
                    1,
                ),
            )]),
            ..Current::default()
        };
        assert_eq!(
            plan(
                &numbered(vec![standing("a", true, 9)]),
                &BTreeSet::new(),
                tombstone
            )
            .unwrap(),
            Plan::default()
        );
        // AND a ban before any registration makes a document that the registration keeps
        let plan_ = plan(
            &numbered(vec![standing("n", true, 1), registered("n")]),
            &BTreeSet::new(),
            Current::default(),
        )
        .unwrap();
        let (source, version, owners) = write_of(&plan_, "n").unwrap();
        assert_eq!(
            (source["banned"].as_bool(), version, owners),
            (Some(true), &Version::Create, &vec![0])
        );
    }

    #[test]
    fn a_post_removed_by_staff_is_a_tombstone_nothing_revives() {
        use shutter_events::{ContentRemoved, Event, RemovedKind};
        let removed = |kind| {
            Event::ContentRemoved(ContentRemoved {
                kind,
                target_id: "p".into(),
                post_id: PostId::trusted("p"),
                author_id: UserId::trusted("a"),
                note: "spam".into(),
                removed_by: UserId::trusted("m"),
                removed_at: "t".into(),
            })
        };
        // A removed comment is nothing to search (comments are not indexed).
        assert_eq!(
            super::super::effects::effect(&removed(RemovedKind::Comment)),
            None
        );
        // GIVEN a live post
        let current = Current {
            posts: HashMap::from([("p".into(), stored(post_doc("p", 2, 3, false), 4))]),
            ..Current::default()
        };
        // WHEN staff remove it, and a late edit arrives
        let gone = super::super::effects::effect(&removed(RemovedKind::Post)).unwrap();
        let effects = numbered(vec![gone.clone(), post("p", "a", "back", 7)]);
        let plan_ = plan(&effects, &BTreeSet::new(), current).unwrap();
        // THEN it is a tombstone, owned by the removal only
        let (source, _, owners) = write_of(&plan_, "p").unwrap();
        assert_eq!(source["deleted"], true);
        assert_eq!(owners, &vec![0]);
        // AND a removal delivered again, or a later edit, finds the tombstone: no write
        let tombstone = Current {
            posts: HashMap::from([("p".into(), stored(post_doc("p", 2, 0, true), 5))]),
            ..Current::default()
        };
        let effects = numbered(vec![gone, post("p", "a", "back", 8)]);
        assert_eq!(
            plan(&effects, &BTreeSet::new(), tombstone).unwrap(),
            Plan::default()
        );
    }

    #[test]
    fn answers_settle_into_written_conflicts_poison_or_retry() {
        let writes = Writes {
            ops: vec![],
            owners: vec![vec![0], vec![1, 2], vec![3], vec![4]],
        };
        let answer = |status: u16, kind: &str| ItemResult {
            status,
            error_type: Some(kind.into()),
            reason: Some("why".into()),
        };
        let settled = settle(
            &writes,
            &[
                ItemResult::ok(201),
                answer(400, "mapper_parsing_exception"),
                answer(409, "version_conflict_engine_exception"),
                answer(404, "document_missing_exception"),
            ],
        )
        .unwrap();
        assert_eq!(settled.written, 1);
        assert_eq!(settled.conflicts, 2);
        let poisoned: Vec<usize> = settled.poisoned.iter().map(|(i, _)| *i).collect();
        assert_eq!(poisoned, [1, 2]);
        assert!(settled.poisoned[0].1.contains("mapper_parsing_exception"));
        assert!(settle(&writes, &[ItemResult::ok(200), answer(429, "busy")]).is_err());
    }
}
