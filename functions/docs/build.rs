//! Takes the files Swagger UI's page loads from the vendored Swagger UI release
//! (`utoipa-swagger-ui-vendored`, the archive utoipa-swagger-ui itself uses) and writes
//! each gzipped into `OUT_DIR`, with `assets.rs` listing them for `include_bytes!`; and
//! prepares the checked-in OpenAPI document (`docs/openapi.json` without its `servers`,
//! compact) as `openapi.json`, so that no cold start or first request parses its 200 KB.

use std::io::{Read, Write};
use std::path::Path;

/// (file in the release's `dist/`, content type)
const FILES: &[(&str, &str)] = &[
    ("swagger-ui.css", "text/css; charset=utf-8"),
    ("index.css", "text/css; charset=utf-8"),
    ("swagger-ui-bundle.js", "text/javascript; charset=utf-8"),
    (
        "swagger-ui-standalone-preset.js",
        "text/javascript; charset=utf-8",
    ),
    ("favicon-32x32.png", "image/png"),
    ("favicon-16x16.png", "image/png"),
];

fn main() {
    let out = std::env::var("OUT_DIR").expect("OUT_DIR");
    let zip = std::io::Cursor::new(utoipa_swagger_ui_vendored::SWAGGER_UI_VENDORED);
    let mut archive = zip::ZipArchive::new(zip).expect("the vendored Swagger UI archive reads");
    let mut listing = String::from(
        "/// Swagger UI's files, gzipped by build.rs.\npub static FILES: &[Asset] = &[\n",
    );
    for (name, content_type) in FILES {
        let suffix = format!("/dist/{name}");
        let entry = (0..archive.len())
            .find(|&i| {
                archive
                    .by_index(i)
                    .is_ok_and(|f| f.name().ends_with(&suffix))
            })
            .unwrap_or_else(|| panic!("{name} is not in the vendored Swagger UI"));
        let mut bytes = Vec::new();
        archive
            .by_index(entry)
            .expect("entry")
            .read_to_end(&mut bytes)
            .expect("read entry");
        // mtime 0 and no file name: the same input always gives the same bytes.
        let mut gz = flate2::GzBuilder::new()
            .mtime(0)
            .write(Vec::new(), flate2::Compression::best());
        gz.write_all(&bytes).expect("gzip");
        let gz = gz.finish().expect("gzip");
        let file = Path::new(&out).join(format!("{name}.gz"));
        std::fs::write(&file, gz).expect("write asset");
        listing.push_str(&format!(
            "    Asset {{ name: {name:?}, content_type: {content_type:?}, gzip: include_bytes!({:?}) }},\n",
            file.display().to_string()
        ));
    }
    listing.push_str("];\n");
    std::fs::write(Path::new(&out).join("assets.rs"), listing).expect("write assets.rs");
    prepare_openapi(Path::new(&out));
    println!("cargo::rerun-if-changed=build.rs");
}

/// `docs/openapi.json` without `servers` (each request gets its own), serialised
/// compactly, into `OUT_DIR/openapi.json`. A document that is not a non-empty JSON object
/// fails the build.
fn prepare_openapi(out: &Path) {
    const SOURCE: &str = "../../docs/openapi.json";
    println!("cargo::rerun-if-changed={SOURCE}");
    let text = std::fs::read_to_string(SOURCE).expect("docs/openapi.json reads");
    let mut doc: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("docs/openapi.json is not a JSON object: {e}"));
    doc.remove("servers");
    assert!(!doc.is_empty(), "docs/openapi.json is an empty object");
    let prepared = serde_json::to_string(&doc).expect("the document serialises");
    std::fs::write(out.join("openapi.json"), prepared).expect("write openapi.json");
}
