//! `fleetdeck run --promote/--pause/--abort PLAN`: a word for the process that runs a plan,
//! left in the mailbox beside the journal it holds. The word is answered only once it was
//! applied and journaled, or refused with the reason; a word nobody takes in time is taken
//! back, so nothing changes behind the sender's back.

use std::time::Duration;

use anyhow::{Context, bail};

use super::RunEnd;
use crate::cli::RunArgs;
use crate::journal::{self, control};
use crate::ops::rollout::Control;

/// How long the holder has to take a word: it looks at every poll (2 s).
const TAKE_WITHIN: Duration = control::ASK_LIFETIME;
/// How long a taken word's answer may take: it is applied and journaled at once.
const ANSWER_WITHIN: Duration = Duration::from_secs(10);

/// Leaves the word beside the journal and waits for the answer of the process holding it.
pub async fn control(args: &RunArgs, plan: &str, word: Control) -> anyhow::Result<RunEnd> {
    if let Some(team) = crate::tui::team_config(&args.session)? {
        return team_control(&team, plan, word).await;
    }
    let path = args
        .session
        .journal
        .clone()
        .or_else(journal::default_path)
        .context("no journal path: pass --journal PATH (the one the rollout runs with)")?;
    let records = journal::read(&path)
        .with_context(|| format!("cannot read the journal {}", path.display()))?;
    let plan = &unfinished_named(&journal::unfinished(&records), plan, &path)?;
    let pid = match journal::holder(&path) {
        Ok(Some(pid)) => pid,
        Ok(None) => bail!(
            "no fleetdeck process is running plan {plan} (nothing holds the journal {}); carry it on with:\n  fleetdeck run --resume {plan}",
            path.display()
        ),
        Err(e) => bail!("{e}"),
    };
    let holder = pid.map_or_else(|| "the process".to_string(), |p| format!("process {p}"));
    let ask = control::send(&path, plan, word, control::operator("another shell"))?;
    // A signal while waiting takes the word back when it was not taken yet.
    let waited = tokio::select! {
        a = wait(&path, &ask.id, TAKE_WITHIN) => a,
        _ = tokio::signal::ctrl_c() => {
            if control::withdraw(&path, &ask) {
                bail!("interrupted: the {} was taken back before {holder} took it; nothing changed", word.word());
            }
            bail!("interrupted after {holder} took the {}: see `fleetdeck journal show {plan}` for what it did", word.word());
        }
    };
    let answer = match waited {
        Some(a) => a,
        // Not taken: taken back, so it can never be applied unseen.
        None if control::withdraw(&path, &ask) => bail!(
            "{holder} holds the journal but did not take the {} within {}s: nothing changed. Is it the one running plan {plan}?",
            word.word(),
            TAKE_WITHIN.as_secs()
        ),
        // Taken just now: its answer follows.
        None => match wait(&path, &ask.id, ANSWER_WITHIN).await {
            Some(a) => a,
            None => bail!(
                "{holder} took the {} but gave no answer within {}s: see `fleetdeck journal show {plan}` for whether it was applied",
                word.word(),
                ANSWER_WITHIN.as_secs()
            ),
        },
    };
    if !answer.applied {
        bail!(
            "{} refused by {holder} running plan {plan}: {}. Nothing changed.",
            word.word(),
            answer.detail
        );
    }
    eprintln!(
        "{}: applied by {holder} running plan {plan}: {}",
        word.word(),
        answer.detail
    );
    Ok(RunEnd::Succeeded)
}

/// The unfinished plan a word names: its whole id, or the start of one (as the UI and the
/// spinner show it, "3f2a9c1d").
fn unfinished_named(
    open: &[String],
    named: &str,
    path: &std::path::Path,
) -> anyhow::Result<String> {
    let found: Vec<&String> = open.iter().filter(|p| p.starts_with(named)).collect();
    match found.as_slice() {
        [one] if !named.is_empty() => Ok((*one).clone()),
        [] | [_] => bail!(
            "the journal {} has no unfinished plan {named} (see `fleetdeck journal list`)",
            path.display()
        ),
        many => bail!(
            "{named} is the start of {} unfinished plans ({}): give more of the id",
            many.len(),
            many.iter()
                .map(|p| p.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

async fn wait(path: &std::path::Path, id: &str, within: Duration) -> Option<control::Answer> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if let Some(a) = control::answer_to(path, id) {
            return Some(a);
        }
        if tokio::time::Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Team mode: the word goes through the team's table to the plan's owner, wherever it runs;
/// the owner takes it at its next heartbeat and answers once it was applied and journaled.
async fn team_control(
    config: &crate::team::TeamConfig,
    named: &str,
    word: Control,
) -> anyhow::Result<RunEnd> {
    let team = crate::team::Team::connect(config, Duration::from_secs(10))
        .await
        .map_err(anyhow::Error::msg)?;
    let row = team.named(named).await.map_err(anyhow::Error::msg)?;
    let plan = row.plan.as_str();
    let owner = row.owner_text();
    let refused = |e: crate::aws::ApiError| anyhow::anyhow!(crate::team::refused(&team.table, &e));
    let ask = team
        .send_word(plan, word, &team.operator("the team table"))
        .await
        .map_err(refused)?;
    let said = tokio::select! {
        a = team.await_answer(&ask, &row) => a.map_err(anyhow::Error::msg)?,
        _ = tokio::signal::ctrl_c() => {
            if team.withdraw_word(&ask).await.unwrap_or(false) {
                bail!("interrupted: the {} was taken back before {owner} took it; nothing changed", word.word());
            }
            bail!("interrupted: {owner} may have taken the {} already: see `fleetdeck team plans` for what it did", word.word());
        }
    };
    eprintln!("{said}");
    Ok(RunEnd::Succeeded)
}
