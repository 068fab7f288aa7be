//! The use cases of the endpoints: read a profile if the caller may see it, edit one's
//! own, hand out an avatar upload form. They apply the rules of [`crate::model`], save
//! with the store, and answer in client terms.

use shutter_core::ApiError;
use shutter_core::validate::Username;
use shutter_http::Caller;
use shutter_media::MediaStore;

use crate::model::{
    AvatarKey, AvatarUpload, ImageType, MAX_AVATAR_BYTES, Profile, ProfilePatch, ProfileView,
};
use crate::store::ProfilesStore;
use crate::{App, errors};

impl<S: ProfilesStore, M: MediaStore> App<S, M> {
    /// The profile of `username`, with its counters. Someone who blocks the caller, or
    /// whom the caller blocks, does not exist for them (404), nor does a banned account
    /// while the ban holds (from when its `UserSuspended` is applied here until its
    /// `UserReinstated` is); staff see everyone, and everyone sees their own.
    pub async fn profile(
        &self,
        caller: &Caller,
        username: &Username,
    ) -> Result<ProfileView, ApiError> {
        let profile = self
            .store
            .by_username(username)
            .await
            .map_err(errors::api)?
            .ok_or(ApiError::NotFound("profile"))?;
        let hidden = profile.user_id != caller.user_id
            && !caller.is_staff()
            && self
                .store
                .blocked_between(&caller.user_id, &profile.user_id)
                .await
                .map_err(errors::api)?;
        if hidden {
            return Err(ApiError::NotFound("profile"));
        }
        let banned = profile.user_id != caller.user_id
            && !caller.is_staff()
            && self
                .store
                .standing(&profile.user_id)
                .await
                .map_err(errors::api)?
                .banned;
        if banned {
            return Err(ApiError::NotFound("profile"));
        }
        self.view(&profile).await
    }

    /// The caller's own profile (404 until their registration is applied, and after
    /// their deletion).
    pub async fn my_profile(&self, caller: &Caller) -> Result<ProfileView, ApiError> {
        let profile = self.own(caller).await?;
        self.view(&profile).await
    }

    /// Applies `patch` to the caller's own profile; only an edit that changes something
    /// is saved, with its `ProfileUpdated`. A profile changed meanwhile is a 409; a
    /// suspended or banned account's is a 403 (see [`refuse_inactive`]).
    pub async fn update_profile(
        &self,
        caller: &Caller,
        patch: &ProfilePatch,
        correlation_id: &str,
    ) -> Result<ProfileView, ApiError> {
        refuse_inactive(&self.store, caller).await?;
        let previous = self.own(caller).await?;
        let Some(updated) = previous.edited(patch, &shutter_core::now_rfc3339()) else {
            return self.view(&previous).await;
        };
        let event = updated.updated_event(correlation_id);
        self.store
            .save(&previous, &updated, &event)
            .await
            .map_err(errors::api)?;
        tracing::info!(user_id = %updated.user_id, event_id = %event.id, "profile updated");
        self.view(&updated).await
    }

    async fn own(&self, caller: &Caller) -> Result<Profile, ApiError> {
        self.store
            .by_id(&caller.user_id)
            .await
            .map_err(errors::api)?
            .ok_or(ApiError::NotFound("profile"))
    }

    async fn view(&self, profile: &Profile) -> Result<ProfileView, ApiError> {
        let avatar_url = match &profile.avatar_key {
            Some(key) => Some(self.media.view_url(key).await.map_err(errors::api)?),
            None => None,
        };
        Ok(ProfileView::new(profile, avatar_url))
    }
}

/// 403 `account_suspended` for a write by a suspended or banned account's still-valid
/// token, once its `UserSuspended` reached this service (its identity consumer keeps
/// the standing); as every service answers, with the same window before the event
/// arrives (see [`shutter_directory::refuse_inactive`]): an edit in those seconds is
/// saved. A deleted account has no profile left to write (404).
async fn refuse_inactive<S: ProfilesStore>(store: &S, caller: &Caller) -> Result<(), ApiError> {
    let standing = store.standing(&caller.user_id).await.map_err(errors::api)?;
    match standing.refusal(&shutter_core::now_rfc3339()) {
        None => Ok(()),
        Some(inactive) => Err(inactive.into()),
    }
}

impl<S: ProfilesStore, M: MediaStore> App<S, M> {
    /// A pre-signed form to upload an avatar of type `image` under the caller's own
    /// prefix; S3 refuses another type or more than 5 MB, and the avatar changes only
    /// once the upload is verified ([`crate::avatar`]). A suspended or banned account
    /// gets none (403).
    pub async fn avatar_upload(
        &self,
        caller: &Caller,
        image: ImageType,
    ) -> Result<AvatarUpload, ApiError> {
        refuse_inactive(&self.store, caller).await?;
        let key = AvatarKey::generate(&caller.user_id, image);
        let upload = self
            .media
            .presign_upload(key.as_str(), image, MAX_AVATAR_BYTES)
            .await
            .map_err(errors::api)?;
        Ok(AvatarUpload {
            key: key.as_str().to_owned(),
            upload,
            max_size: MAX_AVATAR_BYTES,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use shutter_events::Event;

    use super::*;
    use crate::testing::{app, block, caller, register, staff, unblock};

    fn patch(json: &str) -> ProfilePatch {
        serde_json::from_str(json).unwrap()
    }

    fn name(raw: &str) -> Username {
        Username::try_from(raw.to_owned()).unwrap()
    }

    #[tokio::test]
    async fn only_the_owner_edits_their_profile() {
        // GIVEN alice and bob
        let app = app();
        let alice = register(&app, "alice").await;
        let bob = register(&app, "bob").await;
        // WHEN bob edits "his profile" (the route names no one else's)
        let view = app
            .update_profile(&caller(&bob), &patch(r#"{"bio":"bob here"}"#), "c")
            .await
            .unwrap();
        // THEN bob's profile changed, with one event about bob, and alice's did not
        assert_eq!(
            (view.id.as_str(), view.bio.as_str()),
            (bob.user_id.as_str(), "bob here")
        );
        let alice_now = app.store.by_id(&alice.user_id).await.unwrap().unwrap();
        assert_eq!(alice_now, alice);
        let events = app.store.events();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].aggregate_id, bob.user_id.as_str());
        assert_eq!(events[0].actor.as_ref(), Some(&bob.user_id));
        assert_eq!(events[0].correlation_id, "c");
        let Event::ProfileUpdated(facts) = &events[0].event else {
            panic!("a ProfileUpdated")
        };
        assert_eq!(
            facts,
            &app.store
                .by_id(&bob.user_id)
                .await
                .unwrap()
                .unwrap()
                .facts()
        );
    }

    #[tokio::test]
    async fn someone_without_a_profile_edits_nothing() {
        // GIVEN alice, and mallory whose registration is not applied
        let app = app();
        let alice = register(&app, "alice").await;
        let mallory = crate::testing::unregistered("mallory");
        // WHEN mallory edits THEN 404, nothing is created, changed or emitted
        let err = app
            .update_profile(&caller(&mallory), &patch(r#"{"bio":"pwned"}"#), "c")
            .await
            .unwrap_err();
        assert_eq!(err.status(), 404);
        assert_eq!(app.store.profile_count(), 1);
        assert_eq!(
            app.store.by_id(&alice.user_id).await.unwrap().unwrap(),
            alice
        );
        assert!(app.store.events().is_empty());
        assert_eq!(
            app.my_profile(&caller(&mallory))
                .await
                .unwrap_err()
                .status(),
            404
        );
    }

    #[tokio::test]
    async fn an_edit_that_changes_nothing_saves_and_emits_nothing() {
        let app = app();
        let alice = register(&app, "alice").await;
        for unchanged in [r#"{}"#, r#"{"bio":null}"#, r#"{"private":false}"#] {
            let view = app
                .update_profile(&caller(&alice), &patch(unchanged), "c")
                .await
                .unwrap();
            assert_eq!(view.id, alice.user_id);
        }
        assert!(app.store.events().is_empty());
        assert_eq!(
            app.store.by_id(&alice.user_id).await.unwrap().unwrap(),
            alice
        );
    }

    #[tokio::test]
    async fn a_profile_changed_meanwhile_is_a_conflict_and_changes_nothing() {
        // GIVEN alice's profile as one request read it, then edited by another
        let app = app();
        let alice = register(&app, "alice").await;
        let read = alice.clone();
        app.update_profile(&caller(&alice), &patch(r#"{"bio":"first"}"#), "c")
            .await
            .unwrap();
        // WHEN the first request saves its own edit of what it read
        let late = read.edited(&patch(r#"{"bio":"second"}"#), "later").unwrap();
        let err = app
            .store
            .save(&read, &late, &late.updated_event("c"))
            .await
            .unwrap_err();
        // THEN it is refused as stale (a 409 for clients), and the first edit stands
        assert_eq!(crate::errors::api(err).status(), 409);
        let now = app.store.by_id(&alice.user_id).await.unwrap().unwrap();
        assert_eq!(now.bio.as_str(), "first");
        assert_eq!(app.store.events().len(), 1);
    }

    #[tokio::test]
    async fn a_block_hides_profiles_both_ways_but_not_from_others_or_staff() {
        // GIVEN alice, bob and carol; alice blocks bob (from the follows topic)
        let app = app();
        let alice = register(&app, "alice").await;
        let bob = register(&app, "bob").await;
        let carol = register(&app, "carol").await;
        block(&app, &alice, &bob, 1).await;
        // THEN neither sees the other
        for (viewer, whose) in [(&bob, "alice"), (&alice, "bob")] {
            let err = app
                .profile(&caller(viewer), &name(whose))
                .await
                .unwrap_err();
            assert_eq!(err.status(), 404, "{whose}");
        }
        // AND each still sees their own, carol sees both, staff see both
        assert!(app.profile(&caller(&alice), &name("alice")).await.is_ok());
        for whose in ["alice", "bob"] {
            assert!(app.profile(&caller(&carol), &name(whose)).await.is_ok());
            assert!(app.profile(&staff(&bob), &name(whose)).await.is_ok());
        }
        // WHEN alice unblocks bob THEN they see each other again
        unblock(&app, &alice, &bob, 2).await;
        assert!(app.profile(&caller(&bob), &name("alice")).await.is_ok());
        assert!(app.profile(&caller(&alice), &name("bob")).await.is_ok());
    }

    #[tokio::test]
    async fn avatar_upload_forms_pin_the_callers_own_prefix_and_type() {
        let app = app();
        let alice = crate::testing::unregistered("alice");
        let upload = app
            .avatar_upload(&caller(&alice), ImageType::Jpeg)
            .await
            .unwrap();
        let key = AvatarKey::parse(&upload.key).unwrap();
        assert_eq!(key.user_id(), &alice.user_id);
        assert!(upload.key.ends_with(".jpg"));
        assert_eq!(upload.upload.fields["Content-Type"], "image/jpeg");
        assert_eq!(upload.max_size, MAX_AVATAR_BYTES);
    }
}
