//! The Merkle tree over the audit log's leaf hashes, exactly as RFC 6962
//! section 2.1 / RFC 9162 section 2.1 define it, so that any third party
//! implementation of those RFCs checks our roots and proofs byte for byte.
//!
//! * `MTH({}) = SHA-256("")`
//! * `MTH({d0}) = leaf hash` (the leaf hash is [`crate::leaf_hash`], `SHA-256(0x00 || body)`)
//! * `MTH(D[n]) = SHA-256(0x01 || MTH(D[0:k]) || MTH(D[k:n]))`, `k` the largest
//!   power of two smaller than `n`.
//!
//! What is here:
//! * [`root`], [`inclusion_proof`], [`consistency_proof`]: convenience functions
//!   over a slice of leaf hashes (O(n) each).
//! * [`verify_inclusion`], [`verify_consistency`]: the verification algorithms
//!   of RFC 9162 sections 2.1.3.2 and 2.1.4.2. They take untrusted input and
//!   return an error, never panic.
//! * [`MerkleTree`]: all leaves plus the hashes of every complete subtree, so
//!   roots and proofs for any prefix of the log cost O(log n) after an O(n) build,
//!   and appending a leaf costs amortised O(1).
//! * [`CompactRange`]: only the O(log n) roots of the perfect subtrees covering
//!   the log (the "frontier"), enough to append leaves and compute the current
//!   root without keeping the leaves; a sequencer can persist it. An export
//!   verifier starts it from the left border of its range, appends the range's
//!   leaves and then the right border ([`CompactRange::append_subtree`]).
//! * [`compact_range_nodes`]: the canonical split of a leaf range into
//!   aligned perfect subtrees, which fixes the border hashes an export bundle
//!   carries ([`MerkleTree::compact_range`]).
//!
//! Positions are 0-based leaf indices; the audit log's sequence number `seq`
//! (which starts at 1) is leaf index `seq - 1`.

use crate::Hash;
use ring::digest::{Context, SHA256, digest};

/// Domain separation byte for interior nodes (leaves use [`crate::LEAF_PREFIX`]).
pub const NODE_PREFIX: u8 = 0x01;

/// A proof for a tree of at most 2^64 leaves never has more than 64 hashes;
/// longer input is refused before any hashing.
const MAX_PROOF_LEN: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MerkleError {
    #[error("leaf index {index} is outside a tree of size {size}")]
    IndexOutOfRange { index: u64, size: u64 },
    #[error("tree size {size} is larger than the {available} leaves available")]
    SizeOutOfRange { size: u64, available: u64 },
    #[error("old tree size {old_size} is larger than the new tree size {new_size}")]
    OldSizeTooLarge { old_size: u64, new_size: u64 },
    #[error("the proof has the wrong number of hashes for this position and tree size")]
    ProofLength,
    #[error("the proof does not lead to the expected root")]
    RootMismatch,
    #[error("the consistency proof does not lead to the old root")]
    OldRootMismatch,
    #[error("the consistency proof does not lead to the new root")]
    NewRootMismatch,
    #[error("a subtree of 2^{height} leaves cannot follow {size} leaves (not aligned)")]
    Unaligned { size: u64, height: u32 },
}

/// The root of the empty tree: SHA-256 of the empty string.
pub fn empty_root() -> Hash {
    crate::to_hash(digest(&SHA256, b"").as_ref())
}

/// An interior node: `SHA-256(0x01 || left || right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut ctx = Context::new(&SHA256);
    ctx.update(&[NODE_PREFIX]);
    ctx.update(left);
    ctx.update(right);
    crate::to_hash(ctx.finish().as_ref())
}

/// The largest power of two strictly smaller than `n` (`n >= 2`).
fn split_point(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1 << (63 - (n - 1).leading_zeros())
}

fn len_u64(leaves: &[Hash]) -> u64 {
    // usize is at most 64 bits on every supported target.
    leaves.len() as u64
}

/// Merkle tree hash of the given leaf hashes (RFC 9162 section 2.1.1).
pub fn root(leaves: &[Hash]) -> Hash {
    let mut range = CompactRange::new();
    for leaf in leaves {
        range.push(*leaf);
    }
    range.root()
}

/// Inclusion proof (audit path) for the leaf at `index` in the tree of all
/// `leaves` (RFC 9162 section 2.1.3.1). Builds a [`MerkleTree`]; when many
/// proofs are needed, build the tree once and ask it.
pub fn inclusion_proof(leaves: &[Hash], index: u64) -> Result<Vec<Hash>, MerkleError> {
    MerkleTree::from_leaves(leaves.to_vec()).inclusion_proof(index, len_u64(leaves))
}

/// Consistency proof between the tree of the first `old_size` leaves and the
/// tree of all `leaves` (RFC 9162 section 2.1.4.1).
pub fn consistency_proof(leaves: &[Hash], old_size: u64) -> Result<Vec<Hash>, MerkleError> {
    MerkleTree::from_leaves(leaves.to_vec()).consistency_proof(old_size, len_u64(leaves))
}

/// Verifies that `leaf` is the leaf at `index` of the tree of `size` leaves
/// whose root is `root` (RFC 9162 section 2.1.3.2).
pub fn verify_inclusion(
    leaf: &Hash,
    index: u64,
    size: u64,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), MerkleError> {
    if index >= size {
        return Err(MerkleError::IndexOutOfRange { index, size });
    }
    if proof.len() > MAX_PROOF_LEN {
        return Err(MerkleError::ProofLength);
    }
    // Variable names follow the RFC: `fn` is the node's index at the current
    // level, `sn` the index of the last node at that level.
    let mut f_n = index;
    let mut s_n = size - 1;
    let mut r = *leaf;
    for p in proof {
        if s_n == 0 {
            return Err(MerkleError::ProofLength);
        }
        if f_n & 1 == 1 || f_n == s_n {
            r = node_hash(p, &r);
            // A right-edge node without a sibling moves up unchanged.
            while f_n & 1 == 0 && f_n != 0 {
                f_n >>= 1;
                s_n >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        f_n >>= 1;
        s_n >>= 1;
    }
    if s_n != 0 {
        return Err(MerkleError::ProofLength);
    }
    if r != *root {
        return Err(MerkleError::RootMismatch);
    }
    Ok(())
}

/// Verifies that the tree of `old_size` leaves with root `old_root` is a prefix
/// of the tree of `new_size` leaves with root `new_root` (RFC 9162 section
/// 2.1.4.2). Two cases the RFC leaves to the caller are defined here: equal
/// sizes need an empty proof and equal roots; the empty old tree (size 0) is a
/// prefix of every tree, with an empty proof and the empty root as old root.
pub fn verify_consistency(
    old_size: u64,
    new_size: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> Result<(), MerkleError> {
    if old_size > new_size {
        return Err(MerkleError::OldSizeTooLarge { old_size, new_size });
    }
    if old_size == new_size || old_size == 0 {
        if !proof.is_empty() {
            return Err(MerkleError::ProofLength);
        }
        if old_size == 0 && *old_root != empty_root() {
            return Err(MerkleError::OldRootMismatch);
        }
        if old_size == new_size && old_root != new_root {
            return Err(MerkleError::RootMismatch);
        }
        return Ok(());
    }
    if proof.is_empty() || proof.len() > MAX_PROOF_LEN {
        return Err(MerkleError::ProofLength);
    }
    // When the old tree is a complete subtree its root is the first node of
    // the path, and the RFC leaves it out of the proof.
    let mut path: Vec<&Hash> = Vec::with_capacity(proof.len() + 1);
    if old_size.is_power_of_two() {
        path.push(old_root);
    }
    path.extend(proof.iter());

    let mut f_n = old_size - 1;
    let mut s_n = new_size - 1;
    while f_n & 1 == 1 {
        f_n >>= 1;
        s_n >>= 1;
    }
    let mut fr = *path[0];
    let mut sr = *path[0];
    for c in &path[1..] {
        if s_n == 0 {
            return Err(MerkleError::ProofLength);
        }
        if f_n & 1 == 1 || f_n == s_n {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            while f_n & 1 == 0 && f_n != 0 {
                f_n >>= 1;
                s_n >>= 1;
            }
        } else {
            sr = node_hash(&sr, c);
        }
        f_n >>= 1;
        s_n >>= 1;
    }
    if s_n != 0 {
        return Err(MerkleError::ProofLength);
    }
    if fr != *old_root {
        return Err(MerkleError::OldRootMismatch);
    }
    if sr != *new_root {
        return Err(MerkleError::NewRootMismatch);
    }
    Ok(())
}

/// A complete, aligned subtree: `index` at `level` covers the leaves
/// `[index * 2^level, (index + 1) * 2^level)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TreeNode {
    pub level: u8,
    pub index: u64,
    pub hash: Hash,
}

/// The canonical split of the leaf range `[begin, end)` into aligned perfect
/// subtrees, left to right, as `(first leaf index, height)`: a subtree of
/// height `h` covers `2^h` leaves and starts at a multiple of `2^h`. Each step
/// takes the largest such subtree that starts at the current position and
/// ends within the range (audit/SPEC.md section 9.3). For
/// `[0, n)` these are the peaks of a tree of `n` leaves; at most 2 * 64 nodes
/// for any range. An empty range (`begin >= end`) has no nodes.
pub fn compact_range_nodes(begin: u64, end: u64) -> Vec<(u64, u32)> {
    let mut nodes = Vec::new();
    let mut at = begin;
    while at < end {
        // Both bounds are at most 63: `at == 0` has 64 trailing zeros, but
        // then the length bound applies, and a length fits in 64 bits.
        let aligned = at.trailing_zeros();
        let fits = 63 - (end - at).leading_zeros();
        let height = aligned.min(fits);
        nodes.push((at, height));
        at += 1 << height;
    }
    nodes
}

/// The roots of the perfect subtrees that together cover a log of `size`
/// leaves, largest (leftmost) first: one per set bit of `size`. Enough state
/// to append leaves and compute the root in O(log n) without the leaves.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CompactRange {
    size: u64,
    peaks: Vec<Hash>,
}

impl CompactRange {
    pub fn new() -> Self {
        Self::default()
    }

    /// Restores a persisted range; refuses a peak count that does not match
    /// the size (one peak per set bit).
    pub fn from_parts(size: u64, peaks: Vec<Hash>) -> Result<Self, MerkleError> {
        if peaks.len() != size.count_ones() as usize {
            return Err(MerkleError::ProofLength);
        }
        Ok(Self { size, peaks })
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn peaks(&self) -> &[Hash] {
        &self.peaks
    }

    pub fn push(&mut self, leaf: Hash) {
        self.push_reporting(leaf, |_| {});
    }

    /// Appends a leaf and reports every complete subtree above the leaves
    /// that it completes, lowest first (for a persisted node table).
    pub fn push_reporting(&mut self, leaf: Hash, mut completed: impl FnMut(TreeNode)) {
        // Each trailing one bit of the old size is a perfect subtree of the
        // same height as the one being built: merge them, like a binary carry.
        let mut node = leaf;
        let mut size = self.size;
        let mut level = 0u8;
        while size & 1 == 1 {
            match self.peaks.pop() {
                Some(left) => node = node_hash(&left, &node),
                None => break, // unreachable: one peak per set bit
            }
            size >>= 1;
            level += 1;
            completed(TreeNode {
                level,
                index: ((self.size + 1) >> level) - 1,
                hash: node,
            });
        }
        self.peaks.push(node);
        self.size += 1;
    }

    /// Where the peaks of a log of `size` leaves sit, largest first: the
    /// complete subtree `(level, index)` for each set bit of `size`.
    pub fn peak_positions(size: u64) -> Vec<(u8, u64)> {
        (0..64u8)
            .rev()
            .filter(|level| size >> level & 1 == 1)
            .map(|level| (level, (size >> level) - 1))
            .collect()
    }

    /// Appends the root of a perfect subtree of `2^height` leaves that starts
    /// right after the range (a node of a right border). The range's size
    /// must be a multiple of `2^height`, which the canonical split
    /// ([`compact_range_nodes`]) guarantees; anything else is refused.
    pub fn append_subtree(&mut self, height: u32, hash: Hash) -> Result<(), MerkleError> {
        let width = match 1u64.checked_shl(height) {
            Some(w) if self.size.is_multiple_of(w) && self.size.checked_add(w).is_some() => w,
            _ => {
                return Err(MerkleError::Unaligned {
                    size: self.size,
                    height,
                });
            }
        };
        // The same carry as in `push`, starting at the subtree's height.
        let mut node = hash;
        let mut size = self.size >> height;
        while size & 1 == 1 {
            match self.peaks.pop() {
                Some(left) => node = node_hash(&left, &node),
                None => break, // unreachable: one peak per set bit
            }
            size >>= 1;
        }
        self.peaks.push(node);
        self.size += width;
        Ok(())
    }

    pub fn root(&self) -> Hash {
        // MTH of a non-perfect tree is node(largest perfect left subtree,
        // MTH(rest)), so fold the peaks from the right.
        let mut peaks = self.peaks.iter().rev();
        match peaks.next() {
            None => empty_root(),
            Some(last) => peaks.fold(*last, |acc, left| node_hash(left, &acc)),
        }
    }
}

/// A Merkle tree that keeps every leaf and the hash of every complete,
/// aligned subtree (level `h` holds the subtrees of `2^h` leaves). About twice
/// the memory of the leaves; answers roots and proofs for any prefix size in
/// O(log n).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MerkleTree {
    levels: Vec<Vec<Hash>>,
}

impl MerkleTree {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn from_leaves(leaves: Vec<Hash>) -> Self {
        let mut levels = vec![leaves];
        while let Some(below) = levels.last().filter(|level| level.len() >= 2) {
            let above: Vec<Hash> = below
                .chunks_exact(2)
                .map(|pair| node_hash(&pair[0], &pair[1]))
                .collect();
            levels.push(above);
        }
        Self { levels }
    }

    /// Appends a leaf; returns its index.
    pub fn push(&mut self, leaf: Hash) -> u64 {
        if self.levels.is_empty() {
            self.levels.push(Vec::new());
        }
        let index = self.size();
        let mut node = leaf;
        let mut height = 0;
        loop {
            if self.levels.len() == height {
                self.levels.push(Vec::new());
            }
            let level = &mut self.levels[height];
            level.push(node);
            // A level with an even count just completed a pair: their parent
            // is a new complete subtree one level up.
            if level.len() % 2 == 1 {
                break;
            }
            node = node_hash(&level[level.len() - 2], &level[level.len() - 1]);
            height += 1;
        }
        index
    }

    pub fn size(&self) -> u64 {
        self.levels.first().map_or(0, |l| len_u64(l))
    }

    pub fn leaf(&self, index: u64) -> Option<&Hash> {
        let i = usize::try_from(index).ok()?;
        self.levels.first()?.get(i)
    }

    pub fn leaves(&self) -> &[Hash] {
        self.levels.first().map_or(&[], |l| l.as_slice())
    }

    /// Root of the whole tree.
    pub fn root(&self) -> Hash {
        self.subtree_hash(0, self.size())
    }

    /// Root of the tree of the first `size` leaves (a past tree head).
    pub fn root_at(&self, size: u64) -> Result<Hash, MerkleError> {
        self.check_size(size)?;
        Ok(self.subtree_hash(0, size))
    }

    /// The hashes of the canonical split of `[begin, end)` into aligned
    /// perfect subtrees ([`compact_range_nodes`]), left to right: the border
    /// hashes of an export bundle. O(log n): every node is stored.
    pub fn compact_range(&self, begin: u64, end: u64) -> Result<Vec<Hash>, MerkleError> {
        self.check_size(end)?;
        if begin > end {
            return Err(MerkleError::OldSizeTooLarge {
                old_size: begin,
                new_size: end,
            });
        }
        Ok(compact_range_nodes(begin, end)
            .into_iter()
            .map(|(start, height)| self.subtree_hash(start, start + (1 << height)))
            .collect())
    }

    /// Inclusion proof of the leaf at `index` in the tree of the first `size`
    /// leaves (RFC 9162 section 2.1.3.1, `PATH(m, D[n])`).
    pub fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<Hash>, MerkleError> {
        self.check_size(size)?;
        Ok(inclusion_ranges(index, size)?
            .into_iter()
            .map(|(start, end)| self.subtree_hash(start, end))
            .collect())
    }

    /// Consistency proof between the trees of the first `old_size` and the
    /// first `new_size` leaves (RFC 9162 section 2.1.4.1, `PROOF(m, D[n])`).
    /// Empty when `old_size` is 0 or equal to `new_size`.
    pub fn consistency_proof(
        &self,
        old_size: u64,
        new_size: u64,
    ) -> Result<Vec<Hash>, MerkleError> {
        self.check_size(new_size)?;
        Ok(consistency_ranges(old_size, new_size)?
            .into_iter()
            .map(|(start, end)| self.subtree_hash(start, end))
            .collect())
    }

    fn check_size(&self, size: u64) -> Result<(), MerkleError> {
        let available = self.size();
        if size > available {
            return Err(MerkleError::SizeOutOfRange { size, available });
        }
        Ok(())
    }

    /// `MTH(D[start:end])`. Callers guarantee `end <= size`. A perfect,
    /// aligned range is a stored node; anything else splits as the RFC does,
    /// which reaches stored nodes after at most O(log n) steps.
    fn subtree_hash(&self, start: u64, end: u64) -> Hash {
        let len = end - start;
        if len == 0 {
            return empty_root();
        }
        if len.is_power_of_two() && start.is_multiple_of(len) {
            let height = len.trailing_zeros() as usize;
            let stored = usize::try_from(start / len)
                .ok()
                .and_then(|i| self.levels.get(height)?.get(i));
            if let Some(hash) = stored {
                return *hash;
            }
        }
        if len == 1 {
            // Only reachable if the caller broke `end <= size`; a fixed value
            // keeps this total without panicking.
            return empty_root();
        }
        let k = split_point(len);
        node_hash(
            &self.subtree_hash(start, start + k),
            &self.subtree_hash(start + k, end),
        )
    }
}

/// The leaf ranges `[start, end)` whose Merkle tree hashes make up the
/// inclusion proof of the leaf at `index` in a tree of `size` leaves, from
/// the leaf upwards (RFC 9162 section 2.1.3.1, `PATH(m, D[n])`). A proof is
/// these ranges' hashes, wherever the hashes come from: the leaves in
/// memory ([`MerkleTree`]) or a stored node table ([`NodePlan`]).
pub fn inclusion_ranges(index: u64, size: u64) -> Result<Vec<(u64, u64)>, MerkleError> {
    if index >= size {
        return Err(MerkleError::IndexOutOfRange { index, size });
    }
    let mut ranges = Vec::new();
    path(index, 0, size, &mut ranges);
    Ok(ranges)
}

/// The leaf ranges whose hashes make up the consistency proof between the
/// trees of `old_size` and `new_size` leaves (RFC 9162 section 2.1.4.1,
/// `PROOF(m, D[n])`); none when `old_size` is 0 or equal to `new_size`.
pub fn consistency_ranges(old_size: u64, new_size: u64) -> Result<Vec<(u64, u64)>, MerkleError> {
    if old_size > new_size {
        return Err(MerkleError::OldSizeTooLarge { old_size, new_size });
    }
    let mut ranges = Vec::new();
    if old_size > 0 && old_size < new_size {
        subproof(old_size, 0, new_size, true, &mut ranges);
    }
    Ok(ranges)
}

/// `PATH(m, D[start:end])`, as ranges, from the leaf upwards.
fn path(m: u64, start: u64, end: u64, out: &mut Vec<(u64, u64)>) {
    let n = end - start;
    if n <= 1 {
        return;
    }
    let k = split_point(n);
    if m < k {
        path(m, start, start + k, out);
        out.push((start + k, end));
    } else {
        path(m - k, start + k, end, out);
        out.push((start, start + k));
    }
}

/// `SUBPROOF(m, D[start:end], b)`, as ranges.
fn subproof(m: u64, start: u64, end: u64, complete: bool, out: &mut Vec<(u64, u64)>) {
    let n = end - start;
    if m == n {
        if !complete {
            out.push((start, end));
        }
        return;
    }
    let k = split_point(n);
    if m <= k {
        subproof(m, start, start + k, complete, out);
        out.push((start + k, end));
    } else {
        subproof(m - k, start + k, end, false, out);
        out.push((start, start + k));
    }
}

/// The position of a stored node: `(level, index)`, level 0 being a leaf;
/// node `index` of `level` covers leaves `[index * 2^level, (index + 1) * 2^level)`.
pub type NodePosition = (u8, u64);

/// Roots and proofs read from a stored node table instead of the leaves:
/// the plan names the O(log n) complete subtrees to read
/// ([`NodePlan::positions`]), and turns their hashes into the answer
/// ([`NodePlan::hashes`]). Every range a proof needs splits into at most
/// 64 aligned complete subtrees ([`compact_range_nodes`]), and within a
/// proof all but one range are complete subtrees themselves, so a proof
/// reads about `2 log2 n` nodes, whatever the log's size.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodePlan {
    ranges: Vec<(u64, u64)>,
}

impl NodePlan {
    /// The root of the tree of `size` leaves: one hash.
    pub fn root(size: u64) -> Self {
        Self {
            ranges: vec![(0, size)],
        }
    }

    /// The leaf at `index` itself: one hash.
    pub fn leaf(index: u64) -> Self {
        Self {
            ranges: vec![(index, index.saturating_add(1))],
        }
    }

    /// How many hashes [`NodePlan::hashes`] gives: one per planned range.
    pub fn len(&self) -> usize {
        self.ranges.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// [`inclusion_ranges`]: the proof's hashes, leaf to root.
    pub fn inclusion(index: u64, size: u64) -> Result<Self, MerkleError> {
        Ok(Self {
            ranges: inclusion_ranges(index, size)?,
        })
    }

    /// [`compact_range_nodes`] of `[begin, end)`: one hash per aligned
    /// subtree, left to right (the borders of an export bundle).
    pub fn compact_range(begin: u64, end: u64) -> Self {
        Self {
            ranges: compact_range_nodes(begin, end)
                .into_iter()
                .map(|(start, height)| (start, start + (1 << height)))
                .collect(),
        }
    }

    /// [`consistency_ranges`]: the proof's hashes.
    pub fn consistency(old_size: u64, new_size: u64) -> Result<Self, MerkleError> {
        Ok(Self {
            ranges: consistency_ranges(old_size, new_size)?,
        })
    }

    /// Plans in sequence: the hashes of `self`, then those of `next`, read
    /// in one go.
    pub fn then(mut self, next: NodePlan) -> Self {
        self.ranges.extend(next.ranges);
        self
    }

    fn nodes(range: (u64, u64)) -> impl Iterator<Item = NodePosition> {
        compact_range_nodes(range.0, range.1)
            .into_iter()
            // The height of an aligned subtree within 2^64 leaves is < 64.
            .map(|(first, height)| (height as u8, first >> height))
    }

    /// Every node to read, each once, in ascending order.
    pub fn positions(&self) -> Vec<NodePosition> {
        let mut positions: Vec<NodePosition> =
            self.ranges.iter().flat_map(|r| Self::nodes(*r)).collect();
        positions.sort_unstable();
        positions.dedup();
        positions
    }

    /// One hash per planned range, in order, from the nodes read; `None`
    /// names the first position `node` does not know (a broken table).
    pub fn hashes(
        &self,
        node: impl Fn(NodePosition) -> Option<Hash>,
    ) -> Result<Vec<Hash>, NodePosition> {
        self.ranges
            .iter()
            .map(|range| {
                // A range's hash is its aligned subtrees folded from the
                // right (MTH splits off the largest left subtree first).
                let hashes = Self::nodes(*range)
                    .map(|position| node(position).ok_or(position))
                    .collect::<Result<Vec<Hash>, NodePosition>>()?;
                let mut from_right = hashes.iter().rev();
                Ok(match from_right.next() {
                    None => empty_root(),
                    Some(last) => from_right.fold(*last, |acc, left| node_hash(left, &acc)),
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::leaf_hash;
    use proptest::prelude::*;

    fn leaves(n: u64) -> Vec<Hash> {
        (0..n)
            .map(|i| leaf_hash(format!("leaf {i}").as_bytes()))
            .collect()
    }

    /// RFC 9162 section 2.1 written as literally as possible, as an oracle
    /// independent of [`MerkleTree`]'s stored levels.
    mod reference {
        use super::*;

        pub fn mth(d: &[Hash]) -> Hash {
            match d.len() {
                0 => empty_root(),
                1 => d[0],
                n => {
                    let k = split_point(n as u64) as usize;
                    node_hash(&mth(&d[..k]), &mth(&d[k..]))
                }
            }
        }

        pub fn path(m: usize, d: &[Hash]) -> Vec<Hash> {
            let n = d.len();
            if n <= 1 {
                return vec![];
            }
            let k = split_point(n as u64) as usize;
            if m < k {
                let mut p = path(m, &d[..k]);
                p.push(mth(&d[k..]));
                p
            } else {
                let mut p = path(m - k, &d[k..]);
                p.push(mth(&d[..k]));
                p
            }
        }

        pub fn subproof(m: usize, d: &[Hash], b: bool) -> Vec<Hash> {
            let n = d.len();
            if m == n {
                return if b { vec![] } else { vec![mth(d)] };
            }
            let k = split_point(n as u64) as usize;
            if m <= k {
                let mut p = subproof(m, &d[..k], b);
                p.push(mth(&d[k..]));
                p
            } else {
                let mut p = subproof(m - k, &d[k..], false);
                p.push(mth(&d[..k]));
                p
            }
        }
    }

    fn flip(h: &Hash) -> Hash {
        let mut h = *h;
        h[7] ^= 0x20;
        h
    }

    /// The Certificate Transparency reference test vectors (RFC 6962 tree of
    /// 8 leaves), also recomputed by an independent Python implementation.
    const CT_INPUTS: [&[u8]; 8] = [
        b"",
        b"\x00",
        b"\x10",
        b"\x20\x21",
        b"\x30\x31",
        b"\x40\x41\x42\x43",
        b"\x50\x51\x52\x53\x54\x55\x56\x57",
        b"\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f",
    ];
    const CT_ROOTS: [&str; 8] = [
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ];

    fn hexes(proof: &[Hash]) -> Vec<String> {
        proof.iter().map(hex::encode).collect()
    }

    #[test]
    fn certificate_transparency_reference_vectors() {
        let ct: Vec<Hash> = CT_INPUTS.iter().map(|d| leaf_hash(d)).collect();
        for (i, expected) in CT_ROOTS.iter().enumerate() {
            assert_eq!(hex::encode(root(&ct[..=i])), *expected, "size {}", i + 1);
        }
        assert_eq!(
            hex::encode(empty_root()),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        // Inclusion proof of leaf 0 and consistency proofs from the CT tests.
        let proof = inclusion_proof(&ct, 0).unwrap();
        assert_eq!(
            hexes(&proof),
            [
                "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
            ]
        );
        assert_eq!(consistency_proof(&ct, 1).unwrap(), proof);
        assert_eq!(
            hexes(&consistency_proof(&ct, 6).unwrap()),
            [
                "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ]
        );
        assert_eq!(
            hexes(&consistency_proof(&ct[..5], 2).unwrap()),
            [
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            ]
        );
    }

    #[test]
    fn roots_match_the_reference_and_every_representation() {
        let all = leaves(70);
        let tree = MerkleTree::from_leaves(all.clone());
        let mut grown = MerkleTree::new();
        let mut range = CompactRange::new();
        assert_eq!(range.root(), empty_root());
        assert_eq!(tree.root_at(0).unwrap(), empty_root());
        for n in 1..=70usize {
            grown.push(all[n - 1]);
            range.push(all[n - 1]);
            let expected = reference::mth(&all[..n]);
            assert_eq!(root(&all[..n]), expected, "root({n})");
            assert_eq!(tree.root_at(n as u64).unwrap(), expected, "root_at({n})");
            assert_eq!(grown.root(), expected, "pushed {n}");
            assert_eq!(MerkleTree::from_leaves(all[..n].to_vec()), grown);
            assert_eq!(range.root(), expected, "compact {n}");
            let restored = CompactRange::from_parts(n as u64, range.peaks().to_vec()).unwrap();
            assert_eq!(restored, range);
        }
        assert_eq!(
            tree.root_at(71),
            Err(MerkleError::SizeOutOfRange {
                size: 71,
                available: 70
            })
        );
        assert!(CompactRange::from_parts(3, vec![all[0]]).is_err());
    }

    #[test]
    fn compact_range_nodes_are_aligned_maximal_and_cover_the_range() {
        for end in 0..=70u64 {
            for begin in 0..=end {
                let nodes = compact_range_nodes(begin, end);
                let mut at = begin;
                for &(start, height) in &nodes {
                    let width = 1u64 << height;
                    assert_eq!(start, at);
                    assert!(start.is_multiple_of(width) && start + width <= end);
                    // Maximal: the next larger aligned subtree would not fit.
                    let wider = width * 2;
                    assert!(!start.is_multiple_of(wider) || start + wider > end);
                    at += width;
                }
                assert_eq!(at, end, "[{begin}, {end})");
            }
            // [0, n): one node per set bit of n, largest first (the peaks).
            let heights: Vec<u32> = compact_range_nodes(0, end).iter().map(|n| n.1).collect();
            assert_eq!(heights.len(), end.count_ones() as usize);
            assert!(heights.windows(2).all(|w| w[0] > w[1]));
        }
        assert!(compact_range_nodes(5, 3).is_empty());
        assert_eq!(compact_range_nodes(0, u64::MAX).len(), 64);
        assert_eq!(compact_range_nodes(1, u64::MAX).len(), 126);
    }

    #[test]
    fn borders_and_a_range_merge_into_the_root() {
        let all = leaves(37);
        let tree = MerkleTree::from_leaves(all.clone());
        for size in 1..=37u64 {
            let expected = reference::mth(&all[..size as usize]);
            for first in 0..size {
                for last in first + 1..=size {
                    // Leaf indices [first, last) are the range.
                    let left = tree.compact_range(0, first).unwrap();
                    let mut range = CompactRange::from_parts(first, left.clone()).unwrap();
                    for leaf in &all[first as usize..last as usize] {
                        range.push(*leaf);
                    }
                    let right = tree.compact_range(last, size).unwrap();
                    let heights = compact_range_nodes(last, size);
                    assert_eq!(heights.len(), right.len());
                    for ((_, height), hash) in heights.iter().zip(&right) {
                        range.append_subtree(*height, *hash).unwrap();
                    }
                    assert_eq!(range.size(), size);
                    assert_eq!(range.root(), expected, "{first}..{last} of {size}");
                    // Any changed border hash changes the root.
                    if let Some(h) = right.first() {
                        let mut wrong = CompactRange::from_parts(first, left.clone()).unwrap();
                        for leaf in &all[first as usize..last as usize] {
                            wrong.push(*leaf);
                        }
                        wrong.append_subtree(heights[0].1, flip(h)).unwrap();
                        for ((_, height), hash) in heights.iter().zip(&right).skip(1) {
                            wrong.append_subtree(*height, *hash).unwrap();
                        }
                        assert_ne!(wrong.root(), expected);
                    }
                }
            }
        }
        assert!(tree.compact_range(3, 38).is_err());
        assert!(tree.compact_range(4, 3).is_err());
        let mut range = CompactRange::new();
        range.push(all[0]);
        assert_eq!(
            range.append_subtree(1, all[1]),
            Err(MerkleError::Unaligned { size: 1, height: 1 })
        );
        assert!(range.append_subtree(64, all[1]).is_err());
        assert!(range.append_subtree(0, all[1]).is_ok());
        assert_eq!(range.root(), reference::mth(&all[..2]));
    }

    #[test]
    fn every_inclusion_proof_verifies_and_tampering_fails() {
        let all = leaves(71);
        let tree = MerkleTree::from_leaves(all.clone());
        let roots: Vec<Hash> = (0..=71).map(|n| tree.root_at(n).unwrap()).collect();
        for size in 1..=70u64 {
            let root = roots[size as usize];
            for index in 0..size {
                let leaf = all[index as usize];
                let proof = tree.inclusion_proof(index, size).unwrap();
                let n = size as usize;
                assert_eq!(proof, reference::path(index as usize, &all[..n]));
                verify_inclusion(&leaf, index, size, &proof, &root).unwrap();
                // Tampered leaf, root, and each hash of the path.
                assert!(verify_inclusion(&flip(&leaf), index, size, &proof, &root).is_err());
                assert!(verify_inclusion(&leaf, index, size, &proof, &flip(&root)).is_err());
                for i in 0..proof.len() {
                    let mut bad = proof.clone();
                    bad[i] = flip(&bad[i]);
                    assert!(verify_inclusion(&leaf, index, size, &bad, &root).is_err());
                }
                // Longer and shorter paths.
                let mut longer = proof.clone();
                longer.push(leaf);
                assert!(verify_inclusion(&leaf, index, size, &longer, &root).is_err());
                if !proof.is_empty() {
                    let shorter = &proof[..proof.len() - 1];
                    assert!(verify_inclusion(&leaf, index, size, shorter, &root).is_err());
                }
                // Any other position in the same tree.
                for other in 0..size {
                    if other != index {
                        assert!(
                            verify_inclusion(&leaf, other, size, &proof, &root).is_err(),
                            "index {index} accepted as {other} in size {size}"
                        );
                    }
                }
                // The neighbouring tree heads.
                let next = roots[size as usize + 1];
                assert!(verify_inclusion(&leaf, index, size + 1, &proof, &next).is_err());
                if index < size - 1 {
                    let prev = roots[size as usize - 1];
                    assert!(verify_inclusion(&leaf, index, size - 1, &proof, &prev).is_err());
                }
                // Out of range.
                assert_eq!(
                    verify_inclusion(&leaf, size, size, &proof, &root),
                    Err(MerkleError::IndexOutOfRange { index: size, size })
                );
            }
        }
        assert!(verify_inclusion(&all[0], 0, 0, &[], &empty_root()).is_err());
        assert!(tree.inclusion_proof(71, 71).is_err());
        assert!(tree.inclusion_proof(0, 72).is_err());
        assert_eq!(inclusion_proof(&all[..1], 0).unwrap(), Vec::<Hash>::new());
    }

    #[test]
    fn every_consistency_proof_verifies_and_tampering_fails() {
        let all = leaves(41);
        let tree = MerkleTree::from_leaves(all.clone());
        let roots: Vec<Hash> = (0..=41).map(|n| tree.root_at(n).unwrap()).collect();
        for new in 1..=40u64 {
            for old in 0..=new {
                let (o, n) = (old as usize, new as usize);
                let proof = tree.consistency_proof(old, new).unwrap();
                if old > 0 && old < new {
                    assert_eq!(proof, reference::subproof(o, &all[..n], true));
                } else {
                    assert!(proof.is_empty());
                }
                verify_consistency(old, new, &roots[o], &roots[n], &proof)
                    .unwrap_or_else(|e| panic!("{old} -> {new}: {e}"));
                assert!(verify_consistency(old, new, &flip(&roots[o]), &roots[n], &proof).is_err());
                if old > 0 {
                    assert!(
                        verify_consistency(old, new, &roots[o], &flip(&roots[n]), &proof).is_err()
                    );
                }
                for i in 0..proof.len() {
                    let mut bad = proof.clone();
                    bad[i] = flip(&bad[i]);
                    assert!(verify_consistency(old, new, &roots[o], &roots[n], &bad).is_err());
                }
                let mut longer = proof.clone();
                longer.push(roots[o]);
                assert!(verify_consistency(old, new, &roots[o], &roots[n], &longer).is_err());
                if !proof.is_empty() {
                    let shorter = &proof[..proof.len() - 1];
                    assert!(verify_consistency(old, new, &roots[o], &roots[n], shorter).is_err());
                }
                // A different old size with its own (genuine) root must fail.
                if old > 1 && old < new {
                    let other = o - 1;
                    assert!(
                        verify_consistency(old - 1, new, &roots[other], &roots[n], &proof).is_err(),
                        "proof {old}->{new} accepted for {}",
                        old - 1
                    );
                }
                // A fork: the new tree with its last leaf replaced (the empty
                // old tree is a prefix of every tree, so it has nothing to catch).
                if old > 0 && old < new {
                    let mut forked = all[..n].to_vec();
                    forked[n - 1] = flip(&forked[n - 1]);
                    let forked_root = root(&forked);
                    assert!(verify_consistency(old, new, &roots[o], &forked_root, &proof).is_err());
                }
            }
            let n = new as usize;
            assert_eq!(
                verify_consistency(new + 1, new, &roots[n + 1], &roots[n], &[]),
                Err(MerkleError::OldSizeTooLarge {
                    old_size: new + 1,
                    new_size: new
                })
            );
        }
        assert!(tree.consistency_proof(5, 4).is_err());
        assert!(tree.consistency_proof(5, 42).is_err());
        assert_eq!(
            consistency_proof(&all[..8], 3).unwrap(),
            tree.consistency_proof(3, 8).unwrap()
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn random_large_trees_prove_and_refuse(
            size in 1u64..3000,
            index_seed in any::<u64>(),
            old_seed in any::<u64>(),
            byte in 0usize..32,
            bit in 0u8..8,
        ) {
            let all = leaves(size);
            let tree = MerkleTree::from_leaves(all.clone());
            let root = tree.root();
            prop_assert_eq!(root, reference::mth(&all));
            let index = index_seed % size;
            let proof = tree.inclusion_proof(index, size).unwrap();
            prop_assert!(verify_inclusion(&all[index as usize], index, size, &proof, &root).is_ok());
            if !proof.is_empty() {
                let mut bad = proof.clone();
                let at = (index_seed as usize / 7) % bad.len();
                bad[at][byte] ^= 1 << bit;
                prop_assert!(verify_inclusion(&all[index as usize], index, size, &bad, &root).is_err());
            }
            let old = old_seed % (size + 1);
            let old_root = tree.root_at(old).unwrap();
            let cproof = tree.consistency_proof(old, size).unwrap();
            prop_assert!(verify_consistency(old, size, &old_root, &root, &cproof).is_ok());
            let mut bad_root = root;
            bad_root[byte] ^= 1 << bit;
            // The empty tree is a prefix of every tree: nothing binds the new root.
            if old > 0 {
                prop_assert!(verify_consistency(old, size, &old_root, &bad_root, &cproof).is_err());
            }
        }

        #[test]
        fn verification_never_panics_on_garbage(
            leaf in any::<[u8; 32]>(),
            index in any::<u64>(),
            size in any::<u64>(),
            old in any::<u64>(),
            proof in proptest::collection::vec(any::<[u8; 32]>(), 0..80),
            root in any::<[u8; 32]>(),
        ) {
            let _ = verify_inclusion(&leaf, index, size, &proof, &root);
            let _ = verify_consistency(old, size, &leaf, &root, &proof);
            let _ = verify_consistency(old.min(size), size, &leaf, &root, &proof);
        }
    }

    #[test]
    fn compact_range_reports_exactly_the_complete_subtrees() {
        let leaves: Vec<Hash> = (0u32..300)
            .map(|i| crate::leaf_hash(&i.to_be_bytes()))
            .collect();
        let tree = MerkleTree::from_leaves(leaves.clone());
        let mut range = CompactRange::new();
        let mut reported = Vec::new();
        for leaf in &leaves {
            range.push_reporting(*leaf, |node| reported.push(node));
            // The peaks sit where `peak_positions` says.
            let peaks: Vec<Hash> = CompactRange::peak_positions(range.size())
                .into_iter()
                .map(|(level, index)| tree.levels[usize::from(level)][index as usize])
                .collect();
            assert_eq!(peaks, range.peaks(), "size {}", range.size());
        }
        let expected: usize = tree.levels.iter().skip(1).map(Vec::len).sum();
        assert_eq!(reported.len(), expected);
        for node in reported {
            assert_eq!(
                tree.levels[usize::from(node.level)][node.index as usize],
                node.hash
            );
        }
    }

    /// The node a stored table would hold at `(level, index)`, from a tree
    /// built in memory.
    fn stored(tree: &MerkleTree, (level, index): NodePosition) -> Option<Hash> {
        tree.levels
            .get(usize::from(level))?
            .get(usize::try_from(index).ok()?)
            .copied()
    }

    #[test]
    fn a_node_plan_answers_what_the_leaves_answer_for_every_small_tree() {
        let tree = MerkleTree::from_leaves(leaves(70));
        for size in 0..=70u64 {
            let root = NodePlan::root(size).hashes(|p| stored(&tree, p)).unwrap();
            assert_eq!(root, vec![tree.root_at(size).unwrap()], "root of {size}");
            for index in 0..size {
                let plan = NodePlan::inclusion(index, size).unwrap();
                assert_eq!(
                    plan.hashes(|p| stored(&tree, p)).unwrap(),
                    tree.inclusion_proof(index, size).unwrap(),
                    "inclusion of {index} in {size}"
                );
            }
            for old in 0..=size {
                let plan = NodePlan::consistency(old, size).unwrap();
                assert_eq!(
                    plan.hashes(|p| stored(&tree, p)).unwrap(),
                    tree.consistency_proof(old, size).unwrap(),
                    "consistency of {old} with {size}"
                );
            }
        }
    }

    #[test]
    fn a_node_plan_reads_logarithmically_many_nodes() {
        let size = 1_000_000_007u64;
        for index in [0, 1, size / 2, size - 2, size - 1] {
            let plan = NodePlan::inclusion(index, size).unwrap();
            assert!(plan.positions().len() <= 64, "{}", plan.positions().len());
        }
        let plan = NodePlan::consistency(size / 3, size)
            .unwrap()
            .then(NodePlan::root(size));
        assert!(plan.positions().len() <= 2 * 64);
        assert_eq!(
            NodePlan::root(size).positions().len(),
            size.count_ones() as usize
        );
    }

    #[test]
    fn a_node_plan_names_the_missing_node() {
        let tree = MerkleTree::from_leaves(leaves(6));
        let plan = NodePlan::inclusion(0, 6).unwrap();
        let missing = plan.hashes(|p| (p != (2, 1)).then(|| stored(&tree, p)).flatten());
        assert_eq!(missing, Ok(tree.inclusion_proof(0, 6).unwrap()));
        let missing = plan.hashes(|p| (p != (0, 1)).then(|| stored(&tree, p)).flatten());
        assert_eq!(missing, Err((0, 1)));
    }
}
