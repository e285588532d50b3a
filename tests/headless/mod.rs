//! Running `fleetdeck run` against a simulator that outlives each run: the command with the
//! simulator's endpoint and key pair, a journal of the test's own, nothing from the machine's
//! AWS configuration.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

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
