//! Panorama application instances through the official SDK against the simulator: listing
//! and paging per appliance, Describe, and their health through reboots and OTAs.

mod common;

use aws_sdk_panorama::types::{
    ApplicationInstance, ApplicationInstanceHealthStatus as Health, ApplicationInstanceStatus,
    DeviceJobConfig, JobType, OtaJobConfig, StatusFilter, UpdateProgress,
};
use fleetdeck::sim::{FleetSource, SimAccount, SimConfig, SimHandle};

const SEA_LOBBY: &str = "device-kotqcfc3r784vjme0m2rlw1u9m"; // people-counter, occupancy-heatmap
const SEA_DOCK_02: &str = "device-ktsxfvy6plp4rf9tast6m01s12"; // 5.0.10, forklift-proximity
const PDX_LINE1_01: &str = "device-2siqykvaxc3kxxsg2n1nhdddkj"; // 5.0.10, defect-detection
const CHI_WH_01: &str = "device-mwfezlvxultbb7fwgkl5ehl4ot"; // three applications
/// Every application instance in the demo fleet.
const DEMO_INSTANCES: usize = 22;

/// Every instance listed for `device` (or all), `page` at a time, asserting no page is larger.
async fn list_all(
    client: &aws_sdk_panorama::Client,
    device: Option<&str>,
    page: i32,
) -> (Vec<ApplicationInstance>, usize) {
    let mut out = Vec::new();
    let mut token = None;
    let mut pages = 0;
    loop {
        let answer = client
            .list_application_instances()
            .set_device_id(device.map(str::to_string))
            .max_results(page)
            .set_next_token(token)
            .send()
            .await
            .expect("ListApplicationInstances");
        pages += 1;
        assert!(answer.application_instances().len() <= page as usize);
        out.extend(answer.application_instances().iter().cloned());
        token = answer.next_token().map(str::to_string);
        if token.is_none() {
            return (out, pages);
        }
    }
}

/// The health of each of an appliance's instances, in list order.
async fn health(client: &aws_sdk_panorama::Client, device: &str) -> Vec<Health> {
    let (instances, _) = list_all(client, Some(device), 25).await;
    assert!(!instances.is_empty(), "{device} runs applications");
    instances
        .iter()
        .map(|i| i.health_status().cloned().expect("a health status"))
        .collect()
}

/// The one health all of an appliance's instances share, or a panic naming them.
async fn shared_health(client: &aws_sdk_panorama::Client, device: &str) -> Health {
    let all = health(client, device).await;
    assert!(all.iter().all(|h| *h == all[0]), "{device}: {all:?}");
    all[0].clone()
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
    out.jobs()[0].job_id().expect("a job id").to_string()
}

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

async fn job_status(client: &aws_sdk_panorama::Client, job: &str) -> UpdateProgress {
    client
        .describe_device_job()
        .job_id(job)
        .send()
        .await
        .expect("DescribeDeviceJob")
        .status()
        .cloned()
        .expect("a status")
}

fn ended(status: &UpdateProgress) -> bool {
    matches!(status, UpdateProgress::Completed | UpdateProgress::Failed)
}

#[tokio::test]
async fn each_appliance_lists_its_applications_a_page_at_a_time() {
    let h = common::start(common::config()).await;
    let client = common::panorama(&h);

    let (lobby, pages) = list_all(&client, Some(SEA_LOBBY), 1).await;
    assert_eq!(pages, 2, "MaxResults 1 gives a page per instance");
    let names: Vec<_> = lobby.iter().filter_map(|i| i.name()).collect();
    assert_eq!(names, ["people-counter", "occupancy-heatmap"]);
    for i in &lobby {
        assert_eq!(i.default_runtime_context_device(), Some(SEA_LOBBY));
        assert_eq!(
            i.default_runtime_context_device_name(),
            Some("sea-lobby-cam-01")
        );
        assert_eq!(i.health_status(), Some(&Health::Running));
        assert_eq!(
            i.status(),
            Some(&ApplicationInstanceStatus::DeploymentSucceeded)
        );
        let id = i.application_instance_id().expect("an id");
        assert!(id.starts_with("applicationInstance-"), "{id}");
        let arn = i.arn().expect("an ARN");
        assert_eq!(
            arn,
            format!("arn:aws:panorama:us-east-1:123456789012:applicationInstance/{id}")
        );
        assert!(i.created_time().is_some() && i.status_description().is_some());
        let states = i.runtime_context_states();
        assert_eq!(states.len(), 1);
        assert_eq!(states[0].device_reported_status().as_str(), "RUNNING");
    }

    let (chicago, pages) = list_all(&client, Some(CHI_WH_01), 1).await;
    assert_eq!((chicago.len(), pages), (3, 3));

    // The whole region, 5 a page: every instance once.
    let (every, pages) = list_all(&client, None, 5).await;
    assert_eq!(every.len(), DEMO_INSTANCES);
    assert_eq!(pages, DEMO_INSTANCES.div_ceil(5));
    let mut ids: Vec<_> = every
        .iter()
        .filter_map(|i| i.application_instance_id())
        .collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), DEMO_INSTANCES, "no instance twice");

    // Every instance is deployed: a filter on another status finds none.
    let failed = client
        .list_application_instances()
        .status_filter(StatusFilter::DeploymentFailed)
        .send()
        .await
        .unwrap();
    assert!(failed.application_instances().is_empty());
    let (unknown, _) = list_all(&client, Some("device-nosuchappliance"), 25).await;
    assert!(unknown.is_empty());

    let err = client
        .list_application_instances()
        .max_results(26)
        .send()
        .await
        .unwrap_err();
    assert_eq!(common::code(&err), "ValidationException");
    assert!(common::message(&err).contains("maxResults"));
}

#[tokio::test]
async fn describe_reads_a_listed_instance_and_refuses_an_unknown_one() {
    let h = common::start(common::config()).await;
    let client = common::panorama(&h);
    let (listed, _) = list_all(&client, Some(SEA_DOCK_02), 25).await;
    let id = listed[0].application_instance_id().expect("an id");

    let d = client
        .describe_application_instance()
        .application_instance_id(id)
        .send()
        .await
        .expect("DescribeApplicationInstance");
    assert_eq!(d.application_instance_id(), Some(id));
    assert_eq!(d.name(), Some("forklift-proximity"));
    assert_eq!(d.default_runtime_context_device(), Some(SEA_DOCK_02));
    assert_eq!(d.health_status(), Some(&Health::Running));
    assert_eq!(d.arn(), listed[0].arn());
    assert!(d.last_updated_time().is_some());
    assert_eq!(d.tags().unwrap()["application"], "forklift-proximity");

    let err = client
        .describe_application_instance()
        .application_instance_id("applicationInstance-000000000000000000000000")
        .send()
        .await
        .unwrap_err();
    assert_eq!(common::code(&err), "ResourceNotFoundException");
    assert!(
        err.into_service_error().is_resource_not_found_exception(),
        "the SDK reads the model's error"
    );
    let err = client
        .describe_application_instance()
        .application_instance_id("not an id")
        .send()
        .await
        .unwrap_err();
    assert_eq!(common::code(&err), "ValidationException");
}

/// Steps simulated time 5 s at a time through a reboot, reading the job and the health.
#[tokio::test]
async fn a_reboot_stops_the_applications_until_a_while_after_the_appliance_is_back() {
    let h = common::start(common::still()).await;
    let client = common::panorama(&h);
    let job = create(&client, SEA_LOBBY, JobType::Reboot, None).await;
    let mut seen: Vec<(UpdateProgress, Health)> = Vec::new();
    for _ in 0..100 {
        let status = job_status(&client, &job).await;
        let now = (status, shared_health(&client, SEA_LOBBY).await);
        if now.0 == UpdateProgress::Rebooting {
            assert_eq!(now.1, Health::NotAvailable, "down while rebooting");
        }
        if now.0 == UpdateProgress::Pending {
            assert_eq!(now.1, Health::Running, "up until the reboot starts");
        }
        seen.push(now.clone());
        if now == (UpdateProgress::Completed, Health::Running) {
            break;
        }
        h.advance_clock(5.0).unwrap();
    }
    let done = seen
        .iter()
        .position(|(s, _)| *s == UpdateProgress::Completed)
        .expect("the reboot completed");
    let back = seen
        .iter()
        .rposition(|(_, health)| *health != Health::Running)
        .expect("the applications were down")
        + 1;
    assert!(back < seen.len(), "running again: {seen:?}");
    // Back 20 simulated seconds after the job ended: three 5 s steps at the least.
    assert_eq!(seen[done].1, Health::NotAvailable, "{seen:?}");
    assert!(back - done >= 3, "{seen:?}");
    let end = h.job_end(&job).expect("the job's end");
    let (instances, _) = list_all(&client, Some(SEA_LOBBY), 25).await;
    let reported = instances[0].runtime_context_states()[0].device_reported_time();
    assert!((reported.as_secs_f64() - (end + 20.0)).abs() < 0.01);
    // Another appliance's applications ran all along.
    assert_eq!(shared_health(&client, SEA_DOCK_02).await, Health::Running);
}

/// At --speed 50 a client polls in real time, as an operator's tool would.
#[tokio::test]
async fn at_speed_a_client_waits_for_the_applications_after_a_reboot() {
    let h = common::start(SimConfig {
        speed: 50.0,
        ..common::config()
    })
    .await;
    let client = common::panorama(&h);
    let job = create(&client, SEA_LOBBY, JobType::Reboot, None).await;
    let mut healths: Vec<Health> = Vec::new();
    let mut lagged = false;
    for _ in 0..2000 {
        let status = job_status(&client, &job).await;
        let health = shared_health(&client, SEA_LOBBY).await;
        // Read after the job: once the job has ended, the applications are still starting.
        lagged |= status == UpdateProgress::Completed && health == Health::NotAvailable;
        if healths.last() != Some(&health) {
            healths.push(health.clone());
        }
        if ended(&status) && health == Health::Running {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(healths.last(), Some(&Health::Running), "{healths:?}");
    assert!(
        healths.ends_with(&[Health::NotAvailable, Health::Running]),
        "{healths:?}"
    );
    assert!(lagged, "seen NOT_AVAILABLE after the job COMPLETED");
}

#[tokio::test]
async fn an_ota_leaves_the_marked_appliances_applications_in_error_and_others_running() {
    let h = common::start(SimConfig {
        unhealthy_after_ota: vec!["sea-dock-cam-02".into()],
        ..common::still()
    })
    .await;
    let client = common::panorama(&h);
    let broken = create(&client, SEA_DOCK_02, JobType::Ota, Some(ota("5.0.21"))).await;
    let fine = create(&client, PDX_LINE1_01, JobType::Ota, Some(ota("5.0.21"))).await;
    let mut installing = false;
    for _ in 0..300 {
        let (a, b) = (
            job_status(&client, &broken).await,
            job_status(&client, &fine).await,
        );
        if a == UpdateProgress::InProgress {
            installing = true;
            assert_eq!(
                shared_health(&client, SEA_DOCK_02).await,
                Health::NotAvailable
            );
        }
        if ended(&a) && ended(&b) {
            break;
        }
        h.advance_clock(5.0).unwrap();
    }
    assert!(installing, "the OTA was seen installing");
    h.advance_clock(30.0).unwrap();
    for (job, device) in [(&broken, SEA_DOCK_02), (&fine, PDX_LINE1_01)] {
        assert_eq!(job_status(&client, job).await, UpdateProgress::Completed);
        let d = client
            .describe_device()
            .device_id(device)
            .send()
            .await
            .unwrap();
        assert_eq!(d.current_software(), Some("5.0.21"));
        assert_eq!(
            d.device_connection_status().map(|s| s.as_str()),
            Some("ONLINE")
        );
    }
    assert_eq!(shared_health(&client, PDX_LINE1_01).await, Health::Running);
    let (instances, _) = list_all(&client, Some(SEA_DOCK_02), 25).await;
    for i in &instances {
        assert_eq!(i.health_status(), Some(&Health::Error));
        let text = i.status_description().unwrap_or_default();
        assert!(
            text.contains("failed to start after the software update to 5.0.21"),
            "{text}"
        );
        assert_eq!(
            i.runtime_context_states()[0]
                .device_reported_status()
                .as_str(),
            "LAUNCH_ERROR"
        );
    }
    // A reboot does not mend them.
    let reboot = create(&client, SEA_DOCK_02, JobType::Reboot, None).await;
    h.advance_clock(200.0).unwrap();
    assert_eq!(
        job_status(&client, &reboot).await,
        UpdateProgress::Completed
    );
    assert_eq!(shared_health(&client, SEA_DOCK_02).await, Health::Error);
}

#[tokio::test]
async fn an_unhealthy_after_ota_name_that_cannot_fire_is_refused_at_start() {
    let err = fleetdeck::sim::start(SimConfig {
        unhealthy_after_ota: vec![SEA_LOBBY.into(), "no-such-cam".into()],
        ..common::config()
    })
    .await
    .err()
    .expect("refused");
    let text = format!("{err:#}");
    assert!(text.contains("no-such-cam"), "{text}");
    assert!(
        !text.contains(SEA_LOBBY),
        "an id is a way to name one: {text}"
    );

    let bare = r#"
        [panorama]
        images = ["1.0.0"]
        [[panorama.devices]]
        name = "bare-cam"
        software = "1.0.0"
    "#;
    let err = fleetdeck::sim::start(SimConfig {
        fleet: FleetSource::Toml(bare.into()),
        unhealthy_after_ota: vec!["bare-cam".into()],
        ..common::config()
    })
    .await
    .err()
    .expect("refused");
    assert!(
        format!("{err:#}").contains("runs no applications"),
        "{err:#}"
    );
}

#[tokio::test]
async fn generated_appliances_run_one_to_three_applications_the_seed_decides() {
    async fn listing(seed: u64) -> (SimHandle, Vec<ApplicationInstance>) {
        let h = common::start(SimConfig {
            fleet: FleetSource::Generated {
                panorama: 8,
                snow: 0,
            },
            seed,
            ..common::config()
        })
        .await;
        let (all, _) = list_all(&common::panorama(&h), None, 25).await;
        (h, all)
    }
    let (h, first) = listing(4).await;
    let devices = common::all_panorama_devices(&common::panorama(&h)).await;
    for d in &devices {
        let id = d.device_id();
        let n = first
            .iter()
            .filter(|i| i.default_runtime_context_device() == id)
            .count();
        assert!((1..=3).contains(&n), "{id:?} runs {n}");
    }
    let ids = |all: &[ApplicationInstance]| -> Vec<String> {
        all.iter()
            .filter_map(|i| i.application_instance_id().map(str::to_string))
            .collect()
    };
    assert_eq!(ids(&first), ids(&listing(4).await.1), "the same seed");
    assert_ne!(ids(&first), ids(&listing(5).await.1), "another seed");
}

#[tokio::test]
async fn instances_stay_with_their_appliances_account_and_region() {
    let h = common::start(SimConfig {
        regions: vec!["us-east-1".into(), "us-west-2".into()],
        accounts: vec![SimAccount {
            access_key_id: "AKIDAPPSLAB".into(),
            secret_access_key: "apps/lab/secret".into(),
            fleet: FleetSource::Generated {
                panorama: 2,
                snow: 0,
            },
            account_id: Some("200000000001".into()),
        }],
        ..common::config()
    })
    .await;
    let default = common::panorama(&h);
    let (ours, _) = list_all(&default, None, 25).await;
    assert_eq!(ours.len(), DEMO_INSTANCES);
    let west = common::panorama_with(
        &h,
        "us-west-2",
        aws_sdk_panorama::config::retry::RetryConfig::disabled(),
    );
    assert!(
        list_all(&west, None, 25).await.0.is_empty(),
        "none in us-west-2"
    );

    let lab = common::panorama_as(&h, &h.accounts[1], "us-east-1");
    let (theirs, _) = list_all(&lab, None, 25).await;
    assert!(!theirs.is_empty());
    for i in &theirs {
        let arn = i.arn().unwrap_or_default();
        assert!(arn.contains(":200000000001:applicationInstance/"), "{arn}");
    }
    let ours_id = ours[0].application_instance_id().unwrap();
    let err = lab
        .describe_application_instance()
        .application_instance_id(ours_id)
        .send()
        .await
        .unwrap_err();
    assert_eq!(common::code(&err), "ResourceNotFoundException");
}
