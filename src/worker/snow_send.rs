//! A plan's Snow part, sent: devices busy with another task skipped, the rest in batches of
//! up to 10 under a client token chosen before the first send and reused on every retry, so
//! the service makes each task at most once.

use std::time::Duration;

use super::Internal;
use super::dispatch::{Ctx, busy, held};
use super::limits::{Retry, Stop, backoff};
use super::team::Blocked;
use crate::aws::{self, ErrorKind};
use crate::fleet::{SNOW_TARGETS_PER_TASK, Service};
use crate::journal::Call;
use crate::ops::{OpId, OpState, OpUpdate};
use crate::team::leases::Sending;

/// A Snow batch: its targets' operations, and the client token it was sent under, if it was.
pub(super) type Batch = (Vec<(String, OpId)>, Option<String>);

/// Carries out a plan's Snow part. Devices of fresh batches whose execution of another task
/// has not ended are skipped as busy; the rest are batched again, 10 to a task. Resumed
/// batches go as they were, under their journaled tokens.
pub(super) async fn snow(ctx: Ctx, batches: Vec<Batch>) {
    // A batch that carries a journaled token may have made its task already.
    for (ops, token) in &batches {
        let state = if token.is_some() {
            OpState::Unconfirmed
        } else {
            OpState::Waiting
        };
        for (_, op) in ops {
            ctx.report(*op, OpUpdate::new(state));
        }
    }
    let mut fresh: Vec<(String, OpId)> = batches
        .iter()
        .filter(|(_, token)| token.is_none())
        .flat_map(|(ops, _)| ops.clone())
        .collect();
    if let Some(g) = &ctx.guard {
        let mut admitted = Vec::new();
        for (device, op) in fresh {
            let key = crate::fleet::DeviceKey::new(Service::Snow, device.clone());
            match g.admit(&key, &ctx.hold).await {
                Ok(()) => admitted.push((device, op)),
                Err(Blocked::Held(h)) => {
                    ctx.report(op, OpUpdate::new(OpState::Skipped).with_error(held(&h)))
                }
                Err(Blocked::Stopped | Blocked::Taken(_)) => {
                    ctx.report(op, OpUpdate::new(OpState::Paused))
                }
            }
        }
        fresh = admitted;
    }
    let busy_now = if fresh.is_empty() {
        Default::default()
    } else {
        match ctx
            .hold
            .unless(aws::snow::busy_devices(&ctx.clients.snow))
            .await
        {
            None => {
                for (ops, _) in batches.iter().filter(|(_, token)| token.is_none()) {
                    for (_, op) in ops {
                        ctx.report(*op, OpUpdate::new(OpState::Paused));
                    }
                }
                return;
            }
            Some(Ok(busy)) => busy,
            Some(Err(e)) => {
                ctx.warn(format!(
                    "Could not read which Snow devices are busy ({e}); sending anyway: a busy device's execution is REJECTED by the service"
                ));
                Default::default()
            }
        }
    };
    let mut work: Vec<Batch> = batches
        .into_iter()
        .filter(|(_, token)| token.is_some())
        .collect();
    let mut free = Vec::new();
    for (device, op) in fresh {
        match busy_now.get(&device) {
            Some(task) => ctx.report(
                op,
                OpUpdate::new(OpState::Skipped).with_error(busy(format!(
                    "the device's execution of task {task} has not ended"
                ))),
            ),
            None => free.push((device, op)),
        }
    }
    work.extend(
        free.chunks(SNOW_TARGETS_PER_TASK)
            .map(|c| (c.to_vec(), None::<String>)),
    );
    futures::future::join_all(
        work.into_iter()
            .map(|(ops, token)| snow_batch(&ctx, ops, token)),
    )
    .await;
}

/// What team mode's check before a Snow batch's send decided.
enum Check {
    Go,
    /// Some devices went to another plan: the batch goes without them, checked again.
    Again,
    /// Nothing is left to send, or the plan is no longer this host's.
    End,
    Stopped,
}

async fn team_batch_check(
    ctx: &Ctx,
    ops: &mut Vec<(String, OpId)>,
    token: &str,
    maybe_sent: bool,
    until: &Stop,
) -> Check {
    let Some(g) = &ctx.guard else {
        return Check::Go;
    };
    let keys: Vec<crate::fleet::DeviceKey> = ops
        .iter()
        .map(|(d, _)| crate::fleet::DeviceKey::new(Service::Snow, d.clone()))
        .collect();
    let sending = Sending::Snow {
        token: token.to_string(),
    };
    match g.before_send(&keys, &sending, until).await {
        Ok(()) => Check::Go,
        // Another plan has some of them now: a batch not yet sent goes without them (its
        // token has gone nowhere yet), once its remaining devices are checked.
        Err(Blocked::Taken(taken)) if !maybe_sent => {
            for (key, h) in &taken {
                if let Some(i) = ops.iter().position(|(d, _)| *d == key.id) {
                    let (_, op) = ops.remove(i);
                    ctx.report(op, OpUpdate::new(OpState::Skipped).with_error(held(h)));
                }
            }
            if ops.is_empty() {
                Check::End
            } else {
                Check::Again
            }
        }
        // A batch that may have made its task cannot change its targets: the plan stops
        // here, its rows unconfirmed, for the devices' holder to see to.
        Err(Blocked::Taken(taken)) => {
            let who = taken.first().map(|(_, h)| h.text()).unwrap_or_default();
            g.lose(format!(
                "a Snow batch that may have been sent has devices another plan holds now ({who})"
            ));
            Check::End
        }
        Err(_) => Check::Stopped,
    }
}

/// Of a batch's targets, those whose window is open; the others are paused for the next one.
fn in_window(ctx: &Ctx, ops: Vec<(String, OpId)>) -> Vec<(String, OpId)> {
    let (go, shut): (Vec<_>, Vec<_>) = ops.into_iter().partition(|(d, _)| ctx.window_open(d));
    for (_, op) in shut {
        ctx.report(op, OpUpdate::new(OpState::Paused));
    }
    go
}

async fn snow_batch(ctx: &Ctx, mut ops: Vec<(String, OpId)>, token: Option<String>) {
    let report = |ops: &[(String, OpId)], update: OpUpdate| {
        for (_, op) in ops {
            ctx.report(*op, update.clone());
        }
    };
    // Chosen before the first send, journaled, and reused on every retry (and by a resumed
    // plan): the service then creates the task at most once.
    let mut maybe_sent = token.is_some();
    let token = token.unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let mut targets: Vec<String> = ops.iter().map(|(d, _)| d.clone()).collect();
    let stopped = |ops: &[(String, OpId)], maybe_sent: bool| {
        if !maybe_sent {
            report(ops, OpUpdate::new(OpState::Paused));
        }
    };
    // A batch that may have made its task is resolved through a hold; only a quit stops it.
    let until = |maybe_sent: bool| if maybe_sent { &ctx.stop } else { &ctx.hold };
    let Some(_permit) = until(maybe_sent).unless(ctx.limits.call()).await else {
        return stopped(&ops, maybe_sent);
    };
    let mut retry = Retry::default();
    let mut attempt = 0;
    loop {
        if until(maybe_sent).is_set() {
            return stopped(&ops, maybe_sent);
        }
        // A batch not yet sent leaves out devices whose window shut meanwhile (a throttle's
        // wait, a slow table): they wait for the next one. One that may have made its task
        // keeps its targets, as its token requires.
        if !maybe_sent {
            ops = in_window(ctx, ops);
            targets = ops.iter().map(|(d, _)| d.clone()).collect();
            if ops.is_empty() {
                return;
            }
        }
        // Team mode: the batch is still this plan's, and its token is left with its leases.
        match team_batch_check(ctx, &mut ops, &token, maybe_sent, until(maybe_sent)).await {
            Check::Go => {}
            Check::Again => {
                targets = ops.iter().map(|(d, _)| d.clone()).collect();
                continue;
            }
            Check::End => return,
            Check::Stopped => return stopped(&ops, maybe_sent),
        }
        if let Err(e) = ctx.log.intent(
            Service::Snow,
            Call::CreateTask,
            &targets,
            Some(&token),
            &[],
            None,
        ) {
            return report(&ops, OpUpdate::new(OpState::Failed).with_error(e));
        }
        report(&ops, OpUpdate::new(OpState::Sending));
        let result = aws::snow::create_task(
            &ctx.clients.snow,
            &targets,
            &ctx.operation,
            &ctx.snow,
            &token,
        )
        .await;
        ctx.outcome(Service::Snow, Call::CreateTask, &targets, result.as_ref());
        let error = match result {
            Ok(task) => {
                let _ = ctx.tx.send(Internal::SnowTask {
                    task: task.id.clone(),
                    ops: ops.clone(),
                });
                return report(&ops, OpUpdate::new(OpState::Sent).with_id(task.id));
            }
            Err(e) => e,
        };
        // No answer, or a server error: the task may exist. The token makes a resend safe
        // whatever happened to the first, so keep resolving. Any other refusal is final.
        if matches!(error.kind, ErrorKind::Ambiguous | ErrorKind::Timeout) {
            maybe_sent = true;
            report(
                &ops,
                OpUpdate::new(OpState::Unconfirmed).with_error(error.clone()),
            );
            attempt += 1;
            if !ctx
                .stop
                .sleep(backoff(attempt).min(Duration::from_secs(30)))
                .await
            {
                return;
            }
            continue;
        }
        match retry.after(&error) {
            Some(wait) => {
                if !until(maybe_sent).sleep(wait).await {
                    return stopped(&ops, maybe_sent);
                }
            }
            None => return report(&ops, OpUpdate::new(OpState::Failed).with_error(error)),
        }
    }
}
