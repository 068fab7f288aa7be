//! Every function in template.yaml has a sample event in `events/` (named after its
//! binary), and each sample goes through the function's real binary and handler types
//! without a decoding error, the way `cargo lambda invoke --data-file` would send it.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use devstack::template::Template;
use serde_json::Value;
use shutter_e2e::TestApp;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The samples of a binary: `events/<binary>.json` and `events/<binary>.<variant>.json`.
fn samples(binary: &str) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(root().join("events"))
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            name == format!("{binary}.json")
                || (name.starts_with(&format!("{binary}.")) && name.ends_with(".json"))
        })
        .collect();
    found.sort();
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_function_decodes_its_sample_event() {
    let template = Template::load(&root().join("template.yaml")).unwrap();
    let app = TestApp::spawn().await;
    let mut checked = 0;
    for (id, props) in template.resources_of("AWS::Serverless::Function") {
        let binary = template.resource(id)["Metadata"]["BuildProperties"]["Binary"]
            .as_str()
            .unwrap();
        let files = samples(binary);
        assert!(
            !files.is_empty(),
            "{id}: add a sample event as events/{binary}.json"
        );
        let routes: Vec<String> = props["Events"]
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(_, e)| e["Type"] == "HttpApi")
            .map(|(_, e)| {
                format!(
                    "{} {}",
                    e["Properties"]["Method"].as_str().unwrap(),
                    e["Properties"]["Path"].as_str().unwrap()
                )
            })
            .collect();
        for file in files {
            let sample: Value =
                serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
            let name = file.file_name().unwrap().to_string_lossy().into_owned();
            if let Some(route) = sample["routeKey"].as_str() {
                assert!(
                    routes.iter().any(|r| r == route),
                    "{name}: {route} is not a route of {id} ({routes:?})"
                );
            }
            let result = app.stack.invoke(id, sample.clone()).await;
            let output = result.unwrap_or_else(|e| panic!("{name} through {id}: {e}"));
            if sample.get("routeKey").is_some() {
                let status = output["statusCode"].as_u64().unwrap_or(0);
                assert!(
                    (200..500).contains(&status),
                    "{name} through {id}: status {status}: {output}"
                );
            } else if sample.get("ResponseURL").is_some() {
                // A custom resource answers CloudFormation: it must have succeeded.
                assert_eq!(output["Status"], "SUCCESS", "{name} through {id}: {output}");
            } else {
                let failures = output["batchItemFailures"]
                    .as_array()
                    .map(Vec::len)
                    .unwrap_or(0);
                assert_eq!(failures, 0, "{name} through {id}: {output}");
            }
            checked += 1;
        }
    }
    assert!(checked >= 15, "only {checked} samples checked");

    // The samples tell one story: auth-register's user exists, and the UserRegistered of
    // the MSK and stream samples (user alice, 01JD00000000000000000USER1) made a profile.
    let login = app.login("sample.user", "a long sample password").await;
    assert_eq!(login.status, 200, "{:?}", login.body);
    let token = login.body["access_token"].as_str().unwrap().to_owned();
    let profile = shutter_e2e::eventually(
        "the sample user's profile",
        std::time::Duration::from_secs(30),
        || async {
            let answer = app
                .call(
                    reqwest::Method::GET,
                    "/v1/profiles/alice",
                    Some(&token),
                    None,
                )
                .await;
            (answer.status == 200).then_some(answer.body)
        },
    )
    .await;
    assert_eq!(profile["id"], "01JD00000000000000000USER1");
    app.stop().await;
}
