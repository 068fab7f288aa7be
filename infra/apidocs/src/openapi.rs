//! The OpenAPI 3.1 document of the HTTP API, assembled from the `#[utoipa::path]`
//! attributes on the HTTP adapters and the `ToSchema` of their own request and response
//! types. Conventions every operation shares (the bearer scheme, problem+json errors, the
//! gateway's own answers) are added once here, not repeated on each adapter.
//!
//! `tests/tests/api_contract.rs` fails when this document and template.yaml disagree on a
//! route, a method or a scope.

use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{
    ContentBuilder, ObjectBuilder, OpenApi as Document, Ref, RefOr, ResponseBuilder, schema::Type,
};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Shutter API",
        version = "1",
        description = "An Instagram-style backend. Send the access token from `POST /v1/auth/login` as `Authorization: Bearer <token>`. Errors are `application/problem+json` with a stable `code` (and `field` on a 4xx); the gateway itself answers 401/403 with `{\"message\": ...}`."
    ),
    paths(
        shutter_identity::http::auth::register,
        shutter_identity::http::auth::login,
        shutter_identity::http::auth::refresh,
        shutter_identity::http::auth::logout,
        shutter_identity::http::auth::jwks,
        shutter_identity::http::auth::openid_configuration_document,
        shutter_identity::http::account::me,
        shutter_identity::http::account::update_me,
        shutter_identity::http::account::change_password,
        shutter_identity::http::account::delete_me,
        shutter_exports::http::start,
        shutter_exports::http::status,
        shutter_profiles::http::get_profile,
        shutter_profiles::http::get_my_profile,
        shutter_profiles::http::update_profile,
        shutter_profiles::http::avatar_upload,
        shutter_posts::http::create_post,
        shutter_posts::http::get_post,
        shutter_posts::http::update_post,
        shutter_posts::http::delete_post,
        shutter_posts::http::posts_by_author,
        shutter_posts::http::posts_by_hashtag,
        shutter_likes::http::like,
        shutter_likes::http::unlike,
        shutter_likes::http::likers,
        shutter_comments::http::create_comment,
        shutter_comments::http::list_comments,
        shutter_comments::http::edit_comment,
        shutter_comments::http::delete_comment,
        shutter_comments::http::like_comment,
        shutter_comments::http::unlike_comment,
        shutter_follows::http::follow,
        shutter_follows::http::unfollow,
        shutter_follows::http::followers,
        shutter_follows::http::following,
        shutter_follows::http::follow_requests,
        shutter_follows::http::approve,
        shutter_follows::http::decline,
        shutter_follows::http::block,
        shutter_follows::http::unblock,
        shutter_feed::http::feed,
        shutter_search::http::search_posts,
        shutter_search::http::search_users,
        shutter_search::http::search_hashtags,
        shutter_moderation::http::report,
        shutter_moderation::http::reports,
        shutter_moderation::http::modlog,
        shutter_moderation::http::grant_role,
        shutter_moderation::http::revoke_role,
        shutter_moderation::http::resolve,
        shutter_moderation::http::unsuspend,
        shutter_moderation::http::lookup,
    ),
    components(schemas(shutter_core::Problem)),
    modifiers(&Conventions),
    tags(
        (name = "auth", description = "Registration, login, token refresh and the signing keys"),
        (name = "users", description = "Your own account"),
        (name = "profiles", description = "Public profiles and avatars"),
        (name = "posts", description = "Posts, their media uploads, and lists by author and hashtag"),
        (name = "likes", description = "Likes on posts and who likes a post"),
        (name = "comments", description = "Comments on posts, replies and comment likes"),
        (name = "follows", description = "Following users, follow requests to private accounts, and blocks"),
        (name = "feed", description = "Your home feed"),
        (name = "search", description = "Searching posts, users and hashtags (what you may see only)"),
        (name = "moderation", description = "Reports, the report queue with previews, actions on reports (remove, suspend, ban), suspensions, staff roles and the modlog (`/v1/admin/` needs a staff scope)"),
    )
)]
struct ApiDoc;

/// The bearer scheme, and the answers every operation can give besides its own.
struct Conventions;

const PROBLEM: &str = "application/problem+json";

fn problem(description: &str) -> RefOr<utoipa::openapi::Response> {
    ResponseBuilder::new()
        .description(description)
        .content(
            PROBLEM,
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("Problem")))
                .build(),
        )
        .build()
        .into()
}

/// API Gateway's own answers (authorizer refusals, timeouts): `{"message": "..."}`.
fn gateway(description: &str) -> RefOr<utoipa::openapi::Response> {
    let schema = ObjectBuilder::new()
        .schema_type(Type::Object)
        .property("message", ObjectBuilder::new().schema_type(Type::String))
        .required("message")
        .build();
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new().schema(Some(schema)).build(),
        )
        .build()
        .into()
}

fn add(op: &mut Operation, status: &str, response: RefOr<utoipa::openapi::Response>) {
    op.responses
        .responses
        .entry(status.to_owned())
        .or_insert(response);
}

impl Modify for Conventions {
    fn modify(&self, doc: &mut Document) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some("An RS256 access token from POST /v1/auth/login; the route's scopes must be in its `scope` claim"))
                    .build(),
            ),
        );
        for item in doc.paths.paths.values_mut() {
            for op in [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ]
            .into_iter()
            .flatten()
            {
                let secured = op
                    .security
                    .as_ref()
                    .is_some_and(|reqs| reqs.iter().any(|r| !is_empty_requirement(r)));
                if op.parameters.as_ref().is_some_and(|p| !p.is_empty()) {
                    add(
                        op,
                        "400",
                        problem("`invalid_input`: a path or query parameter is invalid"),
                    );
                }
                if op.request_body.is_some() {
                    add(
                        op,
                        "400",
                        problem("`malformed_json` or `invalid_input` (with the offending `field`)"),
                    );
                    add(
                        op,
                        "413",
                        problem("`payload_too_large`: the body is over 64 KiB"),
                    );
                    add(
                        op,
                        "415",
                        problem("`unsupported_media_type`: send application/json"),
                    );
                }
                if secured {
                    add(
                        op,
                        "401",
                        gateway(
                            "No token, or one that is invalid, expired or not yet valid (`WWW-Authenticate: Bearer`)",
                        ),
                    );
                    let scope = gateway("The token lacks the route's scope");
                    match op.responses.responses.get_mut("403") {
                        // The operation's own 403 (problem+json) and the gateway's share the status.
                        Some(RefOr::T(own)) => {
                            if let RefOr::T(gw) = scope {
                                own.content.extend(gw.content);
                                own.description = format!(
                                    "{}; or the token lacks the route's scope (`{{\"message\"}}`)",
                                    own.description
                                );
                            }
                        }
                        _ => add(op, "403", scope),
                    }
                }
                add(
                    op,
                    "500",
                    problem("`internal`: the body carries only the request id"),
                );
            }
        }
    }
}

fn is_empty_requirement(r: &utoipa::openapi::security::SecurityRequirement) -> bool {
    serde_json::to_value(r).is_ok_and(|v| v.as_object().is_some_and(|o| o.is_empty()))
}

/// The document.
pub fn document() -> Document {
    ApiDoc::openapi()
}

/// The document as JSON, with `server` as its only server (e.g. the devstack's URL).
pub fn document_json(server: Option<&str>) -> serde_json::Value {
    let mut doc = serde_json::to_value(document()).unwrap_or_default();
    if let Some(url) = server {
        doc["servers"] = serde_json::json!([{ "url": url }]);
    }
    doc
}
