//! A real OpenID provider for the console's sign-in tests: the npm package
//! `oidc-provider` (installed in `tests/oidc` with `npm ci`), run with the
//! machine's Node.js. A machine without it fails the tests with how to
//! install it; it does not pass them silently.

use serde_json::json;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

/// A running provider; the process ends when this is dropped.
pub struct IdentityProvider {
    child: Child,
    pub issuer: String,
}

impl Drop for IdentityProvider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One client of the provider: a service's console.
pub struct Client<'a> {
    pub client_id: &'a str,
    pub client_secret: &'a str,
    pub redirect_uri: &'a str,
}

/// A free port on 127.0.0.1 (the provider's issuer URL names it, so the
/// platform can be configured before the provider starts).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// Installs the provider from the npm registry (the pinned versions of
/// `package-lock.json`) on first use; tests running side by side wait for
/// one installation.
fn install(dir: &std::path::Path) {
    static INSTALL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _once = INSTALL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if dir.join("node_modules/oidc-provider").is_dir() {
        return;
    }
    let installed = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund", "--silent"])
        .current_dir(dir)
        .status();
    assert!(
        matches!(installed, Ok(status) if status.success()),
        "the test identity provider could not be installed ({installed:?}); it needs Node.js \
         20+ and npm with the npm registry: npm ci --prefix tests/oidc"
    );
}

impl IdentityProvider {
    /// The issuer URL a provider on `port` has.
    pub fn issuer_on(port: u16) -> String {
        format!("http://127.0.0.1:{port}")
    }

    /// Starts the provider on `port` with `clients`; returns once it listens.
    pub fn start(port: u16, clients: &[Client<'_>]) -> IdentityProvider {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("oidc");
        install(&dir);
        let clients: Vec<_> = clients
            .iter()
            .map(|c| {
                json!({
                    "client_id": c.client_id,
                    "client_secret": c.client_secret,
                    "redirect_uris": [c.redirect_uri],
                })
            })
            .collect();
        let mut child = Command::new("node")
            .arg("provider.mjs")
            .current_dir(&dir)
            .env("PORT", port.to_string())
            .env("CLIENTS", serde_json::Value::Array(clients).to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("node starts the test identity provider (is Node.js installed?)");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let ready = lines.next().and_then(Result::ok).unwrap_or_default();
        assert!(
            ready.starts_with("ready "),
            "the test identity provider did not start: {ready:?}"
        );
        // Keep reading what it prints, so its writes never fail on a
        // closed pipe.
        std::thread::spawn(move || lines.for_each(drop));
        IdentityProvider {
            child,
            issuer: Self::issuer_on(port),
        }
    }
}
