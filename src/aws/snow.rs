//! AWS Snow Device Management calls, translated to and from fleet types.

use std::time::{SystemTime, UNIX_EPOCH};

use aws_sdk_snowdevicemanagement::Client;
use aws_sdk_snowdevicemanagement::types::{Command, Reboot, Unlock};

use super::{ApiError, Created, ErrorKind, account, epoch, tags};
use crate::fleet::{Device, Operation, Service, SnowOptions};
use aws_sdk_snowdevicemanagement::operation::RequestId;

pub const PAGE_SIZE: i32 = 100;

/// "seen 3m ago": how long since the device last reached out.
fn seen(at: Option<f64>) -> Option<String> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .ok()?
        .as_secs_f64();
    let ago = (now - at?).max(0.0) as u64;
    Some(match ago {
        0..60 => format!("seen {ago}s ago"),
        60..3600 => format!("seen {}m ago", ago / 60),
        3600..86_400 => format!("seen {}h ago", ago / 3600),
        _ => format!("seen {}d ago", ago / 86_400),
    })
}

pub async fn list_devices(
    client: &Client,
    token: Option<String>,
) -> Result<(Vec<Device>, Option<String>), ApiError> {
    let out = client
        .list_devices()
        .max_results(PAGE_SIZE)
        .set_next_token(token)
        .send()
        .await
        .map_err(ApiError::from_sdk)?;
    let devices = out
        .devices()
        .iter()
        .filter_map(|d| {
            let mut device = Device::new(Service::Snow, d.managed_device_id()?);
            device.tags = tags(d.tags());
            device.account = account(d.managed_device_arn());
            Some(device)
        })
        .collect();
    Ok((devices, out.next_token().map(Into::into)))
}

pub async fn describe_device(client: &Client, id: &str) -> Result<Device, ApiError> {
    let d = client
        .describe_device()
        .managed_device_id(id)
        .send()
        .await
        .map_err(ApiError::from_sdk)?;
    let mut device = Device::new(Service::Snow, id);
    device.status = d.device_state().map_or("", |s| s.as_str()).into();
    device.connection = seen(epoch(d.last_reached_out_at())).map(Into::into);
    device.last_reached_out = d
        .last_reached_out_at()
        .and_then(|t| u64::try_from(t.secs()).ok());
    device.current_software = d
        .software()
        .and_then(|s| s.installed_version())
        .map(Into::into);
    device.tags = tags(d.tags());
    device.account = account(d.managed_device_arn());
    Ok(device)
}

/// One CreateTask for up to 10 targets, with fleetdeck's own client token so that retries,
/// the SDK's or ours, cannot create a second task.
pub async fn create_task(
    client: &Client,
    targets: &[String],
    operation: &Operation,
    options: &SnowOptions,
    client_token: &str,
) -> Result<Created, ApiError> {
    let command = match operation {
        Operation::Reboot => Command::Reboot(Reboot::builder().build()),
        Operation::Unlock => Command::Unlock(Unlock::builder().build()),
        Operation::Ota { .. } => {
            return Err(ApiError::new(
                ErrorKind::Validation,
                "InvalidRequest",
                "an OTA is a Panorama operation",
            ));
        }
    };
    let out = client
        .create_task()
        .command(command)
        .set_targets(Some(targets.to_vec()))
        .set_description(options.description.clone())
        .set_tags((!options.tags.is_empty()).then(|| options.tags.clone().into_iter().collect()))
        .client_token(client_token)
        .send()
        .await
        .map_err(ApiError::from_sdk)?;
    let request_id = out.request_id().map(Into::into);
    out.task_id()
        .map(|id| Created {
            id: id.to_string(),
            request_id,
        })
        .ok_or_else(|| {
            ApiError::new(
                ErrorKind::Other,
                "EmptyResponse",
                "CreateTask returned no task id",
            )
        })
}

/// Every execution of a task: (managed device id, state).
pub async fn executions(client: &Client, task: &str) -> Result<Vec<(String, String)>, ApiError> {
    let mut out = Vec::new();
    let mut token = None;
    loop {
        let page = client
            .list_executions()
            .task_id(task)
            .max_results(PAGE_SIZE)
            .set_next_token(token)
            .send()
            .await
            .map_err(ApiError::from_sdk)?;
        for e in page.executions() {
            if let (Some(d), Some(s)) = (e.managed_device_id(), e.state()) {
                out.push((d.to_string(), s.as_str().to_string()));
            }
        }
        token = page.next_token().map(Into::into);
        if token.is_none() {
            return Ok(out);
        }
    }
}

/// One device's execution of a task as DescribeExecution tells it, for the operator.
pub async fn describe_execution(
    client: &Client,
    task: &str,
    device: &str,
) -> Result<Vec<(String, String)>, ApiError> {
    let out = client
        .describe_execution()
        .task_id(task)
        .managed_device_id(device)
        .send()
        .await
        .map_err(ApiError::from_sdk)?;
    let text = |v: Option<&str>| v.unwrap_or("—").to_string();
    let time = |t: Option<&aws_smithy_types::DateTime>| t.map_or("—".into(), |t| t.to_string());
    Ok(vec![
        ("TaskId".into(), text(out.task_id())),
        ("ManagedDeviceId".into(), text(out.managed_device_id())),
        ("ExecutionId".into(), text(out.execution_id())),
        ("State".into(), text(out.state().map(|s| s.as_str()))),
        ("StartedAt".into(), time(out.started_at())),
        ("LastUpdatedAt".into(), time(out.last_updated_at())),
    ])
}

/// When a device's execution of a task last changed (its end, once it has ended), by the
/// service's clock in epoch seconds (DescribeExecution's lastUpdatedAt).
pub async fn execution_changed(
    client: &Client,
    task: &str,
    device: &str,
) -> Result<Option<u64>, ApiError> {
    let out = client
        .describe_execution()
        .task_id(task)
        .managed_device_id(device)
        .send()
        .await
        .map_err(ApiError::from_sdk)?;
    Ok(out
        .last_updated_at()
        .and_then(|t| u64::try_from(t.secs()).ok()))
}

/// One CancelTask. It is not idempotent (a second one after the first took effect is refused),
/// so the SDK must not resend it on its own: an unanswered one is resolved by reading the task.
pub async fn cancel_task(client: &Client, task: &str) -> Result<(), ApiError> {
    client
        .cancel_task()
        .task_id(task)
        .customize()
        .config_override(
            aws_sdk_snowdevicemanagement::Config::builder()
                .retry_config(aws_config::retry::RetryConfig::disabled()),
        )
        .send()
        .await
        .map_err(ApiError::from_sdk)?;
    Ok(())
}

/// Whether a cancel of the task took effect: some execution of it is CANCELED.
pub async fn task_was_canceled(client: &Client, task: &str) -> Result<bool, ApiError> {
    Ok(executions(client, task)
        .await?
        .iter()
        .any(|(_, state)| state == "CANCELED"))
}

/// Devices with an execution that has not ended, of any task, whoever started it: device id →
/// the task. Read from the tasks in progress and their queued or running executions.
pub async fn busy_devices(
    client: &Client,
) -> Result<std::collections::HashMap<String, String>, ApiError> {
    let mut busy = std::collections::HashMap::new();
    let mut token = None;
    loop {
        let page = client
            .list_tasks()
            .state(aws_sdk_snowdevicemanagement::types::TaskState::InProgress)
            .max_results(PAGE_SIZE)
            .set_next_token(token)
            .send()
            .await
            .map_err(ApiError::from_sdk)?;
        for task in page.tasks() {
            let id = task.task_id();
            for (device, state) in executions(client, id).await? {
                if matches!(state.as_str(), "QUEUED" | "IN_PROGRESS") {
                    busy.insert(device, id.to_string());
                }
            }
        }
        token = page.next_token().map(Into::into);
        if token.is_none() {
            return Ok(busy);
        }
    }
}

/// The device's tasks, newest first (of the 50 newest tasks), as lines for the details view.
pub async fn history(client: &Client, device: &str) -> Result<Vec<String>, ApiError> {
    let tasks = client
        .list_tasks()
        .max_results(PAGE_SIZE)
        .send()
        .await
        .map_err(ApiError::from_sdk)?;
    let mut lines = Vec::new();
    for task in tasks.tasks().iter().rev().take(50) {
        let id = task.task_id();
        let detail = client
            .describe_task()
            .task_id(id)
            .send()
            .await
            .map_err(ApiError::from_sdk)?;
        if !detail.targets().iter().any(|t| t == device) {
            continue;
        }
        let state = executions(client, id)
            .await?
            .into_iter()
            .find(|(d, _)| d == device)
            .map_or_else(|| "?".to_string(), |(_, s)| s);
        lines.push(format!(
            "{id}  task {:<11} execution {:<11} {}",
            task.state().map_or("?", |s| s.as_str()),
            state,
            detail.description().unwrap_or("")
        ));
        if lines.len() >= 10 {
            break;
        }
    }
    Ok(lines)
}
