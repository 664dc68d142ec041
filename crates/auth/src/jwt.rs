//! Bearer token (JWT) verification against a pinned JWKS.
//!
//! Signature checking is delegated to `jsonwebtoken` (aws-lc-rs backend) with one
//! pre-built `Validation` per key; everything around it is strict and explicit here:
//! size limit, compact-JWS shape, header parsing and algorithm pinning *before* any
//! key is touched, key selection by `kid`, and a second, exact check of the claims
//! (`jsonwebtoken` accepts array-valued `iss`/`aud` when any element matches; we do
//! not).

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::{PoisonError, RwLock};

use base64::Engine;
use base64::alphabet::URL_SAFE;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use creditops_domain::StaffId;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use serde_json::Value;

use crate::{AuthError, LEEWAY_SECONDS, MAX_TOKEN_BYTES};

/// The only algorithms ever accepted, by their JOSE names.
const PINNED: [(&str, Algorithm); 3] = [
    ("EdDSA", Algorithm::EdDSA),
    ("ES256", Algorithm::ES256),
    ("RS256", Algorithm::RS256),
];

/// At most this many keys in a JWKS (a token without `kid` may be tried against
/// every key of its algorithm).
const MAX_KEYS: usize = 32;
const MIN_RSA_BITS: usize = 2048;
/// aws-lc-rs verifies RS256 only for 2048..=8192-bit moduli.
const MAX_RSA_BITS: usize = 8192;
/// Longest accepted `jti`.
const MAX_JTI_LEN: usize = 256;

fn seconds(duration: std::time::Duration) -> i64 {
    i64::try_from(duration.as_secs()).unwrap_or(i64::MAX)
}

/// The longest a token may be valid (`exp` minus the earlier of `nbf` and
/// `iat`, and `exp` minus now) unless the verifier is configured otherwise.
pub const DEFAULT_MAX_TOKEN_LIFETIME: std::time::Duration =
    std::time::Duration::from_secs(12 * 60 * 60);
/// The verification cache keeps two generations of this many entries, so it never
/// holds more than 10,000 tokens.
const CACHE_GENERATION: usize = 5_000;

/// JWK members are base64url; tolerate (but do not require) padding there.
const JWK_B64: GeneralPurpose = GeneralPurpose::new(
    &URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// What a successfully verified token says: who the caller is, nothing more. Roles
/// come from the staff directory, never from the token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedToken {
    /// `sub`, parsed as a staff id.
    pub subject: StaffId,
    /// `jti`, if the token has one.
    pub token_id: Option<String>,
    /// `exp`, seconds since the Unix epoch.
    pub expires_at: i64,
}

/// Verifies bearer tokens for one service: one issuer, one audience, one key set.
///
/// Cheap to share (`Arc<TokenVerifier>`); `verify` takes `&self` and is safe to call
/// from many tasks at once. Successful verifications are cached (keyed by the
/// SHA-256 of the token, at most 10,000 entries, each still checked against its
/// `exp`/`nbf` on every hit), so a repeated token costs a hash and a map lookup.
/// Rotating keys means building a new verifier (with an empty cache).
pub struct TokenVerifier {
    issuer: String,
    audience: String,
    keys: Vec<TrustedKey>,
    cache: VerifyCache,
    max_lifetime_seconds: i64,
}

struct TrustedKey {
    kid: Option<String>,
    alg: Algorithm,
    key: DecodingKey,
    /// Pre-built so that `verify` allocates no validation sets.
    validation: Validation,
}

impl fmt::Debug for TokenVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenVerifier")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field(
                "keys",
                &self
                    .keys
                    .iter()
                    .map(|k| (k.kid.as_deref(), k.alg))
                    .collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl TokenVerifier {
    /// Builds a verifier from a JWKS document (`{"keys": [...]}`).
    ///
    /// Accepted keys: `OKP`/`Ed25519` (EdDSA), `EC`/`P-256` (ES256), `RSA` with a
    /// 2048..=8192-bit modulus (RS256). A key's `alg`, when present, must be the one
    /// pinned for its type; when absent it is inferred from the type. Keys marked
    /// `"use": "enc"` are skipped. Refused outright: symmetric (`oct`) keys, any
    /// `HS*` or `none` algorithm, any other key type, curve or algorithm, private key
    /// material (`d`), duplicate `kid`s, and a set left with no signature key.
    pub fn from_jwks(jwks_json: &str, issuer: &str, audience: &str) -> Result<Self, AuthError> {
        if issuer.is_empty() {
            return Err(AuthError::InvalidConfig("the issuer must not be empty"));
        }
        if audience.is_empty() {
            return Err(AuthError::InvalidConfig("the audience must not be empty"));
        }
        let doc: Value = serde_json::from_str(jwks_json)
            .map_err(|e| AuthError::InvalidJwks(format!("not JSON: {e}")))?;
        let entries = doc
            .get("keys")
            .and_then(Value::as_array)
            .ok_or_else(|| AuthError::InvalidJwks("no `keys` array".to_owned()))?;
        if entries.len() > MAX_KEYS {
            return Err(AuthError::InvalidJwks(format!(
                "{} keys; at most {MAX_KEYS} are accepted",
                entries.len()
            )));
        }

        let mut keys = Vec::new();
        for (i, entry) in entries.iter().enumerate() {
            match parse_jwk(entry) {
                Ok(Some((kid, alg, key))) => keys.push(TrustedKey {
                    kid,
                    alg,
                    key,
                    validation: validation_for(alg, issuer, audience),
                }),
                Ok(None) => tracing::info!(index = i, "JWKS: skipping an encryption key"),
                Err(reason) => {
                    let kid = entry.get("kid").and_then(Value::as_str).unwrap_or("-");
                    return Err(AuthError::InvalidJwks(format!(
                        "key #{i} (kid {kid:?}): {reason}"
                    )));
                }
            }
        }
        if keys.is_empty() {
            return Err(AuthError::InvalidJwks(
                "the key set holds no signature key (EdDSA, ES256 or RS256)".to_owned(),
            ));
        }
        let mut kids = HashSet::new();
        for kid in keys.iter().filter_map(|k| k.kid.as_deref()) {
            if !kids.insert(kid) {
                return Err(AuthError::InvalidJwks(format!("duplicate kid {kid:?}")));
            }
        }

        Ok(Self {
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
            keys,
            cache: VerifyCache::default(),
            max_lifetime_seconds: seconds(DEFAULT_MAX_TOKEN_LIFETIME),
        })
    }

    /// Refuses tokens valid for longer than `max` (default
    /// [`DEFAULT_MAX_TOKEN_LIFETIME`]); at least one second.
    pub fn with_max_lifetime(mut self, max: std::time::Duration) -> Result<Self, AuthError> {
        let max = seconds(max);
        if max < 1 {
            return Err(AuthError::InvalidConfig(
                "the maximum token lifetime must be at least one second",
            ));
        }
        self.max_lifetime_seconds = max;
        Ok(self)
    }

    /// The issuer this verifier accepts.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The audience this verifier accepts.
    pub fn audience(&self) -> &str {
        &self.audience
    }

    /// Verifies a bearer token (the bare compact JWS, without `Bearer `).
    ///
    /// Every error is a token rejection ([`AuthError::is_unauthenticated`]).
    pub fn verify(&self, token: &str) -> Result<VerifiedToken, AuthError> {
        self.verify_at(token, chrono::Utc::now().timestamp())
    }

    /// [`Self::verify`] with an explicit clock, for tests of the time rules.
    /// (`jsonwebtoken` additionally checks `exp`/`nbf` against the real clock on the
    /// uncached path, so a time in the past does not make an expired token pass.)
    pub(crate) fn verify_at(&self, token: &str, now: i64) -> Result<VerifiedToken, AuthError> {
        if token.is_empty() {
            return Err(AuthError::Malformed("no token"));
        }
        if token.len() > MAX_TOKEN_BYTES {
            return Err(AuthError::Malformed("token is larger than 8 KiB"));
        }
        let fingerprint = fingerprint(token);
        if let Some(hit) = self.cache.get(&fingerprint) {
            check_times(hit.not_before, hit.token.expires_at, now)?;
            return Ok(hit.token);
        }
        let entry = self.verify_uncached(token, now)?;
        let verified = entry.token.clone();
        self.cache.insert(fingerprint, entry);
        Ok(verified)
    }

    fn verify_uncached(&self, token: &str, now: i64) -> Result<CacheEntry, AuthError> {
        let header = parse_header(token)?;
        let alg = PINNED
            .iter()
            .find(|(name, _)| *name == header.alg)
            .map(|(_, alg)| *alg)
            .ok_or(AuthError::UnsupportedAlgorithm)?;
        if header.crit.is_some() {
            return Err(AuthError::Malformed(
                "critical header extensions are not supported",
            ));
        }
        if let Some(typ) = &header.typ {
            let typ = typ.to_ascii_lowercase();
            if !matches!(typ.as_str(), "jwt" | "at+jwt" | "application/at+jwt") {
                return Err(AuthError::Malformed("token type is not JWT"));
            }
        }

        match &header.kid {
            Some(kid) => {
                let key = self
                    .keys
                    .iter()
                    .find(|k| k.kid.as_deref() == Some(kid.as_str()))
                    .ok_or(AuthError::UnknownKey)?;
                if key.alg != alg {
                    return Err(AuthError::UnsupportedAlgorithm);
                }
                self.check_with(key, token, now)
            }
            None => {
                let mut outcome = Err(AuthError::UnknownKey);
                for key in self.keys.iter().filter(|k| k.alg == alg) {
                    outcome = self.check_with(key, token, now);
                    if !matches!(outcome, Err(AuthError::BadSignature)) {
                        break;
                    }
                }
                outcome
            }
        }
    }

    /// Signature and `jsonwebtoken`'s claim validation, then our exact checks.
    fn check_with(&self, key: &TrustedKey, token: &str, now: i64) -> Result<CacheEntry, AuthError> {
        let data = jsonwebtoken::decode::<RawClaims>(token, &key.key, &key.validation)
            .map_err(map_jwt_error)?;
        self.check_claims(data.claims, now)
    }

    fn check_claims(&self, claims: RawClaims, now: i64) -> Result<CacheEntry, AuthError> {
        match claims.iss {
            Some(Value::String(iss)) if iss == self.issuer => {}
            None => return Err(AuthError::Malformed("claim `iss` is missing")),
            Some(_) => return Err(AuthError::WrongIssuer),
        }
        let audience_ok = match &claims.aud {
            Some(Value::String(aud)) => *aud == self.audience,
            // RFC 7519 allows an array; accept it only if this service is its sole member,
            // so that no token is ever valid at two services (S1).
            Some(Value::Array(auds)) => {
                auds.len() == 1 && auds[0].as_str() == Some(self.audience.as_str())
            }
            None => return Err(AuthError::Malformed("claim `aud` is missing")),
            Some(_) => false,
        };
        if !audience_ok {
            return Err(AuthError::WrongAudience);
        }

        let expires_at = claims
            .exp
            .as_ref()
            .and_then(|v| numeric_date(v, Round::Down))
            .ok_or(AuthError::Malformed(
                "claim `exp` is missing or not a NumericDate",
            ))?;
        let not_before = claims
            .nbf
            .as_ref()
            .and_then(|v| numeric_date(v, Round::Up))
            .ok_or(AuthError::Malformed(
                "claim `nbf` is missing or not a NumericDate",
            ))?;
        let mut valid_from = not_before;
        if let Some(iat) = &claims.iat {
            let issued_at = numeric_date(iat, Round::Up)
                .ok_or(AuthError::Malformed("claim `iat` is not a NumericDate"))?;
            if issued_at > now.saturating_add(LEEWAY_SECONDS) {
                return Err(AuthError::NotYetValid);
            }
            valid_from = valid_from.min(issued_at);
        }
        check_times(not_before, expires_at, now)?;
        // Measured from issue and from now, so neither a back-dated `nbf`
        // nor a future one stretches a token beyond the maximum.
        let lifetime = expires_at
            .saturating_sub(valid_from)
            .max(expires_at.saturating_sub(now));
        if lifetime > self.max_lifetime_seconds {
            return Err(AuthError::LifetimeTooLong {
                max_seconds: self.max_lifetime_seconds,
            });
        }

        let subject = match &claims.sub {
            Some(Value::String(sub)) => StaffId::parse(sub).map_err(|_| AuthError::BadSubject)?,
            None => return Err(AuthError::Malformed("claim `sub` is missing")),
            Some(_) => return Err(AuthError::BadSubject),
        };
        let token_id = match claims.jti {
            None => None,
            Some(Value::String(jti)) if !jti.is_empty() && jti.len() <= MAX_JTI_LEN => Some(jti),
            Some(_) => {
                return Err(AuthError::Malformed(
                    "claim `jti` is not a string of 1-256 characters",
                ));
            }
        };

        Ok(CacheEntry {
            token: VerifiedToken {
                subject,
                token_id,
                expires_at,
            },
            not_before,
        })
    }

    /// Verifies an OpenID Connect ID token (OIDC Core 3.1.3.7) from the
    /// token endpoint of this verifier's issuer, whose audience is the
    /// client id: the same key selection and algorithm pinning as a bearer
    /// token, then `iss` exact, `aud` the client (an array only with `azp`
    /// naming the client), `exp` current, `iat` present and not in the
    /// future, the lifetime bounded, and `nonce` the one this login sent.
    /// The staff id is the string claim `staff_claim` (e.g. `sub`).
    /// Never cached: each login verifies its own token once.
    pub fn verify_id_token(
        &self,
        token: &str,
        nonce: &str,
        staff_claim: &str,
    ) -> Result<StaffId, AuthError> {
        let now = chrono::Utc::now().timestamp();
        if token.is_empty() || token.len() > MAX_TOKEN_BYTES {
            return Err(AuthError::Malformed(
                "ID token missing or larger than 8 KiB",
            ));
        }
        let header = parse_header(token)?;
        let alg = PINNED
            .iter()
            .find(|(name, _)| *name == header.alg)
            .map(|(_, alg)| *alg)
            .ok_or(AuthError::UnsupportedAlgorithm)?;
        if header.crit.is_some() {
            return Err(AuthError::Malformed(
                "critical header extensions are not supported",
            ));
        }
        let candidates: Vec<&TrustedKey> = match &header.kid {
            Some(kid) => self
                .keys
                .iter()
                .filter(|k| k.kid.as_deref() == Some(kid.as_str()) && k.alg == alg)
                .collect(),
            None => self.keys.iter().filter(|k| k.alg == alg).collect(),
        };
        let mut outcome = Err(AuthError::UnknownKey);
        for key in candidates {
            let mut validation = Validation::new(alg);
            validation.leeway = LEEWAY_SECONDS.unsigned_abs();
            validation.validate_exp = true;
            validation.validate_nbf = true;
            // `aud` is checked below, exactly (an array needs `azp`).
            validation.validate_aud = false;
            validation.set_required_spec_claims(&["exp", "iss"]);
            validation.set_issuer(&[self.issuer.as_str()]);
            outcome = jsonwebtoken::decode::<serde_json::Map<String, Value>>(
                token,
                &key.key,
                &validation,
            )
            .map_err(map_jwt_error);
            if !matches!(outcome, Err(AuthError::BadSignature)) {
                break;
            }
        }
        let claims = outcome?.claims;
        if claims.get("iss").and_then(Value::as_str) != Some(self.issuer.as_str()) {
            return Err(AuthError::WrongIssuer);
        }
        let client = self.audience.as_str();
        let audience_ok = match claims.get("aud") {
            Some(Value::String(aud)) => aud == client,
            Some(Value::Array(auds)) => {
                auds.iter().any(|a| a.as_str() == Some(client))
                    && claims.get("azp").and_then(Value::as_str) == Some(client)
            }
            _ => false,
        };
        if !audience_ok {
            return Err(AuthError::WrongAudience);
        }
        if claims.get("nonce").and_then(Value::as_str) != Some(nonce) || nonce.is_empty() {
            return Err(AuthError::Malformed("ID token nonce is not this login's"));
        }
        let expires_at = claims
            .get("exp")
            .and_then(|v| numeric_date(v, Round::Down))
            .ok_or(AuthError::Malformed("claim `exp` is not a NumericDate"))?;
        let issued_at = claims
            .get("iat")
            .and_then(|v| numeric_date(v, Round::Up))
            .ok_or(AuthError::Malformed(
                "claim `iat` is missing or not a NumericDate",
            ))?;
        check_times(issued_at, expires_at, now)?;
        if expires_at.saturating_sub(issued_at) > self.max_lifetime_seconds {
            return Err(AuthError::LifetimeTooLong {
                max_seconds: self.max_lifetime_seconds,
            });
        }
        match claims.get(staff_claim) {
            Some(Value::String(id)) => StaffId::parse(id).map_err(|_| AuthError::BadSubject),
            _ => Err(AuthError::BadSubject),
        }
    }

    #[cfg(test)]
    pub(crate) fn cached_tokens(&self) -> usize {
        self.cache.len()
    }
}

/// `jsonwebtoken` settings for one key: its algorithm only, every time claim
/// required, issuer and audience pinned, 30 s leeway.
fn validation_for(alg: Algorithm, issuer: &str, audience: &str) -> Validation {
    let mut validation = Validation::new(alg);
    validation.leeway = LEEWAY_SECONDS.unsigned_abs();
    validation.validate_exp = true;
    validation.validate_nbf = true;
    validation.validate_aud = true;
    validation.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
    validation.set_issuer(&[issuer]);
    validation.set_audience(&[audience]);
    validation
}

fn check_times(not_before: i64, expires_at: i64, now: i64) -> Result<(), AuthError> {
    if now > expires_at.saturating_add(LEEWAY_SECONDS) {
        return Err(AuthError::Expired);
    }
    if not_before > now.saturating_add(LEEWAY_SECONDS) {
        return Err(AuthError::NotYetValid);
    }
    Ok(())
}

#[derive(Clone, Copy)]
enum Round {
    Down,
    Up,
}

/// A JWT NumericDate: a non-negative JSON number of seconds. Fractions are rounded
/// towards the stricter side (`exp` down, `nbf`/`iat` up). Strings are refused.
fn numeric_date(value: &Value, round: Round) -> Option<i64> {
    /// Year ~33658; anything beyond is not a date.
    const MAX: i64 = 1 << 40;
    let Value::Number(n) = value else {
        return None;
    };
    let secs = if let Some(i) = n.as_i64() {
        i
    } else if n.is_u64() {
        return None;
    } else {
        let f = n.as_f64()?;
        if !f.is_finite() || f < 0.0 || f > MAX as f64 {
            return None;
        }
        let f = match round {
            Round::Down => f.floor(),
            Round::Up => f.ceil(),
        };
        // In range by the check above, so the cast is exact.
        f as i64
    };
    (0..=MAX).contains(&secs).then_some(secs)
}

#[derive(Deserialize)]
struct RawHeader {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    typ: Option<String>,
    #[serde(default)]
    crit: Option<Value>,
}

/// Claims as JSON values, so that each type error gets its own precise rejection.
/// Duplicate members make deserialization fail (no parser differentials).
#[derive(Deserialize)]
struct RawClaims {
    #[serde(default)]
    sub: Option<Value>,
    #[serde(default)]
    iss: Option<Value>,
    #[serde(default)]
    aud: Option<Value>,
    #[serde(default)]
    exp: Option<Value>,
    #[serde(default)]
    nbf: Option<Value>,
    #[serde(default)]
    iat: Option<Value>,
    #[serde(default)]
    jti: Option<Value>,
}

fn parse_header(token: &str) -> Result<RawHeader, AuthError> {
    const SHAPE: &str = "token is not a compact JWS (three base64url segments)";
    let mut segments = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) = (
        segments.next(),
        segments.next(),
        segments.next(),
        segments.next(),
    ) else {
        return Err(AuthError::Malformed(SHAPE));
    };
    let base64url = |s: &str| {
        s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    if header.is_empty()
        || payload.is_empty()
        || !base64url(header)
        || !base64url(payload)
        || !base64url(signature)
    {
        return Err(AuthError::Malformed(SHAPE));
    }
    let header = URL_SAFE_NO_PAD
        .decode(header)
        .map_err(|_| AuthError::Malformed(SHAPE))?;
    let payload = URL_SAFE_NO_PAD
        .decode(payload)
        .map_err(|_| AuthError::Malformed(SHAPE))?;
    // serde's derived deserializers also accept a JSON array (sequence form); a JOSE
    // header and a claims set are objects, nothing else.
    if !is_json_object(&payload) {
        return Err(AuthError::Malformed(
            "token payload is not a JSON object of claims",
        ));
    }
    const BAD_HEADER: &str = "token header is not a JSON object with a string `alg`";
    if !is_json_object(&header) {
        return Err(AuthError::Malformed(BAD_HEADER));
    }
    serde_json::from_slice(&header).map_err(|_| AuthError::Malformed(BAD_HEADER))
}

fn is_json_object(json: &[u8]) -> bool {
    json.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{')
}

fn map_jwt_error(err: jsonwebtoken::errors::Error) -> AuthError {
    match err.kind() {
        ErrorKind::InvalidSignature => AuthError::BadSignature,
        ErrorKind::ExpiredSignature => AuthError::Expired,
        ErrorKind::ImmatureSignature => AuthError::NotYetValid,
        ErrorKind::InvalidIssuer => AuthError::WrongIssuer,
        ErrorKind::InvalidAudience => AuthError::WrongAudience,
        ErrorKind::InvalidSubject => AuthError::BadSubject,
        ErrorKind::InvalidAlgorithm
        | ErrorKind::MissingAlgorithm
        | ErrorKind::UnsupportedAlgorithm
        | ErrorKind::InvalidAlgorithmName => AuthError::UnsupportedAlgorithm,
        ErrorKind::MissingRequiredClaim(claim) => AuthError::Malformed(match claim.as_str() {
            "exp" => "claim `exp` is missing or not a NumericDate",
            "nbf" => "claim `nbf` is missing or not a NumericDate",
            "sub" => "claim `sub` is missing or not a string",
            "iss" => "claim `iss` is missing or not a string",
            "aud" => "claim `aud` is missing or not a string",
            _ => "a required claim is missing",
        }),
        ErrorKind::InvalidClaimFormat(_) => {
            AuthError::Malformed("a time claim is not a NumericDate")
        }
        ErrorKind::InvalidToken | ErrorKind::Base64(_) | ErrorKind::Utf8(_) => {
            AuthError::Malformed("token is not a valid compact JWS")
        }
        ErrorKind::Json(_) => AuthError::Malformed("token payload is not a JSON object of claims"),
        other => {
            // Key problems are caught when the JWKS is loaded; anything else here means
            // the signature could not be checked, which is a failed check.
            tracing::warn!(error = ?other, "token verification failed in the crypto layer");
            AuthError::BadSignature
        }
    }
}

/// Parses one JWK. `Ok(None)`: an encryption key, skipped.
fn parse_jwk(jwk: &Value) -> Result<Option<(Option<String>, Algorithm, DecodingKey)>, String> {
    let jwk = Jwk(jwk.as_object().ok_or("not a JSON object")?);
    let kty = jwk.text("kty")?.ok_or("`kty` is missing")?;
    let alg = jwk.text("alg")?;
    refuse_unsafe_keys(&jwk, kty, alg)?;
    match jwk.text("use")? {
        None | Some("sig") => {}
        Some("enc") => return Ok(None),
        Some(other) => return Err(format!("unknown `use` {other:?}")),
    }
    let kid = match jwk.text("kid")? {
        Some("") => return Err("`kid` is empty".to_owned()),
        kid => kid.map(str::to_owned),
    };
    let (alg, key) = match kty {
        "OKP" => (Algorithm::EdDSA, ed25519_key(&jwk, alg)?),
        "EC" => (Algorithm::ES256, p256_key(&jwk, alg)?),
        "RSA" => (Algorithm::RS256, rsa_key(&jwk, alg)?),
        other => return Err(format!("key type {other:?} is not accepted")),
    };
    Ok(Some((kid, alg, key)))
}

/// The members of one JWK, read strictly.
struct Jwk<'a>(&'a serde_json::Map<String, Value>);

impl Jwk<'_> {
    /// A string member; absent and `null` are the same.
    fn text(&self, name: &str) -> Result<Option<&str>, String> {
        match self.0.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.as_str())),
            Some(_) => Err(format!("`{name}` is not a string")),
        }
    }

    /// A required base64url member, decoded.
    fn bytes(&self, name: &str) -> Result<Vec<u8>, String> {
        let value = self
            .text(name)?
            .ok_or_else(|| format!("`{name}` is missing"))?;
        JWK_B64
            .decode(value)
            .map_err(|_| format!("`{name}` is not base64url"))
    }
}

/// Symmetric keys, `HS*` and `none` algorithms and private key material
/// are refused outright: a JWKS publishes public signing keys only.
fn refuse_unsafe_keys(jwk: &Jwk<'_>, kty: &str, alg: Option<&str>) -> Result<(), String> {
    if kty == "oct" {
        return Err("symmetric (`oct`) keys are not accepted".to_owned());
    }
    if let Some(alg) = alg
        && (alg.to_ascii_uppercase().starts_with("HS") || alg.eq_ignore_ascii_case("none"))
    {
        return Err(format!("algorithm {alg} is not accepted"));
    }
    if ["d", "p", "q", "dp", "dq", "qi", "k"]
        .iter()
        .any(|m| jwk.0.contains_key(*m))
    {
        return Err("contains private key material; publish public keys only".to_owned());
    }
    Ok(())
}

/// Each key type has one algorithm; a JWK that names another is refused.
fn pinned(alg: Option<&str>, kty: &str, expected: &str) -> Result<(), String> {
    match alg {
        None => Ok(()),
        Some(a) if a == expected => Ok(()),
        Some(a) => Err(format!(
            "algorithm {a} is not accepted for a {kty} key (pinned: {expected})"
        )),
    }
}

/// An `OKP` key: Ed25519 only.
fn ed25519_key(jwk: &Jwk<'_>, alg: Option<&str>) -> Result<DecodingKey, String> {
    if jwk.text("crv")? != Some("Ed25519") {
        return Err("OKP keys must use crv Ed25519".to_owned());
    }
    pinned(alg, "OKP", "EdDSA")?;
    let x = jwk.bytes("x")?;
    if x.len() != 32 {
        return Err("Ed25519 `x` must be 32 bytes".to_owned());
    }
    Ok(DecodingKey::from_ed_der(&x))
}

/// An `EC` key: P-256 only.
fn p256_key(jwk: &Jwk<'_>, alg: Option<&str>) -> Result<DecodingKey, String> {
    if jwk.text("crv")? != Some("P-256") {
        return Err("EC keys must use crv P-256".to_owned());
    }
    pinned(alg, "EC", "ES256")?;
    let (x, y) = (jwk.bytes("x")?, jwk.bytes("y")?);
    if x.len() != 32 || y.len() != 32 {
        return Err("P-256 `x` and `y` must be 32 bytes each".to_owned());
    }
    // Uncompressed SEC1 point, what the verifier expects.
    let mut point = Vec::with_capacity(65);
    point.push(0x04);
    point.extend_from_slice(&x);
    point.extend_from_slice(&y);
    Ok(DecodingKey::from_ec_der(&point))
}

/// An `RSA` key of an accepted size with a sane public exponent.
fn rsa_key(jwk: &Jwk<'_>, alg: Option<&str>) -> Result<DecodingKey, String> {
    pinned(alg, "RSA", "RS256")?;
    let n = jwk.bytes("n")?;
    let e = jwk.bytes("e")?;
    let n = strip_leading_zeros(&n);
    let e = strip_leading_zeros(&e);
    let bits = bit_length(n);
    if !(MIN_RSA_BITS..=MAX_RSA_BITS).contains(&bits) {
        return Err(format!(
            "RSA modulus has {bits} bits; {MIN_RSA_BITS}..={MAX_RSA_BITS} are accepted"
        ));
    }
    let e_value = e.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
    if e.is_empty() || e.len() > 4 || e_value < 3 || e_value % 2 == 0 {
        return Err("RSA public exponent must be odd, >= 3 and < 2^32".to_owned());
    }
    Ok(DecodingKey::from_rsa_raw_components(n, e))
}

fn strip_leading_zeros(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    &bytes[start..]
}

fn bit_length(be: &[u8]) -> usize {
    match be.first() {
        None => 0,
        Some(first) => be.len() * 8 - first.leading_zeros() as usize,
    }
}

type Fingerprint = [u8; 32];

fn fingerprint(token: &str) -> Fingerprint {
    let digest = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

#[derive(Clone)]
struct CacheEntry {
    token: VerifiedToken,
    not_before: i64,
}

/// Successful verifications, bounded: two generations; when the current one is
/// full it becomes the previous one (dropping the older), so the most recently
/// verified tokens stay and at most `2 * CACHE_GENERATION` entries exist.
#[derive(Default)]
struct VerifyCache {
    generations: RwLock<Generations>,
}

#[derive(Default)]
struct Generations {
    current: HashMap<Fingerprint, CacheEntry>,
    previous: HashMap<Fingerprint, CacheEntry>,
}

impl VerifyCache {
    fn get(&self, fingerprint: &Fingerprint) -> Option<CacheEntry> {
        // A poisoned lock only means another thread panicked mid-insert; the maps
        // hold whole entries, so they are still consistent.
        let g = self
            .generations
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        g.current
            .get(fingerprint)
            .or_else(|| g.previous.get(fingerprint))
            .cloned()
    }

    fn insert(&self, fingerprint: Fingerprint, entry: CacheEntry) {
        let mut g = self
            .generations
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if g.current.len() >= CACHE_GENERATION && !g.current.contains_key(&fingerprint) {
            g.previous = std::mem::take(&mut g.current);
        }
        g.current.insert(fingerprint, entry);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        let g = self
            .generations
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        g.current.len() + g.previous.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{DevIdentityProvider, service_audience};

    fn dev_verifier() -> (tempfile::TempDir, DevIdentityProvider, TokenVerifier) {
        let dir = tempfile::tempdir().expect("tempdir");
        let idp = DevIdentityProvider::load_or_create(dir.path()).expect("idp");
        let verifier = TokenVerifier::from_jwks(
            &idp.jwks_json(),
            DevIdentityProvider::ISSUER,
            &service_audience("market"),
        )
        .expect("verifier");
        (dir, idp, verifier)
    }

    /// OIDC Core 3.1.3.7: an ID token is the client's, from the issuer,
    /// current, with this login's nonce; the staff id is the configured claim.
    #[test]
    fn id_tokens_are_checked_claim_by_claim() {
        let dir = tempfile::tempdir().expect("tempdir");
        let idp = DevIdentityProvider::load_or_create(dir.path()).expect("idp");
        let verifier = TokenVerifier::from_jwks(
            &idp.jwks_json(),
            "https://idp.bank.example",
            "market-console",
        )
        .expect("verifier");
        let now = chrono::Utc::now().timestamp();
        let good = serde_json::json!({
            "iss": "https://idp.bank.example", "aud": "market-console", "sub": "lo-1",
            "staff_id": "lo-2", "nonce": "n-123", "iat": now, "exp": now + 300,
        });
        let with = |key: &str, value: serde_json::Value| {
            let mut claims = good.clone();
            if value.is_null() {
                claims.as_object_mut().expect("object").remove(key);
            } else {
                claims[key] = value;
            }
            idp.sign_claims(&claims)
        };
        let table: Vec<(&str, String, &str, Result<&str, ()>)> = vec![
            ("as issued", idp.sign_claims(&good), "sub", Ok("lo-1")),
            (
                "another claim",
                idp.sign_claims(&good),
                "staff_id",
                Ok("lo-2"),
            ),
            (
                "a claim it lacks",
                idp.sign_claims(&good),
                "employee",
                Err(()),
            ),
            (
                "another issuer",
                with("iss", "https://evil.example".into()),
                "sub",
                Err(()),
            ),
            (
                "another client",
                with("aud", "backoffice-console".into()),
                "sub",
                Err(()),
            ),
            (
                "array without azp",
                with("aud", serde_json::json!(["market-console", "x"])),
                "sub",
                Err(()),
            ),
            (
                "another nonce",
                with("nonce", "n-999".into()),
                "sub",
                Err(()),
            ),
            (
                "no nonce",
                with("nonce", serde_json::Value::Null),
                "sub",
                Err(()),
            ),
            ("expired", with("exp", (now - 120).into()), "sub", Err(())),
            (
                "no iat",
                with("iat", serde_json::Value::Null),
                "sub",
                Err(()),
            ),
            (
                "a day long",
                with("exp", (now + 86_400).into()),
                "sub",
                Err(()),
            ),
            (
                "not a staff id",
                with("sub", "Robert'); DROP".into()),
                "sub",
                Err(()),
            ),
        ];
        for (case, token, claim, expected) in table {
            let got = verifier.verify_id_token(&token, "n-123", claim);
            match expected {
                Ok(id) => assert_eq!(
                    got.ok().map(|s| s.to_string()).as_deref(),
                    Some(id),
                    "{case}"
                ),
                Err(()) => assert!(got.is_err(), "{case}: {got:?}"),
            }
        }
        // A signature by another key is refused.
        let other_dir = tempfile::tempdir().expect("tempdir");
        let other = DevIdentityProvider::load_or_create(other_dir.path()).expect("idp");
        assert!(
            verifier
                .verify_id_token(&other.sign_claims(&good), "n-123", "sub")
                .is_err()
        );
    }

    #[test]
    fn cached_token_still_expires() {
        let (_dir, idp, verifier) = dev_verifier();
        let who = StaffId::parse("lo-1").expect("id");
        let token = idp.mint(&who, "market", 60).expect("mint");
        let now = chrono::Utc::now().timestamp();
        let first = verifier
            .verify_at(&token, now)
            .expect("fresh token verifies");
        assert_eq!(verifier.cached_tokens(), 1);
        // Cache hit inside the lifetime and the leeway.
        assert_eq!(verifier.verify_at(&token, now + 60 + 30).ok(), Some(first));
        // Cache hit past exp + leeway: refused, not served from the cache.
        assert!(matches!(
            verifier.verify_at(&token, now + 60 + 31),
            Err(AuthError::Expired)
        ));
        // And before nbf - leeway (a clock that went backwards).
        assert!(matches!(
            verifier.verify_at(&token, now - 31),
            Err(AuthError::NotYetValid)
        ));
    }

    /// Hardening finding 13: the lifetime counts from the earlier of `nbf`
    /// and `iat`, and from now; a configured maximum replaces the default.
    #[test]
    fn token_lifetime_is_bounded() {
        const HOUR: i64 = 3_600;
        let (_dir, _idp, verifier) = dev_verifier();
        let now = 1_900_000_000;
        let claims = |nbf: i64, iat: Option<i64>, exp: i64| {
            let mut claims = serde_json::json!({
                "sub": "lo-1", "iss": DevIdentityProvider::ISSUER,
                "aud": service_audience("market"), "nbf": nbf, "exp": exp,
            });
            if let Some(iat) = iat {
                claims["iat"] = serde_json::json!(iat);
            }
            serde_json::from_value::<RawClaims>(claims).expect("claims")
        };
        let table = [
            ("exactly 12 h", now, None, now + 12 * HOUR, true),
            ("12 h and a second", now, None, now + 12 * HOUR + 1, false),
            (
                "ten years",
                now,
                Some(now),
                now + 10 * 365 * 24 * HOUR,
                false,
            ),
            (
                "back-dated nbf",
                now - 11 * HOUR,
                None,
                now + 2 * HOUR,
                false,
            ),
            (
                "back-dated iat",
                now,
                Some(now - 11 * HOUR),
                now + 2 * HOUR,
                false,
            ),
            (
                "an hour, issued an hour ago",
                now - HOUR,
                Some(now - HOUR),
                now,
                true,
            ),
        ];
        for (row, nbf, iat, exp, accepted) in table {
            let verdict = verifier.check_claims(claims(nbf, iat, exp), now);
            match (verdict, accepted) {
                (Ok(_), true) => {}
                (Err(AuthError::LifetimeTooLong { max_seconds }), false) => {
                    assert_eq!(max_seconds, 12 * HOUR, "{row}");
                }
                (other, _) => panic!("{row}: {:?}", other.map(|e| e.token)),
            }
        }
        let strict = verifier
            .with_max_lifetime(std::time::Duration::from_secs(600))
            .expect("ten minutes");
        assert!(
            strict
                .check_claims(claims(now, None, now + 600), now)
                .is_ok()
        );
        assert!(matches!(
            strict.check_claims(claims(now, None, now + 601), now),
            Err(AuthError::LifetimeTooLong { max_seconds: 600 })
        ));
        assert!(matches!(
            strict.with_max_lifetime(std::time::Duration::ZERO),
            Err(AuthError::InvalidConfig(_))
        ));
    }

    #[test]
    fn uncached_time_rules_use_the_given_clock() {
        let (_dir, idp, verifier) = dev_verifier();
        let who = StaffId::parse("lo-1").expect("id");
        let token = idp.mint(&who, "market", 60).expect("mint");
        let now = chrono::Utc::now().timestamp();
        assert!(matches!(
            verifier.verify_at(&token, now + 60 + 31),
            Err(AuthError::Expired)
        ));
        assert_eq!(verifier.cached_tokens(), 0, "failures are never cached");
    }

    #[test]
    fn cache_is_bounded() {
        let cache = VerifyCache::default();
        let entry = CacheEntry {
            token: VerifiedToken {
                subject: StaffId::parse("lo-1").expect("id"),
                token_id: None,
                expires_at: 0,
            },
            not_before: 0,
        };
        for i in 0..(3 * CACHE_GENERATION + 7) {
            cache.insert(fingerprint(&i.to_string()), entry.clone());
        }
        assert!(cache.len() <= 2 * CACHE_GENERATION);
        assert!(cache.len() > CACHE_GENERATION);
        // The newest entry is kept.
        assert!(
            cache
                .get(&fingerprint(&(3 * CACHE_GENERATION + 6).to_string()))
                .is_some()
        );
    }

    #[test]
    fn numeric_dates() {
        use serde_json::json;
        assert_eq!(
            numeric_date(&json!(1_700_000_000), Round::Down),
            Some(1_700_000_000)
        );
        assert_eq!(numeric_date(&json!(1.5), Round::Down), Some(1));
        assert_eq!(numeric_date(&json!(1.5), Round::Up), Some(2));
        assert_eq!(numeric_date(&json!("1700000000"), Round::Down), None);
        assert_eq!(numeric_date(&json!(-1), Round::Down), None);
        assert_eq!(numeric_date(&json!(u64::MAX), Round::Down), None);
        assert_eq!(numeric_date(&json!(1e300), Round::Down), None);
        assert_eq!(numeric_date(&json!(null), Round::Down), None);
    }

    #[test]
    fn rsa_bit_length() {
        assert_eq!(bit_length(&[0x80, 0]), 16);
        assert_eq!(bit_length(&[0x01, 0]), 9);
        assert_eq!(bit_length(strip_leading_zeros(&[0, 0, 0x7f])), 7);
        assert_eq!(bit_length(&[]), 0);
    }
}
