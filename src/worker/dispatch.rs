//! Carrying out a plan: Panorama one appliance per call at no more than one create a second,
//! Snow up to 10 targets per task under a client token of our own. A call that may have taken
//! effect is never sent again blindly, and every wait gives way to the stop signal: a quit
//! leaves what was not sent as paused, never half-sent.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;

use super::Internal;
use super::limits::{Limits, Retry, Stop, backoff};
use super::team::{Blocked, Guard};
use crate::aws::{self, ApiError, Clients, Created, ErrorKind};
use crate::fleet::{Operation, Service, SnowOptions};
use crate::journal::{self, Call, ErrorRecord, Journal, Record};
use crate::ops::{OpId, OpState, OpUpdate};
use crate::team::Holder;
use crate::team::leases::Sending;

/// Writes the intents and outcomes of one plan's calls. An intent that cannot be written
/// stops the call: nothing is sent that the journal does not know of.
#[derive(Clone)]
pub(super) struct Log {
    pub journal: Option<Arc<Journal>>,
    pub plan: String,
}

impl Log {
    pub fn intent(
        &self,
        service: Service,
        operation: Call,
        devices: &[String],
        token: Option<&str>,
        known_jobs: &[String],
        task: Option<&str>,
    ) -> Result<(), ApiError> {
        let Some(journal) = &self.journal else {
            return Err(no_journal());
        };
        journal
            .append(&Record::Intent {
                plan: self.plan.clone(),
                at: journal::now(),
                service,
                operation,
                devices: devices.to_vec(),
                token: token.map(str::to_string),
                known_jobs: known_jobs.to_vec(),
                task: task.map(str::to_string),
            })
            .map_err(|e| {
                ApiError::new(
                    ErrorKind::Validation,
                    "JournalWriteFailed",
                    format!("{e:#}; not sent"),
                )
            })
    }

    /// Records what came of a call. The call is already made, so a failed write cannot undo
    /// it: it is reported, and the journal refuses every later intent.
    pub fn outcome(
        &self,
        service: Service,
        operation: Call,
        devices: &[String],
        result: Result<&Created, &ApiError>,
    ) -> Result<(), String> {
        let Some(journal) = &self.journal else {
            return Err("no journal".into());
        };
        let (resource_id, request_id, error) = match result {
            Ok(c) => (Some(c.id.clone()), c.request_id.clone(), None),
            Err(e) => (None, None, Some(ErrorRecord::from(e))),
        };
        journal
            .append(&Record::Outcome {
                plan: self.plan.clone(),
                at: journal::now(),
                service,
                operation,
                devices: devices.to_vec(),
                resource_id,
                request_id,
                error,
            })
            .map_err(|e| format!("{e:#}"))
    }
}

pub(super) fn no_journal() -> ApiError {
    ApiError::new(
        ErrorKind::Validation,
        "NoJournal",
        "no dispatch journal is open, so nothing is sent; pass --journal PATH",
    )
}

/// One call's worth of work: an appliance, or a Snow batch. What a resumed plan carries over
/// from the journal rides along: the appliance's jobs before the first send, the batch's token.
pub(super) enum Work {
    Panorama {
        op: OpId,
        device: String,
        known_jobs: Option<Vec<String>>,
        last_sent: Option<u64>,
    },
    Snow {
        ops: Vec<(String, OpId)>,
        token: Option<String>,
    },
}

/// What every call of one plan shares.
#[derive(Clone)]
pub(super) struct Ctx {
    pub clients: Clients,
    pub limits: Arc<Limits>,
    pub stop: Stop,
    /// Set by the quit or by the plan's rollout (a pause, an abort): no new send begins, but a
    /// send that may have taken effect is still resolved (only the quit stops that).
    pub hold: Stop,
    pub log: Log,
    pub tx: mpsc::UnboundedSender<Internal>,
    /// How long after a send with no answer the service is first asked what became of it.
    pub settle: Duration,
    pub operation: Operation,
    pub snow: SnowOptions,
    /// Team mode: the plan's gate to the team's table, asked before anything is sent.
    pub guard: Option<Arc<Guard>>,
    /// Devices' maintenance windows, by id: a send begins only while its window is open.
    pub windows: Arc<std::collections::HashMap<String, crate::ops::watch::Windows>>,
    pub panic_for_tests: bool,
}

impl Ctx {
    /// Whether the device may be sent to now (no window, or its window is open).
    pub(super) fn window_open(&self, device: &str) -> bool {
        self.windows.get(device).is_none_or(|w| {
            matches!(
                w.at(crate::journal::now()),
                crate::ops::watch::WindowState::Open { .. }
            )
        })
    }

    pub(super) fn report(&self, op: OpId, update: OpUpdate) {
        let _ = self.tx.send(Internal::Op(op, update));
    }

    pub(super) fn warn(&self, message: String) {
        let _ = self.tx.send(Internal::Warn(message));
    }

    pub(super) fn outcome(
        &self,
        service: Service,
        call: Call,
        devices: &[String],
        result: Result<&Created, &ApiError>,
    ) {
        if let Err(e) = self.log.outcome(service, call, devices, result) {
            self.warn(format!(
                "The journal could not record the answer to {call:?} for {}: {e}. Nothing more is sent.",
                devices.join(", ")
            ));
        }
    }
}

pub(super) fn busy(detail: String) -> ApiError {
    ApiError::new(ErrorKind::Conflict, "DeviceBusy", detail)
}

/// Another plan of the team holds the device: it is left out, naming who.
pub(super) fn held(h: &Holder) -> ApiError {
    ApiError::new(ErrorKind::Conflict, "DeviceHeld", h.text())
}

/// Carries out one appliance's part.
pub(super) async fn panorama(
    ctx: Ctx,
    op: OpId,
    device: String,
    known_jobs: Option<Vec<String>>,
    last_sent: Option<u64>,
) {
    assert!(
        !ctx.panic_for_tests,
        "a test asked this dispatch task to panic"
    );
    let client = match ctx.clients.panorama() {
        Ok(c) => c.clone(),
        Err(e) => return ctx.report(op, OpUpdate::new(OpState::Failed).with_error(e)),
    };
    if let Some(g) = &ctx.guard {
        let key = crate::fleet::DeviceKey::new(Service::Panorama, device.clone());
        match g.admit(&key, &ctx.hold).await {
            Ok(()) => {}
            Err(Blocked::Held(h)) => {
                return ctx.report(op, OpUpdate::new(OpState::Skipped).with_error(held(&h)));
            }
            // A send begun before a crash may have gone: it stays unconfirmed.
            Err(Blocked::Stopped | Blocked::Taken(_)) if known_jobs.is_some() => return,
            Err(Blocked::Stopped | Blocked::Taken(_)) => {
                return ctx.report(op, OpUpdate::new(OpState::Paused));
            }
        }
    }
    match panorama_job(&ctx, &client, op, &device, known_jobs, last_sent).await {
        End::Sent(job) => {
            let _ = ctx.tx.send(Internal::PanoramaJob {
                job: job.clone(),
                device,
                op,
            });
            ctx.report(op, OpUpdate::new(OpState::Sent).with_id(job));
        }
        End::Paused => ctx.report(op, OpUpdate::new(OpState::Paused)),
        End::Held(h) => ctx.report(op, OpUpdate::new(OpState::Skipped).with_error(held(&h))),
        // Stopped while resolving: the row stays unconfirmed, and so does the journal.
        End::Unresolved => {}
        End::Failed(e) => ctx.report(op, OpUpdate::new(OpState::Failed).with_error(e)),
    }
}

enum End {
    Sent(String),
    /// Stopped before anything was sent.
    Paused,
    /// Another plan has the device now (team mode): nothing was sent.
    Held(Holder),
    /// Stopped while a send that may have taken effect was being resolved.
    Unresolved,
    Failed(ApiError),
}

/// How long before its create's turn an appliance's jobs are read: enough for a read that
/// waits its request slot and crosses the network.
const READ_LEAD: Duration = Duration::from_millis(500);
/// A read older than this when its create goes is made again (outside team mode).
const REREAD_AFTER: Duration = Duration::from_secs(3);
/// A table's word older than this when its create goes is asked again (team mode).
const RECHECK_AFTER: Duration = Duration::from_secs(2);

/// Waits for the appliance's create turn, reading its jobs just before it comes (while the
/// creates ahead of it go out: nothing serial stands between two sends). The jobs are what a
/// job found after an unanswered send is told apart from. What the send needs (its window
/// open, team mode's word) is settled before the last wait, so the send goes on its turn:
/// on a team's shared grid a send late by a table's answer would meet another host's turn.
async fn jobs_at_turn(
    ctx: &Ctx,
    client: &aws_sdk_panorama::Client,
    device: &str,
) -> Result<Vec<String>, End> {
    let read = || async {
        match read_before(ctx, client, device).await {
            Some(Ok(jobs)) => Ok(jobs),
            Some(Err(e)) => Err(End::Failed(e)),
            None => Err(End::Paused),
        }
    };
    let turn = ctx.limits.panorama_create.reserve();
    // A turn not taken (the plan was held, a check said no) is given back, so the next is not
    // waited out.
    let given_back = |end: End| {
        ctx.limits.panorama_create.release(turn);
        Err(end)
    };
    let lead = turn.checked_sub(READ_LEAD).unwrap_or(turn);
    if !ctx.hold.sleep_until(lead).await {
        return given_back(End::Paused);
    }
    let before = match read().await {
        Ok(jobs) => jobs,
        Err(end) => return given_back(end),
    };
    let read_at = Instant::now();
    // The pacing wait can outlast the device's window: then it waits for the next one
    // (looked at before the team's table is told of a send).
    if !ctx.window_open(device) {
        return given_back(End::Paused);
    }
    if let Err(end) = team_check(ctx, device, &before).await {
        return given_back(end);
    }
    let checked_at = Instant::now();
    if ctx
        .hold
        .unless(ctx.limits.space_create(turn))
        .await
        .is_none()
    {
        return given_back(End::Paused);
    }
    // The wait after the word is the read's lead as a rule, but a share that changed under
    // turns already reserved can make it long: then the window is looked at again, and the
    // table asked again, so that what it holds of the send (when, the jobs before) is this
    // send's and the lease is fresh when it goes.
    if !ctx.window_open(device) {
        return Err(End::Paused);
    }
    let stale = ctx.guard.as_ref().is_some_and(|g| !g.fresh());
    if (stale || checked_at.elapsed() > RECHECK_AFTER)
        && let Err(end) = team_check(ctx, device, &before).await
    {
        return Err(end);
    }
    // A job another operator made between the read and an unanswered send would be taken
    // for ours. Team mode's lease keeps every other create off the device; without it, a
    // read the send's turn left far behind (a slow read, a throttle) is made again.
    if ctx.guard.is_none() && read_at.elapsed() > REREAD_AFTER {
        return read().await;
    }
    Ok(before)
}

/// The appliance's jobs before a send, unless a hold comes first.
async fn read_before(
    ctx: &Ctx,
    client: &aws_sdk_panorama::Client,
    device: &str,
) -> Option<Result<Vec<String>, ApiError>> {
    ctx.hold
        .unless(read_jobs(client, &ctx.limits, device, false))
        .await
}

/// Team mode, right before an appliance's create: still this plan's, with its jobs before the
/// send left with its lease for a host that may take the plan over.
async fn team_check(ctx: &Ctx, device: &str, before: &[String]) -> Result<(), End> {
    let Some(g) = &ctx.guard else {
        return Ok(());
    };
    let key = crate::fleet::DeviceKey::new(Service::Panorama, device);
    let sending = Sending::Panorama {
        known_jobs: before.to_vec(),
    };
    match g.before_send(&[key], &sending, &ctx.hold).await {
        Ok(()) => Ok(()),
        Err(Blocked::Taken(mut taken)) if !taken.is_empty() => Err(End::Held(taken.remove(0).1)),
        Err(_) => Err(End::Paused),
    }
}

/// What reading the appliance's jobs after an unanswered send found.
enum Resolved {
    Job(String),
    Nothing,
    Several(ApiError),
    Stopped,
}

/// Creates one appliance's job exactly once. CreateJobForDevices has no idempotency token, so
/// after a send with no answer the appliance's jobs are compared with those it had before the
/// first send — once the call's deadline has passed, so a late request cannot land after the
/// read: a new job is ours, and only when there is none is the create sent again.
async fn panorama_job(
    ctx: &Ctx,
    client: &aws_sdk_panorama::Client,
    op: OpId,
    device: &str,
    known_jobs: Option<Vec<String>>,
    last_sent: Option<u64>,
) -> End {
    let devices = [device.to_string()];
    match known_jobs {
        // Resumed: a send may have happened before the crash. A job beyond what the
        // appliance had then is that send's, once that send's deadline has passed.
        Some(known) => {
            ctx.report(op, OpUpdate::new(OpState::Unconfirmed));
            let since = last_sent.map_or(Duration::ZERO, |at| {
                Duration::from_secs(crate::journal::now().saturating_sub(at))
            });
            if !ctx.stop.sleep(ctx.settle.saturating_sub(since)).await {
                return End::Unresolved;
            }
            match resolve(ctx, client, op, device, &known).await {
                Resolved::Job(job) => return End::Sent(job),
                Resolved::Several(e) => return End::Failed(e),
                Resolved::Stopped => return End::Unresolved,
                Resolved::Nothing => {}
            }
        }
        None => ctx.report(op, OpUpdate::new(OpState::Waiting)),
    }
    let mut retry = Retry::default();
    loop {
        ctx.report(op, OpUpdate::new(OpState::Waiting));
        let before = match jobs_at_turn(ctx, client, device).await {
            Ok(jobs) => jobs,
            Err(end) => return end,
        };
        if let Err(e) = ctx.log.intent(
            Service::Panorama,
            Call::CreateJobForDevices,
            &devices,
            None,
            &before,
            None,
        ) {
            return End::Failed(e);
        }
        ctx.report(op, OpUpdate::new(OpState::Sending));
        let started = Instant::now();
        let result = aws::panorama::create_job(client, device, &ctx.operation).await;
        ctx.limits.answered(&result, true);
        ctx.outcome(
            Service::Panorama,
            Call::CreateJobForDevices,
            &devices,
            result.as_ref(),
        );
        let error = match result {
            Ok(job) => return End::Sent(job.id),
            Err(e) => e,
        };
        if !error.certainly_not_applied() {
            ctx.report(
                op,
                OpUpdate::new(OpState::Unconfirmed).with_error(error.clone()),
            );
            // Unanswered, or answered by a server error while the work may still be committing:
            // either way the create could still land, so ask only after its deadline.
            {
                let deadline = started + ctx.settle;
                if ctx
                    .stop
                    .unless(tokio::time::sleep_until(deadline))
                    .await
                    .is_none()
                {
                    return End::Unresolved;
                }
            }
            match resolve(ctx, client, op, device, &before).await {
                Resolved::Job(job) => return End::Sent(job),
                Resolved::Several(e) => return End::Failed(e),
                Resolved::Stopped => return End::Unresolved,
                // Nothing was created: sending again is safe.
                Resolved::Nothing => {}
            }
        }
        match retry.after(&error) {
            Some(wait) => {
                if !ctx.hold.sleep(wait).await {
                    return End::Paused;
                }
            }
            None => return End::Failed(error),
        }
    }
}

/// Reads the appliance's jobs until it can tell whether a send took effect. A read that fails
/// is tried again, without end, with the row shown unconfirmed: guessing could send twice.
async fn resolve(
    ctx: &Ctx,
    client: &aws_sdk_panorama::Client,
    op: OpId,
    device: &str,
    before: &[String],
) -> Resolved {
    let mut attempt = 0;
    loop {
        let Some(read) = ctx
            .stop
            .unless(read_jobs(client, &ctx.limits, device, true))
            .await
        else {
            return Resolved::Stopped;
        };
        let now = match read {
            Ok(now) => now,
            Err(e) => {
                ctx.report(op, OpUpdate::new(OpState::Unconfirmed).with_error(e));
                attempt += 1;
                let wait = backoff(attempt).min(Duration::from_secs(30));
                if !ctx.stop.sleep(wait).await {
                    return Resolved::Stopped;
                }
                continue;
            }
        };
        let new: Vec<String> = now.into_iter().filter(|j| !before.contains(j)).collect();
        return match new.as_slice() {
            [] => Resolved::Nothing,
            [job] => {
                // The lost answer's job, found: journal it as the call's outcome.
                let found = Created {
                    id: job.clone(),
                    request_id: None,
                };
                ctx.outcome(
                    Service::Panorama,
                    Call::CreateJobForDevices,
                    &[device.to_string()],
                    Ok(&found),
                );
                Resolved::Job(job.clone())
            }
            _ => Resolved::Several(ApiError::new(
                ErrorKind::Conflict,
                "SeveralJobs",
                format!(
                    "{} new jobs appeared on the appliance ({}), so which one is this plan's cannot be told; nothing more is sent",
                    new.len(),
                    new.join(", ")
                ),
            )),
        };
    }
}

/// The appliance's jobs (ListDevicesJobs), tried a few times. `paced`: on the account's
/// shared pace; a read tied to a create's turn is not, as its request slot rides with the
/// create's (see `Limits`).
async fn read_jobs(
    client: &aws_sdk_panorama::Client,
    limits: &Limits,
    device: &str,
    paced: bool,
) -> Result<Vec<String>, ApiError> {
    let mut retry = Retry::default();
    loop {
        if paced || retry.tried() {
            limits.panorama_read().await;
        }
        let read = aws::panorama::job_ids(client, device).await;
        limits.answered(&read, false);
        match read {
            Ok(ids) => return Ok(ids),
            Err(e) => match retry.after(&e) {
                Some(wait) => tokio::time::sleep(wait).await,
                None => return Err(e),
            },
        }
    }
}

/// The busy check for appliances: the newest job the listing shows has not ended.
pub(super) fn panorama_busy(latest: Option<&str>) -> Option<ApiError> {
    let latest = latest?;
    let status = latest.rsplit(' ').next().unwrap_or(latest);
    let state = OpState::from_service(status)?;
    (!state.is_final()).then(|| {
        busy(format!(
            "the appliance's latest job ({latest}) has not ended"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_appliance_is_busy_while_its_latest_job_runs() {
        assert!(panorama_busy(Some("REBOOT IN_PROGRESS")).is_some());
        assert!(panorama_busy(Some("OTA PENDING")).is_some());
        assert!(panorama_busy(Some("OTA COMPLETED")).is_none());
        assert!(panorama_busy(Some("REBOOT FAILED")).is_none());
        assert!(panorama_busy(None).is_none());
    }
}
