//! `creditops audit export`: a self-contained, signed bundle of the audit log
//! (A5) that a regulator verifies offline with `sha256sum`, `openssl` and
//! `audit/verify.py`, without this software. The layout is specified in
//! `audit/SPEC.md`; the bundle is built by the audit service's
//! [`bundle`](creditops_svc_audit::bundle) module, the same code that serves
//! `POST /v1/exports`.

use chrono::Utc;
use creditops_audit::{AuditAction, AuditRecord, Outcome};
use creditops_store::{Store, StoreExt, append_record};
pub use creditops_svc_audit::bundle::{ExportError, LogEntry, check_against_checkpoint};
use creditops_svc_audit::bundle::{
    ExportKeys, Selection, load_verified_log as load_in, write_bundle,
};
use std::io::Write;
use std::path::Path;

/// What an export produced.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ExportReport {
    pub first_seq: i64,
    pub last_seq: i64,
    pub tree_size: u64,
    pub files: usize,
    pub key: String,
}

/// Links every committed audit event first (PostgreSQL's sequencer may not
/// have run yet, for example when no service process is up).
pub async fn link_committed(store: &dyn Store) -> Result<(), ExportError> {
    store
        .flush_audit(std::time::Duration::from_secs(30))
        .await
        .map_err(ExportError::from)
}

/// Reads and checks the whole log in one read transaction.
pub async fn load_verified_log(
    store: &dyn Store,
    origin: &str,
) -> Result<Vec<LogEntry>, ExportError> {
    link_committed(store).await?;
    let mut tx = store.begin_read().await?;
    load_in(tx.as_mut(), origin).await
}

/// Exports the events `selection` names into `out`, which must not exist
/// yet or be empty. The entries stream from the log into
/// `entries.jsonl` (see [`write_bundle`]): memory stays bounded whatever
/// the range. `progress` hears the number of events written so far.
pub async fn export(
    store: &dyn Store,
    origin: &str,
    keys: ExportKeys<'_>,
    out: &Path,
    selection: Selection,
    progress: &mut (dyn FnMut(u64) + Send),
) -> Result<ExportReport, CliExportError> {
    check_target(out)?;
    link_committed(store).await?;
    let mut written = Written::start(out)?;
    match write_into(&mut written, store, origin, keys, selection, progress).await {
        Ok(report) => Ok(report),
        Err(e) => {
            written.undo();
            Err(e)
        }
    }
}

/// [`export`] once the directory is there; the caller takes back what was
/// written if this fails.
async fn write_into(
    written: &mut Written<'_>,
    store: &dyn Store,
    origin: &str,
    keys: ExportKeys<'_>,
    selection: Selection,
    progress: &mut (dyn FnMut(u64) + Send),
) -> Result<ExportReport, CliExportError> {
    let entries = std::io::BufWriter::new(written.create(creditops_audit::export::ENTRIES)?);
    let (prepared, entries) = {
        let mut tx = store.begin_read().await.map_err(ExportError::from)?;
        write_bundle(
            tx.as_mut(),
            origin,
            keys,
            selection,
            Utc::now(),
            entries,
            progress,
        )
        .await?
    };
    entries
        .into_inner()
        .map_err(|e| e.into_error())?
        .sync_all()?;

    // The export is audited (A5): the event commits only with the bundle.
    let mut tx = store.begin().await.map_err(ExportError::from)?;
    let mut record = AuditRecord::new("cli", AuditAction::AuditExported, Outcome::Ok, Utc::now());
    record.data = prepared.audit_data();
    append_record(tx.as_mut(), &record)
        .await
        .map_err(ExportError::from)?;
    tx.insert_checkpoint(&prepared.checkpoint)
        .await
        .map_err(ExportError::from)?;
    for (name, bytes) in &prepared.files {
        written.write(name, bytes)?;
    }
    tx.commit().await.map_err(ExportError::from)?;
    Ok(ExportReport {
        first_seq: prepared.first_seq,
        last_seq: prepared.last_seq,
        tree_size: prepared.tree_size,
        files: prepared.files.len() + 1,
        key: prepared.key,
    })
}

/// An export from the command line: building it, or writing it.
#[derive(Debug, thiserror::Error)]
pub enum CliExportError {
    #[error(transparent)]
    Export(#[from] ExportError),
    #[error("could not write the bundle: {0}")]
    Io(#[from] std::io::Error),
}

/// The bundle's directory must be new, or an empty directory that is not a
/// symbolic link: an export never writes through a link into a place the
/// operator did not name.
fn check_target(out: &Path) -> Result<(), ExportError> {
    let refuse = |why: &str| Err(ExportError::Usage(format!("{} {why}", out.display())));
    match std::fs::symlink_metadata(out) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => refuse(&format!("cannot be inspected: {e}")),
        Ok(meta) if meta.file_type().is_symlink() => {
            refuse("is a symbolic link; name the directory itself")
        }
        Ok(meta) if !meta.is_dir() => refuse("exists and is not a directory"),
        Ok(_) => match std::fs::read_dir(out).map(|mut d| d.next().is_none()) {
            Ok(true) => Ok(()),
            Ok(false) => refuse("exists and is not empty; choose a new directory"),
            Err(e) => refuse(&format!("cannot be read: {e}")),
        },
    }
}

/// What an export wrote, so that a failure takes back exactly that: the
/// files it created and the directory only if it created it.
struct Written<'a> {
    out: &'a Path,
    created_dir: bool,
    files: Vec<std::path::PathBuf>,
}

impl<'a> Written<'a> {
    /// Creates `out` unless it exists (see [`check_target`]).
    fn start(out: &'a Path) -> std::io::Result<Self> {
        let created_dir = match std::fs::create_dir(out) {
            Ok(()) => true,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => false,
            Err(e) => return Err(e),
        };
        Ok(Self {
            out,
            created_dir,
            files: Vec::new(),
        })
    }

    /// A new file `name` in the directory, created new (`O_EXCL`: an
    /// existing file or a planted link is refused, never followed).
    fn create(&mut self, name: &str) -> std::io::Result<std::fs::File> {
        let path = self.out.join(name);
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)?;
        self.files.push(path);
        Ok(file)
    }

    /// A new file `name` holding `bytes`, on disk before this returns.
    fn write(&mut self, name: &str, bytes: &[u8]) -> std::io::Result<()> {
        let mut file = self.create(name)?;
        file.write_all(bytes)?;
        file.sync_all()
    }

    fn undo(self) {
        for file in &self.files {
            let _ = std::fs::remove_file(file);
        }
        if self.created_dir {
            // Only if empty: never what somebody else put there meanwhile.
            let _ = std::fs::remove_dir(self.out);
        }
    }
}

/// Writes `files` into `out` (see [`check_target`]); on any failure what
/// was written is taken back.
#[cfg(test)]
fn write_files<'a>(out: &'a Path, files: &[(String, Vec<u8>)]) -> std::io::Result<Written<'a>> {
    let mut written = Written::start(out)?;
    for (name, bytes) in files {
        if let Err(e) = written.write(name, bytes) {
            written.undo();
            return Err(e);
        }
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> std::path::PathBuf {
        let dir =
            std::env::temp_dir().join(format!("creditops-export-{name}-{}", uuid::Uuid::now_v7()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn a_failed_export_keeps_a_directory_it_did_not_create() {
        let given = scratch("given");
        // The second file cannot be written (its folder does not exist).
        let files = vec![
            ("events.jsonl".to_owned(), b"{}".to_vec()),
            ("missing/checkpoint".to_owned(), b"x".to_vec()),
        ];
        check_target(&given).unwrap();
        assert!(write_files(&given, &files).is_err());
        assert!(given.is_dir(), "the operator's directory stays");
        assert_eq!(std::fs::read_dir(&given).unwrap().count(), 0, "emptied");
        // A directory the export created goes again.
        let new = given.join("bundle");
        assert!(write_files(&new, &files).is_err());
        assert!(!new.exists());
        std::fs::remove_dir_all(&given).unwrap();
    }

    #[test]
    fn an_export_never_follows_a_symbolic_link() {
        let base = scratch("links");
        let elsewhere = base.join("elsewhere");
        std::fs::create_dir(&elsewhere).unwrap();
        let link = base.join("bundle");
        std::os::unix::fs::symlink(&elsewhere, &link).unwrap();
        let refused = check_target(&link).unwrap_err().to_string();
        assert!(refused.contains("symbolic link"), "{refused}");
        // A link planted inside the directory is not written through.
        let out = base.join("out");
        std::fs::create_dir(&out).unwrap();
        let victim = base.join("victim");
        std::fs::write(&victim, b"keep").unwrap();
        std::os::unix::fs::symlink(&victim, out.join("events.jsonl")).unwrap();
        let files = vec![("events.jsonl".to_owned(), b"{}".to_vec())];
        assert!(write_files(&out, &files).is_err());
        assert_eq!(std::fs::read(&victim).unwrap(), b"keep");
        std::fs::remove_dir_all(&base).unwrap();
    }
}
