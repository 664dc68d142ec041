//! Sign-in through the bank's identity provider: the OpenID Connect
//! authorization code flow with PKCE (RFC 7636, `S256`), one client per
//! service. The provider is found by discovery; its keys are fetched from
//! its `jwks_uri`, cached, and fetched again when a token names a key the
//! cache does not hold (a key rotation), at most once a minute.
//!
//! What the browser carries between the redirect and the callback (state,
//! nonce, code verifier) is a short-lived `HttpOnly` cookie of this service,
//! `SameSite=Lax` because the callback arrives as a navigation from the
//! provider. The ID token is verified claim by claim
//! ([`creditops_auth::TokenVerifier::verify_id_token`]); the staff id comes
//! from the configured claim, and the person must hold a role of the desk
//! today, exactly as at the development login.

use creditops_auth::{AuthError, TokenVerifier};
use creditops_domain::StaffId;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::RwLock;

/// How long a discovered provider's keys are trusted before a token with an
/// unknown key may make us fetch them again.
const REFETCH_AFTER: Duration = Duration::from_secs(60);
/// Where the provider sends the browser back, on every service's console.
pub const CALLBACK_PATH: &str = "/login/callback";
/// Bound on what the provider may answer (discovery, keys, tokens).
const MAX_ANSWER_BYTES: usize = 256 * 1024;

/// One service's client at the identity provider.
#[derive(Clone)]
pub struct OidcConfig {
    /// The issuer URL; discovery is `<issuer>/.well-known/openid-configuration`.
    pub issuer: String,
    pub client_id: String,
    pub client_secret: String,
    /// Where the provider sends the browser back: this service's external
    /// address and `/login/callback`. `None`: the address the browser used
    /// (for tests on ephemeral ports; the command line always sets it).
    pub redirect_uri: Option<String>,
    /// The ID token claim that holds the staff id (default `sub`).
    pub staff_claim: String,
}

impl fmt::Debug for OidcConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OidcConfig")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .field("redirect_uri", &self.redirect_uri)
            .field("staff_claim", &self.staff_claim)
            .finish()
    }
}

/// Why a sign-in through the provider did not happen.
#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    /// The provider could not be reached or answered garbage: nobody is
    /// signed in, and the page says to try again later.
    #[error("the identity provider cannot be used: {0}")]
    Provider(String),
    /// The provider's answer for this login is not acceptable (a refused
    /// code, an ID token that does not verify): refused and audited.
    #[error("the sign-in was refused: {0}")]
    Refused(String),
}

/// What discovery found.
struct Provider {
    authorization_endpoint: reqwest::Url,
    token_endpoint: reqwest::Url,
    jwks_uri: reqwest::Url,
    verifier: TokenVerifier,
    fetched_at: Instant,
}

/// A service's client at the provider, discovering it on first use.
pub struct OidcClient {
    config: OidcConfig,
    http: reqwest::Client,
    provider: RwLock<Option<Arc<Provider>>>,
}

impl fmt::Debug for OidcClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OidcClient")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// A URL the platform may talk to: `https`, or `http` on this machine only.
fn trusted_url(text: &str, what: &str) -> Result<reqwest::Url, OidcError> {
    let url = reqwest::Url::parse(text)
        .map_err(|e| OidcError::Provider(format!("{what} {text:?} is not a URL: {e}")))?;
    let loopback = match url.host_str() {
        Some("localhost") => true,
        Some(host) => host
            .trim_matches(['[', ']'])
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback()),
        None => false,
    };
    match url.scheme() {
        "https" => Ok(url),
        "http" if loopback => Ok(url),
        _ => Err(OidcError::Provider(format!(
            "{what} {text:?} must be https (http only on this machine)"
        ))),
    }
}

impl OidcClient {
    pub fn new(config: OidcConfig) -> Result<OidcClient, OidcError> {
        trusted_url(&config.issuer, "the issuer")?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            // The provider's answers are read, never followed elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| OidcError::Provider(format!("no HTTP client: {e}")))?;
        Ok(OidcClient {
            config,
            http,
            provider: RwLock::new(None),
        })
    }

    pub fn config(&self) -> &OidcConfig {
        &self.config
    }

    async fn fetch_json(&self, url: reqwest::Url) -> Result<serde_json::Value, OidcError> {
        let response = self
            .http
            .get(url.clone())
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| OidcError::Provider(format!("{url}: {e}")))?;
        read_json(response, url.as_ref()).await
    }

    /// Discovery and keys, fetched now.
    async fn discover(&self) -> Result<Provider, OidcError> {
        let issuer = self.config.issuer.trim_end_matches('/');
        let discovery = trusted_url(
            &format!("{issuer}/.well-known/openid-configuration"),
            "discovery",
        )?;
        let doc = self.fetch_json(discovery).await?;
        let field = |name: &str| {
            doc.get(name)
                .and_then(serde_json::Value::as_str)
                .ok_or_else(|| OidcError::Provider(format!("discovery lacks {name}")))
        };
        // OIDC Discovery 4.3: the document is the configured issuer's.
        if field("issuer")? != self.config.issuer {
            return Err(OidcError::Provider(format!(
                "discovery names issuer {:?}, not the configured {:?}",
                field("issuer")?,
                self.config.issuer
            )));
        }
        let jwks_uri = trusted_url(field("jwks_uri")?, "jwks_uri")?;
        let keys = self.fetch_json(jwks_uri.clone()).await?;
        let verifier = TokenVerifier::from_jwks(
            &keys.to_string(),
            &self.config.issuer,
            &self.config.client_id,
        )
        .map_err(|e| OidcError::Provider(format!("the provider's keys: {e}")))?;
        Ok(Provider {
            authorization_endpoint: trusted_url(
                field("authorization_endpoint")?,
                "authorization_endpoint",
            )?,
            token_endpoint: trusted_url(field("token_endpoint")?, "token_endpoint")?,
            jwks_uri,
            verifier,
            fetched_at: Instant::now(),
        })
    }

    /// The provider, discovered on first use.
    async fn provider(&self) -> Result<Arc<Provider>, OidcError> {
        if let Some(provider) = self.provider.read().await.as_ref() {
            return Ok(provider.clone());
        }
        let mut slot = self.provider.write().await;
        if let Some(provider) = slot.as_ref() {
            return Ok(provider.clone());
        }
        let provider = Arc::new(self.discover().await?);
        *slot = Some(provider.clone());
        Ok(provider)
    }

    /// Fetches discovery and keys again if the cached ones are older than
    /// [`REFETCH_AFTER`]; returns the provider to use.
    async fn refetched(&self, stale: &Arc<Provider>) -> Result<Arc<Provider>, OidcError> {
        let mut slot = self.provider.write().await;
        if let Some(current) = slot.as_ref()
            && (!Arc::ptr_eq(current, stale) || current.fetched_at.elapsed() < REFETCH_AFTER)
        {
            return Ok(current.clone());
        }
        tracing::info!(keys = %stale.jwks_uri, "fetching the identity provider's keys again");
        let provider = Arc::new(self.discover().await?);
        *slot = Some(provider.clone());
        Ok(provider)
    }

    /// Where to send the browser: the provider's authorization endpoint
    /// with this login's state, nonce and PKCE challenge.
    /// `force_login` asks the provider to authenticate the person again
    /// rather than reuse its own session (after a sign-out here, the next
    /// person at the same browser must not inherit the previous one).
    pub async fn authorization_url(
        &self,
        redirect_uri: &str,
        login: &PendingLogin,
        force_login: bool,
    ) -> Result<reqwest::Url, OidcError> {
        let provider = self.provider().await?;
        let mut url = provider.authorization_endpoint.clone();
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &self.config.client_id)
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("scope", "openid")
            .append_pair("state", &login.state)
            .append_pair("nonce", &login.nonce)
            .append_pair("code_challenge", &login.challenge())
            .append_pair("code_challenge_method", "S256");
        if force_login {
            url.query_pairs_mut().append_pair("prompt", "login");
        }
        Ok(url)
    }

    /// Exchanges `code` at the token endpoint and verifies the ID token;
    /// returns the staff id it names.
    pub async fn sign_in(
        &self,
        code: &str,
        redirect_uri: &str,
        login: &PendingLogin,
    ) -> Result<StaffId, OidcError> {
        let provider = self.provider().await?;
        let response = self
            .http
            .post(provider.token_endpoint.clone())
            .header(reqwest::header::ACCEPT, "application/json")
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", redirect_uri),
                ("code_verifier", &login.verifier),
                ("client_id", &self.config.client_id),
                ("client_secret", &self.config.client_secret),
            ])
            .send()
            .await
            .map_err(|e| OidcError::Provider(format!("token endpoint: {e}")))?;
        if response.status().is_client_error() {
            return Err(OidcError::Refused(format!(
                "the token endpoint refused the code ({})",
                response.status()
            )));
        }
        let answer = read_json(response, "the token endpoint").await?;
        let id_token = answer
            .get("id_token")
            .and_then(serde_json::Value::as_str)
            .ok_or_else(|| OidcError::Provider("the token answer has no id_token".to_owned()))?;
        let claim = &self.config.staff_claim;
        match provider
            .verifier
            .verify_id_token(id_token, &login.nonce, claim)
        {
            Err(AuthError::UnknownKey) => {
                let provider = self.refetched(&provider).await?;
                provider
                    .verifier
                    .verify_id_token(id_token, &login.nonce, claim)
                    .map_err(|e| OidcError::Refused(e.to_string()))
            }
            other => other.map_err(|e| OidcError::Refused(e.to_string())),
        }
    }
}

async fn read_json(
    response: reqwest::Response,
    what: &str,
) -> Result<serde_json::Value, OidcError> {
    if !response.status().is_success() {
        return Err(OidcError::Provider(format!(
            "{what} answered {}",
            response.status()
        )));
    }
    if response
        .content_length()
        .is_some_and(|n| n > MAX_ANSWER_BYTES as u64)
    {
        return Err(OidcError::Provider(format!("{what} answered too much")));
    }
    let bytes = response
        .bytes()
        .await
        .map_err(|e| OidcError::Provider(format!("{what}: {e}")))?;
    if bytes.len() > MAX_ANSWER_BYTES {
        return Err(OidcError::Provider(format!("{what} answered too much")));
    }
    serde_json::from_slice(&bytes)
        .map_err(|e| OidcError::Provider(format!("{what} answered no JSON: {e}")))
}

/// What one sign-in carries from the redirect to the callback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingLogin {
    pub state: String,
    pub nonce: String,
    /// The PKCE code verifier (43 characters of base64url).
    pub verifier: String,
}

impl PendingLogin {
    pub fn new() -> Result<PendingLogin, creditops_store::StoreError> {
        Ok(PendingLogin {
            state: crate::session::random_token()?,
            nonce: crate::session::random_token()?,
            verifier: crate::session::random_token()?,
        })
    }

    /// `BASE64URL(SHA256(verifier))` (RFC 7636 4.2, `S256`).
    pub fn challenge(&self) -> String {
        use base64::Engine;
        let digest = ring::digest::digest(&ring::digest::SHA256, self.verifier.as_bytes());
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest.as_ref())
    }

    /// The cookie value: the three tokens (base64url, so `.` separates them).
    pub fn cookie_value(&self) -> String {
        format!("{}.{}.{}", self.state, self.nonce, self.verifier)
    }

    pub fn from_cookie(value: &str) -> Option<PendingLogin> {
        let mut parts = value.split('.');
        let (Some(state), Some(nonce), Some(verifier), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return None;
        };
        let token = |t: &str| {
            (t.len() == 43
                && t.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
            .then(|| t.to_owned())
        };
        Some(PendingLogin {
            state: token(state)?,
            nonce: token(nonce)?,
            verifier: token(verifier)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7636 Appendix B.
    #[test]
    fn the_challenge_is_the_rfc_7636_s256_of_the_verifier() {
        let login = PendingLogin {
            state: String::new(),
            nonce: String::new(),
            verifier: "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk".to_owned(),
        };
        assert_eq!(
            login.challenge(),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn the_cookie_round_trips_and_refuses_anything_else() {
        let login = PendingLogin::new().unwrap();
        assert_eq!(
            PendingLogin::from_cookie(&login.cookie_value()),
            Some(login.clone())
        );
        for bad in ["", "a.b.c", &format!("{}.x", login.cookie_value()), "...."] {
            assert_eq!(PendingLogin::from_cookie(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_provider_is_reached_over_https_or_on_this_machine_only() {
        for (url, ok) in [
            ("https://idp.bank.example/realms/credit", true),
            ("http://127.0.0.1:9000", true),
            ("http://localhost:9000", true),
            ("http://idp.bank.example", false),
            ("ftp://idp.bank.example", false),
            ("not a url", false),
        ] {
            assert_eq!(trusted_url(url, "issuer").is_ok(), ok, "{url}");
        }
    }
}
