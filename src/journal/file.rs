//! The journal's file: where it lives, appending records durably, reading them back.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;

use super::Record;

/// Overrides where the journal lives (tests, several operators on one host).
pub const PATH_VARIABLE: &str = "FLEETDECK_JOURNAL";

pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// `$FLEETDECK_JOURNAL`, else `journal.jsonl` in the XDG state directory
/// (`$XDG_STATE_HOME/fleetdeck`, by default `~/.local/state/fleetdeck`).
pub fn default_path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(PATH_VARIABLE).filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    let dirs = directories::ProjectDirs::from("", "", "fleetdeck")?;
    Some(dirs.state_dir()?.join("journal.jsonl"))
}

pub struct Journal {
    path: PathBuf,
    file: Mutex<File>,
}

impl Journal {
    pub fn open(path: &Path) -> anyhow::Result<Self> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("cannot open the journal {}", path.display()))?;
        Ok(Self {
            path: path.to_path_buf(),
            file: Mutex::new(file),
        })
    }

    /// Why appends fail, once one has.
    pub fn broken(&self) -> Option<String> {
        None
    }

    /// Appends one record and waits for it to reach the disk.
    pub fn append(&self, record: &Record) -> anyhow::Result<()> {
        let mut line = serde_json::to_vec(record).context("cannot encode a journal record")?;
        line.push(b'\n');
        let mut file = self
            .file
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        file.write_all(&line)
            .and_then(|()| file.sync_data())
            .with_context(|| format!("cannot write the journal {}", self.path.display()))
    }
}

/// Every record in a journal file. A last line cut short by a crash is left out.
pub fn read(path: &Path) -> anyhow::Result<Vec<Record>> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(e).with_context(|| format!("cannot read the journal {}", path.display()));
        }
    };
    let mut out = Vec::new();
    for line in BufReader::new(file).lines() {
        let line = line.with_context(|| format!("cannot read the journal {}", path.display()))?;
        if let Ok(record) = serde_json::from_str(&line) {
            out.push(record);
        }
    }
    Ok(out)
}
