//! The profile endpoints.

use serde::Deserialize;
use serde::Serialize;
use shutter_core::ApiError;
#[allow(unused_imports)] // the OpenAPI attributes name it
use shutter_core::Problem;
use shutter_core::validate::Username;
use shutter_events::legacy::Envelope;
use shutter_http::lambda_http::http::StatusCode;
use shutter_http::lambda_http::{Body, Request, Response};
use shutter_http::{ApiRequest, Caller, json};
use utoipa::ToSchema;

use crate::avatar::{MAX_AVATAR_BYTES, MediaStore, UploadForm};
use crate::model::{Profile, ProfilePatch, ProfileUpdated, ProfileView};
use crate::store::ProfilesStore;

type ApiResult = Result<Response<Body>, ApiError>;

async fn view<M: MediaStore>(media: &M, profile: &Profile) -> Result<ProfileView, ApiError> {
    let avatar_url = match &profile.avatar_key {
        Some(key) => Some(media.view_url(key).await?),
        None => None,
    };
    Ok(ProfileView::new(profile, avatar_url))
}

/// `GET /v1/profiles/{username}`: public fields and counters. The same function serves
/// `GET /v1/profiles/me` (the route has no `username`): the caller's own profile.
#[utoipa::path(
    get, path = "/v1/profiles/{username}", tag = "profiles", security(("bearer" = ["user"])),
    summary = "A user's public profile and counters",
    params(("username" = Username, Path, description = "The username (case-insensitive)")),
    responses((status = 200, description = "The profile", body = ProfileView), (status = 404, description = "No such profile (or one who blocks you, or whom you block)", body = Problem, content_type = "application/problem+json"))
)]
pub async fn get_profile<S: ProfilesStore, M: MediaStore>(
    store: &S,
    media: &M,
    req: Request,
) -> ApiResult {
    let caller = Caller::from_request(&req)?;
    let Ok(raw) = req.path_param("username") else {
        return get_my_profile(store, media, &caller).await;
    };
    let username = Username::try_from(raw).map_err(|why| ApiError::invalid("username", why))?;
    let profile = store
        .by_username(&username)
        .await?
        .ok_or(ApiError::NotFound("profile"))?;
    // Someone who blocks the caller, or whom the caller blocks, is hidden from them.
    if profile.user_id != caller.user_id
        && !caller.is_staff()
        && store
            .blocked_between(&caller.user_id, &profile.user_id)
            .await?
    {
        return Err(ApiError::NotFound("profile"));
    }
    json(StatusCode::OK, &view(media, &profile).await?)
}

/// `GET /v1/profiles/me`: the caller's own profile.
#[utoipa::path(
    get, path = "/v1/profiles/me", tag = "profiles", security(("bearer" = ["user"])),
    summary = "Your own profile",
    responses((status = 200, description = "Your profile", body = ProfileView), (status = 404, description = "Your profile is not there yet (it follows registration) or no longer", body = Problem, content_type = "application/problem+json"))
)]
pub async fn get_my_profile<S: ProfilesStore, M: MediaStore>(
    store: &S,
    media: &M,
    caller: &Caller,
) -> ApiResult {
    let profile = store
        .by_id(&caller.user_id)
        .await?
        .ok_or(ApiError::NotFound("profile"))?;
    json(StatusCode::OK, &view(media, &profile).await?)
}

/// `PATCH /v1/profiles/me` {display_name?, bio?, website?, private?} -> 200 with the profile.
#[utoipa::path(
    patch, path = "/v1/profiles/me", tag = "profiles", security(("bearer" = ["user"])),
    summary = "Edit your profile",
    description = "Absent or null fields stay as they are. Emits `ProfileUpdated` when something changed.",
    request_body(content = ProfilePatch, example = json!({"display_name": "Alice A.", "bio": "photos of clouds", "private": false})),
    responses((status = 200, description = "The profile after the change", body = ProfileView), (status = 404, description = "No such profile", body = Problem, content_type = "application/problem+json"))
)]
pub async fn update_profile<S: ProfilesStore, M: MediaStore>(
    store: &S,
    media: &M,
    req: Request,
) -> ApiResult {
    let caller = Caller::from_request(&req)?;
    let patch: ProfilePatch = req.json()?;
    let previous = store
        .by_id(&caller.user_id)
        .await?
        .ok_or(ApiError::NotFound("profile"))?;
    let mut updated = previous.clone();
    patch.apply(&mut updated);
    if updated != previous {
        updated.updated_at = shutter_core::now_rfc3339();
        let event = Envelope::new(
            "ProfileUpdated",
            &caller.user_id,
            Some(&caller.user_id),
            &req.correlation_id(),
            &ProfileUpdated::from(&updated),
        );
        store.save(&previous, &updated, &event).await?;
    }
    json(StatusCode::OK, &view(media, &updated).await?)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct AvatarRequest {
    /// image/jpeg, image/png or image/webp
    #[schema(pattern = "^image/(jpeg|png|webp)$")]
    content_type: String,
    /// The file's size in bytes, at most 5 MB
    #[schema(minimum = 1, maximum = 5242880)]
    #[serde(deserialize_with = "shutter_core::validate::whole_number")]
    size: u64,
}

/// Where and how to upload the avatar.
#[derive(Debug, Serialize, ToSchema)]
struct AvatarUpload {
    /// The object key; the avatar URL contains it once the upload is verified.
    key: String,
    upload: UploadForm,
    max_size: u64,
}

/// `POST /v1/profiles/me/avatar` {content_type, size} -> 201 with a pre-signed POST form.
/// The avatar changes once the upload is verified (see `consumers::avatar_uploaded`).
#[utoipa::path(
    post, path = "/v1/profiles/me/avatar", tag = "profiles", security(("bearer" = ["user"])),
    summary = "Get a pre-signed S3 form to upload your avatar",
    description = "Send `upload.fields` plus a `file` part as multipart/form-data to `upload.url`. The avatar changes once the upload is verified (real type and size).",
    request_body(content = AvatarRequest, example = json!({"content_type": "image/png", "size": 20480})),
    responses((status = 201, description = "The upload form", body = AvatarUpload))
)]
pub async fn avatar_upload<M: MediaStore>(media: &M, req: Request) -> ApiResult {
    let caller = Caller::from_request(&req)?;
    let body: AvatarRequest = req.json()?;
    let image = crate::avatar::avatar_type(&body.content_type).ok_or_else(|| {
        ApiError::invalid(
            "content_type",
            "must be one of image/jpeg, image/png, image/webp",
        )
    })?;
    if body.size == 0 || body.size > MAX_AVATAR_BYTES {
        return Err(ApiError::invalid(
            "size",
            format!("must be from 1 to {MAX_AVATAR_BYTES} bytes"),
        ));
    }
    let key = format!(
        "avatars/{}/{}.{}",
        caller.user_id,
        shutter_core::new_id(),
        image.extension()
    );
    let form = media.presign_upload(&key, image, MAX_AVATAR_BYTES).await?;
    json(
        StatusCode::CREATED,
        &AvatarUpload {
            key,
            upload: form,
            max_size: MAX_AVATAR_BYTES,
        },
    )
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::store::memory::MemoryProfilesStore;
    use shutter_http::test_support::api_request;

    pub use crate::avatar::MemoryMedia;

    pub async fn store_with(username: &str) -> (MemoryProfilesStore, Profile) {
        let store = MemoryProfilesStore::default();
        let profile = Profile::new(
            &shutter_core::new_id(),
            Username::try_from(username.to_owned()).unwrap(),
            "2026-01-01T00:00:00Z",
        );
        store
            .create("test", &shutter_core::new_id(), &profile)
            .await
            .unwrap();
        (store, profile)
    }

    fn as_owner(
        p: &Profile,
        method: &str,
        path: &str,
        params: &[(&str, &str)],
        body: &str,
    ) -> Request {
        api_request(
            method,
            path,
            params,
            body,
            Some((&p.user_id, p.username.as_str(), "user")),
        )
    }

    fn body(resp: Response<Body>) -> serde_json::Value {
        serde_json::from_slice(resp.body().as_ref()).unwrap()
    }

    #[tokio::test]
    async fn profiles_are_found_by_username_case_insensitively() {
        let (store, alice) = store_with("alice").await;
        let media = MemoryMedia::default();
        let req = as_owner(
            &alice,
            "GET",
            "/v1/profiles/Alice",
            &[("username", "Alice")],
            "",
        );
        let j = body(get_profile(&store, &media, req).await.unwrap());
        assert_eq!(
            (j["id"].as_str(), j["follower_count"].as_u64()),
            (Some(alice.user_id.as_str()), Some(0))
        );
        let missing = as_owner(&alice, "GET", "/", &[("username", "nobody")], "");
        assert_eq!(
            get_profile(&store, &media, missing)
                .await
                .unwrap_err()
                .status(),
            404
        );
        let invalid = as_owner(&alice, "GET", "/", &[("username", "no way!")], "");
        assert_eq!(
            get_profile(&store, &media, invalid)
                .await
                .unwrap_err()
                .problem()
                .field
                .as_deref(),
            Some("username")
        );
    }

    #[tokio::test]
    async fn a_block_hides_profiles_both_ways_but_not_from_others_or_staff() {
        let (store, alice) = store_with("alice").await;
        let bob = Profile::new(
            &shutter_core::new_id(),
            Username::try_from("bob".to_owned()).unwrap(),
            "2026-01-01T00:00:00Z",
        );
        store
            .create("test", &shutter_core::new_id(), &bob)
            .await
            .unwrap();
        store.block(&alice.user_id, &bob.user_id);
        let media = MemoryMedia::default();
        let get = |viewer: &Profile, whose: &str, scope: &str| {
            api_request(
                "GET",
                "/",
                &[("username", whose)],
                "",
                Some((&viewer.user_id, viewer.username.as_str(), scope)),
            )
        };
        for (viewer, whose) in [(&bob, "alice"), (&alice, "bob")] {
            let err = get_profile(&store, &media, get(viewer, whose, "user"))
                .await
                .unwrap_err();
            assert_eq!(err.status(), 404);
        }
        // Each still sees their own; staff see both.
        assert!(
            get_profile(&store, &media, get(&alice, "alice", "user"))
                .await
                .is_ok()
        );
        assert!(
            get_profile(&store, &media, get(&bob, "alice", "user moderator"))
                .await
                .is_ok()
        );
    }

    #[tokio::test]
    async fn owners_edit_only_their_own_profile_with_an_event() {
        let (store, alice) = store_with("alice").await;
        let media = MemoryMedia::default();
        let req = as_owner(
            &alice,
            "PATCH",
            "/v1/profiles/me",
            &[],
            r#"{"bio":"hi there","private":true,"website":"https://alice.dev"}"#,
        );
        let j = body(update_profile(&store, &media, req).await.unwrap());
        assert_eq!(
            (j["bio"].as_str(), j["private"].as_bool()),
            (Some("hi there"), Some(true))
        );
        let events = store.events();
        assert_eq!(events.len(), 1);
        assert_eq!(
            (
                events[0].event_type.as_str(),
                events[0].aggregate_id.as_str()
            ),
            ("ProfileUpdated", alice.user_id.as_str())
        );

        // The route has no id in it: another user's PATCH edits their own (missing) profile.
        let mallory = Profile::new(
            &shutter_core::new_id(),
            Username::try_from("mallory".to_owned()).unwrap(),
            "t",
        );
        let req = as_owner(
            &mallory,
            "PATCH",
            "/v1/profiles/me",
            &[],
            r#"{"bio":"pwned"}"#,
        );
        assert_eq!(
            update_profile(&store, &media, req)
                .await
                .unwrap_err()
                .status(),
            404
        );
        assert_eq!(
            store
                .by_id(&alice.user_id)
                .await
                .unwrap()
                .unwrap()
                .bio
                .as_str(),
            "hi there"
        );

        for (bad, field) in [
            (
                r#"{"bio":"x"}"#.replace('x', &"b".repeat(151)).as_str(),
                "bio",
            ),
            (r#"{"website":"ftp://x"}"#, "website"),
            (r#"{"private":"yes"}"#, "private"),
            (r#"{"username":"root"}"#, "username"),
        ] {
            let err = update_profile(&store, &media, as_owner(&alice, "PATCH", "/", &[], bad))
                .await
                .unwrap_err();
            assert_eq!(
                (err.status(), err.problem().field.as_deref()),
                (400, Some(field)),
                "{bad}"
            );
        }
        assert_eq!(store.events().len(), 1, "refused edits emit nothing");
        for unchanged in [r#"{}"#, r#"{"bio": null}"#, r#"{"bio": "hi there"}"#] {
            let resp = update_profile(
                &store,
                &media,
                as_owner(&alice, "PATCH", "/", &[], unchanged),
            )
            .await
            .unwrap();
            assert_eq!(resp.status(), 200, "{unchanged}");
        }
        assert_eq!(
            store.events().len(),
            1,
            "an edit that changes nothing emits nothing"
        );
    }

    #[tokio::test]
    async fn avatar_uploads_are_limited_to_images_of_5_mb() {
        let (_, alice) = store_with("alice").await;
        let media = MemoryMedia::default();
        let ok = as_owner(
            &alice,
            "POST",
            "/",
            &[],
            r#"{"content_type":"image/png","size":1000}"#,
        );
        let j = body(avatar_upload(&media, ok).await.unwrap());
        let key = j["key"].as_str().unwrap();
        assert!(key.starts_with(&format!("avatars/{}/", alice.user_id)) && key.ends_with(".png"));
        assert_eq!(j["upload"]["fields"]["Content-Type"], "image/png");
        for (bad, field) in [
            (r#"{"content_type":"image/gif","size":10}"#, "content_type"),
            (r#"{"content_type":"image/png","size":5242881}"#, "size"),
            (r#"{"content_type":"image/png","size":0}"#, "size"),
            (r#"{"content_type":"image/png","size":-1}"#, "size"),
        ] {
            let err = avatar_upload(&media, as_owner(&alice, "POST", "/", &[], bad))
                .await
                .unwrap_err();
            assert_eq!(err.problem().field.as_deref(), Some(field), "{bad}");
        }
    }
}
