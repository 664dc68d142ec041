//! The regulator export bundle (requirement A5): a self-contained set of
//! files that proves a contiguous range of audit events is exactly what the
//! log holds at a signed checkpoint, checkable offline with `sha256sum`,
//! `openssl` and the published `audit/verify.py`, without our software.
//!
//! [`build_bundle`] produces the files in memory (the caller writes them as a
//! directory or archive); [`EntriesWriter`] and [`bundle_files`] build the
//! same files with the entries streamed, in memory bounded whatever the
//! range; [`verify_bundle`] / [`verify_bundle_with_keys`] check
//! them in the same order as `audit/verify.py` and name the first bad sequence
//! number. The layout is normative in `audit/SPEC.md` ("Export bundle",
//! format version 2).
//!
//! Verification order, shared with `verify.py` so both report the same
//! failure: files present, manifest, keys, checkpoint signature, the openssl
//! companion files, the border hashes, every entry in order (sequence, leaf,
//! chain, body), the Merkle root recomputed from left border + leaves + right
//! border, the consistency proof, and finally `SHA256SUMS`. The content
//! checks come before the checksums on purpose: a modified body is reported
//! as "seq N: leaf hash does not match", not only as a changed file.
//!
//! Speed: the verifier streams once over `entries.jsonl` with a positional
//! parse of its fixed line shape, keeps only the O(log n) compact range of
//! the tree, and hashes the files for `SHA256SUMS` on a second thread while
//! the entries are checked.
//!
//! The module is split by subject: `format` (the files and their byte
//! shapes), `model` (input, report and errors), `build`, `verify` (the
//! driver, threads and checksums) and `contents` (the checks of SPEC 9.5).

mod build;
mod contents;
mod format;
mod model;
mod verify;

pub use build::{BundleParts, EntriesWriter, WrittenEntries, build_bundle, bundle_files};
pub use format::{
    BORDERS, BUNDLE_FORMAT, BUNDLE_VERSION, CHECKPOINT, CHECKPOINT_BODY, CHECKPOINT_SIG,
    CONSISTENCY, ENTRIES, KEYS, MANIFEST, PREVIOUS_CHECKPOINT, PUBLIC_KEY, RECIPIENT_README,
    SHA256SUMS,
};
pub use model::{BundleCheck, BundleEntry, BundleError, BundleInput, BundleReport};
pub use verify::{read_bundle_dir, verify_bundle, verify_bundle_with_keys};

#[cfg(test)]
mod tests;
