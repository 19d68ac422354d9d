//! docker-compose.yml: parsed and cross-checked against the repository and
//! .env.example (the development machines have no Docker engine, so the
//! stack itself is never started here). When a compose CLI is installed,
//! `config -q` validates the file against the Compose specification too.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use serde_json::Value;

use common::{Problems, read, repo_path, repo_root, require, runs};

const COMPOSE: &str = "docker-compose.yml";
const ENV_EXAMPLE: &str = ".env.example";

fn compose() -> Value {
    serde_norway::from_str(&read(COMPOSE))
        .unwrap_or_else(|e| panic!("{COMPOSE}: invalid YAML: {e}"))
}

fn services(doc: &Value) -> &serde_json::Map<String, Value> {
    doc["services"]
        .as_object()
        .unwrap_or_else(|| panic!("{COMPOSE}: no `services` mapping"))
}

/// `NAME=value` lines of .env.example.
fn env_example() -> BTreeMap<String, String> {
    read(ENV_EXAMPLE)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (k, v) = l
                .split_once('=')
                .unwrap_or_else(|| panic!("{ENV_EXAMPLE}: `{l}` is not NAME=value"));
            (k.trim().to_owned(), v.trim().to_owned())
        })
        .collect()
}

/// A `${...}` or `$NAME` reference in the compose file.
#[derive(Debug)]
struct VarRef {
    name: String,
    /// `${NAME:?message}` / `${NAME?message}`: compose refuses to start without it.
    required: bool,
    /// `${NAME:-default}` / `${NAME-default}`.
    default: Option<String>,
    line: usize,
}

/// Every variable reference outside comments; `$$` is a literal dollar.
fn variable_refs(text: &str) -> Vec<VarRef> {
    let mut refs = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim_start().starts_with('#') {
            continue;
        }
        let chars: Vec<char> = line.chars().collect();
        let mut i = 0;
        while i < chars.len() {
            if chars[i] != '$' {
                i += 1;
                continue;
            }
            match chars.get(i + 1) {
                Some('$') => i += 2,
                Some('{') => {
                    let close = (i + 2..chars.len())
                        .find(|&j| chars[j] == '}')
                        .unwrap_or(chars.len());
                    let inner: String = chars[i + 2..close].iter().collect();
                    let name_len = inner
                        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                        .unwrap_or(inner.len());
                    let (name, modifier) = inner.split_at(name_len);
                    let required = modifier.starts_with(":?") || modifier.starts_with('?');
                    let default = modifier
                        .strip_prefix(":-")
                        .or_else(|| modifier.strip_prefix('-'))
                        .map(str::to_owned);
                    refs.push(VarRef {
                        name: name.to_owned(),
                        required,
                        default,
                        line: n + 1,
                    });
                    i = close + 1;
                }
                Some(c) if c.is_ascii_alphabetic() || *c == '_' => {
                    let name: String = chars[i + 1..]
                        .iter()
                        .take_while(|c| c.is_ascii_alphanumeric() || **c == '_')
                        .collect();
                    i += 1 + name.len();
                    refs.push(VarRef {
                        name,
                        required: false,
                        default: None,
                        line: n + 1,
                    });
                }
                _ => i += 1,
            }
        }
    }
    refs
}

/// Replaces `${NAME...}` with the .env.example value, else the default.
fn interpolate(s: &str, env: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let Some(len) = rest[start..].find('}') else {
            break;
        };
        let inner = &rest[start + 2..start + len];
        let name_len = inner
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(inner.len());
        let (name, modifier) = inner.split_at(name_len);
        let default = modifier
            .strip_prefix(":-")
            .or_else(|| modifier.strip_prefix('-'))
            .unwrap_or("");
        match env.get(name).filter(|v| !v.is_empty()) {
            Some(v) => out.push_str(v),
            None => out.push_str(default),
        }
        rest = &rest[start + len + 1..];
    }
    out.push_str(rest);
    out
}

fn depends_on(service: &Value) -> Vec<(String, String)> {
    match &service["depends_on"] {
        Value::Array(names) => names
            .iter()
            .filter_map(Value::as_str)
            .map(|n| (n.to_owned(), "service_started".to_owned()))
            .collect(),
        Value::Object(map) => map
            .iter()
            .map(|(n, v)| {
                (
                    n.clone(),
                    v["condition"]
                        .as_str()
                        .unwrap_or("service_started")
                        .to_owned(),
                )
            })
            .collect(),
        _ => Vec::new(),
    }
}

#[test]
fn the_stack_has_its_services() {
    let doc = compose();
    let services = services(&doc);
    let expected = [
        "kafka",
        "kafka-init",
        "elasticsearch",
        "es-init",
        "kibana",
        "setup",
        "classifier",
        "weir",
        "producer-tweets",
        "producer-news",
    ];
    let mut problems = Problems::new();
    for name in expected {
        problems.check(services.contains_key(name), || {
            format!("{COMPOSE}: no `{name}` service")
        });
    }
    problems.check(doc.get("version").is_none(), || {
        format!("{COMPOSE}: top-level `version` is obsolete in the Compose specification")
    });
    problems.assert_none("compose services");
}

#[test]
fn images_and_builds_exist() {
    let doc = compose();
    let env = env_example();
    let mut problems = Problems::new();
    for (name, service) in services(&doc) {
        let image = service["image"].as_str();
        let build = &service["build"];
        if image.is_none() && build.is_null() {
            problems.add(format!(
                "{COMPOSE}: service `{name}` has neither `image` nor `build`"
            ));
        }
        if !build.is_null() {
            let (context, dockerfile) = match build {
                Value::String(ctx) => (ctx.clone(), "Dockerfile".to_owned()),
                _ => (
                    build["context"].as_str().unwrap_or(".").to_owned(),
                    build["dockerfile"]
                        .as_str()
                        .unwrap_or("Dockerfile")
                        .to_owned(),
                ),
            };
            let context_dir = repo_path(&context);
            if !context_dir.is_dir() {
                problems.add(format!(
                    "{COMPOSE}: service `{name}`: build context `{context}` is not a directory"
                ));
            } else if !context_dir.join(&dockerfile).is_file() {
                problems.add(format!(
                    "{COMPOSE}: service `{name}`: {context}/{dockerfile} does not exist"
                ));
            }
        }
        if let Some(image) = image {
            let resolved = interpolate(image, &env);
            problems.check(
                resolved.contains(':')
                    && !resolved.ends_with(':')
                    && !resolved.ends_with(":latest"),
                || {
                    format!(
                        "{COMPOSE}: service `{name}`: image `{image}` should name a version tag"
                    )
                },
            );
        }
    }
    // Elasticsearch and Kibana must run the same 8.x version; Kafka is 3.9.x.
    let tag = |service: &str| {
        services(&doc)[service]["image"]
            .as_str()
            .map(|i| interpolate(i, &env))
            .and_then(|i| i.rsplit_once(':').map(|(_, t)| t.to_owned()))
    };
    let (es, kibana, kafka) = (tag("elasticsearch"), tag("kibana"), tag("kafka"));
    problems.check(es.is_some() && es == kibana, || {
        format!("{COMPOSE}: elasticsearch ({es:?}) and kibana ({kibana:?}) versions differ")
    });
    problems.check(es.as_deref().is_some_and(|v| v.starts_with("8.")), || {
        format!("{COMPOSE}: elasticsearch {es:?} is not 8.x")
    });
    problems.check(
        kafka.as_deref().is_some_and(|v| v.starts_with("3.9.")),
        || format!("{COMPOSE}: kafka {kafka:?} is not apache/kafka 3.9.x"),
    );
    problems.assert_none("compose images and builds");
}

#[test]
fn host_ports_do_not_collide() {
    let doc = compose();
    let env = env_example();
    let mut seen: BTreeMap<(String, u16), String> = BTreeMap::new();
    let mut problems = Problems::new();
    for (name, service) in services(&doc) {
        for port in service["ports"].as_array().into_iter().flatten() {
            let (ip, published) = match port {
                Value::Object(long) => (
                    long.get("host_ip")
                        .and_then(Value::as_str)
                        .unwrap_or("0.0.0.0")
                        .to_owned(),
                    long.get("published")
                        .map(|p| interpolate(&p.to_string().replace('"', ""), &env)),
                ),
                other => {
                    let spec = interpolate(
                        other
                            .as_str()
                            .map(str::to_owned)
                            .unwrap_or_else(|| other.to_string())
                            .as_str(),
                        &env,
                    );
                    let spec = spec.split('/').next().unwrap_or("").to_owned();
                    let parts: Vec<&str> = spec.split(':').collect();
                    match parts.as_slice() {
                        [ip, host, _] => (ip.to_string(), Some(host.to_string())),
                        [host, _] => ("0.0.0.0".to_owned(), Some(host.to_string())),
                        _ => ("0.0.0.0".to_owned(), None),
                    }
                }
            };
            let Some(published) = published else { continue };
            let Ok(number) = published.parse::<u16>() else {
                problems.add(format!(
                    "{COMPOSE}: service `{name}`: cannot read host port in {port}"
                ));
                continue;
            };
            // 0.0.0.0 overlaps every address.
            for ((other_ip, other_port), other) in &seen {
                if *other_port == number
                    && (other_ip == &ip || ip == "0.0.0.0" || other_ip == "0.0.0.0")
                {
                    problems.add(format!(
                        "{COMPOSE}: host port {number} is published by both `{other}` and `{name}`"
                    ));
                }
            }
            seen.insert((ip, number), name.clone());
        }
    }
    assert!(!seen.is_empty(), "{COMPOSE}: no published ports at all?");
    problems.assert_none("compose host ports");
}

#[test]
fn dependencies_name_services_with_valid_conditions() {
    let doc = compose();
    let services = services(&doc);
    let mut problems = Problems::new();
    for (name, service) in services {
        for (dep, condition) in depends_on(service) {
            let Some(target) = services.get(&dep) else {
                problems.add(format!(
                    "{COMPOSE}: `{name}` depends on unknown service `{dep}`"
                ));
                continue;
            };
            match condition.as_str() {
                "service_started" => {}
                "service_healthy" => problems.check(target["healthcheck"].is_object(), || {
                    format!("{COMPOSE}: `{name}` waits for `{dep}` to be healthy, but `{dep}` has no healthcheck")
                }),
                "service_completed_successfully" => {
                    let restart = target["restart"].as_str().unwrap_or("no");
                    problems.check(restart == "no", || {
                        format!("{COMPOSE}: `{name}` waits for one-shot `{dep}` to complete, but `{dep}` has restart: {restart}")
                    })
                }
                other => problems.add(format!("{COMPOSE}: `{name}` -> `{dep}`: unknown condition `{other}`")),
            }
        }
    }
    // The ordering the stack relies on.
    let needs = [
        ("kafka-init", "kafka", "service_healthy"),
        ("weir", "kafka-init", "service_completed_successfully"),
        ("weir", "elasticsearch", "service_healthy"),
        ("weir", "classifier", "service_healthy"),
        ("kibana", "es-init", "service_completed_successfully"),
        ("setup", "kibana", "service_healthy"),
        (
            "producer-tweets",
            "kafka-init",
            "service_completed_successfully",
        ),
        (
            "producer-news",
            "kafka-init",
            "service_completed_successfully",
        ),
    ];
    for (service, dep, condition) in needs {
        let found = services.get(service).map(depends_on).unwrap_or_default();
        problems.check(
            found.iter().any(|(d, c)| d == dep && c == condition),
            || {
                format!(
                    "{COMPOSE}: `{service}` should depend on `{dep}` with condition {condition}"
                )
            },
        );
    }
    problems.assert_none("compose depends_on");
}

#[test]
fn healthchecks_exist_where_the_stack_waits() {
    let doc = compose();
    let mut problems = Problems::new();
    for name in ["kafka", "elasticsearch", "kibana", "classifier", "weir"] {
        let check = &services(&doc)[name]["healthcheck"];
        let test = check["test"].as_array();
        problems.check(
            test.is_some_and(|t| {
                matches!(t.first().and_then(Value::as_str), Some("CMD" | "CMD-SHELL"))
                    && t.len() >= 2
            }),
            || format!("{COMPOSE}: `{name}` needs a healthcheck with test: [CMD|CMD-SHELL, ...]"),
        );
        for key in ["interval", "timeout", "retries"] {
            problems.check(!check[key].is_null(), || {
                format!("{COMPOSE}: `{name}` healthcheck has no `{key}`")
            });
        }
    }
    problems.assert_none("compose healthchecks");
}

#[test]
fn every_variable_is_documented_in_env_example() {
    let text = read(COMPOSE);
    let env = env_example();
    let refs = variable_refs(&text);
    assert!(
        !refs.is_empty(),
        "{COMPOSE}: found no ${{VAR}} references; parser broken?"
    );
    let mut problems = Problems::new();
    for r in &refs {
        problems.check(env.contains_key(&r.name), || {
            format!(
                "{COMPOSE}:{}: ${{{}}} is not documented in {ENV_EXAMPLE}",
                r.line, r.name
            )
        });
        if r.required {
            problems.check(env.get(&r.name).is_some_and(|v| !v.is_empty()), || {
                format!("{ENV_EXAMPLE}: required variable {} needs a placeholder value, so `cp {ENV_EXAMPLE} .env` starts", r.name)
            });
        }
        if let (Some(default), Some(documented)) =
            (&r.default, env.get(&r.name).filter(|v| !v.is_empty()))
        {
            problems.check(documented == default, || {
                format!("{COMPOSE}:{}: default of {} is `{default}`, but {ENV_EXAMPLE} says `{documented}`", r.line, r.name)
            });
        }
    }
    // Every documented variable has a comment saying what it is.
    let example = read(ENV_EXAMPLE);
    let lines: Vec<&str> = example.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        if line.contains('=') && !line.trim_start().starts_with('#') {
            problems.check(i > 0 && lines[i - 1].trim_start().starts_with('#'), || {
                format!(
                    "{ENV_EXAMPLE}:{}: `{line}` has no explaining comment above it",
                    i + 1
                )
            });
        }
    }
    problems.assert_none("compose variables");
}

#[test]
fn secrets_come_from_the_environment() {
    let doc = compose();
    let mut problems = Problems::new();
    for (name, service) in services(&doc) {
        let vars: Vec<(String, String)> = match &service["environment"] {
            Value::Object(map) => map
                .iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        v.as_str()
                            .map(str::to_owned)
                            .unwrap_or_else(|| v.to_string()),
                    )
                })
                .collect(),
            Value::Array(list) => list
                .iter()
                .filter_map(Value::as_str)
                .map(|kv| {
                    kv.split_once('=')
                        .map(|(k, v)| (k.to_owned(), v.to_owned()))
                        .unwrap_or((kv.to_owned(), String::new()))
                })
                .collect(),
            _ => Vec::new(),
        };
        for (key, value) in vars {
            let secret = ["PASSWORD", "TOKEN", "SECRET", "API_KEY", "APIKEY"]
                .iter()
                .any(|s| key.to_uppercase().contains(s))
                || key.to_uppercase().ends_with("_KEY");
            if secret {
                problems.check(value.trim().starts_with("${") && value.trim().ends_with('}'), || {
                    format!("{COMPOSE}: `{name}` sets secret {key} to a literal; use ${{{key}}} from .env")
                });
            }
        }
    }
    if runs("git", &["--version"]) {
        let out = Command::new("git")
            .current_dir(repo_root())
            .args(["ls-files", "--", ".env"])
            .output()
            .expect("git ls-files");
        problems.check(out.stdout.is_empty(), || {
            ".env is tracked by git; it holds secrets and must not be committed".to_owned()
        });
    }
    problems.assert_none("compose secrets");
}

#[test]
fn mounted_repository_files_exist_and_named_volumes_are_declared() {
    let doc = compose();
    let declared: BTreeSet<String> = doc["volumes"]
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    let mut problems = Problems::new();
    let mut binds = 0;
    for (name, service) in services(&doc) {
        for volume in service["volumes"].as_array().into_iter().flatten() {
            let source = match volume {
                Value::String(spec) => spec.split(':').next().unwrap_or("").to_owned(),
                Value::Object(long) => long
                    .get("source")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned(),
                _ => String::new(),
            };
            if source.starts_with('.') || source.starts_with('/') {
                binds += 1;
                problems.check(!source.starts_with('/'), || {
                    format!("{COMPOSE}: `{name}` mounts absolute host path {source}; mount repository files with ./")
                });
                problems.check(repo_path(&source).exists(), || {
                    format!("{COMPOSE}: `{name}` mounts {source}, which does not exist in the repository")
                });
            } else if !source.is_empty() {
                problems.check(declared.contains(&source), || {
                    format!("{COMPOSE}: `{name}` uses volume `{source}`, not declared under top-level `volumes`")
                });
            }
        }
    }
    assert!(
        binds > 0,
        "{COMPOSE}: no repository mounts found; parser broken?"
    );
    problems.assert_none("compose mounts");
}

/// `docker compose config -q`, or the standalone `docker-compose` (which
/// validates without a Docker engine).
#[test]
fn compose_cli_accepts_the_file() {
    let cli: Vec<&str> = if runs("docker", &["compose", "version"]) {
        vec!["docker", "compose"]
    } else {
        require(
            "docker-compose",
            &["version"],
            "apt-get install docker-compose (or the Docker Compose plugin)",
        );
        vec!["docker-compose"]
    };
    let out = Command::new(cli[0])
        .args(&cli[1..])
        .current_dir(repo_root())
        .args(["--env-file", ENV_EXAMPLE, "-f", COMPOSE, "config", "-q"])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", cli.join(" ")));
    assert!(
        out.status.success(),
        "{} --env-file {ENV_EXAMPLE} config -q rejected {COMPOSE}:\n{}{}",
        cli.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
