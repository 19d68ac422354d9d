//! `osmem-server`: an in-memory OpenSearch-compatible server, standing in
//! for Elasticsearch to check that the index templates load and map as intended.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use super::http::{self, Response};
use super::repo_root;

/// Where the binary is: `$WEIR_TOOLS_DIR/osmem-server`, else
/// `<root>/.tools/bin/osmem-server` (installed by `cargo xtask tools`), else
/// `/tmp/tools/x/osmem_server/bin/osmem-server`.
pub fn binary() -> Result<PathBuf, String> {
    let mut candidates = Vec::new();
    if let Some(dir) = std::env::var_os("WEIR_TOOLS_DIR").filter(|d| !d.is_empty()) {
        candidates.push(PathBuf::from(dir).join("osmem-server"));
    }
    candidates.push(repo_root().join(".tools/bin/osmem-server"));
    candidates.push(PathBuf::from("/tmp/tools/x/osmem_server/bin/osmem-server"));
    candidates
        .iter()
        .find(|p| p.is_file())
        .cloned()
        .ok_or_else(|| {
            format!(
                "osmem-server not found (looked at {}); run `cargo xtask tools`",
                candidates
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })
}

/// A running server on a free loopback port, killed on drop.
pub struct Osmem {
    child: Child,
    pub url: String,
}

impl Osmem {
    /// Starts the server and waits for it to report its address.
    pub fn start() -> Result<Osmem, String> {
        let bin = binary()?;
        let mut child = Command::new(&bin)
            .args(["-addr", "127.0.0.1:0", "-no-stdin-watch", "-parent-pid"])
            .arg(std::process::id().to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
        // First stdout line: {"url":"http://127.0.0.1:PORT",...}
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(line) => line,
            Err(_) => {
                let _ = child.kill();
                return Err(format!(
                    "{} did not report its address within 20 s",
                    bin.display()
                ));
            }
        };
        let url = serde_json::from_str::<serde_json::Value>(&line)
            .ok()
            .and_then(|v| v["url"].as_str().map(str::to_owned));
        match url {
            Some(url) => Ok(Osmem { child, url }),
            None => {
                let _ = child.kill();
                Err(format!(
                    "{} printed {line:?} instead of its address",
                    bin.display()
                ))
            }
        }
    }

    pub fn get(&self, path: &str) -> Response {
        http::request(&self.url, "GET", path, None, b"").unwrap_or_else(|e| panic!("osmem: {e}"))
    }

    pub fn put_json(&self, path: &str, body: &str) -> Response {
        http::request(
            &self.url,
            "PUT",
            path,
            Some("application/json"),
            body.as_bytes(),
        )
        .unwrap_or_else(|e| panic!("osmem: {e}"))
    }

    pub fn post(&self, path: &str, content_type: &str, body: &str) -> Response {
        http::request(&self.url, "POST", path, Some(content_type), body.as_bytes())
            .unwrap_or_else(|e| panic!("osmem: {e}"))
    }
}

impl Drop for Osmem {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
