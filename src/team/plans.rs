//! A plan in the team's table: its lease (owner, epoch, and a record version that changes on
//! every heartbeat), its mirror (what it does, its phase and figures, its decisions), the words
//! other hosts leave for it, and the approvals of the two-person rule.
//!
//! Taking a plan over never trusts clocks to agree: the taker reads the record version, waits
//! a whole lease duration on its own clock, and takes the plan only with a conditional write
//! that the version is still the one it saw, bumping the epoch. The old owner's next renewal,
//! or its next check before a send, then fails: it sends nothing more.

use aws_sdk_dynamodb::types::AttributeValue;

use super::Team;
use super::table::{self, Item, get_bool, get_list_s, get_n, get_s, key, n, s};
use crate::aws::ApiError;
use crate::ops::rollout::Cause;

/// A plan's lease as its owner holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlanLease {
    pub plan: String,
    pub epoch: u64,
    /// The record version of the owner's last write: a renewal is conditional on it.
    pub rvn: String,
    /// When the write that set `rvn` began, on this process's clock: a taker's watch of it
    /// cannot have begun earlier, so the lease is counted from here.
    pub written: std::time::Instant,
}

/// A plan as `team plans` lists it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PlanRow {
    pub plan: String,
    pub owner_arn: String,
    pub owner_host: String,
    pub owner_pid: u32,
    pub epoch: u64,
    pub rvn: String,
    pub created_by: String,
    pub created_at: u64,
    /// The owner's clock at its last renewal: for reading only, never for deciding.
    pub renewed_at: u64,
    pub operation: String,
    pub devices: usize,
    pub phase: String,
    pub wave: usize,
    pub waves: usize,
    pub sent: usize,
    pub finals: usize,
    pub failed: usize,
    /// Set once the plan has ended.
    pub outcome: Option<String>,
    pub needs_approval: bool,
    pub approvals: Vec<String>,
    /// The journal's record of the plan (JSON): what a host taking it over carries on.
    pub record: Option<String>,
}

impl PlanRow {
    pub fn ended(&self) -> bool {
        self.outcome.is_some()
    }

    pub fn approved(&self) -> bool {
        !self.needs_approval || !self.approvals.is_empty()
    }

    /// "ARN on HOST (process N)": who runs the plan.
    pub fn owner_text(&self) -> String {
        format!(
            "{} on {} (process {})",
            self.owner_arn, self.owner_host, self.owner_pid
        )
    }

    fn of(i: &Item) -> Option<Self> {
        Some(Self {
            plan: get_s(i, "sk")?,
            owner_arn: get_s(i, "owner_arn").unwrap_or_default(),
            owner_host: get_s(i, "owner_host").unwrap_or_default(),
            owner_pid: get_n(i, "owner_pid").unwrap_or(0) as u32,
            epoch: get_n(i, "epoch").unwrap_or(0),
            rvn: get_s(i, "rvn").unwrap_or_default(),
            created_by: get_s(i, "created_by").unwrap_or_default(),
            created_at: get_n(i, "created_at").unwrap_or(0),
            renewed_at: get_n(i, "renewed_at").unwrap_or(0),
            operation: get_s(i, "operation").unwrap_or_default(),
            devices: get_n(i, "devices").unwrap_or(0) as usize,
            phase: get_s(i, "phase").unwrap_or_default(),
            wave: get_n(i, "wave").unwrap_or(0) as usize,
            waves: get_n(i, "waves").unwrap_or(1) as usize,
            sent: get_n(i, "sent").unwrap_or(0) as usize,
            finals: get_n(i, "finals").unwrap_or(0) as usize,
            failed: get_n(i, "failed").unwrap_or(0) as usize,
            outcome: get_s(i, "outcome"),
            needs_approval: get_bool(i, "needs_approval"),
            approvals: get_list_s(i, "approvals"),
            record: get_s(i, "record"),
        })
    }
}

/// What the owner tells the team of its plan at each heartbeat.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Progress {
    pub phase: String,
    pub wave: usize,
    pub waves: usize,
    pub sent: usize,
    pub finals: usize,
    pub failed: usize,
}

/// Why a renewal did not go through.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Renewal {
    /// Another host holds the plan now (named when it could be read).
    Lost(String),
    Unreachable(ApiError),
}

fn rvn() -> String {
    uuid::Uuid::new_v4().to_string()
}

impl Team {
    /// Writes a new plan's lease and mirror: this process owns it at epoch 1.
    pub async fn start_plan(
        &self,
        plan: &str,
        operation: &str,
        record: &str,
        devices: usize,
        needs_approval: bool,
    ) -> Result<PlanLease, ApiError> {
        let lease = PlanLease {
            plan: plan.to_string(),
            epoch: 1,
            rvn: rvn(),
            written: std::time::Instant::now(),
        };
        let now = crate::fleet::now();
        self.db
            .put_item()
            .table_name(&self.table)
            .set_item(Some(key("plans", plan)))
            .item("owner_arn", s(self.me.arn.clone()))
            .item("owner_host", s(self.me.host.clone()))
            .item("owner_pid", n(self.me.pid))
            .item("epoch", n(1))
            .item("rvn", s(lease.rvn.clone()))
            .item("created_by", s(self.me.arn.clone()))
            .item("created_at", n(now))
            .item("renewed_at", n(now))
            .item("lease_secs", n(self.settings.lease.as_secs()))
            .item("operation", s(operation))
            .item("devices", n(devices))
            .item(
                "phase",
                s(if needs_approval {
                    "awaiting a second operator's approval"
                } else {
                    "acquiring leases"
                }),
            )
            .item("needs_approval", AttributeValue::Bool(needs_approval))
            .item("record", s(record))
            .condition_expression("attribute_not_exists(sk)")
            .send()
            .await
            .map_err(ApiError::from_sdk)?;
        Ok(lease)
    }

    /// The owner's heartbeat: a new record version, on the condition that the plan is still
    /// its own at its epoch and version; the plan's figures go with it.
    pub async fn renew(&self, lease: &PlanLease, p: &Progress) -> Result<PlanLease, Renewal> {
        let next = PlanLease {
            rvn: rvn(),
            written: std::time::Instant::now(),
            ..lease.clone()
        };
        let update = "SET #rvn = :next, #renewed_at = :now, #phase = :phase, #wave = :wave, \
                      #waves = :waves, #sent = :sent, #finals = :finals, #failed = :failed";
        let condition = "#epoch = :e AND #rvn = :rvn";
        let written = table::update_if(
            &self.db,
            &self.table,
            key("plans", &lease.plan),
            update,
            condition,
            [
                (":next", s(next.rvn.clone())),
                (":now", n(crate::fleet::now())),
                (":phase", s(p.phase.clone())),
                (":wave", n(p.wave)),
                (":waves", n(p.waves)),
                (":sent", n(p.sent)),
                (":finals", n(p.finals)),
                (":failed", n(p.failed)),
                (":e", n(lease.epoch)),
                (":rvn", s(lease.rvn.clone())),
            ],
        )
        .await
        .map_err(Renewal::Unreachable)?;
        if written {
            return Ok(next);
        }
        let by = match self.plan(&lease.plan).await {
            Ok(Some(row)) => format!(
                "{} on {} (process {}, epoch {})",
                row.owner_arn, row.owner_host, row.owner_pid, row.epoch
            ),
            _ => "another host".into(),
        };
        Err(Renewal::Lost(by))
    }

    /// The plan has ended: its outcome, and its records kept for a month.
    pub async fn end_plan(
        &self,
        lease: &PlanLease,
        outcome: &str,
        p: &Progress,
    ) -> Result<(), ApiError> {
        let update = "SET #outcome = :o, #ended_at = :now, #phase = :phase, #expires = :ttl, \
                      #wave = :wave, #waves = :waves, #sent = :sent, #finals = :finals, \
                      #failed = :failed";
        let condition = "#epoch = :e";
        let now = crate::fleet::now();
        // Not ours any more: its new owner ends it.
        table::update_if(
            &self.db,
            &self.table,
            key("plans", &lease.plan),
            update,
            condition,
            [
                (":o", s(outcome)),
                (":now", n(now)),
                (":phase", s("ended")),
                (":ttl", n(now + table::KEEP_SECS)),
                (":wave", n(p.wave)),
                (":waves", n(p.waves)),
                (":sent", n(p.sent)),
                (":finals", n(p.finals)),
                (":failed", n(p.failed)),
                (":e", n(lease.epoch)),
            ],
        )
        .await
        .map(drop)
    }

    /// Every plan the table knows, oldest first.
    pub async fn plans(&self) -> Result<Vec<PlanRow>, ApiError> {
        let items = table::query_all(&self.db, &self.table, "plans", None).await?;
        let mut rows: Vec<PlanRow> = items.iter().filter_map(PlanRow::of).collect();
        rows.sort_by_key(|r| r.created_at);
        Ok(rows)
    }

    pub async fn plan(&self, id: &str) -> Result<Option<PlanRow>, ApiError> {
        let got = table::get(&self.db, &self.table, key("plans", id)).await?;
        Ok(got.as_ref().and_then(PlanRow::of))
    }

    /// Whether a plan has ended (or is unknown to the table): its devices are free to take.
    pub async fn plan_ended(&self, id: &str) -> Result<bool, ApiError> {
        Ok(self.plan(id).await?.is_none_or(|r| r.ended()))
    }

    /// Takes a plan over: on the condition that its record version is still `observed`, this
    /// process becomes its owner at the next epoch.
    pub async fn take_over(
        &self,
        row: &PlanRow,
        observed: &str,
    ) -> Result<Option<PlanLease>, ApiError> {
        let lease = PlanLease {
            plan: row.plan.clone(),
            epoch: row.epoch + 1,
            rvn: rvn(),
            written: std::time::Instant::now(),
        };
        let update = "SET #owner_arn = :arn, #owner_host = :host, #owner_pid = :pid, \
                      #epoch = :e, #rvn = :next, #renewed_at = :now";
        let condition = "#rvn = :seen AND attribute_not_exists(#outcome)";
        let taken = table::update_if(
            &self.db,
            &self.table,
            key("plans", &row.plan),
            update,
            condition,
            [
                (":arn", s(self.me.arn.clone())),
                (":host", s(self.me.host.clone())),
                (":pid", n(self.me.pid)),
                (":e", n(lease.epoch)),
                (":next", s(lease.rvn.clone())),
                (":now", n(crate::fleet::now())),
                (":seen", s(observed)),
            ],
        )
        .await?;
        Ok(taken.then_some(lease))
    }

    /// A decision of the plan's rollout, mirrored for the team.
    pub async fn mirror_decision(&self, plan: &str, n_: usize, text: &str) -> Result<(), ApiError> {
        self.db
            .put_item()
            .table_name(&self.table)
            .set_item(Some(key(&format!("plan#{plan}"), &format!("gate#{n_:04}"))))
            .item("decision", s(text))
            .item("at", n(crate::fleet::now()))
            .item("expires", n(crate::fleet::now() + table::KEEP_SECS))
            .send()
            .await
            .map_err(ApiError::from_sdk)
            .map(drop)
    }

    /// The decisions mirrored for a plan, in order.
    pub async fn decisions(&self, plan: &str) -> Result<Vec<String>, ApiError> {
        let items = table::query_all(
            &self.db,
            &self.table,
            &format!("plan#{plan}"),
            Some("gate#"),
        )
        .await?;
        Ok(items.iter().filter_map(|i| get_s(i, "decision")).collect())
    }

    /// The plan a word or an approval names: its whole id, or the start of one, among the
    /// team's plans that have not ended.
    pub async fn named(&self, named: &str) -> Result<PlanRow, String> {
        let rows = self
            .plans()
            .await
            .map_err(|e| super::refused(&self.table, &e))?;
        // Unnamed: the one live plan another process owns.
        let found: Vec<&PlanRow> = rows
            .iter()
            .filter(|r| {
                if named.is_empty() {
                    !(r.owner_host == self.me.host && r.owner_pid == self.me.pid)
                } else {
                    r.plan.starts_with(named)
                }
            })
            .collect();
        let live: Vec<&PlanRow> = found.iter().copied().filter(|r| !r.ended()).collect();
        match (live.as_slice(), found.as_slice()) {
            ([one], _) => Ok((*one).clone()),
            ([], [ended, ..]) => Err(format!(
                "plan {} has ended ({}): nothing to do",
                ended.plan,
                ended.outcome.as_deref().unwrap_or("ENDED")
            )),
            ([], []) if named.is_empty() => Err(format!(
                "team table {} has no live plan to take over (see `fleetdeck team plans`)",
                self.table
            )),
            ([], []) => Err(format!(
                "team table {} has no plan {named} (see `fleetdeck team plans`)",
                self.table
            )),
            (many, _) => Err(format!(
                "{} live plans match{}: name one ({})",
                many.len(),
                if named.is_empty() {
                    String::new()
                } else {
                    format!(" {named}")
                },
                many.iter()
                    .map(|r| r.plan.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        }
    }

    /// The cause a word from this identity carries.
    pub fn operator(&self, via: &str) -> Cause {
        Cause::Operator {
            user: self.me.arn.clone(),
            host: self.me.host.clone(),
            pid: self.me.pid,
            via: via.to_string(),
        }
    }

    /// Approves a plan under the two-person rule: refused for the plan's creator, and for a
    /// plan that needs no approval or has ended.
    pub async fn approve(&self, named: &str) -> Result<String, String> {
        let row = self.named(named).await?;
        let plan = row.plan.as_str();
        if !row.needs_approval {
            return Err(format!(
                "plan {plan} needs no approval: the team's rule does not cover its devices"
            ));
        }
        if row.created_by == self.me.arn {
            return Err(format!(
                "plan {plan} was made by {} — you: the two-person rule needs a different identity to approve it",
                row.created_by
            ));
        }
        let update = "SET #approvals = list_append(if_not_exists(#approvals, :none), :me)";
        let condition = "#created_by <> :arn AND attribute_not_exists(#outcome)";
        let approved = table::update_if(
            &self.db,
            &self.table,
            key("plans", plan),
            update,
            condition,
            [
                (":none", AttributeValue::L(Vec::new())),
                (":me", AttributeValue::L(vec![s(self.me.arn.clone())])),
                (":arn", s(self.me.arn.clone())),
            ],
        )
        .await
        .map_err(|e| super::refused(&self.table, &e))?;
        if !approved {
            return Err(format!(
                "plan {plan} was not approved: it ended, or its creator is you"
            ));
        }
        Ok(format!(
            "plan {plan} approved by {}: its owner goes on at its next heartbeat",
            self.me.arn
        ))
    }
}
