//! `[tenants]` in `weir.toml` and one `tenants/<id>.toml` per tenant.
//!
//! A tenant's pipelines join the host's pipelines under the name
//! `<tenant>.<pipeline>`; everything they touch is checked against what the
//! tenant owns (topic and index prefixes, its modules folder, its outbound
//! hosts) when the config is loaded, so a bad tenant file is refused whole,
//! naming the file and the key, and the running config stays.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::quotas::quota_problem;
use super::{
    BreakerConfig, ElasticsearchAuth, EnvLookup, HostPattern, PipelineConfig, Problems,
    QuotaOverrides, Quotas, TenantBinding, TenantElasticsearch, UpstreamConfig, UpstreamUrl,
};

/// `[tenants]`: where tenant files live and what every tenant gets.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct TenantsConfig {
    /// Folder with one `<id>.toml` per tenant, relative to the config
    /// file; `""` (the default) means a single-tenant host.
    pub dir: PathBuf,
    /// `[tenants.defaults]`: quotas of a tenant whose file doesn't set them.
    pub defaults: Quotas,
    /// `[tenants.breaker]`: when a failing pipeline backs off.
    pub breaker: BreakerConfig,
    /// The environment variables a tenant file may name for its
    /// upstreams' and Elasticsearch secrets start with this, then the
    /// tenant's id in capitals (`-` as `_`), then `_`:
    /// `WEIR_TENANT_ACME_TOKEN` for tenant `acme`.
    /// So no tenant can read the host's secrets or another tenant's.
    pub env_prefix: String,
}

impl Default for TenantsConfig {
    fn default() -> Self {
        Self {
            dir: PathBuf::new(),
            defaults: Quotas::default(),
            breaker: BreakerConfig::default(),
            env_prefix: "WEIR_TENANT_".into(),
        }
    }
}

/// `tenants/<id>.toml`: what one tenant owns.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TenantFile {
    /// sha256 (hex) of the tenant's admin API token; `weir tenants token`
    /// makes a token and prints this line. No hash: no API access.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_sha256: Option<String>,
    /// Share of Wasm execution when tenants compete (default 1).
    #[serde(default = "default_weight")]
    pub weight: u32,
    /// Every index the tenant's pipelines write to starts with this;
    /// default `<id>-`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index_prefix: Option<String>,
    /// Topics the tenant may consume and dead-letter to start with one of
    /// these; default `["<id>."]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub topic_prefixes: Vec<String>,
    /// The tenant's modules folder, relative to the tenants folder; module
    /// paths in its pipelines are relative to it and may not leave it.
    /// Default `<id>/modules`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modules_dir: Option<PathBuf>,
    /// Hosts the tenant's pipelines may list in their
    /// `allowed_outbound_hosts` (each pipeline entry must appear here).
    #[serde(default)]
    pub allowed_outbound_hosts: Vec<String>,
    #[serde(default)]
    pub quotas: QuotaOverrides,
    /// The tenant's credentials, added only to its own modules' requests.
    #[serde(default)]
    pub upstreams: BTreeMap<String, UpstreamConfig>,
    /// `[elasticsearch]`: the credentials the tenant's documents are
    /// indexed with; default: the host's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub elasticsearch: Option<TenantElasticsearch>,
    #[serde(default)]
    pub pipelines: BTreeMap<String, PipelineConfig>,
}

fn default_weight() -> u32 {
    1
}

/// A loaded tenant, with defaults applied and paths resolved.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Tenant {
    pub id: String,
    /// The file it came from.
    pub file: PathBuf,
    #[serde(skip)]
    pub token_sha256: Option<String>,
    pub weight: u32,
    pub index_prefix: String,
    pub topic_prefixes: Vec<String>,
    pub modules_dir: PathBuf,
    pub allowed_outbound_hosts: Vec<String>,
    pub quotas: Quotas,
    #[serde(skip)]
    pub upstreams: BTreeMap<String, UpstreamConfig>,
    /// The credentials its documents are indexed with (`None`: the host's).
    #[serde(skip)]
    pub elasticsearch: Option<ElasticsearchAuth>,
    /// Pipeline names without the `<id>.` prefix.
    pub pipelines: Vec<String>,
}

impl Tenant {
    /// Whether `topic` is one the tenant may consume or dead-letter to.
    pub fn owns_topic(&self, topic: &str) -> bool {
        self.topic_prefixes
            .iter()
            .any(|p| topic.starts_with(p.as_str()) && topic.len() > p.len())
    }

    pub fn owns_index(&self, index: &str) -> bool {
        index.starts_with(self.index_prefix.as_str()) && index.len() > self.index_prefix.len()
    }

    /// Where a module named `name` lives (`<modules_dir>/<name>.wasm`);
    /// `None` for a name that isn't a plain `[a-z0-9_-]` identifier.
    pub fn module_path(&self, name: &str) -> Option<PathBuf> {
        valid_module_name(name).then(|| self.modules_dir.join(format!("{name}.wasm")))
    }
}

/// First line of a tenant file a fleet host wrote from the control topic:
/// such a file is the host's copy, replaced or removed as the topic says.
pub const FLEET_MARKER: &str =
    "# Written from the control topic: change it through the admin API, not here.\n";

/// A module name an API caller may use: 1–64 of `[a-z0-9_-]`, starting
/// with a letter or digit (so no `..`, `/`, or hidden files).
pub fn valid_module_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

/// A tenant id: 1–32 of `[a-z0-9-]`, starting with a letter.
pub fn valid_tenant_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 32
        && id.as_bytes()[0].is_ascii_lowercase()
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// Everything read from the tenants folder: the tenants and their
/// pipelines, named `<tenant>.<pipeline>` and ready to join the host's.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LoadedTenants {
    pub tenants: BTreeMap<String, Tenant>,
    pub pipelines: BTreeMap<String, PipelineConfig>,
}

impl LoadedTenants {
    /// The tenants of the `kept` files (refused in this reload) go back to
    /// their `running` definition and pipelines; one that was not running
    /// stays out.
    pub(super) fn keep_running(
        &mut self,
        kept: &std::collections::BTreeSet<PathBuf>,
        running: &BTreeMap<String, Tenant>,
        running_pipelines: &BTreeMap<String, PipelineConfig>,
    ) {
        for f in kept {
            if let Some(id) = f.file_stem().map(|s| s.to_string_lossy()) {
                revert_tenant(
                    &id,
                    &mut self.tenants,
                    &mut self.pipelines,
                    running,
                    running_pipelines,
                );
            }
        }
    }
}

/// Puts tenant `id` back to its `running` definition and pipelines (or
/// takes it out, if it was not running).
pub(super) fn revert_tenant(
    id: &str,
    tenants: &mut BTreeMap<String, Tenant>,
    pipelines: &mut BTreeMap<String, PipelineConfig>,
    running: &BTreeMap<String, Tenant>,
    running_pipelines: &BTreeMap<String, PipelineConfig>,
) {
    let owned = |p: &PipelineConfig| p.tenant.as_ref().is_some_and(|b| b.id == id);
    tenants.remove(id);
    pipelines.retain(|_, p| !owned(p));
    if let Some(t) = running.get(id) {
        tenants.insert(id.to_string(), t.clone());
        pipelines.extend(
            running_pipelines
                .iter()
                .filter(|(_, p)| owned(p))
                .map(|(n, p)| (n.clone(), p.clone())),
        );
    }
}

/// Reads every `*.toml` in `dir` (sorted; other files are ignored). A
/// file with a problem is reported in `problems` and left out.
/// With `env`, the variables a tenant's Elasticsearch credentials name
/// must be set in it.
pub(super) fn load_dir(
    dir: &Path,
    config: &TenantsConfig,
    runtime_memory: usize,
    env: Option<EnvLookup<'_>>,
    problems: &mut Problems,
) -> LoadedTenants {
    let defaults = &config.defaults;
    let mut out = LoadedTenants::default();
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) => {
            problems.add_in(
                dir,
                "tenants.dir",
                format!("cannot read the tenants folder: {e}"),
            );
            return out;
        }
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml") && p.is_file())
        .collect();
    files.sort();
    for file in files {
        match load_file(
            &file,
            dir,
            defaults,
            &config.env_prefix,
            runtime_memory,
            env,
        ) {
            Ok((tenant, pipelines)) => {
                out.pipelines.extend(pipelines);
                out.tenants.insert(tenant.id.clone(), tenant);
            }
            Err((key, reason)) => problems.add_in(&file, key, reason),
        }
    }
    check_overlaps(&out, problems);
    out
}

/// The first problem of a tenant file, by key (empty: the whole file).
pub(super) type Invalid = (String, String);

fn load_file(
    file: &Path,
    dir: &Path,
    defaults: &Quotas,
    env_prefix: &str,
    runtime_memory: usize,
    env: Option<EnvLookup<'_>>,
) -> Result<(Tenant, BTreeMap<String, PipelineConfig>), Invalid> {
    let id = file
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    if !valid_tenant_id(&id) {
        return Err((
            String::new(),
            format!(
                "`{id}` is not a tenant id: use 1-32 of a-z, 0-9 and '-', starting with a letter"
            ),
        ));
    }
    let text =
        std::fs::read_to_string(file).map_err(|e| (String::new(), format!("cannot read: {e}")))?;
    load_text(
        &id,
        &text,
        file,
        dir,
        defaults,
        env_prefix,
        runtime_memory,
        env,
    )
}

/// A tenant file's `text` as if read from `file` (tenant `id`, in the
/// tenants folder `dir`): every check [`load_dir`] makes of one file but
/// the existence of its module files.
#[allow(clippy::too_many_arguments)]
pub(super) fn load_text(
    id: &str,
    text: &str,
    file: &Path,
    dir: &Path,
    defaults: &Quotas,
    env_prefix: &str,
    runtime_memory: usize,
    env: Option<EnvLookup<'_>>,
) -> Result<(Tenant, BTreeMap<String, PipelineConfig>), Invalid> {
    let spec: TenantFile =
        toml::from_str(text).map_err(|e| (String::new(), e.to_string().trim_end().to_string()))?;
    check_secret_names(id, &spec, env_prefix)?;
    if let (Some(es), Some(env)) = (&spec.elasticsearch, env) {
        es.auth.credentials(env).map_err(|e| {
            (
                format!("elasticsearch.{}", e.key),
                format!("environment variable {} is not set", e.variable),
            )
        })?;
    }
    check_token_urls(&spec.upstreams, &spec.allowed_outbound_hosts)?;
    resolve(id, file, dir, spec, defaults, runtime_memory)
}

/// A tenant's token endpoints are reached like its modules' requests, so
/// each must match one of the tenant's `allowed_outbound_hosts`.
fn check_token_urls(
    upstreams: &BTreeMap<String, UpstreamConfig>,
    allowed: &[String],
) -> Result<(), Invalid> {
    let patterns: Vec<HostPattern> = allowed
        .iter()
        .filter_map(|p| HostPattern::parse(p).ok())
        .collect();
    for (name, u) in upstreams {
        let Some(token_url) = &u.auth.token_url else {
            continue;
        };
        let key = format!("upstreams.{name}.auth.token_url");
        let url = UpstreamUrl::parse(token_url).map_err(|e| (key.clone(), e))?;
        if !patterns
            .iter()
            .any(|p| p.matches(url.scheme, &url.host, url.port))
        {
            return Err((
                key,
                format!("`{token_url}` is not in the tenant's allowed_outbound_hosts"),
            ));
        }
    }
    Ok(())
}

/// The environment variables a tenant file names (its upstreams' and its
/// Elasticsearch credentials) must be its own: `<env_prefix><ID>_…`.
fn check_secret_names(id: &str, spec: &TenantFile, env_prefix: &str) -> Result<(), Invalid> {
    let own = format!("{env_prefix}{}_", id.to_ascii_uppercase().replace('-', "_"));
    let upstreams = spec.upstreams.iter().flat_map(|(name, u)| {
        u.auth
            .variables()
            .into_iter()
            .filter_map(move |(key, var)| {
                Some((format!("upstreams.{name}.auth.{key}"), var.as_deref()?))
            })
    });
    let elasticsearch = spec.elasticsearch.iter().flat_map(|es| {
        es.auth
            .variables()
            .into_iter()
            .map(|(key, var)| (format!("elasticsearch.auth.{key}"), var))
    });
    for (key, var) in upstreams.chain(elasticsearch) {
        if !var.starts_with(&own) {
            return Err((
                key,
                format!(
                    "`{var}` is not this tenant's to read: its variables start with `{own}` (tenants.env_prefix)"
                ),
            ));
        }
    }
    if let Some(es) = &spec.elasticsearch
        && es.auth == ElasticsearchAuth::None
    {
        return Err((
            "elasticsearch.auth".into(),
            "`none` is not a tenant credential: omit [elasticsearch] to index with the host's"
                .into(),
        ));
    }
    Ok(())
}

fn resolve(
    id: &str,
    file: &Path,
    dir: &Path,
    spec: TenantFile,
    defaults: &Quotas,
    runtime_memory: usize,
) -> Result<(Tenant, BTreeMap<String, PipelineConfig>), Invalid> {
    let quotas = spec.quotas.resolve(defaults);
    quota_problem(&quotas, runtime_memory).map_err(|(k, r)| (format!("quotas.{k}"), r))?;
    if spec.weight == 0 || spec.weight > 1000 {
        return Err(("weight".into(), "must be between 1 and 1000".into()));
    }
    if let Some(h) = &spec.token_sha256
        && (h.len() != 64 || !h.bytes().all(|b| b.is_ascii_hexdigit()))
    {
        return Err((
            "token_sha256".into(),
            "must be 64 hex digits (`weir tenants token` prints one)".into(),
        ));
    }
    let index_prefix = spec.index_prefix.unwrap_or_else(|| format!("{id}-"));
    if index_prefix.len() < 2
        || index_prefix
            .chars()
            .any(|c| c.is_ascii_uppercase() || r#"\/*?"<>| ,#:"#.contains(c))
    {
        return Err((
            "index_prefix".into(),
            format!("`{index_prefix}` is not a usable index prefix"),
        ));
    }
    let topic_prefixes = if spec.topic_prefixes.is_empty() {
        vec![format!("{id}.")]
    } else {
        spec.topic_prefixes
    };
    if let Some(p) = topic_prefixes.iter().find(|p| p.len() < 2) {
        return Err((
            "topic_prefixes".into(),
            format!("`{p}` is too short to own topics"),
        ));
    }
    let modules_rel = spec
        .modules_dir
        .unwrap_or_else(|| Path::new(id).join("modules"));
    if !is_inside(&modules_rel) {
        return Err((
            "modules_dir".into(),
            "must be a relative path inside the tenants folder".into(),
        ));
    }
    let modules_dir = dir.join(&modules_rel);
    let tenant = Tenant {
        id: id.to_string(),
        file: file.to_path_buf(),
        token_sha256: spec.token_sha256.map(|h| h.to_ascii_lowercase()),
        weight: spec.weight,
        index_prefix,
        topic_prefixes,
        modules_dir,
        allowed_outbound_hosts: spec.allowed_outbound_hosts,
        quotas,
        upstreams: spec.upstreams,
        elasticsearch: spec.elasticsearch.map(|es| es.auth),
        pipelines: spec.pipelines.keys().cloned().collect(),
    };
    let mut pipelines = BTreeMap::new();
    for (name, mut p) in spec.pipelines {
        let key = |k: &str| format!("pipelines.{name}.{k}");
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err((
                format!("pipelines.{name}"),
                "a pipeline name uses only letters, digits, '-' and '_'".into(),
            ));
        }
        if let Some(t) = p.topics.iter().find(|t| !tenant.owns_topic(t)) {
            return Err((
                key("topics"),
                format!(
                    "topic `{t}` is not the tenant's (topic_prefixes: {:?})",
                    tenant.topic_prefixes
                ),
            ));
        }
        if !tenant.owns_index(&p.index) {
            return Err((
                key("index"),
                format!(
                    "index `{}` does not start with the tenant's prefix `{}`",
                    p.index, tenant.index_prefix
                ),
            ));
        }
        let dlq = p
            .dead_letter_topic
            .clone()
            .unwrap_or_else(|| format!("{}{name}-dlq", tenant.topic_prefixes[0]));
        if !tenant.owns_topic(&dlq) {
            return Err((
                key("dead_letter_topic"),
                format!(
                    "`{dlq}` is not the tenant's (topic_prefixes: {:?})",
                    tenant.topic_prefixes
                ),
            ));
        }
        p.dead_letter_topic = Some(dlq);
        if let Some(h) = p
            .allowed_outbound_hosts
            .iter()
            .find(|h| !tenant.allowed_outbound_hosts.contains(h))
        {
            return Err((
                key("allowed_outbound_hosts"),
                format!("`{h}` is not in the tenant's allowed_outbound_hosts"),
            ));
        }
        for (i, m) in p.modules.iter_mut().enumerate() {
            if !is_inside(&m.path) {
                return Err((
                    format!("pipelines.{name}.modules[{i}].path"),
                    format!("`{}` leaves the tenant's modules folder", m.path.display()),
                ));
            }
            m.path = tenant.modules_dir.join(&m.path);
        }
        if let Some(pattern) = p
            .allowed_indices
            .iter()
            .find(|i| !i.starts_with(tenant.index_prefix.as_str()))
        {
            return Err((
                key("allowed_indices"),
                format!(
                    "`{pattern}` does not start with the tenant's prefix `{}`",
                    tenant.index_prefix
                ),
            ));
        }
        p.tenant = Some(TenantBinding {
            id: id.to_string(),
            weight: tenant.weight,
            index_prefix: tenant.index_prefix.clone(),
            allowed_outbound_hosts: tenant.allowed_outbound_hosts.clone(),
            quotas: tenant.quotas.clone(),
            upstreams: tenant.upstreams.clone(),
            elasticsearch: tenant.elasticsearch.clone(),
        });
        pipelines.insert(format!("{id}.{name}"), p);
    }
    Ok((tenant, pipelines))
}

/// A relative path with only normal components (no `..`, no root).
fn is_inside(p: &Path) -> bool {
    !p.as_os_str().is_empty() && p.components().all(|c| matches!(c, Component::Normal(_)))
}

/// No two tenants may claim overlapping topic or index prefixes.
fn check_overlaps(t: &LoadedTenants, problems: &mut Problems) {
    let all: Vec<&Tenant> = t.tenants.values().collect();
    for (i, a) in all.iter().enumerate() {
        for b in &all[i + 1..] {
            let overlap = |x: &str, y: &str| x.starts_with(y) || y.starts_with(x);
            if let Some((x, y)) = a
                .topic_prefixes
                .iter()
                .flat_map(|x| b.topic_prefixes.iter().map(move |y| (x, y)))
                .find(|(x, y)| overlap(x, y))
            {
                problems.add_in(
                    &b.file,
                    "topic_prefixes",
                    format!("`{y}` overlaps tenant `{}`'s `{x}`", a.id),
                );
            }
            if a.modules_dir.starts_with(&b.modules_dir)
                || b.modules_dir.starts_with(&a.modules_dir)
            {
                problems.add_in(
                    &b.file,
                    "modules_dir",
                    format!(
                        "`{}` overlaps tenant `{}`'s modules folder: one tenant's uploads would replace the other's modules",
                        b.modules_dir.display(),
                        a.id
                    ),
                );
            }
            if overlap(&a.index_prefix, &b.index_prefix) {
                problems.add_in(
                    &b.file,
                    "index_prefix",
                    format!(
                        "`{}` overlaps tenant `{}`'s `{}`",
                        b.index_prefix, a.id, a.index_prefix
                    ),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests;
