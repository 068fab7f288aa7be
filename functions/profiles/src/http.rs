//! The profile endpoints: parse the request into typed values, call the use case, answer.

use serde::Deserialize;
use shutter_core::ApiError;
#[allow(unused_imports)] // the OpenAPI attributes name it
use shutter_core::Problem;
use shutter_core::validate::Username;
use shutter_http::lambda_http::http::StatusCode;
use shutter_http::lambda_http::{Body, Request, Response};
use shutter_http::{ApiRequest, Caller, json};
use shutter_media::MediaStore;
use utoipa::ToSchema;

use crate::App;
#[allow(unused_imports)] // the OpenAPI attributes name them
use crate::model::{AvatarUpload, ProfileView};
use crate::model::{ImageType, MAX_AVATAR_BYTES, ProfilePatch, avatar_size_allowed, avatar_type};
use crate::store::ProfilesStore;

type ApiResult = Result<Response<Body>, ApiError>;

/// `GET /v1/profiles/{username}`: public fields and counters. The same function serves
/// `GET /v1/profiles/me` (the route has no `username`): the caller's own profile.
#[utoipa::path(
    get, path = "/v1/profiles/{username}", tag = "profiles", security(("bearer" = ["user"])),
    summary = "A user's public profile and counters",
    params(("username" = Username, Path, description = "The username (case-insensitive)")),
    responses((status = 200, description = "The profile", body = ProfileView), (status = 404, description = "No such profile (or one who blocks you, or whom you block, or who is banned)", body = Problem, content_type = "application/problem+json"))
)]
#[tracing::instrument(skip_all)]
pub async fn get_profile<S: ProfilesStore, M: MediaStore>(
    app: &App<S, M>,
    req: Request,
) -> ApiResult {
    let caller = Caller::from_request(&req)?;
    let Ok(raw) = req.path_param("username") else {
        return json(StatusCode::OK, &app.my_profile(&caller).await?);
    };
    let username = Username::try_from(raw).map_err(|why| ApiError::invalid("username", why))?;
    json(StatusCode::OK, &app.profile(&caller, &username).await?)
}

/// `GET /v1/profiles/me`: the caller's own profile.
#[utoipa::path(
    get, path = "/v1/profiles/me", tag = "profiles", security(("bearer" = ["user"])),
    summary = "Your own profile",
    responses((status = 200, description = "Your profile", body = ProfileView), (status = 404, description = "Your profile is not there yet (it follows registration) or no longer", body = Problem, content_type = "application/problem+json"))
)]
#[tracing::instrument(skip_all)]
pub async fn get_my_profile<S: ProfilesStore, M: MediaStore>(
    app: &App<S, M>,
    req: Request,
) -> ApiResult {
    let caller = Caller::from_request(&req)?;
    json(StatusCode::OK, &app.my_profile(&caller).await?)
}

/// `PATCH /v1/profiles/me` {display_name?, bio?, website?, private?} -> 200 with the profile.
#[utoipa::path(
    patch, path = "/v1/profiles/me", tag = "profiles", security(("bearer" = ["user"])),
    summary = "Edit your profile",
    description = "Absent or null fields stay as they are. Emits `ProfileUpdated` when something changed.",
    request_body(content = ProfilePatch, example = json!({"display_name": "Alice A.", "bio": "photos of clouds", "private": false})),
    responses((status = 200, description = "The profile after the change", body = ProfileView), (status = 403, description = "`account_suspended`: your account is suspended (`until` says until when) or banned; nothing changed", body = Problem, content_type = "application/problem+json"), (status = 404, description = "No such profile", body = Problem, content_type = "application/problem+json"))
)]
#[tracing::instrument(skip_all)]
pub async fn update_profile<S: ProfilesStore, M: MediaStore>(
    app: &App<S, M>,
    req: Request,
) -> ApiResult {
    let caller = Caller::from_request(&req)?;
    let patch: ProfilePatch = req.json()?;
    let view = app
        .update_profile(&caller, &patch, &req.correlation_id())
        .await?;
    json(StatusCode::OK, &view)
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

impl AvatarRequest {
    /// The image type to upload, if the type and the size are ones an avatar may have.
    fn image(&self) -> Result<ImageType, ApiError> {
        let image = avatar_type(&self.content_type).ok_or_else(|| {
            ApiError::invalid(
                "content_type",
                "must be one of image/jpeg, image/png, image/webp",
            )
        })?;
        if !avatar_size_allowed(self.size) {
            return Err(ApiError::invalid(
                "size",
                format!("must be from 1 to {MAX_AVATAR_BYTES} bytes"),
            ));
        }
        Ok(image)
    }
}

/// How an avatar upload form is counted by its rate limits: the media bytes it allows,
/// which is [`MAX_AVATAR_BYTES`] whatever size is declared (the form caps it there).
pub async fn avatar_rate_scope<D>(
    _: &'static D,
    _: Vec<u8>,
) -> Result<shutter_ratelimit::Scope, ApiError> {
    Ok(shutter_ratelimit::Scope::Count {
        user: None,
        costs: vec![(
            shutter_ratelimit::http::MEDIA_BYTES.to_owned(),
            MAX_AVATAR_BYTES,
        )],
    })
}

/// `POST /v1/profiles/me/avatar` {content_type, size} -> 201 with a pre-signed POST form.
/// The avatar changes once the upload is verified (see [`crate::avatar`]).
#[utoipa::path(
    post, path = "/v1/profiles/me/avatar", tag = "profiles", security(("bearer" = ["user"])),
    summary = "Get a pre-signed S3 form to upload your avatar",
    description = "Send `upload.fields` plus a `file` part as multipart/form-data to `upload.url`. The avatar changes once the upload is verified (real type and size).",
    request_body(content = AvatarRequest, example = json!({"content_type": "image/png", "size": 20480})),
    responses((status = 201, description = "The upload form", body = AvatarUpload), (status = 403, description = "`account_suspended`: your account is suspended (`until` says until when) or banned; nothing changed", body = Problem, content_type = "application/problem+json"), (status = 429, description = "`rate_limited`: your upload forms of the day allow too many bytes (`media_bytes`: an avatar form counts 5 MB); nothing changed", body = Problem, content_type = "application/problem+json", headers(("Retry-After" = u64, description = "Seconds until a retry can pass"), ("RateLimit-Policy" = String, description = "This route's limits, each `\"name-window\";q=quota;w=seconds` (IETF RateLimit fields; on every answer of the route)"), ("RateLimit" = String, description = "What remains of each limit and when it resets, `\"name-window\";r=remaining;t=seconds`"))))
)]
#[tracing::instrument(skip_all)]
pub async fn avatar_upload<S: ProfilesStore, M: MediaStore>(
    app: &App<S, M>,
    req: Request,
) -> ApiResult {
    let caller = Caller::from_request(&req)?;
    let body: AvatarRequest = req.json()?;
    let image = body.image()?;
    json(
        StatusCode::CREATED,
        &app.avatar_upload(&caller, image).await?,
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use shutter_events::{Event, EventType};
    use shutter_http::test_support::api_request;

    use super::*;
    use crate::model::Profile;
    use crate::testing::{app, register, unregistered};

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
        let app = app();
        let alice = register(&app, "alice").await;
        let req = as_owner(
            &alice,
            "GET",
            "/v1/profiles/Alice",
            &[("username", "Alice")],
            "",
        );
        let j = body(get_profile(&app, req).await.unwrap());
        assert_eq!(
            (j["id"].as_str(), j["follower_count"].as_u64()),
            (Some(alice.user_id.as_str()), Some(0))
        );
        let missing = as_owner(&alice, "GET", "/", &[("username", "nobody")], "");
        assert_eq!(get_profile(&app, missing).await.unwrap_err().status(), 404);
        let invalid = as_owner(&alice, "GET", "/", &[("username", "no way!")], "");
        assert_eq!(
            get_profile(&app, invalid)
                .await
                .unwrap_err()
                .problem()
                .field
                .as_deref(),
            Some("username")
        );
    }

    #[tokio::test]
    async fn without_a_username_the_route_serves_the_callers_own_profile() {
        let app = app();
        let alice = register(&app, "alice").await;
        let j = body(
            get_profile(&app, as_owner(&alice, "GET", "/v1/profiles/me", &[], ""))
                .await
                .unwrap(),
        );
        assert_eq!(j["username"], "alice");
        let j = body(
            get_my_profile(&app, as_owner(&alice, "GET", "/v1/profiles/me", &[], ""))
                .await
                .unwrap(),
        );
        assert_eq!(j["id"], alice.user_id.as_str());
        let anonymous = api_request("GET", "/v1/profiles/me", &[], "", None);
        assert_eq!(
            get_profile(&app, anonymous).await.unwrap_err().status(),
            401
        );
    }

    #[tokio::test]
    async fn owners_edit_only_their_own_profile_with_an_event() {
        let app = app();
        let alice = register(&app, "alice").await;
        let req = as_owner(
            &alice,
            "PATCH",
            "/v1/profiles/me",
            &[],
            r#"{"bio":"hi there","private":true,"website":"https://alice.dev"}"#,
        );
        let j = body(update_profile(&app, req).await.unwrap());
        assert_eq!(
            (j["bio"].as_str(), j["private"].as_bool()),
            (Some("hi there"), Some(true))
        );
        let events = app.store.events();
        assert_eq!(events.len(), 1);
        assert_eq!(
            (events[0].event_type(), events[0].aggregate_id.as_str()),
            (EventType::ProfileUpdated, alice.user_id.as_str())
        );
        let Event::ProfileUpdated(facts) = &events[0].event else {
            panic!("a ProfileUpdated")
        };
        assert!(facts.private);

        // The route has no id in it: another user's PATCH edits their own (missing) profile.
        let mallory = unregistered("mallory");
        let req = as_owner(
            &mallory,
            "PATCH",
            "/v1/profiles/me",
            &[],
            r#"{"bio":"pwned"}"#,
        );
        assert_eq!(update_profile(&app, req).await.unwrap_err().status(), 404);
        assert_eq!(
            app.store
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
            let err = update_profile(&app, as_owner(&alice, "PATCH", "/", &[], bad))
                .await
                .unwrap_err();
            assert_eq!(
                (err.status(), err.problem().field.as_deref()),
                (400, Some(field)),
                "{bad}"
            );
        }
        let malformed = update_profile(&app, as_owner(&alice, "PATCH", "/", &[], "{not json"))
            .await
            .unwrap_err();
        assert_eq!(malformed.status(), 400);
        assert_eq!(app.store.events().len(), 1, "refused edits emit nothing");
        for unchanged in [r#"{}"#, r#"{"bio": null}"#, r#"{"bio": "hi there"}"#] {
            let resp = update_profile(&app, as_owner(&alice, "PATCH", "/", &[], unchanged))
                .await
                .unwrap();
            assert_eq!(resp.status(), 200, "{unchanged}");
        }
        assert_eq!(
            app.store.events().len(),
            1,
            "an edit that changes nothing emits nothing"
        );
    }

    #[tokio::test]
    async fn avatar_uploads_are_limited_to_images_of_5_mb() {
        // Signing reads no profile: an account without one (yet) gets a form.
        let app = app();
        let alice = unregistered("alice");
        let ok = as_owner(
            &alice,
            "POST",
            "/",
            &[],
            r#"{"content_type":"image/png","size":1000}"#,
        );
        let resp = avatar_upload(&app, ok).await.unwrap();
        assert_eq!(resp.status(), 201);
        let j = body(resp);
        let key = j["key"].as_str().unwrap();
        assert!(key.starts_with(&format!("avatars/{}/", alice.user_id)) && key.ends_with(".png"));
        assert_eq!(j["upload"]["fields"]["Content-Type"], "image/png");
        assert_eq!(j["max_size"], MAX_AVATAR_BYTES);
        for (bad, field) in [
            (r#"{"content_type":"image/gif","size":10}"#, "content_type"),
            (r#"{"content_type":"image/png","size":5242881}"#, "size"),
            (r#"{"content_type":"image/png","size":0}"#, "size"),
            (r#"{"content_type":"image/png","size":-1}"#, "size"),
        ] {
            let err = avatar_upload(&app, as_owner(&alice, "POST", "/", &[], bad))
                .await
                .unwrap_err();
            assert_eq!(err.problem().field.as_deref(), Some(field), "{bad}");
        }
    }

    #[test]
    fn the_openapi_document_has_every_profiles_route() {
        #[derive(utoipa::OpenApi)]
        #[openapi(paths(get_profile, get_my_profile, update_profile, avatar_upload))]
        struct Doc;
        let doc = <Doc as utoipa::OpenApi>::openapi();
        let routes: Vec<_> = doc
            .paths
            .paths
            .iter()
            .map(|(path, item)| {
                let methods = [
                    ("get", item.get.is_some()),
                    ("patch", item.patch.is_some()),
                    ("post", item.post.is_some()),
                ];
                let methods: Vec<_> = methods.iter().filter(|m| m.1).map(|m| m.0).collect();
                (path.as_str(), methods)
            })
            .collect();
        assert_eq!(
            routes,
            vec![
                ("/v1/profiles/me", vec!["get", "patch"]),
                ("/v1/profiles/me/avatar", vec!["post"]),
                ("/v1/profiles/{username}", vec!["get"]),
            ]
        );
    }
}
