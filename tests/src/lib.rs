//! End-to-end test harness: starts the real platform (every service on its
//! own port-0 listener) on SQLite or on a fresh PostgreSQL database, mints
//! real tokens with the dev identity provider, and talks real HTTP.

// A test harness: failing loudly is its job.
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod browser;
pub mod console;
pub mod oidc;

use creditops::{DEFAULT_AUDIT_ORIGIN, Identity, PlatformConfig, RunningPlatform, demo};
use creditops_auth::DevIdentityProvider;
use creditops_domain::StaffId;
use creditops_store::Store;
use creditops_store_postgres::testing::{TestDatabase, pg_test_url};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use std::sync::Arc;

pub use reqwest;
pub use serde_json::json;

/// The OpenAPI document of `service`, as generated from its handlers.
pub fn openapi_document(service: &str) -> Value {
    let document = match service {
        "market" => creditops_svc_market::openapi(),
        "backoffice" => creditops_svc_backoffice::openapi(),
        "risk" => creditops_svc_risk::openapi(),
        "audit" => creditops_svc_audit::openapi(),
        "admin" => creditops_svc_admin::openapi(),
        other => panic!("no service {other}"),
    };
    serde_json::to_value(document).expect("the document serializes")
}

/// One operation of a service's OpenAPI document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentedOperation {
    /// Upper case, e.g. `POST`.
    pub method: String,
    /// The route template, e.g. `/v1/cases/{id}`.
    pub path: String,
    /// Whether it needs a bearer token (a business route).
    pub secured: bool,
}

/// Every operation the OpenAPI document of `service` lists.
pub fn documented_operations(service: &str) -> Vec<DocumentedOperation> {
    let document = openapi_document(service);
    let mut operations = Vec::new();
    for (path, item) in document["paths"].as_object().expect("paths") {
        for method in ["get", "put", "post", "delete", "patch"] {
            if let Some(operation) = item.get(method) {
                operations.push(DocumentedOperation {
                    method: method.to_ascii_uppercase(),
                    path: path.clone(),
                    secured: operation.get("security").is_some(),
                });
            }
        }
    }
    operations
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub struct TestPlatform {
    pub platform: Option<RunningPlatform>,
    pub store: Arc<dyn Store>,
    pub idp: DevIdentityProvider,
    pub client: reqwest::Client,
    pub data_dir: tempfile::TempDir,
    pub database_url: Option<String>,
    pg: Option<TestDatabase>,
    /// Whether a borrower market registers through [`Self::send`] is rated
    /// by back office at once (L4: no first vote without a fresh rating).
    /// Tests of L4 turn it off with [`Self::without_automatic_ratings`].
    rates_new_borrowers: std::sync::atomic::AtomicBool,
}

/// One HTTP answer: status, headers and the JSON body (Null if empty or not JSON).
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Reply {
    pub fn content_type(&self) -> &str {
        self.headers
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// Asserts a problem+json answer with this status and returns its body.
    #[track_caller]
    pub fn problem(&self, status: u16) -> &Value {
        assert_eq!(
            self.status.as_u16(),
            status,
            "unexpected status, body: {}",
            self.body
        );
        assert_eq!(
            self.content_type(),
            "application/problem+json",
            "body: {}",
            self.body
        );
        assert_eq!(self.body["status"], status);
        assert!(
            self.body["type"].is_string()
                && self.body["title"].is_string()
                && self.body["detail"].is_string()
        );
        &self.body
    }

    #[track_caller]
    pub fn ok(&self, status: u16) -> &Value {
        assert_eq!(
            self.status.as_u16(),
            status,
            "unexpected status, body: {}",
            self.body
        );
        &self.body
    }
}

/// The default request limits, except the budget of failed logins: the
/// permission matrices send hundreds of deliberately refused tokens from one
/// address, which the production budget would answer 429 (that budget has a
/// test of its own).
pub fn test_limits() -> creditops_http::RequestLimits {
    creditops_http::RequestLimits {
        auth_failures_per_minute: 1_000_000,
        ..Default::default()
    }
}

impl TestPlatform {
    /// Starts the platform with the demo organisation. `None` if the backend
    /// is PostgreSQL and no test database is configured (a notice is printed).
    pub async fn start(backend: Backend) -> Option<Self> {
        Self::start_with_limits(backend, test_limits()).await
    }

    /// [`Self::start`] with other request bounds (body size, timeout).
    pub async fn start_with_limits(
        backend: Backend,
        limits: creditops_http::RequestLimits,
    ) -> Option<Self> {
        Self::start_with(backend, limits, std::collections::BTreeMap::new()).await
    }

    /// Starts the platform whose consoles sign in through an identity
    /// provider: `sign_on` names each service's client there (no
    /// development login then).
    pub async fn start_with_sign_on(
        backend: Backend,
        sign_on: std::collections::BTreeMap<String, creditops_console::oidc::OidcConfig>,
    ) -> Option<Self> {
        Self::start_with(backend, test_limits(), sign_on).await
    }

    async fn start_with(
        backend: Backend,
        limits: creditops_http::RequestLimits,
        sign_on: std::collections::BTreeMap<String, creditops_console::oidc::OidcConfig>,
    ) -> Option<Self> {
        let data_dir = tempfile::tempdir().expect("temp dir");
        let (store, mut pg, database_url): (Arc<dyn Store>, _, _) = match backend {
            Backend::Sqlite => {
                let store = creditops::open_store(None, data_dir.path(), DEFAULT_AUDIT_ORIGIN)
                    .await
                    .expect("sqlite store");
                (store, None, None)
            }
            Backend::Postgres => {
                let base = pg_test_url()?;
                let db = TestDatabase::create(&base).await;
                let url = db.url.clone();
                let store =
                    creditops::open_store(Some(&url), data_dir.path(), DEFAULT_AUDIT_ORIGIN)
                        .await
                        .expect("postgres store");
                (store, Some(db), Some(url))
            }
        };
        // On PostgreSQL every service runs as its own least-privilege role,
        // so each end-to-end test also proves the grants suffice.
        let mut service_stores = std::collections::BTreeMap::new();
        if let Some(db) = pg.as_mut() {
            for (service, url) in db.provision_roles().await {
                let store =
                    creditops::open_store(Some(&url), data_dir.path(), DEFAULT_AUDIT_ORIGIN)
                        .await
                        .expect("service store");
                service_stores.insert(service.to_owned(), store);
            }
        }
        let (sod, _) = creditops::platform::load_sod(None).expect("sod matrix");
        demo::seed(store.as_ref(), &sod)
            .await
            .expect("demo organisation");
        let platform = Self::launch(
            store.clone(),
            service_stores,
            data_dir.path(),
            limits,
            sign_on,
        )
        .await;
        Some(Self {
            platform: Some(platform),
            store,
            idp: DevIdentityProvider::load_or_create(data_dir.path()).expect("dev idp"),
            client: reqwest::Client::new(),
            data_dir,
            database_url,
            pg,
            rates_new_borrowers: std::sync::atomic::AtomicBool::new(true),
        })
    }

    /// A second instance of the platform on the same PostgreSQL database,
    /// as a second process of a deployment would be: its own connection
    /// pool, its own listeners and its own audit sequencer task (which
    /// competes for the leader lease), the same identity provider and audit
    /// signing key. Stop it before `self`, which drops the database.
    pub async fn attach_instance(&self) -> TestPlatform {
        let url = self
            .database_url
            .as_deref()
            .expect("a second instance shares a PostgreSQL database");
        let data_dir = tempfile::tempdir().expect("temp dir");
        let store = creditops::open_store(Some(url), data_dir.path(), DEFAULT_AUDIT_ORIGIN)
            .await
            .expect("postgres store");
        // Keys come from the first instance's data dir: one identity
        // provider and one audit signing key for the whole deployment.
        let platform = Self::launch(
            store.clone(),
            std::collections::BTreeMap::new(),
            self.data_dir.path(),
            test_limits(),
            std::collections::BTreeMap::new(),
        )
        .await;
        Self {
            platform: Some(platform),
            store,
            idp: DevIdentityProvider::load_or_create(self.data_dir.path()).expect("dev idp"),
            client: reqwest::Client::new(),
            data_dir,
            database_url: Some(url.to_owned()),
            pg: None,
            rates_new_borrowers: std::sync::atomic::AtomicBool::new(true),
        }
    }

    /// Starts every service on port 0 (each on its store in `service_stores`,
    /// else on `store`) with the dev identity provider and audit signing key
    /// kept in `keys_dir`.
    async fn launch(
        store: Arc<dyn Store>,
        service_stores: std::collections::BTreeMap<String, Arc<dyn Store>>,
        keys_dir: &std::path::Path,
        limits: creditops_http::RequestLimits,
        sign_on: std::collections::BTreeMap<String, creditops_console::oidc::OidcConfig>,
    ) -> RunningPlatform {
        let idp = DevIdentityProvider::load_or_create(keys_dir).expect("dev idp");
        let listeners = creditops::ALL_SERVICES
            .iter()
            .map(|s| (s.to_string(), "127.0.0.1:0".parse().expect("addr")))
            .collect();
        creditops::start(PlatformConfig {
            store,
            service_stores,
            identity: Identity {
                jwks: creditops::platform::JwksSource::Document(idp.jwks_json()),
                issuer: DevIdentityProvider::ISSUER.to_owned(),
                max_token_lifetime: creditops_auth::DEFAULT_MAX_TOKEN_LIFETIME,
            },
            policy_dir: None,
            audit_origin: DEFAULT_AUDIT_ORIGIN.to_owned(),
            audit_key: Some(Arc::new(
                creditops_audit::SigningKey::load_or_create(
                    DEFAULT_AUDIT_ORIGIN,
                    &keys_dir.join("audit-signing.key"),
                )
                .expect("audit key"),
            )),
            // A key "used before a rotation", so its publication is tested.
            audit_retired_keys: vec![
                creditops_audit::SigningKey::from_pkcs8(
                    DEFAULT_AUDIT_ORIGIN,
                    &creditops_audit::SigningKey::generate_pkcs8().expect("retired key"),
                )
                .expect("retired key")
                .verifier_key(),
            ],
            listeners,
            risk_watch_interval: None,
            audit_sequencer_interval: std::time::Duration::from_millis(100),
            limits,
            dev_console: sign_on.is_empty(),
            console_sign_on: sign_on,
        })
        .await
        .expect("platform starts")
    }

    pub fn token(&self, user: &str, service: &str) -> String {
        self.idp
            .mint(&StaffId::parse(user).expect("staff id"), service, 600)
            .expect("token")
    }

    pub fn url(&self, service: &str, path: &str) -> String {
        let base = self
            .platform
            .as_ref()
            .and_then(|p| p.url(service))
            .expect("service running");
        format!("{base}{path}")
    }

    /// Sends a request to `service` as `user` (a token for that service's audience).
    pub async fn call(
        &self,
        user: &str,
        service: &str,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Reply {
        let token = self.token(user, service);
        self.send(
            service,
            method,
            path,
            Some(&token),
            body.map(|b| b.to_string()),
            &[],
        )
        .await
    }

    /// Approves `pending`, the `202 Accepted` answer to a change that needs
    /// a second person, as `approver` on `service`, following the answer's
    /// `links.approve` as a script would.
    pub async fn approve_pending(&self, pending: &Reply, approver: &str, service: &str) -> Reply {
        let body = pending.ok(202);
        assert_eq!(body["status"], "pending", "{body}");
        let path = body["links"]["approve"]
            .as_str()
            .expect("a pending proposal links its approval")
            .to_owned();
        self.call(approver, service, Method::POST, &path, None)
            .await
    }

    /// The general form: any token (or none), raw body text, extra headers.
    pub async fn send(
        &self,
        service: &str,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<String>,
        headers: &[(&str, &str)],
    ) -> Reply {
        let mut request = self.client.request(method, self.url(service, path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.expect("request sent");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.expect("body");
        let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        if service == "market"
            && path == "/v1/borrowers"
            && status == StatusCode::CREATED
            && let Some(id) = body["id"].as_str()
        {
            self.rate_if_automatic(id).await;
        }
        Reply {
            status,
            headers,
            body,
        }
    }

    /// Stops rating newly registered borrowers (see `rates_new_borrowers`).
    pub fn without_automatic_ratings(&self) {
        self.rates_new_borrowers
            .store(false, std::sync::atomic::Ordering::SeqCst);
    }

    async fn rate_if_automatic(&self, borrower: &str) {
        if self
            .rates_new_borrowers
            .load(std::sync::atomic::Ordering::SeqCst)
        {
            self.rate(borrower, 5).await;
        }
    }

    /// Back office (`ba-3`) sets the borrower's rating to `class` with a
    /// probability of default inside it (L4).
    pub async fn rate(&self, borrower: &str, class: u8) {
        let pd = creditops_domain::RatingRules::default()
            .range_of(class)
            .expect("class on the default scale")
            .1;
        let token = self.token("ba-3", "backoffice");
        let response = self
            .client
            .put(self.url("backoffice", &format!("/v1/borrowers/{borrower}/rating")))
            .bearer_auth(token)
            .json(&json!({"class": class, "pd": pd.to_string(), "reason": "annual accounts"}))
            .send()
            .await
            .expect("rating sent");
        assert_eq!(
            response.status(),
            StatusCode::CREATED,
            "rating {borrower}: {}",
            response.text().await.unwrap_or_default()
        );
    }

    /// Puts a limit in force the four-eyes way (R1, R8): `rc-1` proposes,
    /// a second person decides (back office for borrower and group limits,
    /// `rc-2` for sector and country). Returns the approved version.
    pub async fn grant_limit(&self, kind: &str, key: &str, amount: &str) -> Value {
        let proposal = self
            .call(
                "rc-1",
                "risk",
                Method::POST,
                "/v1/limits",
                Some(
                    json!({"kind": kind, "key": key, "amount": amount, "reason": "annual review"}),
                ),
            )
            .await;
        let id = proposal.ok(201)["id"]
            .as_str()
            .expect("limit id")
            .to_owned();
        // Every limit is approved by back office (R8).
        let (approver, service) = ("bb-1", "backoffice");
        let approved = self
            .call(
                approver,
                service,
                Method::POST,
                &format!("/v1/limits/{id}/approve"),
                None,
            )
            .await;
        approved.ok(200).clone()
    }

    /// Creates a borrower as `by` with a generous borrower limit (EUR 100m),
    /// so only the rule under test binds; returns its id.
    pub async fn borrower_with_limit(&self, by: &str, body: Value) -> String {
        let reply = self
            .call(by, "market", Method::POST, "/v1/borrowers", Some(body))
            .await;
        let id = reply.ok(201)["id"]
            .as_str()
            .expect("borrower id")
            .to_owned();
        self.grant_limit("borrower", &id, "100000000").await;
        id
    }

    /// Sends `body` with an explicit content type (imports of CSV, JSON lines).
    pub async fn send_typed(
        &self,
        user: &str,
        service: &str,
        path: &str,
        content_type: &str,
        body: &str,
    ) -> Reply {
        let token = self.token(user, service);
        let response = self
            .client
            .post(self.url(service, path))
            .bearer_auth(token)
            .header("content-type", content_type)
            .body(body.to_owned())
            .send()
            .await
            .expect("request sent");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.expect("body");
        Reply {
            status,
            headers,
            body: serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned())),
        }
    }

    /// Creates a borrower and a draft case as `lo-1`; returns the case JSON.
    pub async fn draft_case(&self, amount: &str) -> Value {
        let borrower_id = self
            .borrower_with_limit(
                "lo-1",
                json!({"name": "Muster GmbH", "country": "DE", "sector": "C25"}),
            )
            .await;
        let case = self
            .call(
                "lo-1",
                "market",
                Method::POST,
                "/v1/cases",
                Some(json!({"borrower_id": borrower_id, "amount": amount, "currency": "EUR", "product": "term_loan", "term_months": 60, "purpose": "new machinery"})),
            )
            .await;
        case.ok(201).clone()
    }

    /// The audit events of a case, as the internal auditor sees them.
    pub async fn case_events(&self, case_id: &str) -> Vec<Value> {
        let reply = self
            .call(
                "ia-1",
                "audit",
                Method::GET,
                &format!("/v1/events?case_id={case_id}&limit=1000"),
                None,
            )
            .await;
        reply.ok(200)["items"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    pub async fn stop(mut self) {
        if let Some(platform) = self.platform.take() {
            platform.shutdown().await;
        }
        if let Some(db) = self.pg.take() {
            drop(self.store);
            db.drop_database().await;
        }
    }
}

/// Defines one `#[tokio::test]` per backend running `$body(platform)`.
#[macro_export]
macro_rules! both_backends {
    ($name:ident, $body:path) => {
        mod $name {
            use super::*;
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn sqlite() {
                let platform = $crate::TestPlatform::start($crate::Backend::Sqlite)
                    .await
                    .expect("sqlite");
                $body(&platform).await;
                platform.stop().await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn postgres() {
                let Some(platform) = $crate::TestPlatform::start($crate::Backend::Postgres).await
                else {
                    return;
                };
                $body(&platform).await;
                platform.stop().await;
            }
        }
    };
}

/// A small seeded pseudo-random generator (SplitMix64) for randomized tests
/// that must replay exactly: the same seed gives the same choices.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// True with a probability of `percent` %.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.next_u64() % 100 < percent
    }

    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }
}

/// The seed in the environment variable `var`, else a fresh one from the clock.
pub fn seed_from_env(var: &str) -> u64 {
    std::env::var(var)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
        })
}

/// A count from the environment variable `var` (a long version of a
/// suite), else `default`.
pub fn count_from_env(var: &str, default: usize) -> usize {
    std::env::var(var)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

/// An export archive (`POST /v1/exports`, the console's download) unpacked
/// into a new temporary directory: the directory (gone when dropped) and
/// the bundle's directory inside it.
pub fn unpack_export(archive: &[u8]) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    tar::Archive::new(archive)
        .unpack(dir.path())
        .expect("a tar archive");
    let bundle = std::fs::read_dir(dir.path())
        .expect("unpacked")
        .next()
        .expect("one directory")
        .expect("entry")
        .path();
    (dir, bundle)
}

/// Asserts that the published `audit/verify.py` accepts the bundle in
/// `bundle` with the verifier key `key`.
pub fn assert_verify_py_accepts(bundle: &std::path::Path, key: &str) {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../audit/verify.py");
    let python = std::process::Command::new("python3")
        .arg(&script)
        .arg(bundle)
        .arg("--key")
        .arg(key)
        .output()
        .expect("python3");
    assert!(
        python.status.success(),
        "{}{}",
        String::from_utf8_lossy(&python.stdout),
        String::from_utf8_lossy(&python.stderr)
    );
}
