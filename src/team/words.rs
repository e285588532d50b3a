//! Words to a team plan's rollout (pause, promote, abort) left in the team's table for the
//! host that runs it. The owner takes pending words at each heartbeat, applies and journals
//! them, then answers; a sender whose word nobody takes in time takes it back, so nothing
//! changes behind its back.

use std::time::Duration;

use super::Team;
use super::plans::PlanRow;
use super::table::{self, failed_condition, get_n, get_s, key, n, s};
use crate::aws::{ApiError, ErrorKind};
use crate::ops::rollout::{Cause, Control};

/// A word to a plan's rollout in the team's table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Word {
    pub plan: String,
    pub sk: String,
    pub control: Control,
    pub by: Cause,
    pub at: u64,
}

impl Team {
    /// Leaves a word for the plan's owner, wherever it runs.
    pub async fn send_word(
        &self,
        plan: &str,
        control: Control,
        by: &Cause,
    ) -> Result<Word, ApiError> {
        let at = crate::fleet::now();
        let word = Word {
            plan: plan.to_string(),
            sk: format!("word#{at:012}#{}", uuid::Uuid::new_v4()),
            control,
            by: by.clone(),
            at,
        };
        let by_json = serde_json::to_string(by)
            .map_err(|e| ApiError::new(ErrorKind::Other, "Serialize", e.to_string()))?;
        self.db
            .put_item()
            .table_name(&self.table)
            .set_item(Some(key(&format!("plan#{plan}"), &word.sk)))
            .item("control", s(control.word()))
            .item("by", s(by_json))
            .item("at", n(at))
            .item("status", s("pending"))
            .item("expires", n(at + table::KEEP_SECS))
            .send()
            .await
            .map_err(ApiError::from_sdk)?;
        Ok(word)
    }

    /// The words waiting for a plan, oldest first.
    pub async fn pending_words(&self, plan: &str) -> Result<Vec<Word>, ApiError> {
        let items = table::query_all(
            &self.db,
            &self.table,
            &format!("plan#{plan}"),
            Some("word#"),
        )
        .await?;
        Ok(items
            .iter()
            .filter(|i| get_s(i, "status").as_deref() == Some("pending"))
            .filter_map(|i| {
                let control = Control::ALL
                    .into_iter()
                    .find(|c| Some(c.word()) == get_s(i, "control").as_deref())?;
                Some(Word {
                    plan: plan.to_string(),
                    sk: get_s(i, "sk")?,
                    control,
                    by: serde_json::from_str(&get_s(i, "by")?).ok()?,
                    at: get_n(i, "at").unwrap_or(0),
                })
            })
            .collect())
    }

    /// Answers a word once it was applied (and journaled) or refused: only a word still
    /// pending (a sender who withdrew it first is not answered).
    pub async fn answer_word(
        &self,
        w: &Word,
        applied: bool,
        detail: &str,
    ) -> Result<bool, ApiError> {
        let update = "SET #status = :st, #detail = :d, #by_owner = :owner";
        let condition = "#status = :pending";
        table::update_if(
            &self.db,
            &self.table,
            key(&format!("plan#{}", w.plan), &w.sk),
            update,
            condition,
            [
                (":st", s(if applied { "applied" } else { "refused" })),
                (":d", s(detail)),
                (":owner", s(self.who())),
                (":pending", s("pending")),
            ],
        )
        .await
    }

    /// A word's answer, once given: applied or not, what it said, and who gave it. A word no
    /// longer in the table (removed by hand, or by TTL) will never be answered: an error.
    pub async fn word_answer(&self, w: &Word) -> Result<Option<(bool, String, String)>, ApiError> {
        let got = table::get(
            &self.db,
            &self.table,
            key(&format!("plan#{}", w.plan), &w.sk),
        )
        .await?;
        let Some(i) = got.as_ref() else {
            return Err(ApiError::new(
                ErrorKind::Other,
                "WordGone",
                format!(
                    "the word to plan {} is no longer in the team table: it was removed before its owner answered",
                    w.plan
                ),
            ));
        };
        Ok(match get_s(i, "status").as_deref() {
            Some("applied") | Some("refused") => Some((
                get_s(i, "status").as_deref() == Some("applied"),
                get_s(i, "detail").unwrap_or_default(),
                get_s(i, "by_owner").unwrap_or_default(),
            )),
            _ => None,
        })
    }

    /// Takes back a word nobody took: true when it was still pending, so it never applies.
    pub async fn withdraw_word(&self, w: &Word) -> Result<bool, ApiError> {
        let sent = self
            .db
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(&format!("plan#{}", w.plan), &w.sk)))
            .condition_expression("#status = :pending")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":pending", s("pending"))
            .send()
            .await
            .map_err(ApiError::from_sdk);
        match sent {
            Ok(_) => Ok(true),
            Err(e) if failed_condition(&e) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Waits for the owner's answer to a word: `Ok` with what it did, `Err` with why nothing
    /// changed (refused, or not taken in time and taken back) or why it is not known.
    pub async fn await_answer(&self, ask: &Word, row: &PlanRow) -> Result<String, String> {
        let word = ask.control.word();
        let plan = row.plan.as_str();
        let owner = row.owner_text();
        let refused = |e: ApiError| match e.code.as_str() {
            "WordGone" => format!(
                "{}: see `fleetdeck team plans` for what the plan did",
                e.message
            ),
            _ => super::refused(&self.table, &e),
        };
        // The owner looks at every heartbeat: two of them, and the time a call may take.
        let take_within = self.settings.heartbeat() * 2 + Duration::from_secs(10);
        let deadline = tokio::time::Instant::now() + take_within;
        let (applied, detail, by) = loop {
            if let Some(a) = self.word_answer(ask).await.map_err(refused)? {
                break a;
            }
            if tokio::time::Instant::now() >= deadline {
                if self.withdraw_word(ask).await.map_err(refused)? {
                    return Err(format!(
                        "{owner} runs plan {plan} but did not take the {word} within {}s: it was taken back, nothing changed. Is the owner still running (see `fleetdeck team plans`)?",
                        take_within.as_secs()
                    ));
                }
                // Taken just now: its answer follows.
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        };
        if applied {
            Ok(format!(
                "{word}: applied by {by} running plan {plan}: {detail}"
            ))
        } else {
            Err(format!(
                "{word} refused by {by} running plan {plan}: {detail}. Nothing changed."
            ))
        }
    }
}
