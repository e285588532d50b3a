//! The operation engine against failures made to happen on purpose: a create that lands after
//! the client gave up (with the simulator's one-job-per-appliance rule lifted, so only the
//! ledger can show a second job), a ListDevices that answers from a stale snapshot, a CancelTask
//! whose answer is lost after it took effect, a busy Snow device, Panorama pacing beside a Snow
//! batch, and a second instance on the same journal. Each test asserts its fault was hit.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use aws_sdk_snowdevicemanagement::types::{Command as SnowCommand, Reboot};
use fleetdeck::fleet::{Device, DeviceKey, Operation, Service, SnowOptions};
use fleetdeck::journal::{self, Call, Record};
use fleetdeck::ops::Plan;
use fleetdeck::ops::{OpId, OpState, OpUpdate};
use fleetdeck::protocol::{Command, Event, Settings, Source};
use fleetdeck::sim::{FaultRule, SimConfig, SimHandle, TargetedFault};
use fleetdeck::worker;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};

mod common;

/// sea-dock-cam-01 and an always-reachable Snow device of the demo fleet.
const APPLIANCE: &str = "device-ptgz4jfebz9sdo78xrlgqnbqrm";

struct Worker {
    commands: UnboundedSender<Command>,
    events: UnboundedReceiver<Event>,
    /// Every operation's latest news.
    ops: HashMap<OpId, OpUpdate>,
    /// Each operation's states, in order.
    history: HashMap<OpId, Vec<OpState>>,
    notices: Vec<String>,
    failures: Vec<String>,
}

fn journal() -> PathBuf {
    std::env::temp_dir().join(format!("fleetdeck-lf-{}.jsonl", uuid::Uuid::new_v4()))
}

fn start(sim: &SimHandle, journal: &Path, settings: Settings) -> Worker {
    let source = Source::simulator(
        &sim.endpoint,
        "us-east-1",
        &sim.access_key_id,
        &sim.secret_access_key,
    );
    let settings = Settings {
        journal: Some(journal.to_path_buf()),
        refresh_every: None,
        poll_every: Duration::from_millis(200),
        ..settings
    };
    let (commands, events) = worker::spawn(source, settings);
    Worker {
        commands,
        events,
        ops: HashMap::new(),
        history: HashMap::new(),
        notices: Vec::new(),
        failures: Vec::new(),
    }
}

impl Worker {
    /// Takes in one event, keeping the news of operations, notices and failures.
    async fn next(&mut self) -> Event {
        let event = tokio::time::timeout(Duration::from_secs(60), self.events.recv())
            .await
            .expect("the worker answers within a minute")
            .expect("the worker runs");
        match &event {
            Event::Op(op, update) => {
                self.history.entry(*op).or_default().push(update.state);
                self.ops.insert(*op, update.clone());
            }
            Event::Notice(n) => self.notices.push(n.clone()),
            Event::Failure(f) => self.failures.push(f.clone()),
            _ => {}
        }
        event
    }

    async fn listed(&mut self) {
        let mut done = 0;
        while done < 2 {
            if let Event::ListingDone(..) = self.next().await {
                done += 1;
            }
        }
    }

    /// Dispatches a plan for these devices; returns the engine's operation ids.
    async fn dispatch(&mut self, devices: &[Device]) -> Vec<(OpId, DeviceKey)> {
        let refs: Vec<&Device> = devices.iter().collect();
        let plan = Plan::new(Operation::Reboot, SnowOptions::default(), &refs);
        self.commands
            .send(Command::Dispatch(Box::new(plan)))
            .unwrap();
        loop {
            match self.next().await {
                Event::PlanStarted { ops, .. } => return ops,
                Event::PlanRefused(r) => panic!("refused: {:?}", r.error),
                _ => {}
            }
        }
    }

    async fn until(&mut self, what: &str, ok: impl Fn(&Self) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !ok(self) {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            let _ = tokio::time::timeout(Duration::from_millis(200), self.next()).await;
        }
    }

    fn state(&self, op: OpId) -> Option<OpState> {
        self.ops.get(&op).map(|u| u.state)
    }
}

fn jobs_of(sim: &SimHandle, device: &str) -> usize {
    sim.ledger()
        .iter()
        .filter(|e| e.operation == "CreateJobForDevices" && e.device_id == device)
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_that_lands_after_the_client_gave_up_is_adopted_not_sent_again() {
    // The create is held 800 ms before it takes effect; the client gives up at 500 ms. Read at
    // once, the appliance's jobs would show none and a resend would make a second job (the
    // simulator's 409 rule is lifted, as a service without it would behave).
    let sim = common::start(SimConfig {
        busy_conflicts: false,
        faults: vec![FaultRule {
            operation: "CreateJobForDevices".into(),
            nth: 1,
            fault: TargetedFault::Delay(Duration::from_millis(800)),
        }],
        ..common::config()
    })
    .await;
    let j = journal();
    let mut w = start(
        &sim,
        &j,
        Settings {
            call_timeout: Duration::from_millis(500),
            ..Settings::default()
        },
    );
    w.listed().await;
    let ops = w
        .dispatch(&[Device::new(Service::Panorama, APPLIANCE)])
        .await;
    let op = ops[0].0;
    w.until("the row to be sent", |w| {
        w.state(op)
            .is_some_and(|s| s.was_sent() && s != OpState::Unconfirmed)
    })
    .await;
    assert!(sim.faults().iter().all(|f| f.hit), "{:?}", sim.faults());
    assert!(
        w.history[&op].contains(&OpState::Unconfirmed),
        "the timed-out create was shown unconfirmed first: {:?}",
        w.history[&op]
    );
    let job = w.ops[&op]
        .resource_id
        .clone()
        .expect("the adopted job's id");
    // Nothing more goes out afterwards either.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(jobs_of(&sim, APPLIANCE), 1, "{:#?}", sim.ledger());
    assert_eq!(sim.ledger()[0].resource_id, job);
    let _ = std::fs::remove_file(&j);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_listing_never_finishes_a_row_before_its_job() {
    let sim = common::start(SimConfig {
        stale_reads: Duration::from_secs(30),
        ..common::config()
    })
    .await;
    // An earlier reboot of the appliance, finished: its LatestDeviceJob reads COMPLETED.
    let panorama = common::panorama(&sim);
    panorama
        .create_job_for_devices()
        .device_ids(APPLIANCE)
        .job_type(aws_sdk_panorama::types::JobType::Reboot)
        .send()
        .await
        .unwrap();
    sim.advance_clock(600.0).unwrap();
    let j = journal();
    let mut w = start(&sim, &j, Settings::default());
    w.listed().await;
    let ops = w
        .dispatch(&[Device::new(Service::Panorama, APPLIANCE)])
        .await;
    let op = ops[0].0;
    w.until("the new job's id", |w| {
        w.ops.get(&op).is_some_and(|u| u.resource_id.is_some())
    })
    .await;
    let job = w.ops[&op].resource_id.clone().unwrap();
    // The listing still shows the earlier job's end (the stale read was hit)…
    let listed = panorama.list_devices().send().await.unwrap();
    let latest = listed
        .devices()
        .iter()
        .find(|d| d.device_id() == Some(APPLIANCE))
        .and_then(|d| d.latest_device_job())
        .and_then(|l| l.status())
        .map(|s| s.as_str().to_string());
    assert_eq!(latest.as_deref(), Some("COMPLETED"), "a stale listing");
    // …while the new job itself is not done: through several polls the row stays unfinished.
    for _ in 0..10 {
        let _ = tokio::time::timeout(Duration::from_millis(200), w.next()).await;
        assert!(
            !w.state(op).is_some_and(OpState::is_final),
            "the row ended on another job's state: {:?}",
            w.history[&op]
        );
    }
    let status = panorama
        .describe_device_job()
        .job_id(&job)
        .send()
        .await
        .unwrap();
    assert_ne!(status.status().map(|s| s.as_str()), Some("COMPLETED"));
    // When the job really ends, the row follows.
    sim.advance_clock(600.0).unwrap();
    w.until("the row to end", |w| {
        w.state(op).is_some_and(OpState::is_final)
    })
    .await;
    assert_eq!(w.state(op), Some(OpState::Succeeded));
    let _ = std::fs::remove_file(&j);
}

/// The first Snow device of the demo fleet that is reachable (its executions run).
async fn reachable_snow(sim: &SimHandle) -> String {
    let snow = common::snow(sim);
    let devices = snow.list_devices().send().await.unwrap();
    for d in devices.devices() {
        let id = d.managed_device_id().unwrap().to_string();
        let described = snow
            .describe_device()
            .managed_device_id(&id)
            .send()
            .await
            .unwrap();
        let seen = described
            .last_reached_out_at()
            .map_or(0.0, |t| t.as_secs_f64());
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        if now - seen < 600.0 {
            return id;
        }
    }
    panic!("the demo fleet has a reachable Snow device");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_whose_answer_is_lost_is_resolved_by_reading_the_task() {
    let sim = common::start(SimConfig {
        faults: vec![FaultRule {
            operation: "CancelTask".into(),
            nth: 1,
            fault: TargetedFault::FailAfter,
        }],
        ..common::config()
    })
    .await;
    let device = reachable_snow(&sim).await;
    let j = journal();
    let mut w = start(&sim, &j, Settings::default());
    w.listed().await;
    let ops = w.dispatch(&[Device::new(Service::Snow, &device)]).await;
    let op = ops[0].0;
    w.until("the task id", |w| {
        w.ops.get(&op).is_some_and(|u| u.resource_id.is_some())
    })
    .await;
    let task = w.ops[&op].resource_id.clone().unwrap();
    // Two asks for the same task: one CancelTask.
    for _ in 0..2 {
        w.commands
            .send(Command::CancelTask {
                task_id: task.clone(),
            })
            .unwrap();
    }
    w.until("the cancel's answer", |w| {
        w.notices.iter().any(|n| n.contains("CancelTask"))
            || w.failures.iter().any(|f| f.contains("CancelTask"))
    })
    .await;
    assert!(sim.faults().iter().all(|f| f.hit), "{:?}", sim.faults());
    assert!(
        w.failures.iter().all(|f| !f.contains("CancelTask")),
        "a cancel that took effect was shown as failed: {:?}",
        w.failures
    );
    w.until("the row to be canceled", |w| {
        w.state(op) == Some(OpState::Canceled)
    })
    .await;
    let cancels = sim
        .ledger()
        .iter()
        .filter(|e| e.operation == "CancelTask")
        .count();
    assert_eq!(cancels, 1, "{:#?}", sim.ledger());
    let records = journal::read(&j).unwrap();
    let journaled = |want_outcome: bool| {
        records.iter().any(|r| match r {
            Record::Intent {
                operation, task: t, ..
            } => {
                !want_outcome
                    && *operation == Call::CancelTask
                    && t.as_deref() == Some(task.as_str())
            }
            Record::Outcome {
                operation,
                resource_id,
                ..
            } => {
                want_outcome
                    && *operation == Call::CancelTask
                    && resource_id.as_deref() == Some(task.as_str())
            }
            _ => false,
        })
    };
    assert!(journaled(false), "the cancel's intent is journaled");
    assert!(journaled(true), "the cancel's outcome is journaled");
    let _ = std::fs::remove_file(&j);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_snow_device_is_skipped_with_its_reason() {
    let sim = common::start(common::config()).await;
    let device = reachable_snow(&sim).await;
    // Someone else's task is running on it.
    let other = common::snow(&sim)
        .create_task()
        .targets(&device)
        .command(SnowCommand::Reboot(Reboot::builder().build()))
        .send()
        .await
        .unwrap();
    let other = other.task_id().unwrap().to_string();
    let j = journal();
    let mut w = start(&sim, &j, Settings::default());
    w.listed().await;
    let ops = w.dispatch(&[Device::new(Service::Snow, &device)]).await;
    let op = ops[0].0;
    w.until("the row to end", |w| {
        w.state(op).is_some_and(OpState::is_final)
    })
    .await;
    assert_eq!(w.state(op), Some(OpState::Skipped));
    let error = w.ops[&op].error.clone().expect("the reason");
    assert_eq!(error.code, "DeviceBusy");
    assert!(error.message.contains(&other), "{error}");
    let creates = sim
        .ledger()
        .iter()
        .filter(|e| e.operation == "CreateTask")
        .count();
    assert_eq!(creates, 1, "only the other task: {:#?}", sim.ledger());
    let _ = std::fs::remove_file(&j);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snow_batch_does_not_wait_behind_panorama_pacing() {
    let sim = common::start(common::config()).await;
    let device = reachable_snow(&sim).await;
    let j = journal();
    // Two calls under way at most: appliances waiting on the 1 create/s pacing must not hold them.
    let mut w = start(
        &sim,
        &j,
        Settings {
            concurrency: 2,
            ..Settings::default()
        },
    );
    w.listed().await;
    let panorama = common::panorama(&sim);
    let appliances = panorama
        .list_devices()
        .max_results(25)
        .send()
        .await
        .unwrap();
    let mut devices: Vec<Device> = appliances
        .devices()
        .iter()
        .filter_map(|d| d.device_id())
        .map(|id| Device::new(Service::Panorama, id))
        .collect();
    devices.push(Device::new(Service::Snow, &device));
    let ops = w.dispatch(&devices).await;
    let snow_op = ops
        .iter()
        .find(|(_, k)| k.service == Service::Snow)
        .map(|(op, _)| *op)
        .unwrap();
    w.until("the Snow task", |w| {
        w.ops.get(&snow_op).is_some_and(|u| u.resource_id.is_some())
    })
    .await;
    let appliances_sent = ops
        .iter()
        .filter(|(op, k)| {
            k.service == Service::Panorama && w.ops.get(op).is_some_and(|u| u.resource_id.is_some())
        })
        .count();
    assert!(
        appliances_sent <= 2,
        "the Snow batch waited behind {appliances_sent} paced creates"
    );
    let _ = std::fs::remove_file(&j);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_instance_on_the_same_journal_sends_nothing() {
    let sim = common::start(common::config()).await;
    let j = journal();
    let mut first = start(&sim, &j, Settings::default());
    first.listed().await;
    let mut second = start(&sim, &j, Settings::default());
    second.listed().await;
    let refs = [Device::new(Service::Panorama, APPLIANCE)];
    let plan = Plan::new(
        Operation::Reboot,
        SnowOptions::default(),
        &refs.iter().collect::<Vec<_>>(),
    );
    second
        .commands
        .send(Command::Dispatch(Box::new(plan)))
        .unwrap();
    let refusal = loop {
        match second.next().await {
            Event::PlanRefused(r) => break r,
            Event::PlanStarted { .. } => panic!("a second instance dispatched"),
            _ => {}
        }
    };
    assert_eq!(refusal.error.code, "JournalUnavailable");
    assert!(
        refusal
            .error
            .message
            .contains(&std::process::id().to_string()),
        "names the process holding the journal: {}",
        refusal.error.message
    );
    assert!(sim.ledger().is_empty());
    drop(first);
    let _ = std::fs::remove_file(&j);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dispatch_task_that_panics_fails_its_rows_with_the_message() {
    let sim = common::start(common::config()).await;
    let j = journal();
    let mut w = start(
        &sim,
        &j,
        Settings {
            panic_in_dispatch_for_tests: true,
            ..Settings::default()
        },
    );
    w.listed().await;
    let ops = w
        .dispatch(&[Device::new(Service::Panorama, APPLIANCE)])
        .await;
    let op = ops[0].0;
    w.until("the row to end", |w| {
        w.state(op).is_some_and(OpState::is_final)
    })
    .await;
    assert_eq!(w.state(op), Some(OpState::Failed));
    let error = w.ops[&op].error.clone().expect("the reason");
    assert!(
        error
            .message
            .contains("a test asked this dispatch task to panic"),
        "{error}"
    );
    assert!(sim.ledger().is_empty());
    // The journal keeps the plan open for a resume to reconcile: no final record for the row.
    let records = journal::read(&j).unwrap();
    assert!(
        !records.iter().any(|r| matches!(r, Record::Final { .. })),
        "{records:?}"
    );
    let _ = std::fs::remove_file(&j);
}
