//! [`Osmem`]: a real, in-memory OpenSearch-compatible server process
//! (`osmem-server`) standing in for Elasticsearch.

use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::es::EsClient;
use crate::process::{Process, free_port};
use crate::tools::osmem_bin;

/// How long `osmem-server` gets to answer `GET /`.
const READY_TIMEOUT: Duration = Duration::from_secs(20);

/// A running `osmem-server` on a free port of 127.0.0.1, killed on drop.
///
/// It speaks the Elasticsearch REST API closely enough for bulk indexing
/// (per-item errors included, gzip bodies too), index templates, `_count`,
/// `_search` and scrolls. It is slow (about 6,000 documents/s): size tests
/// accordingly, and use [`NoopBulk`](crate::NoopBulk) for throughput.
#[derive(Debug)]
pub struct Osmem {
    process: Process,
    url: String,
}

impl Osmem {
    /// Starts the server and waits until it answers `GET /`.
    ///
    /// Fails if the binary is missing (run `cargo xtask tools`) or the server
    /// does not come up; the error then quotes its log.
    pub async fn start() -> Result<Osmem> {
        let bin = osmem_bin()?;
        let mut last_error = None;
        for _ in 0..3 {
            let port = free_port();
            let mut command = Command::new(&bin);
            command
                .arg("-addr")
                .arg(format!("127.0.0.1:{port}"))
                .arg("-no-stdin-watch")
                .arg("-parent-pid")
                .arg(std::process::id().to_string());
            let process = Process::spawn("osmem", command)?;
            let url = format!("http://127.0.0.1:{port}");
            match wait_ready(&process, &url).await {
                Ok(()) => return Ok(Osmem { process, url }),
                // Most likely someone took the port: try another.
                Err(e) => last_error = Some(e),
            }
        }
        Err(last_error.expect("at least one attempt"))
    }

    /// Base URL, e.g. `http://127.0.0.1:41234`.
    pub fn url(&self) -> String {
        self.url.clone()
    }

    /// An [`EsClient`] for this server.
    pub fn client(&self) -> EsClient {
        EsClient::new(&self.url)
    }

    /// The server process (for its log, or to kill it mid-test).
    pub fn process(&self) -> &Process {
        &self.process
    }

    /// Kills the server.
    pub fn stop(self) {
        drop(self);
    }
}

async fn wait_ready(process: &Process, url: &str) -> Result<()> {
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(2))
        .build()?;
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        process.ensure_running()?;
        match http.get(url).send().await {
            Ok(response) if response.status().is_success() => return Ok(()),
            Ok(response) => {
                let status = response.status();
                if Instant::now() >= deadline {
                    bail!("osmem at {url} answers {status}{}", process.log_excerpt());
                }
            }
            Err(e) if Instant::now() >= deadline => {
                return Err(e).context(format!(
                    "osmem at {url} not ready after {READY_TIMEOUT:?}{}",
                    process.log_excerpt()
                ));
            }
            Err(_) => {}
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
