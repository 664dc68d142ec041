//! Signing in to a console through a real OpenID provider (issue 19): the
//! npm package `oidc-provider` with its development login screens, the
//! authorization code flow with PKCE in real headless Chromium, the session
//! that starts and ends, and what the callback refuses.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use creditops_console::oidc::OidcConfig;
use creditops_tests::browser::Browser;
use creditops_tests::console::ConsoleClient;
use creditops_tests::oidc::{Client, IdentityProvider, free_port};
use creditops_tests::{Backend, TestPlatform};
use reqwest::StatusCode;
use std::collections::BTreeMap;

const SECRET: &str = "market-console-secret-for-tests";

/// The platform whose market console signs in at a provider on `port`.
async fn platform_signing_in_at(port: u16) -> TestPlatform {
    let config = OidcConfig {
        issuer: IdentityProvider::issuer_on(port),
        client_id: "market-console".to_owned(),
        client_secret: SECRET.to_owned(),
        redirect_uri: None,
        staff_claim: "sub".to_owned(),
    };
    TestPlatform::start_with_sign_on(
        Backend::Sqlite,
        BTreeMap::from([("market".to_owned(), config)]),
    )
    .await
    .expect("sqlite")
}

fn provider_for(p: &TestPlatform, port: u16) -> IdentityProvider {
    let redirect = p.url("market", "/login/callback");
    IdentityProvider::start(
        port,
        &[Client {
            client_id: "market-console",
            client_secret: SECRET,
            redirect_uri: &redirect,
        }],
    )
}

/// Signs `login` in at the provider's development screens (any password).
async fn at_the_provider(browser: &Browser, login: &str) {
    browser.wait_for_text("Sign-in").await;
    browser.type_into("input[name=login]", login).await;
    browser
        .type_into("input[name=password]", "any password")
        .await;
    browser.click("button[type=submit]").await;
    // The provider asks for consent to share the id with the console.
    browser.wait_for_text("Authorize").await;
    browser.click("button[type=submit]").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn console_sign_on_through_a_real_openid_provider_and_sign_out() {
    let port = free_port();
    let p = platform_signing_in_at(port).await;
    let _provider = provider_for(&p, port);
    let market = p.url("market", "");

    let browser = Browser::start().await;
    browser.goto(&format!("{market}/login")).await;
    browser.wait_for_text("single sign-on").await;
    browser.assert_accessible("sso_login").await;
    // No development login here: the form for a bare staff id is gone.
    let dev_form = browser
        .execute(
            "return document.querySelector('input[name=user]') !== null",
            serde_json::json!([]),
        )
        .await;
    assert_eq!(dev_form, serde_json::json!(false));
    browser.click("a[href='/login/start']").await;
    at_the_provider(&browser, "lo-2").await;
    let desk = browser.wait_for_text("Signed in as lo-2").await;
    assert!(desk.contains("Credit cases"), "{desk}");
    browser.wait_for_url("/console/cases").await;

    let signed_in = p
        .call(
            "ia-1",
            "audit",
            reqwest::Method::GET,
            "/v1/events?action=console.signed_in",
            None,
        )
        .await;
    let events = signed_in.ok(200)["items"].as_array().unwrap().clone();
    assert!(
        events.iter().any(
            |e| e["body"]["actor"] == "lo-2" && e["body"]["data"]["method"] == "single_sign_on"
        ),
        "{events:?}"
    );

    // Signing out ends the session: the desk asks for a sign-in again and
    // does not sign the person in by itself.
    browser
        .click("form[action='/logout'] button[type=submit]")
        .await;
    browser.wait_for_text("single sign-on").await;
    browser.goto(&format!("{market}/console/cases")).await;
    browser.wait_for_url("/login").await;
    browser
        .wait_for_text("Continue to the bank's sign-in")
        .await;
    let signed_out = p
        .call(
            "ia-1",
            "audit",
            reqwest::Method::GET,
            "/v1/events?action=console.signed_out",
            None,
        )
        .await;
    assert_eq!(signed_out.ok(200)["items"].as_array().unwrap().len(), 1);

    // Somebody the provider knows but who holds no market role today is
    // refused at the desk, and the refusal is audited (S8).
    browser.click("a[href='/login/start']").await;
    at_the_provider(&browser, "ba-1").await;
    browser
        .wait_for_text("You hold no role at this desk today.")
        .await;
    browser.quit().await;
    let refused = p
        .call(
            "ia-1",
            "audit",
            reqwest::Method::GET,
            "/v1/events?action=request.refused",
            None,
        )
        .await;
    assert!(
        refused.ok(200)["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["body"]["actor"] == "ba-1" && e["body"]["data"]["problem"] == "sso_no_role")
    );
    p.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn console_sign_on_callback_refuses_what_this_browser_did_not_start() {
    let port = free_port();
    let p = platform_signing_in_at(port).await;
    let _provider = provider_for(&p, port);
    let mut console = ConsoleClient::new(&p.url("market", ""));
    // A callback without the pending sign-in of this browser (login CSRF).
    let forged = console
        .get("/login/callback?code=stolen&state=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
        .await;
    assert_eq!(forged.status, StatusCode::BAD_REQUEST, "{}", forged.body);
    assert!(forged.body.contains("The sign-in was refused."));
    assert!(console.cookie("-session").is_none());

    // The start sets the pending sign-in and sends the browser to the provider
    // with a PKCE challenge; a callback with another state is refused.
    let start = console.get("/login/start").await;
    assert_eq!(start.status, StatusCode::SEE_OTHER);
    let to = start.location().unwrap().to_owned();
    assert!(to.starts_with(&IdentityProvider::issuer_on(port)), "{to}");
    assert!(to.contains("code_challenge_method=S256"), "{to}");
    assert!(console.cookie("-signin").is_some());
    let wrong_state = console
        .get("/login/callback?code=x&state=BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB")
        .await;
    assert_eq!(wrong_state.status, StatusCode::BAD_REQUEST);
    // A made-up code with the right state: the provider refuses it.
    let start = console.get("/login/start").await;
    let to = start.location().unwrap().to_owned();
    let state = to
        .split(['?', '&'])
        .find_map(|pair| pair.strip_prefix("state="))
        .unwrap()
        .to_owned();
    let made_up = console
        .get(&format!("/login/callback?code=made-up&state={state}"))
        .await;
    assert_eq!(made_up.status, StatusCode::UNAUTHORIZED, "{}", made_up.body);
    assert!(console.cookie("-session").is_none());
    let refusals = p
        .call(
            "ia-1",
            "audit",
            reqwest::Method::GET,
            "/v1/events?action=request.refused",
            None,
        )
        .await;
    let problems: Vec<String> = refusals.ok(200)["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["body"]["data"]["problem"].as_str().map(str::to_owned))
        .collect();
    for problem in ["sso_no_pending_sign_in", "sso_state", "sso_token"] {
        assert!(
            problems.iter().any(|p| p == problem),
            "{problem}: {problems:?}"
        );
    }
    // The development login is not offered where the provider signs in.
    let dev = console.post("/login", &[("user", "lo-2")]).await;
    assert_eq!(dev.status, StatusCode::NOT_FOUND);
    p.stop().await;
}
