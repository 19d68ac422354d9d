//! The `weir` compose service: the classifier backend is a `.env` switch
//! (`WEIR_BACKEND`), and the compile cache is writable by the runtime user.
//!
//! The backend checks run the real compose CLI (`docker compose config`, or
//! the v1 `docker-compose`) on a `.env` per backend and load the config the
//! resolved service would run with Weir's own parser, with the environment
//! the resolved service gets. No Docker engine is needed, and none is used:
//! nothing here starts a container.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value as Json;

use common::dockerfile::Dockerfile;
use common::{read, repo_root, runs};

/// The compose CLI, or a failure that says how to install one.
fn compose_cli() -> Vec<&'static str> {
    if runs("docker", &["compose", "version"]) {
        vec!["docker", "compose"]
    } else if runs("docker-compose", &["version"]) {
        vec!["docker-compose"]
    } else {
        panic!(
            "neither `docker compose` nor `docker-compose` is installed; \
             install one: apt-get install docker-compose"
        )
    }
}

/// `.env.example` with `overrides`, resolved by `compose config`: the
/// `weir` service as JSON.
fn resolved_weir_service(overrides: &[(&str, &str)]) -> Json {
    resolved_service("weir", overrides)
}

/// Service `name` as `docker-compose config` resolves it.
fn resolved_service(name: &str, overrides: &[(&str, &str)]) -> Json {
    let mut env = read(".env.example");
    for (k, v) in overrides {
        env.push_str(&format!("\n{k}={v}\n"));
    }
    let dir = tempfile::tempdir().unwrap();
    let env_file = dir.path().join(".env");
    std::fs::write(&env_file, env).unwrap();
    let cli = compose_cli();
    let out = Command::new(cli[0])
        .args(&cli[1..])
        .current_dir(repo_root())
        .arg("--env-file")
        .arg(&env_file)
        .args(["-f", "docker-compose.yml", "config"])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", cli.join(" ")));
    assert!(
        out.status.success(),
        "{} config with {overrides:?} failed:\n{}",
        cli.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: Json = serde_norway::from_slice(&out.stdout).expect("compose config prints YAML");
    doc["services"][name].clone()
}

/// A resolved volume as (source, target): short (`src:dst[:mode]`, v1) or
/// long syntax (v2).
fn volume(v: &Json) -> (String, String) {
    match v {
        Json::String(spec) => {
            let mut parts = spec.split(':');
            let src = parts.next().unwrap_or_default().to_owned();
            let dst = parts.next().unwrap_or_default().to_owned();
            (src, dst)
        }
        _ => (
            v["source"].as_str().unwrap_or_default().to_owned(),
            v["target"].as_str().unwrap_or_default().to_owned(),
        ),
    }
}

/// The resolved service's environment (list or mapping form).
fn environment(service: &Json) -> BTreeMap<String, String> {
    match &service["environment"] {
        Json::Object(m) => m
            .iter()
            .map(|(k, v)| {
                // YAML may resolve `1` or `true` to a number or a boolean;
                // the container sees its text either way.
                let text = match v {
                    Json::String(s) => s.clone(),
                    Json::Null => String::new(),
                    other => other.to_string(),
                };
                (k.clone(), text)
            })
            .collect(),
        Json::Array(items) => items
            .iter()
            .filter_map(|i| i.as_str()?.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
        _ => BTreeMap::new(),
    }
}

/// The config file the resolved service runs: the `--config` argument of
/// its command, mounted from this repository file.
fn config_of(service: &Json) -> (String, PathBuf) {
    let command: Vec<&str> = service["command"]
        .as_array()
        .expect("the weir service sets its command")
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    let at = command
        .iter()
        .position(|a| *a == "--config")
        .expect("weir run --config PATH");
    let target = command[at + 1].to_owned();
    let source = service["volumes"]
        .as_array()
        .into_iter()
        .flatten()
        .map(volume)
        .find(|(_, dst)| *dst == target)
        .map(|(src, _)| PathBuf::from(src))
        .unwrap_or_else(|| panic!("no volume mounts {target} into the weir service"));
    (target, source)
}

/// Loads `path` with Weir's parser, laid out as the image lays it out
/// (every module and template it names exists next to it), with `env` as
/// the process environment.
fn load(path: &Path, env: &BTreeMap<String, String>) -> weir::config::Config {
    let text = std::fs::read_to_string(path).unwrap();
    let raw: toml::Value = toml::from_str(&text).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let pipelines = raw["pipelines"].as_table().unwrap().values();
    let modules = pipelines.flat_map(|p| p["modules"].as_array().unwrap().iter());
    let templates = raw["elasticsearch"]["templates"].as_array().unwrap().iter();
    for file in modules
        .chain(templates)
        .map(|m| m["path"].as_str().unwrap())
    {
        let at = dir.path().join(file);
        std::fs::create_dir_all(at.parent().unwrap()).unwrap();
        std::fs::write(at, b"").unwrap();
    }
    weir::config::Config::from_toml_with(&text, path, dir.path(), |k| env.get(k).cloned())
        .unwrap_or_else(|e| panic!("Weir refuses {}: {e}", path.display()))
}

/// The `backend` setting of every classifier module, and its `url`.
fn classifiers(config: &weir::config::Config) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for (name, p) in &config.pipelines {
        for m in &p.modules {
            let settings: BTreeMap<_, _> = m.settings().into_iter().collect();
            if let Some(backend) = settings.get("backend") {
                let url = settings.get("url").cloned().unwrap_or_default();
                assert!(
                    p.allowed_outbound_hosts.iter().any(|h| url.starts_with(h)),
                    "{name}: {} calls {url}, which allowed_outbound_hosts {:?} does not allow",
                    m.name(),
                    p.allowed_outbound_hosts
                );
                out.push((format!("{name}/{}", m.name()), backend.clone(), url));
            }
        }
    }
    out
}

#[test]
fn the_default_env_runs_the_local_classifier() {
    let service = resolved_weir_service(&[]);
    let (target, source) = config_of(&service);
    assert_eq!(target, "/opt/weir/weir.toml");
    let config = load(&source, &environment(&service));
    let used = classifiers(&config);
    assert_eq!(used.len(), 2, "{used:?}");
    for (module, backend, url) in used {
        assert_eq!(backend, "weir", "{module}");
        assert_eq!(url, "http://classifier:8090", "{module}");
    }
    assert!(config.upstreams.is_empty());
}

#[test]
fn weir_backend_expertai_in_env_switches_both_pipelines_to_expert_ai() {
    let service = resolved_weir_service(&[
        ("WEIR_BACKEND", "expertai"),
        ("EXPERTAI_USERNAME", "analyst@example.com"),
        ("EXPERTAI_PASSWORD", "not-a-real-password"),
    ]);
    let (target, source) = config_of(&service);
    assert_eq!(target, "/opt/weir/expertai.toml");
    let env = environment(&service);
    let config = load(&source, &env);

    let used = classifiers(&config);
    assert_eq!(used.len(), 2, "{used:?}");
    let upstream = &config.upstreams["expertai"];
    for (module, backend, url) in &used {
        assert_eq!(backend, "expertai", "{module}");
        assert!(
            url.starts_with(&upstream.url),
            "{module}: {url} is not under the upstream {} that gets the credentials",
            upstream.url
        );
    }
    // The credentials reach the host from .env, under the names the
    // upstream reads.
    let auth = &upstream.auth;
    for (var, value) in [
        (&auth.username_env, "analyst@example.com"),
        (&auth.password_env, "not-a-real-password"),
    ] {
        let var = var
            .as_deref()
            .expect("expert.ai logs in with user and password");
        assert_eq!(env.get(var).map(String::as_str), Some(value), "{var}");
    }
}

/// The image has both configs at the paths compose selects, so the switch
/// also works without the mounts (e.g. on another compose file).
#[test]
fn the_image_carries_every_backends_config() {
    let image = Dockerfile::load("Dockerfile");
    let copies = image.final_stage().copies();
    for (source, target) in [
        ("deploy/weir.compose.toml", "/opt/weir/weir.toml"),
        (
            "deploy/weir.compose.expertai.toml",
            "/opt/weir/expertai.toml",
        ),
    ] {
        assert!(
            copies
                .iter()
                .any(|c| c.sources == [source] && c.dest == target),
            "Dockerfile: no COPY {source} {target}"
        );
    }
}

/// Besides the classifier settings, the two configs are the same stack.
#[test]
fn the_backend_configs_differ_only_in_classifier_settings() {
    fn strip(mut v: toml::Value) -> toml::Value {
        v.as_table_mut().unwrap().remove("upstreams");
        for (_, p) in v["pipelines"].as_table_mut().unwrap().iter_mut() {
            let p = p.as_table_mut().unwrap();
            p.remove("allowed_outbound_hosts");
            p.remove("http");
            for m in p["modules"].as_array_mut().unwrap() {
                if let Some(c) = m.get_mut("config").and_then(|c| c.as_table_mut()) {
                    c.remove("backend");
                    c.remove("url");
                }
            }
        }
        v
    }
    let parse = |f: &str| strip(toml::from_str(&read(f)).unwrap());
    assert_eq!(
        parse("deploy/weir.compose.toml"),
        parse("deploy/weir.compose.expertai.toml")
    );
}

/// The stack's broker keeps a transaction log, so its Weir writes dead
/// letters exactly once: one transaction per commit, under a name that
/// stays the same across container restarts (so a restarted Weir fences
/// the one it replaces). A single broker can only hold the transaction log
/// with a replication factor and min ISR of 1.
#[test]
fn the_stack_writes_dead_letters_exactly_once() {
    let service = resolved_weir_service(&[]);
    let (_, source) = config_of(&service);
    let config = load(&source, &environment(&service));
    assert_eq!(
        config.kafka.dead_letters,
        weir::config::DeadLetterDelivery::ExactlyOnce
    );
    assert_eq!(
        config.kafka.transactional_id().as_deref(),
        Some("weir-dlq.weir.compose-weir")
    );
    let kafka = resolved_service("kafka", &[]);
    let env = environment(&kafka);
    for key in [
        "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR",
        "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR",
    ] {
        assert_eq!(env.get(key).map(String::as_str), Some("1"), "kafka: {key}");
    }
}

// --- compile cache -----------------------------------------------------------

/// What this proves, statically: the compose config names a cache folder,
/// the Dockerfile's final stage creates that folder owned by the user it
/// runs as (`install -d -o USER` or `chown USER`), and compose mounts a
/// named volume there (a new named volume takes the image folder's owner).
/// It cannot prove the built image's permissions or Docker's volume
/// behaviour: that needs an engine.
#[test]
fn the_compile_cache_is_the_runtime_users_and_outlives_containers() {
    let service = resolved_weir_service(&[]);
    let (_, source) = config_of(&service);
    let config = load(&source, &environment(&service));
    assert!(config.runtime.compile_cache, "compile cache switched off");
    let cache = config
        .runtime
        .cache_dir
        .clone()
        .expect("runtime.cache_dir set (the default is under HOME, /opt/weir: root's)");
    let cache = cache.to_str().unwrap().trim_end_matches('/').to_owned();

    let image = Dockerfile::load("Dockerfile");
    let last = image.final_stage();
    let user = last
        .instruction("USER")
        .expect("the image runs as a non-root USER")
        .args
        .trim()
        .to_owned();
    assert_ne!(user, "root");
    let runs = last.run_text().replace("\\\n", " ");
    let owned = runs.split("&&").any(|cmd| {
        let words: Vec<&str> = cmd.split_whitespace().collect();
        let names_dir = words
            .iter()
            .any(|w| w.trim_end_matches('/') == cache.as_str());
        let install = words.first() == Some(&"install")
            && words.contains(&"-d")
            && words.windows(2).any(|w| w == ["-o", user.as_str()]);
        let chown = words.first() == Some(&"chown")
            && words
                .iter()
                .any(|w| w.split(':').next() == Some(user.as_str()));
        names_dir && (install || chown)
    });
    assert!(
        owned,
        "Dockerfile: the final stage does not create {cache} owned by USER {user}"
    );
    let mounted = service["volumes"]
        .as_array()
        .into_iter()
        .flatten()
        .map(volume)
        .find(|(_, dst)| dst.trim_end_matches('/') == cache);
    let (volume_name, _) = mounted.unwrap_or_else(|| panic!("no volume on {cache}"));
    assert!(
        !volume_name.starts_with('/') && !volume_name.starts_with('.'),
        "{cache}: a named volume (owner copied from the image), not a bind mount ({volume_name})"
    );
}
