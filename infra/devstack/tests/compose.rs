//! infra/docker-compose.yml (LocalStack, Redpanda, OpenSearch for developers with Docker)
//! names exactly the variables that point functions at their services, and the functions
//! read no other variable than those and their own from template.yaml.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use devstack::ENDPOINT_VARIABLES;
use devstack::template::Template;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Every `"NAME"` passed to an environment reader in the services' and shared crates'
/// sources (`env("X")`, `from_env(.., "X")`, `std::env::var("X")`).
fn variables_read_by_code() -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut dirs = vec![root().join("functions"), root().join("shared")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("source dir").flatten() {
            let path = entry.path();
            // A build script (`build.rs`) reads cargo's variables when the crate is built,
            // not in Lambda.
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs")
                && path.file_name().is_some_and(|n| n != "build.rs")
            {
                let text = std::fs::read_to_string(&path).expect("source file");
                // Only code that ships: a file's unit tests are its `#[cfg(test)] mod tests`
                // (a test-only module declared earlier, like `mod testing;`, ships nothing).
                let shipped = text.split("#[cfg(test)]\nmod tests").next().unwrap_or("");
                for reader in [
                    "env(\"",
                    "env::var(\"",
                    "from_env(&aws, \"",
                    "from_env(aws, \"",
                    "from_env(config, \"",
                ] {
                    for piece in shipped.split(reader).skip(1) {
                        let name: String = piece
                            .chars()
                            .take_while(|c| c.is_ascii_uppercase() || *c == '_')
                            .collect();
                        if !name.is_empty() && piece[name.len()..].starts_with('"') {
                            found.insert(name);
                        }
                    }
                }
            }
        }
    }
    found
}

/// The variables template.yaml gives functions (globals and each function's own).
fn template_variables() -> BTreeSet<String> {
    let template = Template::load(&root().join("template.yaml")).expect("template.yaml");
    let mut names: BTreeSet<String> =
        template.doc["Globals"]["Function"]["Environment"]["Variables"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, _)| k.clone())
            .collect();
    for (_, props) in template.resources_of("AWS::Serverless::Function") {
        if let Some(vars) = props["Environment"]["Variables"].as_object() {
            names.extend(vars.keys().cloned());
        }
    }
    names
}

#[test]
fn the_compose_file_names_the_variables_the_functions_read() {
    let compose: serde_yaml_ng::Value = serde_yaml_ng::from_str(
        &std::fs::read_to_string(root().join("infra/docker-compose.yml")).expect("compose file"),
    )
    .expect("compose file is YAML");
    let named: BTreeSet<String> = compose["x-function-environment"]
        .as_mapping()
        .expect("x-function-environment")
        .keys()
        .filter_map(|k| k.as_str().map(str::to_owned))
        .collect();
    let endpoints: BTreeSet<String> = ENDPOINT_VARIABLES.iter().map(|v| (*v).to_owned()).collect();
    assert_eq!(
        named, endpoints,
        "the compose file and the devstack point functions with the same variables"
    );

    let from_template = template_variables();
    let read = variables_read_by_code();
    for known in [
        "POSTS_TABLE",
        "EVENTS_DLQ_URL",
        "AWS_ENDPOINT_URL",
        "KAFKA_BOOTSTRAP_SERVERS",
    ] {
        assert!(
            read.contains(known),
            "the source scan finds {known}: {read:?}"
        );
    }
    // Lambda itself sets these (the log ones from the template's LoggingConfig).
    let from_lambda = [
        "AWS_LAMBDA_LOG_FORMAT",
        "AWS_LAMBDA_LOG_LEVEL",
        "AWS_REGION",
    ];
    let unexplained: Vec<&String> = read
        .iter()
        .filter(|v| {
            !from_template.contains(*v)
                && !endpoints.contains(*v)
                && !from_lambda.contains(&v.as_str())
        })
        .collect();
    assert!(
        unexplained.is_empty(),
        "functions read {unexplained:?}, which neither template.yaml nor the compose file gives them"
    );
    for service in ["localstack", "redpanda", "opensearch"] {
        assert!(
            !compose["services"][service].is_null(),
            "{service} is in the compose file"
        );
    }
}
