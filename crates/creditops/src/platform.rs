//! Composition: one store, one token verifier per service audience, one
//! casbin policy per service, one listener per service.

use creditops_auth::{Authorizer, TokenVerifier, service_audience};
use creditops_http::ServiceContext;
use creditops_store::{Store, StoreError};
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
}

/// Where tokens come from: the JWKS of the bank's identity provider (or the
/// dev provider) and the issuer it signs as.
#[derive(Clone)]
pub struct Identity {
    pub jwks_json: String,
    pub issuer: String,
}

pub struct PlatformConfig {
    pub store: Arc<dyn Store>,
    pub identity: Identity,
    /// Read `<dir>/<service>/{model.conf,policy.csv}` instead of the policies
    /// built into the binary.
    pub policy_dir: Option<PathBuf>,
    pub audit_origin: String,
    /// The services to run and where.
    pub listeners: Vec<(String, SocketAddr)>,
}

pub struct RunningPlatform {
    pub addrs: BTreeMap<String, SocketAddr>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<std::io::Result<()>>>,
}

impl RunningPlatform {
    pub fn url(&self, service: &str) -> Option<String> {
        self.addrs.get(service).map(|a| format!("http://{a}"))
    }

    /// Stops accepting, lets in-flight requests finish, then returns.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        for task in self.tasks {
            let _ = task.await;
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
    match database_url {
        Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
            let store = PgStore::connect(url, audit_origin, 16)
                .await
                .map_err(PlatformError::Store)?;
            Ok(Arc::new(store))
        }
        Some(url) => Err(PlatformError::DatabaseUrl(redact(url))),
        None => {
            std::fs::create_dir_all(data_dir)
                .map_err(|e| PlatformError::Store(StoreError::Unavailable(Box::new(e))))?;
            let store = SqliteStore::open(&data_dir.join("creditops.db"), audit_origin)
                .await
                .map_err(PlatformError::Store)?;
            Ok(Arc::new(store))
        }
    }
}

/// Never print credentials that may sit in a URL.
fn redact(url: &str) -> String {
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
) -> Result<axum::Router, PlatformError> {
    Ok(match service {
        "market" => creditops_svc_market::router(ctx),
        "backoffice" => creditops_svc_backoffice::router(ctx),
        "risk" => creditops_svc_risk::router(ctx),
        "audit" => creditops_svc_audit::router(
            ctx,
            creditops_svc_audit::AuditSettings {
                origin: origin.to_owned(),
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

/// Binds every configured service and serves until [`RunningPlatform::shutdown`].
pub async fn start(config: PlatformConfig) -> Result<RunningPlatform, PlatformError> {
    let (shutdown, shutdown_rx) = watch::channel(false);
    let mut addrs = BTreeMap::new();
    let mut tasks = Vec::new();
    for (service, addr) in &config.listeners {
        let name = static_service_name(service)?;
        let verifier = TokenVerifier::from_jwks(
            &config.identity.jwks_json,
            &config.identity.issuer,
            &service_audience(name),
        )
        .map_err(|e| PlatformError::Identity(e.to_string()))?;
        let authorizer = authorizer_for(name, config.policy_dir.as_deref()).await?;
        let ctx = Arc::new(ServiceContext {
            service: name,
            store: config.store.clone(),
            verifier: Arc::new(verifier),
            authorizer: Arc::new(authorizer),
        });
        let router = router_for(name, ctx, &config.audit_origin)?;
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| PlatformError::Bind {
                service: name.to_owned(),
                addr: *addr,
                source,
            })?;
        let local = listener
            .local_addr()
            .map_err(|source| PlatformError::Bind {
                service: name.to_owned(),
                addr: *addr,
                source,
            })?;
        tracing::info!(service = name, addr = %local, "listening");
        addrs.insert(name.to_owned(), local);
        let mut rx = shutdown_rx.clone();
        tasks.push(tokio::spawn(async move {
            axum::serve(listener, router)
                .with_graceful_shutdown(async move {
                    let _ = rx.wait_for(|stop| *stop).await;
                })
                .await
        }));
    }
    Ok(RunningPlatform {
        addrs,
        shutdown,
        tasks,
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
    }
}
