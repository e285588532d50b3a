//! Several AWS accounts on one simulator, through the official SDKs: each access key sees and
//! changes only its own account's fleet, in every region, as separate AWS accounts would.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_panorama::types::JobType;
use aws_sdk_snowdevicemanagement::types::{Command, Reboot};
use common::{code, message};
use fleetdeck::sim::{
    self, FleetSource, QuotaMode, SimAccount, SimAccountInfo, SimConfig, SimHandle,
};

const REGIONS: [&str; 2] = ["us-east-1", "us-west-2"];
const B_ACCOUNT: &str = "200000000001";

fn generated() -> FleetSource {
    FleetSource::Generated {
        panorama: 4,
        snow: 4,
    }
}

/// Account A (the default, 123456789012) and account B, each with a generated fleet of 4
/// appliances and 4 Snow devices in each of us-east-1 and us-west-2.
fn two_accounts(quotas: QuotaMode) -> SimConfig {
    SimConfig {
        regions: REGIONS.iter().map(|r| r.to_string()).collect(),
        fleet: generated(),
        accounts: vec![SimAccount {
            access_key_id: "AKIDACCOUNTB".into(),
            secret_access_key: "account/b/secret".into(),
            fleet: generated(),
            account_id: Some(B_ACCOUNT.into()),
        }],
        quotas,
        ..common::config()
    }
}

fn a_and_b(h: &SimHandle) -> (SimAccountInfo, SimAccountInfo) {
    assert_eq!(h.accounts.len(), 2, "{:?}", h.accounts);
    (h.accounts[0].clone(), h.accounts[1].clone())
}

/// (id, ARN) of every Panorama appliance an account sees in a region; ARNs come from
/// DescribeDevice, as ListDevices carries none.
async fn panorama_fleet(
    h: &SimHandle,
    account: &SimAccountInfo,
    region: &str,
) -> Vec<(String, String)> {
    let client = common::panorama_as(h, account, region);
    let mut out = Vec::new();
    for d in common::all_panorama_devices(&client).await {
        let id = d.device_id().expect("an id").to_string();
        let described = client
            .describe_device()
            .device_id(&id)
            .send()
            .await
            .expect("DescribeDevice");
        out.push((id, described.arn().expect("an ARN").to_string()));
    }
    out
}

/// (id, ARN) of every Snow device an account sees in a region.
async fn snow_fleet(
    h: &SimHandle,
    account: &SimAccountInfo,
    region: &str,
) -> Vec<(String, String)> {
    let out = common::snow_as(h, account, region)
        .list_devices()
        .send()
        .await
        .expect("ListDevices");
    out.devices()
        .iter()
        .map(|d| {
            (
                d.managed_device_id().expect("an id").to_string(),
                d.managed_device_arn().expect("an ARN").to_string(),
            )
        })
        .collect()
}

#[tokio::test]
async fn each_key_lists_only_its_own_accounts_devices_in_each_region() {
    let h = common::start(two_accounts(QuotaMode::Off)).await;
    let (a, b) = a_and_b(&h);
    assert_eq!(a.account_id, "123456789012");
    assert_eq!(a.access_key_id, h.access_key_id);
    assert_eq!(b.account_id, B_ACCOUNT);

    let mut owner: BTreeMap<String, String> = BTreeMap::new();
    for account in [&a, &b] {
        for region in REGIONS {
            let panorama = panorama_fleet(&h, account, region).await;
            let snow = snow_fleet(&h, account, region).await;
            assert_eq!(panorama.len(), 4, "{} {region}", account.account_id);
            assert_eq!(snow.len(), 4, "{} {region}", account.account_id);
            for (id, arn) in &panorama {
                let want = format!(
                    "arn:aws:panorama:{region}:{}:device/{id}",
                    account.account_id
                );
                assert_eq!(arn, &want);
            }
            for (id, arn) in &snow {
                let want = format!(
                    "arn:aws:snow-device-management:{region}:{}:managed-device/{id}",
                    account.account_id
                );
                assert_eq!(arn, &want);
            }
            for (id, _) in panorama.iter().chain(&snow) {
                let before = owner.insert(id.clone(), account.account_id.clone());
                assert_eq!(before, None, "{id} is listed twice");
            }
        }
    }
    assert_eq!(
        owner.len(),
        2 * 2 * 8,
        "no id repeats across accounts and regions"
    );

    // Another account's device is an unknown id, as it would be at AWS.
    let a_appliance = &panorama_fleet(&h, &a, "us-west-2").await[0].0;
    let err = common::panorama_as(&h, &b, "us-west-2")
        .describe_device()
        .device_id(a_appliance)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "ResourceNotFoundException");
    let a_snow = &snow_fleet(&h, &a, "us-east-1").await[0].0;
    let err = common::snow_as(&h, &b, "us-east-1")
        .describe_device()
        .managed_device_id(a_snow)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "ResourceNotFoundException");
}

#[tokio::test]
async fn what_b_creates_stays_in_account_b() {
    let h = common::start(two_accounts(QuotaMode::Off)).await;
    let (a, b) = a_and_b(&h);
    let region = "us-west-2";
    let (pan_a, pan_b) = (
        common::panorama_as(&h, &a, region),
        common::panorama_as(&h, &b, region),
    );
    let (snow_a, snow_b) = (
        common::snow_as(&h, &a, region),
        common::snow_as(&h, &b, region),
    );

    let b_appliance = panorama_fleet(&h, &b, region).await[0].0.clone();
    let b_job = pan_b
        .create_job_for_devices()
        .device_ids(&b_appliance)
        .job_type(JobType::Reboot)
        .send()
        .await
        .expect("CreateJobForDevices in B");
    let b_job = b_job.jobs()[0].job_id().expect("a job id").to_string();
    let b_snow = snow_fleet(&h, &b, region).await[0].0.clone();
    let b_task = snow_b
        .create_task()
        .command(Command::Reboot(Reboot::builder().build()))
        .targets(&b_snow)
        .send()
        .await
        .expect("CreateTask in B");
    assert_eq!(
        b_task.task_arn(),
        Some(
            format!(
                "arn:aws:snow-device-management:{region}:{B_ACCOUNT}:task/{}",
                b_task.task_id().unwrap_or_default()
            )
            .as_str()
        )
    );
    let b_task = b_task.task_id().expect("a task id").to_string();

    // B sees its job, with B's ARN; the handle finds its end.
    let job = pan_b
        .describe_device_job()
        .job_id(&b_job)
        .send()
        .await
        .expect("DescribeDeviceJob in B");
    assert_eq!(
        job.device_arn(),
        Some(format!("arn:aws:panorama:{region}:{B_ACCOUNT}:device/{b_appliance}").as_str())
    );
    assert!(h.job_end(&b_job).is_some());

    // A creates too: its ids are its own, and the ledger tells the accounts apart.
    let a_appliance = panorama_fleet(&h, &a, region).await[0].0.clone();
    let a_job = pan_a
        .create_job_for_devices()
        .device_ids(&a_appliance)
        .job_type(JobType::Reboot)
        .send()
        .await
        .expect("CreateJobForDevices in A");
    let a_job = a_job.jobs()[0].job_id().expect("a job id").to_string();
    assert_ne!(a_job, b_job);
    let ledger = h.ledger();
    let accounts: Vec<(&str, &str, &str)> = ledger
        .iter()
        .map(|e| {
            (
                e.account.as_str(),
                e.resource_id.as_str(),
                e.device_id.as_str(),
            )
        })
        .collect();
    assert_eq!(
        accounts,
        vec![
            (B_ACCOUNT, b_job.as_str(), b_appliance.as_str()),
            (B_ACCOUNT, b_task.as_str(), b_snow.as_str()),
            ("123456789012", a_job.as_str(), a_appliance.as_str()),
        ]
    );

    // A's lists hold none of B's work, and B's ids are unknown to A.
    let a_jobs = pan_a
        .list_devices_jobs()
        .send()
        .await
        .expect("ListDevicesJobs in A");
    let a_job_ids: Vec<&str> = a_jobs
        .device_jobs()
        .iter()
        .filter_map(|j| j.job_id())
        .collect();
    assert_eq!(a_job_ids, vec![a_job.as_str()]);
    let err = pan_a
        .describe_device_job()
        .job_id(&b_job)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "ResourceNotFoundException");
    let a_tasks = snow_a.list_tasks().send().await.expect("ListTasks in A");
    assert!(a_tasks.tasks().is_empty(), "{:?}", a_tasks.tasks());
    let err = snow_a
        .describe_task()
        .task_id(&b_task)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "ResourceNotFoundException");
    let b_tasks = snow_b.list_tasks().send().await.expect("ListTasks in B");
    let b_task_ids: Vec<&str> = b_tasks.tasks().iter().map(|t| t.task_id()).collect();
    assert_eq!(b_task_ids, vec![b_task.as_str()]);
}

#[tokio::test]
async fn keys_are_checked_per_account() {
    let h = common::start(two_accounts(QuotaMode::Off)).await;
    let (a, b) = a_and_b(&h);

    let stranger = SimAccountInfo {
        access_key_id: "AKIDNOBODYKNOWS".into(),
        ..b.clone()
    };
    let err = common::snow_as(&h, &stranger, "us-east-1")
        .list_devices()
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "UnrecognizedClientException");
    assert_eq!(
        message(&err),
        "The security token included in the request is invalid."
    );

    // B's key signed with A's secret: a known key, a wrong signature.
    let mixed = SimAccountInfo {
        secret_access_key: a.secret_access_key.clone(),
        ..b.clone()
    };
    let err = common::panorama_as(&h, &mixed, "us-east-1")
        .list_devices()
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "InvalidSignatureException");
    assert!(
        message(&err).contains("signature we calculated does not match"),
        "{}",
        message(&err)
    );
    assert!(h.ledger().is_empty());
}

#[tokio::test]
async fn the_panorama_quota_is_per_account() {
    let h = common::start(two_accounts(QuotaMode::Aws)).await;
    let (a, b) = a_and_b(&h);
    let region = "us-east-1";
    let pan_a = common::panorama_as(&h, &a, region);
    let pan_b = common::panorama_as(&h, &b, region);
    // One ListDevices each: well within 5 requests a second.
    let a_ids: Vec<String> = common::all_panorama_devices(&pan_a)
        .await
        .iter()
        .filter_map(|d| d.device_id().map(str::to_string))
        .collect();
    let b_device = common::all_panorama_devices(&pan_b).await[0]
        .device_id()
        .expect("an id")
        .to_string();

    // A's burst of creates runs into 1 CreateJobForDevices a second.
    let mut throttled = false;
    for id in &a_ids {
        match pan_a
            .create_job_for_devices()
            .device_ids(id)
            .job_type(JobType::Reboot)
            .send()
            .await
        {
            Ok(_) => {}
            Err(e) if code(&e) == "ThrottlingException" => {
                throttled = true;
                break;
            }
            Err(e) => panic!("CreateJobForDevices in A: {e:?}"),
        }
    }
    assert!(throttled, "a burst of creates in A must be throttled");

    // B's first create in the same region goes through at once.
    let out = pan_b
        .create_job_for_devices()
        .device_ids(&b_device)
        .job_type(JobType::Reboot)
        .send()
        .await
        .expect("B's own quota is untouched by A's burst");
    assert_eq!(out.jobs()[0].device_id(), Some(b_device.as_str()));
    let last = h
        .ledger()
        .last()
        .cloned()
        .expect("B's create is in the ledger");
    assert_eq!(last.account, B_ACCOUNT);
}

/// The lab demo file's device ids per region, as the file places them.
fn lab_file_ids() -> BTreeMap<(String, String), BTreeSet<String>> {
    let file: toml::Value = toml::from_str(sim::DEMO_FLEET_LAB).expect("the lab fleet parses");
    let mut out: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    for service in ["panorama", "snow"] {
        let devices = file[service]["devices"].as_array().expect("devices");
        for d in devices {
            let region = d["region"].as_str().expect("a region").to_string();
            let id = d["id"].as_str().expect("an id").to_string();
            out.entry((service.to_string(), region))
                .or_default()
                .insert(id);
        }
    }
    out
}

#[tokio::test]
async fn the_lab_demo_fleet_is_its_own_account_over_two_regions() {
    let h = common::start(SimConfig {
        regions: REGIONS.iter().map(|r| r.to_string()).collect(),
        accounts: vec![SimAccount {
            access_key_id: sim::DEMO_LAB_ACCESS_KEY_ID.into(),
            secret_access_key: sim::DEMO_LAB_SECRET_ACCESS_KEY.into(),
            fleet: FleetSource::Toml(sim::DEMO_FLEET_LAB.into()),
            account_id: None,
        }],
        ..common::config()
    })
    .await;
    let (demo, lab) = a_and_b(&h);
    assert_eq!(lab.account_id, "210987654321");
    assert_eq!(lab.access_key_id, sim::DEMO_LAB_ACCESS_KEY_ID);

    let expected = lab_file_ids();
    let placed = |service: &str, region: &str| {
        expected
            .get(&(service.to_string(), region.to_string()))
            .cloned()
            .unwrap_or_default()
    };
    assert_eq!(placed("panorama", "us-west-2").len(), 6);
    assert_eq!(placed("snow", "us-west-2").len(), 4);
    assert_eq!(placed("snow", "us-east-1").len(), 2);
    for region in REGIONS {
        let panorama = common::all_panorama_devices(&common::panorama_as(&h, &lab, region)).await;
        let ids: BTreeSet<String> = panorama
            .iter()
            .filter_map(|d| d.device_id().map(str::to_string))
            .collect();
        assert_eq!(ids, placed("panorama", region), "lab Panorama in {region}");
        assert!(
            panorama
                .iter()
                .all(|d| d.name().is_some_and(|n| n.starts_with("pdx-")))
        );
        let snow: BTreeSet<String> = snow_fleet(&h, &lab, region)
            .await
            .into_iter()
            .map(|(id, _)| id)
            .collect();
        assert_eq!(snow, placed("snow", region), "lab Snow in {region}");
    }

    // The default demo fleet stays in the first region, and shares nothing with the lab.
    let demo_east =
        common::all_panorama_devices(&common::panorama_as(&h, &demo, "us-east-1")).await;
    assert_eq!(demo_east.len(), 14);
    let demo_west =
        common::all_panorama_devices(&common::panorama_as(&h, &demo, "us-west-2")).await;
    assert!(demo_west.is_empty());
    assert!(snow_fleet(&h, &demo, "us-west-2").await.is_empty());
}
