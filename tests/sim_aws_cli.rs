//! The `aws` CLI against the real `fleetdeck sim` binary, as a user would drive them:
//! list devices, create a Panorama job and a Snow task, and poll both to completion; list an
//! appliance's application instances.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use bytes::Bytes;
use http_body_util::Empty;
use hyper_util::client::legacy::Client as HttpClient;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

struct Sim {
    child: Child,
    endpoint: String,
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_sim() -> Sim {
    start_sim_with(&[])
}

fn start_sim_with(extra: &[&str]) -> Sim {
    let mut child = Command::new(env!("CARGO_BIN_EXE_fleetdeck"))
        .args(["sim", "--listen", "127.0.0.1:0", "--quotas", "off"])
        .args(extra)
        .stdout(Stdio::piped())
        .spawn()
        .expect("fleetdeck sim starts");
    let stdout = child.stdout.take().expect("stdout");
    let mut first = String::new();
    BufReader::new(stdout)
        .read_line(&mut first)
        .expect("the banner");
    let endpoint = first
        .split_whitespace()
        .find(|w| w.starts_with("http://127.0.0.1:"))
        .unwrap_or_else(|| panic!("no endpoint in the banner: {first}"))
        .to_string();
    Sim { child, endpoint }
}

/// Runs `aws SERVICE ARGS... --endpoint-url E --output json` with the simulator's default
/// credentials and nothing from the user's own AWS configuration.
fn aws(sim: &Sim, args: &[&str]) -> Value {
    let default = Signer {
        key: fleetdeck::sim::DEFAULT_ACCESS_KEY_ID,
        secret: fleetdeck::sim::DEFAULT_SECRET_ACCESS_KEY,
        region: "us-east-1",
    };
    aws_as(sim, &default, args)
}

/// Whose key pair signs, and for which region.
struct Signer<'a> {
    key: &'a str,
    secret: &'a str,
    region: &'a str,
}

fn aws_as(sim: &Sim, signer: &Signer, args: &[&str]) -> Value {
    let output = Command::new("aws")
        .args(args)
        .args(["--endpoint-url", &sim.endpoint, "--output", "json"])
        .env("AWS_ACCESS_KEY_ID", signer.key)
        .env("AWS_SECRET_ACCESS_KEY", signer.secret)
        .env("AWS_DEFAULT_REGION", signer.region)
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_SESSION_TOKEN")
        .output()
        .expect("the aws CLI is installed (.ci/run installs awscli if it is missing)");
    assert!(
        output.status.success(),
        "aws {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    if output.stdout.iter().all(u8::is_ascii_whitespace) {
        return Value::Null;
    }
    serde_json::from_slice(&output.stdout).expect("JSON output")
}

/// Steps the simulator's clock through its own endpoint, instead of waiting.
fn advance(sim: &Sim, seconds: u32) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let url = format!(
        "{}/_fleetdeck/clock/advance?seconds={seconds}",
        sim.endpoint
    );
    let status = runtime.block_on(async {
        let client: HttpClient<_, Empty<Bytes>> =
            HttpClient::builder(TokioExecutor::new()).build_http();
        let request = http::Request::post(url).body(Empty::new()).unwrap();
        client
            .request(request)
            .await
            .expect("the clock endpoint answers")
            .status()
    });
    assert!(status.is_success(), "advancing the clock: {status}");
}

fn poll<F: Fn() -> Option<String>>(sim: &Sim, what: &str, done: &[&str], state: F) -> String {
    let mut last = String::new();
    for _ in 0..40 {
        if let Some(s) = state() {
            if done.contains(&s.as_str()) {
                return s;
            }
            last = s;
        }
        advance(sim, 60);
    }
    panic!("{what} did not finish; last state {last}");
}

#[test]
fn the_aws_cli_runs_a_panorama_job_and_a_snow_task_to_completion() {
    let sim = start_sim();

    let devices = aws(&sim, &["panorama", "list-devices"]);
    let devices = devices["Devices"].as_array().expect("Devices");
    assert_eq!(devices.len(), 14);
    let behind = devices
        .iter()
        .find(|d| {
            d["DeviceAggregatedStatus"] == "UPDATE_NEEDED" && d["CurrentSoftware"] == "5.0.10"
        })
        .expect("an appliance a minor update behind");
    let device_id = behind["DeviceId"].as_str().unwrap();

    let created = aws(
        &sim,
        &[
            "panorama",
            "create-job-for-devices",
            "--device-ids",
            device_id,
            "--job-type",
            "OTA",
            "--device-job-config",
            r#"{"OTAJobConfig":{"ImageVersion":"5.0.21"}}"#,
        ],
    );
    let job_id = created["Jobs"][0]["JobId"]
        .as_str()
        .expect("JobId")
        .to_string();
    let end = poll(&sim, "the OTA job", &["COMPLETED", "FAILED"], || {
        aws(
            &sim,
            &["panorama", "describe-device-job", "--job-id", &job_id],
        )["Status"]
            .as_str()
            .map(str::to_string)
    });
    assert_eq!(end, "COMPLETED");
    let device = aws(
        &sim,
        &["panorama", "describe-device", "--device-id", device_id],
    );
    assert_eq!(device["CurrentSoftware"], "5.0.21");
    assert_eq!(device["DeviceAggregatedStatus"], "ONLINE");

    let snow = aws(&sim, &["snow-device-management", "list-devices"]);
    let first = snow["devices"][0]["managedDeviceId"]
        .as_str()
        .expect("a device")
        .to_string();
    let task = aws(
        &sim,
        &[
            "snow-device-management",
            "create-task",
            "--targets",
            &first,
            "--command",
            r#"{"unlock":{}}"#,
            "--description",
            "Unlock for site visit",
        ],
    );
    let task_id = task["taskId"].as_str().expect("taskId").to_string();
    let end = poll(&sim, "the unlock task", &["COMPLETED", "CANCELED"], || {
        aws(
            &sim,
            &[
                "snow-device-management",
                "describe-task",
                "--task-id",
                &task_id,
            ],
        )["state"]
            .as_str()
            .map(str::to_string)
    });
    assert_eq!(end, "COMPLETED");
    let executions = aws(
        &sim,
        &[
            "snow-device-management",
            "list-executions",
            "--task-id",
            &task_id,
        ],
    );
    assert_eq!(executions["executions"][0]["state"], "SUCCEEDED");
    let d = aws(
        &sim,
        &[
            "snow-device-management",
            "describe-device",
            "--managed-device-id",
            &first,
        ],
    );
    assert_eq!(d["deviceState"], "UNLOCKED");
}

/// Snow device ids in a list-devices answer, sorted.
fn snow_ids(listed: &Value) -> Vec<String> {
    let mut ids: Vec<String> = listed["devices"]
        .as_array()
        .expect("devices")
        .iter()
        .filter_map(|d| d["managedDeviceId"].as_str().map(str::to_string))
        .collect();
    ids.sort();
    ids
}

#[test]
fn the_aws_cli_lists_a_second_accounts_snow_devices_with_its_keys() {
    let lab_fleet = concat!(env!("CARGO_MANIFEST_DIR"), "/assets/demo-fleet-lab.toml");
    let account = format!(
        "{}:{}:{lab_fleet}",
        fleetdeck::sim::DEMO_LAB_ACCESS_KEY_ID,
        fleetdeck::sim::DEMO_LAB_SECRET_ACCESS_KEY
    );
    let sim = start_sim_with(&["--regions", "us-east-1,us-west-2", "--account", &account]);
    let lab = |region| Signer {
        key: fleetdeck::sim::DEMO_LAB_ACCESS_KEY_ID,
        secret: fleetdeck::sim::DEMO_LAB_SECRET_ACCESS_KEY,
        region,
    };

    let west = aws_as(
        &sim,
        &lab("us-west-2"),
        &["snow-device-management", "list-devices"],
    );
    assert_eq!(
        snow_ids(&west),
        [
            "smd-2ymzrz9tk8hlhwmsh",
            "smd-i1pl2g4jwi8fdbq39",
            "smd-kcn5uog64g5orxn6u",
            "smd-whp0oodtpgk89dxy8",
        ]
    );
    for d in west["devices"].as_array().expect("devices") {
        let arn = d["managedDeviceArn"].as_str().expect("an ARN");
        assert!(
            arn.starts_with("arn:aws:snow-device-management:us-west-2:210987654321:"),
            "{arn}"
        );
    }
    let east = aws_as(
        &sim,
        &lab("us-east-1"),
        &["snow-device-management", "list-devices"],
    );
    assert_eq!(
        snow_ids(&east),
        ["smd-gm6k7tgj0g7ic0hn5", "smd-vgy2yxl85l1smszzk"]
    );

    // The default keys in the same region list the default account's devices, none of the lab's.
    let default = snow_ids(&aws(&sim, &["snow-device-management", "list-devices"]));
    assert_eq!(default.len(), 9);
    assert!(default.iter().all(|id| !snow_ids(&east).contains(id)));
}

/// Names of the instances in a list-application-instances answer, with their health.
fn instances(listed: &Value) -> Vec<(String, String)> {
    listed["ApplicationInstances"]
        .as_array()
        .expect("ApplicationInstances")
        .iter()
        .map(|i| {
            let field = |name: &str| i[name].as_str().unwrap_or_default().to_string();
            (field("Name"), field("HealthStatus"))
        })
        .collect()
}

#[test]
fn the_aws_cli_lists_an_appliances_applications_and_sees_them_fail_after_an_ota() {
    const SEA_LOBBY: &str = "device-kotqcfc3r784vjme0m2rlw1u9m";
    const SEA_DOCK_02: &str = "device-ktsxfvy6plp4rf9tast6m01s12";
    let sim = start_sim_with(&["--unhealthy-after-ota", "sea-dock-cam-02"]);
    let list = |device: &str| {
        aws(
            &sim,
            &[
                "panorama",
                "list-application-instances",
                "--device-id",
                device,
            ],
        )
    };

    let lobby = list(SEA_LOBBY);
    assert_eq!(
        instances(&lobby),
        [
            ("people-counter".to_string(), "RUNNING".to_string()),
            ("occupancy-heatmap".to_string(), "RUNNING".to_string()),
        ]
    );
    let id = lobby["ApplicationInstances"][0]["ApplicationInstanceId"]
        .as_str()
        .expect("an id");
    let described = aws(
        &sim,
        &[
            "panorama",
            "describe-application-instance",
            "--application-instance-id",
            id,
        ],
    );
    assert_eq!(described["Name"], "people-counter");
    assert_eq!(described["DefaultRuntimeContextDevice"], SEA_LOBBY);

    let created = aws(
        &sim,
        &[
            "panorama",
            "create-job-for-devices",
            "--device-ids",
            SEA_DOCK_02,
            "--job-type",
            "OTA",
            "--device-job-config",
            r#"{"OTAJobConfig":{"ImageVersion":"5.0.21"}}"#,
        ],
    );
    let job_id = created["Jobs"][0]["JobId"].as_str().expect("JobId");
    let end = poll(&sim, "the OTA job", &["COMPLETED", "FAILED"], || {
        aws(
            &sim,
            &["panorama", "describe-device-job", "--job-id", job_id],
        )["Status"]
            .as_str()
            .map(str::to_string)
    });
    assert_eq!(end, "COMPLETED");
    advance(&sim, 60);
    let dock = list(SEA_DOCK_02);
    assert_eq!(
        instances(&dock),
        [("forklift-proximity".to_string(), "ERROR".to_string())]
    );
    let text = dock["ApplicationInstances"][0]["StatusDescription"]
        .as_str()
        .unwrap_or_default();
    assert!(
        text.contains("failed to start after the software update"),
        "{text}"
    );
    assert_eq!(instances(&list(SEA_LOBBY))[0].1, "RUNNING");
}

#[test]
fn an_unhealthy_after_ota_name_no_appliance_has_stops_the_start() {
    let output = Command::new(env!("CARGO_BIN_EXE_fleetdeck"))
        .args(["sim", "--listen", "127.0.0.1:0"])
        .args(["--unhealthy-after-ota", "no-such-cam"])
        .output()
        .expect("fleetdeck sim runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--unhealthy-after-ota no-such-cam"),
        "{stderr}"
    );
}
