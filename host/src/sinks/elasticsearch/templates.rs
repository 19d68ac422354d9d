//! Index templates installed at startup (`PUT _index_template/{name}`), so
//! indices the sink creates get the intended mappings.

use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use elasticsearch::Elasticsearch;
use elasticsearch::http::Method;
use elasticsearch::http::headers::{CONTENT_TYPE, HeaderMap, HeaderValue};
use serde::de::IgnoredAny;

use super::SinkError;
use super::response::error_summary;
use crate::config::{TemplateConfig, resolve_path as resolve};

/// A template read from disk and checked to be a JSON object.
#[derive(Debug, Clone)]
pub struct Template {
    pub name: String,
    pub file: PathBuf,
    pub body: Bytes,
}

/// Reads every configured template; relative paths resolve against `base_dir`.
pub fn load(templates: &[TemplateConfig], base_dir: &Path) -> Result<Vec<Template>, SinkError> {
    templates
        .iter()
        .map(|t| {
            let file = resolve(base_dir, &t.path);
            let err = |reason: String| SinkError::Template {
                name: t.name.clone(),
                file: file.clone(),
                reason,
            };
            let body = std::fs::read(&file).map_err(|e| err(format!("cannot read: {e}")))?;
            if body.trim_ascii_start().first() != Some(&b'{') {
                return Err(err("not a JSON object".to_owned()));
            }
            serde_json::from_slice::<IgnoredAny>(&body)
                .map_err(|e| err(format!("invalid JSON: {e}")))?;
            Ok(Template {
                name: t.name.clone(),
                file,
                body: body.into(),
            })
        })
        .collect()
}

/// Installs (creates or replaces) each template, in order.
pub async fn install(
    client: &Elasticsearch,
    templates: &[Template],
    timeout: Duration,
) -> Result<(), SinkError> {
    for t in templates {
        let err = |reason: String| SinkError::Template {
            name: t.name.clone(),
            file: t.file.clone(),
            reason,
        };
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        // Names are validated to `[a-z0-9._-]`, which needs no path escaping.
        let path = format!("/_index_template/{}", t.name);
        let resp = client
            .send::<_, ()>(
                Method::Put,
                &path,
                headers,
                None,
                Some(t.body.clone()),
                Some(timeout),
            )
            .await
            .map_err(|e| err(format!("request failed: {e}")))?;
        let status = resp.status_code().as_u16();
        if !(200..300).contains(&status) {
            let body = resp.bytes().await.unwrap_or_default();
            return Err(err(format!(
                "Elasticsearch refused it (HTTP {status}): {}",
                error_summary(&body)
            )));
        }
        tracing::info!(template = %t.name, file = %t.file.display(), "index template installed");
    }
    Ok(())
}
