//! With `--aws-endpoint` and `--kafka-bootstrap` (LocalStack and Redpanda from
//! infra/docker-compose.yml), the devstack provisions and runs the template on services
//! it did not start, and leaves them running when it stops. Here the "external" services
//! are a moto server and a tansu started by the test itself, as Docker would.

use std::path::Path;

use devstack::services::{start_moto, start_tansu};
use devstack::{Devstack, DevstackConfig, ExternalServices};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_devstack_runs_on_services_it_did_not_start() {
    let dir = tempfile::tempdir().expect("temp dir");
    let moto = start_moto(dir.path()).await.expect("moto");
    let tansu = start_tansu(dir.path(), dir.path()).await.expect("tansu");
    let mut config = DevstackConfig::for_tests();
    config.template =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/probe-template.yaml");
    config.bin_dir = Path::new(env!("CARGO_BIN_EXE_devstack-probe"))
        .parent()
        .expect("bin dir")
        .to_path_buf();
    config.parameters.insert(
        "ProbeLogPath".into(),
        dir.path().join("probe.log").display().to_string(),
    );
    config.external = ExternalServices {
        aws: Some(format!("{}/", moto.url)),
        kafka: Some(tansu.url.clone()),
        opensearch: None,
    };
    let stack = Devstack::start(config)
        .await
        .expect("the devstack starts on external services");
    assert_eq!(stack.moto_url(), moto.url, "it uses the given endpoint");
    assert_eq!(stack.kafka_bootstrap(), tansu.url);

    // It provisioned the template's resources there, and functions run against them.
    let tables = devstack::aws::MotoJson::new(&moto.url)
        .dynamodb("ListTables", &json!({}))
        .await
        .expect("tables");
    assert!(
        !tables["TableNames"].as_array().expect("names").is_empty(),
        "{tables}"
    );
    let echo = reqwest::get(format!("{}/echo/x", stack.base_url()))
        .await
        .expect("gateway");
    assert_eq!(echo.status(), 200);
    stack.stop().await;

    // Stopping it left the external services running.
    let health = reqwest::get(format!("{}/moto-api/data.json", moto.url)).await;
    assert!(
        health.is_ok_and(|r| r.status().is_success()),
        "moto still runs"
    );
    moto.stop().await;
    tansu.stop().await;
}
