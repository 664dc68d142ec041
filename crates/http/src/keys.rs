//! The keys a service verifies bearer tokens with: a key set pinned at
//! start (`--jwks FILE`), or the identity provider's key set at an https
//! address (`--jwks URL`), fetched at start, kept, and fetched again when a
//! token names a key the kept set does not hold (the provider rotated its
//! keys), at most once per [`RemoteKeys::REFETCH_AFTER`], so a stream of
//! tokens with invented key ids cannot make us hammer the provider.

use creditops_auth::{AuthError, TokenVerifier, VerifiedToken};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{Mutex, RwLock};

/// Bound on a key set document.
const MAX_JWKS_BYTES: usize = 256 * 1024;

/// Where a service's token keys come from.
pub enum TokenKeys {
    Pinned(TokenVerifier),
    Remote(RemoteKeys),
}

impl TokenKeys {
    /// Verifies a bearer token (see [`TokenVerifier::verify`]); with remote
    /// keys, an unknown key id fetches the set again once and retries.
    pub async fn verify(&self, token: &str) -> Result<VerifiedToken, AuthError> {
        match self {
            TokenKeys::Pinned(verifier) => verifier.verify(token),
            TokenKeys::Remote(remote) => remote.verify(token).await,
        }
    }
}

/// How a remote key set is checked: the issuer and audience tokens must
/// carry and the longest lifetime accepted.
#[derive(Debug, Clone)]
pub struct KeyRules {
    pub issuer: String,
    pub audience: String,
    pub max_lifetime: Duration,
}

/// The identity provider's key set at an address, kept and refreshed.
pub struct RemoteKeys {
    url: reqwest::Url,
    rules: KeyRules,
    http: reqwest::Client,
    current: RwLock<Arc<TokenVerifier>>,
    /// When the set was last fetched; held while fetching (one at a time).
    fetched_at: Mutex<Instant>,
    refetch_after: Duration,
}

impl RemoteKeys {
    /// The least time between two fetches the tokens cause.
    pub const REFETCH_AFTER: Duration = Duration::from_secs(60);

    /// Fetches the key set at `url` (https, or http on this machine only).
    pub async fn fetch(url: &str, rules: KeyRules) -> Result<RemoteKeys, String> {
        Self::fetch_with(url, rules, Self::REFETCH_AFTER).await
    }

    /// [`Self::fetch`] with another least time between fetches (tests).
    pub async fn fetch_with(
        url: &str,
        rules: KeyRules,
        refetch_after: Duration,
    ) -> Result<RemoteKeys, String> {
        let url = key_set_url(url)?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| format!("no HTTP client: {e}"))?;
        let verifier = download(&http, &url, &rules).await?;
        Ok(RemoteKeys {
            url,
            rules,
            http,
            current: RwLock::new(Arc::new(verifier)),
            fetched_at: Mutex::new(Instant::now()),
            refetch_after,
        })
    }

    async fn verify(&self, token: &str) -> Result<VerifiedToken, AuthError> {
        let current = self.current.read().await.clone();
        match current.verify(token) {
            Err(AuthError::UnknownKey) => {}
            other => return other,
        }
        let mut fetched_at = self.fetched_at.lock().await;
        let latest = self.current.read().await.clone();
        if !Arc::ptr_eq(&latest, &current) {
            // Somebody fetched while we waited: try their set.
            return latest.verify(token);
        }
        if fetched_at.elapsed() < self.refetch_after {
            return Err(AuthError::UnknownKey);
        }
        *fetched_at = Instant::now();
        match download(&self.http, &self.url, &self.rules).await {
            Ok(verifier) => {
                tracing::info!(keys = %self.url, "fetched the identity provider's keys again");
                let verifier = Arc::new(verifier);
                *self.current.write().await = verifier.clone();
                verifier.verify(token)
            }
            Err(e) => {
                // The kept keys stay in force; this token stays refused.
                tracing::error!(keys = %self.url, error = %e, "the identity provider's keys cannot be fetched");
                Err(AuthError::UnknownKey)
            }
        }
    }
}

/// A key set address: https, or http on this machine only.
pub fn key_set_url(text: &str) -> Result<reqwest::Url, String> {
    let url = reqwest::Url::parse(text).map_err(|e| format!("{text:?} is not a URL: {e}"))?;
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
        _ => Err(format!(
            "{text:?} must be https (http only on this machine)"
        )),
    }
}

async fn download(
    http: &reqwest::Client,
    url: &reqwest::Url,
    rules: &KeyRules,
) -> Result<TokenVerifier, String> {
    let response = http
        .get(url.clone())
        .header(reqwest::header::ACCEPT, "application/json")
        .send()
        .await
        .map_err(|e| format!("{url}: {e}"))?;
    if !response.status().is_success() {
        return Err(format!("{url} answered {}", response.status()));
    }
    if response
        .content_length()
        .is_some_and(|n| n > MAX_JWKS_BYTES as u64)
    {
        return Err(format!("{url}: the key set is larger than 256 KiB"));
    }
    let bytes = response.bytes().await.map_err(|e| format!("{url}: {e}"))?;
    if bytes.len() > MAX_JWKS_BYTES {
        return Err(format!("{url}: the key set is larger than 256 KiB"));
    }
    let text = std::str::from_utf8(&bytes).map_err(|_| format!("{url}: not UTF-8"))?;
    TokenVerifier::from_jwks(text, &rules.issuer, &rules.audience)
        .and_then(|v| v.with_max_lifetime(rules.max_lifetime))
        .map_err(|e| format!("{url}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use creditops_auth::{DevIdentityProvider, service_audience};
    use creditops_domain::StaffId;

    /// A key set server whose document the test changes.
    async fn serve(
        document: Arc<std::sync::RwLock<String>>,
    ) -> (String, Arc<std::sync::atomic::AtomicUsize>) {
        let hits = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = hits.clone();
        let app = axum::Router::new().route(
            "/jwks",
            axum::routing::get(move || {
                let document = document.clone();
                let counted = counted.clone();
                async move {
                    counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    document.read().unwrap().clone()
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        (format!("http://{addr}/jwks"), hits)
    }

    fn keys_of(idps: &[&DevIdentityProvider]) -> String {
        let keys: Vec<serde_json::Value> = idps
            .iter()
            .flat_map(|idp| {
                let doc: serde_json::Value = serde_json::from_str(&idp.jwks_json()).unwrap();
                doc["keys"].as_array().unwrap().clone()
            })
            .collect();
        serde_json::json!({ "keys": keys }).to_string()
    }

    #[tokio::test]
    async fn a_rotated_key_is_fetched_once_and_invented_keys_do_not_hammer_the_provider() {
        let (old_dir, new_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let old = DevIdentityProvider::load_or_create(old_dir.path()).unwrap();
        let new = DevIdentityProvider::load_or_create(new_dir.path()).unwrap();
        let document = Arc::new(std::sync::RwLock::new(keys_of(&[&old])));
        let (url, hits) = serve(document.clone()).await;
        let rules = KeyRules {
            issuer: DevIdentityProvider::ISSUER.to_owned(),
            audience: service_audience("market"),
            max_lifetime: Duration::from_secs(3600),
        };
        let keys = TokenKeys::Remote(
            RemoteKeys::fetch_with(&url, rules, Duration::from_millis(300))
                .await
                .unwrap(),
        );
        let who = StaffId::parse("lo-1").unwrap();
        keys.verify(&old.mint(&who, "market", 60).unwrap())
            .await
            .unwrap();
        assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 1);

        // The provider rotates: a token of the new key is accepted after one fetch.
        std::thread::sleep(Duration::from_millis(350));
        *document.write().unwrap() = keys_of(&[&old, &new]);
        let rotated = new.mint(&who, "market", 60).unwrap();
        assert_eq!(keys.verify(&rotated).await.unwrap().subject, who);
        assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 2);

        // Tokens naming keys nobody has: refused, and no fetch within the interval.
        let stranger_dir = tempfile::tempdir().unwrap();
        let stranger = DevIdentityProvider::load_or_create(stranger_dir.path()).unwrap();
        for _ in 0..20 {
            let forged = stranger.mint(&who, "market", 60).unwrap();
            assert!(matches!(
                keys.verify(&forged).await,
                Err(AuthError::UnknownKey)
            ));
        }
        assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 2);
    }

    #[test]
    fn a_key_set_is_fetched_over_https_or_on_this_machine_only() {
        assert!(key_set_url("https://idp.bank.example/jwks").is_ok());
        assert!(key_set_url("http://127.0.0.1:9000/jwks").is_ok());
        assert!(key_set_url("http://idp.bank.example/jwks").is_err());
        assert!(key_set_url("/etc/jwks.json").is_err());
    }
}
