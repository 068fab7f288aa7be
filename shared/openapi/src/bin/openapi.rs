//! Prints the OpenAPI document: `cargo run -p shutter-openapi --bin openapi > openapi.json`.

fn main() {
    let doc = shutter_openapi::document_json(None);
    println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
}
