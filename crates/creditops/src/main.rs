//! `creditops`: serve the platform, mint dev tokens, import staff, verify the
//! audit trail. Exit codes: 0 success, 1 a check failed (e.g. the audit chain
//! is broken), 2 bad usage or configuration, 3 a runtime failure.

use clap::Parser;
use cli::{
    AuditCommand, Cli, Command, DbArgs, DbCommand, ExportArgs, ServeArgs, StaffCommand, TokenArgs,
};
use creditops::operator::Operator;
use creditops::platform::JwksSource;
use creditops::{DEFAULT_AUDIT_ORIGIN, Identity, PlatformConfig, demo, staff_import};
use creditops_audit::SigningKey;
use creditops_auth::DevIdentityProvider;
use creditops_domain::StaffId;
use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;

mod cli;

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
                    policy_dir,
                    json,
                },
        } => provision(&database_url, &role_prefix, policy_dir.as_deref(), json).await,
        Command::Token(args) => token(args),
        Command::Staff {
            command:
                StaffCommand::Import {
                    file,
                    proposer,
                    policy_dir,
                    db,
                },
        } => import_staff(&file, proposer.as_deref(), policy_dir.as_deref(), &db).await,
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
    // A deployment stops here rather than at `serve` when rows need fixing.
    creditops::platform::check_classifications(store.as_ref())
        .await
        .map_err(|e| match e {
            creditops::PlatformError::Store(_) => Failure::runtime(e),
            other => start_failure(other),
        })?;
    Ok(ExitCode::SUCCESS)
}

/// `creditops staff import FILE`: the bootstrap of an empty directory, or
/// proposals of the administrator `--as` names (hardening finding 14).
async fn import_staff(
    file: &Path,
    proposer: Option<&str>,
    policy_dir: Option<&Path>,
    db: &DbArgs,
) -> Result<ExitCode, Failure> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| Failure::usage(format!("cannot read {}: {e}", file.display())))?;
    let doc = staff_import::parse(&text).map_err(|e| Failure::usage(e.to_string()))?;
    let proposer = proposer
        .map(StaffId::parse)
        .transpose()
        .map_err(|e| Failure::usage(format!("--as: {e}")))?;
    let policies = creditops::platform::load_policies(policy_dir)
        .await
        .map_err(|e| Failure::usage(e.to_string()))?;
    let rules = staff_import::ImportRules {
        sod: policies.sod.clone(),
        policy_hash: policies.hash.clone(),
    };
    let operator = Operator::from_env();
    let store = open(db).await?;
    let outcome =
        staff_import::import(store.clone(), &doc, &rules, &operator, proposer.as_ref()).await;
    let report = match outcome {
        Ok(report) => report,
        Err(staff_import::ImportError::Store(e)) => return Err(Failure::runtime(e)),
        Err(refusal) => {
            let failure = Failure::usage(refusal.to_string());
            return Err(audit_refusal(
                store.as_ref(),
                "staff import",
                refusal.rule(),
                failure,
                &operator,
            )
            .await);
        }
    };
    match report {
        staff_import::ImportReport::Bootstrapped { units, staff } => {
            println!("imported {units} units and {staff} staff members (bootstrap)");
        }
        staff_import::ImportReport::Proposed { units, proposals } => {
            if units > 0 {
                println!("created {units} units");
            }
            println!(
                "proposed {} staff members; each takes effect when a second user administrator \
                 approves it on the admin service:",
                proposals.len()
            );
            for (staff_id, id) in proposals {
                println!("  {staff_id}: POST /v1/proposals/{id}/approve");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Records a command's refusal in the audit trail (A1) and returns the
/// failure to report; a refusal that cannot be audited says so.
async fn audit_refusal(
    store: &dyn creditops_store::Store,
    command: &str,
    rule: Option<creditops_domain::RuleId>,
    failure: Failure,
    operator: &Operator,
) -> Failure {
    /// Longest refusal text recorded (it may quote the operator's input).
    const MAX_REASON: usize = 500;
    let mut record = creditops_audit::AuditRecord::new(
        "cli",
        creditops_audit::AuditAction::CommandRefused,
        creditops_audit::Outcome::Denied,
        chrono::Utc::now(),
    );
    record.rule = rule;
    record.data = serde_json::json!({
        "command": command,
        "exit_code": failure.code,
        "reason": failure.message.chars().take(MAX_REASON).collect::<String>(),
        "operator": operator.to_json(),
    });
    let audited = async {
        let mut tx = store.begin().await?;
        creditops_store::append_record(tx.as_mut(), &record).await?;
        tx.commit().await
    }
    .await;
    match audited {
        Ok(()) => failure,
        Err(e) => Failure {
            code: failure.code,
            message: format!(
                "{} (the refusal could not be audited: {e})",
                failure.message
            ),
        },
    }
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
    let bar = progress_bar("writing and checking the entries");
    let outcome = creditops::export::export(
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
    .inspect_err(|_| bar.abandon());
    let report = match outcome {
        Ok(report) => report,
        Err(e) => {
            use creditops::export::{CliExportError, ExportError};
            return Err(match e {
                CliExportError::Export(ExportError::Broken { .. }) => Failure {
                    code: 1,
                    message: e.to_string(),
                },
                // Bad input refused with the store open: on the record (A1).
                CliExportError::Export(ExportError::Usage(_) | ExportError::Empty) => {
                    let failure = Failure::usage(e.to_string());
                    let operator = Operator::from_env();
                    audit_refusal(store.as_ref(), "audit export", None, failure, &operator).await
                }
                other => Failure::runtime(other),
            });
        }
    };
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

/// `creditops db provision`: the per-service roles, recorded in the audit
/// trail with what the services will enforce (A1, hardening finding 19).
async fn provision(
    database_url: &str,
    prefix: &str,
    policy_dir: Option<&Path>,
    json: bool,
) -> Result<ExitCode, Failure> {
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
    let policies = creditops::platform::load_policies(policy_dir)
        .await
        .map_err(|e| Failure::usage(e.to_string()))?;
    let store = creditops_store_postgres::PgStore::connect(database_url, DEFAULT_AUDIT_ORIGIN, 1)
        .await
        .map_err(Failure::runtime)?;
    let roles = store
        .provision_roles(prefix)
        .await
        .map_err(Failure::runtime)?;
    // A1: the roles every service will run as are part of the record, with
    // the policies and rules in force and the configuration (no secrets:
    // the database URL without its credentials).
    let now = chrono::Utc::now();
    let mut record = creditops_audit::AuditRecord::new(
        "cli",
        creditops_audit::AuditAction::RolesProvisioned,
        creditops_audit::Outcome::Ok,
        now,
    );
    let audited = async {
        let mut tx = creditops_store::Store::begin(&store).await?;
        let rules = tx.rule_sets().await?;
        record.data = serde_json::json!({
            "role_prefix": prefix,
            "roles": roles,
            "version": env!("CARGO_PKG_VERSION"),
            "database": creditops::platform::redact(database_url),
            "policy_hash": policies.hash,
            "sod_hash": policies.sod_hash,
            "policies": if policy_dir.is_some() { "policy-dir" } else { "built-in" },
            "rules_version": creditops_domain::rules::in_force(&rules, now).map(|r| r.version),
            "operator": Operator::from_env().to_json(),
        });
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
        (Some(jwks), Some(issuer), _) => {
            // An address is fetched (and refreshed on a rotation); anything
            // else is a file, read once.
            let jwks = if jwks.contains("://") {
                creditops_http::keys::key_set_url(jwks)
                    .map_err(|e| Failure::usage(format!("--jwks {e}")))?;
                JwksSource::Url(jwks.clone())
            } else {
                JwksSource::Document(
                    std::fs::read_to_string(jwks)
                        .map_err(|e| Failure::usage(format!("cannot read --jwks {jwks}: {e}")))?,
                )
            };
            Ok(Identity {
                jwks,
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
        jwks: JwksSource::Document(idp.jwks_json()),
        issuer: DevIdentityProvider::ISSUER.to_owned(),
        max_token_lifetime: std::time::Duration::from_secs(args.max_token_lifetime),
    })
}

/// `SERVICE=VALUE` pairs of `flag`, by service (known services, once each).
fn per_service(
    flag: &str,
    pairs: &[String],
) -> Result<std::collections::BTreeMap<String, String>, Failure> {
    let mut by_service = std::collections::BTreeMap::new();
    for pair in pairs {
        let Some((service, value)) = pair.split_once('=') else {
            return Err(Failure::usage(format!(
                "{flag} {pair:?}: expected SERVICE=VALUE, e.g. market=..."
            )));
        };
        if !creditops_auth::is_service(service) {
            return Err(Failure::usage(format!(
                "{flag}: unknown service {service:?} (market, backoffice, risk, audit, admin)"
            )));
        }
        if value.trim().is_empty() {
            return Err(Failure::usage(format!(
                "{flag} {service}=: the value is empty"
            )));
        }
        if by_service
            .insert(service.to_owned(), value.trim().to_owned())
            .is_some()
        {
            return Err(Failure::usage(format!("{flag}: {service} is given twice")));
        }
    }
    Ok(by_service)
}

/// Reads a client secret: the first line of `path`, which only its owner
/// may read (a secret readable by others is refused, not used).
fn read_client_secret(service: &str, path: &std::path::Path) -> Result<String, Failure> {
    let failure = |detail: String| {
        Failure::usage(format!(
            "--oidc-client-secret-file {service}={}: {detail}",
            path.display()
        ))
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path)
            .map_err(|e| failure(e.to_string()))?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            return Err(failure(format!(
                "readable by others (mode {:o}); chmod 600 it",
                mode & 0o777
            )));
        }
    }
    let text = std::fs::read_to_string(path).map_err(|e| failure(e.to_string()))?;
    let secret = text.lines().next().unwrap_or_default().trim().to_owned();
    if secret.is_empty() {
        return Err(failure("the file holds no secret".to_owned()));
    }
    Ok(secret)
}

/// The consoles that sign in through the bank's identity provider: every
/// service with a client id needs its secret file and its external address.
fn console_sign_on(
    args: &ServeArgs,
) -> Result<std::collections::BTreeMap<String, creditops_console::oidc::OidcConfig>, Failure> {
    let clients = per_service("--oidc-client-id", &args.oidc_client_id)?;
    let secrets = per_service("--oidc-client-secret-file", &args.oidc_client_secret_file)?;
    let urls = per_service("--console-url", &args.console_url)?;
    let Some(issuer) = &args.oidc_issuer else {
        if clients.is_empty() && secrets.is_empty() && urls.is_empty() {
            return Ok(std::collections::BTreeMap::new());
        }
        return Err(Failure::usage(
            "--oidc-client-id, --oidc-client-secret-file and --console-url need --oidc-issuer",
        ));
    };
    if args.dev {
        return Err(Failure::usage(
            "--dev signs in to the consoles without a password; do not combine it with --oidc-issuer",
        ));
    }
    for service in secrets.keys().chain(urls.keys()) {
        if !clients.contains_key(service) {
            return Err(Failure::usage(format!(
                "{service} has a secret file or console URL but no --oidc-client-id {service}=ID"
            )));
        }
    }
    let mut sign_on = std::collections::BTreeMap::new();
    for (service, client_id) in clients {
        let secret_file = secrets.get(&service).ok_or_else(|| {
            Failure::usage(format!(
                "--oidc-client-id {service}: give --oidc-client-secret-file {service}=FILE"
            ))
        })?;
        let url = urls.get(&service).ok_or_else(|| {
            Failure::usage(format!(
                "--oidc-client-id {service}: give --console-url {service}=URL (its external address)"
            ))
        })?;
        if !(url.starts_with("https://")
            || url.starts_with("http://127.0.0.1")
            || url.starts_with("http://localhost"))
        {
            return Err(Failure::usage(format!(
                "--console-url {service}={url}: must be https (http only on this machine)"
            )));
        }
        let config = creditops_console::oidc::OidcConfig {
            issuer: issuer.clone(),
            client_id,
            client_secret: read_client_secret(&service, std::path::Path::new(secret_file))?,
            redirect_uri: Some(format!(
                "{}{}",
                url.trim_end_matches('/'),
                creditops_console::oidc::CALLBACK_PATH
            )),
            staff_claim: args.oidc_staff_claim.clone(),
        };
        creditops_console::oidc::OidcClient::new(config.clone())
            .map_err(|e| Failure::usage(format!("--oidc-issuer {issuer}: {e}")))?;
        sign_on.insert(service, config);
    }
    Ok(sign_on)
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
    let console_sign_on = console_sign_on(&args)?;
    let (sod, _) = creditops::platform::load_sod(args.policy_dir.as_deref())
        .map_err(|e| Failure::usage(e.to_string()))?;
    let store = open(&args.db).await?;
    // Before the dev identity provider exists: a refused database gets no
    // token minter beside it.
    if args.dev
        && let Err(e) = demo::claim_database(store.as_ref(), &args.db.data_dir).await
    {
        let failure = Failure::usage(e.to_string());
        // A1: the attempt to run dev mode on somebody else's database is on
        // that database's record.
        return Err(match e {
            demo::DevDatabaseError::NotCreatedByDev { .. } => {
                let operator = Operator::from_env();
                audit_refusal(store.as_ref(), "serve --dev", None, failure, &operator).await
            }
            _ => failure,
        });
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
            document_bytes: usize::try_from(args.document_limit_bytes).unwrap_or(usize::MAX),
            timeout: std::time::Duration::from_millis(args.request_timeout_ms),
            auth_failures_per_minute: args.auth_failures_per_minute,
        },
        dev_console: args.dev,
        console_sign_on,
    })
    .await
    .map_err(start_failure)?;
    for (service, addr) in &platform.addrs {
        println!("{service:<10} http://{addr}");
    }
    for (service, login) in platform.console_logins() {
        println!("console    {service:<10} {login}");
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

/// The exit of a platform that did not start: 1 for data that fails a check
/// (rows to correct), 3 when it cannot listen, else 2 (configuration).
fn start_failure(e: creditops::PlatformError) -> Failure {
    match e {
        creditops::PlatformError::Unclassified(_) => Failure {
            code: 1,
            message: e.to_string(),
        },
        creditops::PlatformError::Bind { .. } => Failure::runtime(e),
        other => Failure::usage(other.to_string()),
    }
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
