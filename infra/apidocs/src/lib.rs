//! Shutter's reference documents, generated from the code and checked in under `docs/`:
//!
//! - `docs/openapi.json`: the HTTP API (OpenAPI 3.1), from the HTTP adapters'
//!   `#[utoipa::path]` attributes and their own request and response types;
//! - `docs/asyncapi.json`: the events (AsyncAPI 3.0), from the event catalogue and every
//!   service's declared consumers.
//!
//! This crate aggregates every service crate, so it sits beside the devstack in `infra/`,
//! not among the shared crates; the devstack and the deployed docs function serve the
//! checked-in files and depend on no service. `cargo run -p shutter-apidocs` writes them;
//! a test fails when a checked-in document differs from what the code generates.

mod openapi;

use std::path::PathBuf;

use shutter_catalogue::Consumer;

pub use openapi::{document as openapi_document, document_json as openapi};

pub const OPENAPI_FILE: &str = "docs/openapi.json";
pub const ASYNCAPI_FILE: &str = "docs/asyncapi.json";

/// Every event consumer of every service.
pub fn consumers() -> Vec<&'static Consumer> {
    [
        shutter_identity::CONSUMERS,
        shutter_profiles::CONSUMERS,
        shutter_posts::CONSUMERS,
        shutter_likes::CONSUMERS,
        shutter_comments::CONSUMERS,
        shutter_follows::CONSUMERS,
        shutter_feed::CONSUMERS,
        shutter_search::CONSUMERS,
        shutter_moderation::CONSUMERS,
    ]
    .concat()
}

/// The AsyncAPI document of the catalogue and its consumers.
pub fn asyncapi() -> serde_json::Value {
    let consumers: Vec<Consumer> = consumers().into_iter().copied().collect();
    shutter_catalogue::asyncapi::document(&consumers)
}

/// A document as it is checked in: pretty JSON with a final newline.
pub fn render(doc: &serde_json::Value) -> String {
    let mut text = serde_json::to_string_pretty(doc).unwrap_or_default();
    text.push('\n');
    text
}

/// Each checked-in document's path (from the workspace root) and its text.
pub fn documents() -> [(&'static str, String); 2] {
    [
        (OPENAPI_FILE, render(&openapi(None))),
        (ASYNCAPI_FILE, render(&asyncapi())),
    ]
}

/// The workspace's root directory.
pub fn workspace_root() -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    root.canonicalize().unwrap_or(root)
}
