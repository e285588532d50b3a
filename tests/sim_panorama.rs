//! AWS Panorama through the official SDK against the simulator.

mod common;

use aws_sdk_panorama::types::{
    DeviceAggregatedStatus, DeviceJobConfig, JobType, ListDevicesSortBy, OtaJobConfig, SortOrder,
    UpdateProgress,
};
use common::{code, message};

const SEA_DOCK_02: &str = "device-ktsxfvy6plp4rf9tast6m01s12"; // 5.0.10, online
const SEA_LOBBY: &str = "device-kotqcfc3r784vjme0m2rlw1u9m"; // 4.3.93, online

async fn device_id_by_name(client: &aws_sdk_panorama::Client, name: &str) -> String {
    let devices = client
        .list_devices()
        .name_filter(name)
        .send()
        .await
        .expect("ListDevices");
    devices.devices()[0].device_id().expect("an id").to_string()
}

fn ota(version: &str, allow_major: bool) -> DeviceJobConfig {
    DeviceJobConfig::builder()
        .ota_job_config(
            OtaJobConfig::builder()
                .image_version(version)
                .allow_major_version_update(allow_major)
                .build()
                .expect("image version set"),
        )
        .build()
}

async fn create(
    client: &aws_sdk_panorama::Client,
    device: &str,
    job_type: JobType,
    config: Option<DeviceJobConfig>,
) -> String {
    let out = client
        .create_job_for_devices()
        .device_ids(device)
        .job_type(job_type)
        .set_device_job_config(config)
        .send()
        .await
        .expect("CreateJobForDevices");
    assert_eq!(out.jobs().len(), 1);
    assert_eq!(out.jobs()[0].device_id(), Some(device));
    out.jobs()[0].job_id().expect("a job id").to_string()
}

/// Steps simulated time 5 s at a time (shorter than any stage) until the job ends, and
/// returns every status seen, in order, without repeats, with the device's aggregated status.
/// The simulator must run on `common::still()`'s clock, so both reads of a step see one moment.
async fn watch_job(
    h: &fleetdeck::sim::SimHandle,
    client: &aws_sdk_panorama::Client,
    job: &str,
    device: &str,
) -> Vec<(UpdateProgress, DeviceAggregatedStatus)> {
    let mut seen: Vec<(UpdateProgress, DeviceAggregatedStatus)> = Vec::new();
    for _ in 0..400 {
        let j = client
            .describe_device_job()
            .job_id(job)
            .send()
            .await
            .expect("DescribeDeviceJob");
        let d = client
            .describe_device()
            .device_id(device)
            .send()
            .await
            .expect("DescribeDevice");
        let now = (
            j.status().cloned().expect("a status"),
            d.device_aggregated_status()
                .cloned()
                .expect("an aggregated status"),
        );
        assert_eq!(
            d.latest_device_job().and_then(|l| l.status()),
            Some(&now.0),
            "LatestDeviceJob follows the job"
        );
        if seen.last() != Some(&now) {
            seen.push(now.clone());
        }
        if matches!(now.0, UpdateProgress::Completed | UpdateProgress::Failed) {
            return seen;
        }
        h.advance_clock(5.0).unwrap();
    }
    panic!("job {job} did not end; saw {seen:?}");
}

fn statuses(seen: &[(UpdateProgress, DeviceAggregatedStatus)]) -> Vec<UpdateProgress> {
    let mut out: Vec<UpdateProgress> = Vec::new();
    for (s, _) in seen {
        if out.last() != Some(s) {
            out.push(s.clone());
        }
    }
    out
}

#[tokio::test]
async fn list_devices_pages_filters_and_sorts() {
    let h = common::start(common::config()).await;
    let client = common::panorama(&h);

    // 14 appliances at 5 a page: three pages, nothing lost or repeated.
    let mut names = Vec::new();
    let mut token = None;
    let mut pages = 0;
    loop {
        let page = client
            .list_devices()
            .max_results(5)
            .sort_by(ListDevicesSortBy::Name)
            .set_next_token(token)
            .send()
            .await
            .unwrap();
        pages += 1;
        assert!(page.devices().len() <= 5);
        names.extend(page.devices().iter().map(|d| d.name().unwrap().to_string()));
        token = page.next_token().map(str::to_string);
        if token.is_none() {
            break;
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(names.len(), 14);
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted, "SortBy NAME orders the pages");

    let desc = client
        .list_devices()
        .sort_by(ListDevicesSortBy::Name)
        .sort_order(SortOrder::Descending)
        .send()
        .await
        .unwrap();
    assert_eq!(desc.devices()[0].name(), sorted.last().map(String::as_str));

    let offline = client
        .list_devices()
        .device_aggregated_status_filter(DeviceAggregatedStatus::Offline)
        .send()
        .await
        .unwrap();
    let offline: Vec<_> = offline
        .devices()
        .iter()
        .map(|d| d.name().unwrap())
        .collect();
    assert_eq!(offline, vec!["pdx-yard-cam-01", "aus-store-cam-03"]);

    let austin = client
        .list_devices()
        .name_filter("aus-")
        .send()
        .await
        .unwrap();
    assert_eq!(austin.devices().len(), 4);
    let first = &austin.devices()[0];
    assert_eq!(first.tags().unwrap()["site"], "austin");
    assert!(first.created_time().is_some());
    assert_eq!(
        first.provisioning_status().map(|s| s.as_str()),
        Some("SUCCEEDED")
    );
}

#[tokio::test]
async fn describe_device_reports_software_and_networking() {
    let h = common::start(common::config()).await;
    let client = common::panorama(&h);
    let d = client
        .describe_device()
        .device_id(SEA_LOBBY)
        .send()
        .await
        .unwrap();
    assert_eq!(d.name(), Some("sea-lobby-cam-01"));
    assert_eq!(d.current_software(), Some("4.3.93"));
    assert_eq!(d.latest_software(), Some("5.0.21"));
    assert_eq!(
        d.device_aggregated_status(),
        Some(&DeviceAggregatedStatus::UpdateNeeded)
    );
    assert_eq!(
        d.device_connection_status().map(|s| s.as_str()),
        Some("ONLINE")
    );
    assert!(
        d.arn()
            .unwrap()
            .starts_with("arn:aws:panorama:us-east-1:123456789012:device/")
    );
    let eth0 = d
        .current_networking_status()
        .and_then(|n| n.ethernet0_status())
        .unwrap();
    assert!(eth0.ip_address().is_some());
    assert!(d.latest_device_job().is_none(), "no job has run yet");
}

#[tokio::test]
async fn an_ota_goes_through_every_stage_and_installs_the_image() {
    let h = common::start(common::still()).await;
    let client = common::panorama(&h);
    let job = create(
        &client,
        SEA_DOCK_02,
        JobType::Ota,
        Some(ota("5.0.21", false)),
    )
    .await;
    let seen = watch_job(&h, &client, &job, SEA_DOCK_02).await;
    use UpdateProgress::*;
    assert_eq!(
        statuses(&seen),
        vec![
            Pending,
            Downloading,
            Verifying,
            InProgress,
            Rebooting,
            Completed
        ]
    );
    // The device reads REBOOTING exactly while its job reboots.
    for (status, aggregated) in &seen {
        assert_eq!(
            *aggregated == DeviceAggregatedStatus::Rebooting,
            *status == Rebooting,
            "{status:?} / {aggregated:?}"
        );
    }
    let d = client
        .describe_device()
        .device_id(SEA_DOCK_02)
        .send()
        .await
        .unwrap();
    assert_eq!(d.current_software(), Some("5.0.21"));
    assert_eq!(
        d.device_aggregated_status(),
        Some(&DeviceAggregatedStatus::Online)
    );
    let latest = d.latest_device_job().unwrap();
    assert_eq!(latest.job_type(), Some(&JobType::Ota));
    assert_eq!(latest.image_version(), Some("5.0.21"));

    let described = client
        .describe_device_job()
        .job_id(&job)
        .send()
        .await
        .unwrap();
    assert_eq!(described.device_name(), Some("sea-dock-cam-02"));
    assert_eq!(described.image_version(), Some("5.0.21"));
    assert_eq!(described.job_type(), Some(&JobType::Ota));
    assert!(described.created_time().is_some());
}

#[tokio::test]
async fn a_reboot_goes_pending_rebooting_completed() {
    let h = common::start(common::still()).await;
    let client = common::panorama(&h);
    let job = create(&client, SEA_LOBBY, JobType::Reboot, None).await;
    let seen = watch_job(&h, &client, &job, SEA_LOBBY).await;
    use UpdateProgress::*;
    assert_eq!(statuses(&seen), vec![Pending, Rebooting, Completed]);
    let d = client
        .describe_device()
        .device_id(SEA_LOBBY)
        .send()
        .await
        .unwrap();
    assert_eq!(
        d.current_software(),
        Some("4.3.93"),
        "a reboot installs nothing"
    );
}

#[tokio::test]
async fn jobs_fail_for_offline_devices_refused_major_bumps_and_unknown_images() {
    let h = common::start(common::still()).await;
    let client = common::panorama(&h);
    use UpdateProgress::*;

    let offline = device_id_by_name(&client, "pdx-yard-cam-01").await;
    let job = create(&client, &offline, JobType::Reboot, None).await;
    assert_eq!(
        statuses(&watch_job(&h, &client, &job, &offline).await),
        vec![Pending, Failed]
    );

    // 4.3.93 -> 5.0.21 is a major bump: refused without AllowMajorVersionUpdate...
    let job = create(&client, SEA_LOBBY, JobType::Ota, Some(ota("5.0.21", false))).await;
    assert_eq!(
        statuses(&watch_job(&h, &client, &job, SEA_LOBBY).await),
        vec![Pending, Failed]
    );
    let d = client
        .describe_device()
        .device_id(SEA_LOBBY)
        .send()
        .await
        .unwrap();
    assert_eq!(d.current_software(), Some("4.3.93"));
    // ...and done with it.
    let job = create(&client, SEA_LOBBY, JobType::Ota, Some(ota("5.0.21", true))).await;
    assert_eq!(
        statuses(&watch_job(&h, &client, &job, SEA_LOBBY).await).last(),
        Some(&Completed)
    );
    let d = client
        .describe_device()
        .device_id(SEA_LOBBY)
        .send()
        .await
        .unwrap();
    assert_eq!(d.current_software(), Some("5.0.21"));

    let job = create(
        &client,
        SEA_DOCK_02,
        JobType::Ota,
        Some(ota("5.0.99", false)),
    )
    .await;
    assert_eq!(
        statuses(&watch_job(&h, &client, &job, SEA_DOCK_02).await),
        vec![Pending, Downloading, Failed]
    );
    let d = client
        .describe_device()
        .device_id(SEA_DOCK_02)
        .send()
        .await
        .unwrap();
    assert_eq!(d.current_software(), Some("5.0.10"));
}

#[tokio::test]
async fn list_devices_jobs_pages_through_history_by_device() {
    let h = common::start(common::config()).await;
    let client = common::panorama(&h);
    let mut jobs = Vec::new();
    for _ in 0..3 {
        jobs.push(create(&client, SEA_LOBBY, JobType::Reboot, None).await);
        h.advance_clock(600.0).unwrap();
    }
    jobs.push(create(&client, SEA_DOCK_02, JobType::Reboot, None).await);

    let mut listed = Vec::new();
    let mut token = None;
    loop {
        let page = client
            .list_devices_jobs()
            .device_id(SEA_LOBBY)
            .max_results(1)
            .set_next_token(token)
            .send()
            .await
            .unwrap();
        for j in page.device_jobs() {
            assert_eq!(j.device_id(), Some(SEA_LOBBY));
            assert_eq!(j.device_name(), Some("sea-lobby-cam-01"));
            assert_eq!(j.job_type(), Some(&JobType::Reboot));
            listed.push(j.job_id().unwrap().to_string());
        }
        token = page.next_token().map(str::to_string);
        if token.is_none() {
            break;
        }
    }
    assert_eq!(listed, jobs[..3]);
    let all = client.list_devices_jobs().send().await.unwrap();
    assert_eq!(all.device_jobs().len(), 4);
}

#[tokio::test]
async fn a_device_with_an_unfinished_job_refuses_another() {
    let h = common::start(common::config()).await;
    let client = common::panorama(&h);
    let job = create(
        &client,
        SEA_DOCK_02,
        JobType::Ota,
        Some(ota("5.0.21", false)),
    )
    .await;
    let err = client
        .create_job_for_devices()
        .device_ids(SEA_DOCK_02)
        .job_type(JobType::Reboot)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "ConflictException");
    assert!(message(&err).contains(&job), "{}", message(&err));
    match err.into_service_error() {
        aws_sdk_panorama::operation::create_job_for_devices::CreateJobForDevicesError::ConflictException(c) => {
            assert_eq!(c.resource_id(), SEA_DOCK_02);
            assert_eq!(c.resource_type(), "device");
        }
        other => panic!("expected ConflictException, got {other:?}"),
    }
    // Once the OTA has ended the device takes jobs again.
    h.advance_clock(1_000.0).unwrap();
    create(&client, SEA_DOCK_02, JobType::Reboot, None).await;
    assert_eq!(h.ledger().len(), 2);
}

#[tokio::test]
async fn unknown_ids_are_resource_not_found() {
    let h = common::start(common::config()).await;
    let client = common::panorama(&h);
    let err = client
        .describe_device()
        .device_id("device-nope")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "ResourceNotFoundException");
    assert!(err.into_service_error().is_resource_not_found_exception());

    let err = client
        .describe_device_job()
        .job_id("job-nope")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "ResourceNotFoundException");

    let err = client
        .create_job_for_devices()
        .device_ids("device-nope")
        .job_type(JobType::Reboot)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "ResourceNotFoundException");
    let err = client
        .list_devices_jobs()
        .device_id("device-nope")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "ResourceNotFoundException");
    assert!(h.ledger().is_empty());
}

#[tokio::test]
async fn invalid_input_is_a_validation_exception_naming_the_field() {
    let h = common::start(common::config()).await;
    let client = common::panorama(&h);

    let field_names = |err: aws_sdk_panorama::error::SdkError<
        aws_sdk_panorama::operation::create_job_for_devices::CreateJobForDevicesError,
        _,
    >| {
        match err.into_service_error() {
        aws_sdk_panorama::operation::create_job_for_devices::CreateJobForDevicesError::ValidationException(v) => v
            .fields()
            .iter()
            .map(|f| f.name().to_string())
            .collect::<Vec<_>>(),
        other => panic!("expected ValidationException, got {other:?}"),
    }
    };

    // DeviceIds takes exactly one device.
    let err = client
        .create_job_for_devices()
        .device_ids(SEA_DOCK_02)
        .device_ids(SEA_LOBBY)
        .job_type(JobType::Reboot)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "ValidationException");
    assert!(message(&err).contains("'deviceIds'"), "{}", message(&err));
    assert_eq!(field_names(err), vec!["deviceIds"]);

    // An OTA job needs an image version.
    let err = client
        .create_job_for_devices()
        .device_ids(SEA_DOCK_02)
        .job_type(JobType::Ota)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "ValidationException");
    assert!(message(&err).contains("ImageVersion"), "{}", message(&err));

    // A device id off the model's pattern.
    let err = client
        .create_job_for_devices()
        .device_ids("bad id!")
        .job_type(JobType::Reboot)
        .send()
        .await
        .unwrap_err();
    assert_eq!(field_names(err), vec!["deviceIds.1.member"]);

    // An enum value the model does not know.
    let err = client
        .create_job_for_devices()
        .device_ids(SEA_DOCK_02)
        .job_type(JobType::from("FACTORY_RESET"))
        .send()
        .await
        .unwrap_err();
    assert!(message(&err).contains("'jobType'"), "{}", message(&err));

    let err = client
        .list_devices()
        .max_results(26)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "ValidationException");
    assert!(message(&err).contains("'maxResults'"));

    let err = client
        .list_devices()
        .next_token("not-a-token")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "ValidationException");

    assert!(h.ledger().is_empty(), "nothing invalid took effect");
}
