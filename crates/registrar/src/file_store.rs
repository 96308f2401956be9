//! A [`MemoryStore`] that survives restarts: every write is appended to a
//! JSON-lines journal, compacted on open and when it has grown.

use crate::binding::Binding;
use crate::store::{LocationStore, MemoryStore, StoreError};
use serde::{Deserialize, Serialize};
use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path as FsPath, PathBuf};
use std::sync::{Mutex, PoisonError};
use tracing::warn;

/// Journal lines beyond twice the live AORs that trigger a compaction.
const COMPACT_SLACK: usize = 1024;

/// One journal line: the whole binding set of an AOR (empty: removed).
#[derive(Serialize)]
struct RecordOut<'a> {
    aor: &'a str,
    bindings: &'a [Binding],
}

#[derive(Deserialize)]
struct RecordIn {
    aor: String,
    bindings: Vec<Binding>,
}

struct Journal {
    path: PathBuf,
    file: File,
    /// Lines in the file.
    lines: usize,
    /// fsync after every append.
    sync: bool,
    /// An append failed part-way: rewrite the file before the next one.
    broken: bool,
}

/// The in-memory store plus a JSON-lines journal file.
///
/// Each line is `{"aor":"alice","bindings":[…]}`, the AOR's whole set after
/// a write; a later line for an AOR replaces the earlier ones and an empty
/// set removes it. [`open`](FileStore::open) replays the file (unreadable
/// lines, such as a line torn by a crash, are skipped with a warning),
/// then compacts it: the live state goes to `<path>.tmp`, is fsynced and
/// renamed over `<path>`. Every `put` then appends one line, written to the
/// OS before it returns (and fsynced when opened with `sync`). When the
/// journal holds more than 2 × live AORs + 1024 lines it is compacted
/// again. The file is created with mode 0600: it holds addresses.
pub struct FileStore {
    mem: MemoryStore,
    journal: Mutex<Journal>,
    /// `PATH.lock`, exclusively locked while the store is open: a second
    /// process (another Tandem on the same file) is refused.
    _lock: File,
}

impl FileStore {
    /// Opens (or creates) the journal at `path`, loads it and compacts it.
    /// A missing file is an empty store. With `sync`, every write is
    /// fsynced before `put` returns.
    pub fn open(path: impl AsRef<FsPath>, sync: bool) -> Result<FileStore, StoreError> {
        let path = path.as_ref().to_path_buf();
        let mut lock_path = path.clone().into_os_string();
        lock_path.push(".lock");
        let lock = private_options()
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(StoreError::Unavailable(format!(
                    "{} is in use by another process",
                    path.display()
                )));
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(e.into()),
        }
        let mem = MemoryStore::new();
        match std::fs::read(&path) {
            Ok(data) => replay(&path, &data, &mem),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }
        let lines = write_compacted(&path, &mem)?;
        let file = open_append(&path)?;
        Ok(FileStore {
            mem,
            journal: Mutex::new(Journal {
                path,
                file,
                lines,
                sync,
                broken: false,
            }),
            _lock: lock,
        })
    }

    /// The journal's path.
    pub fn path(&self) -> PathBuf {
        self.lock().path.clone()
    }

    /// Rewrites the journal as the live state (one line per AOR).
    pub fn compact(&self) -> Result<(), StoreError> {
        let mut journal = self.lock();
        self.compact_locked(&mut journal)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Journal> {
        self.journal.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn compact_locked(&self, journal: &mut Journal) -> Result<(), StoreError> {
        let lines = write_compacted(&journal.path, &self.mem)?;
        journal.file = open_append(&journal.path)?;
        journal.lines = lines;
        journal.broken = false;
        Ok(())
    }
}

impl LocationStore for FileStore {
    fn get(&self, aor: &str) -> Vec<Binding> {
        self.mem.get(aor)
    }

    fn put(&self, aor: &str, bindings: &[Binding]) -> Result<(), StoreError> {
        let mut journal = self.lock();
        if journal.broken {
            self.compact_locked(&mut journal)?;
        }
        let mut line = serde_json::to_vec(&RecordOut { aor, bindings })?;
        line.push(b'\n');
        let sync = journal.sync;
        let written = journal.file.write_all(&line).and_then(|()| {
            if sync {
                journal.file.sync_data()
            } else {
                Ok(())
            }
        });
        if let Err(e) = written {
            journal.broken = true;
            return Err(e.into());
        }
        self.mem.put(aor, bindings)?;
        journal.lines += 1;
        if journal.lines > 2 * self.mem.aor_count() + COMPACT_SLACK {
            // The write is in the journal already; a failed compaction is
            // retried at the next threshold crossing.
            if let Err(e) = self.compact_locked(&mut journal) {
                warn!(path = %journal.path.display(), error = %e, "journal compaction failed");
            }
        }
        Ok(())
    }

    fn aors(&self) -> Vec<String> {
        self.mem.aors()
    }

    fn len(&self) -> usize {
        self.mem.len()
    }
}

/// Loads every readable line of `data` into `mem`, later lines winning.
fn replay(path: &FsPath, data: &[u8], mem: &MemoryStore) {
    for (n, line) in data.split(|&b| b == b'\n').enumerate() {
        if line.trim_ascii().is_empty() {
            continue;
        }
        match serde_json::from_slice::<RecordIn>(line) {
            Ok(rec) => {
                // MemoryStore::put cannot fail.
                let _ = mem.put(&rec.aor, &rec.bindings);
            }
            Err(e) => warn!(
                path = %path.display(),
                line = n + 1,
                error = %e,
                "skipping unreadable location journal line"
            ),
        }
    }
}

/// Writes `mem` to `<path>.tmp`, fsyncs it and renames it over `path`;
/// returns the number of lines written.
fn write_compacted(path: &FsPath, mem: &MemoryStore) -> Result<usize, StoreError> {
    let mut tmp_name = path.as_os_str().to_owned();
    tmp_name.push(".tmp");
    let tmp = PathBuf::from(tmp_name);
    match std::fs::remove_file(&tmp) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e.into()),
        _ => {}
    }
    let file = private_options().write(true).create_new(true).open(&tmp)?;
    let mut out = BufWriter::new(file);
    let snapshot = mem.snapshot();
    for (aor, bindings) in &snapshot {
        serde_json::to_writer(
            &mut out,
            &RecordOut {
                aor,
                bindings: bindings.as_slice(),
            },
        )?;
        out.write_all(b"\n")?;
    }
    let file = out.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&tmp, path)?;
    sync_dir(path);
    Ok(snapshot.len())
}

fn open_append(path: &FsPath) -> io::Result<File> {
    private_options().append(true).create(true).open(path)
}

/// Options that create files readable by the owner only.
fn private_options() -> OpenOptions {
    let mut options = OpenOptions::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options
}

/// Makes a rename durable (best effort; not possible everywhere).
fn sync_dir(path: &FsPath) {
    #[cfg(unix)]
    if let Some(dir) = path.parent() {
        let dir = if dir.as_os_str().is_empty() {
            FsPath::new(".")
        } else {
            dir
        };
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_second_store_on_the_same_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b.jsonl");
        let first = FileStore::open(&path, false).unwrap();
        let second = FileStore::open(&path, false);
        assert!(
            matches!(&second, Err(StoreError::Unavailable(m)) if m.contains("in use")),
            "{:?}",
            second.err()
        );
        drop(first);
        assert!(FileStore::open(&path, false).is_ok());
    }

    use super::*;
    use crate::testutil::binding;

    fn lines(path: &FsPath) -> usize {
        std::fs::read_to_string(path).unwrap().lines().count()
    }

    #[test]
    fn round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("location.jsonl");
        let mut a = binding("alice", "sip:alice@10.0.0.5:5060", 5000);
        a.q = Some(0.5);
        a.instance = Some("<urn:uuid:1>".into());
        a.reg_id = Some(2);
        a.user_agent = Some("Phone/1.0".into());
        a.attrs.insert("vip".into(), "yes".into());
        let b = binding("bob", "sip:bob@10.0.0.6", 6000);
        {
            let s = FileStore::open(&path, false).unwrap();
            assert!(s.is_empty());
            s.put("alice", std::slice::from_ref(&a)).unwrap();
            s.put("bob", std::slice::from_ref(&b)).unwrap();
            s.put("carol", &[binding("carol", "sip:carol@10.0.0.7", 1)])
                .unwrap();
            s.put("carol", &[]).unwrap();
        }
        let s = FileStore::open(&path, true).unwrap();
        assert_eq!(s.get("alice"), vec![a.clone()]);
        assert_eq!(s.get("bob"), vec![b]);
        assert!(s.get("carol").is_empty());
        assert_eq!(s.len(), 2);
        // Compacted on open: one line per AOR.
        assert_eq!(lines(&path), 2);
        s.put("alice", &[]).unwrap();
        drop(s);
        let s = FileStore::open(&path, false).unwrap();
        assert!(s.get("alice").is_empty());
        assert_eq!(s.aors(), vec!["bob".to_string()]);
    }

    #[test]
    fn compacts_when_grown() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("loc");
        let s = FileStore::open(&path, false).unwrap();
        let mut last = binding("alice", "sip:alice@10.0.0.5", 0);
        for i in 0..1100u64 {
            last.expires_at = 1000 + i;
            s.put("alice", std::slice::from_ref(&last)).unwrap();
            s.put("bob", &[binding("bob", "sip:bob@10.0.0.6", i)])
                .unwrap();
        }
        // 2200 appends, compacted whenever the journal passed 2*2+1024 lines.
        let n = lines(&path);
        assert!(n <= 2 * 2 + COMPACT_SLACK, "{n} lines");
        assert!(!dir.path().join("loc.tmp").exists());
        drop(s);
        let s = FileStore::open(&path, false).unwrap();
        assert_eq!(s.get("alice"), vec![last]);
        assert_eq!(s.get("bob")[0].expires_at, 1099);
        s.compact().unwrap();
        assert_eq!(lines(&path), 2);
    }

    #[test]
    fn torn_last_line_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("loc");
        let a = binding("alice", "sip:alice@10.0.0.5", 5000);
        {
            let s = FileStore::open(&path, false).unwrap();
            s.put("alice", std::slice::from_ref(&a)).unwrap();
            s.put("bob", &[binding("bob", "sip:bob@10.0.0.6", 1)])
                .unwrap();
        }
        // A crash in the middle of the next append.
        let data = std::fs::read(&path).unwrap();
        let torn = b"{\"aor\":\"alice\",\"bindings\":[{\"aor\":\"al";
        std::fs::write(&path, [data.as_slice(), &torn[..], b"\xff\xfe"].concat()).unwrap();
        let s = FileStore::open(&path, false).unwrap();
        assert_eq!(s.get("alice"), vec![a]);
        assert_eq!(s.len(), 2);
        // The garbage is gone after the compaction on open.
        assert_eq!(lines(&path), 2);
        assert!(std::fs::read_to_string(&path).unwrap().ends_with('\n'));
    }

    #[test]
    fn missing_file_is_empty_and_created_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("new.jsonl");
        let s = FileStore::open(&path, false).unwrap();
        assert!(s.is_empty());
        assert_eq!(s.path(), path);
        assert!(path.exists());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
            // An existing file with a wider mode is replaced by a private one.
            drop(s);
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
            let _s = FileStore::open(&path, false).unwrap();
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn unreadable_directory_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing-dir").join("loc");
        assert!(matches!(
            FileStore::open(&path, false),
            Err(StoreError::Io(_))
        ));
    }
}
