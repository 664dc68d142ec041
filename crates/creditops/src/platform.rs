//! Composition: one store, one token verifier per service audience, one
//! casbin policy per service, one listener per service.

use chrono::Utc;
use creditops_audit::{AuditAction, AuditRecord, Outcome};
use creditops_auth::{Authorizer, TokenVerifier, service_audience};
use creditops_domain::{Permission, RuleId, RuleSet, Side, SodMatrix};
use creditops_http::ServiceContext;
use creditops_http::keys::{KeyRules, RemoteKeys, TokenKeys};
use creditops_store::{Store, StoreError, StoreExt, append_record};
use creditops_store_postgres::PgStore;
use creditops_store_sqlite::SqliteStore;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub const ALL_SERVICES: [&str; 5] = ["market", "backoffice", "risk", "audit", "admin"];

#[derive(Debug, thiserror::Error)]
pub enum PlatformError {
    #[error("could not open the database: {0}")]
    Store(#[source] StoreError),
    #[error(
        "unsupported database URL {0:?}: use postgres://... (or leave it unset for the embedded SQLite database)"
    )]
    DatabaseUrl(String),
    #[error("identity configuration: {0}")]
    Identity(String),
    #[error("policy of the {service} service: {detail}")]
    Policy { service: String, detail: String },
    #[error("could not listen on {addr} for the {service} service: {source}")]
    Bind {
        service: String,
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("unknown service {0:?}; known: market, backoffice, risk, audit, admin")]
    UnknownService(String),
    #[error("segregation of duties: {0}")]
    Sod(String),
    /// Stored sectors or countries that are not codes of the built-in lists
    /// (free text from before the controlled vocabularies), listed.
    #[error(
        "the database holds sectors or countries that are not codes of the built-in lists \
         (NACE Rev. 2 sections and divisions, ISO 3166-1 alpha-2); sector and country \
         limits cannot be applied to them, so nothing starts until these rows hold codes \
         (see docs/operations.md, \"Controlled vocabularies\"):\n{0}"
    )]
    Unclassified(String),
}

/// Where tokens come from: the JWKS of the bank's identity provider (or the
/// dev provider) and the issuer it signs as.
#[derive(Clone)]
pub struct Identity {
    /// The identity provider's key set.
    pub jwks: JwksSource,
    pub issuer: String,
    /// Tokens valid for longer are refused (hardening: a leaked long-lived
    /// token must not work for years).
    pub max_token_lifetime: std::time::Duration,
}

/// Where the identity provider's key set comes from.
#[derive(Debug, Clone)]
pub enum JwksSource {
    /// A document read at start (pinned until the next start).
    Document(String),
    /// An https address: fetched at start, fetched again when a token names
    /// a key it does not hold (a rotation), at most once a minute.
    Url(String),
}

pub struct PlatformConfig {
    pub store: Arc<dyn Store>,
    /// A service listed here uses its own store instead of `store`, e.g. a
    /// pool connected as that service's least-privilege database role.
    pub service_stores: BTreeMap<String, Arc<dyn Store>>,
    pub identity: Identity,
    /// Read `<dir>/<service>/{model.conf,policy.csv}` instead of the policies
    /// built into the binary.
    pub policy_dir: Option<PathBuf>,
    pub audit_origin: String,
    /// Signs audit checkpoints; without it the checkpoint routes answer 503.
    pub audit_key: Option<Arc<creditops_audit::SigningKey>>,
    /// Verifier keys of earlier signing keys (rotation), published and exported.
    pub audit_retired_keys: Vec<creditops_audit::VerifierKey>,
    /// The services to run and where.
    pub listeners: Vec<(String, SocketAddr)>,
    /// How often the risk service's watcher expires reservations and
    /// re-evaluates every limit (R5, R7); `None` runs no periodic watcher
    /// (changes are still evaluated as they happen).
    pub risk_watch_interval: Option<std::time::Duration>,
    /// How often the audit sequencer links committed events (PostgreSQL).
    pub audit_sequencer_interval: std::time::Duration,
    /// Body size and time bounds of every request.
    pub limits: creditops_http::RequestLimits,
    /// Serve each service's web console desk with the development login
    /// (a staff id, no password; issue 19). Off, no console is mounted.
    pub dev_console: bool,
    /// Outside dev mode: the services whose console signs in through the
    /// bank's identity provider, with their client there. A service not
    /// named serves no console.
    pub console_sign_on: BTreeMap<String, creditops_console::oidc::OidcConfig>,
}

/// How `service` serves its console: the development login, single
/// sign-on through the bank's identity provider, or none.
fn console_settings(
    config: &PlatformConfig,
    service: &str,
) -> Result<Option<creditops_console::ConsoleSettings>, PlatformError> {
    if config.dev_console {
        return Ok(creditops_console::ConsoleSettings::dev(service));
    }
    let Some(client) = config.console_sign_on.get(service) else {
        return Ok(None);
    };
    // Cookies are `Secure` when the desk is reached over TLS.
    let secure = client
        .redirect_uri
        .as_deref()
        .is_some_and(|uri| uri.starts_with("https://"));
    let client = creditops_console::oidc::OidcClient::new(client.clone())
        .map_err(|e| PlatformError::Identity(format!("console sign-on of {service}: {e}")))?;
    Ok(creditops_console::ConsoleSettings::single_sign_on(
        service, client, secure,
    ))
}

pub struct RunningPlatform {
    pub addrs: BTreeMap<String, SocketAddr>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<std::io::Result<()>>>,
    watchers: Vec<JoinHandle<()>>,
    sequencer: Option<JoinHandle<()>>,
    risk: Option<Arc<ServiceContext>>,
    contexts: Vec<Arc<ServiceContext>>,
    /// The services that serve a console desk.
    consoles: Vec<String>,
}

impl RunningPlatform {
    /// The web console login pages mounted, by service.
    pub fn console_logins(&self) -> Vec<(String, String)> {
        self.consoles
            .iter()
            .filter_map(|service| {
                self.url(service).map(|url| {
                    (
                        service.clone(),
                        format!("{url}{}", creditops_console::LOGIN_PATH),
                    )
                })
            })
            .collect()
    }

    pub fn url(&self, service: &str) -> Option<String> {
        self.addrs.get(service).map(|a| format!("http://{a}"))
    }

    /// Stops accepting, lets in-flight requests finish, then returns.
    /// Runs one round of the risk watcher as of `at` (e.g. after reservations
    /// expired); `None` when the risk service is not running here.
    pub async fn risk_watch_round(
        &self,
        at: creditops_domain::Timestamp,
    ) -> Option<Result<creditops_svc_risk::watcher::Round, creditops_http::ApiError>> {
        let ctx = self.risk.as_ref()?;
        Some(creditops_svc_risk::watcher::run_round(ctx, at).await)
    }

    /// Writes every service's tally of unauthenticated refusals so far,
    /// the running minute's included, to the audit trail.
    pub async fn flush_unauthenticated(&self) -> Result<(), creditops_http::ApiError> {
        for ctx in &self.contexts {
            creditops_http::abuse::flush_unauthenticated(ctx, Utc::now(), true).await?;
        }
        Ok(())
    }

    pub async fn shutdown(mut self) {
        for watcher in &self.watchers {
            watcher.abort();
        }
        let _ = self.shutdown.send(true);
        for task in std::mem::take(&mut self.tasks) {
            let _ = task.await;
        }
        if let Err(e) = self.flush_unauthenticated().await {
            tracing::error!(error = %e, "could not write the last tally of unauthenticated refusals");
        }
        // After the listeners: the requests that finished are linked too.
        if let Some(sequencer) = self.sequencer {
            let _ = sequencer.await;
        }
    }
}

/// Opens the embedded SQLite database under `data_dir`, or PostgreSQL when a
/// `postgres://` URL is given, and applies the migrations.
pub async fn open_store(
    database_url: Option<&str>,
    data_dir: &Path,
    audit_origin: &str,
) -> Result<Arc<dyn Store>, PlatformError> {
    open_store_with_pool(
        database_url,
        data_dir,
        audit_origin,
        DEFAULT_MAX_CONNECTIONS,
    )
    .await
}

/// The default bound of a PostgreSQL connection pool.
pub const DEFAULT_MAX_CONNECTIONS: u32 = 16;

/// [`open_store`] with at most `max_connections` PostgreSQL connections.
pub async fn open_store_with_pool(
    database_url: Option<&str>,
    data_dir: &Path,
    audit_origin: &str,
    max_connections: u32,
) -> Result<Arc<dyn Store>, PlatformError> {
    match database_url {
        Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
            let store = PgStore::connect(url, audit_origin, max_connections)
                .await
                .map_err(PlatformError::Store)?;
            Ok(Arc::new(store))
        }
        Some(url) => Err(PlatformError::DatabaseUrl(redact(url))),
        None => {
            create_private_dir(data_dir)
                .map_err(|e| PlatformError::Store(StoreError::Unavailable(Box::new(e))))?;
            let store = SqliteStore::open(&data_dir.join("creditops.db"), audit_origin)
                .await
                .map_err(PlatformError::Store)?;
            Ok(Arc::new(store))
        }
    }
}

/// Creates the data directory (and its parents) accessible to its owner
/// only (0700), and takes group and other access away from an existing one:
/// it holds the database and the keys (hardening finding 11).
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        builder.mode(0o700);
        builder.create(dir)?;
        let meta = std::fs::metadata(dir)?;
        if meta.permissions().mode() & 0o077 != 0 {
            tracing::warn!(dir = %dir.display(), "data directory was open to others; now 0700");
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
        }
        Ok(())
    }
    #[cfg(not(unix))]
    builder.create(dir)
}

/// Never print credentials that may sit in a URL: the user information,
/// and the query (which may carry `password=`), are replaced by `***`.
pub fn redact(url: &str) -> String {
    let (url, query) = match url.split_once('?') {
        Some((base, _)) => (base, "?***"),
        None => (url, ""),
    };
    let base = redact_user(url);
    format!("{base}{query}")
}

fn redact_user(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            format!("{}://***{}", &url[..scheme_end], &url[at..])
        }
        _ => url.to_owned(),
    }
}

macro_rules! builtin_policy {
    ($service:literal) => {
        (
            include_str!(concat!("../../../policies/", $service, "/model.conf")),
            include_str!(concat!("../../../policies/", $service, "/policy.csv")),
        )
    };
}

fn builtin_policy(service: &str) -> Option<(&'static str, &'static str)> {
    Some(match service {
        "market" => builtin_policy!("market"),
        "backoffice" => builtin_policy!("backoffice"),
        "risk" => builtin_policy!("risk"),
        "audit" => builtin_policy!("audit"),
        "admin" => builtin_policy!("admin"),
        _ => return None,
    })
}

const BUILTIN_SOD: &str = include_str!("../../../policies/sod.toml");

/// The side whose people work in a service (S1).
fn side_of_service(service: &str) -> Result<Side, PlatformError> {
    Ok(match service {
        "market" => Side::Market,
        "backoffice" => Side::Backoffice,
        "risk" => Side::Risk,
        "audit" => Side::Audit,
        "admin" => Side::Admin,
        other => return Err(PlatformError::UnknownService(other.to_owned())),
    })
}

/// Loads the SoD matrix (from the policy dir, else the built-in one).
pub fn load_sod(policy_dir: Option<&Path>) -> Result<(SodMatrix, String), PlatformError> {
    let text = match policy_dir {
        Some(dir) => std::fs::read_to_string(dir.join("sod.toml")).map_err(|e| {
            PlatformError::Sod(format!(
                "cannot read {}: {e}",
                dir.join("sod.toml").display()
            ))
        })?,
        None => BUILTIN_SOD.to_owned(),
    };
    let matrix: SodMatrix =
        toml::from_str(&text).map_err(|e| PlatformError::Sod(format!("sod.toml: {e}")))?;
    matrix
        .validate()
        .map_err(|e| PlatformError::Sod(format!("sod.toml: {e}")))?;
    Ok((matrix, text))
}

/// Every service's authorizer, the SoD matrix checked against all of them
/// (a policy that breaks the matrix refuses to start), and one hash over all
/// policies and the matrix, recorded in each decision (V9).
pub struct Policies {
    pub authorizers: BTreeMap<&'static str, Arc<Authorizer>>,
    pub sod: Arc<SodMatrix>,
    pub hash: String,
    /// SHA-256 of the SoD matrix file alone.
    pub sod_hash: String,
}

pub async fn load_policies(policy_dir: Option<&Path>) -> Result<Policies, PlatformError> {
    let (sod, sod_text) = load_sod(policy_dir)?;
    let mut authorizers = BTreeMap::new();
    let mut per_side = Vec::new();
    let mut digest = ring::digest::Context::new(&ring::digest::SHA256);
    for service in ALL_SERVICES {
        let authorizer = authorizer_for(service, policy_dir).await?;
        let side = side_of_service(service)?;
        let permissions: Vec<Permission> = authorizer
            .permissions()
            .into_iter()
            .map(|(role, route, method)| Permission {
                role,
                route,
                method,
            })
            .collect();
        sod.check_policy(side, &permissions)
            .map_err(|detail| PlatformError::Policy {
                service: service.to_owned(),
                detail,
            })?;
        digest.update(format!("{service} {}\n", authorizer.policy_hash()).as_bytes());
        per_side.push((side, permissions));
        authorizers.insert(service, Arc::new(authorizer));
    }
    sod.check_sides_apart(&per_side)
        .map_err(PlatformError::Sod)?;
    digest.update(b"sod ");
    digest.update(sod_text.as_bytes());
    Ok(Policies {
        authorizers,
        sod: Arc::new(sod),
        hash: hex::encode(digest.finish().as_ref()),
        sod_hash: hex::encode(ring::digest::digest(
            &ring::digest::SHA256,
            sod_text.as_bytes(),
        )),
    })
}

/// Records that this process starts serving, with what it enforces: the
/// policy and SoD hashes, the rule-set version in force and the configuration
/// without secrets (A1). Fail-closed: a start that cannot be audited does not
/// happen.
async fn record_start(config: &PlatformConfig, policies: &Policies) -> Result<(), PlatformError> {
    let now = Utc::now();
    let mut tx = config.store.begin().await.map_err(PlatformError::Store)?;
    let rules = tx.rule_sets().await.map_err(PlatformError::Store)?;
    let rules_version = creditops_domain::rules::in_force(&rules, now).map(|r| r.version);
    let services: Vec<&str> = config.listeners.iter().map(|(s, _)| s.as_str()).collect();
    let mut record = AuditRecord::new("platform", AuditAction::PlatformStarted, Outcome::Ok, now);
    record.data = serde_json::json!({
        "version": env!("CARGO_PKG_VERSION"),
        "services": services,
        "backend": config.store.backend(),
        "policy_hash": policies.hash,
        "sod_hash": policies.sod_hash,
        "policies": if config.policy_dir.is_some() { "policy-dir" } else { "built-in" },
        "rules_version": rules_version,
        "audit_origin": config.audit_origin,
        "checkpoint_signing": config.audit_key.is_some(),
        "issuer": config.identity.issuer,
        "max_token_lifetime_seconds": config.identity.max_token_lifetime.as_secs(),
        "body_limit_bytes": config.limits.body_bytes,
        "document_limit_bytes": config.limits.document_bytes,
        "request_timeout_ms": u64::try_from(config.limits.timeout.as_millis()).unwrap_or(u64::MAX),
        "auth_failures_per_minute": config.limits.auth_failures_per_minute,
    });
    append_record(tx.as_mut(), &record)
        .await
        .map_err(PlatformError::Store)?;
    tx.commit().await.map_err(PlatformError::Store)
}

/// Refuses a database that holds a sector or country outside the built-in
/// lists (hardening finding 1): no mapping is guessed, the rows to correct
/// are listed instead.
pub async fn check_classifications(store: &dyn Store) -> Result<(), PlatformError> {
    let mut tx = store.begin_read().await.map_err(PlatformError::Store)?;
    let found = tx
        .unclassified_values()
        .await
        .map_err(PlatformError::Store)?;
    if found.is_empty() {
        return Ok(());
    }
    let lines: Vec<String> = found
        .iter()
        .map(|value| {
            let more = value.rows - i64::try_from(value.ids.len()).unwrap_or(value.rows);
            let more = if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            };
            format!(
                "  {} {:?} is not a {} code, {} row(s): {}{more}",
                value.column,
                value.value,
                value.vocabulary,
                value.rows,
                value.ids.join(", ")
            )
        })
        .collect();
    Err(PlatformError::Unclassified(lines.join("\n")))
}

/// Stores rule-set version 1 (the defaults) when the database has none, so a
/// fresh installation can evaluate votes; later versions come four-eyes (S9).
pub async fn ensure_rules(store: &dyn Store) -> Result<(), PlatformError> {
    let mut tx = store.begin().await.map_err(PlatformError::Store)?;
    if tx
        .rule_sets()
        .await
        .map_err(PlatformError::Store)?
        .is_empty()
    {
        let rules = RuleSet::initial();
        // The owner's bootstrap: no proposal (the database binds only the
        // service roles to one).
        match tx.insert_rule_set(&rules, None).await {
            // Another instance starting at the same time stored it first.
            Err(StoreError::Conflict(_)) => return Ok(()),
            other => other.map_err(PlatformError::Store)?,
        }
        let mut record = AuditRecord::new(
            "platform",
            AuditAction::RulesInitialised,
            Outcome::Ok,
            Utc::now(),
        );
        record.rule = Some(RuleId::S9);
        record.data = serde_json::json!({"rules_version": rules.version});
        append_record(tx.as_mut(), &record)
            .await
            .map_err(PlatformError::Store)?;
        tx.commit().await.map_err(PlatformError::Store)?;
    }
    Ok(())
}

async fn authorizer_for(
    service: &str,
    policy_dir: Option<&Path>,
) -> Result<Authorizer, PlatformError> {
    let policy_error = |detail: String| PlatformError::Policy {
        service: service.to_owned(),
        detail,
    };
    match policy_dir {
        Some(dir) => Authorizer::load(&dir.join(service))
            .await
            .map_err(|e| policy_error(e.to_string())),
        None => {
            let (model, policy) = builtin_policy(service)
                .ok_or_else(|| PlatformError::UnknownService(service.to_owned()))?;
            Authorizer::from_text(model, policy)
                .await
                .map_err(|e| policy_error(e.to_string()))
        }
    }
}

fn router_for(
    service: &str,
    ctx: Arc<ServiceContext>,
    origin: &str,
    audit_key: Option<Arc<creditops_audit::SigningKey>>,
    retired_keys: &[creditops_audit::VerifierKey],
) -> Result<axum::Router, PlatformError> {
    Ok(match service {
        "market" => creditops_svc_market::router(ctx),
        "backoffice" => creditops_svc_backoffice::router(ctx),
        "risk" => creditops_svc_risk::router(ctx),
        "audit" => creditops_svc_audit::router(
            ctx,
            creditops_svc_audit::AuditSettings {
                origin: origin.to_owned(),
                signing_key: audit_key,
                retired_keys: retired_keys.to_vec(),
            },
        ),
        "admin" => creditops_svc_admin::router(ctx),
        other => return Err(PlatformError::UnknownService(other.to_owned())),
    })
}

fn static_service_name(service: &str) -> Result<&'static str, PlatformError> {
    ALL_SERVICES
        .into_iter()
        .find(|s| *s == service)
        .ok_or_else(|| PlatformError::UnknownService(service.to_owned()))
}

/// The context one service's handlers share: its token verifier (its own
/// audience), authorizer, store (its own role's, where configured) and
/// metrics.
async fn service_context(
    name: &'static str,
    config: &PlatformConfig,
    policies: &Policies,
    stopping: &watch::Receiver<bool>,
) -> Result<Arc<ServiceContext>, PlatformError> {
    let identity = &config.identity;
    let verifier = match &identity.jwks {
        JwksSource::Document(jwks_json) => TokenKeys::Pinned(
            TokenVerifier::from_jwks(jwks_json, &identity.issuer, &service_audience(name))
                .and_then(|verifier| verifier.with_max_lifetime(identity.max_token_lifetime))
                .map_err(|e| PlatformError::Identity(e.to_string()))?,
        ),
        JwksSource::Url(url) => TokenKeys::Remote(
            RemoteKeys::fetch(
                url,
                KeyRules {
                    issuer: identity.issuer.clone(),
                    audience: service_audience(name),
                    max_lifetime: identity.max_token_lifetime,
                },
            )
            .await
            .map_err(|e| PlatformError::Identity(format!("--jwks {e}")))?,
        ),
    };
    let authorizer = policies
        .authorizers
        .get(name)
        .cloned()
        .ok_or_else(|| PlatformError::UnknownService(name.to_owned()))?;
    let store = config
        .service_stores
        .get(name)
        .unwrap_or(&config.store)
        .clone();
    Ok(Arc::new(ServiceContext {
        service: name,
        store,
        verifier: Arc::new(verifier),
        authorizer,
        policy_hash: policies.hash.clone(),
        sod: policies.sod.clone(),
        metrics: Arc::new(creditops_http::metrics::Metrics::new(name)),
        limits: config.limits,
        unauthenticated: Arc::new(creditops_http::abuse::Unauthenticated::new(
            config.limits.auth_failures_per_minute,
        )),
        streams: Arc::new(creditops_http::streams::StreamSlots::default()),
        stopping: stopping.clone(),
    }))
}

/// Binds a service's listener; returns it with the address it got (port 0
/// picks a free one).
async fn bind(service: &str, addr: SocketAddr) -> Result<(TcpListener, SocketAddr), PlatformError> {
    let bind_error = |source| PlatformError::Bind {
        service: service.to_owned(),
        addr,
        source,
    };
    let listener = TcpListener::bind(addr).await.map_err(bind_error)?;
    let local = listener.local_addr().map_err(bind_error)?;
    Ok((listener, local))
}

/// Serves `router` on `listener` until `stop` turns true, then lets the
/// requests in flight finish.
fn spawn_server(
    listener: TcpListener,
    router: axum::Router,
    mut stop: watch::Receiver<bool>,
) -> JoinHandle<std::io::Result<()>> {
    tokio::spawn(async move {
        // The peer address feeds the per-address limit on failed logins.
        let service = router.into_make_service_with_connect_info::<SocketAddr>();
        axum::serve(listener, service)
            .with_graceful_shutdown(async move {
                let _ = stop.wait_for(|stop| *stop).await;
            })
            .await
    })
}

/// Binds every configured service and serves until [`RunningPlatform::shutdown`].
pub async fn start(config: PlatformConfig) -> Result<RunningPlatform, PlatformError> {
    let policies = load_policies(config.policy_dir.as_deref()).await?;
    check_classifications(config.store.as_ref()).await?;
    ensure_rules(config.store.as_ref()).await?;
    record_start(&config, &policies).await?;
    let (shutdown, shutdown_rx) = watch::channel(false);
    let mut addrs = BTreeMap::new();
    let mut consoles = Vec::new();
    let mut tasks = Vec::new();
    let mut watchers = Vec::new();
    let mut risk = None;
    let mut contexts = Vec::new();
    // The audit service links and signs the chain (its database role is the
    // one allowed to); a process without it leaves that to the one with it.
    let mut sequencer_store = None;
    for (service, addr) in &config.listeners {
        let name = static_service_name(service)?;
        let ctx = service_context(name, &config, &policies, &shutdown_rx).await?;
        watchers.push(spawn_tally_writer(ctx.clone()));
        contexts.push(ctx.clone());
        if name == "audit" {
            sequencer_store = Some(ctx.store.clone());
        }
        if name == "risk" {
            if let Some(interval) = config.risk_watch_interval {
                watchers.push(creditops_svc_risk::watcher::spawn(ctx.clone(), interval));
            }
            risk = Some(ctx.clone());
        }
        let console = console_settings(&config, name)?
            .map(|settings| {
                settings.with_audit_keys(creditops_console::AuditKeys {
                    origin: config.audit_origin.clone(),
                    signing_key: config.audit_key.clone(),
                    retired_keys: config.audit_retired_keys.clone(),
                })
            })
            .map(|settings| creditops_console::router(ctx.clone(), settings));
        let mut router = router_for(
            name,
            ctx,
            &config.audit_origin,
            config.audit_key.clone(),
            &config.audit_retired_keys,
        )?;
        if let Some(console) = console {
            router = router.merge(console);
            consoles.push(name.to_owned());
        }
        let (listener, local) = bind(name, *addr).await?;
        tracing::info!(service = name, addr = %local, "listening");
        addrs.insert(name.to_owned(), local);
        tasks.push(spawn_server(listener, router, shutdown_rx.clone()));
    }
    let sequencer = sequencer_store
        .filter(|store| store.audit_sequenced_separately())
        .map(|store| {
            crate::sequencer::spawn(
                store,
                config.audit_key.clone(),
                config.audit_sequencer_interval,
                shutdown_rx.clone(),
            )
        });
    Ok(RunningPlatform {
        addrs,
        consoles,
        shutdown,
        tasks,
        watchers,
        sequencer,
        risk,
        contexts,
    })
}

/// Writes each finished minute's tally of unauthenticated refusals (a few
/// seconds after the minute ends); a failed write is kept and tried again.
fn spawn_tally_writer(ctx: Arc<ServiceContext>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(std::time::Duration::from_secs(10));
        loop {
            every.tick().await;
            if let Err(e) =
                creditops_http::abuse::flush_unauthenticated(&ctx, Utc::now(), false).await
            {
                tracing::error!(error = %e, "could not write a tally of unauthenticated refusals");
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_urls_are_redacted() {
        assert_eq!(
            redact("mysql://user:secret@db:3306/x"),
            "mysql://***@db:3306/x"
        );
        assert_eq!(redact("nonsense"), "nonsense");
        assert_eq!(
            redact("postgres://db/x?user=a&password=secret"),
            "postgres://db/x?***"
        );
    }
}
