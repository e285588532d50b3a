//! Running `fleetdeck run` against a simulator that outlives each run: the command with the
//! simulator's endpoint and key pair, a journal of the test's own, nothing from the machine's
//! AWS configuration.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use fleetdeck::sim::SimHandle;

pub fn journal(what: &str) -> PathBuf {
    std::env::temp_dir().join(format!("fleetdeck-{what}-{}.jsonl", uuid::Uuid::new_v4()))
}

pub fn command(sim: &SimHandle, journal: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_fleetdeck"));
    c.arg("run")
        .args(["--endpoint-url", &sim.endpoint])
        .args(args)
        .env("FLEETDECK_JOURNAL", journal)
        .env("AWS_ACCESS_KEY_ID", &sim.access_key_id)
        .env("AWS_SECRET_ACCESS_KEY", &sim.secret_access_key)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("FLEETDECK_CONFIG", "/nonexistent/fleetdeck/config.toml")
        .env_remove("FLEETDECK_CONTEXT")
        .env_remove("AWS_PROFILE")
        .env_remove("RUST_BACKTRACE")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

pub fn output(sim: &SimHandle, journal: &Path, args: &[&str]) -> Output {
    command(sim, journal, args)
        .output()
        .expect("fleetdeck runs")
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// CreateJobForDevices per device id, from the simulator's ledger.
pub fn creates(sim: &SimHandle) -> HashMap<String, usize> {
    let mut per = HashMap::new();
    for e in sim.ledger() {
        if e.operation == "CreateJobForDevices" {
            *per.entry(e.device_id.clone()).or_default() += 1;
        }
    }
    per
}

/// The run's JSON summary, or a panic that shows what it printed.
pub fn summary(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", text(&out.stdout), text(&out.stderr)))
}

/// Waits for a whole line on the child's stderr containing `what`, within a minute.
pub fn read_until(child: &mut Child, what: &str, seen: &mut String) {
    let deadline = Instant::now() + Duration::from_secs(60);
    let err = child.stderr.as_mut().expect("stderr is piped");
    let mut buf = [0u8; 4096];
    // Up to the end of the line that holds `what`: a read may end mid-line.
    let whole = |seen: &String| seen.find(what).is_some_and(|at| seen[at..].contains('\n'));
    while !whole(seen) {
        assert!(Instant::now() < deadline, "no {what:?} in:\n{seen}");
        match err.read(&mut buf) {
            Ok(0) => panic!("fleetdeck ended before {what:?}:\n{seen}"),
            Ok(n) => seen.push_str(&String::from_utf8_lossy(&buf[..n])),
            Err(e) => panic!("{e}"),
        }
    }
}

/// SIGINT to a run, as Ctrl-C would send it.
pub fn interrupt(child: &Child) {
    let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).expect("a pid"));
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).expect("SIGINT is sent");
}
