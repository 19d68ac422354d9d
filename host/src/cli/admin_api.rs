//! The admin API as the CLI calls it: address, token, and errors that
//! carry the server's message.

use anyhow::{Context, bail};
use reqwest::{Method, RequestBuilder, StatusCode};
use serde_json::Value;

/// `--admin` and `--token`, shared by the subcommands that call the API.
#[derive(clap::Args, Clone)]
pub struct Endpoint {
    /// The running host's admin address.
    #[arg(
        long,
        env = "WEIR_ADMIN",
        default_value = "http://127.0.0.1:9464",
        global = true
    )]
    pub admin: String,
    /// API token (operator or tenant); `weir tenants token` makes one.
    #[arg(long, env = "WEIR_TOKEN", global = true, hide_env_values = true)]
    pub token: Option<String>,
}

pub struct Api {
    base: String,
    token: Option<String>,
    http: reqwest::Client,
}

/// A refusal by the server: status and its `error` message.
#[derive(Debug, thiserror::Error)]
#[error("{message} (HTTP {status})")]
pub struct Refused {
    pub status: StatusCode,
    pub message: String,
}

impl Api {
    pub fn new(endpoint: &Endpoint) -> Self {
        Self {
            base: endpoint.admin.trim_end_matches('/').to_string(),
            token: endpoint.token.clone().filter(|t| !t.is_empty()),
            http: reqwest::Client::new(),
        }
    }

    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let r = self.http.request(method, format!("{}{path}", self.base));
        match &self.token {
            Some(t) => r.bearer_auth(t),
            None => r,
        }
    }

    /// Sends and returns the JSON answer, or the server's refusal.
    pub async fn send(&self, request: RequestBuilder) -> anyhow::Result<Value> {
        let text = self.send_text(request).await?;
        serde_json::from_str(&text)
            .context("the admin endpoint answered something that is not JSON")
    }

    /// Sends and returns the body as text, or the server's refusal.
    pub async fn send_text(&self, request: RequestBuilder) -> anyhow::Result<String> {
        let resp = request
            .send()
            .await
            .with_context(|| format!("reaching the admin endpoint at {}", self.base))?;
        let status = resp.status();
        let text = resp.text().await?;
        if status.is_success() {
            return Ok(text);
        }
        let message = serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|v| v["error"].as_str().map(String::from))
            .unwrap_or_else(|| text.trim().to_string());
        let hint = match status {
            StatusCode::UNAUTHORIZED if self.token.is_none() => "; pass --token or set WEIR_TOKEN",
            _ => "",
        };
        Err(Refused {
            status,
            message: format!("{message}{hint}"),
        }
        .into())
    }

    pub async fn get(&self, path: &str) -> anyhow::Result<Value> {
        self.send(self.request(Method::GET, path)).await
    }
}

/// A path segment, percent-encoded so a name cannot change the route.
pub fn segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Refuses an empty tenant id early, with a clear message.
pub fn require_tenant(tenant: Option<&str>, what: &str) -> anyhow::Result<String> {
    match tenant {
        Some(t) if !t.is_empty() => Ok(t.to_string()),
        _ => bail!("{what} needs --tenant <id>"),
    }
}

#[cfg(test)]
mod tests {
    use super::segment;

    #[test]
    fn segments_cannot_change_the_route() {
        assert_eq!(segment("acme.tweets"), "acme.tweets");
        assert_eq!(segment("a/b"), "a%2Fb");
        assert_eq!(segment("x y?#"), "x%20y%3F%23");
    }
}
