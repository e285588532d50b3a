//! AWS Snow Device Management through the official SDK against the simulator.

mod common;

use aws_sdk_snowdevicemanagement::types::{
    Command, ExecutionState, Reboot, TaskState, Unlock, UnlockState,
};
use common::{code, message};
use fleetdeck::sim::SimHandle;

type Client = aws_sdk_snowdevicemanagement::Client;

/// The demo fleet's Snow devices, in file order (see assets/demo-fleet.toml).
const LOCKED_A: &str = "smd-ybj6e3wtfq4o4ejpe";
const UNLOCKED_B: &str = "smd-tidkz98qb7pkgncuf";
const LOCKED_C: &str = "smd-hrdslj0if9xa9j60j";
const UNREACHABLE: &str = "smd-d1brbtjfkhaoo9a48";

fn unlock() -> Command {
    Command::Unlock(Unlock::builder().build())
}

fn reboot() -> Command {
    Command::Reboot(Reboot::builder().build())
}

async fn create(client: &Client, command: Command, targets: &[&str]) -> String {
    client
        .create_task()
        .command(command)
        .set_targets(Some(targets.iter().map(|s| s.to_string()).collect()))
        .send()
        .await
        .expect("CreateTask")
        .task_id()
        .expect("a task id")
        .to_string()
}

async fn executions(client: &Client, task: &str) -> Vec<(String, ExecutionState)> {
    let out = client
        .list_executions()
        .task_id(task)
        .send()
        .await
        .expect("ListExecutions");
    out.executions()
        .iter()
        .map(|e| {
            (
                e.managed_device_id().unwrap().to_string(),
                e.state().cloned().unwrap(),
            )
        })
        .collect()
}

async fn device_state(client: &Client, id: &str) -> UnlockState {
    let d = client
        .describe_device()
        .managed_device_id(id)
        .send()
        .await
        .expect("DescribeDevice");
    d.device_state().cloned().expect("a device state")
}

async fn task_state(client: &Client, task: &str) -> TaskState {
    let t = client
        .describe_task()
        .task_id(task)
        .send()
        .await
        .expect("DescribeTask");
    t.state().cloned().expect("a task state")
}

/// Steps simulated time 1 s at a time until the task ends, recording each device's states
/// and lock states as they change.
async fn run_to_end(
    h: &SimHandle,
    client: &Client,
    task: &str,
    watch: &str,
) -> (Vec<ExecutionState>, Vec<UnlockState>) {
    let (mut states, mut locks) = (Vec::new(), Vec::new());
    for _ in 0..300 {
        // The task state is read first: once it is final, the reads after it see final
        // executions too, so the last step is never missed to a clock tick in between.
        let done = task_state(client, task).await != TaskState::InProgress;
        let state = executions(client, task)
            .await
            .into_iter()
            .find(|(d, _)| d == watch)
            .map(|(_, s)| s)
            .expect("an execution for the watched device");
        if states.last() != Some(&state) {
            states.push(state);
        }
        let lock = device_state(client, watch).await;
        if locks.last() != Some(&lock) {
            locks.push(lock);
        }
        if done {
            return (states, locks);
        }
        h.advance_clock(1.0).unwrap();
    }
    panic!("task {task} did not end");
}

#[tokio::test]
async fn list_devices_pages_with_the_sdk_paginator_and_filters_by_job() {
    let h = common::start(common::config()).await;
    let client = common::snow(&h);
    let pages: Vec<_> = client
        .list_devices()
        .max_results(3)
        .into_paginator()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .unwrap();
    assert_eq!(pages.len(), 3);
    let ids: Vec<_> = pages
        .iter()
        .flat_map(|p| p.devices())
        .map(|d| d.managed_device_id().unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), 9);
    assert_eq!(ids, common::snow_device_ids(&client).await);

    let job = "JID7e1d0c9b-2a3f-4b5c-8d6e-1f2a3b4c5d6e";
    let portland = client.list_devices().job_id(job).send().await.unwrap();
    assert_eq!(portland.devices().len(), 3);
    for d in portland.devices() {
        assert_eq!(d.associated_with_job(), Some(job));
        assert_eq!(d.tags().unwrap()["site"], "portland");
    }
}

#[tokio::test]
async fn describe_device_reports_state_capacity_and_network() {
    let h = common::start(common::config()).await;
    let client = common::snow(&h);
    let d = client
        .describe_device()
        .managed_device_id(LOCKED_A)
        .send()
        .await
        .unwrap();
    assert_eq!(d.device_state(), Some(&UnlockState::Locked));
    assert_eq!(d.device_type(), Some("SNOWCONE"));
    assert_eq!(
        d.software().and_then(|s| s.installed_version()),
        Some("7.1.0")
    );
    assert!(!d.device_capacities().is_empty());
    assert_eq!(d.physical_network_interfaces().len(), 1);
    assert!(d.last_reached_out_at().is_some());
    assert!(d.managed_device_arn().unwrap().ends_with(LOCKED_A));
}

#[tokio::test]
async fn unlock_moves_locked_through_unlocking_to_unlocked() {
    let h = common::start(common::config()).await;
    let client = common::snow(&h);
    let task = client
        .create_task()
        .command(unlock())
        .targets(LOCKED_A)
        .targets(LOCKED_C)
        .description("Unlock for site visit")
        .tags("owner", "ops")
        .send()
        .await
        .unwrap();
    let task = task.task_id().unwrap().to_string();
    let (states, locks) = run_to_end(&h, &client, &task, LOCKED_A).await;
    use ExecutionState::*;
    assert_eq!(states, vec![Queued, InProgress, Succeeded]);
    assert_eq!(
        locks,
        vec![
            UnlockState::Locked,
            UnlockState::Unlocking,
            UnlockState::Unlocked
        ]
    );
    assert_eq!(device_state(&client, LOCKED_C).await, UnlockState::Unlocked);

    let t = client.describe_task().task_id(&task).send().await.unwrap();
    assert_eq!(t.state(), Some(&TaskState::Completed));
    assert_eq!(t.description(), Some("Unlock for site visit"));
    assert_eq!(t.tags().unwrap()["owner"], "ops");
    assert_eq!(t.targets(), [LOCKED_A, LOCKED_C]);
    assert!(t.completed_at().is_some());

    let e = client
        .describe_execution()
        .task_id(&task)
        .managed_device_id(LOCKED_A)
        .send()
        .await
        .unwrap();
    assert_eq!(e.state(), Some(&Succeeded));
    assert!(e.started_at().is_some());
    assert!(e.execution_id().is_some());

    let completed = client
        .list_tasks()
        .state(TaskState::Completed)
        .send()
        .await
        .unwrap();
    assert_eq!(completed.tasks().len(), 1);
    assert_eq!(completed.tasks()[0].task_id(), task);
}

#[tokio::test]
async fn reboot_succeeds_and_leaves_the_lock_alone() {
    let h = common::start(common::config()).await;
    let client = common::snow(&h);
    let task = create(&client, reboot(), &[UNLOCKED_B]).await;
    let (states, locks) = run_to_end(&h, &client, &task, UNLOCKED_B).await;
    assert_eq!(states.last(), Some(&ExecutionState::Succeeded));
    assert_eq!(locks, vec![UnlockState::Unlocked]);
}

#[tokio::test]
async fn unreachable_devices_time_out_and_busy_devices_reject() {
    let h = common::start(common::config()).await;
    let client = common::snow(&h);
    let first = create(&client, reboot(), &[UNREACHABLE, LOCKED_A]).await;
    // LOCKED_A is busy with the first task, so the second task's execution on it is rejected.
    let second = create(&client, unlock(), &[LOCKED_A, LOCKED_C]).await;
    let second_states = executions(&client, &second).await;
    assert_eq!(
        second_states[0],
        (LOCKED_A.to_string(), ExecutionState::Rejected)
    );
    assert_eq!(
        second_states[1],
        (LOCKED_C.to_string(), ExecutionState::Queued)
    );

    let (states, _) = run_to_end(&h, &client, &first, UNREACHABLE).await;
    assert_eq!(
        states,
        vec![ExecutionState::Queued, ExecutionState::TimedOut]
    );
    assert_eq!(task_state(&client, &first).await, TaskState::Completed);
    assert_eq!(task_state(&client, &second).await, TaskState::Completed);
    assert_eq!(
        device_state(&client, LOCKED_A).await,
        UnlockState::Locked,
        "the rejected unlock did nothing"
    );
    assert_eq!(device_state(&client, LOCKED_C).await, UnlockState::Unlocked);

    // Once free, the device takes work again.
    let third = create(&client, unlock(), &[LOCKED_A]).await;
    assert_eq!(
        executions(&client, &third).await[0].1,
        ExecutionState::Queued
    );
}

#[tokio::test]
async fn the_same_client_token_returns_the_same_task() {
    let h = common::start(common::config()).await;
    let client = common::snow(&h);
    let send = |description: &'static str| {
        client
            .create_task()
            .command(unlock())
            .targets(LOCKED_A)
            .targets(LOCKED_C)
            .description(description)
            .client_token("batch-0001-attempt")
            .send()
    };
    let first = send("Unlock batch 1").await.unwrap();
    let again = send("Unlock batch 1").await.unwrap();
    assert_eq!(first.task_id(), again.task_id());
    assert_eq!(first.task_arn(), again.task_arn());
    assert_eq!(h.ledger().len(), 2, "one execution per device, not four");
    assert_eq!(client.list_tasks().send().await.unwrap().tasks().len(), 1);

    let err = send("Something else").await.unwrap_err();
    assert_eq!(code(&err), "ValidationException");
    assert!(message(&err).contains("clientToken"), "{}", message(&err));

    // Without a token of our own the SDK fills a fresh one per send(): two tasks.
    create(&client, reboot(), &[UNLOCKED_B]).await;
    h.advance_clock(100.0).unwrap();
    create(&client, reboot(), &[UNLOCKED_B]).await;
    assert_eq!(client.list_tasks().send().await.unwrap().tasks().len(), 3);
}

#[tokio::test]
async fn cancel_task_cancels_only_queued_executions() {
    let h = common::start(common::config()).await;
    let client = common::snow(&h);
    let task = create(&client, unlock(), &[LOCKED_A]).await;
    let out = client.cancel_task().task_id(&task).send().await.unwrap();
    assert_eq!(out.task_id(), Some(task.as_str()));
    assert_eq!(
        executions(&client, &task).await[0].1,
        ExecutionState::Canceled
    );
    assert_eq!(task_state(&client, &task).await, TaskState::Canceled);
    assert_eq!(device_state(&client, LOCKED_A).await, UnlockState::Locked);

    // A running execution is past canceling: it finishes, and the canceled one does not run.
    let task = create(&client, unlock(), &[LOCKED_A]).await;
    let mut running = false;
    for _ in 0..60 {
        h.advance_clock(1.0).unwrap();
        if executions(&client, &task).await[0].1 == ExecutionState::InProgress {
            running = true;
            break;
        }
    }
    assert!(running);
    let queued = create(&client, reboot(), &[LOCKED_C, UNLOCKED_B]).await;
    client.cancel_task().task_id(&queued).send().await.unwrap();
    let err = client
        .cancel_task()
        .task_id(&task)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        code(&err),
        "ValidationException",
        "nothing queued to cancel"
    );
    h.advance_clock(100.0).unwrap();
    assert_eq!(
        executions(&client, &task).await[0].1,
        ExecutionState::Succeeded
    );
    assert_eq!(task_state(&client, &task).await, TaskState::Completed);
    assert_eq!(task_state(&client, &queued).await, TaskState::Canceled);
    let canceled = client
        .list_tasks()
        .state(TaskState::Canceled)
        .send()
        .await
        .unwrap();
    assert_eq!(canceled.tasks().len(), 2);

    let ledger = h.ledger();
    let cancels: Vec<_> = ledger
        .iter()
        .filter(|e| e.operation == "CancelTask")
        .collect();
    assert_eq!(cancels.len(), 3, "{ledger:?}");
}

#[tokio::test]
async fn list_executions_pages_and_filters_by_state() {
    let h = common::start(common::config()).await;
    let client = common::snow(&h);
    let ids = common::snow_device_ids(&client).await;
    let targets: Vec<&str> = ids.iter().map(String::as_str).take(9).collect();
    let task = create(&client, reboot(), &targets).await;
    let pages: Vec<_> = client
        .list_executions()
        .task_id(&task)
        .max_results(4)
        .into_paginator()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .unwrap();
    assert_eq!(pages.len(), 3);
    assert_eq!(pages.iter().map(|p| p.executions().len()).sum::<usize>(), 9);
    h.advance_clock(60.0).unwrap();
    // Two demo devices are unreachable: still queued, waiting to time out.
    let queued = client
        .list_executions()
        .task_id(&task)
        .state(ExecutionState::Queued)
        .send()
        .await
        .unwrap();
    assert_eq!(queued.executions().len(), 2);
}

#[tokio::test]
async fn invalid_input_is_a_validation_exception_naming_the_field() {
    let h = common::start(common::config()).await;
    let client = common::snow(&h);
    let ids = common::snow_device_ids(&client).await;

    let err = client
        .create_task()
        .command(reboot())
        .targets(LOCKED_A)
        .description("reboot; now")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "ValidationException");
    assert!(message(&err).contains("'description'"), "{}", message(&err));

    let err = client
        .create_task()
        .command(reboot())
        .targets(LOCKED_A)
        .description("x".repeat(129))
        .send()
        .await
        .unwrap_err();
    assert!(
        message(&err).contains("length less than or equal to 128"),
        "{}",
        message(&err)
    );

    let mut eleven: Vec<String> = ids.clone();
    eleven.extend(ids.iter().take(2).cloned());
    let err = client
        .create_task()
        .command(reboot())
        .set_targets(Some(eleven))
        .send()
        .await
        .unwrap_err();
    assert!(message(&err).contains("'targets'"), "{}", message(&err));

    let err = client
        .create_task()
        .command(reboot())
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "ValidationException");
    assert!(message(&err).contains("'targets'"), "{}", message(&err));

    let err = client
        .list_tasks()
        .max_results(101)
        .send()
        .await
        .unwrap_err();
    assert!(message(&err).contains("'maxResults'"));
    let err = client
        .list_tasks()
        .state(TaskState::from("PAUSED"))
        .send()
        .await
        .unwrap_err();
    assert!(message(&err).contains("'state'"));

    let err = client
        .create_task()
        .command(reboot())
        .targets("smd-nope")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "ResourceNotFoundException");
    let err = client
        .describe_task()
        .task_id("task-nope")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "ResourceNotFoundException");
    let err = client
        .list_executions()
        .task_id("task-nope")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "ResourceNotFoundException");
    let err = client
        .describe_device()
        .managed_device_id("smd-nope")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "ResourceNotFoundException");
    let err = client
        .cancel_task()
        .task_id("task-nope")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "ResourceNotFoundException");

    assert!(h.ledger().is_empty(), "nothing invalid took effect");
}
