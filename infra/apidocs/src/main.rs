//! Writes the reference documents under docs/ from the code:
//! `cargo run -p shutter-apidocs` (or `-- --check` to fail when they are stale).

use std::process::ExitCode;

fn main() -> ExitCode {
    let check = std::env::args().any(|a| a == "--check");
    let root = shutter_apidocs::workspace_root();
    let mut stale = Vec::new();
    for (file, text) in shutter_apidocs::documents() {
        let path = root.join(file);
        let current = std::fs::read_to_string(&path).unwrap_or_default();
        if current == text {
            continue;
        }
        if check {
            stale.push(file);
        } else if let Err(err) = std::fs::write(&path, &text) {
            eprintln!("cannot write {}: {err}", path.display());
            return ExitCode::FAILURE;
        } else {
            println!("wrote {file}");
        }
    }
    if stale.is_empty() {
        ExitCode::SUCCESS
    } else {
        eprintln!(
            "stale: {}; run `cargo run -p shutter-apidocs` and commit the result",
            stale.join(", ")
        );
        ExitCode::FAILURE
    }
}
