//! Real headless Chromium for the console's browser tests, driven over the
//! W3C WebDriver protocol (JSON over HTTP) against chromedriver. Both come
//! from the distribution's packages (`chromium`, `chromium-driver`); a
//! machine without them fails the tests with how to install them, it does
//! not pass them silently.

use serde_json::{Value, json};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The W3C name of an element reference in WebDriver answers.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

fn on_path(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| names.iter().map(move |name| dir.join(name)))
        .find(|candidate| candidate.is_file())
}

/// A headless Chromium session; the driver process ends when it is dropped.
pub struct Browser {
    driver: Child,
    base: String,
    session: String,
    client: reqwest::Client,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl Browser {
    /// Starts chromedriver and a headless Chromium session. Panics with
    /// installation instructions when either is missing.
    pub async fn start() -> Browser {
        let install = "install them with: apt-get install -y chromium chromium-driver \
                       (the console's browser tests need a real headless Chromium)";
        let chromium = on_path(&["chromium", "chromium-browser"])
            .unwrap_or_else(|| panic!("chromium is not installed; {install}"));
        let chromedriver = on_path(&["chromedriver"])
            .unwrap_or_else(|| panic!("chromedriver is not installed; {install}"));
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let driver = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let base = format!("http://127.0.0.1:{port}");
        let client = reqwest::Client::new();
        let mut browser = Browser {
            driver,
            base,
            session: String::new(),
            client,
        };
        for _ in 0..100 {
            if let Ok(r) = browser
                .client
                .get(format!("{}/status", browser.base))
                .send()
                .await
                && r.status().is_success()
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let created = browser
            .command(
                reqwest::Method::POST,
                "/session",
                json!({"capabilities": {"alwaysMatch": {
                    "browserName": "chrome",
                    "goog:chromeOptions": {
                        "binary": chromium.to_string_lossy(),
                        "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                                 "--disable-dev-shm-usage", "--window-size=1280,900",
                                 "--lang=en-US"],
                        "prefs": {"intl.accept_languages": "en-US,en"}
                    }
                }}}),
            )
            .await;
        browser.session = created["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("chromedriver did not start a session: {created}"))
            .to_owned();
        browser
    }

    async fn command(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        let mut request = self
            .client
            .request(method.clone(), format!("{}{path}", self.base));
        if method == reqwest::Method::POST {
            request = request.json(&body);
        }
        let response = request.send().await.expect("chromedriver answers");
        let value: Value = response.json().await.expect("chromedriver answers JSON");
        if let Some(error) = value["value"]["error"].as_str() {
            panic!("webdriver {path}: {error}: {}", value["value"]["message"]);
        }
        value.get("value").cloned().unwrap_or(value)
    }

    fn at(&self, path: &str) -> String {
        format!("/session/{}{path}", self.session)
    }

    pub async fn goto(&self, url: &str) {
        self.command(reqwest::Method::POST, &self.at("/url"), json!({"url": url}))
            .await;
    }

    pub async fn current_url(&self) -> String {
        self.command(reqwest::Method::GET, &self.at("/url"), Value::Null)
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    async fn element(&self, css: &str) -> String {
        let found = self
            .command(
                reqwest::Method::POST,
                &self.at("/element"),
                json!({"using": "css selector", "value": css}),
            )
            .await;
        found[ELEMENT]
            .as_str()
            .unwrap_or_else(|| panic!("no element {css}: {found}"))
            .to_owned()
    }

    pub async fn type_into(&self, css: &str, text: &str) {
        let id = self.element(css).await;
        self.command(
            reqwest::Method::POST,
            &self.at(&format!("/element/{id}/value")),
            json!({"text": text}),
        )
        .await;
    }

    pub async fn click(&self, css: &str) {
        let id = self.element(css).await;
        self.command(
            reqwest::Method::POST,
            &self.at(&format!("/element/{id}/click")),
            json!({}),
        )
        .await;
    }

    /// Types `keys` with the keyboard into whatever has the focus, as a
    /// person without a mouse would (WebDriver key actions; `\u{E004}` is
    /// Tab, `\u{E00D}` Space, `\u{E007}` Enter).
    pub async fn keyboard(&self, keys: &str) {
        let actions: Vec<Value> = keys
            .chars()
            .flat_map(|key| {
                let key = key.to_string();
                [
                    json!({"type": "keyDown", "value": key}),
                    json!({"type": "keyUp", "value": key}),
                ]
            })
            .collect();
        self.command(
            reqwest::Method::POST,
            &self.at("/actions"),
            json!({"actions": [{"type": "key", "id": "keyboard", "actions": actions}]}),
        )
        .await;
    }

    /// Puts the keyboard focus on the element `css` names.
    pub async fn focus(&self, css: &str) {
        self.execute(
            "document.querySelector(arguments[0]).focus(); return true;",
            json!([css]),
        )
        .await;
    }

    /// Runs `script` in the page (WebDriver's own channel, outside the
    /// page's Content-Security-Policy) and returns its result.
    pub async fn execute(&self, script: &str, args: Value) -> Value {
        self.command(
            reqwest::Method::POST,
            &self.at("/execute/sync"),
            json!({"script": script, "args": args}),
        )
        .await
    }

    /// The page's visible text.
    pub async fn text(&self) -> String {
        self.execute("return document.body.innerText", json!([]))
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// The page's text once it contains `needle` (a click's navigation may
    /// still be under way when the click is answered); panics after 10 s.
    pub async fn wait_for_text(&self, needle: &str) -> String {
        let mut text = String::new();
        for _ in 0..200 {
            text = self.text().await;
            if text.contains(needle) {
                return text;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the page never showed {needle:?}; it shows: {text}");
    }

    /// The page's address once it ends with `suffix`; panics after 10 s.
    pub async fn wait_for_url(&self, suffix: &str) -> String {
        let mut url = String::new();
        for _ in 0..200 {
            url = self.current_url().await;
            if url.ends_with(suffix) {
                return url;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "the browser never reached *{suffix}; it is at {url}: {}",
            self.text().await
        );
    }

    /// Runs axe-core (WCAG 2.1 A and AA rules) on the page and panics on any
    /// violation, when `CREDITOPS_AXE` names a copy of `axe.min.js` (npm
    /// package `axe-core`; not vendored here for its size).
    pub async fn assert_accessible(&self, page: &str) {
        let Some(path) = std::env::var_os("CREDITOPS_AXE") else {
            return;
        };
        let source = std::fs::read_to_string(&path).expect("CREDITOPS_AXE names axe.min.js");
        self.execute(&format!("{source}\n;return true;"), json!([]))
            .await;
        let violations = self
            .command(
                reqwest::Method::POST,
                &self.at("/execute/async"),
                json!({"script": "const done = arguments[arguments.length - 1];\
                    axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']}})\
                    .then(r => done(r.violations.map(v => ({id: v.id, impact: v.impact, nodes: v.nodes.map(n => n.target)}))))\
                    .catch(e => done([{id: 'axe-failed', impact: String(e)}]));",
                       "args": []}),
            )
            .await;
        assert_eq!(violations, json!([]), "axe-core finds violations on {page}");
    }

    /// Saves a PNG of the page as `<name>.png` in the directory
    /// `CREDITOPS_SCREENSHOTS` names, if it is set.
    pub async fn screenshot(&self, name: &str) {
        let Some(dir) = std::env::var_os("CREDITOPS_SCREENSHOTS") else {
            return;
        };
        use base64::Engine;
        let png = self
            .command(reqwest::Method::GET, &self.at("/screenshot"), Value::Null)
            .await;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(png.as_str().unwrap_or_default())
            .expect("a PNG");
        std::fs::write(PathBuf::from(dir).join(format!("{name}.png")), bytes).expect("screenshot");
    }

    pub async fn quit(self) {
        self.command(reqwest::Method::DELETE, &self.at(""), Value::Null)
            .await;
    }
}
