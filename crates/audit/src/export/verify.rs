//! Verifying a bundle: the entry points, the files present, and the
//! driver that runs the content checks ([`super::contents`]) while a
//! second thread checks the bodies and hashes the files, then the checksums
//! (`SHA256SUMS`) last.

use super::contents::{CheckedManifest, parse_manifest, verify_contents};
use super::format::{
    ENTRIES, Files, MANIFEST, REQUIRED_FILES, SHA256SUMS, find_newline, is_format_file,
    parse_entry_line, parse_hash, text,
};
use super::model::{BundleCheck, BundleError, BundleReport, err};
use crate::checkpoint::VerifierKey;
use crate::{Hash, json};
use ring::digest::{Context, SHA256};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

/// Verifies a bundle with the keys listed in its own `keys.txt`. That proves
/// integrity and internal consistency; authenticity additionally needs the
/// keys compared with the published ones (or [`verify_bundle_with_keys`]).
pub fn verify_bundle(files: &[(String, Vec<u8>)]) -> Result<BundleReport, BundleError> {
    verify(files, None, true)
}

/// Verifies a bundle against keys the verifier already trusts.
pub fn verify_bundle_with_keys(
    files: &[(String, Vec<u8>)],
    trusted_keys: &[VerifierKey],
) -> Result<BundleReport, BundleError> {
    verify(files, Some(trusted_keys), true)
}

/// Reads a bundle directory's files (not recursive; symbolic links are
/// followed, subdirectories skipped, as `verify.py` does). A helper for the
/// CLI and tests; the verification itself does no IO.
pub fn read_bundle_dir(dir: &Path) -> std::io::Result<Vec<(String, Vec<u8>)>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if !std::fs::metadata(entry.path())?.is_file() {
            continue;
        }
        let name = entry.file_name().to_string_lossy().into_owned();
        files.push((name, std::fs::read(entry.path())?));
    }
    files.sort();
    Ok(files)
}

/// The files of a bundle by name, with the manifest already checked.
struct Present<'a> {
    map: Files<'a>,
    /// Files that are not part of the format, in the caller's order.
    ignored_files: Vec<String>,
    manifest: CheckedManifest,
}

/// Files: each name once, and the manifest first: its version says how to
/// read everything else; then every required file.
fn files_present(files: &[(String, Vec<u8>)]) -> Result<Present<'_>, BundleError> {
    use BundleCheck as C;
    let mut map: Files<'_> = BTreeMap::new();
    let mut ignored_files = Vec::new();
    for (name, bytes) in files {
        if map.insert(name.as_str(), bytes.as_slice()).is_some() {
            return Err(err(C::Files, None, format!("{name} appears twice")));
        }
        if !is_format_file(name) {
            ignored_files.push(name.clone());
        }
    }
    let manifest_bytes = map
        .get(MANIFEST)
        .ok_or_else(|| err(C::Files, None, format!("{MANIFEST} is missing")))?;
    let manifest = parse_manifest(manifest_bytes)?;
    for name in REQUIRED_FILES {
        if !map.contains_key(name) {
            return Err(err(C::Files, None, format!("{name} is missing")));
        }
    }
    Ok(Present {
        map,
        ignored_files,
        manifest,
    })
}

/// `helper_thread: false` does all the work on the calling thread (what
/// happens anyway when no thread can be started; tests compare both).
pub(super) fn verify(
    files: &[(String, Vec<u8>)],
    trusted: Option<&[VerifierKey]>,
    helper_thread: bool,
) -> Result<BundleReport, BundleError> {
    use BundleCheck as C;
    let Present {
        map,
        ignored_files,
        manifest,
    } = files_present(files)?;

    // Two kinds of work do not feed the chain and the tree: the body check
    // of every entry and hashing every file for SHA256SUMS (checked last).
    // Together they cost about as much as leaves, chain and tree, so a second
    // thread does them meanwhile; the results are used in the order of SPEC
    // 9.5. `stop` ends the thread early when an earlier check fails.
    let stop = AtomicBool::new(false);
    let entries = map.get(ENTRIES).copied().unwrap_or_default();
    std::thread::scope(|scope| {
        let (map, stop) = (&map, &stop);
        let (bodies_tx, bodies_rx) = std::sync::mpsc::sync_channel(1);
        let worker = helper_thread
            .then(|| {
                std::thread::Builder::new()
                    .name("bundle-bodies-sums".into())
                    .spawn_scoped(scope, move || {
                        // A closed channel only means the main thread has finished.
                        let _ = bodies_tx.send(first_bad_body(entries, stop));
                        file_digests(map, stop)
                    })
                    .ok()
            })
            .flatten();
        let spawned = worker.is_some();
        let mut bad_body = || {
            let from_worker = if spawned {
                bodies_rx.recv().ok().flatten()
            } else {
                None
            };
            // Without a worker thread, check the bodies here.
            from_worker
                .or_else(|| first_bad_body(entries, stop))
                .flatten()
        };
        let result = verify_contents(map, manifest, trusted, ignored_files, &mut bad_body)
            .and_then(|report| {
                let digests = match worker {
                    Some(handle) => handle.join().ok().flatten(),
                    // No thread available: hash here instead.
                    None => file_digests(map, stop),
                };
                let digests = digests.ok_or_else(|| {
                    err(
                        C::Checksum,
                        None,
                        "internal error: the files could not be hashed".into(),
                    )
                })?;
                check_sums(map, &report.ignored_files, &digests)?;
                Ok(report)
            });
        stop.store(true, Ordering::Relaxed);
        result
    })
}

/// The index (0-based) of the first line of `entries.jsonl` of the fixed
/// shape whose body is not a JSON object; lines of another shape are left to
/// the main loop. `None` if `stop` was set before the end.
fn first_bad_body(entries: &[u8], stop: &AtomicBool) -> Option<Option<u64>> {
    let mut rest = entries;
    let mut index = 0u64;
    while let Some(end) = find_newline(rest) {
        if index.is_multiple_of(4096) && stop.load(Ordering::Relaxed) {
            return None;
        }
        let (line, tail) = rest.split_at(end);
        rest = tail.get(1..).unwrap_or_default();
        if let Ok(entry) = parse_entry_line(line)
            && !json::is_json_object(entry.body)
        {
            return Some(Some(index));
        }
        index += 1;
    }
    Some(None)
}

/// SHA-256 of every format file except `SHA256SUMS`; `None` if `stop` was
/// set before the end.
fn file_digests<'a>(map: &Files<'a>, stop: &AtomicBool) -> Option<BTreeMap<&'a str, Hash>> {
    const CHUNK: usize = 1 << 20;
    let mut digests = BTreeMap::new();
    for (name, bytes) in map {
        if *name == SHA256SUMS || !is_format_file(name) {
            continue;
        }
        let mut ctx = Context::new(&SHA256);
        for chunk in bytes.chunks(CHUNK) {
            if stop.load(Ordering::Relaxed) {
                return None;
            }
            ctx.update(chunk);
        }
        digests.insert(*name, crate::to_hash(ctx.finish().as_ref()));
    }
    Some(digests)
}

/// Checksums: every format file but SHA256SUMS itself, exactly once.
fn check_sums(
    map: &Files<'_>,
    ignored_files: &[String],
    digests: &BTreeMap<&str, Hash>,
) -> Result<(), BundleError> {
    use BundleCheck as C;
    let sums = text(
        C::Checksum,
        SHA256SUMS,
        map.get(SHA256SUMS).copied().unwrap_or_default(),
    )?;
    let mut listed: BTreeMap<&str, Hash> = BTreeMap::new();
    for (i, line) in sums.lines().enumerate() {
        let bad_line = || {
            err(
                C::Checksum,
                None,
                format!("{SHA256SUMS} line {} is malformed", i + 1),
            )
        };
        let (hash, name) = line.split_at_checked(64).ok_or_else(bad_line)?;
        let name = name
            .strip_prefix("  ")
            .or_else(|| name.strip_prefix(" *"))
            .ok_or_else(bad_line)?;
        let hash = parse_hash(hash).ok_or_else(bad_line)?;
        if name == SHA256SUMS || !is_format_file(name) {
            return Err(err(
                C::Checksum,
                None,
                format!("{SHA256SUMS} lists {name:?}, which is not a bundle file"),
            ));
        }
        if listed.insert(name, hash).is_some() {
            return Err(err(
                C::Checksum,
                None,
                format!("{SHA256SUMS} lists {name} twice"),
            ));
        }
    }
    for name in map.keys() {
        if *name == SHA256SUMS || ignored_files.iter().any(|f| f == name) {
            continue;
        }
        match listed.get(name) {
            None => {
                return Err(err(
                    C::Checksum,
                    None,
                    format!("{name} is not listed in {SHA256SUMS}"),
                ));
            }
            Some(hash) if digests.get(name) != Some(hash) => {
                return Err(err(
                    C::Checksum,
                    None,
                    format!("{name}: SHA-256 does not match {SHA256SUMS}"),
                ));
            }
            Some(_) => {}
        }
    }
    if let Some(name) = listed.keys().find(|name| !map.contains_key(*name)) {
        return Err(err(
            C::Checksum,
            None,
            format!("{name} is listed in {SHA256SUMS} but missing"),
        ));
    }
    Ok(())
}
