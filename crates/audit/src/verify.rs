//! Streaming verification of a stored chain: feed rows in sequence order,
//! get the first position where anything is wrong.

use crate::{Hash, chain_genesis, chain_next, hash_from_slice, leaf_hash};
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("audit chain broken at sequence {seq}: {reason}")]
pub struct VerifyFailure {
    /// The first bad position (sequence number).
    pub seq: i64,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    pub events: u64,
    pub last_seq: Option<i64>,
    /// Hex chain value after the last event (the head).
    pub head: String,
}

/// Checks, event by event: sequence numbers are contiguous from `first_seq`,
/// the stored leaf equals SHA-256(0x00 || stored body), the body is JSON, and
/// the stored chain value equals SHA-256(previous chain || leaf).
pub struct ChainVerifier {
    previous: Hash,
    next_seq: i64,
    events: u64,
    last_seq: Option<i64>,
}

impl ChainVerifier {
    /// Verification from the start of the log.
    pub fn new(origin: &str, first_seq: i64) -> Self {
        Self::resume(chain_genesis(origin), first_seq)
    }

    /// Verification from a trusted chain value (e.g. a previous export's head).
    pub fn resume(previous: Hash, next_seq: i64) -> Self {
        Self {
            previous,
            next_seq,
            events: 0,
            last_seq: None,
        }
    }

    pub fn push(
        &mut self,
        seq: i64,
        body: &[u8],
        stored_leaf: &[u8],
        stored_chain: &[u8],
    ) -> Result<(), VerifyFailure> {
        let fail = |seq: i64, reason: String| Err(VerifyFailure { seq, reason });
        if seq != self.next_seq {
            let reason = if seq > self.next_seq {
                format!(
                    "expected sequence {}, found {seq}: events are missing",
                    self.next_seq
                )
            } else {
                format!(
                    "expected sequence {}, found {seq}: events are out of order",
                    self.next_seq
                )
            };
            return fail(self.next_seq.min(seq), reason);
        }
        if serde_json::from_slice::<serde_json::Value>(body).is_err() {
            return fail(seq, "body is not valid JSON".into());
        }
        let leaf = leaf_hash(body);
        if hash_from_slice(stored_leaf) != Some(leaf) {
            return fail(
                seq,
                "leaf hash does not match the body (body modified)".into(),
            );
        }
        let chain = chain_next(&self.previous, &leaf);
        if hash_from_slice(stored_chain) != Some(chain) {
            return fail(
                seq,
                "chain hash does not match (event reordered, inserted or chain edited)".into(),
            );
        }
        self.previous = chain;
        self.next_seq += 1;
        self.events += 1;
        self.last_seq = Some(seq);
        Ok(())
    }

    pub fn finish(self) -> VerifyReport {
        VerifyReport {
            events: self.events,
            last_seq: self.last_seq,
            head: hex::encode(self.previous),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(origin: &str, bodies: &[&str]) -> Vec<(i64, Vec<u8>, Hash, Hash)> {
        let mut prev = chain_genesis(origin);
        bodies
            .iter()
            .enumerate()
            .map(|(i, b)| {
                let leaf = leaf_hash(b.as_bytes());
                prev = chain_next(&prev, &leaf);
                (i as i64 + 1, b.as_bytes().to_vec(), leaf, prev)
            })
            .collect()
    }

    fn verify(
        origin: &str,
        rows: &[(i64, Vec<u8>, Hash, Hash)],
    ) -> Result<VerifyReport, VerifyFailure> {
        let mut v = ChainVerifier::new(origin, 1);
        for (seq, body, leaf, chain) in rows {
            v.push(*seq, body, leaf, chain)?;
        }
        Ok(v.finish())
    }

    const BODIES: [&str; 4] = [r#"{"n":1}"#, r#"{"n":2}"#, r#"{"n":3}"#, r#"{"n":4}"#];

    #[test]
    fn intact_chain_verifies() {
        let rows = build("o", &BODIES);
        let report = verify("o", &rows).expect("intact");
        assert_eq!(report.events, 4);
        assert_eq!(report.last_seq, Some(4));
    }

    #[test]
    fn every_kind_of_tampering_names_the_first_bad_position() {
        let rows = build("o", &BODIES);
        // Modified body at 3.
        let mut modified = rows.clone();
        modified[2].1 = br#"{"n":33}"#.to_vec();
        assert_eq!(verify("o", &modified).map_err(|f| f.seq), Err(3));
        // Deleted event 2.
        let mut deleted = rows.clone();
        deleted.remove(1);
        assert_eq!(verify("o", &deleted).map_err(|f| f.seq), Err(2));
        // Swapped 2 and 3 (with their sequence numbers rewritten).
        let mut swapped = rows.clone();
        swapped.swap(1, 2);
        swapped[1].0 = 2;
        swapped[2].0 = 3;
        assert_eq!(verify("o", &swapped).map_err(|f| f.seq), Err(2));
        // Body and leaf rewritten consistently: the chain catches it.
        let mut releafed = rows.clone();
        releafed[1].1 = br#"{"n":22}"#.to_vec();
        releafed[1].2 = leaf_hash(&releafed[1].1);
        assert_eq!(verify("o", &releafed).map_err(|f| f.seq), Err(2));
        // Another origin.
        assert_eq!(verify("other", &rows).map_err(|f| f.seq), Err(1));
    }
}
