//! The profiles table port and its adapters.
//!
//! Layout (`pk`/`sk`): `PROFILE#<user id>` / `PROFILE` holds the [`Profile`];
//! `HANDLE#<username>` / `HANDLE` points a username at its user id;
//! `PROCESSED#<consumer>#<event id>` / `PROCESSED` marks an applied event;
//! `OUTBOX#<event id>` / `OUTBOX` carries this service's events.

use async_trait::async_trait;
use shutter_core::ApiError;
use shutter_core::validate::Username;
use shutter_events::legacy::Envelope;

use crate::model::Profile;

/// Whether an event changed anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    Applied,
    /// Seen before (redelivery): nothing changed.
    Duplicate,
}

#[async_trait]
pub trait ProfilesStore: Send + Sync {
    async fn by_id(&self, user_id: &str) -> Result<Option<Profile>, ApiError>;
    async fn by_username(&self, username: &Username) -> Result<Option<Profile>, ApiError>;
    /// Creates `profile` once for event `event_id`. A username still held by another user
    /// (their deletion not applied yet) is a retryable error.
    async fn create(
        &self,
        consumer: &str,
        event_id: &str,
        profile: &Profile,
    ) -> Result<Applied, ApiError>;
    /// Erases a user's profile once for event `event_id`; returns what was erased.
    async fn erase(
        &self,
        consumer: &str,
        event_id: &str,
        user_id: &str,
    ) -> Result<(Applied, Option<Profile>), ApiError>;
    /// Saves `updated` if the stored profile still has `previous.updated_at`
    /// (409 `concurrent_update` otherwise), with `event`.
    async fn save(
        &self,
        previous: &Profile,
        updated: &Profile,
        event: &Envelope,
    ) -> Result<(), ApiError>;
    /// Whether either user blocks the other (from the block markers that
    /// [`crate::counters`] keeps).
    async fn blocked_between(&self, a: &str, b: &str) -> Result<bool, ApiError>;
}

fn concurrent() -> ApiError {
    ApiError::conflict(
        "concurrent_update",
        "profile",
        "the profile changed meanwhile; retry",
    )
}

pub mod dynamo {
    //! The DynamoDB adapter.

    use std::collections::HashMap;

    use shutter_events::legacy::{outbox_put, processed_marker};
    use shutter_store::dynamodb::types::{Delete, Put, TransactWriteItem};
    use shutter_store::{
        Item, Table, cancellation_reasons, condition_failed_at, from_item, s, to_item,
    };

    use super::*;
    use crate::PROFILES_TOPIC;

    #[derive(Debug, Clone)]
    pub struct DynamoProfilesStore {
        pub table: Table,
    }

    fn internal(e: impl std::error::Error + Send + Sync + 'static) -> ApiError {
        ApiError::internal(e)
    }

    fn key(pk: String, sk: &str) -> Item {
        HashMap::from([("pk".to_owned(), s(pk)), ("sk".to_owned(), s(sk))])
    }

    fn profile_item(p: &Profile) -> Result<Item, ApiError> {
        let mut item = to_item(p)?;
        item.extend(key(format!("PROFILE#{}", p.user_id), "PROFILE"));
        Ok(item)
    }

    impl DynamoProfilesStore {
        fn put(
            &self,
            item: Item,
            condition: &str,
            values: Option<Item>,
        ) -> Result<TransactWriteItem, ApiError> {
            let put = Put::builder()
                .table_name(&self.table.name)
                .set_item(Some(item))
                .condition_expression(condition)
                .set_expression_attribute_values(values)
                .build()
                .map_err(internal)?;
            Ok(TransactWriteItem::builder().put(put).build())
        }

        fn delete(
            &self,
            pk: String,
            sk: &str,
            condition: Option<(&str, Item)>,
        ) -> Result<TransactWriteItem, ApiError> {
            let (cond, values) =
                condition.map_or((None, None), |(c, v)| (Some(c.to_owned()), Some(v)));
            let del = Delete::builder()
                .table_name(&self.table.name)
                .set_key(Some(key(pk, sk)))
                .set_condition_expression(cond)
                .set_expression_attribute_values(values)
                .build()
                .map_err(internal)?;
            Ok(TransactWriteItem::builder().delete(del).build())
        }

        fn handle(&self, p: &Profile) -> Result<TransactWriteItem, ApiError> {
            let mut item = key(format!("HANDLE#{}", p.username), "HANDLE");
            item.insert("user_id".to_owned(), s(&p.user_id));
            self.put(item, "attribute_not_exists(pk)", None)
        }

        async fn transact(
            &self,
            items: Vec<TransactWriteItem>,
        ) -> Result<Result<(), Vec<String>>, ApiError> {
            match self
                .table
                .client
                .transact_write_items()
                .set_transact_items(Some(items))
                .send()
                .await
            {
                Ok(_) => Ok(Ok(())),
                Err(err) => {
                    let reasons = cancellation_reasons(&err);
                    if reasons.iter().any(|r| r == "ConditionalCheckFailed") {
                        Ok(Err(reasons))
                    } else {
                        Err(internal(err))
                    }
                }
            }
        }
    }

    #[async_trait]
    impl ProfilesStore for DynamoProfilesStore {
        async fn by_id(&self, user_id: &str) -> Result<Option<Profile>, ApiError> {
            // One query reads the profile and its counters (`COUNTS`, kept apart so that
            // a profile edit never overwrites them; see crate::counters).
            let out = self
                .table
                .client
                .query()
                .table_name(&self.table.name)
                .key_condition_expression("pk = :pk")
                .expression_attribute_values(":pk", s(format!("PROFILE#{user_id}")))
                .consistent_read(true)
                .send()
                .await
                .map_err(internal)?;
            let mut profile: Option<Profile> = None;
            let mut counts = None;
            for item in out.items() {
                match item
                    .get("sk")
                    .and_then(|v| v.as_s().ok())
                    .map(String::as_str)
                {
                    Some("PROFILE") => profile = Some(from_item(item.clone())?),
                    Some("COUNTS") => counts = Some(item.clone()),
                    _ => {}
                }
            }
            Ok(profile.map(|mut p| {
                let count = |name: &str| {
                    counts
                        .as_ref()
                        .and_then(|c| c.get(name))
                        .and_then(|v| v.as_n().ok())
                        .and_then(|v| v.parse::<i64>().ok())
                        .map_or(0, |v| u64::try_from(v).unwrap_or(0))
                };
                p.follower_count = count("follower_count");
                p.following_count = count("following_count");
                p.post_count = count("post_count");
                p
            }))
        }

        async fn by_username(&self, username: &Username) -> Result<Option<Profile>, ApiError> {
            #[derive(serde::Deserialize)]
            struct Handle {
                user_id: String,
            }
            match self
                .table
                .get::<Handle>(&format!("HANDLE#{username}"), "HANDLE")
                .await?
            {
                Some(h) => self.by_id(&h.user_id).await,
                None => Ok(None),
            }
        }

        async fn create(
            &self,
            consumer: &str,
            event_id: &str,
            profile: &Profile,
        ) -> Result<Applied, ApiError> {
            let items = vec![
                processed_marker(&self.table.name, consumer, event_id),
                self.put(profile_item(profile)?, "attribute_not_exists(pk)", None)?,
                self.handle(profile)?,
            ];
            match self.transact(items).await? {
                Ok(()) => Ok(Applied::Applied),
                Err(r) if condition_failed_at(&r, 0) || condition_failed_at(&r, 1) => {
                    Ok(Applied::Duplicate)
                }
                Err(_) => Err(ApiError::internal(std::io::Error::other(format!(
                    "username {} is still held by another user; retry after their deletion",
                    profile.username
                )))),
            }
        }

        async fn erase(
            &self,
            consumer: &str,
            event_id: &str,
            user_id: &str,
        ) -> Result<(Applied, Option<Profile>), ApiError> {
            let existing = self.by_id(user_id).await?;
            let mut items = vec![processed_marker(&self.table.name, consumer, event_id)];
            if let Some(p) = &existing {
                items.push(self.delete(format!("PROFILE#{user_id}"), "PROFILE", None)?);
                // The counters become a tombstone, so a late follow or post event cannot
                // bring them back (it expires after Kafka's retention).
                let mut gone = crate::counters::dynamo::counts_key(user_id);
                gone.insert(
                    "gone".to_owned(),
                    shutter_store::dynamodb::types::AttributeValue::Bool(true),
                );
                gone.insert(
                    "ttl".to_owned(),
                    shutter_store::n(shutter_store::epoch_seconds() + 8 * 24 * 3600),
                );
                let put = Put::builder()
                    .table_name(&self.table.name)
                    .set_item(Some(gone))
                    .build()
                    .map_err(internal)?;
                items.push(TransactWriteItem::builder().put(put).build());
                let owner = HashMap::from([(":id".to_owned(), s(user_id))]);
                items.push(self.delete(
                    format!("HANDLE#{}", p.username),
                    "HANDLE",
                    Some(("attribute_not_exists(pk) OR user_id = :id", owner)),
                )?);
            }
            match self.transact(items).await? {
                Ok(()) => Ok((Applied::Applied, existing)),
                Err(r) if condition_failed_at(&r, 0) => Ok((Applied::Duplicate, None)),
                Err(_) => Err(ApiError::internal(std::io::Error::other(
                    "profile erase raced another change",
                ))),
            }
        }

        async fn save(
            &self,
            previous: &Profile,
            updated: &Profile,
            event: &Envelope,
        ) -> Result<(), ApiError> {
            let values = HashMap::from([(":prev".to_owned(), s(&previous.updated_at))]);
            let items = vec![
                self.put(
                    profile_item(updated)?,
                    "attribute_exists(pk) AND updated_at = :prev",
                    Some(values),
                )?,
                outbox_put(&self.table.name, PROFILES_TOPIC, event),
            ];
            self.transact(items).await?.map_err(|_| concurrent())
        }

        async fn blocked_between(&self, a: &str, b: &str) -> Result<bool, ApiError> {
            let marker = |from: &str, to: &str| {
                let pk = format!("COUNTED#{}", crate::counters::block_key(from, to));
                shutter_store::key(pk, "COUNTED")
            };
            let found = self
                .table
                .batch_get(vec![marker(a, b), marker(b, a)])
                .await?;
            Ok(found
                .into_iter()
                .any(|item| from_item::<crate::counters::Marker>(item).is_ok_and(|m| m.counted)))
        }
    }
}

pub mod memory {
    //! An in-memory [`ProfilesStore`] with the same conditions, for unit tests.

    use std::collections::{HashMap, HashSet};
    use std::sync::Mutex;

    use super::*;

    #[derive(Debug, Default)]
    pub struct MemoryProfilesStore {
        state: Mutex<State>,
    }

    #[derive(Debug, Default)]
    struct State {
        profiles: HashMap<String, Profile>,
        handles: HashMap<String, String>,
        processed: HashSet<String>,
        events: Vec<Envelope>,
        /// (blocker, blocked)
        blocks: HashSet<(String, String)>,
    }

    impl MemoryProfilesStore {
        fn state(&self) -> std::sync::MutexGuard<'_, State> {
            self.state.lock().unwrap_or_else(|e| e.into_inner())
        }

        /// `blocker` blocks `blocked` (what the graph consumer's markers record).
        pub fn block(&self, blocker: &str, blocked: &str) {
            self.state()
                .blocks
                .insert((blocker.to_owned(), blocked.to_owned()));
        }

        pub fn events(&self) -> Vec<Envelope> {
            self.state().events.clone()
        }

        pub fn profile_count(&self) -> usize {
            self.state().profiles.len()
        }
    }

    #[async_trait]
    impl ProfilesStore for MemoryProfilesStore {
        async fn blocked_between(&self, a: &str, b: &str) -> Result<bool, ApiError> {
            let st = self.state();
            let pair = |x: &str, y: &str| (x.to_owned(), y.to_owned());
            Ok(st.blocks.contains(&pair(a, b)) || st.blocks.contains(&pair(b, a)))
        }

        async fn by_id(&self, user_id: &str) -> Result<Option<Profile>, ApiError> {
            Ok(self.state().profiles.get(user_id).cloned())
        }

        async fn by_username(&self, username: &Username) -> Result<Option<Profile>, ApiError> {
            let st = self.state();
            Ok(st
                .handles
                .get(username.as_str())
                .and_then(|id| st.profiles.get(id))
                .cloned())
        }

        async fn create(
            &self,
            consumer: &str,
            event_id: &str,
            profile: &Profile,
        ) -> Result<Applied, ApiError> {
            let mut st = self.state();
            let marker = format!("{consumer}#{event_id}");
            if st.processed.contains(&marker) || st.profiles.contains_key(&profile.user_id) {
                return Ok(Applied::Duplicate);
            }
            if st.handles.contains_key(profile.username.as_str()) {
                return Err(ApiError::internal(std::io::Error::other(
                    "username still held",
                )));
            }
            st.processed.insert(marker);
            st.handles
                .insert(profile.username.to_string(), profile.user_id.clone());
            st.profiles.insert(profile.user_id.clone(), profile.clone());
            Ok(Applied::Applied)
        }

        async fn erase(
            &self,
            consumer: &str,
            event_id: &str,
            user_id: &str,
        ) -> Result<(Applied, Option<Profile>), ApiError> {
            let mut st = self.state();
            if !st.processed.insert(format!("{consumer}#{event_id}")) {
                return Ok((Applied::Duplicate, None));
            }
            let erased = st.profiles.remove(user_id);
            if let Some(p) = &erased
                && st.handles.get(p.username.as_str()) == Some(&p.user_id)
            {
                st.handles.remove(p.username.as_str());
            }
            Ok((Applied::Applied, erased))
        }

        async fn save(
            &self,
            previous: &Profile,
            updated: &Profile,
            event: &Envelope,
        ) -> Result<(), ApiError> {
            let mut st = self.state();
            match st.profiles.get(&previous.user_id) {
                Some(current) if current.updated_at == previous.updated_at => {}
                _ => return Err(concurrent()),
            }
            st.profiles.insert(updated.user_id.clone(), updated.clone());
            st.events.push(event.clone());
            Ok(())
        }
    }
}
