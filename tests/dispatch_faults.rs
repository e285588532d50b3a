//! Dispatch you can trust: the worker carries out plans against a simulator that fails 10% of
//! calls with 5xx (half of them after taking effect), drops 2% of connections after taking
//! effect, and enforces AWS's Panorama quotas. The simulator's ledger must show exactly one
//! job or execution per device, and every device's outcome must be reported.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use fleetdeck::fleet::{Device, DeviceKey, Operation, Service, SnowOptions};
use fleetdeck::journal::{self, Record};
use fleetdeck::ops::{OpState, OpUpdate};
use fleetdeck::ops::{Plan, Preflight};
use fleetdeck::protocol::{Command, Event, Settings, Source};
use fleetdeck::sim::{FleetSource, QuotaMode, SimConfig, SimHandle};
use fleetdeck::worker;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};

struct Region {
    name: String,
    commands: UnboundedSender<Command>,
    events: UnboundedReceiver<Event>,
}

fn start_worker(sim: &SimHandle, region: &str, journal: &std::path::Path) -> Region {
    let source = Source::simulator(
        &sim.endpoint,
        region,
        &sim.access_key_id,
        &sim.secret_access_key,
    );
    let settings = Settings {
        poll_every: Duration::from_millis(500),
        refresh_every: None,
        journal: Some(journal.to_path_buf()),
        // A create answered 5xx is asked about only after twice this: keep the test short.
        call_timeout: Duration::from_secs(2),
        ..Settings::default()
    };
    let (commands, events) = worker::spawn(source, settings);
    Region {
        name: region.to_string(),
        commands,
        events,
    }
}

/// Reads the region's devices as the UI does: pages until both listings are done.
async fn devices(region: &mut Region) -> Vec<Device> {
    let mut devices: HashMap<DeviceKey, Device> = HashMap::new();
    let mut done = 0;
    while done < 2 {
        match region.events.recv().await.expect("the worker runs") {
            Event::DevicesPage(_, page) => devices.extend(page.into_iter().map(|d| (d.key(), d))),
            Event::ListingDone(..) => done += 1,
            Event::ListingFailed(_, service, e) => {
                panic!(
                    "listing {service:?} in {} failed through retries: {e}",
                    region.name
                )
            }
            _ => {}
        }
    }
    devices.into_values().collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_device_gets_exactly_one_job_or_execution_under_faults() {
    let sim = fleetdeck::sim::start(SimConfig {
        // Panorama holds at most 50 appliances a region: the rollout spans two.
        regions: vec!["us-east-1".into(), "us-west-2".into()],
        fleet: FleetSource::Generated {
            panorama: 12,
            snow: 100,
        },
        error_rate: 0.10,
        drop_rate: 0.02,
        quotas: QuotaMode::Aws,
        // A resend would make a second job instead of a 409: the ledger alone proves once.
        busy_conflicts: false,
        seed: 7,
        ..SimConfig::default()
    })
    .await
    .unwrap();

    // A worker holds its journal under a lock: one journal per region's worker.
    let journals: Vec<std::path::PathBuf> = sim
        .regions
        .iter()
        .map(|r| {
            std::env::temp_dir().join(format!(
                "fleetdeck-faults-{r}-{}.jsonl",
                uuid::Uuid::new_v4()
            ))
        })
        .collect();
    let mut regions: Vec<Region> = sim
        .regions
        .iter()
        .zip(&journals)
        .map(|(r, j)| start_worker(&sim, r, j))
        .collect();
    let mut expected: HashMap<(String, String), Service> = HashMap::new();
    let mut outcomes: HashMap<(usize, usize), OpUpdate> = HashMap::new();
    let mut total = 0;
    for region in regions.iter_mut() {
        let devices = devices(region).await;
        let refs: Vec<&Device> = devices.iter().collect();
        // Every device, offline ones too: what this test judges is the sending, not preflight.
        let everything = Preflight::new(true, Preflight::DEFAULT_STALE);
        let plan = Plan::with(Operation::Reboot, SnowOptions::default(), &refs, everything);
        assert_eq!(plan.panorama().count(), 12);
        assert_eq!(plan.snow_device_count(), 100);
        assert_eq!(plan.snow_tasks(), 10);
        for key in &plan.targets {
            expected.insert((region.name.clone(), key.id.to_string()), key.service);
        }
        total += plan.device_count();
        region
            .commands
            .send(Command::Dispatch(Box::new(plan)))
            .unwrap();
        loop {
            match region.events.recv().await.expect("the worker runs") {
                Event::PlanStarted { .. } => break,
                Event::PlanRefused(r) => panic!("{} refused the plan: {:?}", region.name, r.error),
                _ => {}
            }
        }
    }
    assert_eq!(total, 224);

    // Follow every row to its end, moving simulated time on as a rollout would see it.
    let deadline = Instant::now() + Duration::from_secs(300);
    let mut last_step = Instant::now();
    let done = |u: &OpUpdate| u.state.is_final();
    while outcomes.values().filter(|u| done(u)).count() < total {
        assert!(
            Instant::now() < deadline,
            "only {} of {total} outcomes reported",
            outcomes.values().filter(|u| done(u)).count()
        );
        if last_step.elapsed() > Duration::from_millis(250) {
            sim.advance_clock(20.0).unwrap();
            last_step = Instant::now();
        }
        for (r, region) in regions.iter_mut().enumerate() {
            while let Ok(event) = region.events.try_recv() {
                if let Event::Op(op, update) = event {
                    let entry = outcomes.entry((r, op)).or_insert(update.clone());
                    if !done(entry) {
                        *entry = update;
                    }
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let lost: Vec<&OpUpdate> = outcomes.values().filter(|u| u.error.is_some()).collect();
    assert!(lost.is_empty(), "dispatch gave up on devices: {lost:?}");
    for update in outcomes.values() {
        assert!(
            matches!(
                update.state,
                OpState::Succeeded | OpState::Failed | OpState::TimedOut
            ),
            "{update:?}"
        );
    }

    let mut created: HashMap<(String, String), usize> = HashMap::new();
    for entry in sim.ledger() {
        if matches!(entry.operation, "CreateJobForDevices" | "CreateTask") {
            *created
                .entry((entry.region.clone(), entry.device_id.clone()))
                .or_default() += 1;
        }
    }
    for (device, service) in &expected {
        assert_eq!(
            created.get(device),
            Some(&1),
            "{service:?} device {device:?}"
        );
    }
    assert_eq!(
        created.len(),
        expected.len(),
        "nothing was sent to a device outside the plan"
    );

    // The journal holds an intent before every call and an outcome after it; each Snow batch
    // kept one client token through its retries; both plans ended.
    let records: Vec<Record> = journals
        .iter()
        .flat_map(|j| journal::read(j).unwrap())
        .collect();
    assert!(
        journal::unfinished(&records).is_empty(),
        "a plan was left open"
    );
    let mut tokens: HashMap<Vec<String>, HashSet<String>> = HashMap::new();
    // Intents not yet followed by an outcome, per device list.
    let mut open: HashMap<Vec<String>, usize> = HashMap::new();
    let mut created_in_journal: HashSet<String> = HashSet::new();
    for r in &records {
        match r {
            Record::Intent {
                devices,
                token,
                service,
                ..
            } => {
                *open.entry(devices.clone()).or_default() += 1;
                if *service == Service::Snow {
                    tokens
                        .entry(devices.clone())
                        .or_default()
                        .extend(token.clone());
                }
            }
            Record::Outcome {
                devices,
                resource_id,
                ..
            } => {
                let n = open.entry(devices.clone()).or_default();
                *n = n.saturating_sub(1);
                if resource_id.is_some() {
                    created_in_journal.extend(devices.iter().cloned());
                }
            }
            _ => {}
        }
    }
    assert!(
        open.values().all(|n| *n == 0),
        "an intent without its outcome: {open:?}"
    );
    assert_eq!(tokens.len(), 20, "20 Snow batches");
    assert!(
        tokens.values().all(|t| t.len() == 1),
        "a batch changed its token: {tokens:?}"
    );
    for (_, device) in expected.keys() {
        assert!(
            created_in_journal.contains(device),
            "no outcome names {device}'s job or task"
        );
    }
    for j in &journals {
        let _ = std::fs::remove_file(j);
    }
}
