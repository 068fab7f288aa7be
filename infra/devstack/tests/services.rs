//! The local servers go away with their handles, also when a test panics: nothing is left
//! listening on the machine.

use std::time::{Duration, Instant};

use devstack::services::{start_moto, start_tansu};

fn alive(pid: u32) -> bool {
    // A zombie (exited, not yet reaped by its parent) is gone for our purposes.
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        !stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z')
    })
}

async fn gone_within(pid: u32, limit: Duration) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if !alive(pid) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

/// The processes named `name` that `pid` started.
fn children(pid: u32, name: &str) -> Vec<u32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .filter(|child| {
            std::fs::read_to_string(format!("/proc/{child}/comm")).is_ok_and(|c| c.trim() == name)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn servers_stop_when_their_handles_drop_during_a_panic() {
    let dir = tempfile::tempdir().expect("dir");
    let tansu = start_tansu(dir.path(), &dir.path().join("tansu"))
        .await
        .expect("tansu starts");
    let moto = start_moto(dir.path()).await.expect("moto starts");
    let shell = tansu.pid().expect("tansu's shell");
    let broker = children(shell, "tansu");
    assert_eq!(broker.len(), 1, "the shell runs tansu");
    let moto_pid = moto.pid().expect("moto");

    // A test that panics while holding them.
    let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
        let _held = (tansu, moto);
        panic!("a failing test");
    }));
    assert!(panicked.is_err());

    assert!(
        gone_within(broker[0], Duration::from_secs(10)).await,
        "tansu (pid {}) outlived its handle",
        broker[0]
    );
    assert!(
        gone_within(moto_pid, Duration::from_secs(10)).await,
        "moto outlived its handle"
    );
}
