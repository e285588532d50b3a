//! The account's Panorama quota, shared by the team's plans in it. Each live plan that sends
//! to an account and region keeps an item in that scope's partition, renewed every few
//! seconds; each host reads the partition back and paces its calls at its plans' share.
//!
//! | pk                      | sk      | what                                              |
//! |-------------------------|---------|---------------------------------------------------|
//! | `quota#ACCOUNT#REGION`  | plan id | whether it is sending creates, until when it holds |
//!
//! An item not renewed is gone once its `until` has passed by the reader's clock: a host
//! that crashed gives its share back within [`HOLD_MS`]. Only the share depends on the
//! clocks agreeing; the leases that keep two plans off one device do not.

use aws_sdk_dynamodb::types::AttributeValue;

use super::Team;
use super::table::{self, get_n, get_s, key, n, s};
use crate::aws::{ApiError, ErrorKind};

/// How long a plan's share item holds without being renewed.
pub const HOLD_MS: u64 = 15_000;

/// One plan's part in a scope's quota.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    pub plan: String,
    /// It has creates to send now (reads alone take no create turns).
    pub sending: bool,
}

/// The scope's partition key: the account and region whose quota it is.
pub fn partition(scope: &str) -> String {
    format!("quota#{scope}")
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Team {
    /// Writes this host's plans in the scope (for the next [`HOLD_MS`]), takes out those that
    /// have left it, and reads back every live plan there, this host's and the others', in
    /// plan order.
    pub async fn share_quota(
        &self,
        scope: &str,
        mine: &[Member],
        left: &[String],
    ) -> Result<Vec<Member>, ApiError> {
        let pk = partition(scope);
        let until = now_ms() + HOLD_MS;
        for m in mine {
            self.db
                .put_item()
                .table_name(&self.table)
                .set_item(Some(key(&pk, &m.plan)))
                .item("sending", AttributeValue::Bool(m.sending))
                .item("until", n(until))
                .item("host", s(self.who()))
                .item("expires", n(crate::fleet::now() + 3600))
                .send()
                .await
                .map_err(ApiError::from_sdk)?;
        }
        for plan in left {
            self.leave_quota(scope, plan).await?;
        }
        let items = table::query_all(&self.db, &self.table, &pk, None).await?;
        let now = now_ms();
        Ok(items
            .iter()
            .filter(|i| get_n(i, "until").is_some_and(|u| u > now))
            .filter_map(|i| {
                Some(Member {
                    plan: get_s(i, "sk")?,
                    sending: table::get_bool(i, "sending"),
                })
            })
            .collect())
    }

    /// The plan no longer draws on the scope's quota.
    pub async fn leave_quota(&self, scope: &str, plan: &str) -> Result<(), ApiError> {
        match self
            .db
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(&partition(scope), plan)))
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => {
                let e = ApiError::from_sdk(e);
                // Already gone is gone.
                if e.kind == ErrorKind::NotFound {
                    Ok(())
                } else {
                    Err(e)
                }
            }
        }
    }
}

/// This host's part of a scope's quota, from every live plan there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Share {
    /// How many plans read from the scope, and how many of them are this host's.
    pub readers: usize,
    pub my_readers: usize,
    /// The turns of the account's create grid: `senders` plans send, and this host's plans
    /// take the turns at these positions (one after the others' when none of them is
    /// sending).
    pub senders: usize,
    pub my_turns: Vec<usize>,
}

impl Share {
    /// The whole quota: this host alone in the scope.
    pub fn whole() -> Self {
        Self {
            readers: 1,
            my_readers: 1,
            senders: 1,
            my_turns: vec![0],
        }
    }

    /// From the live plans (in plan order) and which of them are this host's.
    pub fn of(members: &[Member], mine: &[Member]) -> Self {
        let is_mine = |p: &str| mine.iter().any(|m| m.plan == p);
        let senders: Vec<&Member> = members.iter().filter(|m| m.sending).collect();
        let my_turns: Vec<usize> = senders
            .iter()
            .enumerate()
            .filter(|(_, m)| is_mine(&m.plan))
            .map(|(i, _)| i)
            .collect();
        let my_readers = members.iter().filter(|m| is_mine(&m.plan)).count();
        if my_readers == 0 {
            // This host's write is not read back yet (or it has none): it counts itself.
            return Self {
                readers: members.len() + 1,
                my_readers: 1,
                senders: senders.len() + 1,
                my_turns: vec![senders.len()],
            };
        }
        // None of this host's plans sends: should one start before the next reading, it
        // takes a turn after the others' rather than one of theirs.
        if my_turns.is_empty() {
            return Self {
                readers: members.len(),
                my_readers,
                senders: senders.len() + 1,
                my_turns: vec![senders.len()],
            };
        }
        Self {
            readers: members.len(),
            my_readers,
            senders: senders.len(),
            my_turns,
        }
    }

    /// The fraction of the read quota this host may use.
    pub fn reads(&self) -> f64 {
        self.my_readers as f64 / self.readers.max(1) as f64
    }

    /// How many other plans share the scope.
    pub fn others(&self) -> usize {
        self.readers.saturating_sub(self.my_readers)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(plan: &str, sending: bool) -> Member {
        Member {
            plan: plan.into(),
            sending,
        }
    }

    #[test]
    fn each_plan_takes_its_share_of_turns_and_reads() {
        let all = [m("a", true), m("b", false), m("c", true), m("d", true)];
        let share = Share::of(&all, &[m("c", true), m("b", false)]);
        assert_eq!(share.senders, 3, "a, c and d send");
        assert_eq!(share.my_turns, vec![1], "c is the second sender");
        assert_eq!((share.my_readers, share.readers), (2, 4));
        assert_eq!(share.others(), 2);
        assert!((share.reads() - 0.5).abs() < 1e-9);
        assert_eq!(Share::of(&[m("a", true)], &[m("a", true)]), Share::whole());
    }

    #[test]
    fn a_host_whose_plans_do_not_send_would_take_a_turn_after_the_others() {
        let share = Share::of(&[m("a", true), m("b", false)], &[m("b", false)]);
        assert_eq!((share.senders, share.my_turns.clone()), (2, vec![1]));
        assert_eq!(share.others(), 1);
    }

    #[test]
    fn a_host_not_yet_read_back_counts_itself_last() {
        let share = Share::of(&[m("a", true)], &[m("z", true)]);
        assert_eq!((share.senders, share.my_turns.clone()), (2, vec![1]));
        assert_eq!(share.readers, 2);
    }
}
