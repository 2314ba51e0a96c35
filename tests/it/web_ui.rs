//! The settings pages (issue 6, point 4) in real headless Chromium, driven over WebDriver:
//! sign in, create a deploy token, see its secret once, reload and see it gone, revoke it
//! after a confirmation. Screenshots go to `target/screenshots/`. The CSRF and cookie rules
//! are checked with a plain HTTP client, which can send what a browser never would.
//!
//! Needs Debian's `chromium` and `chromium-driver`; without them the tests fail (they are
//! not skipped): `.ci/run` installs them.

use crate::common;

use std::path::PathBuf;

use chrono::{Datelike, Utc};
use common::http::{agent, answer, basic};
use common::web::{cookie, csrf_field, pair, set_cookies, user};
use common::webdriver::{require_chromium, Driver};
use common::{Env, Server};
use serde_json::json;

const PASSWORD: &str = "correct horse battery staple";
const PAGE: &str = "/-/projects/acme/app/settings/deploy_tokens";

/// `acme/app` with a maintainer (alice) and a developer (dave); `acme` has a maintainer
/// (gina) and an owner (olga).
fn env_with_people() -> Env {
    let env = Env::new();
    env.cli_ok(&["group", "create", "acme"]);
    env.cli_ok(&["project", "create", "acme/app"]);
    user(
        &env,
        "alice",
        PASSWORD,
        &[("--project", "acme/app", "maintainer")],
    );
    user(
        &env,
        "dave",
        PASSWORD,
        &[("--project", "acme/app", "developer")],
    );
    user(&env, "gina", PASSWORD, &[("--group", "acme", "maintainer")]);
    user(&env, "olga", PASSWORD, &[("--group", "acme", "owner")]);
    env
}

fn screenshots() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/screenshots")
}

/// `/jwt/auth` status for a pull of acme/app with these Basic credentials.
fn pull_status(server: &Server, username: &str, secret: &str) -> u16 {
    let url = format!(
        "{}/jwt/auth?service=container_registry&scope=repository:acme/app:pull",
        server.url
    );
    answer(
        agent()
            .get(&url)
            .set("Authorization", &basic(username, secret))
            .call(),
    )
    .status
}

#[test]
fn chromium_signs_in_creates_a_token_shows_its_secret_once_and_revokes_it() {
    require_chromium();
    let env = env_with_people();
    // The row is checked for "Never" after the token's first pull: uses are not written
    // during this test, so the page still shows the token as unused.
    let server = env.serve(&["--usage-flush-ms", "600000"]);
    let driver = Driver::start(&env.path("chromedriver.log"));
    let shots = screenshots();
    let b = driver.browser(1100, 1000);

    // Not signed in: the page sends us to the sign-in form, which refuses a wrong password.
    b.goto(&format!("{}{PAGE}", server.url));
    b.find("#username");
    assert!(
        b.current_url().contains("/-/sign_in?return_to="),
        "{}",
        b.current_url()
    );
    b.find("#username").type_text("alice");
    b.find("#password").type_text("not the password");
    b.find("#sign-in").click();
    let error = b.find("#sign-in-error");
    assert_eq!(error.text(), "Invalid username or password.");
    b.screenshot(&shots.join("01-sign-in-refused.png"));

    // The right password leads back to the page asked for.
    b.find("#username").clear();
    b.find("#username").type_text("alice");
    b.find("#password").type_text(PASSWORD);
    b.find("#sign-in").click();
    b.wait_url_ends_with(PAGE);
    assert_eq!(b.find("#signed-in-as").text(), "alice");
    b.find("#no-tokens");
    let session = b
        .cookies()
        .into_iter()
        .find(|c| c["name"] == "wvs_session")
        .expect("session cookie");
    assert_eq!(session["httpOnly"], true, "{session}");
    assert_eq!(session["sameSite"], "Strict", "{session}");
    assert_eq!(session["path"], "/", "{session}");
    b.screenshot(&shots.join("02-empty-page.png"));

    // Create: name, expiry (a date input; set as the browser's date picker would), custom
    // username, two scopes.
    let expiry = format!("{}-06-30", Utc::now().year() + 1);
    b.find("#token-name").type_text("production pull");
    b.execute(
        "document.getElementById('token-expires').value = arguments[0];",
        json!([expiry]),
    );
    b.find("#token-username").type_text("deployer-1");
    b.find("#scope-read_registry").click();
    b.find("#scope-read_repository").click();
    b.find("#create-token").click();

    // The secret, once, with a working copy button (JavaScript is on here).
    let secret = b.find("#new-token-secret").value();
    assert!(secret.starts_with("wvsdt-"), "{secret}");
    assert_eq!(b.find("#new-token-username").text(), "deployer-1");
    let copy = b.find("#copy-secret");
    assert!(
        copy.is_displayed(),
        "the copy button shows when script runs"
    );
    assert_eq!(
        b.find("#new-token-secret").attribute("readonly").as_deref(),
        Some("true")
    );
    b.screenshot(&shots.join("03-secret-shown-once.png"));
    assert_eq!(pull_status(&server, "deployer-1", &secret), 200);

    // Reload: the secret is gone, the token is listed.
    b.refresh();
    b.find("#tokens");
    assert!(
        b.try_find("#new-token-secret").is_none(),
        "secret shown again"
    );
    assert!(!b.source().contains(&secret), "secret still in the page");
    let row = b.find("#tokens tbody tr").text();
    for expected in [
        "production pull",
        "deployer-1",
        "read_repository, read_registry",
        expiry.as_str(),
        "Never",
        "Active",
    ] {
        assert!(row.contains(expected), "row {row:?} lacks {expected:?}");
    }
    b.screenshot(&shots.join("04-after-reload.png"));

    // Revoke, after a confirmation page.
    b.find("#tokens a.revoke").click();
    b.find("#confirm-revoke");
    assert!(
        b.title().starts_with("Revoke production pull"),
        "{}",
        b.title()
    );
    b.screenshot(&shots.join("05-confirm-revoke.png"));
    b.find("#confirm-revoke").click();
    b.find("#revoked-notice");
    b.wait_url_ends_with(PAGE);
    let row = b.find("#tokens tbody tr").text();
    assert!(row.contains("Revoked"), "{row}");
    assert!(
        b.try_find("#tokens a.revoke").is_none(),
        "a revoked token offers revoke"
    );
    b.screenshot(&shots.join("06-revoked.png"));
    assert_eq!(pull_status(&server, "deployer-1", &secret), 401);

    // A validation error shows next to its field.
    b.find("#token-name").type_text("no scopes");
    b.find("#create-token").click();
    let scopes_error = b.find("#scopes-error").text();
    assert!(!scopes_error.is_empty());
    assert_eq!(
        b.find("#token-name").value(),
        "no scopes",
        "the form keeps what was typed"
    );

    // Readable on a phone: nothing wider than the screen.
    let phone = driver.browser(390, 844);
    phone.goto(&format!("{}{PAGE}", server.url));
    phone.find("#username").type_text("alice");
    phone.find("#password").type_text(PASSWORD);
    phone.find("#sign-in").click();
    phone.find("#tokens");
    let fits = phone.execute(
        "return document.documentElement.scrollWidth <= window.innerWidth;",
        json!([]),
    );
    assert_eq!(fits, true, "the page scrolls sideways on a phone");
    phone.screenshot(&shots.join("07-phone.png"));

    // Signing out ends the session.
    b.find("#sign-out").click();
    b.find("#username");
    b.goto(&format!("{}{PAGE}", server.url));
    b.find("#username");
    assert!(b.current_url().contains("/-/sign_in"));
}

#[test]
fn chromium_shows_a_developer_no_tokens_and_a_group_maintainer_no_create_form() {
    require_chromium();
    let env = env_with_people();
    let server = env.serve(&[]);
    let driver = Driver::start(&env.path("chromedriver.log"));
    let sign_in = |name: &str, page: &str| {
        let b = driver.browser(1000, 800);
        b.goto(&format!("{}{page}", server.url));
        b.find("#username").type_text(name);
        b.find("#password").type_text(PASSWORD);
        b.find("#sign-in").click();
        b
    };

    let dev = sign_in("dave", PAGE);
    let message = dev.find("#error-message").text();
    assert!(message.contains("not allowed"), "{message}");
    assert!(dev.try_find("#tokens").is_none() && dev.try_find("#create-token").is_none());
    dev.screenshot(&screenshots().join("08-developer-refused.png"));
    dev.goto(&format!("{}/-/", server.url));
    assert!(
        dev.try_find("#projects").is_none(),
        "a developer manages nothing"
    );

    let group_page = "/-/groups/acme/settings/deploy_tokens";
    let maintainer = sign_in("gina", group_page);
    maintainer.find("#no-tokens");
    assert!(
        maintainer.try_find("#create-token").is_none(),
        "group maintainers only list"
    );

    let owner = sign_in("olga", group_page);
    owner.find("#token-name").type_text("group pull");
    owner.find("#scope-read_registry").click();
    owner.find("#create-token").click();
    assert!(owner
        .find("#new-token-secret")
        .value()
        .starts_with("wvsdt-"));
    // The index lists what each may manage.
    owner.goto(&format!("{}/-/", server.url));
    assert!(owner.find("#groups").text().contains("acme"));
    assert!(owner.find("#projects").text().contains("acme/app"));
    maintainer.refresh();
    assert!(maintainer.find("#tokens").text().contains("group pull"));
}

/// Session and CSRF rules a browser would never break, so a plain client checks them.
#[test]
fn forms_need_their_csrf_token_and_cookies_carry_strict_flags() {
    let env = env_with_people();
    let server = env.serve(&[]);
    let http = agent();
    let url = |p: &str| format!("{}{p}", server.url);

    // Not signed in: redirected to sign in.
    let a = answer(http.get(&url(PAGE)).call());
    assert_eq!(a.status, 303);
    assert!(a
        .header("location")
        .unwrap_or_default()
        .starts_with("/-/sign_in?return_to="));

    // The sign-in form sets a double-submit cookie and field.
    let (form, cookies) = set_cookies(http.get(&url("/-/sign_in")).call());
    assert_eq!(form.status, 200);
    let pre = cookie(&cookies, "wvs_sign_in_csrf")
        .expect("sign-in csrf cookie")
        .clone();
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(pre.contains(flag), "{pre} lacks {flag}");
    }
    let field = csrf_field(&form.body);
    let sign_in = |token: Option<&str>, cookie: Option<&str>| {
        let mut req = http.post(&url("/-/sign_in"));
        if let Some(c) = cookie {
            req = req.set("Cookie", c);
        }
        let mut fields = vec![("username", "alice"), ("password", PASSWORD)];
        if let Some(t) = token {
            fields.push(("csrf_token", t));
        }
        set_cookies(req.send_form(&fields))
    };
    assert_eq!(sign_in(None, Some(&pair(&pre))).0.status, 403);
    assert_eq!(sign_in(Some("forged"), Some(&pair(&pre))).0.status, 403);
    assert_eq!(sign_in(Some(&field), None).0.status, 403);
    let (signed, cookies) = sign_in(Some(&field), Some(&pair(&pre)));
    assert_eq!(signed.status, 303, "{}", signed.body);
    let session = cookie(&cookies, "wvs_session")
        .expect("session cookie")
        .clone();
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(session.contains(flag), "{session} lacks {flag}");
    }
    assert!(
        !session.contains("Secure"),
        "plain http gets no Secure cookie"
    );
    let session = pair(&session);

    // The page: never cached, never framed.
    let page = answer(http.get(&url(PAGE)).set("Cookie", &session).call());
    assert_eq!(page.status, 200);
    assert_eq!(page.header("cache-control"), Some("no-store"));
    assert_eq!(page.header("x-frame-options"), Some("DENY"));
    assert!(page
        .header("content-security-policy")
        .unwrap_or_default()
        .contains("frame-ancestors 'none'"));
    let token = csrf_field(&page.body);

    let create = |csrf: Option<&str>| {
        let mut fields = vec![("name", "ci"), ("scopes", "read_registry")];
        if let Some(c) = csrf {
            fields.push(("csrf_token", c));
        }
        answer(
            http.post(&url(PAGE))
                .set("Cookie", &session)
                .send_form(&fields),
        )
    };
    assert_eq!(create(None).status, 403);
    assert_eq!(create(Some("forged")).status, 403);
    let listed = env.cli_ok(&["token", "list", "--project", "acme/app", "--json"]);
    assert_eq!(listed.trim(), "[]", "a refused form created a token");
    let created = create(Some(&token));
    assert_eq!(created.status, 303, "{}", created.body);
    assert_eq!(created.header("location"), Some(PAGE));

    // The secret shows on the next page and not on the one after; the page is no-store.
    let shown = answer(http.get(&url(PAGE)).set("Cookie", &session).call());
    assert!(shown.body.contains("wvsdt-"));
    assert_eq!(shown.header("cache-control"), Some("no-store"));
    let again = answer(http.get(&url(PAGE)).set("Cookie", &session).call());
    assert!(!again.body.contains("wvsdt-"));

    // Revoking needs the token too.
    let listed: serde_json::Value =
        serde_json::from_str(&env.cli_ok(&["token", "list", "--project", "acme/app", "--json"]))
            .expect("json");
    let id = listed[0]["id"].as_i64().expect("id");
    let revoke = format!("{PAGE}/{id}/revoke");
    let refused = answer(
        http.post(&url(&revoke))
            .set("Cookie", &session)
            .send_form(&[]),
    );
    assert_eq!(refused.status, 403);
    let done = answer(
        http.post(&url(&revoke))
            .set("Cookie", &session)
            .send_form(&[("csrf_token", &token)]),
    );
    assert_eq!(done.status, 303);

    // Signing out needs it as well, and the old cookie opens nothing afterwards.
    assert_eq!(
        answer(
            http.post(&url("/-/sign_out"))
                .set("Cookie", &session)
                .send_form(&[])
        )
        .status,
        403
    );
    let out = answer(
        http.post(&url("/-/sign_out"))
            .set("Cookie", &session)
            .send_form(&[("csrf_token", &token)]),
    );
    assert_eq!(out.status, 303);
    assert_eq!(
        answer(http.get(&url(PAGE)).set("Cookie", &session).call()).status,
        303
    );
}

#[test]
fn an_https_public_url_makes_the_cookies_secure() {
    let env = env_with_people();
    let server = env.serve(&["--public-url", "https://auth.example.com"]);
    let (_, cookies) = set_cookies(agent().get(&format!("{}/-/sign_in", server.url)).call());
    let pre = cookie(&cookies, "wvs_sign_in_csrf").expect("cookie");
    assert!(pre.contains("Secure"), "{pre}");
}

/// The Packages page: a developer sees the packages but no delete; a maintainer deletes one
/// after a confirmation, and it is gone from the page and from downloads.
#[test]
fn chromium_lists_packages_and_a_maintainer_deletes_one() {
    require_chromium();
    let env = env_with_people();
    let writer = env.token(
        &["--project", "acme/app"],
        "read_package_registry,write_package_registry",
        &[],
    );
    let server = env.serve(&[]);
    let url = |name: &str, version: &str| {
        format!(
            "{}/api/v4/projects/acme%2Fapp/packages/generic/{name}/{version}/{name}.bin",
            server.url
        )
    };
    for (name, version, size) in [("tool", "1.0.0", 3000), ("agent", "2.1.0", 10)] {
        let a = answer(
            agent()
                .put(&url(name, version))
                .set("Deploy-Token", &writer.secret)
                .send_bytes(&vec![b'x'; size]),
        );
        assert_eq!(a.status, 201, "{a:?}");
    }
    let driver = Driver::start(&env.path("chromedriver.log"));
    let shots = screenshots();
    let packages_page = "/-/projects/acme/app/packages";
    let sign_in = |b: &common::webdriver::Browser, who: &str| {
        b.goto(&format!("{}{packages_page}", server.url));
        b.find("#username").type_text(who);
        b.find("#password").type_text(PASSWORD);
        b.find("#sign-in").click();
        b.wait_url_ends_with(packages_page);
    };

    let dev = driver.browser(1100, 900);
    sign_in(&dev, "dave");
    let rows: Vec<String> = dev
        .find_all("#packages tbody tr")
        .iter()
        .map(|r| r.text())
        .collect();
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert!(
        rows[0].contains("agent") && rows[0].contains("2.1.0"),
        "{rows:?}"
    );
    assert!(
        rows[1].contains("tool") && rows[1].contains("generic"),
        "{rows:?}"
    );
    assert!(rows[1].contains("2.9 KiB"), "{rows:?}");
    assert!(
        dev.try_find("#packages a.delete").is_none(),
        "a developer may not delete"
    );

    let b = driver.browser(1100, 900);
    sign_in(&b, "alice");
    b.screenshot(&shots.join("20-packages.png"));
    b.find("#package-1 a.delete").click();
    b.find("#confirm-delete");
    assert!(b.source().contains("tool"), "{}", b.source());
    b.screenshot(&shots.join("21-delete-package.png"));
    b.find("#confirm-delete").click();
    b.wait_url_ends_with(packages_page);
    assert!(b.find("#deleted-notice").text().contains("tool 1.0.0"));
    let rows = b.find_all("#packages tbody tr");
    assert_eq!(rows.len(), 1);
    assert!(rows[0].text().contains("agent"));
    b.screenshot(&shots.join("22-package-deleted.png"));
    let gone = answer(
        agent()
            .get(&url("tool", "1.0.0"))
            .set("Deploy-Token", &writer.secret)
            .call(),
    );
    assert_eq!(gone.status, 404, "{gone:?}");
    let audit = env.cli_ok(&["audit"]);
    assert!(audit.contains("package_deleted"), "{audit}");
    assert!(audit.contains("actor=alice"), "{audit}");
}

/// Behind a balancer without sticky sessions (SPEC §7): the session made on one instance
/// works on another, and a secret created through one instance is shown once by whichever
/// renders the page next; the message is deleted as it is shown, so neither shows it again.
#[test]
fn a_new_secret_shows_once_on_whichever_instance_renders_the_page() {
    let env = env_with_people();
    let (a, b) = (env.serve(&[]), env.serve(&[]));
    let http = agent();
    let (form, cookies) = set_cookies(http.get(&format!("{}/-/sign_in", a.url)).call());
    let pre = pair(cookie(&cookies, "wvs_sign_in_csrf").expect("sign-in csrf cookie"));
    let (signed, cookies) = set_cookies(
        http.post(&format!("{}/-/sign_in", a.url))
            .set("Cookie", &pre)
            .send_form(&[
                ("username", "alice"),
                ("password", PASSWORD),
                ("csrf_token", &csrf_field(&form.body)),
            ]),
    );
    assert_eq!(signed.status, 303, "{}", signed.body);
    let session = pair(cookie(&cookies, "wvs_session").expect("session cookie"));
    let page = |server: &Server| {
        answer(
            http.get(&format!("{}{PAGE}", server.url))
                .set("Cookie", &session)
                .call(),
        )
    };
    let on_b = page(&b);
    assert_eq!(
        on_b.status, 200,
        "the session is known to the other instance"
    );
    let csrf = csrf_field(&on_b.body);
    let created = answer(
        http.post(&format!("{}{PAGE}", a.url))
            .set("Cookie", &session)
            .send_form(&[
                ("name", "ci"),
                ("scopes", "read_registry"),
                ("csrf_token", &csrf),
            ]),
    );
    assert_eq!(created.status, 303, "{}", created.body);
    let shown = page(&b);
    let secret: String = shown
        .body
        .split("wvsdt-")
        .nth(1)
        .map(|rest| {
            rest.chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
                .collect()
        })
        .unwrap_or_else(|| panic!("no secret on the other instance: {}", shown.body));
    let listed: serde_json::Value =
        serde_json::from_str(&env.cli_ok(&["token", "list", "--project", "acme/app", "--json"]))
            .expect("json");
    let username = listed[0]["username"]
        .as_str()
        .expect("username")
        .to_string();
    assert_eq!(
        pull_status(&b, &username, &format!("wvsdt-{secret}")),
        200,
        "the secret shown is the token's"
    );
    for server in [&a, &b] {
        assert!(
            !page(server).body.contains("wvsdt-"),
            "shown a second time by {}",
            server.url
        );
    }
    // Nothing of the secret is stored in the clear on the way.
    for (place, bytes) in env.stored() {
        assert!(
            !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "the secret is stored in the clear in {}",
            place.display()
        );
    }
}
