#!/usr/bin/env python3
"""Offline verifier for creditops audit export bundles (audit/SPEC.md, version 2).

Usage:
    python3 verify.py BUNDLE_DIR --key VERIFIER_KEY [--key ...]
    python3 verify.py BUNDLE_DIR --trust-bundle-keys
    python3 verify.py --vectors VECTORS_DIR

BUNDLE_DIR is an unpacked export bundle. With --key (the verifier key the bank
published) the checkpoint must be signed by one of the given keys: the bundle
is then authentic. Without --key the checkpoint can only be checked with the
keys in the bundle's own keys.txt, which anybody who forges a bundle writes
too: that proves the bundle intact and internally consistent, not who made it,
so the verdict is "unauthenticated" (exit status 4) unless --trust-bundle-keys
says the bundle's keys.txt was compared with the published keys by other
means.

Checks, in this order (the first failure is reported, with the first bad
sequence number when it concerns an entry): required files, manifest.json,
keys.txt, the checkpoint signature, the openssl companion files
(checkpoint-body.txt, checkpoint.sig, public-key.pem), the compact-range
borders (borders.json), every entry in order (sequence, leaf = SHA-256(0x00 ||
body), chain = SHA-256(previous || leaf), JSON body), the RFC 6962 Merkle root
of left border + the entries' leaves + right border against the checkpoint
root, the consistency proof from previous-checkpoint.txt (if present), and
SHA256SUMS.

Python 3.8+ standard library only. Ed25519 verification is the RFC 8032
reference algorithm (section 5.1.7) in pure Python, so no other tool is needed.
The same signature can be checked with OpenSSL 3:
    openssl pkeyutl -verify -pubin -inkey public-key.pem -rawin \
        -in checkpoint-body.txt -sigfile checkpoint.sig

Exit status: 0 verified (with a trusted key, or --trust-bundle-keys), 1
verification failed, 2 usage or read error, 4 intact but unauthenticated (no
trusted key given).
"""

import argparse
import base64
import hashlib
import json
import os
import re
import sys
import unicodedata

BUNDLE_FORMAT = "creditops-audit-bundle"
BUNDLE_VERSION = 2

MANIFEST = "manifest.json"
KEYS = "keys.txt"
CHECKPOINT = "checkpoint.txt"
CHECKPOINT_BODY = "checkpoint-body.txt"
CHECKPOINT_SIG = "checkpoint.sig"
PUBLIC_KEY = "public-key.pem"
ENTRIES = "entries.jsonl"
BORDERS = "borders.json"
SHA256SUMS = "SHA256SUMS"
PREVIOUS_CHECKPOINT = "previous-checkpoint.txt"
CONSISTENCY = "consistency.json"
REQUIRED_FILES = [MANIFEST, KEYS, CHECKPOINT, CHECKPOINT_BODY, CHECKPOINT_SIG,
                  PUBLIC_KEY, ENTRIES, BORDERS, SHA256SUMS]
RECIPIENT_README = "README.txt"
OPTIONAL_FILES = [PREVIOUS_CHECKPOINT, CONSISTENCY, RECIPIENT_README]

MAX_NOTE_BYTES = 1 << 20
MAX_SIGNATURES = 100
MAX_PROOF_LEN = 64
U64_MAX = (1 << 64) - 1
SIGNATURE_LINE_PREFIX = "\u2014 "
ED25519_SIGNATURE_TYPE = 0x01
ED25519_SPKI_PREFIX = bytes.fromhex("302a300506032b6570032100")
HEX64 = re.compile(r"[0-9a-f]{64}\Z")
JSON_MAX_DEPTH = 128
# One entries.jsonl line (SPEC 9.2), matched on bytes: the body is every byte
# between the fixed prefix and the final "}".
ENTRY_LINE = re.compile(
    rb'\{"seq":(0|[1-9][0-9]*),"leaf":"([0-9a-f]{64})","chain":"([0-9a-f]{64})","body":(.*)\}\Z',
    re.DOTALL)
VERSION_1_REFUSED = ("this is a version 1 bundle (inclusion proofs in proofs.jsonl); version 1 "
                     "is no longer supported: ask for a new export, which is version 2")


class Failure(Exception):
    """A failed check: `check` is the check name shared with the Rust
    verifier, `seq` the first bad sequence number if an entry is at fault."""

    def __init__(self, check, seq, reason):
        super().__init__(reason)
        self.check = check
        self.seq = seq
        self.reason = reason

    def __str__(self):
        where = "" if self.seq is None else " seq=%d" % self.seq
        return "check=%s%s: %s" % (self.check, where, self.reason)


# ---------------------------------------------------------------------------
# Ed25519 verification, RFC 8032 section 5.1.7 (after the section 6 code).

_P = 2 ** 255 - 19
_L = 2 ** 252 + 27742317777372353535851937790883648493
_D = -121665 * pow(121666, _P - 2, _P) % _P
_SQRT_M1 = pow(2, (_P - 1) // 4, _P)


def _inv(x):
    return pow(x, _P - 2, _P)


def _point_add(p, q):
    a = (p[1] - p[0]) * (q[1] - q[0]) % _P
    b = (p[1] + p[0]) * (q[1] + q[0]) % _P
    c = 2 * p[3] * q[3] * _D % _P
    d = 2 * p[2] * q[2] % _P
    e, f, g, h = b - a, d - c, d + c, b + a
    return (e * f % _P, g * h % _P, f * g % _P, e * h % _P)


def _point_mul(s, p):
    q = (0, 1, 1, 0)  # neutral element
    while s > 0:
        if s & 1:
            q = _point_add(q, p)
        p = _point_add(p, p)
        s >>= 1
    return q


def _point_equal(p, q):
    # x1 / z1 == x2 / z2 and y1 / z1 == y2 / z2, without divisions.
    return ((p[0] * q[2] - q[0] * p[2]) % _P == 0
            and (p[1] * q[2] - q[1] * p[2]) % _P == 0)


def _recover_x(y, sign):
    if y >= _P:
        return None
    x2 = (y * y - 1) * _inv(_D * y * y + 1)
    if x2 == 0:
        return None if sign else 0
    x = pow(x2, (_P + 3) // 8, _P)
    if (x * x - x2) % _P != 0:
        x = x * _SQRT_M1 % _P
    if (x * x - x2) % _P != 0:
        return None
    if (x & 1) != sign:
        x = _P - x
    return x


def _point_decompress(s):
    if len(s) != 32:
        return None
    y = int.from_bytes(s, "little")
    sign = y >> 255
    y &= (1 << 255) - 1
    x = _recover_x(y, sign)
    if x is None:
        return None
    return (x, y, 1, x * y % _P)


def _point_compress(p):
    zinv = _inv(p[2])
    x, y = p[0] * zinv % _P, p[1] * zinv % _P
    return int.to_bytes(y | ((x & 1) << 255), 32, "little")


_G_Y = 4 * _inv(5) % _P
_G = (_recover_x(_G_Y, 0), _G_Y, 1, _recover_x(_G_Y, 0) * _G_Y % _P)


def ed25519_public_key(seed):
    """Public key of a 32-byte seed (used only to check the test vectors)."""
    h = hashlib.sha512(seed).digest()
    a = int.from_bytes(h[:32], "little")
    a &= (1 << 254) - 8
    a |= 1 << 254
    return _point_compress(_point_mul(a, _G))


def ed25519_verify(public, msg, signature):
    if len(public) != 32 or len(signature) != 64:
        return False
    a = _point_decompress(public)
    if a is None:
        return False
    r = _point_decompress(signature[:32])
    if r is None:
        return False
    s = int.from_bytes(signature[32:], "little")
    if s >= _L:
        return False
    h = int.from_bytes(hashlib.sha512(signature[:32] + public + msg).digest(), "little") % _L
    return _point_equal(_point_mul(s, _G), _point_add(r, _point_mul(h, a)))


# ---------------------------------------------------------------------------
# Hashes, chain and Merkle tree (RFC 6962 / RFC 9162).

def sha256(data):
    return hashlib.sha256(data).digest()


def leaf_hash(body):
    return sha256(b"\x00" + body)


def node_hash(left, right):
    return sha256(b"\x01" + left + right)


def chain_genesis(origin):
    return sha256(origin.encode("utf-8"))


def chain_next(previous, leaf):
    return sha256(previous + leaf)


def _split_point(n):
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def merkle_root(leaves):
    """MTH(D[n]) as defined in RFC 9162 section 2.1.1."""
    if not leaves:
        return sha256(b"")
    if len(leaves) == 1:
        return leaves[0]
    k = _split_point(len(leaves))
    return node_hash(merkle_root(leaves[:k]), merkle_root(leaves[k:]))


def compact_range_nodes(begin, end):
    """The canonical split of leaf indices [begin, end) into aligned perfect
    subtrees, left to right, as (first index, height): each step takes the
    largest subtree that starts at the current index (a multiple of its
    width) and ends within the range (SPEC section 9.3)."""
    nodes = []
    while begin < end:
        height = 0
        while begin % (2 << height) == 0 and begin + (2 << height) <= end:
            height += 1
        nodes.append((begin, height))
        begin += 1 << height
    return nodes


class RootBuilder:
    """Merges aligned perfect subtrees, added left to right, into the RFC 6962
    root (SPEC section 9.3): a stack of (height, hash), merged like a binary
    carry, then folded from the right."""

    def __init__(self):
        self.stack = []

    def add(self, height, node):
        while self.stack and self.stack[-1][0] == height:
            _, left = self.stack.pop()
            node = node_hash(left, node)
            height += 1
        self.stack.append((height, node))

    def root(self):
        if not self.stack:
            return sha256(b"")
        root = self.stack[-1][1]
        for _, left in reversed(self.stack[:-1]):
            root = node_hash(left, root)
        return root


def verify_inclusion(leaf, index, size, proof, root):
    """RFC 9162 section 2.1.3.2. Returns None if valid, else the reason."""
    if index >= size:
        return "leaf index %d is outside a tree of size %d" % (index, size)
    if len(proof) > MAX_PROOF_LEN:
        return "the proof has the wrong number of hashes"
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return "the proof has the wrong number of hashes"
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while fn & 1 == 0 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        return "the proof has the wrong number of hashes"
    if r != root:
        return "the proof does not lead to the checkpoint root"
    return None


def verify_consistency(old_size, new_size, old_root, new_root, proof):
    """RFC 9162 section 2.1.4.2 (plus the equal-size and empty-tree cases of
    SPEC.md). Returns None if valid, else the reason."""
    if old_size > new_size:
        return "old size %d is larger than new size %d" % (old_size, new_size)
    if old_size == new_size or old_size == 0:
        if proof:
            return "the proof has the wrong number of hashes"
        if old_size == 0 and old_root != sha256(b""):
            return "the old root is not the empty root"
        if old_size == new_size and old_root != new_root:
            return "equal sizes with different roots"
        return None
    if not proof or len(proof) > MAX_PROOF_LEN:
        return "the proof has the wrong number of hashes"
    path = list(proof)
    if old_size & (old_size - 1) == 0:
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return "the proof has the wrong number of hashes"
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while fn & 1 == 0 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        return "the proof has the wrong number of hashes"
    if fr != old_root:
        return "the proof does not lead to the old root"
    if sr != new_root:
        return "the proof does not lead to the new root"
    return None


# ---------------------------------------------------------------------------
# Strict parsing helpers (they mirror the Rust verifier's serde rules).

def b64decode_strict(s):
    """Standard base64 with padding, canonical (what re-encodes identically)."""
    try:
        raw = base64.b64decode(s.encode("ascii"), validate=True)
    except (ValueError, UnicodeEncodeError):
        return None
    if base64.b64encode(raw).decode("ascii") != s:
        return None
    return raw


def parse_hash(s):
    if isinstance(s, str) and HEX64.match(s):
        return bytes.fromhex(s)
    return None


def _no_duplicates(pairs):
    obj = {}
    for k, v in pairs:
        if k in obj:
            raise ValueError("duplicate field %r" % k)
        obj[k] = v
    return obj


def _reject_constant(name):
    raise ValueError("%s is not JSON" % name)


def _check_strings(value):
    """Rejects strings that are not valid Unicode (lone surrogates)."""
    if isinstance(value, str):
        value.encode("utf-8")
    elif isinstance(value, list):
        for v in value:
            _check_strings(v)
    elif isinstance(value, dict):
        for k, v in value.items():
            _check_strings(k)
            _check_strings(v)


def _is_u64(v):
    return type(v) is int and 0 <= v <= U64_MAX


def load_record(text, fields, strict_keys=True):
    """A JSON object with exactly `fields` (name -> 'u64' | 'str' | 'strs')."""
    obj = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_reject_constant)
    _check_strings(obj)
    if not isinstance(obj, dict):
        raise ValueError("not a JSON object")
    for name, kind in fields.items():
        if name not in obj:
            raise ValueError("missing field %r" % name)
        v = obj[name]
        ok = ((kind == "u64" and _is_u64(v))
              or (kind == "str" and isinstance(v, str))
              or (kind == "strs" and isinstance(v, list) and all(isinstance(x, str) for x in v)))
        if not ok:
            raise ValueError("field %r has the wrong type" % name)
    if strict_keys:
        for name in obj:
            if name not in fields:
                raise ValueError("unknown field %r" % name)
    return obj


def utf8(check, name, data):
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise Failure(check, None, "%s is not UTF-8 text" % name)


def text_lines(text):
    """Lines like Rust's str::lines: split at \\n, drop one trailing \\r, no
    final empty line."""
    parts = text.split("\n")
    if parts and parts[-1] == "":
        parts.pop()
    return [p[:-1] if p.endswith("\r") else p for p in parts]


# ---------------------------------------------------------------------------
# Keys and signed notes (c2sp.org/signed-note, c2sp.org/tlog-checkpoint).

def key_name_error(name):
    if name == "":
        return "it is empty"
    if any(c.isspace() for c in name):
        return "it contains white space"
    if "+" in name:
        return "it contains '+'"
    if any(unicodedata.category(c) == "Cc" for c in name):
        return "it contains a control character"
    return None


def key_id(name, public):
    return sha256(name.encode("utf-8") + b"\n" + bytes([ED25519_SIGNATURE_TYPE]) + public)[:4]


def parse_verifier_key(s):
    """<name>+<8 hex key id>+<base64(0x01 || 32-byte key)> -> (name, id, key)."""
    parts = s.split("+", 2)
    if len(parts) != 3:
        raise ValueError("expected <name>+<key id>+<key>")
    name, id_hex, key_b64 = parts
    reason = key_name_error(name)
    if reason:
        raise ValueError("invalid key name %r: %s" % (name, reason))
    if len(id_hex) != 8 or not re.match(r"[0-9a-fA-F]{8}\Z", id_hex):
        raise ValueError("the key id is not 8 hexadecimal digits")
    raw = b64decode_strict(key_b64)
    if raw is None:
        raise ValueError("the key is not standard base64")
    if not raw:
        raise ValueError("the key is empty")
    if raw[0] != ED25519_SIGNATURE_TYPE:
        raise ValueError("unsupported signature type (only 0x01, Ed25519)")
    public = raw[1:]
    if len(public) != 32:
        raise ValueError("an Ed25519 public key has 32 bytes")
    if key_id(name, public) != bytes.fromhex(id_hex):
        raise ValueError("the key id does not match the name and public key")
    return (name, bytes.fromhex(id_hex), public)


def format_verifier_key(key):
    name, kid, public = key
    return "%s+%s+%s" % (name, kid.hex(), base64.b64encode(bytes([1]) + public).decode())


class NoteError(Exception):
    def __init__(self, kind, reason):
        super().__init__(reason)
        self.kind = kind  # "malformed" or "signature"


def parse_note(note):
    """Splits a signed note into (text, [(name, key id, signature)])."""
    def bad(reason):
        return NoteError("malformed", "malformed signed note: " + reason)
    if len(note.encode("utf-8", "surrogatepass")) > MAX_NOTE_BYTES:
        raise bad("the note is too large")
    if "\r" in note:
        raise bad("the note contains a carriage return (CRLF line endings are not allowed)")
    if any(c < " " and c != "\n" for c in note):
        raise bad("the note contains a control character")
    split = note.rfind("\n\n")
    if split < 0:
        raise bad("no blank line separates the text from the signatures")
    text, block = note[:split + 1], note[split + 2:]
    if not block.endswith("\n"):
        raise bad("the note does not end with a newline after a signature line")
    block = block[:-1]
    if block == "":
        raise bad("the note has no signature lines")
    signatures = []
    for line in block.split("\n"):
        if len(signatures) == MAX_SIGNATURES:
            raise bad("the note has too many signatures")
        if not line.startswith(SIGNATURE_LINE_PREFIX):
            raise bad("a signature line does not start with an em dash and a space")
        rest = line[len(SIGNATURE_LINE_PREFIX):]
        if " " not in rest:
            raise bad("a signature line has no space between key name and signature")
        name, b64 = rest.split(" ", 1)
        if key_name_error(name):
            raise bad("a signature line has an invalid key name")
        raw = b64decode_strict(b64)
        if raw is None:
            raise bad("a signature is not standard base64")
        if len(raw) < 5:
            raise bad("a signature is shorter than key id and one byte")
        signatures.append((name, raw[:4], raw[4:]))
    return text, signatures


def verify_note(note, keys):
    """Signed-note rules: unknown keys are ignored, a known key's bad
    signature rejects the note, at least one known key must verify.
    Returns (text, [(key, signature)])."""
    text, signatures = parse_note(note)
    verified = []
    for name, kid, sig in signatures:
        key = next((k for k in keys if k[0] == name and k[1] == kid), None)
        if key is None:
            continue
        if any(v[0] == key for v in verified):
            raise NoteError("malformed", "malformed signed note: two signatures by key %s (%s)"
                            % (name, kid.hex()))
        if not ed25519_verify(key[2], text.encode("utf-8"), sig):
            raise NoteError("signature", "the signature by known key %s (id %s) does not verify"
                            % (name, kid.hex()))
        verified.append((key, sig))
    if not verified:
        raise NoteError("signature", "the note carries no signature by any known key")
    return text, verified


def parse_checkpoint(text):
    """origin, size, root from checkpoint note text; no extension lines."""
    if not text.endswith("\n"):
        raise ValueError("the text does not end with a newline")
    lines = text[:-1].split("\n")
    if len(lines) < 3:
        raise ValueError("expected three lines: origin, tree size, root hash")
    if len(lines) > 3:
        raise ValueError("extension lines after the root hash are not used by this log "
                         "(SPEC section 8.1)")
    origin, size_s, root_s = lines
    if origin == "":
        raise ValueError("the origin line is empty")
    if (not re.match(r"[0-9]+\Z", size_s) or (len(size_s) > 1 and size_s[0] == "0")
            or int(size_s) > U64_MAX):
        raise ValueError("the tree size is not a decimal number without sign or leading zeros")
    root = b64decode_strict(root_s)
    if root is None or len(root) != 32:
        raise ValueError("the root hash is not the base64 encoding of 32 bytes")
    return origin, int(size_s), root


def verify_checkpoint(note, keys):
    """(origin, size, root) of a verified checkpoint note; raises NoteError or ValueError."""
    text, _ = verify_note(note, keys)
    return parse_checkpoint(text)


def parse_public_key_pem(text):
    begin, end = "-----BEGIN PUBLIC KEY-----", "-----END PUBLIC KEY-----"
    lines = [l.strip() for l in text.strip().split("\n")]
    if not lines or lines[0] != begin:
        raise ValueError("does not start with %r" % begin)
    body, ended = "", False
    for line in lines[1:]:
        if ended:
            raise ValueError("text after the END line")
        if line == end:
            ended = True
        elif ":" in line:
            raise ValueError("PEM headers are not supported")
        else:
            body += line
    if not ended:
        raise ValueError("missing %r" % end)
    der = b64decode_strict(body)
    if der is None:
        raise ValueError("invalid base64")
    if len(der) != 44 or not der.startswith(ED25519_SPKI_PREFIX):
        raise ValueError("not an Ed25519 SubjectPublicKeyInfo")
    return der[12:]


# ---------------------------------------------------------------------------
# The bundle.

def load_manifest(data):
    """manifest.json: the version first, so that an old bundle gets a clear
    answer rather than a complaint about its fields."""
    try:
        text = utf8("manifest", MANIFEST, data)
        raw = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_reject_constant)
    except ValueError as e:
        raise Failure("manifest", None, "%s: %s" % (MANIFEST, e))
    if (isinstance(raw, dict) and raw.get("format") == BUNDLE_FORMAT
            and type(raw.get("version")) is int and raw.get("version") == 1):
        raise Failure("manifest", None, VERSION_1_REFUSED)
    try:
        manifest = load_record(text, {
            "format": "str", "version": "u64", "origin": "str", "range": "str",
            "first_seq": "u64", "last_seq": "u64", "size": "u64", "created_at": "str",
            "chain_before": "str", "chain_after": "str"})
    except ValueError as e:
        raise Failure("manifest", None, "%s: %s" % (MANIFEST, e))
    if manifest["format"] != BUNDLE_FORMAT or manifest["version"] != BUNDLE_VERSION:
        raise Failure("manifest", None, "unsupported format %r version %r (expected %r version %d)"
                      % (manifest["format"], manifest["version"], BUNDLE_FORMAT, BUNDLE_VERSION))
    first_seq, last_seq, size = manifest["first_seq"], manifest["last_seq"], manifest["size"]
    if first_seq == 0 or last_seq < first_seq or last_seq > size:
        raise Failure("manifest", None, "range %d..=%d is not within 1..=%d"
                      % (first_seq, last_seq, size))
    if parse_hash(manifest["chain_before"]) is None:
        raise Failure("manifest", None, "chain_before is not 64 hex digits")
    if parse_hash(manifest["chain_after"]) is None:
        raise Failure("manifest", None, "chain_after is not 64 hex digits")
    return manifest


def verify_bundle(files, trusted_keys=None):
    """files: {name: bytes}. Returns a report dict or raises Failure."""
    # Files: the manifest first, its version says how to read the rest.
    if MANIFEST not in files:
        raise Failure("files", None, "%s is missing" % MANIFEST)
    manifest = load_manifest(files[MANIFEST])
    for name in REQUIRED_FILES:
        if name not in files:
            raise Failure("files", None, "%s is missing" % name)
    ignored = sorted(n for n in files if n not in REQUIRED_FILES and n not in OPTIONAL_FILES)
    first_seq, last_seq, size = manifest["first_seq"], manifest["last_seq"], manifest["size"]
    chain_before = parse_hash(manifest["chain_before"])
    chain_after = parse_hash(manifest["chain_after"])

    # Keys.
    bundle_keys = []
    for i, line in enumerate(text_lines(utf8("keys", KEYS, files[KEYS]))):
        if line == "":
            continue
        try:
            bundle_keys.append(parse_verifier_key(line))
        except ValueError as e:
            raise Failure("keys", None, "%s line %d: %s" % (KEYS, i + 1, e))
    if not bundle_keys:
        raise Failure("keys", None, "%s lists no key" % KEYS)
    keys = trusted_keys if trusted_keys is not None else bundle_keys

    # Checkpoint.
    note = utf8("checkpoint", CHECKPOINT, files[CHECKPOINT])
    try:
        text, verified = verify_note(note, keys)
    except NoteError as e:
        check = "signature" if e.kind == "signature" else "checkpoint"
        raise Failure(check, None, "%s: %s" % (CHECKPOINT, e))
    try:
        origin, cp_size, root = parse_checkpoint(text)
    except ValueError as e:
        raise Failure("checkpoint", None, "%s: malformed checkpoint: %s" % (CHECKPOINT, e))
    if origin != manifest["origin"]:
        raise Failure("checkpoint", None, "checkpoint origin %r differs from manifest origin %r"
                      % (origin, manifest["origin"]))
    if cp_size != size:
        raise Failure("checkpoint", None, "checkpoint size %d differs from manifest size %d"
                      % (cp_size, size))

    # The openssl companion files must say the same as the note.
    if files[CHECKPOINT_BODY] != text.encode("utf-8"):
        raise Failure("signature-files", None,
                      "%s is not the signed text of %s" % (CHECKPOINT_BODY, CHECKPOINT))
    try:
        pem_public = parse_public_key_pem(utf8("signature-files", PUBLIC_KEY, files[PUBLIC_KEY]))
    except ValueError as e:
        raise Failure("signature-files", None, "%s: %s" % (PUBLIC_KEY, e))
    if not any(k[2] == pem_public for k in keys):
        raise Failure("signature-files", None, "%s is not one of the verifier keys" % PUBLIC_KEY)
    if not ed25519_verify(pem_public, text.encode("utf-8"), files[CHECKPOINT_SIG]):
        raise Failure("signature-files", None, "%s is not a valid signature of %s by %s"
                      % (CHECKPOINT_SIG, CHECKPOINT_BODY, PUBLIC_KEY))

    # Borders: well formed, and exactly as many hashes as the canonical split
    # of [0, first_seq - 1) and [last_seq, size) has subtrees.
    try:
        borders = load_record(utf8("borders", BORDERS, files[BORDERS]),
                              {"left": "strs", "right": "strs"})
    except ValueError as e:
        raise Failure("borders", None, "%s: %s" % (BORDERS, e))
    left = [parse_hash(h) for h in borders["left"]]
    if any(h is None for h in left):
        raise Failure("borders", None, "a left border hash is not 64 hex digits")
    right = [parse_hash(h) for h in borders["right"]]
    if any(h is None for h in right):
        raise Failure("borders", None, "a right border hash is not 64 hex digits")
    left_nodes = compact_range_nodes(0, first_seq - 1)
    right_nodes = compact_range_nodes(last_seq, size)
    for side, hashes, nodes, what in (
            ("left", left, left_nodes, "seq 1..=%d" % (first_seq - 1)),
            ("right", right, right_nodes, "seq %d..=%d" % (last_seq + 1, size))):
        if len(hashes) != len(nodes):
            raise Failure("borders", None, "%s has %d %s border hashes; the events %s need %d"
                          % (BORDERS, len(hashes), side, what, len(nodes)))
    tree = RootBuilder()
    for (_, height), node in zip(left_nodes, left):
        tree.add(height, node)

    # Entries, in order: the chain and the tree grow as they stream by.
    if first_seq == 1 and chain_before != chain_genesis(manifest["origin"]):
        raise Failure("chain", 1,
                      "chain_before is not SHA-256(origin) although the bundle starts at seq 1")
    data = files[ENTRIES]
    if data and not data.endswith(b"\n"):
        raise Failure("entry", None, "%s does not end with a newline" % ENTRIES)
    entry_lines = data[:-1].split(b"\n") if data else []
    previous, expected = chain_before, first_seq
    for i, line in enumerate(entry_lines):
        if expected > last_seq:
            raise Failure("sequence", expected,
                          "%s has entries after last_seq %d" % (ENTRIES, last_seq))
        m = ENTRY_LINE.match(line)
        if m is None or int(m.group(1)) > U64_MAX:
            raise Failure("entry", expected, '%s line %d: not of the form {"seq":N,"leaf":"<hex>",'
                          '"chain":"<hex>","body":<body>}' % (ENTRIES, i + 1))
        seq = int(m.group(1))
        if seq != expected:
            what = ("events are missing" if seq > expected
                    else "events are out of order or repeated")
            raise Failure("sequence", min(expected, seq),
                          "expected seq %d, found %d: %s" % (expected, seq, what))
        body = m.group(4)
        leaf = leaf_hash(body)
        if leaf != bytes.fromhex(m.group(2).decode("ascii")):
            raise Failure("leaf", seq, "leaf hash does not match the body (body modified)")
        chain = chain_next(previous, leaf)
        if chain != bytes.fromhex(m.group(3).decode("ascii")):
            raise Failure("chain", seq, "chain value does not match (event reordered, inserted, "
                          "removed or chain edited)")
        if not is_json_object(body):
            raise Failure("body", seq, "body is not a JSON object")
        tree.add(0, leaf)
        previous = chain
        expected += 1
    if expected <= last_seq:
        if not entry_lines:
            reason = "%s is empty" % ENTRIES
        else:
            reason = ("%s ends at seq %d, the manifest range ends at %d (truncated)"
                      % (ENTRIES, expected - 1, last_seq))
        raise Failure("sequence", expected, reason)

    # The signed root, from left border + the entries' leaves + right border.
    for (_, height), node in zip(right_nodes, right):
        tree.add(height, node)
    if tree.root() != root:
        raise Failure("root", None, "the Merkle root of the left border, the entries %d..=%d and "
                      "the right border is not the checkpoint root: an entry or a border hash "
                      "differs from what the log signed" % (first_seq, last_seq))
    if previous != chain_after:
        raise Failure("manifest", None, "chain_after is not the chain value of the last entry")

    # Consistency with an earlier checkpoint.
    previous_size = None
    has_prev, has_cons = PREVIOUS_CHECKPOINT in files, CONSISTENCY in files
    if has_prev and has_cons:
        prev_note = utf8("consistency", PREVIOUS_CHECKPOINT, files[PREVIOUS_CHECKPOINT])
        try:
            old_origin, old_size, old_root = verify_checkpoint(prev_note, keys)
        except (NoteError, ValueError) as e:
            raise Failure("consistency", None, "%s: %s" % (PREVIOUS_CHECKPOINT, e))
        if old_origin != origin:
            raise Failure("consistency", None, "%s is for another origin" % PREVIOUS_CHECKPOINT)
        try:
            cons = load_record(utf8("consistency", CONSISTENCY, files[CONSISTENCY]),
                               {"old_size": "u64", "new_size": "u64", "proof": "strs"})
        except ValueError as e:
            raise Failure("consistency", None, "%s: %s" % (CONSISTENCY, e))
        if cons["old_size"] != old_size or cons["new_size"] != size:
            raise Failure("consistency", None, "%s is for sizes %d -> %d, the checkpoints are "
                          "%d -> %d" % (CONSISTENCY, cons["old_size"], cons["new_size"],
                                        old_size, size))
        hashes = [parse_hash(h) for h in cons["proof"]]
        if any(h is None for h in hashes):
            raise Failure("consistency", None, "a proof hash is not 64 hex digits")
        reason = verify_consistency(old_size, size, old_root, root, hashes)
        if reason:
            raise Failure("consistency", None, "the checkpoint of size %d does not extend the "
                          "previous one of size %d: %s" % (size, old_size, reason))
        previous_size = old_size
    elif has_prev:
        raise Failure("files", None, "%s is present without %s" % (PREVIOUS_CHECKPOINT, CONSISTENCY))
    elif has_cons:
        raise Failure("files", None, "%s is present without %s" % (CONSISTENCY, PREVIOUS_CHECKPOINT))

    # Checksums: every format file but SHA256SUMS itself, exactly once.
    listed = {}
    for i, line in enumerate(text_lines(utf8("checksum", SHA256SUMS, files[SHA256SUMS]))):
        digest, rest = line[:64], line[64:]
        if not HEX64.match(digest) or not (rest.startswith("  ") or rest.startswith(" *")):
            raise Failure("checksum", None, "%s line %d is malformed" % (SHA256SUMS, i + 1))
        name = rest[2:]
        if name == SHA256SUMS or name not in REQUIRED_FILES + OPTIONAL_FILES:
            raise Failure("checksum", None, "%s lists %r, which is not a bundle file"
                          % (SHA256SUMS, name))
        if name in listed:
            raise Failure("checksum", None, "%s lists %s twice" % (SHA256SUMS, name))
        listed[name] = digest
    for name in sorted(files):
        if name == SHA256SUMS or name in ignored:
            continue
        if name not in listed:
            raise Failure("checksum", None, "%s is not listed in %s" % (name, SHA256SUMS))
        if listed[name] != hashlib.sha256(files[name]).hexdigest():
            raise Failure("checksum", None, "%s: SHA-256 does not match %s" % (name, SHA256SUMS))
    for name in sorted(listed):
        if name not in files:
            raise Failure("checksum", None, "%s is listed in %s but missing" % (name, SHA256SUMS))

    return {
        "origin": origin, "first_seq": first_seq, "last_seq": last_seq,
        "entries": last_seq - first_seq + 1, "size": size, "root": root.hex(),
        "chain_after": previous.hex(),
        "signed_by": [format_verifier_key(k) for k, _ in verified],
        "previous_size": previous_size, "keys_from_bundle": trusted_keys is None,
        "ignored_files": ignored,
    }


def _ignore_number(text):
    return 0


def _json_within_limits(value, depth):
    """No lone surrogates in strings and keys; containers nested at most
    JSON_MAX_DEPTH deep (the top-level object is depth 1)."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return False
        return True
    if isinstance(value, (list, dict)):
        if depth > JSON_MAX_DEPTH:
            return False
        if isinstance(value, dict):
            if not all(_json_within_limits(k, depth + 1) for k in value):
                return False
            value = value.values()
        return all(_json_within_limits(v, depth + 1) for v in value)
    return True


def is_json_object(body):
    """RFC 8259 JSON text in UTF-8 whose value is an object (SPEC 9.5, check
    body). Numbers are checked by the grammar only (no range, no float
    conversion), like the Rust verifier."""
    try:
        value = json.loads(body.decode("utf-8"), parse_constant=_reject_constant,
                           parse_int=_ignore_number, parse_float=_ignore_number)
    except (ValueError, UnicodeError, RecursionError):
        return False
    return isinstance(value, dict) and _json_within_limits(value, 1)


def read_bundle_dir(path):
    files = {}
    for name in sorted(os.listdir(path)):
        full = os.path.join(path, name)
        if os.path.isfile(full):
            with open(full, "rb") as f:
                files[name] = f.read()
    return files


def summary(report):
    line = ("OK origin=%s seq=%d..%d entries=%d size=%d root=%s signed-by=%s"
            % (report["origin"], report["first_seq"], report["last_seq"], report["entries"],
               report["size"], report["root"],
               ",".join(k.split("+")[0] + "+" + k.split("+")[1] for k in report["signed_by"])))
    if report["previous_size"] is not None:
        line += " consistent-with-size=%d" % report["previous_size"]
    return line


# ---------------------------------------------------------------------------
# Test vectors (audit/vectors): recomputed independently of the Rust code.

def _flip_hex(s, at=0):
    c = "1" if s[at] == "0" else "0"
    return s[:at] + c + s[at + 1:]


def _resum(files):
    lines = ["%s  %s\n" % (hashlib.sha256(files[n]).hexdigest(), n)
             for n in sorted(files) if n != SHA256SUMS]
    files[SHA256SUMS] = "".join(lines).encode("utf-8")


def _entries_read(files):
    """entries.jsonl as a list of {seq, leaf, chain, body} (body as bytes)."""
    entries = []
    for line in files[ENTRIES][:-1].split(b"\n"):
        m = ENTRY_LINE.match(line)
        entries.append({"seq": int(m.group(1)), "leaf": m.group(2).decode(),
                        "chain": m.group(3).decode(), "body": m.group(4)})
    return entries


def _entries_write(files, entries):
    files[ENTRIES] = b"".join(
        b'{"seq":%d,"leaf":"%s","chain":"%s","body":%s}\n'
        % (e["seq"], e["leaf"].encode(), e["chain"].encode(), e["body"]) for e in entries)


def _rechain(files, entries, from_seq):
    """Recomputes leaves and chain values from `from_seq` on, as a forger who
    rewrites history would."""
    previous = bytes.fromhex(json.loads(files[MANIFEST])["chain_before"])
    for e in entries:
        if e["seq"] >= from_seq:
            e["leaf"] = leaf_hash(e["body"]).hex()
            e["chain"] = chain_next(previous, bytes.fromhex(e["leaf"])).hex()
        previous = bytes.fromhex(e["chain"])
    return entries


def _index_of(entries, seq):
    return next(i for i, e in enumerate(entries) if e["seq"] == seq)


def _borders_rewrite(files, fn):
    borders = json.loads(files[BORDERS])
    fn(borders)
    files[BORDERS] = (json.dumps(borders, separators=(",", ":")) + "\n").encode()


def apply_tamper(files, case):
    """Applies one tampered.json case to a copy of the bundle files."""
    files = dict(files)
    op = case["op"]
    entries = _entries_read(files) if ENTRIES in files else []
    if op == "flip_body_byte":
        e = entries[_index_of(entries, case["seq"])]
        body = bytearray(e["body"])
        body[case["offset"]] ^= 0x01
        e["body"] = bytes(body)
        _entries_write(files, entries)
    elif op == "rewrite_entry":
        entries[_index_of(entries, case["seq"])]["body"] = case["body"].encode("utf-8")
        _entries_write(files, _rechain(files, entries, case["seq"]))
    elif op == "swap_bodies":
        i = _index_of(entries, case["seq"])
        entries[i]["body"], entries[i + 1]["body"] = entries[i + 1]["body"], entries[i]["body"]
        _entries_write(files, _rechain(files, entries, case["seq"]))
    elif op == "edit_entry_line":
        i = _index_of(entries, case["seq"])
        _entries_write(files, entries)
        lines = files[ENTRIES].split(b"\n")
        lines[i] = lines[i].replace(case["find"].encode(), case["replace"].encode(), 1)
        files[ENTRIES] = b"\n".join(lines)
    elif op == "delete_entry":
        _entries_write(files, [e for e in entries if e["seq"] != case["seq"]])
    elif op == "swap_entries":
        i = _index_of(entries, case["seq"])
        entries[i], entries[i + 1] = entries[i + 1], entries[i]
        _entries_write(files, entries)
    elif op == "truncate":
        _entries_write(files, entries[:len(entries) - case["count"]])
    elif op == "flip_border_hash":
        def fn(b):
            b[case["side"]][case["index"]] = _flip_hex(b[case["side"]][case["index"]])
        _borders_rewrite(files, fn)
    elif op == "drop_border_hash":
        _borders_rewrite(files, lambda b: b[case["side"]].pop(case["index"]))
    elif op == "delete_file":
        del files[case["file"]]
    elif op == "flip_consistency_hash":
        cons = json.loads(files[CONSISTENCY])
        cons["proof"][case["index"]] = _flip_hex(cons["proof"][case["index"]])
        files[CONSISTENCY] = (json.dumps(cons, separators=(",", ":")) + "\n").encode()
    elif op == "set_manifest":
        manifest = json.loads(files[MANIFEST])
        manifest[case["field"]] = case["value"]
        files[MANIFEST] = (json.dumps(manifest, indent=2) + "\n").encode()
    elif op == "flip_note_signature":
        note = files[case["file"]].decode("utf-8")
        head, last = note[:-1].rsplit("\n", 1)
        prefix, b64 = last.rsplit(" ", 1)
        raw = bytearray(base64.b64decode(b64))
        raw[-1] ^= 0x01
        files[case["file"]] = (head + "\n" + prefix + " " + base64.b64encode(bytes(raw)).decode()
                               + "\n").encode("utf-8")
    elif op == "flip_file_byte":
        data = bytearray(files[case["file"]])
        data[case["offset"]] ^= 0x01
        files[case["file"]] = bytes(data)
    else:
        raise ValueError("unknown tamper op %r" % op)
    if case.get("resum", True):
        _resum(files)
    return files


class VectorError(Exception):
    pass


def _expect(cond, what):
    if not cond:
        raise VectorError(what)


def check_vectors(directory):
    with open(os.path.join(directory, "vectors.json"), "rb") as f:
        v = json.load(f)
    with open(os.path.join(directory, "tampered.json"), "rb") as f:
        tampered = json.load(f)
    checks = 0
    _expect(v["version"] == 2, "vectors version")

    # RFC 8032 test 1: our Ed25519 code against the RFC.
    t = v["ed25519_rfc8032"]
    pub, sig = bytes.fromhex(t["public_key"]), bytes.fromhex(t["signature"])
    msg = bytes.fromhex(t["message_hex"])
    _expect(ed25519_public_key(bytes.fromhex(t["seed"])) == pub, "RFC 8032 public key")
    _expect(ed25519_verify(pub, msg, sig), "RFC 8032 signature verifies")
    _expect(not ed25519_verify(pub, msg + b"x", sig), "RFC 8032 signature over other message")
    _expect(not ed25519_verify(pub, msg, sig[:-1] + bytes([sig[-1] ^ 1])), "RFC 8032 flipped")
    checks += 4

    # RFC 6962: the Certificate Transparency reference tree.
    ct = v["rfc6962"]
    leaves = [leaf_hash(bytes.fromhex(x)) for x in ct["inputs_hex"]]
    for r in ct["roots"]:
        _expect(merkle_root(leaves[:r["size"]]).hex() == r["root"], "rfc6962 root %d" % r["size"])
        checks += 1
    checks += _check_proofs(ct, leaves)

    # Events: canonical bodies, leaves, chain.
    origin = v["origin"]
    _expect(chain_genesis(origin).hex() == v["chain_genesis"], "chain genesis")
    previous, leaves = chain_genesis(origin), []
    for i, e in enumerate(v["events"]):
        body = base64.b64decode(e["body_b64"])
        _expect(e["seq"] == i + 1, "event seq")
        _expect(body == e["body"].encode("utf-8"), "event %d body text" % e["seq"])
        canonical = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":"),
                               ensure_ascii=False).encode("utf-8")
        _expect(canonical == body, "event %d is canonical JSON" % e["seq"])
        leaf = leaf_hash(body)
        _expect(leaf.hex() == e["leaf"], "event %d leaf" % e["seq"])
        previous = chain_next(previous, leaf)
        _expect(previous.hex() == e["chain"], "event %d chain" % e["seq"])
        leaves.append(leaf)
        checks += 4
    for r in v["merkle_roots"]:
        _expect(merkle_root(leaves[:r["size"]]).hex() == r["root"], "root %d" % r["size"])
        checks += 1
    checks += _check_proofs(v, leaves)
    checks += _check_borders(v, leaves)

    # Keys and checkpoints.
    keys = []
    for k in v["keys"]:
        seed = sha256(k["seed_input"].encode("utf-8"))
        public = ed25519_public_key(seed)
        _expect(public.hex() == k["public_key_hex"], "key %s public key" % k["label"])
        parsed = parse_verifier_key(k["verifier_key"])
        _expect(parsed == (k["name"], key_id(k["name"], public), public),
                "key %s verifier key" % k["label"])
        _expect(parse_public_key_pem(k["public_key_pem"]) == public, "key %s PEM" % k["label"])
        keys.append(parsed)
        checks += 3
    for c in v["checkpoints"]:
        text, verified = verify_note(c["note"], keys)
        _expect(sorted(format_verifier_key(k) for k, _ in verified) == sorted(c["signed_by"]),
                "checkpoint %s signers" % c["label"])
        _expect(parse_checkpoint(text) == (origin, c["size"], bytes.fromhex(c["root"])),
                "checkpoint %s content" % c["label"])
        _expect(merkle_root(leaves[:c["size"]]).hex() == c["root"], "checkpoint %s root" % c["label"])
        for k in keys:
            signer = any(k == s for s, _ in verified)
            try:
                verify_note(c["note"], [k])
                _expect(signer, "checkpoint %s accepted by a non-signer" % c["label"])
            except NoteError:
                _expect(not signer, "checkpoint %s refused by its signer" % c["label"])
        checks += 3 + len(keys)

    # The example bundle, and every tampered copy.
    bundle = read_bundle_dir(os.path.join(directory, tampered["bundle"]))
    report = verify_bundle(bundle)
    checks += 1
    trusted = [parse_verifier_key(k["verifier_key"]) for k in v["keys"]]
    verify_bundle(bundle, trusted)
    checks += 1
    for case in tampered["cases"]:
        try:
            verify_bundle(apply_tamper(bundle, case))
        except Failure as f:
            want = case["expect"]
            _expect((f.check, f.seq) == (want["check"], want.get("seq")),
                    "tamper case %s: got check=%s seq=%s, expected check=%s seq=%s"
                    % (case["name"], f.check, f.seq, want["check"], want.get("seq")))
            checks += 1
            continue
        raise VectorError("tamper case %s was not detected" % case["name"])
    return checks, report


def _check_borders(v, leaves):
    """Compact-range borders: the split, each hash, and the merged root."""
    checks = 0
    for b in v["compact_ranges"]:
        first, last, size = b["first_seq"], b["last_seq"], b["size"]
        what = "borders of %d..=%d in %d" % (first, last, size)
        for side, (begin, end) in (("left", (0, first - 1)), ("right", (last, size))):
            nodes = compact_range_nodes(begin, end)
            _expect([list(n) for n in nodes] == b[side + "_nodes"], what + ": " + side + " split")
            _expect([merkle_root(leaves[s:s + (1 << h)]).hex() for s, h in nodes] == b[side],
                    what + ": " + side + " hashes")
        tree = RootBuilder()
        for (_, h), node in zip(compact_range_nodes(0, first - 1), b["left"]):
            tree.add(h, bytes.fromhex(node))
        for leaf in leaves[first - 1:last]:
            tree.add(0, leaf)
        for (_, h), node in zip(compact_range_nodes(last, size), b["right"]):
            tree.add(h, bytes.fromhex(node))
        _expect(tree.root() == merkle_root(leaves[:size]), what + ": merged root")
        checks += 3
    return checks


def _check_proofs(v, leaves):
    checks = 0
    for p in v["inclusion_proofs"]:
        proof = [bytes.fromhex(h) for h in p["proof"]]
        root = merkle_root(leaves[:p["size"]])
        _expect(root.hex() == p["root"], "inclusion %d/%d root" % (p["index"], p["size"]))
        _expect(verify_inclusion(leaves[p["index"]], p["index"], p["size"], proof, root) is None,
                "inclusion %d/%d verifies" % (p["index"], p["size"]))
        if proof:
            bad = [proof[0][:-1] + bytes([proof[0][-1] ^ 1])] + proof[1:]
            _expect(verify_inclusion(leaves[p["index"]], p["index"], p["size"], bad, root),
                    "tampered inclusion %d/%d fails" % (p["index"], p["size"]))
        checks += 3
    for p in v["consistency_proofs"]:
        proof = [bytes.fromhex(h) for h in p["proof"]]
        old_root, new_root = merkle_root(leaves[:p["old_size"]]), merkle_root(leaves[:p["new_size"]])
        _expect((old_root.hex(), new_root.hex()) == (p["old_root"], p["new_root"]),
                "consistency %d->%d roots" % (p["old_size"], p["new_size"]))
        _expect(verify_consistency(p["old_size"], p["new_size"], old_root, new_root, proof) is None,
                "consistency %d->%d verifies" % (p["old_size"], p["new_size"]))
        if proof:
            bad = proof[:-1] + [proof[-1][:-1] + bytes([proof[-1][-1] ^ 1])]
            _expect(verify_consistency(p["old_size"], p["new_size"], old_root, new_root, bad),
                    "tampered consistency %d->%d fails" % (p["old_size"], p["new_size"]))
        checks += 3
    return checks


# ---------------------------------------------------------------------------

def main(argv):
    parser = argparse.ArgumentParser(
        description="Verify a creditops audit export bundle offline (audit/SPEC.md version 2).")
    parser.add_argument("bundle", nargs="?", help="unpacked bundle directory")
    parser.add_argument("--key", action="append", default=[], metavar="VERIFIER_KEY",
                        help="trusted verifier key <name>+<id>+<key> (repeatable); "
                             "default: the bundle's keys.txt")
    parser.add_argument("--trust-bundle-keys", action="store_true",
                        help="accept a checkpoint signed by the bundle's own keys.txt (only after "
                             "comparing keys.txt with the bank's published keys)")
    parser.add_argument("--vectors", metavar="DIR", help="check the test vectors in DIR")
    args = parser.parse_args(argv)
    if args.key and args.trust_bundle_keys:
        parser.print_usage(sys.stderr)
        print("give either --key or --trust-bundle-keys, not both", file=sys.stderr)
        return 2
    if bool(args.bundle) == bool(args.vectors):
        parser.print_usage(sys.stderr)
        print("give either BUNDLE_DIR or --vectors DIR", file=sys.stderr)
        return 2

    if args.vectors:
        try:
            checks, report = check_vectors(args.vectors)
        except (OSError, KeyError, IndexError, TypeError, ValueError, NoteError) as e:
            print("FAIL vectors: %s: %s" % (type(e).__name__, e))
            return 1
        except (VectorError, Failure) as e:
            print("FAIL vectors: %s" % e)
            return 1
        print("OK vectors: %d checks passed; example bundle %s" % (checks, summary(report)))
        return 0

    try:
        trusted = [parse_verifier_key(k) for k in args.key] if args.key else None
    except ValueError as e:
        print("invalid --key: %s" % e, file=sys.stderr)
        return 2
    if not os.path.isdir(args.bundle):
        print("not a directory: %s" % args.bundle, file=sys.stderr)
        return 2
    try:
        files = read_bundle_dir(args.bundle)
    except OSError as e:
        print("cannot read the bundle: %s" % e, file=sys.stderr)
        return 2
    try:
        report = verify_bundle(files, trusted)
    except Failure as f:
        print("FAIL %s" % f)
        return 1
    for name in report["ignored_files"]:
        print("note: ignored file not part of the format: %s" % name, file=sys.stderr)
    if report["keys_from_bundle"] and not args.trust_bundle_keys:
        print("UNAUTHENTICATED %s" % summary(report)[len("OK "):])
        print("the bundle is intact, but its checkpoint was verified only with the bundle's own "
              "keys.txt, which a forger writes too; pass the bank's published verifier key with "
              "--key (or --trust-bundle-keys after comparing keys.txt with it)", file=sys.stderr)
        return 4
    print(summary(report))
    if report["keys_from_bundle"]:
        print("note: the checkpoint was verified with the bundle's own keys.txt "
              "(--trust-bundle-keys)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
