//! The command line of `creditops`: its commands and their options, with
//! the environment variables each option also reads. What each command does
//! is in `main.rs`.

use clap::{Args, Parser, Subcommand};
use creditops::DEFAULT_AUDIT_ORIGIN;
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "creditops",
    version,
    about = "Bank-grade credit operations: four-eyes decisions, segregated services, verifiable audit trail"
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Subcommand)]
pub(crate) enum Command {
    /// Run the services (each on its own listener).
    Serve(Box<ServeArgs>),
    /// Apply the database migrations (and the default rule set on a fresh
    /// database) and exit. Run as the schema's owner.
    Migrate(DbArgs),
    /// Database administration (PostgreSQL).
    Db {
        #[command(subcommand)]
        command: DbCommand,
    },
    /// Print a token from the dev identity provider (dev mode only).
    Token(TokenArgs),
    /// Staff directory administration.
    Staff {
        #[command(subcommand)]
        command: StaffCommand,
    },
    /// Audit trail tools.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
}

#[derive(Args, Clone)]
pub(crate) struct DbArgs {
    /// Directory for the embedded database and dev keys.
    #[arg(long, env = "CREDITOPS_DATA_DIR", default_value = "./data")]
    pub(crate) data_dir: PathBuf,
    /// PostgreSQL URL (postgres://...); without it the embedded SQLite database is used.
    #[arg(long, env = "CREDITOPS_DATABASE_URL", hide_env_values = true)]
    pub(crate) database_url: Option<String>,
    /// Origin line of the audit log (the chain's genesis input).
    #[arg(long, env = "CREDITOPS_AUDIT_ORIGIN", default_value = DEFAULT_AUDIT_ORIGIN)]
    pub(crate) audit_origin: String,
    /// Upper bound of the PostgreSQL connection pool (per process).
    #[arg(
        long,
        env = "CREDITOPS_DB_MAX_CONNECTIONS",
        default_value_t = creditops::platform::DEFAULT_MAX_CONNECTIONS,
        value_parser = clap::value_parser!(u32).range(1..=1000)
    )]
    pub(crate) db_max_connections: u32,
}

#[derive(Args)]
pub(crate) struct ServeArgs {
    #[command(flatten)]
    pub(crate) db: DbArgs,
    /// Development mode: dev identity provider key in the data dir and a demo organisation.
    #[arg(long, env = "CREDITOPS_DEV")]
    pub(crate) dev: bool,
    /// The identity provider's key set (required without --dev): a JWKS
    /// file, read at start, or its https address, fetched at start and again
    /// when a token names a key it does not hold (a key rotation).
    #[arg(long, env = "CREDITOPS_JWKS")]
    pub(crate) jwks: Option<String>,
    /// Expected token issuer (required with --jwks).
    #[arg(long, env = "CREDITOPS_ISSUER")]
    pub(crate) issuer: Option<String>,
    /// The bank's identity provider for the web consoles: its OpenID Connect
    /// issuer URL (https; discovery at URL/.well-known/openid-configuration).
    #[arg(long, env = "CREDITOPS_OIDC_ISSUER")]
    pub(crate) oidc_issuer: Option<String>,
    /// A service console's client id at the provider, `SERVICE=ID`; repeat
    /// per service (comma-separated in the environment).
    #[arg(long, env = "CREDITOPS_OIDC_CLIENT_ID", value_delimiter = ',')]
    pub(crate) oidc_client_id: Vec<String>,
    /// The file holding a service console's client secret, `SERVICE=FILE`
    /// (readable by its owner only).
    #[arg(long, env = "CREDITOPS_OIDC_CLIENT_SECRET_FILE", value_delimiter = ',')]
    pub(crate) oidc_client_secret_file: Vec<String>,
    /// A service console's external address, `SERVICE=URL`: the provider
    /// sends the browser back to URL/login/callback; over https the
    /// console's cookies are `Secure` and `__Host-` prefixed.
    #[arg(long, env = "CREDITOPS_CONSOLE_URL", value_delimiter = ',')]
    pub(crate) console_url: Vec<String>,
    /// The ID token claim that holds the staff id.
    #[arg(long, env = "CREDITOPS_OIDC_STAFF_CLAIM", default_value = "sub")]
    pub(crate) oidc_staff_claim: String,
    /// Longest validity, in seconds, of a token that is accepted: `exp` minus
    /// its `nbf`/`iat`, and minus now (default 43200 = 12 h; 60 s to 7 days).
    #[arg(
        long,
        env = "CREDITOPS_MAX_TOKEN_LIFETIME",
        default_value_t = 43_200,
        value_parser = clap::value_parser!(u64).range(60..=604_800)
    )]
    pub(crate) max_token_lifetime: u64,
    /// Failed logins one client address may have per service and minute;
    /// past it the address is answered 429 until the minute is over.
    #[arg(
        long,
        env = "CREDITOPS_AUTH_FAILURES_PER_MINUTE",
        default_value_t = 60,
        value_parser = clap::value_parser!(u32).range(1..=1_000_000)
    )]
    pub(crate) auth_failures_per_minute: u32,
    /// Ed25519 key (PKCS#8 PEM) that signs audit checkpoints. With --dev it
    /// defaults to <data-dir>/audit-signing.key, created on first start.
    #[arg(long, env = "CREDITOPS_AUDIT_KEY")]
    pub(crate) audit_key: Option<PathBuf>,
    /// Verifier keys (`name+id+key`) of checkpoint signing keys used before
    /// a rotation: published beside the current key and put into exports, so
    /// checkpoints signed earlier stay verifiable. Repeat or comma-separate.
    #[arg(long, env = "CREDITOPS_AUDIT_RETIRED_KEYS", value_delimiter = ',')]
    pub(crate) audit_retired_key: Vec<creditops_audit::VerifierKey>,
    /// Read casbin policies from DIR/<service>/ instead of the built-in ones.
    #[arg(long, env = "CREDITOPS_POLICY_DIR")]
    pub(crate) policy_dir: Option<PathBuf>,
    /// Listen address of the market service (loan officers).
    #[arg(long, env = "CREDITOPS_MARKET_ADDR", default_value = "127.0.0.1:8081")]
    pub(crate) market_addr: SocketAddr,
    /// Listen address of the back-office service (credit analysts).
    #[arg(
        long,
        env = "CREDITOPS_BACKOFFICE_ADDR",
        default_value = "127.0.0.1:8082"
    )]
    pub(crate) backoffice_addr: SocketAddr,
    /// Listen address of the risk-control service.
    #[arg(long, env = "CREDITOPS_RISK_ADDR", default_value = "127.0.0.1:8083")]
    pub(crate) risk_addr: SocketAddr,
    /// Listen address of the audit service (internal audit, exports).
    #[arg(long, env = "CREDITOPS_AUDIT_ADDR", default_value = "127.0.0.1:8084")]
    pub(crate) audit_addr: SocketAddr,
    /// Listen address of the admin service (staff, roles, rule sets).
    #[arg(long, env = "CREDITOPS_ADMIN_ADDR", default_value = "127.0.0.1:8085")]
    pub(crate) admin_addr: SocketAddr,
    /// Request bodies above this many bytes are refused with 413.
    #[arg(
        long,
        env = "CREDITOPS_BODY_LIMIT_BYTES",
        default_value_t = 65_536,
        value_parser = clap::value_parser!(u64).range(1_024..=67_108_864)
    )]
    pub(crate) body_limit_bytes: u64,
    /// Documents of the credit file above this many bytes are refused with
    /// 413 (L2; default 10 MiB).
    #[arg(
        long,
        env = "CREDITOPS_DOCUMENT_LIMIT_BYTES",
        default_value_t = 10_485_760,
        value_parser = clap::value_parser!(u64).range(1_024..=268_435_456)
    )]
    pub(crate) document_limit_bytes: u64,
    /// A request not answered within this many milliseconds is abandoned
    /// (its transaction rolls back) and answered 503.
    #[arg(
        long,
        env = "CREDITOPS_REQUEST_TIMEOUT_MS",
        default_value_t = 30_000,
        value_parser = clap::value_parser!(u64).range(100..=600_000)
    )]
    pub(crate) request_timeout_ms: u64,
    /// On SIGTERM or Ctrl-C: stop accepting, finish in-flight requests and
    /// link their audit events within this many seconds, else exit 1.
    #[arg(
        long,
        env = "CREDITOPS_SHUTDOWN_TIMEOUT_SECS",
        default_value_t = 30,
        value_parser = clap::value_parser!(u64).range(1..=3_600)
    )]
    pub(crate) shutdown_timeout_secs: u64,
    /// Seconds between the risk watcher's rounds: expire reservations and
    /// re-evaluate every limit (0 turns the periodic round off).
    #[arg(long, env = "CREDITOPS_RISK_WATCH_SECONDS", default_value_t = 60)]
    pub(crate) risk_watch_seconds: u64,
    /// Milliseconds between the audit sequencer's rounds on PostgreSQL
    /// (linking committed audit events into the chain; 10-10000). The
    /// sequencer runs in processes that serve the audit service.
    #[arg(
        long,
        env = "CREDITOPS_AUDIT_SEQUENCER_MS",
        default_value_t = 100,
        value_parser = clap::value_parser!(u64).range(10..=10_000)
    )]
    pub(crate) audit_sequencer_ms: u64,
    /// Comma-separated subset of services to run (production runs one per
    /// process; at least one audit process must run: it links the chain).
    #[arg(
        long,
        env = "CREDITOPS_SERVICES",
        value_delimiter = ',',
        default_value = "market,backoffice,risk,audit,admin"
    )]
    pub(crate) services: Vec<String>,
}

#[derive(Args)]
pub(crate) struct TokenArgs {
    #[arg(long, env = "CREDITOPS_DATA_DIR", default_value = "./data")]
    pub(crate) data_dir: PathBuf,
    /// Staff id the token is for (e.g. lo-1).
    #[arg(long)]
    pub(crate) user: String,
    /// Service the token is for: market, backoffice, risk, audit or admin.
    #[arg(long)]
    pub(crate) service: String,
    /// Lifetime in seconds.
    #[arg(long, default_value_t = 3600, value_parser = clap::value_parser!(i64).range(1..=43_200))]
    pub(crate) ttl_seconds: i64,
}

#[derive(Subcommand)]
pub(crate) enum DbCommand {
    /// Create (or re-grant) one least-privilege role per service: each may
    /// write only its side's tables and rows, nobody may change or delete
    /// audit rows, the audit role is read-only on business data. Idempotent;
    /// run as the schema's owner after every `migrate`. The roles get LOGIN
    /// but no password: set one with ALTER ROLE or use certificates.
    Provision {
        /// The database, connected as its owner (postgres://...).
        #[arg(long, env = "CREDITOPS_DATABASE_URL", hide_env_values = true)]
        database_url: String,
        /// Roles are named <prefix>_market, <prefix>_backoffice, <prefix>_risk,
        /// <prefix>_audit and <prefix>_admin.
        #[arg(long, env = "CREDITOPS_ROLE_PREFIX", default_value = "creditops")]
        role_prefix: String,
        /// The policy dir the services run with (its hashes are recorded);
        /// the built-in policies without it.
        #[arg(long, env = "CREDITOPS_POLICY_DIR")]
        policy_dir: Option<PathBuf>,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
pub(crate) enum StaffCommand {
    /// Import org units and staff from a JSON file (all or nothing). Into an
    /// empty directory the file is loaded directly (the bootstrap); into a
    /// populated one each new person becomes a staff_onboarding proposal of
    /// the user administrator named by --as, which a second administrator
    /// approves on the admin service (POST /v1/proposals/{id}/approve).
    Import {
        file: PathBuf,
        /// The user administrator who proposes the new people (required for
        /// a populated directory, refused for an empty one).
        #[arg(long = "as", value_name = "STAFF_ID")]
        proposer: Option<String>,
        /// Read the SoD matrix and casbin policies from DIR, as `serve` does.
        #[arg(long, env = "CREDITOPS_POLICY_DIR")]
        policy_dir: Option<PathBuf>,
        #[command(flatten)]
        db: DbArgs,
    },
}

#[derive(Subcommand)]
pub(crate) enum AuditCommand {
    /// Reconcile business rows with the audit trail: list borrowers, cases,
    /// votes and decisions whose audit event is missing; exit 1 if any.
    Reconcile {
        #[command(flatten)]
        db: DbArgs,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Recompute the whole hash chain; exit 1 and name the first bad position if broken.
    Verify {
        #[command(flatten)]
        db: DbArgs,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
        /// A checkpoint published earlier (signed note, e.g. checkpoint.txt of
        /// an export): the log must still extend it (detects truncation).
        #[arg(long, requires = "trusted_key")]
        checkpoint: Option<PathBuf>,
        /// The verifier key the checkpoint must be signed with
        /// (`name+keyid+base64`, as in keys.txt).
        #[arg(long, requires = "checkpoint")]
        trusted_key: Option<String>,
    },
    /// Write a signed, self-contained bundle of the audit log for a regulator
    /// (verify offline with `sha256sum -c SHA256SUMS` and `python3 verify.py DIR`).
    Export(ExportArgs),
    /// Verify an export bundle offline (the same checks as `audit/verify.py`);
    /// exit 1 and name the failed check and sequence number if it is bad, and
    /// exit 4 if it is intact but no trusted key vouches for it.
    VerifyExport {
        /// The unpacked bundle directory.
        dir: PathBuf,
        /// A verifier key the checkpoint must be signed with (`name+keyid+base64`,
        /// as published at GET /v1/checkpoint/key); repeatable. Without one the
        /// bundle's own keys.txt is all there is, which proves integrity but not
        /// origin (a forger writes it too): exit 4, unauthenticated.
        #[arg(long = "key")]
        keys: Vec<String>,
        /// Accept a checkpoint signed by the bundle's own keys.txt (only after
        /// comparing keys.txt with the bank's published keys by other means).
        #[arg(long, conflicts_with = "keys")]
        trust_bundle_keys: bool,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
}

// The options of `audit export` (its help text is the variant's).
#[derive(Args)]
pub(crate) struct ExportArgs {
    #[command(flatten)]
    pub(crate) db: DbArgs,
    /// Directory to write the bundle into (must not exist or be empty).
    #[arg(long)]
    pub(crate) out: PathBuf,
    /// Ed25519 signing key (PKCS#8 PEM). Default: <data-dir>/audit-signing.key,
    /// created on first use.
    #[arg(long, env = "CREDITOPS_AUDIT_KEY")]
    pub(crate) audit_key: Option<PathBuf>,
    /// Verifier keys of signing keys used before a rotation (see `serve`).
    #[arg(long, env = "CREDITOPS_AUDIT_RETIRED_KEYS", value_delimiter = ',')]
    pub(crate) audit_retired_key: Vec<creditops_audit::VerifierKey>,
    /// First sequence number to include (default 1).
    #[arg(long)]
    pub(crate) from_seq: Option<i64>,
    /// Last sequence number to include (default: the newest event).
    #[arg(long)]
    pub(crate) to_seq: Option<i64>,
    /// Export the events recorded at or after this time (RFC 3339); the
    /// bundle spans from the first to the last such event.
    #[arg(long, conflicts_with_all = ["from_seq", "to_seq"])]
    pub(crate) from: Option<chrono::DateTime<chrono::Utc>>,
    /// ... and before this time (RFC 3339).
    #[arg(long, conflicts_with_all = ["from_seq", "to_seq"])]
    pub(crate) to: Option<chrono::DateTime<chrono::Utc>>,
    /// Print the result as JSON.
    #[arg(long)]
    pub(crate) json: bool,
}
