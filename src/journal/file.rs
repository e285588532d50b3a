//! The journal's file: where it lives, appending records durably under an advisory lock,
//! reading them back without trusting a single line, and dropping long-ended plans.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::Context;

use super::Record;

/// Overrides where the journal lives (tests, several operators on one host).
pub const PATH_VARIABLE: &str = "FLEETDECK_JOURNAL";

/// A line longer than this is not a record: it is skipped without being held whole.
const MAX_LINE: usize = 1024 * 1024;
/// A journal larger than this is not read (compaction keeps a real one far below).
const MAX_READ: u64 = 256 * 1024 * 1024;
/// Ended plans older than this are dropped when the journal is opened.
pub const RETENTION_SECS: u64 = 30 * 24 * 3600;

pub use crate::fleet::now;

/// "2026-11-25 10:04:05" (UTC) for epoch seconds, as records are shown.
pub fn when(at: u64) -> String {
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
    i64::try_from(at)
        .ok()
        .and_then(|t| time::OffsetDateTime::from_unix_timestamp(t).ok())
        .and_then(|t| t.format(&format).ok())
        .unwrap_or_else(|| at.to_string())
}

/// `$FLEETDECK_JOURNAL`, else `journal.jsonl` in the XDG state directory
/// (`$XDG_STATE_HOME/fleetdeck`, by default `~/.local/state/fleetdeck`), else — where the
/// platform has no state directory, as on macOS — in the data directory.
pub fn default_path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(PATH_VARIABLE).filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    let dirs = directories::ProjectDirs::from("", "", "fleetdeck")?;
    let dir = dirs.state_dir().unwrap_or_else(|| dirs.data_dir());
    Some(dir.join("journal.jsonl"))
}

/// The journal's open file, held under an exclusive lock for as long as it lives.
pub struct Journal {
    path: PathBuf,
    file: Mutex<File>,
    /// The first failed write: every later append fails with it, so nothing more is sent.
    broken: Mutex<Option<String>>,
    /// Held for the lock's sake.
    _lock: File,
    #[cfg(test)]
    fail_next: std::sync::atomic::AtomicBool,
}

/// Why a journal could not be opened.
#[derive(Debug)]
pub enum OpenError {
    /// Another live process holds it.
    Locked {
        pid: Option<u32>,
        path: PathBuf,
    },
    Io(anyhow::Error),
}

impl std::fmt::Display for OpenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Locked { pid, path } => {
                let who = pid.map_or_else(
                    || "another fleetdeck".to_string(),
                    |p| format!("another fleetdeck (process {p})"),
                );
                write!(
                    f,
                    "the journal {} is in use by {who}: quit that one, or pass --journal with another path",
                    path.display()
                )
            }
            Self::Io(e) => write!(f, "{e:#}"),
        }
    }
}

impl std::error::Error for OpenError {}

impl From<anyhow::Error> for OpenError {
    fn from(e: anyhow::Error) -> Self {
        Self::Io(e)
    }
}

fn lock_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

/// Refuses anything but a regular file (a device, a FIFO) as a journal.
fn regular(path: &Path) -> anyhow::Result<()> {
    match std::fs::metadata(path) {
        Ok(m) if !m.is_file() => anyhow::bail!(
            "{} is not a regular file, so it cannot be a journal",
            path.display()
        ),
        _ => Ok(()),
    }
}

impl Journal {
    pub fn open(path: &Path) -> Result<Self, OpenError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        regular(path)?;
        let lock = take_lock(path)?;
        // Under the lock, before the file is opened for appends: compaction may replace it.
        compact(path, now().saturating_sub(RETENTION_SECS))?;
        let mut file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .mode(0o600)
            .open(path)
            .with_context(|| format!("cannot open the journal {}", path.display()))?;
        end_torn_line(&mut file)
            .with_context(|| format!("cannot repair the journal {}", path.display()))?;
        Ok(Self {
            path: path.to_path_buf(),
            file: Mutex::new(file),
            broken: Mutex::new(None),
            _lock: lock,
            #[cfg(test)]
            fail_next: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// Why appends fail, once one has.
    pub fn broken(&self) -> Option<String> {
        self.broken
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Appends one record and waits for it to reach the disk. After a failed write every
    /// append fails: a journal that may have lost a record must not let more calls go out.
    pub fn append(&self, record: &Record) -> anyhow::Result<()> {
        if let Some(why) = self.broken() {
            anyhow::bail!("{why}");
        }
        let mut line = serde_json::to_vec(record).context("cannot encode a journal record")?;
        line.push(b'\n');
        let mut file = self
            .file
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        #[cfg(test)]
        let injected = self
            .fail_next
            .swap(false, std::sync::atomic::Ordering::SeqCst);
        #[cfg(not(test))]
        let injected = false;
        let written = if injected {
            Err(std::io::Error::other("no space left on device (injected)"))
        } else {
            file.write_all(&line).and_then(|()| file.sync_data())
        };
        written.map_err(|e| {
            let why = format!("cannot write the journal {}: {e}", self.path.display());
            *self
                .broken
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(why.clone());
            anyhow::anyhow!(why)
        })
    }
}

/// Takes the journal's lock, recording this process's id in the lock file.
/// The process that holds the journal, if one does: a probe that changes nothing (opening
/// the journal would compact and repair it). `Ok(None)`: nobody holds it.
pub fn holder(path: &Path) -> Result<Option<Option<u32>>, OpenError> {
    let lock_path = lock_path(path);
    let mut lock = match OpenOptions::new().read(true).write(true).open(&lock_path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(OpenError::Io(anyhow::Error::new(e).context(format!(
                "cannot open the journal's lock {}",
                lock_path.display()
            ))));
        }
    };
    match lock.try_lock() {
        Ok(()) => Ok(None),
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut held = String::new();
            let _ = lock.read_to_string(&mut held);
            Ok(Some(held.trim().parse().ok()))
        }
        Err(std::fs::TryLockError::Error(e)) => Err(OpenError::Io(
            anyhow::Error::new(e).context(format!("cannot lock the journal {}", path.display())),
        )),
    }
}

fn take_lock(path: &Path) -> Result<File, OpenError> {
    let lock_path = lock_path(path);
    let mut lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .mode(0o600)
        .open(&lock_path)
        .with_context(|| format!("cannot open the journal's lock {}", lock_path.display()))?;
    match lock.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut held = String::new();
            let _ = lock.read_to_string(&mut held);
            return Err(OpenError::Locked {
                pid: held.trim().parse().ok(),
                path: path.to_path_buf(),
            });
        }
        Err(std::fs::TryLockError::Error(e)) => {
            return Err(OpenError::Io(
                anyhow::Error::new(e)
                    .context(format!("cannot lock the journal {}", path.display())),
            ));
        }
    }
    let pid = std::process::id().to_string();
    lock.set_len(0)
        .and_then(|()| lock.seek(SeekFrom::Start(0)).map(drop))
        .and_then(|()| lock.write_all(pid.as_bytes()))
        .with_context(|| format!("cannot write the journal's lock {}", lock_path.display()))?;
    Ok(lock)
}

/// A crash mid-write can leave a last line without its newline: the next record must start
/// on a line of its own, or it would be lost with the torn one.
fn end_torn_line(file: &mut File) -> std::io::Result<()> {
    let len = file.metadata()?.len();
    if len == 0 {
        return Ok(());
    }
    let mut last = [0u8; 1];
    file.seek(SeekFrom::Start(len - 1))?;
    file.read_exact(&mut last)?;
    if last[0] != b'\n' {
        file.write_all(b"\n")?;
        file.sync_data()?;
    }
    Ok(())
}

/// What a journal holds: the records that could be read, and what was skipped and why.
#[derive(Debug, Default)]
pub struct Contents {
    pub records: Vec<Record>,
    pub warnings: Vec<String>,
}

/// Every record in a journal file; see [`read_checked`] for what was skipped.
pub fn read(path: &Path) -> anyhow::Result<Vec<Record>> {
    read_checked(path).map(|c| c.records)
}

/// Every record in a journal file. A line that is torn, not UTF-8, not a record or longer
/// than 1 MiB is skipped with a warning; it never hides the lines around it.
pub fn read_checked(path: &Path) -> anyhow::Result<Contents> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Contents::default()),
        Err(e) => {
            return Err(e).with_context(|| format!("cannot read the journal {}", path.display()));
        }
    };
    regular(path)?;
    let mut out = Contents::default();
    let mut reader = BufReader::new(file.take(MAX_READ + 1));
    let mut line = Vec::new();
    let mut number = 0;
    let mut total: u64 = 0;
    loop {
        line.clear();
        let (n, whole) = read_line(&mut reader, &mut line)
            .with_context(|| format!("cannot read the journal {}", path.display()))?;
        if n == 0 {
            break;
        }
        total += n as u64;
        anyhow::ensure!(
            total <= MAX_READ,
            "the journal {} is larger than {} MiB: move it aside and start a new one",
            path.display(),
            MAX_READ / (1024 * 1024)
        );
        number += 1;
        let skip = |why: &str| format!("line {number} of {}: {why}, skipped", path.display());
        if !whole {
            out.warnings.push(skip("longer than 1 MiB"));
            continue;
        }
        let Ok(text) = std::str::from_utf8(&line) else {
            out.warnings.push(skip("not UTF-8"));
            continue;
        };
        if text.trim().is_empty() {
            continue;
        }
        match serde_json::from_str(text) {
            Ok(record) => out.records.push(record),
            Err(_) => out.warnings.push(skip("not a journal record")),
        }
    }
    Ok(out)
}

/// Reads one line into `line` (without its newline), keeping at most `MAX_LINE` bytes of it:
/// (bytes consumed, whether the line was kept whole).
fn read_line(reader: &mut impl BufRead, line: &mut Vec<u8>) -> std::io::Result<(usize, bool)> {
    let mut consumed = 0;
    let mut whole = true;
    loop {
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            return Ok((consumed, whole));
        }
        let (chunk, done) = match buf.iter().position(|b| *b == b'\n') {
            Some(at) => (&buf[..at], Some(at + 1)),
            None => (buf, None),
        };
        if whole && line.len() + chunk.len() <= MAX_LINE {
            line.extend_from_slice(chunk);
        } else {
            whole = false;
            line.clear();
        }
        let used = done.unwrap_or(buf.len());
        reader.consume(used);
        consumed += used;
        if done.is_some() {
            return Ok((consumed, whole));
        }
    }
}

/// Drops every record of the plans that ended before `cutoff` (epoch seconds), rewriting the
/// file only when there is something to drop: a temporary file beside it, fsynced, renamed
/// over it. Unreadable lines are kept as they are; open and paused plans are never dropped.
fn compact(path: &Path, cutoff: u64) -> anyhow::Result<()> {
    let contents = read_checked(path)?;
    let old: std::collections::HashSet<&str> = contents
        .records
        .iter()
        .filter_map(|r| match r {
            Record::End { plan, at, .. } if *at < cutoff => Some(plan.as_str()),
            _ => None,
        })
        .collect();
    if old.is_empty() {
        return Ok(());
    }
    let text = std::fs::read(path)?;
    let temp = path.with_extension("jsonl.compacting");
    let mut out = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o600)
        .open(&temp)
        .with_context(|| format!("cannot compact the journal into {}", temp.display()))?;
    for line in text.split_inclusive(|b| *b == b'\n') {
        let drop = std::str::from_utf8(line)
            .ok()
            .and_then(|l| serde_json::from_str::<Record>(l).ok())
            .is_some_and(|r| old.contains(r.plan()));
        if !drop {
            out.write_all(line)?;
        }
    }
    out.sync_all()?;
    std::fs::rename(&temp, path)
        .with_context(|| format!("cannot replace the journal {}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::Record;
    use std::os::unix::fs::PermissionsExt;

    fn dir() -> PathBuf {
        let d = std::env::temp_dir().join(format!("fleetdeck-jf-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn plan(id: &str) -> Record {
        crate::journal::reboot_plan(id, 1, &[])
    }

    fn end(id: &str, at: u64) -> Record {
        Record::End {
            plan: id.into(),
            at,
            abandoned: vec![],
        }
    }

    #[test]
    fn a_torn_last_line_is_skipped_and_the_next_append_starts_a_new_line() {
        let d = dir();
        let path = d.join("journal.jsonl");
        let journal = Journal::open(&path).unwrap();
        journal.append(&plan("p1")).unwrap();
        drop(journal);
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"{\"record\":\"outcome\",\"pla").unwrap();
        drop(f);
        let journal = Journal::open(&path).unwrap();
        journal.append(&plan("p2")).unwrap();
        drop(journal);
        let c = read_checked(&path).unwrap();
        assert_eq!(c.records, vec![plan("p1"), plan("p2")]);
        assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
        assert!(c.warnings[0].contains("line 2"), "{:?}", c.warnings);
        std::fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn bad_lines_are_skipped_with_warnings_and_the_rest_is_read() {
        let d = dir();
        let path = d.join("journal.jsonl");
        let good = serde_json::to_string(&plan("p1")).unwrap();
        let mut bytes = Vec::new();
        bytes.extend_from_slice(b"\xff\xfe not utf-8\n");
        bytes.extend_from_slice(good.as_bytes());
        bytes.extend_from_slice(b"\ngarbage\n");
        bytes.extend(std::iter::repeat_n(b'x', MAX_LINE + 10));
        bytes.push(b'\n');
        bytes.extend_from_slice(good.as_bytes());
        bytes.push(b'\n');
        std::fs::write(&path, bytes).unwrap();
        let c = read_checked(&path).unwrap();
        assert_eq!(c.records, vec![plan("p1"), plan("p1")]);
        let why: Vec<&str> = c
            .warnings
            .iter()
            .map(|w| w.rsplit(": ").next().unwrap())
            .collect();
        assert_eq!(
            why,
            vec![
                "not UTF-8, skipped",
                "not a journal record, skipped",
                "longer than 1 MiB, skipped"
            ]
        );
        std::fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn a_device_is_refused_as_a_journal() {
        assert!(Journal::open(Path::new("/dev/zero")).is_err());
        assert!(read_checked(Path::new("/dev/zero")).is_err());
        assert!(read_checked(Path::new("/dev/full")).is_err());
    }

    #[test]
    fn the_file_is_private_and_a_second_open_names_the_holder() {
        let d = dir();
        let path = d.join("sub").join("journal.jsonl");
        let first = Journal::open(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let dir_mode = std::fs::metadata(d.join("sub"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(dir_mode & 0o777, 0o700);
        match Journal::open(&path) {
            Err(OpenError::Locked { pid, .. }) => assert_eq!(pid, Some(std::process::id())),
            other => panic!("a second open was not refused: {:?}", other.err()),
        }
        drop(first);
        assert!(
            Journal::open(&path).is_ok(),
            "the lock goes with the journal"
        );
        std::fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn a_failed_write_stops_every_later_append() {
        let d = dir();
        let path = d.join("journal.jsonl");
        let journal = Journal::open(&path).unwrap();
        journal
            .fail_next
            .store(true, std::sync::atomic::Ordering::SeqCst);
        assert!(journal.append(&plan("p1")).is_err());
        assert!(journal.broken().unwrap().contains("no space left"));
        // The disk has room again, but a journal that lost a record sends nothing more.
        assert!(journal.append(&plan("p2")).is_err());
        assert!(read(&path).unwrap().is_empty());
        std::fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn long_ended_plans_are_compacted_away() {
        let d = dir();
        let path = d.join("journal.jsonl");
        let journal = Journal::open(&path).unwrap();
        let old = now() - RETENTION_SECS - 10;
        for r in [
            plan("old"),
            end("old", old),
            plan("recent"),
            end("recent", now()),
            plan("open"),
        ] {
            journal.append(&r).unwrap();
        }
        drop(journal);
        let journal = Journal::open(&path).unwrap();
        let kept: Vec<String> = read(&path)
            .unwrap()
            .iter()
            .map(|r| r.plan().to_string())
            .collect();
        assert_eq!(kept, vec!["recent", "recent", "open"]);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        // Appends go to the compacted file.
        journal.append(&plan("new")).unwrap();
        assert_eq!(read(&path).unwrap().len(), 4);
        std::fs::remove_dir_all(d).unwrap();
    }
}
