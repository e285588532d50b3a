//! What `fleetdeck run` says when it cannot reach the fleet: the cause and the fix in one line,
//! then what the SDK said, and nothing sent. Each failure is made on purpose.

use std::process::{Command, Output, Stdio};

fn run(env: &[(&str, &str)], endpoint: &str) -> Output {
    let journal =
        std::env::temp_dir().join(format!("fleetdeck-err-{}.jsonl", uuid::Uuid::new_v4()));
    let mut c = Command::new(env!("CARGO_BIN_EXE_fleetdeck"));
    c.args([
        "run",
        "--endpoint-url",
        endpoint,
        "--action",
        "reboot",
        "--all",
        "--yes",
    ])
    .env("FLEETDECK_JOURNAL", &journal)
    .env("AWS_CONFIG_FILE", "/dev/null")
    .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
    .env("AWS_EC2_METADATA_DISABLED", "true")
    .env("FLEETDECK_CONFIG", "/nonexistent/fleetdeck/config.toml")
    .env_remove("FLEETDECK_CONTEXT")
    .env("AWS_REGION", "us-east-1")
    .env_remove("AWS_ACCESS_KEY_ID")
    .env_remove("AWS_SECRET_ACCESS_KEY")
    .env_remove("AWS_SESSION_TOKEN")
    .env_remove("AWS_PROFILE")
    .env_remove("RUST_BACKTRACE")
    .stdin(Stdio::null());
    for (k, v) in env {
        c.env(k, v);
    }
    let out = c.output().expect("fleetdeck runs");
    let _ = std::fs::remove_file(&journal);
    out
}

/// A loopback port nothing listens on: bound, then let go.
fn closed_port() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    format!("http://127.0.0.1:{port}")
}

#[test]
fn no_credentials_names_the_fix() {
    let out = run(&[], &closed_port());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    let first = err.lines().next().unwrap_or_default();
    assert!(
        first.starts_with("Error: default/us-east-1: No AWS credentials for profile default"),
        "{err}"
    );
    assert!(first.contains("aws configure --profile default"), "{err}");
    // What the SDK said follows, for whoever needs it.
    assert!(err.contains("CredentialsError"), "{err}");
}

#[test]
fn a_closed_endpoint_is_named_with_the_fix() {
    let endpoint = closed_port();
    let out = run(
        &[
            ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"),
            ("AWS_SECRET_ACCESS_KEY", "x"),
        ],
        &endpoint,
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    let first = err.lines().next().unwrap_or_default();
    assert_eq!(
        first,
        format!(
            "Error: default/us-east-1: Nothing answers at {endpoint} (connection refused): start the endpoint (fleetdeck sim) or fix --endpoint-url"
        ),
        "{err}"
    );
}

#[test]
fn a_refusal_prints_its_message_without_a_backtrace_unless_asked() {
    let plain = Command::new(env!("CARGO_BIN_EXE_fleetdeck"))
        .args(["run", "--action", "reboot"])
        .env("RUST_BACKTRACE", "1")
        .env("FLEETDECK_CONFIG", "/nonexistent/fleetdeck/config.toml")
        .stdin(Stdio::null())
        .output()
        .expect("fleetdeck runs");
    let stderr = String::from_utf8_lossy(&plain.stderr);
    assert_eq!(plain.status.code(), Some(1));
    assert!(
        stderr.contains("--all or --filter") && !stderr.contains("backtrace"),
        "{stderr}"
    );
    let verbose = Command::new(env!("CARGO_BIN_EXE_fleetdeck"))
        .args(["-v", "run", "--action", "reboot"])
        .env("RUST_BACKTRACE", "1")
        .env("FLEETDECK_CONFIG", "/nonexistent/fleetdeck/config.toml")
        .stdin(Stdio::null())
        .output()
        .expect("fleetdeck runs");
    let stderr = String::from_utf8_lossy(&verbose.stderr);
    assert!(stderr.contains("backtrace"), "-v shows it: {stderr}");
}

#[test]
fn tags_outside_the_aws_rules_are_refused_before_anything_is_sent() {
    // The endpoint is closed on purpose: had the run sent anything, the error would be the
    // refused connection, not the tag.
    let endpoint = closed_port();
    for (tag, says) in [
        ("aws:owner=ops", "starts with aws:"),
        (&format!("{}=v", "k".repeat(129)), "at most 128"),
        ("owner=ops#1", "holds '#'"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_fleetdeck"))
            .args(["run", "--endpoint-url", &endpoint, "--action", "unlock"])
            .args(["--all", "--yes", "--tag", tag])
            .env("FLEETDECK_CONFIG", "/nonexistent/fleetdeck/config.toml")
            .env("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
            .env("AWS_SECRET_ACCESS_KEY", "x")
            .env("AWS_REGION", "us-east-1")
            .stdin(Stdio::null())
            .output()
            .expect("fleetdeck runs");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{tag}: {err}");
        assert!(err.contains(says), "{tag}: {err}");
        assert!(!err.contains("Nothing answers"), "{tag}: {err}");
    }
    // Fifty-one tags is one more than AWS takes.
    let many: Vec<String> = (0..51).map(|i| format!("k{i}=v")).collect();
    let out = Command::new(env!("CARGO_BIN_EXE_fleetdeck"))
        .args(["run", "--endpoint-url", &endpoint, "--action", "unlock"])
        .args(["--all", "--yes", "--tag", &many.join(",")])
        .env("FLEETDECK_CONFIG", "/nonexistent/fleetdeck/config.toml")
        .stdin(Stdio::null())
        .output()
        .expect("fleetdeck runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("51 tags: a task takes at most 50"), "{err}");
}

#[test]
fn an_empty_entry_in_devices_is_named_before_anything_is_read() {
    let endpoint = closed_port();
    let out = Command::new(env!("CARGO_BIN_EXE_fleetdeck"))
        .args(["run", "--endpoint-url", &endpoint, "--action", "reboot"])
        .args(["--devices", "cam-00,,cam-01", "--yes"])
        .env("FLEETDECK_CONFIG", "/nonexistent/fleetdeck/config.toml")
        .env("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
        .env("AWS_SECRET_ACCESS_KEY", "x")
        .env("AWS_REGION", "us-east-1")
        .stdin(Stdio::null())
        .output()
        .expect("fleetdeck runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("--devices has an empty entry (the 2nd of 3)"),
        "{err}"
    );
    assert!(
        !err.contains("Nothing answers"),
        "refused before any call: {err}"
    );
}
