//! The DynamoDB adapter: keys, items and conditions of the layout in [`super`], sent with
//! [`Table`].

use async_trait::async_trait;
use shutter_core::validate::Username;
use shutter_core::{EventId, UserId};
use shutter_events::{Envelope, outbox_write, processed};
use shutter_store::{
    AttributeValue, Item, Query, StoreResult, Table, Write, bool_attr, from_item, key, n, s,
    string_attr, to_item,
};

use super::{
    CountersStore, HANDLE_MOVED, MARKER_MOVED, PROFILE_EXISTS, PROFILE_GONE, ProfilesStore, STALE,
    STANDING_NEWER, Standing, USERNAME_HELD,
};
use crate::model::{Counted, Counter, Delta, Marker, Profile};

/// How long an erased profile's counters tombstone is kept: longer than Kafka keeps the
/// follow and post events that could bring them back (a week).
const TOMBSTONE_TTL_SECONDS: i64 = 8 * 24 * 3600;

/// Both ports over the service's table.
#[derive(Debug, Clone)]
pub struct DynamoProfilesStore {
    pub table: Table,
}

fn profile_pk(user_id: &str) -> String {
    format!("PROFILE#{user_id}")
}

fn profile_item(p: &Profile) -> StoreResult<Item> {
    let mut item = to_item(p)?;
    item.extend(key(profile_pk(&p.user_id), "PROFILE"));
    Ok(item)
}

/// The sort key of the account's standing, beside its profile.
const STANDING_SK: &str = "STANDING";

fn counts_key(user_id: &str) -> Item {
    key(profile_pk(user_id), "COUNTS")
}

fn handle_key(username: &str) -> Item {
    key(format!("HANDLE#{username}"), "HANDLE")
}

fn marker_pk(counted: &Counted) -> String {
    match counted {
        Counted::Follow { follower, followee } => format!("COUNTED#FOLLOW#{follower}#{followee}"),
        Counted::Post(post_id) => format!("COUNTED#POST#{post_id}"),
        Counted::Block { blocker, blocked } => format!("COUNTED#BLOCK#{blocker}#{blocked}"),
    }
}

fn marker_key(counted: &Counted) -> Item {
    key(marker_pk(counted), "COUNTED")
}

/// The attribute of the counters item that holds `counter`.
fn attribute(counter: Counter) -> &'static str {
    match counter {
        Counter::Followers => "follower_count",
        Counter::Following => "following_count",
        Counter::Posts => "post_count",
    }
}

/// A counter as read: absent or negative (never, if the markers hold) is zero.
fn count(counts: Option<&Item>, counter: Counter) -> u64 {
    counts
        .and_then(|c| shutter_store::number_attr::<i64>(c, attribute(counter)))
        .map_or(0, |v| u64::try_from(v).unwrap_or(0))
}

impl DynamoProfilesStore {
    /// Whether the user's profile was erased (its counters are a tombstone).
    async fn gone(&self, user_id: &UserId) -> StoreResult<bool> {
        let item = self.table.get_item(&profile_pk(user_id), "COUNTS").await?;
        Ok(item.is_some_and(|i| i.contains_key("gone")))
    }
}

#[async_trait]
impl ProfilesStore for DynamoProfilesStore {
    async fn by_id(&self, user_id: &UserId) -> StoreResult<Option<Profile>> {
        // One query reads the profile and its counters.
        let items = self
            .table
            .query(&Query::partition(profile_pk(user_id)))
            .await?;
        let mut profile: Option<Profile> = None;
        let mut counts = None;
        for item in items {
            match string_attr(&item, "sk") {
                Some("PROFILE") => profile = Some(from_item(item)?),
                Some("COUNTS") => counts = Some(item),
                _ => {}
            }
        }
        Ok(profile.map(|p| Profile {
            follower_count: count(counts.as_ref(), Counter::Followers),
            following_count: count(counts.as_ref(), Counter::Following),
            post_count: count(counts.as_ref(), Counter::Posts),
            ..p
        }))
    }

    async fn by_username(&self, username: &Username) -> StoreResult<Option<Profile>> {
        let handle = self
            .table
            .get_item(&format!("HANDLE#{username}"), "HANDLE")
            .await?;
        match handle.as_ref().and_then(|h| string_attr(h, "user_id")) {
            Some(user_id) => self.by_id(&UserId::trusted(user_id)).await,
            None => Ok(None),
        }
    }

    async fn blocked_between(&self, a: &UserId, b: &UserId) -> StoreResult<bool> {
        let marker = |blocker: &UserId, blocked: &UserId| {
            marker_key(&Counted::Block {
                blocker: blocker.clone(),
                blocked: blocked.clone(),
            })
        };
        let found = self
            .table
            .batch_get(vec![marker(a, b), marker(b, a)])
            .await?;
        Ok(found.iter().any(|item| bool_attr(item, "counted")))
    }

    async fn standing(&self, user_id: &UserId) -> StoreResult<Standing> {
        let item = self
            .table
            .get_item(&profile_pk(user_id), STANDING_SK)
            .await?;
        Ok(item.map_or_else(Standing::default, |item| Standing {
            deleted: false,
            banned: bool_attr(&item, "banned"),
            suspended_until: string_attr(&item, "until").map(str::to_owned),
        }))
    }

    async fn set_standing(
        &self,
        user_id: &UserId,
        banned: bool,
        until: Option<&str>,
        seq: u64,
    ) -> StoreResult<()> {
        let mut item = key(profile_pk(user_id), STANDING_SK);
        item.insert("banned".to_owned(), AttributeValue::Bool(banned));
        if let Some(until) = until {
            item.insert("until".to_owned(), s(until));
        }
        item.insert("seq".to_owned(), n(seq));
        // Only a newer suspension or reinstatement replaces the one stored.
        let write = Write::put(item)
            .when(STANDING_NEWER, "attribute_not_exists(pk) OR seq < :seq")
            .value(":seq", n(seq));
        self.table.write(write).await
    }

    async fn save(
        &self,
        previous: &Profile,
        updated: &Profile,
        event: &Envelope,
    ) -> StoreResult<()> {
        self.table
            .transact(vec![
                Write::put(profile_item(updated)?)
                    .when(STALE, "attribute_exists(pk) AND updated_at = :prev")
                    .value(":prev", s(&previous.updated_at)),
                outbox_write(event)?,
            ])
            .await
    }

    async fn create(
        &self,
        consumer: &str,
        event_id: &EventId,
        profile: &Profile,
    ) -> StoreResult<()> {
        let mut handle = handle_key(profile.username.as_str());
        handle.insert("user_id".to_owned(), s(profile.user_id.as_str()));
        self.table
            .transact(vec![
                processed(consumer, event_id),
                Write::put(profile_item(profile)?).if_absent(PROFILE_EXISTS),
                Write::put(handle).if_absent(USERNAME_HELD),
            ])
            .await
    }

    async fn erase(
        &self,
        consumer: &str,
        event_id: &EventId,
        user_id: &UserId,
    ) -> StoreResult<Option<Profile>> {
        let existing = self.by_id(user_id).await?;
        let mut writes = vec![processed(consumer, event_id)];
        if let Some(p) = &existing {
            let mut tombstone = counts_key(user_id);
            tombstone.insert("gone".to_owned(), AttributeValue::Bool(true));
            tombstone.insert(
                "ttl".to_owned(),
                n(shutter_store::epoch_seconds() + TOMBSTONE_TTL_SECONDS),
            );
            writes.extend([
                Write::delete(key(profile_pk(user_id), "PROFILE")),
                Write::delete(key(profile_pk(user_id), STANDING_SK)),
                Write::put(tombstone),
                Write::delete(handle_key(p.username.as_str()))
                    .when(HANDLE_MOVED, "attribute_not_exists(pk) OR user_id = :id")
                    .value(":id", s(user_id.as_str())),
            ]);
        }
        self.table.transact(writes).await?;
        Ok(existing)
    }
}

#[async_trait]
impl CountersStore for DynamoProfilesStore {
    async fn marker(&self, counted: &Counted) -> StoreResult<Option<Marker>> {
        self.table.get(&marker_pk(counted), "COUNTED").await
    }

    async fn count(
        &self,
        counted: &Counted,
        previous: Option<&Marker>,
        next: &Marker,
        deltas: &[Delta],
    ) -> StoreResult<()> {
        let mut item = marker_key(counted);
        item.insert("seq".to_owned(), n(next.seq));
        item.insert("counted".to_owned(), AttributeValue::Bool(next.counted));
        let marker = match previous {
            None => Write::put(item).if_absent(MARKER_MOVED),
            Some(p) => Write::put(item)
                .when(MARKER_MOVED, "seq = :seq")
                .value(":seq", n(p.seq)),
        };
        let mut writes = vec![marker];
        for delta in deltas {
            // An update would create the counters item of an erased profile again.
            if self.gone(&delta.user_id).await? {
                continue;
            }
            writes.push(
                Write::update(counts_key(&delta.user_id), "ADD #c :d")
                    .when(PROFILE_GONE, "attribute_not_exists(gone)")
                    .name("#c", attribute(delta.counter))
                    .value(":d", n(delta.by)),
            );
        }
        self.table.transact(writes).await
    }
}
