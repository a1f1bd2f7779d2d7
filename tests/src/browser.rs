//! Headless Chromium for the console's tests: Debian's `chromium`, driven over WebDriver by
//! Debian's `chromedriver` on a free port (both installed by `.ci/run`; no browser download).

use std::process::Stdio;
use std::time::Duration;

use fantoccini::wd::Capabilities;
use fantoccini::{Client, ClientBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::json;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// One browser: its driver process (killed on drop) and the WebDriver session.
pub struct Browser {
    pub client: Client,
    _driver: tokio::process::Child,
    _profile: TempDir,
}

/// A profile directory of its own, removed on drop.
struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Browser {
    /// A fresh headless browser with a `width`×`height` window (a phone's viewport below 500 px).
    pub async fn start(width: u32, height: u32) -> Browser {
        for tool in [CHROMIUM, CHROMEDRIVER] {
            assert!(
                std::path::Path::new(tool).exists(),
                "{tool} is missing: install Debian's chromium and chromium-driver (`.ci/run` does)"
            );
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let driver = tokio::process::Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("chromedriver starts");
        let profile = std::env::temp_dir().join(format!("lemdash-chromium-{port}-{}", std::process::id()));
        let mut caps = Capabilities::new();
        let mut options = json!({
                "binary": CHROMIUM,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    "--disable-dev-shm-usage", format!("--window-size={width},{height}"),
                    format!("--user-data-dir={}", profile.display()),
                ],
        });
        // Chromium's windows are at least 500 px wide: a phone is emulated instead.
        if width < 500 {
            options["mobileEmulation"] =
                json!({"deviceMetrics": {"width": width, "height": height, "pixelRatio": 2}});
        }
        caps.insert("goog:chromeOptions".into(), options);
        let url = format!("http://127.0.0.1:{port}");
        let mut last = None;
        for _ in 0..100 {
            match ClientBuilder::new(HttpConnector::new()).capabilities(caps.clone()).connect(&url).await {
                Ok(client) => {
                    return Browser { client, _driver: driver, _profile: TempDir(profile) };
                }
                Err(e) => last = Some(e.to_string()),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("chromedriver did not start a session: {last:?}");
    }

    /// Evaluates `script` (a function body; `arguments` are `args`) in the page.
    pub async fn eval(&self, script: &str, args: Vec<serde_json::Value>) -> serde_json::Value {
        self.client.execute(script, args).await.unwrap_or_else(|e| panic!("{script}: {e}"))
    }

    /// Waits (up to 20 s) until `script` returns something truthy; returns it.
    pub async fn until(&self, what: &str, script: &str) -> serde_json::Value {
        let mut value = serde_json::Value::Null;
        for _ in 0..200 {
            value = self.eval(script, vec![]).await;
            let truthy = !matches!(&value, serde_json::Value::Null | serde_json::Value::Bool(false))
                && value != json!(0)
                && value != json!("");
            if truthy {
                return value;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("waited 20 s for {what}; last {value}");
    }

    /// Writes a screenshot of the page to `target/screenshots/{name}.png`; returns its path.
    pub async fn screenshot(&self, name: &str) -> std::path::PathBuf {
        let png = self.client.screenshot().await.expect("a screenshot");
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/screenshots");
        std::fs::create_dir_all(&dir).expect("the screenshots folder");
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).expect("the screenshot is written");
        path
    }

    pub async fn close(self) {
        let _ = self.client.close().await;
    }
}
