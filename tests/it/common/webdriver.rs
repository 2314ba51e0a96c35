//! A small W3C WebDriver client for the browser tests: starts Debian's `chromedriver` on a
//! free loopback port (killed with its browsers on drop) and speaks the JSON protocol to it
//! with ureq. Only what the settings-page tests use.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{json, Value};

use super::{free_port, have, Server};

/// W3C's key for an element reference in JSON.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";
/// Bound for waiting on a page to show something.
const WAIT: Duration = Duration::from_secs(20);

/// Fails the test (never skips it) when the browser is not installed.
pub fn require_chromium() {
    for tool in ["chromium", "chromedriver"] {
        assert!(
            have(tool),
            "{tool} is not on PATH: the settings-page tests drive Debian's headless Chromium \
             (apt-get install chromium chromium-driver; .ci/run installs them)"
        );
    }
}

/// A running chromedriver, in its own process group so the browsers it started die with it
/// (a [`Server`] kills its whole group on drop).
pub struct Driver {
    process: Server,
}

impl Driver {
    pub fn start(log: &Path) -> Self {
        require_chromium();
        let port = free_port();
        let log = std::fs::File::create(log).expect("chromedriver log");
        let mut cmd = Command::new("chromedriver");
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let child = cmd
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn chromedriver");
        let driver = Self {
            process: Server {
                child,
                url: format!("http://127.0.0.1:{port}"),
                port,
            },
        };
        let start = Instant::now();
        loop {
            let ready = ureq::get(&format!("{}/status", driver.process.url))
                .timeout(Duration::from_millis(500))
                .call()
                .ok()
                .and_then(|r| r.into_json::<Value>().ok())
                .is_some_and(|v| v["value"]["ready"] == true);
            if ready {
                break;
            }
            assert!(
                start.elapsed() < WAIT,
                "chromedriver not ready after {WAIT:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        driver
    }

    /// A new headless browser window of `width`×`height` CSS pixels.
    pub fn browser(&self, width: u32, height: u32) -> Browser {
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "pageLoadStrategy": "normal",
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--no-first-run",
                         "--disable-extensions", "--password-store=basic",
                         format!("--window-size={width},{height}")]
            }
        }}});
        let v = call(
            ureq::post(&format!("{}/session", self.process.url)),
            Some(caps),
        );
        let id = v["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session id in {v}"))
            .to_string();
        Browser {
            base: format!("{}/session/{id}", self.process.url),
        }
    }
}

/// One WebDriver session (a browser window); closed on drop.
pub struct Browser {
    base: String,
}

/// An element on the current page.
pub struct Element<'a> {
    browser: &'a Browser,
    id: String,
}

impl Browser {
    fn get(&self, path: &str) -> Value {
        call(ureq::get(&format!("{}{path}", self.base)), None)
    }

    fn post(&self, path: &str, body: Value) -> Value {
        call(ureq::post(&format!("{}{path}", self.base)), Some(body))
    }

    pub fn goto(&self, url: &str) {
        self.post("/url", json!({ "url": url }));
    }

    pub fn current_url(&self) -> String {
        self.get("/url").as_str().unwrap_or_default().to_string()
    }

    pub fn refresh(&self) {
        self.post("/refresh", json!({}));
    }

    pub fn source(&self) -> String {
        self.get("/source").as_str().unwrap_or_default().to_string()
    }

    pub fn title(&self) -> String {
        self.get("/title").as_str().unwrap_or_default().to_string()
    }

    /// The element matching `css`, if the page has one now.
    pub fn try_find(&self, css: &str) -> Option<Element<'_>> {
        let v = self.post("/elements", json!({"using": "css selector", "value": css}));
        v.as_array()?.first().map(|e| self.element(e))
    }

    /// Waits (bounded) for an element matching `css`.
    pub fn find(&self, css: &str) -> Element<'_> {
        let start = Instant::now();
        loop {
            if let Some(e) = self.try_find(css) {
                return e;
            }
            assert!(
                start.elapsed() < WAIT,
                "no element {css:?} on {} after {WAIT:?}; page:\n{}",
                self.current_url(),
                self.source()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn find_all(&self, css: &str) -> Vec<Element<'_>> {
        let v = self.post("/elements", json!({"using": "css selector", "value": css}));
        v.as_array()
            .map(|a| a.iter().map(|e| self.element(e)).collect())
            .unwrap_or_default()
    }

    fn element(&self, v: &Value) -> Element<'_> {
        Element {
            browser: self,
            id: v[ELEMENT_KEY].as_str().expect("element id").to_string(),
        }
    }

    /// Waits (bounded) until the address bar shows a URL ending in `suffix`.
    pub fn wait_url_ends_with(&self, suffix: &str) {
        let start = Instant::now();
        while !self.current_url().ends_with(suffix) {
            assert!(
                start.elapsed() < WAIT,
                "still on {} after {WAIT:?}, expected …{suffix}",
                self.current_url()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn execute(&self, script: &str, args: Value) -> Value {
        self.post("/execute/sync", json!({ "script": script, "args": args }))
    }

    /// The browser's cookies for the current page, with their flags.
    pub fn cookies(&self) -> Vec<Value> {
        self.get("/cookie").as_array().cloned().unwrap_or_default()
    }

    /// Saves a PNG of the viewport to `path`.
    pub fn screenshot(&self, path: &Path) {
        let v = self.get("/screenshot");
        let png = base64::engine::general_purpose::STANDARD
            .decode(v.as_str().expect("screenshot base64"))
            .expect("screenshot decodes");
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).expect("screenshot dir");
        }
        std::fs::write(path, png).expect("write screenshot");
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = ureq::delete(&self.base)
            .timeout(Duration::from_secs(10))
            .call();
    }
}

impl Element<'_> {
    fn path(&self, tail: &str) -> String {
        format!("/element/{}{tail}", self.id)
    }

    pub fn click(&self) {
        self.browser.post(&self.path("/click"), json!({}));
    }

    pub fn type_text(&self, text: &str) {
        self.browser
            .post(&self.path("/value"), json!({ "text": text }));
    }

    pub fn clear(&self) {
        self.browser.post(&self.path("/clear"), json!({}));
    }

    pub fn text(&self) -> String {
        self.browser
            .get(&self.path("/text"))
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// The live `value` property (what an input holds now).
    pub fn value(&self) -> String {
        self.browser
            .get(&self.path("/property/value"))
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    pub fn attribute(&self, name: &str) -> Option<String> {
        self.browser
            .get(&self.path(&format!("/attribute/{name}")))
            .as_str()
            .map(str::to_string)
    }

    pub fn is_displayed(&self) -> bool {
        self.browser.get(&self.path("/displayed")) == true
    }

    /// Saves a PNG of just this element.
    pub fn screenshot(&self, path: &Path) {
        let v = self.browser.get(&self.path("/screenshot"));
        let png = base64::engine::general_purpose::STANDARD
            .decode(v.as_str().expect("screenshot base64"))
            .expect("screenshot decodes");
        std::fs::write(path, png).expect("write screenshot");
    }
}

/// One WebDriver command; its `value`, or a panic naming the WebDriver error.
fn call(req: ureq::Request, body: Option<Value>) -> Value {
    let req = req.timeout(Duration::from_secs(60));
    let result = match body {
        Some(b) => req.send_json(b),
        None => req.call(),
    };
    let response = match result {
        Ok(r) => r,
        Err(ureq::Error::Status(code, r)) => {
            let body = r.into_string().unwrap_or_default();
            panic!("WebDriver answered {code}: {body}");
        }
        Err(e) => panic!("WebDriver unreachable: {e}"),
    };
    let mut v: Value = response.into_json().expect("WebDriver JSON");
    v["value"].take()
}
