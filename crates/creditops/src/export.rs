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
    ExportKeys, Selection, load_verified_log as load_in, load_verified_log_with_progress, prepare,
    previous_checkpoint,
};
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

/// Exports events `first..=last` (default: the whole log) into `out`, which
/// must not exist yet or be empty.
pub async fn export(
    store: &dyn Store,
    origin: &str,
    keys: ExportKeys<'_>,
    out: &Path,
    selection: Selection,
    progress: &mut (dyn FnMut(u64) + Send),
) -> Result<ExportReport, CliExportError> {
    if out.exists()
        && std::fs::read_dir(out)
            .map(|mut d| d.next().is_some())
            .unwrap_or(true)
    {
        return Err(ExportError::Usage(format!(
            "{} exists and is not empty; choose a new directory",
            out.display()
        ))
        .into());
    }
    link_committed(store).await?;
    let (events, previous) = {
        let mut tx = store.begin_read().await.map_err(ExportError::from)?;
        let events = load_verified_log_with_progress(tx.as_mut(), origin, progress).await?;
        let size = u64::try_from(events.len()).unwrap_or(u64::MAX);
        let previous = previous_checkpoint(tx.as_mut(), size, keys).await?;
        (events, previous)
    };
    let prepared = prepare(
        &events,
        origin,
        keys,
        selection.resolve(&events)?,
        previous.as_deref(),
        Utc::now(),
    )?;

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
    if let Err(e) = write_files(out, &prepared.files) {
        let _ = std::fs::remove_dir_all(out);
        return Err(e.into());
    }
    if let Err(e) = tx.commit().await {
        let _ = std::fs::remove_dir_all(out);
        return Err(ExportError::from(e).into());
    }
    Ok(ExportReport {
        first_seq: prepared.first_seq,
        last_seq: prepared.last_seq,
        tree_size: prepared.tree_size,
        files: prepared.files.len(),
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

fn write_files(out: &Path, files: &[(String, Vec<u8>)]) -> std::io::Result<()> {
    std::fs::create_dir_all(out)?;
    for (name, bytes) in files {
        std::fs::write(out.join(name), bytes)?;
    }
    Ok(())
}
