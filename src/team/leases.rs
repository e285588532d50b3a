//! A plan's devices in the team's table: acquired before the plan sends anything (in
//! transactions of up to 100, each device a conditional write: free, ours already, or held by
//! a plan that has ended), checked once more right before each send (still this plan's, at
//! this epoch: a host that took the plan over bumped it), and released with the outcome when
//! the device's operation is final.
//!
//! A device's lease rides on its plan's: it names the plan and the plan's epoch, and the
//! plan's heartbeat keeps them all. So a device costs three writes however long its plan
//! runs: acquired, checked before its send, released.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{TransactWriteItem, Update};

use super::table::{
    self, Item, device_of, device_sk, failed_condition, get_n, get_s, key, list_s, n, names, s,
};
use super::{PlanLease, Team};
use crate::aws::{ApiError, ErrorKind};
use crate::fleet::DeviceKey;

/// Who holds a device, as the operator is told.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Holder {
    pub arn: String,
    pub host: String,
    pub pid: u32,
    pub plan: String,
    pub epoch: u64,
    /// "OTA 5.0.21", "reboot".
    pub operation: String,
    /// Epoch seconds.
    pub since: u64,
}

impl Holder {
    /// "held by ARN on HOST (plan ID, OTA 5.0.21, since 2026-12-06 10:04:05 UTC)".
    pub fn text(&self) -> String {
        format!(
            "held by {} on {} (plan {}, {}, since {} UTC)",
            self.arn,
            self.host,
            self.plan,
            self.operation,
            crate::journal::when(self.since)
        )
    }

    fn of(item: &Item) -> Option<Self> {
        Some(Self {
            plan: get_s(item, "plan")?,
            epoch: get_n(item, "epoch").unwrap_or(0),
            arn: get_s(item, "holder_arn").unwrap_or_default(),
            host: get_s(item, "holder_host").unwrap_or_default(),
            pid: get_n(item, "holder_pid").unwrap_or(0) as u32,
            operation: get_s(item, "operation").unwrap_or_default(),
            since: get_n(item, "since").unwrap_or(0),
        })
    }
}

/// What acquiring a plan's devices came to.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Acquired {
    pub ours: Vec<DeviceKey>,
    /// Held by another plan, with who holds it.
    pub held: Vec<(DeviceKey, Holder)>,
}

/// What a send must leave with its lease, so a host that takes the plan over can tell whether
/// it went: an appliance's jobs before the create, a Snow batch's client token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Sending {
    Panorama { known_jobs: Vec<String> },
    Snow { token: String },
}

/// How the check before a send ended when it did not let the send go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refused {
    /// Another host took the plan over (or the device's lease is gone): nothing is sent.
    Lost,
    /// The table did not answer: nothing is sent until it does.
    Unreachable(ApiError),
}

const HOLDER: &str = "#plan, #epoch, #holder_arn, #holder_host, #holder_pid, #operation, #since";

fn build(u: aws_sdk_dynamodb::types::builders::UpdateBuilder) -> Result<Update, ApiError> {
    u.build()
        .map_err(|e| ApiError::new(ErrorKind::Other, "BuildError", e.to_string()))
}

impl Team {
    fn acquire_update(
        &self,
        lease: &PlanLease,
        operation: &str,
        key_: &DeviceKey,
        taking: Option<&Holder>,
    ) -> Result<TransactWriteItem, ApiError> {
        let update = "SET #plan = :p, #epoch = :e, #holder_arn = :arn, #holder_host = :host, \
                      #holder_pid = :pid, #operation = :op, #since = :now \
                      REMOVE #token, #known_jobs, #sent_at, #expires";
        // Free, ours already (a retried transaction, a resume), or held by a plan that ended
        // without releasing it (named exactly, so a live holder is never displaced).
        let (condition, mut vals) = match taking {
            Some(h) => (
                "#plan = :old AND #epoch = :olde",
                table::values([(":old", s(h.plan.clone())), (":olde", n(h.epoch))]),
            ),
            None => (
                "attribute_not_exists(#plan) OR (#plan = :p AND #epoch <= :e)",
                Item::new(),
            ),
        };
        vals.extend(table::values([
            (":p", s(lease.plan.clone())),
            (":e", n(lease.epoch)),
            (":arn", s(self.me.arn.clone())),
            (":host", s(self.me.host.clone())),
            (":pid", n(self.me.pid)),
            (":op", s(operation)),
            (":now", n(crate::fleet::now())),
        ]));
        let u = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key("devices", &device_sk(key_))))
            .update_expression(update)
            .condition_expression(condition)
            .set_expression_attribute_names(Some(names(&[update, condition])))
            .set_expression_attribute_values(Some(vals));
        Ok(TransactWriteItem::builder().update(build(u)?).build())
    }

    /// Acquires a plan's devices: all of a batch or none, the batch tried again without the
    /// devices another plan holds. A device held by a plan that has ended is taken.
    pub async fn acquire(
        &self,
        lease: &PlanLease,
        operation: &str,
        keys: &[DeviceKey],
    ) -> Result<Acquired, ApiError> {
        let mut out = Acquired::default();
        for chunk in keys.chunks(100) {
            let mut left: Vec<DeviceKey> = chunk.to_vec();
            while !left.is_empty() {
                let items = left
                    .iter()
                    .map(|k| self.acquire_update(lease, operation, k, None))
                    .collect::<Result<Vec<_>, _>>()?;
                match self.transact(items).await? {
                    None => {
                        out.ours.append(&mut left);
                    }
                    Some(refused) => {
                        let held: Vec<DeviceKey> =
                            refused.iter().map(|&i| left[i].clone()).collect();
                        left.retain(|k| !held.contains(k));
                        out.held
                            .extend(self.held_elsewhere(lease, operation, &held).await?);
                        // Those taken from an ended plan are ours after all.
                        let taken: Vec<DeviceKey> = held
                            .iter()
                            .filter(|k| !out.held.iter().any(|(h, _)| h == *k))
                            .cloned()
                            .collect();
                        out.ours.extend(taken);
                    }
                }
            }
        }
        Ok(out)
    }

    /// Devices a transaction could not take: each one's holder, and, where that plan has
    /// ended, the device taken from it. Returns those still held by a live plan.
    async fn held_elsewhere(
        &self,
        lease: &PlanLease,
        operation: &str,
        keys: &[DeviceKey],
    ) -> Result<Vec<(DeviceKey, Holder)>, ApiError> {
        let holders = self.holders(keys).await?;
        let mut out = Vec::new();
        for k in keys {
            let Some(h) = holders.get(k) else {
                // Released meanwhile: free now, so take it.
                let item = self.acquire_update(lease, operation, k, None)?;
                if self.transact(vec![item]).await?.is_some() {
                    out.extend(self.holders(std::slice::from_ref(k)).await?);
                }
                continue;
            };
            if self.plan_ended(&h.plan).await? {
                let item = self.acquire_update(lease, operation, k, Some(h))?;
                if self.transact(vec![item]).await?.is_none() {
                    continue;
                }
            }
            out.push((k.clone(), h.clone()));
        }
        Ok(out)
    }

    /// Runs a transaction: `None` when it went through, else the positions of the items whose
    /// condition did not hold.
    pub(super) async fn transact(
        &self,
        items: Vec<TransactWriteItem>,
    ) -> Result<Option<Vec<usize>>, ApiError> {
        use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
        let sent = self
            .db
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await;
        let err = match sent {
            Ok(_) => return Ok(None),
            Err(e) => e,
        };
        if let Some(TransactWriteItemsError::TransactionCanceledException(c)) =
            err.as_service_error()
        {
            let refused: Vec<usize> = c
                .cancellation_reasons()
                .iter()
                .enumerate()
                .filter(|(_, r)| r.code() == Some("ConditionalCheckFailed"))
                .map(|(i, _)| i)
                .collect();
            if !refused.is_empty() {
                return Ok(Some(refused));
            }
        }
        Err(ApiError::from_sdk(err))
    }

    /// Who holds each of these devices, read as of now (consistent reads, 100 at a time).
    pub async fn holders(
        &self,
        keys: &[DeviceKey],
    ) -> Result<HashMap<DeviceKey, Holder>, ApiError> {
        use aws_sdk_dynamodb::types::KeysAndAttributes;
        let mut out = HashMap::new();
        for chunk in keys.chunks(100) {
            let mut wanted: Vec<Item> = chunk
                .iter()
                .map(|k| key("devices", &device_sk(k)))
                .collect();
            // Keys DynamoDB leaves unread under load come back to be asked again.
            while !wanted.is_empty() {
                let ask = KeysAndAttributes::builder()
                    .set_keys(Some(std::mem::take(&mut wanted)))
                    .consistent_read(true)
                    .build()
                    .map_err(|e| ApiError::new(ErrorKind::Other, "BuildError", e.to_string()))?;
                let got = self
                    .db
                    .batch_get_item()
                    .request_items(&self.table, ask)
                    .send()
                    .await
                    .map_err(ApiError::from_sdk)?;
                for item in got
                    .responses()
                    .and_then(|r| r.get(&self.table))
                    .into_iter()
                    .flatten()
                {
                    let Some(k) = get_s(item, "sk").and_then(|sk| device_of(&sk)) else {
                        continue;
                    };
                    if let Some(h) = Holder::of(item) {
                        out.insert(k, h);
                    }
                }
                if let Some(again) = got.unprocessed_keys().and_then(|u| u.get(&self.table)) {
                    wanted = again.keys().to_vec();
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
            }
        }
        Ok(out)
    }

    /// Every device the team holds now, with its holder; a device whose plan has ended is
    /// free (its plan stopped following it), whatever its item still says.
    pub async fn leased(&self) -> Result<Vec<(DeviceKey, Holder)>, ApiError> {
        let plans = self.plans().await?;
        self.leased_among(&plans).await
    }

    /// The same, given the team's plans as just read.
    pub async fn leased_among(
        &self,
        plans: &[super::PlanRow],
    ) -> Result<Vec<(DeviceKey, Holder)>, ApiError> {
        let items = table::query_all(&self.db, &self.table, "devices", None).await?;
        let ended: std::collections::HashSet<&str> = plans
            .iter()
            .filter(|r| r.ended())
            .map(|r| r.plan.as_str())
            .collect();
        Ok(items
            .iter()
            .filter_map(|i| Some((device_of(&get_s(i, "sk")?)?, Holder::of(i)?)))
            .filter(|(_, h)| !ended.contains(h.plan.as_str()))
            .collect())
    }

    /// Right before a send: the devices are still this plan's at this epoch, and what the send
    /// needs is left with them. All of a Snow batch or none.
    pub async fn check(
        &self,
        lease: &PlanLease,
        keys: &[DeviceKey],
        sending: &Sending,
    ) -> Result<(), Refused> {
        let (set, value) = match sending {
            Sending::Panorama { known_jobs } => ("#known_jobs = :v", list_s(known_jobs)),
            Sending::Snow { token } => ("#token = :v", s(token.clone())),
        };
        let update = format!("SET #sent_at = :now, {set}");
        let condition = "#plan = :p AND #epoch = :e";
        let mut items = Vec::new();
        for k in keys {
            let u = Update::builder()
                .table_name(&self.table)
                .set_key(Some(key("devices", &device_sk(k))))
                .update_expression(&update)
                .condition_expression(condition)
                .set_expression_attribute_names(Some(names(&[&update, condition])))
                .set_expression_attribute_values(Some(table::values([
                    (":p", s(lease.plan.clone())),
                    (":e", n(lease.epoch)),
                    (":now", n(crate::fleet::now())),
                    (":v", value.clone()),
                ])));
            items.push(
                TransactWriteItem::builder()
                    .update(build(u).map_err(Refused::Unreachable)?)
                    .build(),
            );
        }
        match self.transact(items).await {
            Ok(None) => Ok(()),
            Ok(Some(_)) => Err(Refused::Lost),
            Err(e) if failed_condition(&e) => Err(Refused::Lost),
            Err(e) => Err(Refused::Unreachable(e)),
        }
    }

    /// Lets a device go once its operation is final, leaving its outcome for the team.
    pub async fn release(
        &self,
        lease: &PlanLease,
        key_: &DeviceKey,
        outcome: &str,
        resource: Option<&str>,
        error: Option<&str>,
    ) -> Result<(), ApiError> {
        let update = format!(
            "REMOVE {HOLDER}, #token, #known_jobs, #sent_at \
             SET #last_plan = :p, #outcome = :o, #resource = :r, #error = :err, \
             #ended_at = :now, #expires = :ttl"
        );
        let condition = "#plan = :p AND #epoch = :e";
        let now = crate::fleet::now();
        // Not ours any more (taken over): the new owner releases it.
        table::update_if(
            &self.db,
            &self.table,
            key("devices", &device_sk(key_)),
            &update,
            condition,
            [
                (":p", s(lease.plan.clone())),
                (":e", n(lease.epoch)),
                (":o", s(outcome)),
                (":r", s(resource.unwrap_or("-"))),
                (":err", s(error.unwrap_or("-"))),
                (":now", n(now)),
                (":ttl", n(now + table::KEEP_SECS)),
            ],
        )
        .await
        .map(drop)
    }

    /// After a takeover: the plan's devices move to the new epoch, each only if it still names
    /// the plan at the epoch the taker replaced. What a send left with them is kept.
    pub async fn adopt(
        &self,
        lease: &PlanLease,
        was: u64,
        keys: &[DeviceKey],
    ) -> Result<Vec<DeviceKey>, ApiError> {
        let update =
            "SET #epoch = :e, #holder_arn = :arn, #holder_host = :host, #holder_pid = :pid";
        let condition = "#plan = :p AND #epoch = :was";
        let mut adopted = Vec::new();
        for chunk in keys.chunks(100) {
            let mut left: Vec<DeviceKey> = chunk.to_vec();
            while !left.is_empty() {
                let mut items = Vec::new();
                for k in &left {
                    let u = Update::builder()
                        .table_name(&self.table)
                        .set_key(Some(key("devices", &device_sk(k))))
                        .update_expression(update)
                        .condition_expression(condition)
                        .set_expression_attribute_names(Some(names(&[update, condition])))
                        .set_expression_attribute_values(Some(table::values([
                            (":p", s(lease.plan.clone())),
                            (":e", n(lease.epoch)),
                            (":was", n(was)),
                            (":arn", s(self.me.arn.clone())),
                            (":host", s(self.me.host.clone())),
                            (":pid", n(self.me.pid)),
                        ])));
                    items.push(TransactWriteItem::builder().update(build(u)?).build());
                }
                match self.transact(items).await? {
                    None => adopted.append(&mut left),
                    Some(refused) => {
                        let gone: Vec<DeviceKey> =
                            refused.iter().map(|&i| left[i].clone()).collect();
                        left.retain(|k| !gone.contains(k));
                    }
                }
            }
        }
        Ok(adopted)
    }

    /// What a plan's devices hold for a host taking it over: each device's lease as left.
    pub async fn device_items(
        &self,
        keys: &[DeviceKey],
    ) -> Result<HashMap<DeviceKey, DeviceState>, ApiError> {
        let items = table::query_all(&self.db, &self.table, "devices", None).await?;
        Ok(items
            .iter()
            .filter_map(|i| {
                let k = device_of(&get_s(i, "sk")?)?;
                keys.contains(&k).then(|| (k, DeviceState::of(i)))
            })
            .collect())
    }
}

/// A device's lease as a taker reads it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeviceState {
    pub plan: Option<String>,
    pub epoch: u64,
    /// A send's jobs before it (an appliance) or token (a Snow batch): it may have gone.
    pub known_jobs: Option<Vec<String>>,
    pub token: Option<String>,
    pub sent_at: Option<u64>,
    /// The last plan's outcome, once released.
    pub last_plan: Option<String>,
    pub outcome: Option<String>,
    pub resource: Option<String>,
}

impl DeviceState {
    fn of(i: &Item) -> Self {
        Self {
            plan: get_s(i, "plan"),
            epoch: get_n(i, "epoch").unwrap_or(0),
            known_jobs: i
                .get("known_jobs")
                .map(|_| table::get_list_s(i, "known_jobs")),
            token: get_s(i, "token"),
            sent_at: get_n(i, "sent_at"),
            last_plan: get_s(i, "last_plan"),
            outcome: get_s(i, "outcome"),
            resource: get_s(i, "resource").filter(|r| r != "-"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_attribute_an_expression_names_gets_a_name() {
        let got = names(&["SET #plan = :p, #epoch = :e", "attribute_not_exists(#plan)"]);
        assert_eq!(got.len(), 2);
        assert_eq!(got["#plan"], "plan");
        assert_eq!(got["#epoch"], "epoch");
    }

    #[test]
    fn a_holder_reads_as_the_operator_is_told() {
        let h = Holder {
            arn: "arn:aws:iam::123456789012:user/alice".into(),
            host: "jump-1".into(),
            pid: 42,
            plan: "3f2a9c1d-0000".into(),
            epoch: 1,
            operation: "OTA 5.0.21".into(),
            since: 1_800_000_000,
        };
        assert_eq!(
            h.text(),
            "held by arn:aws:iam::123456789012:user/alice on jump-1 (plan 3f2a9c1d-0000, OTA 5.0.21, since 2027-01-15 08:00:00 UTC)"
        );
    }
}
