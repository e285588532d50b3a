//! AWS Panorama calls, translated to and from fleet types.

use aws_sdk_panorama::Client;
use aws_sdk_panorama::types::{DeviceJob, DeviceJobConfig, JobType, OtaJobConfig};

use super::{ApiError, Created, account, epoch, tags};
use crate::fleet::{Device, Operation, Service};
use aws_sdk_panorama::operation::RequestId;

/// At most this many appliances per ListDevices page (the model's limit).
pub const PAGE_SIZE: i32 = 25;

fn latest(job: Option<&aws_sdk_panorama::types::LatestDeviceJob>) -> Option<String> {
    let job = job?;
    let kind = job.job_type().map_or("job", |t| t.as_str());
    let status = job.status().map_or("?", |s| s.as_str());
    Some(format!("{kind} {status}"))
}

/// One page of appliances, and the token for the next.
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
            let mut device = Device::new(Service::Panorama, d.device_id()?);
            device.name = d.name().map(Into::into);
            device.status = d
                .device_aggregated_status()
                .map_or("", |s| s.as_str())
                .into();
            device.current_software = d.current_software().map(Into::into);
            device.latest = latest(d.latest_device_job()).map(Into::into);
            device.tags = tags(d.tags());
            Some(device)
        })
        .collect();
    Ok((devices, out.next_token().map(Into::into)))
}

pub async fn describe_device(client: &Client, id: &str) -> Result<Device, ApiError> {
    let d = client
        .describe_device()
        .device_id(id)
        .send()
        .await
        .map_err(ApiError::from_sdk)?;
    let mut device = Device::new(Service::Panorama, id);
    device.name = d.name().map(Into::into);
    device.status = d
        .device_aggregated_status()
        .map_or("", |s| s.as_str())
        .into();
    device.connection = d.device_connection_status().map(|s| s.as_str().into());
    device.current_software = d.current_software().map(Into::into);
    device.available_software = d.latest_software().map(Into::into);
    device.offered = d
        .latest_software()
        .into_iter()
        .chain(d.alternate_softwares().iter().filter_map(|a| a.version()))
        .map(Into::into)
        .collect();
    device.latest = latest(d.latest_device_job()).map(Into::into);
    device.tags = tags(d.tags());
    device.account = account(d.arn());
    Ok(device)
}

/// One CreateJobForDevices for one appliance; returns the job id.
pub async fn create_job(
    client: &Client,
    device: &str,
    operation: &Operation,
) -> Result<Created, ApiError> {
    let request = client.create_job_for_devices().device_ids(device);
    let request = match operation {
        Operation::Ota {
            image_version,
            allow_major,
        } => {
            let ota = OtaJobConfig::builder()
                .image_version(image_version)
                .allow_major_version_update(*allow_major)
                .build()
                .map_err(|e| {
                    ApiError::new(
                        super::ErrorKind::Validation,
                        "InvalidRequest",
                        e.to_string(),
                    )
                })?;
            request
                .job_type(JobType::Ota)
                .device_job_config(DeviceJobConfig::builder().ota_job_config(ota).build())
        }
        Operation::Reboot => request.job_type(JobType::Reboot),
        Operation::Unlock => {
            return Err(ApiError::new(
                super::ErrorKind::Validation,
                "InvalidRequest",
                "unlock is a Snow operation",
            ));
        }
    };
    // No idempotency token exists for this call: never let the SDK resend it on its own.
    let out = request
        .customize()
        .config_override(
            aws_sdk_panorama::Config::builder()
                .retry_config(aws_config::retry::RetryConfig::disabled()),
        )
        .send()
        .await
        .map_err(ApiError::from_sdk)?;
    let request_id = out.request_id().map(Into::into);
    out.jobs()
        .first()
        .and_then(|j| j.job_id())
        .map(|id| Created {
            id: id.to_string(),
            request_id,
        })
        .ok_or_else(|| {
            ApiError::new(
                super::ErrorKind::Other,
                "EmptyResponse",
                "CreateJobForDevices returned no job",
            )
        })
}

/// Every job the appliance has had, from ListDevicesJobs (all pages).
async fn device_jobs(client: &Client, device: &str) -> Result<Vec<DeviceJob>, ApiError> {
    let mut jobs = Vec::new();
    let mut token = None;
    loop {
        let out = client
            .list_devices_jobs()
            .device_id(device)
            .max_results(PAGE_SIZE)
            .set_next_token(token)
            .send()
            .await
            .map_err(ApiError::from_sdk)?;
        jobs.extend(out.device_jobs().iter().cloned());
        token = out.next_token().map(Into::into);
        if token.is_none() {
            return Ok(jobs);
        }
    }
}

/// A job's own status (DescribeDeviceJob), as the model spells it: the only read that can say
/// a job has ended. ListDevices' LatestDeviceJob carries no job id.
/// A job's type and status, as DescribeDeviceJob tells them ("REBOOT", "IN_PROGRESS").
pub async fn job_status(client: &Client, job: &str) -> Result<(String, String), ApiError> {
    let out = client
        .describe_device_job()
        .job_id(job)
        .send()
        .await
        .map_err(ApiError::from_sdk)?;
    let kind = out.job_type().map_or("job", |t| t.as_str()).to_string();
    let status = out
        .status()
        .map(|s| s.as_str().to_string())
        .ok_or_else(|| {
            ApiError::new(
                super::ErrorKind::Other,
                "EmptyResponse",
                format!("DescribeDeviceJob {job} returned no status"),
            )
        })?;
    Ok((kind, status))
}

/// One job as DescribeDeviceJob tells it, field by field, for the operator.
pub async fn describe_job(client: &Client, job: &str) -> Result<Vec<(String, String)>, ApiError> {
    let out = client
        .describe_device_job()
        .job_id(job)
        .send()
        .await
        .map_err(ApiError::from_sdk)?;
    let text = |v: Option<&str>| v.unwrap_or("—").to_string();
    Ok(vec![
        ("JobId".into(), text(out.job_id())),
        ("JobType".into(), text(out.job_type().map(|t| t.as_str()))),
        ("Status".into(), text(out.status().map(|s| s.as_str()))),
        ("DeviceId".into(), text(out.device_id())),
        ("DeviceName".into(), text(out.device_name())),
        ("ImageVersion".into(), text(out.image_version())),
        (
            "CreatedTime".into(),
            out.created_time().map_or("—".into(), |t| t.to_string()),
        ),
        ("DeviceArn".into(), text(out.device_arn())),
    ])
}

/// Every job id the appliance has had: what reconciliation compares before and after a
/// create whose answer was lost.
pub async fn job_ids(client: &Client, device: &str) -> Result<Vec<String>, ApiError> {
    let jobs = device_jobs(client, device).await?;
    Ok(jobs
        .iter()
        .filter_map(|j| j.job_id().map(Into::into))
        .collect())
}

/// The appliance's job history, newest first, as lines for the details view.
pub async fn history(client: &Client, device: &str) -> Result<Vec<String>, ApiError> {
    let mut jobs = device_jobs(client, device).await?;
    jobs.sort_by(|a, b| {
        epoch(b.created_time())
            .partial_cmp(&epoch(a.created_time()))
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    let mut lines = Vec::new();
    for job in jobs.iter().take(10) {
        let Some(id) = job.job_id() else { continue };
        let detail = client
            .describe_device_job()
            .job_id(id)
            .send()
            .await
            .map_err(ApiError::from_sdk)?;
        lines.push(format!(
            "{}  {:<6} {:<11} {}",
            id,
            detail.job_type().map_or("?", |t| t.as_str()),
            detail.status().map_or("?", |s| s.as_str()),
            detail.image_version().unwrap_or(""),
        ));
    }
    Ok(lines)
}

/// The appliance's application instances, every page: what the gate compares before and
/// after an operation, and what the device's details list.
pub async fn app_instances(
    client: &Client,
    device: &str,
) -> Result<Vec<crate::fleet::AppInstance>, ApiError> {
    let mut out = Vec::new();
    let mut token = None;
    loop {
        let page = client
            .list_application_instances()
            .device_id(device)
            .max_results(25)
            .set_next_token(token)
            .send()
            .await
            .map_err(ApiError::from_sdk)?;
        out.extend(page.application_instances().iter().filter_map(|a| {
            Some(crate::fleet::AppInstance {
                id: a.application_instance_id()?.to_string(),
                name: a.name().unwrap_or("(unnamed)").to_string(),
                health: a.health_status().map_or("UNKNOWN", |h| h.as_str()).into(),
                status: a.status().map_or("UNKNOWN", |s| s.as_str()).into(),
                detail: a.status_description().map(Into::into),
            })
        }));
        token = page.next_token().map(str::to_string);
        if token.is_none() {
            return Ok(out);
        }
    }
}
