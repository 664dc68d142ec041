//! Service RBAC: a casbin enforcer per service, with exact-match decisions
//! precomputed so that a check costs a few hash lookups.
//!
//! casbin is the oracle: at load time every rule of the policy is evaluated by
//! casbin and the answers are stored in an exact-string table; a request that is not
//! one of those triples is evaluated by casbin once and memoised (bounded). The
//! table is equivalent to `CachedEnforcer` without its 64-bit hashed cache keys (no
//! collision can turn a denial into a grant) and without its per-call
//! serialization. The policy is immutable: reloading means building a new
//! `Authorizer` and swapping it in.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::sync::{PoisonError, RwLock};

use casbin::{CoreApi, DefaultModel, Enforcer, MgmtApi, Model, StringAdapter};

use crate::AuthError;

/// Requests outside the policy whose decision is memoised, at most.
const MEMO_CAPACITY: usize = 4096;
/// Longer role/route/method strings are denied without evaluation.
const MAX_INPUT_BYTES: usize = 512;

/// The casbin policy of one service.
///
/// `allows` takes `&self` and is safe to call from many tasks at once (share it as
/// `Arc<Authorizer>`). It fails closed: empty or oversized inputs, anything the
/// policy does not grant, and any casbin error are denials.
pub struct Authorizer {
    enforcer: Enforcer,
    /// casbin's answer for every (role, route, method) triple of the policy.
    decided: DecisionTable,
    /// casbin's answers for other requests, bounded by `MEMO_CAPACITY`.
    memo: RwLock<DecisionTable>,
    permissions: Vec<(String, String, String)>,
    roles: Vec<String>,
    policy_hash: String,
}

impl fmt::Debug for Authorizer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authorizer")
            .field("policy_hash", &self.policy_hash)
            .field("rules", &self.permissions.len())
            .field("roles", &self.roles)
            .finish_non_exhaustive()
    }
}

impl Authorizer {
    /// Builds the authorizer from the text of `model.conf` and `policy.csv`.
    ///
    /// The model's request and policy definitions must have three fields
    /// (sub, obj, act). The policy is parsed strictly (casbin itself silently skips
    /// lines it does not understand): every non-empty, non-`#` line must be
    /// `p, <role>, <route>, <METHOD>` with a role of letters, digits, `_`, `-`, `.`,
    /// a route starting with `/`, an upper-case method, and no quoting. casbin must
    /// have loaded exactly the same rules, and must grant or deny each of them
    /// without error.
    pub async fn from_text(model_conf: &str, policy_csv: &str) -> Result<Self, AuthError> {
        let model = DefaultModel::from_str(model_conf)
            .await
            .map_err(|e| AuthError::InvalidPolicy(format!("model: {e}")))?;
        for (sec, what) in [("r", "request"), ("p", "policy")] {
            let fields = model
                .get_model()
                .get(sec)
                .and_then(|m| m.get(sec))
                .map(|a| a.tokens.len());
            if fields != Some(3) {
                return Err(AuthError::InvalidPolicy(format!(
                    "model: the {what} definition `{sec}` must have exactly three fields \
                     (sub, obj, act)"
                )));
            }
        }
        let rules = parse_policy(policy_csv)?;

        let enforcer = Enforcer::new(model, StringAdapter::new(policy_csv))
            .await
            .map_err(|e| AuthError::InvalidPolicy(format!("casbin: {e}")))?;
        let loaded: BTreeSet<Vec<String>> = enforcer.get_policy().into_iter().collect();
        let parsed: BTreeSet<Vec<String>> = rules
            .iter()
            .map(|(r, o, a)| vec![r.clone(), o.clone(), a.clone()])
            .collect();
        if loaded != parsed {
            return Err(AuthError::InvalidPolicy(
                "casbin read the policy differently from the strict parser".to_owned(),
            ));
        }

        // casbin panics (rather than failing) on an effect expression it does not
        // know; one probe finds that here, not in a request.
        enforce_guarded(&enforcer, "\u{0}probe", "\u{0}probe", "\u{0}probe").map_err(|e| {
            AuthError::InvalidPolicy(format!("casbin cannot evaluate the model: {e}"))
        })?;
        let mut decided = DecisionTable::default();
        for (role, route, method) in &rules {
            let allowed = enforce_guarded(&enforcer, role, route, method).map_err(|e| {
                AuthError::InvalidPolicy(format!(
                    "casbin cannot evaluate `p, {role}, {route}, {method}`: {e}"
                ))
            })?;
            decided.insert(role, route, method, allowed);
        }

        let permissions: Vec<(String, String, String)> = rules.into_iter().collect();
        let roles: Vec<String> = permissions
            .iter()
            .map(|(role, _, _)| role.clone())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        if permissions.is_empty() {
            tracing::warn!("authorization policy has no rules: every request is denied");
        }

        Ok(Self {
            enforcer,
            decided,
            memo: RwLock::new(DecisionTable::default()),
            permissions,
            roles,
            policy_hash: policy_hash(model_conf, policy_csv),
        })
    }

    /// Reads `model.conf` and `policy.csv` from `dir` (e.g. `policies/market/`).
    pub async fn load(dir: &Path) -> Result<Self, AuthError> {
        let model_path = dir.join("model.conf");
        let policy_path = dir.join("policy.csv");
        let model = tokio::fs::read_to_string(&model_path)
            .await
            .map_err(|e| AuthError::io("read", &model_path, e))?;
        let policy = tokio::fs::read_to_string(&policy_path)
            .await
            .map_err(|e| AuthError::io("read", &policy_path, e))?;
        Self::from_text(&model, &policy).await
    }

    /// Whether `role` may call `method` on the route template `route` (exact match,
    /// e.g. `("loan_officer", "/v1/cases/{id}/first-vote", "POST")`).
    pub fn allows(&self, role: &str, route: &str, method: &str) -> bool {
        let inputs = [role, route, method];
        if inputs
            .iter()
            .any(|s| s.is_empty() || s.len() > MAX_INPUT_BYTES)
        {
            return false;
        }
        if let Some(decision) = self.decided.get(role, route, method) {
            return decision;
        }
        if let Some(decision) = self
            .memo
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(role, route, method)
        {
            return decision;
        }
        // Not a rule of the policy: with the project's exact-match model this is a
        // denial, but casbin decides, so that any model stays correct.
        match enforce_guarded(&self.enforcer, role, route, method) {
            Ok(decision) => {
                let mut memo = self.memo.write().unwrap_or_else(PoisonError::into_inner);
                if memo.len < MEMO_CAPACITY {
                    memo.insert(role, route, method, decision);
                }
                decision
            }
            Err(e) => {
                tracing::warn!(error = %e, "casbin evaluation failed; denying");
                false
            }
        }
    }

    /// Hex SHA-256 identifying the model and policy text, for decision records.
    ///
    /// Computed over a framed encoding, so that no two different (model, policy)
    /// pairs share a hash (plain concatenation would let text move across the
    /// boundary):
    /// `SHA-256("creditops-casbin-v1\n" || u64be(len(model)) || model ||
    /// u64be(len(policy)) || policy)`, over the bytes exactly as read. In Python:
    /// `sha256(b"creditops-casbin-v1\n" + len(m).to_bytes(8, "big") + m +
    /// len(p).to_bytes(8, "big") + p).hexdigest()`.
    pub fn policy_hash(&self) -> String {
        self.policy_hash.clone()
    }

    /// Every role named in the policy, sorted.
    pub fn roles(&self) -> Vec<String> {
        self.roles.clone()
    }

    /// Every (role, route, method) rule of the policy, sorted, without duplicates.
    pub fn permissions(&self) -> Vec<(String, String, String)> {
        self.permissions.clone()
    }
}

/// casbin's decision; its errors and panics become `Err`, never a grant.
fn enforce_guarded(
    enforcer: &Enforcer,
    role: &str,
    route: &str,
    method: &str,
) -> Result<bool, String> {
    match catch_unwind(AssertUnwindSafe(|| enforcer.enforce((role, route, method)))) {
        Ok(Ok(decision)) => Ok(decision),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("casbin panicked".to_owned()),
    }
}

/// See [`Authorizer::policy_hash`].
fn policy_hash(model: &str, policy: &str) -> String {
    let model_len = (model.len() as u64).to_be_bytes();
    let policy_len = (policy.len() as u64).to_be_bytes();
    crate::sha256_hex(&[
        b"creditops-casbin-v1\n",
        &model_len,
        model.as_bytes(),
        &policy_len,
        policy.as_bytes(),
    ])
}

/// The strict policy parser; see [`Authorizer::from_text`].
fn parse_policy(policy_csv: &str) -> Result<BTreeSet<(String, String, String)>, AuthError> {
    let mut rules = BTreeSet::new();
    for (index, raw) in policy_csv.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let bad = |why: &str| AuthError::InvalidPolicy(format!("policy line {}: {why}", index + 1));
        if line.contains('"') {
            return Err(bad("quoted fields are not supported"));
        }
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        let [ptype, role, route, method] = fields.as_slice() else {
            return Err(bad("expected `p, <role>, <route>, <METHOD>`"));
        };
        if *ptype != "p" {
            return Err(bad(
                "only `p` rules are supported (roles come from the staff directory)",
            ));
        }
        let role_ok = !role.is_empty()
            && role
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
        if !role_ok {
            return Err(bad("the role must be letters, digits, `_`, `-` or `.`"));
        }
        if !route.starts_with('/') || route.contains(char::is_whitespace) || route.contains('#') {
            return Err(bad("the route must be a path template starting with `/`"));
        }
        if method.is_empty() || !method.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(bad("the method must be an upper-case HTTP method"));
        }
        rules.insert((
            (*role).to_owned(),
            (*route).to_owned(),
            (*method).to_owned(),
        ));
    }
    Ok(rules)
}

/// role -> route -> method -> decision; looked up with `&str` keys, no allocation.
#[derive(Default)]
struct DecisionTable {
    map: HashMap<String, HashMap<String, HashMap<String, bool>>>,
    len: usize,
}

impl DecisionTable {
    fn get(&self, role: &str, route: &str, method: &str) -> Option<bool> {
        self.map.get(role)?.get(route)?.get(method).copied()
    }

    fn insert(&mut self, role: &str, route: &str, method: &str, decision: bool) {
        let previous = self
            .map
            .entry(role.to_owned())
            .or_default()
            .entry(route.to_owned())
            .or_default()
            .insert(method.to_owned(), decision);
        if previous.is_none() {
            self.len += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict_parser_refuses_what_casbin_would_skip() {
        let bad = [
            "p, loan_officer, /v1/cases",
            "p, loan_officer, /v1/cases, POST, extra",
            "p, loan_officer, /v1/cases, POST,",
            "g, alice, loan_officer",
            "p2, loan_officer, /v1/cases, POST",
            "p, \"loan_officer\", /v1/cases, POST",
            "p, loan officer, /v1/cases, POST",
            "p, loan_officer, v1/cases, POST",
            "p, loan_officer, /v1/cases, post",
            "p, , /v1/cases, POST",
            "p, loan_officer, /v1/cases # comment, POST",
        ];
        for line in bad {
            assert!(parse_policy(line).is_err(), "{line}");
        }
        let ok = parse_policy("# comment\n\n  p, loan_officer , /v1/cases/{id}, GET  \r\n")
            .expect("valid");
        assert_eq!(ok.len(), 1);
    }

    #[test]
    fn policy_hash_is_framed() {
        // Moving text across the model/policy boundary changes the hash.
        assert_ne!(policy_hash("ab", "c"), policy_hash("a", "bc"));
        assert_eq!(policy_hash("ab", "c"), policy_hash("ab", "c"));
        assert_eq!(policy_hash("", "").len(), 64);
    }
}
