//! Words to a rollout from another process (`fleetdeck run --promote/--pause/--abort PLAN`).
//! The process that runs the plan holds the journal's lock, so a word is a file beside the
//! journal, `<journal>.control/<plan>.<id>.ask`, with who sent it. The holder takes it,
//! applies it to the rollout's state, journals the decision, and only then answers under the
//! same id (`<id>.answer`): the sender waits for that answer, and a word no one took is
//! withdrawn, so it can never be taken later and applied unseen.

use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::ops::rollout::{Cause, Control};

/// A word for a rollout, as its sender left it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ask {
    pub id: String,
    pub plan: String,
    pub control: Control,
    pub by: Cause,
    /// When it was left (epoch seconds).
    pub at: u64,
}

/// What became of a word: applied to the rollout (and journaled), or refused, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Answer {
    pub id: String,
    pub applied: bool,
    pub detail: String,
}

/// How long a sender waits for its word to be taken; a word older than this is not applied
/// (its sender has taken it back, or died before it could).
pub const ASK_LIFETIME: Duration = Duration::from_secs(15);

/// Answers nobody came for are swept after this.
const ANSWER_LIFETIME: Duration = Duration::from_secs(120);

/// The operator of this process: the login name, the host, the process, and how they speak
/// (the terminal UI, another shell).
pub fn operator(via: &str) -> Cause {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .ok()
        .filter(|u| !u.is_empty())
        .or_else(|| {
            nix::unistd::User::from_uid(nix::unistd::getuid())
                .ok()
                .flatten()
                .map(|u| u.name)
        })
        .unwrap_or_else(|| format!("uid {}", nix::unistd::getuid()));
    let host = nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "an unknown host".into());
    Cause::Operator {
        user,
        host,
        pid: std::process::id(),
        via: via.to_string(),
    }
}

/// Where words for the journal's rollouts wait: `<journal>.control/`.
pub fn control_dir(journal: &Path) -> PathBuf {
    let mut name = journal.as_os_str().to_os_string();
    name.push(".control");
    PathBuf::from(name)
}

/// A plan id or a word's id is a UUID: nothing else may name a file.
fn is_id(text: &str) -> bool {
    !text.is_empty() && text.len() <= 64 && text.chars().all(|c| c.is_ascii_hexdigit() || c == '-')
}

/// Writes `bytes` to `path` whole or not at all: a reader never sees half a word.
fn write_whole(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let mut tmp = path.as_os_str().to_os_string();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, bytes).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))
}

fn ask_path(journal: &Path, plan: &str, id: &str) -> PathBuf {
    control_dir(journal).join(format!("{plan}.{id}.ask"))
}

fn answer_path(journal: &Path, id: &str) -> PathBuf {
    control_dir(journal).join(format!("{id}.answer"))
}

/// Leaves a word for the process that runs `plan`.
pub fn send(journal: &Path, plan: &str, control: Control, by: Cause) -> anyhow::Result<Ask> {
    anyhow::ensure!(is_id(plan), "{plan:?} is not a plan id");
    let dir = control_dir(journal);
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .with_context(|| format!("cannot create {}", dir.display()))?;
    let ask = Ask {
        id: uuid::Uuid::new_v4().to_string(),
        plan: plan.to_string(),
        control,
        by,
        at: super::now(),
    };
    write_whole(
        &ask_path(journal, plan, &ask.id),
        &serde_json::to_vec(&ask)?,
    )?;
    Ok(ask)
}

/// Takes back a word not yet taken: true when it was still there (so it will never be
/// applied), false when the holder took it.
pub fn withdraw(journal: &Path, ask: &Ask) -> bool {
    std::fs::remove_file(ask_path(journal, &ask.plan, &ask.id)).is_ok()
}

/// The answer to a word, once there is one (read once: the file goes).
pub fn answer_to(journal: &Path, id: &str) -> Option<Answer> {
    let path = answer_path(journal, id);
    let bytes = std::fs::read(&path).ok()?;
    let answer = serde_json::from_slice(&bytes).ok()?;
    let _ = std::fs::remove_file(&path);
    Some(answer)
}

/// Takes the words waiting for these plans, each once, oldest first. A word too old, or one
/// that cannot be read, is answered as refused and never applied.
pub fn take<'a>(journal: &Path, plans: impl Iterator<Item = &'a str>) -> Vec<Ask> {
    let dir = control_dir(journal);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let plans: Vec<&str> = plans.collect();
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(".answer") {
            sweep(&entry);
            continue;
        }
        let Some(stem) = name.strip_suffix(".ask") else {
            continue;
        };
        let Some((plan, id)) = stem.split_once('.') else {
            continue;
        };
        if !plans.contains(&plan) || !is_id(id) {
            continue;
        }
        let path = entry.path();
        let read = std::fs::read(&path);
        // Taken means removed: a sender that withdraws it now finds it gone, and waits.
        if std::fs::remove_file(&path).is_err() {
            continue;
        }
        let ask: Option<Ask> = read.ok().and_then(|b| serde_json::from_slice(&b).ok());
        match ask {
            Some(ask) if super::now().saturating_sub(ask.at) <= ASK_LIFETIME.as_secs() => {
                out.push(ask)
            }
            _ => {
                let _ = answer(
                    journal,
                    &Answer {
                        id: id.to_string(),
                        applied: false,
                        detail:
                            "the word was too old or unreadable when it was taken; nothing changed"
                                .into(),
                    },
                );
            }
        }
    }
    out.sort_by_key(|a| a.at);
    out
}

/// An answer older than its lifetime was not read by its sender (gone): it goes.
fn sweep(entry: &std::fs::DirEntry) {
    let old = entry
        .metadata()
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok())
        .is_some_and(|age| age > ANSWER_LIFETIME);
    if old {
        let _ = std::fs::remove_file(entry.path());
    }
}

/// Answers a word, after what it asked was applied and journaled (or refused).
pub fn answer(journal: &Path, answer: &Answer) -> anyhow::Result<()> {
    anyhow::ensure!(is_id(&answer.id), "{:?} is not a word's id", answer.id);
    write_whole(
        &answer_path(journal, &answer.id),
        &serde_json::to_vec(answer)?,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir() -> PathBuf {
        let d = std::env::temp_dir().join(format!("fleetdeck-control-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&d).unwrap();
        d.join("journal.jsonl")
    }

    const PLAN: &str = "3f2a9c1d-0000-4000-8000-000000000001";

    #[test]
    fn a_word_is_taken_once_and_answered_under_its_id() {
        let j = dir();
        let by = operator("a test");
        let ask = send(&j, PLAN, Control::Promote, by.clone()).unwrap();
        // Another plan's holder sees nothing of it.
        assert!(take(&j, ["00000000-0000-4000-8000-000000000000"].into_iter()).is_empty());
        let taken = take(&j, [PLAN].into_iter());
        assert_eq!(taken, vec![ask.clone()]);
        assert!(take(&j, [PLAN].into_iter()).is_empty(), "taken once");
        // Taken: the sender can no longer withdraw it, and waits for the answer.
        assert!(!withdraw(&j, &ask));
        assert_eq!(answer_to(&j, &ask.id), None);
        let a = Answer {
            id: ask.id.clone(),
            applied: true,
            detail: "wave 2/2 begins".into(),
        };
        answer(&j, &a).unwrap();
        assert_eq!(answer_to(&j, &ask.id), Some(a));
        assert_eq!(answer_to(&j, &ask.id), None, "read once");
    }

    #[test]
    fn a_withdrawn_word_is_never_taken() {
        let j = dir();
        let ask = send(&j, PLAN, Control::Abort, operator("a test")).unwrap();
        assert!(withdraw(&j, &ask));
        assert!(take(&j, [PLAN].into_iter()).is_empty());
    }

    #[test]
    fn a_stale_word_is_refused_not_applied() {
        let j = dir();
        let mut ask = send(&j, PLAN, Control::Promote, operator("a test")).unwrap();
        ask.at -= ASK_LIFETIME.as_secs() + 5;
        write_whole(
            &ask_path(&j, PLAN, &ask.id),
            &serde_json::to_vec(&ask).unwrap(),
        )
        .unwrap();
        assert!(take(&j, [PLAN].into_iter()).is_empty());
        let a = answer_to(&j, &ask.id).expect("answered");
        assert!(!a.applied, "{a:?}");
    }

    #[test]
    fn a_plan_id_names_files_and_nothing_else_does() {
        let j = dir();
        assert!(send(&j, "../etc/passwd", Control::Pause, operator("a test")).is_err());
        assert!(is_id(PLAN));
        assert!(!is_id("a/b"));
    }
}
