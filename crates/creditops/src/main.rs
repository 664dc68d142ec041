//! `creditops`: serve the platform, mint dev tokens, import staff, verify the
//! audit trail. Exit codes: 0 success, 1 a check failed (e.g. the audit chain
//! is broken), 2 bad usage or configuration, 3 a runtime failure.

use clap::{Args, Parser, Subcommand};
use creditops::{DEFAULT_AUDIT_ORIGIN, Identity, PlatformConfig, demo, staff_import};
use creditops_audit::SigningKey;
use creditops_auth::DevIdentityProvider;
use creditops_domain::StaffId;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "creditops",
    version,
    about = "Bank-grade credit operations: four-eyes decisions, segregated services, verifiable audit trail"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
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
struct DbArgs {
    /// Directory for the embedded database and dev keys.
    #[arg(long, env = "CREDITOPS_DATA_DIR", default_value = "./data")]
    data_dir: PathBuf,
    /// PostgreSQL URL (postgres://...); without it the embedded SQLite database is used.
    #[arg(long, env = "CREDITOPS_DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
    /// Origin line of the audit log (the chain's genesis input).
    #[arg(long, env = "CREDITOPS_AUDIT_ORIGIN", default_value = DEFAULT_AUDIT_ORIGIN)]
    audit_origin: String,
    /// Upper bound of the PostgreSQL connection pool (per process).
    #[arg(
        long,
        env = "CREDITOPS_DB_MAX_CONNECTIONS",
        default_value_t = creditops::platform::DEFAULT_MAX_CONNECTIONS,
        value_parser = clap::value_parser!(u32).range(1..=1000)
    )]
    db_max_connections: u32,
}

#[derive(Args)]
struct ServeArgs {
    #[command(flatten)]
    db: DbArgs,
    /// Development mode: dev identity provider key in the data dir and a demo organisation.
    #[arg(long, env = "CREDITOPS_DEV")]
    dev: bool,
    /// JWKS document of the identity provider (required without --dev).
    #[arg(long, env = "CREDITOPS_JWKS")]
    jwks: Option<PathBuf>,
    /// Expected token issuer (required with --jwks).
    #[arg(long, env = "CREDITOPS_ISSUER")]
    issuer: Option<String>,
    /// Longest validity, in seconds, of a token that is accepted: `exp` minus
    /// its `nbf`/`iat`, and minus now (default 43200 = 12 h; 60 s to 7 days).
    #[arg(
        long,
        env = "CREDITOPS_MAX_TOKEN_LIFETIME",
        default_value_t = 43_200,
        value_parser = clap::value_parser!(u64).range(60..=604_800)
    )]
    max_token_lifetime: u64,
    /// Failed logins one client address may have per service and minute;
    /// past it the address is answered 429 until the minute is over.
    #[arg(
        long,
        env = "CREDITOPS_AUTH_FAILURES_PER_MINUTE",
        default_value_t = 60,
        value_parser = clap::value_parser!(u32).range(1..=1_000_000)
    )]
    auth_failures_per_minute: u32,
    /// Ed25519 key (PKCS#8 PEM) that signs audit checkpoints. With --dev it
    /// defaults to <data-dir>/audit-signing.key, created on first start.
    #[arg(long, env = "CREDITOPS_AUDIT_KEY")]
    audit_key: Option<PathBuf>,
    /// Verifier keys (`name+id+key`) of checkpoint signing keys used before
    /// a rotation: published beside the current key and put into exports, so
    /// checkpoints signed earlier stay verifiable. Repeat or comma-separate.
    #[arg(long, env = "CREDITOPS_AUDIT_RETIRED_KEYS", value_delimiter = ',')]
    audit_retired_key: Vec<creditops_audit::VerifierKey>,
    /// Read casbin policies from DIR/<service>/ instead of the built-in ones.
    #[arg(long, env = "CREDITOPS_POLICY_DIR")]
    policy_dir: Option<PathBuf>,
    /// Listen address of the market service (loan officers).
    #[arg(long, env = "CREDITOPS_MARKET_ADDR", default_value = "127.0.0.1:8081")]
    market_addr: SocketAddr,
    /// Listen address of the back-office service (credit analysts).
    #[arg(
        long,
        env = "CREDITOPS_BACKOFFICE_ADDR",
        default_value = "127.0.0.1:8082"
    )]
    backoffice_addr: SocketAddr,
    /// Listen address of the risk-control service.
    #[arg(long, env = "CREDITOPS_RISK_ADDR", default_value = "127.0.0.1:8083")]
    risk_addr: SocketAddr,
    /// Listen address of the audit service (internal audit, exports).
    #[arg(long, env = "CREDITOPS_AUDIT_ADDR", default_value = "127.0.0.1:8084")]
    audit_addr: SocketAddr,
    /// Listen address of the admin service (staff, roles, rule sets).
    #[arg(long, env = "CREDITOPS_ADMIN_ADDR", default_value = "127.0.0.1:8085")]
    admin_addr: SocketAddr,
    /// Request bodies above this many bytes are refused with 413.
    #[arg(
        long,
        env = "CREDITOPS_BODY_LIMIT_BYTES",
        default_value_t = 65_536,
        value_parser = clap::value_parser!(u64).range(1_024..=67_108_864)
    )]
    body_limit_bytes: u64,
    /// A request not answered within this many milliseconds is abandoned
    /// (its transaction rolls back) and answered 503.
    #[arg(
        long,
        env = "CREDITOPS_REQUEST_TIMEOUT_MS",
        default_value_t = 30_000,
        value_parser = clap::value_parser!(u64).range(100..=600_000)
    )]
    request_timeout_ms: u64,
    /// On SIGTERM or Ctrl-C: stop accepting, finish in-flight requests and
    /// link their audit events within this many seconds, else exit 1.
    #[arg(
        long,
        env = "CREDITOPS_SHUTDOWN_TIMEOUT_SECS",
        default_value_t = 30,
        value_parser = clap::value_parser!(u64).range(1..=3_600)
    )]
    shutdown_timeout_secs: u64,
    /// Seconds between the risk watcher's rounds: expire reservations and
    /// re-evaluate every limit (0 turns the periodic round off).
    #[arg(long, env = "CREDITOPS_RISK_WATCH_SECONDS", default_value_t = 60)]
    risk_watch_seconds: u64,
    /// Milliseconds between the audit sequencer's rounds on PostgreSQL
    /// (linking committed audit events into the chain; 10-10000). The
    /// sequencer runs in processes that serve the audit service.
    #[arg(
        long,
        env = "CREDITOPS_AUDIT_SEQUENCER_MS",
        default_value_t = 100,
        value_parser = clap::value_parser!(u64).range(10..=10_000)
    )]
    audit_sequencer_ms: u64,
    /// Comma-separated subset of services to run (production runs one per
    /// process; at least one audit process must run: it links the chain).
    #[arg(
        long,
        env = "CREDITOPS_SERVICES",
        value_delimiter = ',',
        default_value = "market,backoffice,risk,audit,admin"
    )]
    services: Vec<String>,
}

#[derive(Args)]
struct TokenArgs {
    #[arg(long, env = "CREDITOPS_DATA_DIR", default_value = "./data")]
    data_dir: PathBuf,
    /// Staff id the token is for (e.g. lo-1).
    #[arg(long)]
    user: String,
    /// Service the token is for: market, backoffice, risk, audit or admin.
    #[arg(long)]
    service: String,
    /// Lifetime in seconds.
    #[arg(long, default_value_t = 3600, value_parser = clap::value_parser!(i64).range(1..=43_200))]
    ttl_seconds: i64,
}

#[derive(Subcommand)]
enum DbCommand {
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
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum StaffCommand {
    /// Import org units and staff from a JSON file (all or nothing).
    Import {
        file: PathBuf,
        #[command(flatten)]
        db: DbArgs,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
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
struct ExportArgs {
    #[command(flatten)]
    db: DbArgs,
    /// Directory to write the bundle into (must not exist or be empty).
    #[arg(long)]
    out: PathBuf,
    /// Ed25519 signing key (PKCS#8 PEM). Default: <data-dir>/audit-signing.key,
    /// created on first use.
    #[arg(long, env = "CREDITOPS_AUDIT_KEY")]
    audit_key: Option<PathBuf>,
    /// Verifier keys of signing keys used before a rotation (see `serve`).
    #[arg(long, env = "CREDITOPS_AUDIT_RETIRED_KEYS", value_delimiter = ',')]
    audit_retired_key: Vec<creditops_audit::VerifierKey>,
    /// First sequence number to include (default 1).
    #[arg(long)]
    from_seq: Option<i64>,
    /// Last sequence number to include (default: the newest event).
    #[arg(long)]
    to_seq: Option<i64>,
    /// Export the events recorded at or after this time (RFC 3339); the
    /// bundle spans from the first to the last such event.
    #[arg(long, conflicts_with_all = ["from_seq", "to_seq"])]
    from: Option<chrono::DateTime<chrono::Utc>>,
    /// ... and before this time (RFC 3339).
    #[arg(long, conflicts_with_all = ["from_seq", "to_seq"])]
    to: Option<chrono::DateTime<chrono::Utc>>,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

/// A failure with its exit code and a message for the operator.
struct Failure {
    code: u8,
    message: String,
}

/// The exit status of `audit verify-export` (and `audit/verify.py`) for a
/// bundle that is intact but signed only by keys it carries itself.
const UNAUTHENTICATED: u8 = 4;

impl Failure {
    fn usage(message: impl Into<String>) -> Self {
        Self {
            code: 2,
            message: message.into(),
        }
    }
    fn runtime(message: impl std::fmt::Display) -> Self {
        Self {
            code: 3,
            message: message.to_string(),
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: could not start the async runtime: {e}");
            return ExitCode::from(3);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(failure) => {
            eprintln!("error: {}", failure.message);
            ExitCode::from(failure.code)
        }
    }
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if std::env::var("CREDITOPS_LOG_FORMAT").as_deref() == Ok("json") {
        builder.json().init();
    } else {
        builder.compact().init();
    }
}

async fn run(cli: Cli) -> Result<ExitCode, Failure> {
    match cli.command {
        Command::Serve(args) => serve(*args).await,
        Command::Migrate(db) => migrate(&db).await,
        Command::Db {
            command:
                DbCommand::Provision {
                    database_url,
                    role_prefix,
                    json,
                },
        } => provision(&database_url, &role_prefix, json).await,
        Command::Token(args) => token(args),
        Command::Staff {
            command: StaffCommand::Import { file, db },
        } => import_staff(&file, &db).await,
        Command::Audit {
            command: AuditCommand::Export(args),
        } => audit_export(args).await,
        Command::Audit {
            command:
                AuditCommand::VerifyExport {
                    dir,
                    keys,
                    trust_bundle_keys,
                    json,
                },
        } => verify_export(&dir, &keys, trust_bundle_keys, json),
        Command::Audit {
            command: AuditCommand::Reconcile { db, json },
        } => reconcile(&db, json).await,
        Command::Audit {
            command:
                AuditCommand::Verify {
                    db,
                    json,
                    checkpoint,
                    trusted_key,
                },
        } => verify_chain(&db, json, checkpoint.as_deref(), trusted_key.as_deref()).await,
    }
}

/// `creditops migrate`.
async fn migrate(db: &DbArgs) -> Result<ExitCode, Failure> {
    let store = open(db).await?;
    creditops::platform::ensure_rules(store.as_ref())
        .await
        .map_err(Failure::runtime)?;
    println!("migrations applied");
    Ok(ExitCode::SUCCESS)
}

/// `creditops staff import FILE`.
async fn import_staff(file: &Path, db: &DbArgs) -> Result<ExitCode, Failure> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| Failure::usage(format!("cannot read {}: {e}", file.display())))?;
    let doc = staff_import::parse(&text).map_err(|e| Failure::usage(e.to_string()))?;
    let (sod, _) =
        creditops::platform::load_sod(None).map_err(|e| Failure::usage(e.to_string()))?;
    let store = open(db).await?;
    let report = staff_import::import(store.as_ref(), &doc, &sod)
        .await
        .map_err(|e| match e {
            staff_import::ImportError::Store(e) => Failure::runtime(e),
            other => Failure::usage(other.to_string()),
        })?;
    println!(
        "imported {} units and {} staff members",
        report.units, report.staff
    );
    Ok(ExitCode::SUCCESS)
}

/// The checkpoint signing key of `audit export`: the given file, else the
/// one in the data dir (created on first use).
fn export_signing_key(db: &DbArgs, audit_key: Option<&Path>) -> Result<SigningKey, Failure> {
    match audit_key {
        Some(path) => SigningKey::load(&db.audit_origin, path),
        None => {
            creditops::platform::create_private_dir(&db.data_dir).map_err(|e| {
                Failure::runtime(format!("cannot create {}: {e}", db.data_dir.display()))
            })?;
            SigningKey::load_or_create(&db.audit_origin, &db.data_dir.join("audit-signing.key"))
        }
    }
    .map_err(|e| Failure::usage(format!("audit signing key: {e}")))
}

/// `creditops audit export`.
async fn audit_export(args: ExportArgs) -> Result<ExitCode, Failure> {
    let ExportArgs {
        db,
        out,
        audit_key,
        audit_retired_key,
        from_seq,
        to_seq,
        from,
        to,
        json,
    } = args;
    let selection = if from.is_some() || to.is_some() {
        creditops_svc_audit::bundle::Selection::Time(from, to)
    } else {
        creditops_svc_audit::bundle::Selection::Seq(from_seq, to_seq)
    };
    let key = export_signing_key(&db, audit_key.as_deref())?;
    let store = open(&db).await?;
    let bar = progress_bar("reading and checking the log");
    let report = creditops::export::export(
        store.as_ref(),
        &db.audit_origin,
        creditops_svc_audit::bundle::ExportKeys {
            signing: &key,
            retired: &audit_retired_key,
        },
        &out,
        selection,
        &mut |n| bar.set_position(n),
    )
    .await
    .inspect(|_| bar.finish_and_clear())
    .inspect_err(|_| bar.abandon())
    .map_err(|e| {
        use creditops::export::{CliExportError, ExportError};
        match e {
            CliExportError::Export(ExportError::Broken { .. }) => Failure {
                code: 1,
                message: e.to_string(),
            },
            CliExportError::Export(ExportError::Usage(_) | ExportError::Empty) => {
                Failure::usage(e.to_string())
            }
            other => Failure::runtime(other),
        }
    })?;
    if json {
        println!("{}", serde_json::to_string(&report).unwrap_or_default());
    } else {
        println!(
            "exported events {}..{} of a log of {} with {} files into {}; signed by {}",
            report.first_seq,
            report.last_seq,
            report.tree_size,
            report.files,
            out.display(),
            report.key
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `creditops audit verify-export DIR`.
fn verify_export(
    dir: &Path,
    keys: &[String],
    trust_bundle_keys: bool,
    json: bool,
) -> Result<ExitCode, Failure> {
    let trusted = keys
        .iter()
        .map(|k| {
            k.parse::<creditops_audit::VerifierKey>()
                .map_err(|e| Failure::usage(format!("--key {k:?}: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let files = creditops_audit::export::read_bundle_dir(dir)
        .map_err(|e| Failure::usage(format!("cannot read {}: {e}", dir.display())))?;
    let result = if trusted.is_empty() {
        creditops_audit::export::verify_bundle(&files)
    } else {
        creditops_audit::export::verify_bundle_with_keys(&files, &trusted)
    };
    // Intact, but vouched for only by keys the bundle carries itself.
    let unauthenticated = trusted.is_empty() && !trust_bundle_keys;
    match (result, json) {
        (Ok(report), true) if unauthenticated => {
            println!(
                "{}",
                serde_json::json!({"ok": false, "unauthenticated": true, "report": report})
            );
            Ok(ExitCode::from(UNAUTHENTICATED))
        }
        (Ok(report), false) if unauthenticated => Err(Failure {
            code: UNAUTHENTICATED,
            message: format!(
                "bundle intact but unauthenticated: events {}..{} of {} are signed only by the \
                 bundle's own keys.txt ({}), which a forger writes too; pass the bank's published \
                 verifier key with --key (or --trust-bundle-keys after comparing keys.txt with it)",
                report.first_seq,
                report.last_seq,
                report.origin,
                report.signed_by.join(", ")
            ),
        }),
        (Ok(report), true) => {
            println!("{}", serde_json::json!({"ok": true, "report": report}));
            Ok(ExitCode::SUCCESS)
        }
        (Ok(report), false) => {
            println!(
                "bundle ok: events {}..{} of {} (checkpoint size {}, root {}), signed by {}{}",
                report.first_seq,
                report.last_seq,
                report.origin,
                report.size,
                report.root,
                report.signed_by.join(", "),
                if trusted.is_empty() {
                    " (keys from the bundle itself, trusted by --trust-bundle-keys)"
                } else {
                    ""
                }
            );
            Ok(ExitCode::SUCCESS)
        }
        (Err(error), true) => {
            println!("{}", serde_json::json!({"ok": false, "error": error}));
            Ok(ExitCode::from(1))
        }
        (Err(error), false) => Err(Failure {
            code: 1,
            message: error.to_string(),
        }),
    }
}

/// `creditops audit reconcile`.
async fn reconcile(db: &DbArgs, json: bool) -> Result<ExitCode, Failure> {
    let store = open(db).await?;
    let report = creditops_svc_audit::reconcile(store.as_ref())
        .await
        .map_err(|e| Failure::runtime(e.detail))?;
    let missing = report["missing"].as_array().map_or(0, Vec::len);
    if json {
        println!("{report}");
    } else if missing == 0 {
        println!("every borrower, case, vote and decision has its audit event");
    } else {
        for row in report["missing"].as_array().into_iter().flatten() {
            println!(
                "{} {}: audit event {} is missing",
                row["table"].as_str().unwrap_or(""),
                row["key"].as_str().unwrap_or(""),
                row["audit_event_id"].as_str().unwrap_or("(none recorded)")
            );
        }
    }
    Ok(if missing == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// The checkpoint `audit verify` checks the log against, read before the
/// database is opened so a bad argument fails fast.
fn published_checkpoint(
    checkpoint: Option<&Path>,
    trusted_key: Option<&str>,
) -> Result<Option<(String, creditops_audit::VerifierKey)>, Failure> {
    let (Some(path), Some(key)) = (checkpoint, trusted_key) else {
        return Ok(None);
    };
    let note = std::fs::read_to_string(path)
        .map_err(|e| Failure::usage(format!("cannot read --checkpoint {}: {e}", path.display())))?;
    let key: creditops_audit::VerifierKey = key
        .parse()
        .map_err(|e| Failure::usage(format!("--trusted-key: {e}")))?;
    Ok(Some((note, key)))
}

/// `creditops audit verify`.
async fn verify_chain(
    db: &DbArgs,
    json: bool,
    checkpoint: Option<&Path>,
    trusted_key: Option<&str>,
) -> Result<ExitCode, Failure> {
    let published = published_checkpoint(checkpoint, trusted_key)?;
    let store = open(db).await?;
    creditops::export::link_committed(store.as_ref())
        .await
        .map_err(Failure::runtime)?;
    let mut tx = store.begin_read().await.map_err(Failure::runtime)?;
    let bar = progress_bar("verifying the chain");
    let mut result =
        creditops_svc_audit::verify_chain_with_progress(tx.as_mut(), &db.audit_origin, &mut |n| {
            bar.set_position(n)
        })
        .await
        .map_err(|e| Failure::runtime(e.detail))?;
    bar.finish_and_clear();
    drop(tx);
    if let Some((note, key)) = published
        && result["ok"] == serde_json::Value::Bool(true)
    {
        let events = creditops::export::load_verified_log(store.as_ref(), &db.audit_origin)
            .await
            .map_err(Failure::runtime)?;
        match creditops::export::check_against_checkpoint(&events, &note, &key) {
            Ok(size) => result["checkpoint_size"] = serde_json::json!(size),
            Err(reason) => {
                result = serde_json::json!({
                    "ok": false,
                    "first_bad_seq": events.len() + 1,
                    "reason": reason,
                });
            }
        }
    }
    print_chain_result(&result, json);
    Ok(if result["ok"] == serde_json::Value::Bool(true) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Prints the result of `audit verify`, as JSON or for a person.
fn print_chain_result(result: &serde_json::Value, json: bool) {
    let ok = result["ok"] == serde_json::Value::Bool(true);
    if json {
        println!("{result}");
    } else if ok {
        println!(
            "audit chain intact: {} events, head {}",
            result["events"],
            result["head"].as_str().unwrap_or("")
        );
        if let Some(size) = result.get("checkpoint_size") {
            println!("consistent with the published checkpoint of size {size}");
        }
    } else {
        println!(
            "audit chain BROKEN at sequence {}: {}",
            result["first_bad_seq"],
            result["reason"].as_str().unwrap_or("")
        );
    }
}

async fn open(db: &DbArgs) -> Result<std::sync::Arc<dyn creditops_store::Store>, Failure> {
    creditops::platform::open_store_with_pool(
        db.database_url.as_deref(),
        &db.data_dir,
        &db.audit_origin,
        db.db_max_connections,
    )
    .await
    .map_err(|e| match e {
        creditops::PlatformError::DatabaseUrl(_) => Failure::usage(e.to_string()),
        other => Failure::runtime(other),
    })
}

/// A progress indicator on stderr for long operations (millions of audit
/// events); drawn only when stderr is a terminal, so scripts and `--json`
/// output stay clean.
fn progress_bar(message: &'static str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new_spinner().with_message(message);
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{spinner} {msg}: {human_pos} events ({per_sec}, {elapsed})",
    ) {
        bar.set_style(style);
    }
    bar.enable_steady_tick(std::time::Duration::from_millis(200));
    bar
}

async fn provision(database_url: &str, prefix: &str, json: bool) -> Result<ExitCode, Failure> {
    if !creditops_store_postgres::roles::valid_prefix(prefix) {
        return Err(Failure::usage(format!(
            "--role-prefix {prefix:?}: use lower-case letters, digits and '_', starting with a letter (at most 40)"
        )));
    }
    if !(database_url.starts_with("postgres://") || database_url.starts_with("postgresql://")) {
        return Err(Failure::usage(
            "--database-url: roles exist only on PostgreSQL (postgres://...)",
        ));
    }
    let store = creditops_store_postgres::PgStore::connect(database_url, DEFAULT_AUDIT_ORIGIN, 1)
        .await
        .map_err(Failure::runtime)?;
    let roles = store
        .provision_roles(prefix)
        .await
        .map_err(Failure::runtime)?;
    // A1: the roles every service will run as are part of the record.
    let mut record = creditops_audit::AuditRecord::new(
        "cli",
        creditops_audit::AuditAction::RolesProvisioned,
        creditops_audit::Outcome::Ok,
        chrono::Utc::now(),
    );
    record.data = serde_json::json!({ "role_prefix": prefix, "roles": roles });
    let audited = async {
        let mut tx = creditops_store::Store::begin(&store).await?;
        creditops_store::append_record(tx.as_mut(), &record).await?;
        tx.commit().await
    }
    .await;
    store.close().await;
    audited.map_err(|e| Failure::runtime(format!("the roles are provisioned, but: {e}")))?;
    if json {
        println!("{}", serde_json::json!({ "roles": roles }));
    } else {
        println!(
            "provisioned {}; give each a password (ALTER ROLE ... PASSWORD) or certificate and run each service as its role",
            roles.join(", ")
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn token(args: TokenArgs) -> Result<ExitCode, Failure> {
    let user = StaffId::parse(&args.user).map_err(|e| Failure::usage(format!("--user: {e}")))?;
    let idp = DevIdentityProvider::load(&args.data_dir).map_err(|e| {
        Failure::usage(format!(
            "{e} (tokens can be minted only for a data dir created by 'creditops serve --dev')"
        ))
    })?;
    let token = idp
        .mint(&user, &args.service, args.ttl_seconds)
        .map_err(|e| Failure::usage(e.to_string()))?;
    println!("{token}");
    Ok(ExitCode::SUCCESS)
}

/// Refuses unsafe combinations before anything starts.
fn check_serve_config(args: &ServeArgs) -> Result<(), Failure> {
    if args.dev && args.jwks.is_some() {
        return Err(Failure::usage(
            "--dev brings its own identity provider; do not combine it with --jwks",
        ));
    }
    if !args.dev && args.issuer.as_deref() == Some(DevIdentityProvider::ISSUER) {
        return Err(Failure::usage(format!(
            "--issuer {}: that is the dev identity provider, whose key lies in a data dir; use it only with --dev",
            DevIdentityProvider::ISSUER
        )));
    }
    if args.dev {
        let addrs = [
            args.market_addr,
            args.backoffice_addr,
            args.risk_addr,
            args.audit_addr,
            args.admin_addr,
        ];
        if let Some(open) = addrs.iter().find(|a| !a.ip().is_loopback()) {
            return Err(Failure::usage(format!(
                "--dev listens on loopback only (anyone can mint dev tokens); {open} is not a loopback address"
            )));
        }
    }
    Ok(())
}

fn identity(args: &ServeArgs) -> Result<Identity, Failure> {
    match (&args.jwks, &args.issuer, args.dev) {
        (Some(path), Some(issuer), _) => {
            let jwks_json = std::fs::read_to_string(path).map_err(|e| {
                Failure::usage(format!("cannot read --jwks {}: {e}", path.display()))
            })?;
            Ok(Identity {
                jwks_json,
                issuer: issuer.clone(),
                max_token_lifetime: std::time::Duration::from_secs(args.max_token_lifetime),
            })
        }
        (Some(_), None, _) => Err(Failure::usage(
            "--jwks needs --issuer (the iss every token must carry)",
        )),
        (None, Some(_), _) => Err(Failure::usage(
            "--issuer needs --jwks (the identity provider's keys)",
        )),
        (None, None, true) => dev_identity(args),
        (None, None, false) => Err(Failure::usage(
            "no identity provider configured: pass --jwks FILE --issuer ISS, or --dev for a local dev identity provider",
        )),
    }
}

fn dev_identity(args: &ServeArgs) -> Result<Identity, Failure> {
    let idp = DevIdentityProvider::load_or_create(&args.db.data_dir).map_err(Failure::runtime)?;
    Ok(Identity {
        jwks_json: idp.jwks_json(),
        issuer: DevIdentityProvider::ISSUER.to_owned(),
        max_token_lifetime: std::time::Duration::from_secs(args.max_token_lifetime),
    })
}

/// The listen address of each service to run, in the order given.
fn listeners(args: &ServeArgs) -> Result<Vec<(String, SocketAddr)>, Failure> {
    let mut listeners = Vec::new();
    for service in &args.services {
        let addr = match service.as_str() {
            "market" => args.market_addr,
            "backoffice" => args.backoffice_addr,
            "risk" => args.risk_addr,
            "audit" => args.audit_addr,
            "admin" => args.admin_addr,
            other => {
                return Err(Failure::usage(format!(
                    "--services: unknown service {other:?}"
                )));
            }
        };
        listeners.push((service.clone(), addr));
    }
    Ok(listeners)
}

/// The checkpoint signing key of `serve`: the given file; with `--dev` the
/// one in the data dir (created on first start); else none.
fn serve_signing_key(args: &ServeArgs) -> Result<Option<std::sync::Arc<SigningKey>>, Failure> {
    Ok(match (&args.audit_key, args.dev) {
        (Some(path), _) => Some(SigningKey::load(&args.db.audit_origin, path)),
        (None, true) => Some(SigningKey::load_or_create(
            &args.db.audit_origin,
            &args.db.data_dir.join("audit-signing.key"),
        )),
        (None, false) => None,
    }
    .transpose()
    .map_err(|e| Failure::usage(format!("audit signing key: {e}")))?
    .map(std::sync::Arc::new))
}

async fn serve(args: ServeArgs) -> Result<ExitCode, Failure> {
    check_serve_config(&args)?;
    let listeners = listeners(&args)?;
    let (sod, _) = creditops::platform::load_sod(args.policy_dir.as_deref())
        .map_err(|e| Failure::usage(e.to_string()))?;
    let store = open(&args.db).await?;
    // Before the dev identity provider exists: a refused database gets no
    // token minter beside it.
    if args.dev {
        demo::claim_database(store.as_ref(), &args.db.data_dir)
            .await
            .map_err(|e| Failure::usage(e.to_string()))?;
    }
    let identity = identity(&args)?;
    if args.dev
        && demo::seed(store.as_ref(), &sod)
            .await
            .map_err(Failure::runtime)?
    {
        tracing::info!("seeded the demo organisation");
    }
    let audit_key = serve_signing_key(&args)?;
    let platform = creditops::start(PlatformConfig {
        store,
        service_stores: std::collections::BTreeMap::new(),
        identity,
        policy_dir: args.policy_dir.clone(),
        audit_origin: args.db.audit_origin.clone(),
        audit_key,
        audit_retired_keys: args.audit_retired_key.clone(),
        listeners,
        risk_watch_interval: (args.risk_watch_seconds > 0)
            .then(|| std::time::Duration::from_secs(args.risk_watch_seconds)),
        audit_sequencer_interval: std::time::Duration::from_millis(args.audit_sequencer_ms),
        limits: creditops_http::RequestLimits {
            body_bytes: usize::try_from(args.body_limit_bytes).unwrap_or(usize::MAX),
            timeout: std::time::Duration::from_millis(args.request_timeout_ms),
            auth_failures_per_minute: args.auth_failures_per_minute,
        },
    })
    .await
    .map_err(|e| match e {
        creditops::PlatformError::Bind { .. } => Failure::runtime(e),
        other => Failure::usage(other.to_string()),
    })?;
    for (service, addr) in &platform.addrs {
        println!("{service:<10} http://{addr}");
    }
    if args.dev {
        println!(
            "\ndev mode: demo staff lo-1 lo-2 lo-3 mb-1 (market), ba-1 ba-2 ba-3 bb-1 (back office), \
             rc-1 rc-2 (risk control), ia-1 (internal audit), ua-1 ua-2 (user administration)\n\
             mint a token:  cargo run --release -p creditops -- token --data-dir {} --user lo-1 --service market",
            args.db.data_dir.display()
        );
    }
    shutdown_signal().await;
    stop(platform, args.shutdown_timeout_secs).await
}

/// Stops the platform: in-flight requests get `timeout_secs` to finish.
async fn stop(
    platform: creditops::RunningPlatform,
    timeout_secs: u64,
) -> Result<ExitCode, Failure> {
    tracing::info!("shutting down: finishing in-flight requests");
    let deadline = std::time::Duration::from_secs(timeout_secs);
    match tokio::time::timeout(deadline, platform.shutdown()).await {
        Ok(()) => {
            tracing::info!("stopped");
            Ok(ExitCode::SUCCESS)
        }
        // Whatever did not finish rolls back with the process: nothing is
        // half-applied, but the operator must know the stop was not clean.
        Err(_) => Err(Failure {
            code: 1,
            message: format!(
                "in-flight requests did not finish within --shutdown-timeout-secs {timeout_secs}; stopped anyway"
            ),
        }),
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
}
