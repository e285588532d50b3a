//! The simulator's test levers through the official SDKs: targeted faults that hit exactly
//! one call, concurrent jobs on one appliance, and stale ListDevices answers.

mod common;

use std::time::{Duration, Instant};

use aws_sdk_panorama::config::timeout::TimeoutConfig;
use aws_sdk_panorama::error::SdkError;
use aws_sdk_panorama::types::{DeviceJobConfig, JobType, OtaJobConfig, UpdateProgress};
use aws_sdk_snowdevicemanagement::types::{Command, ExecutionState, Reboot, TaskState};
use bytes::Bytes;
use common::{code, message};
use fleetdeck::sim::{FaultRule, FaultStatus, QuotaMode, SimConfig, SimHandle, TargetedFault};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client as HttpClient;
use hyper_util::rt::TokioExecutor;

const SEA_DOCK_02: &str = "device-ktsxfvy6plp4rf9tast6m01s12"; // 5.0.10, online
const SEA_LOBBY: &str = "device-kotqcfc3r784vjme0m2rlw1u9m"; // 4.3.93, online
const LOCKED_C: &str = "smd-hrdslj0if9xa9j60j";
const UNLOCKED_B: &str = "smd-tidkz98qb7pkgncuf";

fn ota(version: &str) -> DeviceJobConfig {
    DeviceJobConfig::builder()
        .ota_job_config(
            OtaJobConfig::builder()
                .image_version(version)
                .build()
                .expect("image version set"),
        )
        .build()
}

async fn reboot_job(
    client: &aws_sdk_panorama::Client,
    device: &str,
) -> Result<
    String,
    SdkError<aws_sdk_panorama::operation::create_job_for_devices::CreateJobForDevicesError>,
> {
    let out = client
        .create_job_for_devices()
        .device_ids(device)
        .job_type(JobType::Reboot)
        .send()
        .await?;
    Ok(out.jobs()[0].job_id().expect("a job id").to_string())
}

async fn job_ids_of(client: &aws_sdk_panorama::Client, device: &str) -> Vec<String> {
    client
        .list_devices_jobs()
        .device_id(device)
        .send()
        .await
        .expect("ListDevicesJobs")
        .device_jobs()
        .iter()
        .filter_map(|j| j.job_id().map(str::to_string))
        .collect()
}

/// The appliance's LatestDeviceJob as ListDevices shows it: (type, status).
async fn listed_latest_job(
    client: &aws_sdk_panorama::Client,
    device: &str,
) -> Option<(JobType, UpdateProgress)> {
    let devices = common::all_panorama_devices(client).await;
    let d = devices
        .iter()
        .find(|d| d.device_id() == Some(device))
        .expect("the appliance is listed");
    d.latest_device_job().map(|j| {
        (
            j.job_type().cloned().expect("a job type"),
            j.status().cloned().expect("a status"),
        )
    })
}

fn hits(h: &SimHandle) -> Vec<bool> {
    h.faults().iter().map(|f| f.hit).collect()
}

#[tokio::test]
async fn a_create_dropped_after_it_took_effect_left_a_job_the_client_never_heard_of() {
    let h = common::start(SimConfig {
        faults: vec!["CreateJobForDevices:2:drop_after".parse().unwrap()],
        ..common::config()
    })
    .await;
    let client = common::panorama(&h);
    let first = reboot_job(&client, SEA_DOCK_02)
        .await
        .expect("the 1st create");
    assert_eq!(hits(&h), vec![false]);

    let err = reboot_job(&client, SEA_LOBBY).await.unwrap_err();
    assert!(
        matches!(
            err,
            SdkError::DispatchFailure(_) | SdkError::ResponseError(_)
        ),
        "the client sees a broken connection, not an answer: {err:?}"
    );
    assert_eq!(
        h.faults(),
        vec![FaultStatus {
            rule: FaultRule::new("CreateJobForDevices", 2, TargetedFault::DropAfter),
            hit: true,
        }]
    );

    let ledger = h.ledger();
    assert_eq!(ledger.len(), 2, "{ledger:?}");
    assert_eq!(ledger[0].resource_id, first);
    assert_eq!(ledger[1].device_id, SEA_LOBBY);
    assert_eq!(ledger[1].action, "REBOOT");
    // The job the client never heard of is there for anyone who looks.
    assert_eq!(
        job_ids_of(&client, SEA_LOBBY).await,
        vec![ledger[1].resource_id.clone()]
    );

    // The rule fired once: the 3rd create is answered.
    h.advance_clock(1_000.0).unwrap();
    reboot_job(&client, SEA_LOBBY)
        .await
        .expect("the 3rd create");
    assert_eq!(h.ledger().len(), 3);
}

#[tokio::test]
async fn a_cancel_that_fails_after_it_took_effect_still_canceled_the_executions() {
    let h = common::start(common::config()).await;
    let client = common::snow(&h);
    let task = client
        .create_task()
        .command(Command::Reboot(Reboot::builder().build()))
        .targets(LOCKED_C)
        .targets(UNLOCKED_B)
        .send()
        .await
        .unwrap()
        .task_id()
        .unwrap()
        .to_string();
    h.add_fault(FaultRule::new("CancelTask", 1, TargetedFault::FailAfter))
        .unwrap();

    let err = client
        .cancel_task()
        .task_id(&task)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "InternalServerException");
    assert_eq!(err.raw_response().map(|r| r.status().as_u16()), Some(500));
    assert_eq!(hits(&h), vec![true]);

    let executions = client
        .list_executions()
        .task_id(&task)
        .send()
        .await
        .unwrap();
    let states: Vec<_> = executions
        .executions()
        .iter()
        .map(|e| e.state().cloned())
        .collect();
    assert_eq!(states, vec![Some(ExecutionState::Canceled); 2]);
    let described = client.describe_task().task_id(&task).send().await.unwrap();
    assert_eq!(described.state(), Some(&TaskState::Canceled));
    let cancels: Vec<_> = h
        .ledger()
        .into_iter()
        .filter(|e| e.operation == "CancelTask")
        .map(|e| e.device_id)
        .collect();
    assert_eq!(cancels, vec![LOCKED_C, UNLOCKED_B]);
}

#[tokio::test]
async fn a_create_held_past_the_client_timeout_lands_after_the_client_gave_up() {
    let h = common::start(common::config()).await;
    let hold = Duration::from_millis(1_500);
    h.add_fault(FaultRule::new(
        "CreateJobForDevices",
        1,
        TargetedFault::Delay(hold),
    ))
    .unwrap();
    let impatient = aws_sdk_panorama::Client::from_conf(
        common::panorama(&h)
            .config()
            .to_builder()
            .timeout_config(
                TimeoutConfig::builder()
                    .operation_timeout(Duration::from_millis(300))
                    .build(),
            )
            .build(),
    );

    let sent = Instant::now();
    let err = reboot_job(&impatient, SEA_DOCK_02).await.unwrap_err();
    assert!(
        matches!(err, SdkError::TimeoutError(_)),
        "the client gives up first: {err:?}"
    );
    assert_eq!(hits(&h), vec![true]);
    assert!(h.ledger().is_empty(), "held, not yet carried out");

    // The world is not locked while the call is held: other calls are answered meanwhile.
    let client = common::panorama(&h);
    client.list_devices().send().await.expect("ListDevices");
    assert!(job_ids_of(&client, SEA_DOCK_02).await.is_empty());
    assert!(sent.elapsed() < hold, "answered while the create was held");

    let deadline = Instant::now() + Duration::from_secs(10);
    while h.ledger().is_empty() {
        assert!(Instant::now() < deadline, "the held create never landed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(sent.elapsed() >= hold);
    let ledger = h.ledger();
    assert_eq!(ledger.len(), 1);
    assert_eq!(ledger[0].device_id, SEA_DOCK_02);
    assert_eq!(
        job_ids_of(&client, SEA_DOCK_02).await,
        vec![ledger[0].resource_id.clone()]
    );
}

#[tokio::test]
async fn throttled_calls_do_not_count_toward_a_rules_nth_call() {
    let h = common::start(SimConfig {
        quotas: QuotaMode::Aws,
        faults: vec![FaultRule::new(
            "CreateJobForDevices",
            2,
            TargetedFault::FailBefore,
        )],
        ..SimConfig::default()
    })
    .await;
    let client = common::panorama(&h);
    reboot_job(&client, SEA_DOCK_02)
        .await
        .expect("the 1st create");

    // Creates are metered at 1 a second: the next ones, sent at once, are throttled.
    let mut throttled = 0;
    let second = loop {
        match reboot_job(&client, SEA_LOBBY).await {
            Err(e) if code(&e) == "ThrottlingException" => {
                throttled += 1;
                assert_eq!(hits(&h), vec![false], "a throttled call is not counted");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            other => break other,
        }
    };
    assert!(throttled > 0, "a create right after another is throttled");
    let err = second.unwrap_err();
    assert_eq!(code(&err), "InternalServerException", "{}", message(&err));
    assert_eq!(hits(&h), vec![true]);
    assert_eq!(h.ledger().len(), 1, "failed before it took effect");
    assert_eq!(
        h.calls().get("panorama:CreateJobForDevices"),
        Some(&(2 + throttled)),
        "the call count, unlike the rule, includes the throttled ones"
    );
}

#[tokio::test]
async fn without_busy_conflicts_an_appliance_takes_a_second_job() {
    let h = common::start(SimConfig {
        busy_conflicts: false,
        ..common::config()
    })
    .await;
    let client = common::panorama(&h);
    let update = client
        .create_job_for_devices()
        .device_ids(SEA_DOCK_02)
        .job_type(JobType::Ota)
        .device_job_config(ota("5.0.21"))
        .send()
        .await
        .expect("the OTA")
        .jobs()[0]
        .job_id()
        .unwrap()
        .to_string();
    let reboot = reboot_job(&client, SEA_DOCK_02)
        .await
        .expect("no ConflictException");
    assert_ne!(update, reboot);

    let ledger = h.ledger();
    let jobs: Vec<(&str, &str)> = ledger
        .iter()
        .map(|e| (e.device_id.as_str(), e.resource_id.as_str()))
        .collect();
    assert_eq!(
        jobs,
        vec![
            (SEA_DOCK_02, update.as_str()),
            (SEA_DOCK_02, reboot.as_str())
        ]
    );
    assert_eq!(
        job_ids_of(&client, SEA_DOCK_02).await,
        vec![update.clone(), reboot.clone()]
    );

    // LatestDeviceJob follows the newest job; either job rebooting makes the appliance
    // REBOOTING.
    assert_eq!(
        listed_latest_job(&client, SEA_DOCK_02).await,
        Some((JobType::Reboot, UpdateProgress::Pending))
    );
    h.advance_clock(20.0).unwrap();
    let d = client
        .describe_device()
        .device_id(SEA_DOCK_02)
        .send()
        .await
        .unwrap();
    assert_eq!(
        d.device_aggregated_status(),
        Some(&aws_sdk_panorama::types::DeviceAggregatedStatus::Rebooting)
    );

    // Both run to their ends; the OTA's image is installed.
    h.advance_clock(1_000.0).unwrap();
    for job in [&update, &reboot] {
        let j = client
            .describe_device_job()
            .job_id(job)
            .send()
            .await
            .unwrap();
        assert_eq!(j.status(), Some(&UpdateProgress::Completed), "{job}");
    }
    let d = client
        .describe_device()
        .device_id(SEA_DOCK_02)
        .send()
        .await
        .unwrap();
    assert_eq!(d.current_software(), Some("5.0.21"));
}

#[tokio::test]
async fn stale_list_devices_shows_the_previous_job_until_the_window_passes() {
    let h = common::start(SimConfig {
        stale_reads: Duration::from_secs(60),
        ..common::config()
    })
    .await;
    let client = common::panorama(&h);
    reboot_job(&client, SEA_DOCK_02).await.unwrap();
    h.advance_clock(1_000.0).unwrap();
    let done = Some((JobType::Reboot, UpdateProgress::Completed));
    assert_eq!(listed_latest_job(&client, SEA_DOCK_02).await, done);

    let update = client
        .create_job_for_devices()
        .device_ids(SEA_DOCK_02)
        .job_type(JobType::Ota)
        .device_job_config(ota("5.0.21"))
        .send()
        .await
        .unwrap()
        .jobs()[0]
        .job_id()
        .unwrap()
        .to_string();

    // ListDevices still shows the finished reboot; the job reads are exact.
    assert_eq!(listed_latest_job(&client, SEA_DOCK_02).await, done);
    let job = client
        .describe_device_job()
        .job_id(&update)
        .send()
        .await
        .unwrap();
    assert_eq!(job.status(), Some(&UpdateProgress::Pending));
    assert_eq!(job_ids_of(&client, SEA_DOCK_02).await.len(), 2);
    let described = client
        .describe_device()
        .device_id(SEA_DOCK_02)
        .send()
        .await
        .unwrap();
    assert_eq!(
        described.latest_device_job().and_then(|j| j.job_type()),
        Some(&JobType::Ota)
    );

    // Once the snapshot is older than the window, the next listing is current.
    h.advance_clock(60.0).unwrap();
    let (job_type, status) = listed_latest_job(&client, SEA_DOCK_02)
        .await
        .expect("a latest job");
    assert_eq!(job_type, JobType::Ota);
    assert_ne!(status, UpdateProgress::Completed);
}

/// A plain HTTP/1.1 request to the simulator's unsigned endpoints.
async fn admin(h: &SimHandle, method: &str, path: &str, body: &str) -> (u16, serde_json::Value) {
    let client: HttpClient<_, Full<Bytes>> = HttpClient::builder(TokioExecutor::new()).build_http();
    let request = http::Request::builder()
        .method(method)
        .uri(format!("{}{path}", h.endpoint))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap();
    let response = client.request(request).await.unwrap();
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&body).unwrap())
}

#[tokio::test]
async fn the_admin_endpoint_adds_rules_and_lists_them_with_their_hits() {
    let h = common::start(common::config()).await;
    let (status, body) = admin(
        &h,
        "POST",
        "/_fleetdeck/faults",
        r#"{"operation":"panorama:ListDevicesJobs","nth":1,"fault":"fail_before"}"#,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["fault"]["operation"], "panorama:ListDevicesJobs");
    let (status, _) = admin(
        &h,
        "POST",
        "/_fleetdeck/faults",
        r#"{"operation":"CreateJobForDevices","nth":2,"fault":"delay","delay_ms":1500}"#,
    )
    .await;
    assert_eq!(status, 200);

    for (bad, says) in [
        (
            r#"{"operation":"ListDevicesJobs","nth":1,"fault":"explode"}"#,
            "unknown fault 'explode'",
        ),
        (
            r#"{"operation":"ListDevicesJobs","nth":0,"fault":"fail_before"}"#,
            "cannot be 0",
        ),
        (
            r#"{"operation":"ListJobs","nth":1,"fault":"fail_before"}"#,
            "no operation 'ListJobs'",
        ),
        (
            r#"{"operation":"CancelTask","nth":1,"fault":"delay"}"#,
            "delay_ms",
        ),
        ("nth=1", "must be a JSON object"),
    ] {
        let (status, body) = admin(&h, "POST", "/_fleetdeck/faults", bad).await;
        assert_eq!(status, 400, "{bad}");
        let text = body["message"].as_str().unwrap_or_default();
        assert!(text.contains(says), "{bad}: {text}");
    }

    let (status, listed) = admin(&h, "GET", "/_fleetdeck/faults", "").await;
    assert_eq!(status, 200);
    assert_eq!(
        listed,
        serde_json::json!({ "faults": [
            { "operation": "panorama:ListDevicesJobs", "nth": 1, "fault": "fail_before", "hit": false },
            { "operation": "CreateJobForDevices", "nth": 2, "fault": "delay", "delay_ms": 1500, "hit": false },
        ]})
    );

    let client = common::panorama(&h);
    let err = client.list_devices_jobs().send().await.unwrap_err();
    assert_eq!(code(&err), "InternalServerException");
    client.list_devices_jobs().send().await.expect("once only");
    let (_, listed) = admin(&h, "GET", "/_fleetdeck/faults", "").await;
    assert_eq!(listed["faults"][0]["hit"], true);
    assert_eq!(listed["faults"][1]["hit"], false);
    assert_eq!(hits(&h), vec![true, false]);
}

#[test]
fn the_sim_command_refuses_a_bad_fault_with_a_reason() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_fleetdeck"))
        .args([
            "sim",
            "--listen",
            "127.0.0.1:0",
            "--fault",
            "CreateJob:1:drop_after",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no operation 'CreateJob'"), "{stderr}");
}

#[tokio::test]
async fn the_sim_command_takes_faults_concurrent_jobs_and_stale_reads() {
    use tokio::io::AsyncBufReadExt;
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_fleetdeck"))
        .args([
            "sim",
            "--listen",
            "127.0.0.1:0",
            "--quotas",
            "off",
            "--fault",
            "CreateJobForDevices:3:drop_after",
            "--fault",
            "snow-device-management:CancelTask:1:delay:1500",
            "--allow-concurrent-jobs",
            "--stale-secs",
            "30",
        ])
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let first = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .expect("the banner in time")
        .unwrap()
        .expect("a banner");
    let endpoint = first
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .expect("the endpoint in the banner")
        .to_string();

    let url: http::Uri = format!("{endpoint}/_fleetdeck/faults").parse().unwrap();
    let client: HttpClient<_, Full<Bytes>> = HttpClient::builder(TokioExecutor::new()).build_http();
    let response = client.get(url).await.unwrap();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let listed: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        listed["faults"],
        serde_json::json!([
            { "operation": "CreateJobForDevices", "nth": 3, "fault": "drop_after", "hit": false },
            { "operation": "snow-device-management:CancelTask", "nth": 1, "fault": "delay", "delay_ms": 1500, "hit": false },
        ])
    );

    // A second job for a busy appliance is taken, and ListDevices lags behind both.
    let panorama = aws_sdk_panorama::Client::from_conf(
        aws_sdk_panorama::Config::builder()
            .behavior_version(aws_sdk_panorama::config::BehaviorVersion::latest())
            .region(aws_sdk_panorama::config::Region::new("us-east-1"))
            .endpoint_url(&endpoint)
            .credentials_provider(aws_sdk_panorama::config::Credentials::new(
                fleetdeck::sim::DEFAULT_ACCESS_KEY_ID,
                fleetdeck::sim::DEFAULT_SECRET_ACCESS_KEY,
                None,
                None,
                "fleetdeck-tests",
            ))
            .retry_config(aws_sdk_panorama::config::retry::RetryConfig::disabled())
            .build(),
    );
    assert_eq!(listed_latest_job(&panorama, SEA_DOCK_02).await, None);
    reboot_job(&panorama, SEA_DOCK_02)
        .await
        .expect("a first job");
    reboot_job(&panorama, SEA_DOCK_02)
        .await
        .expect("a second job");
    assert_eq!(job_ids_of(&panorama, SEA_DOCK_02).await.len(), 2);
    assert_eq!(listed_latest_job(&panorama, SEA_DOCK_02).await, None);
    child.kill().await.unwrap();
}
