//! `weir control import`: a host's files (its tenants and their modules
//! folders) written into the control topic once, to move from
//! `control.mode = "files"` to a fleet.

use std::path::Path;

use anyhow::Context as _;

use super::record::{self, ControlKey, ModuleRecord, TenantRecord};
use crate::config::{Config, FLEET_MARKER, valid_module_name};
use crate::runtime::digest_of;

/// What an import wrote.
#[derive(Debug, Default, serde::Serialize)]
pub struct ImportReport {
    pub tenants: Vec<String>,
    /// `<tenant>/<module>` with its digest.
    pub modules: Vec<(String, String)>,
    /// Offset of the last record written.
    pub last_offset: i64,
}

/// Writes every tenant of `config` (its file's text) and every
/// `<name>.wasm` of its modules folder into the control topic (created
/// if missing): modules first, so a host that reads the topic finds a
/// tenant's modules before the tenant.
pub async fn import(config: &Config) -> anyhow::Result<ImportReport> {
    super::create_topic(config).await?;
    let producer = super::producer(config)?;
    let topic = &config.control.topic;
    let mut records: Vec<(String, Option<Vec<u8>>)> = Vec::new();
    let mut report = ImportReport::default();
    for tenant in config.tenant_set.values() {
        for (name, bytes) in module_files(&tenant.modules_dir)? {
            let digest = digest_of(&bytes);
            records.extend(
                record::chunk_records(
                    &tenant.id,
                    &digest,
                    &bytes,
                    config.control.chunk_bytes,
                    None,
                )
                .into_iter()
                .map(|(k, v)| (k, Some(v))),
            );
            let module = ModuleRecord {
                by: None,
                digest: digest.clone(),
                versions: vec![digest.clone()],
            };
            records.push((
                ControlKey::Module {
                    tenant: tenant.id.clone(),
                    name: name.clone(),
                }
                .render(),
                Some(serde_json::to_vec(&module)?),
            ));
            report
                .modules
                .push((format!("{}/{name}", tenant.id), digest));
        }
    }
    for tenant in config.tenant_set.values() {
        let text = std::fs::read_to_string(&tenant.file)
            .with_context(|| format!("reading {}", tenant.file.display()))?;
        let text = text.strip_prefix(FLEET_MARKER).unwrap_or(&text).to_string();
        let value = serde_json::to_vec(&TenantRecord { by: None, text })?;
        records.push((ControlKey::Tenant(tenant.id.clone()).render(), Some(value)));
        report.tenants.push(tenant.id.clone());
    }
    report.last_offset = super::produce_all(&producer, topic, &records)
        .await
        .map_err(anyhow::Error::msg)?;
    Ok(report)
}

/// `(name, bytes)` of every `<name>.wasm` in `dir` (none if it is absent).
fn module_files(dir: &Path) -> anyhow::Result<Vec<(String, Vec<u8>)>> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        let Some(name) = path
            .file_stem()
            .filter(|_| path.extension().is_some_and(|x| x == "wasm"))
            .and_then(|s| s.to_str())
            .filter(|n| valid_module_name(n))
        else {
            continue;
        };
        if path.is_file() {
            let bytes =
                std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
            out.push((name.to_string(), bytes));
        }
    }
    out.sort();
    Ok(out)
}
