//! Team mode's resumes. A plan this host's journal holds takes its lease back (at the next
//! epoch) and re-acquires its open devices before anything is sent. A plan another host ran
//! and abandoned is taken over: its record version watched unchanged for a whole lease on
//! this process's clock (never trusting clocks to agree), taken with a conditional write that
//! bumps its epoch, and written into this host's journal from the team's mirror, so the
//! journal's own resume carries it on: appliances reconciled through ListDevicesJobs against
//! the jobs they had before the send, Snow batches sent again under their stored tokens.

use std::time::Duration;

use super::team::Guard;
use super::{Internal, Worker, parse_device_ref};
use crate::aws::{ApiError, ErrorKind};
use crate::fleet::{DeviceKey, Service};
use crate::journal::{self, Call, Record};
use crate::ops::OpState;
use crate::protocol::Event;
use crate::team::leases::DeviceState;
use crate::team::{PlanLease, PlanRow, Team};

/// A plan taken over from another host, with what the table held of it.
pub struct Taken {
    pub row: PlanRow,
    pub lease: PlanLease,
    pub record: Record,
    pub states: std::collections::HashMap<DeviceKey, DeviceState>,
}

fn refused(code: &'static str, why: String) -> ApiError {
    ApiError::new(ErrorKind::Conflict, code, why)
}

/// The plan's lease taken back by the host whose journal holds it: its owner was this
/// identity on this host, and this process holds the journal, so that owner is gone. A plan
/// the table does not know (made before team mode) is written afresh.
async fn reclaim(team: &Team, plan: &str, op: &str, record: &str) -> Result<PlanLease, ApiError> {
    let Some(row) = team.plan(plan).await? else {
        return team.start_plan(plan, op, record, 0, false).await;
    };
    if row.ended() {
        return Err(refused(
            "PlanEnded",
            format!("plan {plan} has ended in the team table: nothing resumed"),
        ));
    }
    if row.owner_arn != team.me.arn || row.owner_host != team.me.host {
        return Err(refused(
            "PlanOwnedElsewhere",
            format!(
                "plan {plan} is run by {} on {} now (it took the plan over): nothing resumed here",
                row.owner_arn, row.owner_host
            ),
        ));
    }
    team.take_over(&row, &row.rvn).await?.ok_or_else(|| {
        refused(
            "PlanOwnedElsewhere",
            format!("plan {plan} was taken over by another host just now: nothing resumed here"),
        )
    })
}

/// Watches the plan's record for a whole lease; takes it if nobody renewed it meanwhile.
async fn watch_and_take(
    team: &Team,
    named: &str,
    events: &tokio::sync::mpsc::UnboundedSender<Event>,
) -> Result<Taken, ApiError> {
    let row = team
        .named(named)
        .await
        .map_err(|why| refused("NoSuchPlan", why))?;
    if row.owner_host == team.me.host && row.owner_pid == team.me.pid {
        return Err(refused(
            "PlanIsOurs",
            format!("plan {} runs in this process already", row.plan),
        ));
    }
    let wait = team.settings.lease + Duration::from_millis(500);
    let _ = events.send(Event::Notice(format!(
        "Plan {} is owned by {} on {} (process {}): watching its record for {} — a live owner renews it — before taking it over",
        row.plan,
        row.owner_arn,
        row.owner_host,
        row.owner_pid,
        crate::ops::rollout::duration_text(wait)
    )));
    tokio::time::sleep(wait).await;
    let now = team.plan(&row.plan).await?.unwrap_or_default();
    if now.ended() {
        return Err(refused(
            "PlanEnded",
            format!(
                "plan {} ended while it was watched: nothing to take over",
                row.plan
            ),
        ));
    }
    if now.rvn != row.rvn {
        return Err(refused(
            "OwnerAlive",
            format!(
                "plan {} is alive: {} on {} renewed it while it was watched. Pause or abort it with `fleetdeck run --pause {}` (or --abort), or ask its owner",
                row.plan, now.owner_arn, now.owner_host, row.plan
            ),
        ));
    }
    let lease = team.take_over(&now, &row.rvn).await?.ok_or_else(|| {
        refused(
            "PlanOwnedElsewhere",
            format!("plan {} was taken over by another host first", row.plan),
        )
    })?;
    let record: Record = row
        .record
        .as_deref()
        .and_then(|r| serde_json::from_str(r).ok())
        .ok_or_else(|| {
            refused(
                "UnreadablePlan",
                format!(
                    "the team table's record of plan {} cannot be read",
                    row.plan
                ),
            )
        })?;
    let keys: Vec<DeviceKey> = match &record {
        Record::Plan { devices, .. } => {
            devices.iter().filter_map(|d| parse_device_ref(d)).collect()
        }
        _ => Vec::new(),
    };
    let states = team.device_items(&keys).await?;
    Ok(Taken {
        row: now,
        lease,
        record,
        states,
    })
}

/// The journal records that stand for what the team's table knows of a taken plan: its plan,
/// its waves begun, each device's end as released, and each send checked but not confirmed
/// (an appliance's jobs before it, a Snow batch's token), so the journal's resume reconciles
/// exactly those.
pub fn records_of(taken: &Taken) -> Vec<Record> {
    let plan = taken.row.plan.clone();
    let at = journal::now();
    let mut out = vec![taken.record.clone()];
    for wave in 0..=taken.row.wave {
        out.push(Record::Wave {
            plan: plan.clone(),
            at,
            wave,
        });
    }
    let mut tokens: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    let mut states: Vec<(&DeviceKey, &DeviceState)> = taken.states.iter().collect();
    states.sort_by(|a, b| a.0.cmp(b.0));
    for (key, state) in states {
        // As the journal names a device in its ends: by its id alone.
        let device = key.id.to_string();
        let ours = state.plan.as_deref() == Some(plan.as_str());
        if state.last_plan.as_deref() == Some(plan.as_str())
            && !ours
            && let Some(s) = state.outcome.as_deref().and_then(OpState::final_named)
        {
            out.push(Record::Final {
                plan: plan.clone(),
                at,
                device,
                state: s,
                resource_id: state.resource.clone(),
                error: None,
            });
            continue;
        }
        if !ours {
            continue;
        }
        match (key.service, &state.known_jobs, &state.token) {
            (Service::Panorama, Some(jobs), _) => out.push(Record::Intent {
                plan: plan.clone(),
                at: state.sent_at.unwrap_or(at),
                service: Service::Panorama,
                operation: Call::CreateJobForDevices,
                devices: vec![key.id.to_string()],
                token: None,
                known_jobs: jobs.clone(),
                task: None,
            }),
            (Service::Snow, _, Some(token)) => tokens
                .entry(token.clone())
                .or_default()
                .push(key.id.to_string()),
            _ => {}
        }
    }
    for (token, devices) in tokens {
        out.push(Record::Intent {
            plan: plan.clone(),
            at,
            service: Service::Snow,
            operation: Call::CreateTask,
            devices,
            token: Some(token),
            known_jobs: Vec::new(),
            task: None,
        });
    }
    out
}

impl Worker {
    /// `--resume` of a plan another host ran: watched, taken, written into this journal, and
    /// resumed as this host's own.
    pub(super) fn take_over(&mut self, named: String) {
        if let Some(e) = self.refusal() {
            return self.refuse(e, None);
        }
        let Some(team) = self.team.clone() else {
            let e = refused(
                "NoTeam",
                "taking a plan over needs team mode (--team TABLE)".into(),
            );
            return self.refuse(e, None);
        };
        let tx = self.internal.clone();
        let events = self.events.clone();
        self.tasks.spawn(async move {
            let taken = watch_and_take(&team, &named, &events).await;
            let _ = tx.send(Internal::TakenOver(taken.map(Box::new)));
        });
    }

    /// The plan is ours now: into the journal, then resumed.
    pub(super) fn taken_over(&mut self, taken: Result<Box<Taken>, ApiError>) {
        let taken = match taken {
            Ok(t) => t,
            Err(e) => return self.refuse(e, None),
        };
        let plan = taken.row.plan.clone();
        for r in records_of(&taken) {
            if let Err(why) = self.journal(&r) {
                let e = ApiError::new(ErrorKind::Validation, "JournalWriteFailed", why);
                return self.refuse(e, None);
            }
        }
        let u = self.settings.journal.as_ref().and_then(|p| {
            let records = journal::read(p).ok()?;
            journal::unfinished_plans(&records)
                .into_iter()
                .find(|u| u.plan.plan() == plan)
        });
        let Some(u) = u else {
            let e = refused(
                "NothingLeft",
                format!("plan {plan} has nothing left to send or follow"),
            );
            return self.refuse(e, None);
        };
        self.emit(Event::Notice(format!(
            "Plan {plan} taken over from {} on {} (epoch {}): its devices are reconciled through the services before anything is sent",
            taken.row.owner_arn,
            taken.row.owner_host,
            taken.lease.epoch
        )));
        self.unfinished.insert(plan.clone(), u);
        self.taking = Some(taken.lease.clone());
        self.resume(&plan);
    }

    /// A resumed plan in team mode: its lease taken back (or, taken over, already held), its
    /// open devices acquired, before its guard lets anything go.
    pub(super) fn team_resume(
        &mut self,
        plan: &str,
        operation: &str,
        record: String,
        open: Vec<DeviceKey>,
    ) {
        let Some(team) = self.team.clone() else {
            return;
        };
        let guard = Guard::new(team.clone(), plan);
        self.guards.insert(plan.to_string(), guard.clone());
        let taken = self.taking.take();
        let op = operation.to_string();
        let tx = self.internal.clone();
        let id = plan.to_string();
        self.tasks.spawn(async move {
            let lease = match taken {
                Some(l) => Ok(l),
                None => reclaim(&team, &id, &op, &record).await,
            };
            let needs_approval = match team.plan(&id).await {
                Ok(Some(row)) => !row.approved(),
                _ => false,
            };
            let result = match lease {
                Ok(lease) => team.acquire(&lease, &op, &open).await.map(|a| (lease, a)),
                Err(e) => Err(e),
            };
            let _ = tx.send(Internal::Leased {
                plan: id,
                result,
                needs_approval,
            });
        });
    }
}
