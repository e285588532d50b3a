//! Carrying out a plan: bounded concurrency, Panorama one appliance per call at no more than
//! one create a second, Snow up to 10 targets per task under a client token of our own.
//! A call that may have taken effect is never sent again blindly.

use std::sync::Arc;
use std::time::Duration;

use super::{Internal, Limits, OpId, OpUpdate, Worker};
use crate::aws::{self, ApiError, Created, ErrorKind};
use crate::fleet::{DeviceKey, Operation, Plan, SnowOptions};
use crate::journal::{self, Journal, Record};

/// How many times a call whose failure may pass is tried.
const ATTEMPTS: u32 = 5;
/// How many throttles one call absorbs before it reports them.
const MAX_THROTTLES: u32 = 60;

fn update(
    state: &str,
    resource_id: Option<String>,
    error: Option<ApiError>,
    done: bool,
) -> OpUpdate {
    OpUpdate {
        state: state.to_string(),
        resource_id,
        error,
        done,
    }
}

/// Writes the intents and outcomes of one plan's calls. An intent that cannot be written
/// stops the call: nothing is sent that the journal does not know of.
#[derive(Clone)]
struct Log {
    journal: Option<Arc<Journal>>,
    plan: String,
    action: String,
}

impl Log {
    fn intent(
        &self,
        service: &str,
        operation: &str,
        devices: &[String],
        token: Option<&str>,
        known_jobs: &[String],
    ) -> Result<(), ApiError> {
        let Some(journal) = &self.journal else {
            return Ok(());
        };
        journal
            .append(&Record::Intent {
                plan: self.plan.clone(),
                at: journal::now(),
                service: service.into(),
                operation: operation.into(),
                devices: devices.to_vec(),
                action: self.action.clone(),
                token: token.map(str::to_string),
                known_jobs: known_jobs.to_vec(),
            })
            .map_err(|e| {
                ApiError::new(
                    ErrorKind::Validation,
                    "JournalWriteFailed",
                    format!("{e:#}; not sent"),
                )
            })
    }

    fn outcome(&self, service: &str, devices: &[String], result: Result<&Created, &ApiError>) {
        let Some(journal) = &self.journal else { return };
        let (resource_id, request_id, error) = match result {
            Ok(c) => (Some(c.id.clone()), c.request_id.clone(), None),
            Err(e) => (None, None, Some(e.to_string())),
        };
        // The call is already made: a failed write is reported, and the row still updates.
        let _ = journal.append(&Record::Outcome {
            plan: self.plan.clone(),
            at: journal::now(),
            service: service.into(),
            devices: devices.to_vec(),
            resource_id,
            request_id,
            error,
        });
    }
}

/// One call's worth of work: an appliance, or a Snow batch. What a resumed plan carries over
/// from the journal rides along: the appliance's jobs before the first send, the batch's token.
pub(super) enum Work {
    Panorama {
        op: OpId,
        device: String,
        known_jobs: Option<Vec<String>>,
    },
    Snow {
        ops: Vec<(String, OpId)>,
        token: Option<String>,
    },
}

/// The work a fresh plan makes.
pub(super) fn work(plan: &Plan, ops: &[(OpId, DeviceKey)]) -> Vec<Work> {
    let op_of = |key: &DeviceKey| ops.iter().find(|(_, k)| k == key).map(|(op, _)| *op);
    let panorama = plan.panorama.iter().filter_map(|k| {
        op_of(k).map(|op| Work::Panorama {
            op,
            device: k.id.clone(),
            known_jobs: None,
        })
    });
    let snow = plan.snow_batches.iter().map(|batch| Work::Snow {
        ops: batch
            .iter()
            .filter_map(|k| op_of(k).map(|op| (k.id.clone(), op)))
            .collect(),
        token: None,
    });
    panorama.chain(snow).collect()
}

pub(super) fn start(
    worker: &mut Worker,
    plan_id: &str,
    operation: Operation,
    snow: SnowOptions,
    work: Vec<Work>,
) {
    let log = Log {
        journal: worker.journal.clone(),
        plan: plan_id.to_string(),
        action: operation.label().to_string(),
    };
    for item in work {
        match item {
            Work::Panorama {
                op,
                device,
                known_jobs,
            } => panorama(worker, &log, &operation, op, device, known_jobs),
            Work::Snow { ops, token } => snow_batch(worker, &log, &operation, &snow, ops, token),
        }
    }
}

fn panorama(
    worker: &mut Worker,
    log: &Log,
    operation: &Operation,
    op: OpId,
    device: String,
    known_jobs: Option<Vec<String>>,
) {
    let (clients, limits, tx) = (
        worker.clients.clone(),
        worker.limits.clone(),
        worker.internal.clone(),
    );
    let operation = operation.clone();
    let log = log.clone();
    worker.tasks.spawn(async move {
        let _permit = limits.calls.acquire().await;
        let report = |u: OpUpdate| drop(tx.send(Internal::Op(op, u)));
        let client = match clients.panorama() {
            Ok(c) => c,
            Err(e) => return report(update("FAILED", None, Some(e), true)),
        };
        match panorama_job(
            client, &limits, &device, &operation, known_jobs, &log, &report,
        )
        .await
        {
            Ok(job) => {
                let _ = tx.send(Internal::PanoramaJob { device, op });
                report(update("SENT", Some(job), None, false));
            }
            Err((state, e)) => report(update(state, None, Some(e), true)),
        }
    });
}

fn snow_batch(
    worker: &mut Worker,
    log: &Log,
    operation: &Operation,
    options: &SnowOptions,
    batch_ops: Vec<(String, OpId)>,
    token: Option<String>,
) {
    let (clients, limits, tx) = (
        worker.clients.clone(),
        worker.limits.clone(),
        worker.internal.clone(),
    );
    let (operation, options) = (operation.clone(), options.clone());
    let log = log.clone();
    // Chosen before the first send, journaled, and reused on every retry (and by a resumed
    // plan): the service then creates the task at most once.
    let token = token.unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    worker.tasks.spawn(async move {
        let _permit = limits.calls.acquire().await;
        let targets: Vec<String> = batch_ops.iter().map(|(d, _)| d.clone()).collect();
        let report = |state: &str, id: Option<String>, error: Option<ApiError>, done: bool| {
            for (_, op) in &batch_ops {
                let _ = tx.send(Internal::Op(
                    *op,
                    update(state, id.clone(), error.clone(), done),
                ));
            }
        };
        let mut retry = Retry::default();
        loop {
            if let Err(e) = log.intent("snow", "CreateTask", &targets, Some(&token), &[]) {
                return report("FAILED", None, Some(e), true);
            }
            report("SENDING", None, None, false);
            let result =
                aws::snow::create_task(&clients.snow, &targets, &operation, &options, &token).await;
            log.outcome("snow", &targets, result.as_ref());
            match result {
                Ok(task) => {
                    let _ = tx.send(Internal::SnowTask {
                        task: task.id.clone(),
                        ops: batch_ops.clone(),
                    });
                    return report("SENT", Some(task.id), None, false);
                }
                // The same token makes a resend safe whatever happened to the first.
                Err(e) => match retry.after(&e) {
                    Some(wait) => tokio::time::sleep(wait).await,
                    None => return report("FAILED", None, Some(e), true),
                },
            }
        }
    });
}

/// Creates one appliance's job exactly once. CreateJobForDevices has no idempotency token, so
/// after an answer is lost (a timeout, a dropped connection, a 5xx) the appliance's jobs are
/// compared with those it had before the first send: a new one is ours, and only when there is
/// none is the create sent again. Returns the job id, or the final state and why.
async fn panorama_job(
    client: &aws_sdk_panorama::Client,
    limits: &Limits,
    device: &str,
    operation: &Operation,
    known_jobs: Option<Vec<String>>,
    log: &Log,
    report: &impl Fn(OpUpdate),
) -> Result<String, (&'static str, ApiError)> {
    let devices = [device.to_string()];
    let before = match known_jobs {
        // Resumed: a send may have happened before the crash. A job beyond what the
        // appliance had then is that send's.
        Some(known) => {
            let now = read_jobs(client, limits, device)
                .await
                .map_err(|e| ("UNCONFIRMED", e))?;
            if let Some(job) = now.iter().find(|j| !known.contains(j)) {
                let found = Created {
                    id: job.clone(),
                    request_id: None,
                };
                log.outcome("panorama", &devices, Ok(&found));
                return Ok(job.clone());
            }
            known
        }
        None => read_jobs(client, limits, device)
            .await
            .map_err(|e| ("FAILED", e))?,
    };
    let mut retry = Retry::default();
    let mut sends = 0;
    loop {
        log.intent("panorama", "CreateJobForDevices", &devices, None, &before)
            .map_err(|e| ("FAILED", e))?;
        // The request quota first and the create quota last, right before the send: sends are
        // then spaced by the create pacing alone, which can sit close to the service's 1/s.
        limits.panorama_all.until_ready().await;
        limits.panorama_create.until_ready().await;
        report(update("SENDING", None, None, false));
        sends += 1;
        let result = aws::panorama::create_job(client, device, operation).await;
        log.outcome("panorama", &devices, result.as_ref());
        let error = match result {
            Ok(job) => return Ok(job.id),
            Err(e) => e,
        };
        // A conflict on a resend may be the earlier send's job.
        let maybe_applied =
            !error.certainly_not_applied() || (error.kind == ErrorKind::Conflict && sends > 1);
        if maybe_applied {
            let now = read_jobs(client, limits, device)
                .await
                .map_err(|_| ("UNCONFIRMED", error.clone()))?;
            let new: Vec<String> = now.into_iter().filter(|j| !before.contains(j)).collect();
            match new.as_slice() {
                [job] => {
                    // The lost answer's job, found: journal it as the call's outcome.
                    let found = Created {
                        id: job.clone(),
                        request_id: None,
                    };
                    log.outcome("panorama", &devices, Ok(&found));
                    return Ok(job.clone());
                }
                [] => {}
                _ => {
                    let detail = format!(
                        "{} new jobs appeared on the appliance: {}",
                        new.len(),
                        new.join(", ")
                    );
                    let e = ApiError::new(ErrorKind::Conflict, "SeveralJobs", detail);
                    return Err(("UNCONFIRMED", e));
                }
            }
        }
        // Nothing was created: sending again is safe.
        match retry.after(&error) {
            Some(wait) => tokio::time::sleep(wait).await,
            None => return Err(("FAILED", error)),
        }
    }
}

/// ListDevicesJobs for one appliance, within the request quota, tried a few times: a
/// reconciliation that cannot read must not guess.
async fn read_jobs(
    client: &aws_sdk_panorama::Client,
    limits: &Limits,
    device: &str,
) -> Result<Vec<String>, ApiError> {
    let mut retry = Retry::default();
    loop {
        limits.panorama_all.until_ready().await;
        match aws::panorama::job_ids(client, device).await {
            Ok(ids) => return Ok(ids),
            Err(e) => match retry.after(&e) {
                Some(wait) => tokio::time::sleep(wait).await,
                None => return Err(e),
            },
        }
    }
}

/// When to try a call again. Throttling is absorbed: a throttled call never took effect, so
/// it waits and goes again, many times if need be. Other failures that may pass (a lost
/// connection, a 5xx, a timeout) get a few tries with growing waits.
#[derive(Default)]
struct Retry {
    failures: u32,
    throttles: u32,
}

impl Retry {
    fn after(&mut self, e: &ApiError) -> Option<Duration> {
        if e.kind == ErrorKind::Throttled {
            self.throttles += 1;
            return (self.throttles <= MAX_THROTTLES).then(|| backoff(self.throttles.min(3)));
        }
        self.failures += 1;
        (retryable(e) && self.failures < ATTEMPTS).then(|| backoff(self.failures))
    }
}

fn retryable(e: &ApiError) -> bool {
    matches!(
        e.kind,
        ErrorKind::Throttled | ErrorKind::NotSent | ErrorKind::Ambiguous | ErrorKind::Timeout
    )
}

fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(250 * 2u64.pow(attempt.min(5)))
}
