//! The OpenAPI document (generated from the handlers) and template.yaml (what API Gateway
//! and the devstack serve) describe the same routes, methods and scopes.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::path::Path;

use devstack::template::Template;
use serde_json::Value;

/// (METHOD, path, sorted scopes, authorized?)
type Route = (String, String, Vec<String>, bool);

/// The functions that serve pages, not API operations, so the document does not list their
/// routes: the document itself (`/openapi.json`) and Swagger UI (`/docs`), and the
/// moderation panel (`/admin`).
const PAGE_BINARIES: [&str; 2] = ["docs-serve", "admin-page"];

fn template_routes() -> BTreeSet<Route> {
    let t =
        Template::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../template.yaml")).unwrap();
    let mut routes = BTreeSet::new();
    for (id, props) in t.resources_of("AWS::Serverless::Function") {
        let binary = &t.resource(id)["Metadata"]["BuildProperties"]["Binary"];
        if PAGE_BINARIES.iter().any(|b| binary == b) {
            continue;
        }
        for (_, event) in props["Events"].as_object().into_iter().flatten() {
            if event["Type"] != "HttpApi" {
                continue;
            }
            let p = &event["Properties"];
            let mut scopes: Vec<String> = p["Auth"]["AuthorizationScopes"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|s| s.as_str().unwrap().to_owned())
                .collect();
            scopes.sort();
            // Every route names its authorizer: NONE or the JWT one.
            let authorized = p["Auth"]["Authorizer"]
                .as_str()
                .is_some_and(|a| a != "NONE");
            routes.insert((
                p["Method"].as_str().unwrap().to_uppercase(),
                p["Path"].as_str().unwrap().to_owned(),
                scopes,
                authorized,
            ));
        }
    }
    routes
}

fn document_routes(doc: &Value) -> BTreeSet<Route> {
    let mut routes = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let requirements = op["security"].as_array().cloned().unwrap_or_default();
            let mut scopes: Vec<String> = requirements
                .iter()
                .filter_map(|r| r.get("bearer"))
                .flat_map(|s| s.as_array().cloned().unwrap_or_default())
                .map(|s| s.as_str().unwrap().to_owned())
                .collect();
            scopes.sort();
            let authorized = requirements.iter().any(|r| r.get("bearer").is_some());
            routes.insert((method.to_uppercase(), path.clone(), scopes, authorized));
        }
    }
    routes
}

#[test]
fn the_document_and_the_template_agree_on_every_route() {
    let doc = shutter_apidocs::openapi(None);
    let template = template_routes();
    let documented = document_routes(&doc);
    let undocumented: Vec<_> = template.difference(&documented).collect();
    let unrouted: Vec<_> = documented.difference(&template).collect();
    assert!(
        undocumented.is_empty() && unrouted.is_empty(),
        "in template.yaml, not in the document: {undocumented:#?}\nin the document, not in template.yaml: {unrouted:#?}"
    );
    assert!(template.len() >= 13);
}

#[test]
fn the_document_is_openapi_3_1_with_the_bearer_scheme_and_problem_errors() {
    let doc = shutter_apidocs::openapi(Some("http://127.0.0.1:8080"));
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    assert_eq!(doc["servers"][0]["url"], "http://127.0.0.1:8080");
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    let register = &doc["paths"]["/v1/auth/register"]["post"];
    assert!(register["responses"]["400"]["content"]["application/problem+json"].is_object());
    assert!(
        register["requestBody"]["content"]["application/json"]["example"].is_object(),
        "examples are part of the document"
    );
}
