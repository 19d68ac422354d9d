//! The Weir image and its config: `deploy/weir.compose.toml` uses only keys
//! Weir accepts and names only templates and modules the Dockerfile puts in
//! the image; the Dockerfiles copy every workspace member; topics, hosts and
//! ports agree across the config, the compose file and the init scripts.

mod common;

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::Value as Json;
use toml::Value;

use common::dockerfile::{Copy, Dockerfile};
use common::mapping::{template_for_index, templates};
use common::{Problems, glob_match, read, repo_path};

const CONFIG: &str = "deploy/weir.compose.toml";

fn config() -> Value {
    toml::from_str(&read(CONFIG)).unwrap_or_else(|e| panic!("{CONFIG}: invalid TOML: {e}"))
}

fn compose() -> Json {
    serde_norway::from_str(&read("docker-compose.yml"))
        .expect("docker-compose.yml parses (see compose.rs)")
}

// --- the config's keys ------------------------------------------------------------

/// The config is parsed by Weir's own `Config` (every table rejects
/// unknown keys, every value is validated), laid out as the image lays it
/// out: modules and templates where the Dockerfile puts them next to it.
#[test]
fn weir_config_is_accepted_by_weirs_own_parser() {
    let text = read(CONFIG);
    let config = config();
    let dir = tempfile::tempdir().expect("temp dir");
    let mut files = Vec::new();
    for p in config
        .get("pipelines")
        .and_then(Value::as_table)
        .into_iter()
        .flat_map(|t| t.values())
    {
        for m in p
            .get("modules")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(path) = m.get("path").and_then(Value::as_str) {
                files.push(path.to_owned());
            }
        }
    }
    for t in config["elasticsearch"]
        .get("templates")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(path) = t.get("path").and_then(Value::as_str) {
            files.push(path.to_owned());
        }
    }
    for f in &files {
        let at = dir.path().join(f);
        std::fs::create_dir_all(at.parent().unwrap()).unwrap();
        std::fs::write(&at, b"").unwrap();
    }
    let parsed = weir::config::Config::from_toml(&text, Path::new(CONFIG), dir.path())
        .unwrap_or_else(|e| panic!("Weir refuses {CONFIG}: {e}"));
    for name in ["tweets", "news"] {
        assert!(
            parsed.pipelines.contains_key(name),
            "{CONFIG}: needs pipeline {name}"
        );
    }
}

// --- config vs image -------------------------------------------------------------------

/// Where a path inside the image comes from: the COPY of the final stage
/// whose destination contains it, and the path below that destination.
fn copy_for<'a>(copies: &'a [Copy], image_path: &str) -> Option<(&'a Copy, String)> {
    copies.iter().rev().find_map(|c| {
        if c.dest.ends_with('/') {
            image_path
                .strip_prefix(c.dest.as_str())
                .map(|rest| (c, rest.to_owned()))
        } else {
            (image_path == c.dest).then(|| (c, String::new()))
        }
    })
}

/// Modules the builder stage builds and copies to the image.
fn image_modules(docker: &Dockerfile) -> Vec<String> {
    let build = docker
        .stage("build")
        .unwrap_or_else(|| panic!("{}: no `build` stage", docker.file));
    let modules = build
        .arg("WEIR_MODULES")
        .unwrap_or_else(|| panic!("{}: build stage has no ARG WEIR_MODULES", docker.file));
    let run = build.run_text();
    assert!(
        run.contains("cargo xtask modules ${WEIR_MODULES}"),
        "{}: build stage does not run `cargo xtask modules ${{WEIR_MODULES}}`",
        docker.file
    );
    assert!(
        run.contains("dist/modules/$m.wasm") && run.contains("/out/modules"),
        "{}: build stage does not copy the built modules to /out/modules",
        docker.file
    );
    modules.split_whitespace().map(str::to_owned).collect()
}

#[test]
fn weir_config_names_only_templates_and_modules_the_image_copies() {
    let docker = Dockerfile::load("Dockerfile");
    let config = config();
    let runtime = docker.final_stage();
    let copies = runtime.copies();
    let mut problems = Problems::new();

    // Where the config lands, and that the image runs it.
    let config_copy = copies
        .iter()
        .find(|c| c.from.is_none() && c.sources == [CONFIG]);
    let Some(config_copy) = config_copy else {
        panic!("Dockerfile: the final stage does not COPY {CONFIG}");
    };
    let config_in_image = config_copy.dest.clone();
    let config_dir = Path::new(&config_in_image)
        .parent()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let cmd = runtime
        .instruction("CMD")
        .map(|i| i.args.clone())
        .unwrap_or_default();
    problems.check(cmd.contains(&config_in_image), || {
        format!("Dockerfile: CMD {cmd} does not run {config_in_image}")
    });

    // Templates: copied from the repository, named after their files.
    let templates = config["elasticsearch"]
        .get("templates")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    problems.check(templates.len() == 2, || {
        format!(
            "{CONFIG}: expected the two templates, found {}",
            templates.len()
        )
    });
    for t in &templates {
        let name = t.get("name").and_then(Value::as_str).unwrap_or("");
        let path = t.get("path").and_then(Value::as_str).unwrap_or("");
        let image_path = format!("{config_dir}/{path}");
        match copy_for(&copies, &image_path) {
            Some((c, rest)) if c.from.is_none() => {
                let source = c.sources.first().cloned().unwrap_or_default();
                let repo_file = format!("{}{rest}", if source.ends_with('/') { source.clone() } else { format!("{source}/") });
                problems.check(repo_path(&repo_file).is_file(), || {
                    format!("{CONFIG}: template {path} would be {image_path} in the image, copied from {repo_file}, which does not exist")
                });
                // setup.sh installs templates under their file names; the same names
                // keep the two installs from creating rival templates.
                let stem = Path::new(path).file_stem().unwrap_or_default().to_string_lossy();
                problems.check(stem == name, || format!("{CONFIG}: template `{name}` is read from {path}; name it `{stem}` like deploy/setup.sh does"));
            }
            Some((c, _)) => problems.add(format!("{CONFIG}: template {path} comes from stage {:?}, expected the repository", c.from)),
            None => problems.add(format!("{CONFIG}: template {path} would be {image_path}, which no COPY in the Dockerfile's final stage provides")),
        }
    }

    // Modules: built by the builder stage and copied from it.
    let built = image_modules(&docker);
    let mut used = BTreeSet::new();
    for (name, p) in config
        .get("pipelines")
        .and_then(Value::as_table)
        .into_iter()
        .flatten()
    {
        for (i, m) in p
            .get("modules")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            let path = m.get("path").and_then(Value::as_str).unwrap_or("");
            let at = format!("{CONFIG}: pipelines.{name}.modules[{i}] ({path})");
            let image_path = format!("{config_dir}/{path}");
            let stem = Path::new(path)
                .file_stem()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            used.insert(stem.clone());
            match copy_for(&copies, &image_path) {
                Some((c, rest))
                    if c.from.as_deref() == Some("build") && c.sources == ["/out/modules/"] =>
                {
                    problems.check(rest == format!("{stem}.wasm"), || {
                        format!("{at}: would be {image_path}, not a module file")
                    });
                    problems.check(built.contains(&stem), || {
                        format!(
                            "{at}: the image builds only {built:?} (Dockerfile ARG WEIR_MODULES)"
                        )
                    });
                }
                Some((c, _)) => problems.add(format!(
                    "{at}: {image_path} comes from {:?} {:?}, not the built modules",
                    c.from, c.sources
                )),
                None => problems.add(format!(
                    "{at}: {image_path} is not provided by any COPY in the Dockerfile's final stage"
                )),
            }
        }
    }
    for m in &built {
        problems.check(used.contains(m), || {
            format!("Dockerfile: WEIR_MODULES builds `{m}`, which {CONFIG} does not use")
        });
    }
    problems.assert_none("weir config vs image");
}

/// Every module the image builds must exist as a module package, or
/// `cargo xtask modules` (and so `docker build`) fails.
///
/// Ignored while detect-hate, classify-sentiment and enrich are being
/// written (it fails until they land under modules/); run it with
/// `cargo test -p weir-deploy-check -- --ignored`, and drop the `ignore`
/// once they exist.
#[test]
fn image_modules_have_module_packages() {
    let docker = Dockerfile::load("Dockerfile");
    let mut problems = Problems::new();
    for m in image_modules(&docker) {
        let manifest = repo_path(&format!("modules/{m}/Cargo.toml"));
        match std::fs::read_to_string(&manifest) {
            Ok(text) => {
                let doc: Value = toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", manifest.display()));
                let name = doc.get("package").and_then(|p| p.get("name")).and_then(Value::as_str);
                problems.check(name == Some(m.as_str()), || format!("modules/{m}/Cargo.toml: package is named {name:?}, not `{m}`"));
                let cdylib = doc.get("lib").and_then(|l| l.get("crate-type")).and_then(Value::as_array).is_some_and(|t| t.iter().any(|k| k.as_str() == Some("cdylib")));
                problems.check(cdylib, || format!("modules/{m}/Cargo.toml: needs [lib] crate-type = [\"cdylib\"] to build a component"));
            }
            Err(_) => problems.add(format!(
                "Dockerfile builds module `{m}` (ARG WEIR_MODULES), but modules/{m}/Cargo.toml does not exist: `docker build` would fail"
            )),
        }
    }
    problems.assert_none("modules the image builds");
}

// --- Dockerfiles vs the workspace --------------------------------------------------

fn workspace_members() -> Vec<String> {
    let manifest: Value = toml::from_str(&read("Cargo.toml")).expect("Cargo.toml parses");
    let patterns: Vec<String> = manifest["workspace"]["members"]
        .as_array()
        .expect("workspace.members")
        .iter()
        .filter_map(Value::as_str)
        .map(str::to_owned)
        .collect();
    let mut members = Vec::new();
    for pattern in patterns {
        if !pattern.contains('*') {
            members.push(pattern);
            continue;
        }
        let parent = pattern.rsplit_once('/').map(|(p, _)| p).unwrap_or(".");
        for entry in std::fs::read_dir(repo_path(parent))
            .into_iter()
            .flatten()
            .flatten()
        {
            let rel = format!("{parent}/{}", entry.file_name().to_string_lossy());
            if glob_match(&pattern, &rel) && entry.path().join("Cargo.toml").is_file() {
                members.push(rel);
            }
        }
    }
    members
}

#[test]
fn dockerfiles_copy_the_whole_workspace_into_the_builder() {
    let members = workspace_members();
    assert!(
        members.iter().any(|m| m == "host"),
        "workspace members not found: {members:?}"
    );
    let mut problems = Problems::new();
    for file in ["Dockerfile", "classifier/Dockerfile"] {
        let docker = Dockerfile::load(file);
        let build = docker
            .stage("build")
            .unwrap_or_else(|| panic!("{file}: no `build` stage"));
        let sources: Vec<String> = build
            .copies()
            .into_iter()
            .filter(|c| c.from.is_none())
            .flat_map(|c| c.sources)
            .collect();
        for s in &sources {
            problems.check(repo_path(s).exists(), || {
                format!("{file}: COPY source `{s}` does not exist in the repository")
            });
        }
        let covered = |path: &str| {
            sources.iter().any(|s| {
                let s = s.trim_end_matches('/');
                s == "." || path == s || path.starts_with(&format!("{s}/"))
            })
        };
        for needed in
            members
                .iter()
                .map(String::as_str)
                .chain(["Cargo.toml", "Cargo.lock", "wit", ".cargo"])
        {
            problems.check(covered(needed), || format!("{file}: the build stage does not COPY `{needed}` (a workspace member or workspace file)"));
        }
        problems.check(
            docker.final_stage().name.is_none() && docker.final_stage().base.contains("slim"),
            || format!("{file}: the runtime stage should be a slim Debian image"),
        );
    }
    problems.assert_none("Dockerfiles vs workspace");
}

#[test]
fn images_build_what_the_stack_runs() {
    let mut problems = Problems::new();
    let weir = Dockerfile::load("Dockerfile");
    let build = weir.stage("build").expect("Dockerfile: build stage");
    let run = build.run_text();
    for needle in [
        "rustup target add wasm32-wasip2",
        "cargo build --release -p weir ",
        "cargo xtask modules",
    ] {
        problems.check(run.contains(needle), || {
            format!(
                "Dockerfile: the build stage does not run `{}`",
                needle.trim()
            )
        });
    }
    let runtime = weir.final_stage();
    let copies = runtime.copies();
    problems.check(
        copies
            .iter()
            .any(|c| c.from.as_deref() == Some("build") && c.dest == "/usr/local/bin/weir"),
        || "Dockerfile: the weir binary is not copied to /usr/local/bin/weir".into(),
    );
    problems.check(
        copies
            .iter()
            .any(|c| c.from.is_none() && c.sources == ["config/templates/"]),
        || "Dockerfile: config/templates/ is not copied into the image".into(),
    );
    problems.check(
        runtime
            .instruction("ENTRYPOINT")
            .is_some_and(|i| i.args.contains("weir")),
        || {
            "Dockerfile: ENTRYPOINT should be weir (the producers run `weir produce` through it)"
                .into()
        },
    );

    let classifier = Dockerfile::load("classifier/Dockerfile");
    let crun = classifier
        .stage("build")
        .expect("classifier/Dockerfile: build stage")
        .run_text();
    problems.check(
        crun.contains("cargo build --release -p weir-classifier"),
        || "classifier/Dockerfile: does not build weir-classifier".into(),
    );
    let cenv = classifier
        .final_stage()
        .instructions
        .iter()
        .filter(|i| i.keyword == "ENV")
        .map(|i| i.args.clone())
        .collect::<Vec<_>>()
        .join(" ");
    problems.check(cenv.contains("WEIR_CLASSIFIER_LISTEN=0.0.0.0:8090"), || {
        "classifier/Dockerfile: must listen on 0.0.0.0:8090 (WEIR_CLASSIFIER_LISTEN), not the loopback default".into()
    });
    problems.assert_none("images");
}

// --- topics, hosts and ports across files --------------------------------------------

/// `create NAME PARTITIONS` lines of deploy/kafka-init.sh.
fn created_topics() -> Vec<(String, u32)> {
    read("deploy/kafka-init.sh")
        .lines()
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            (words.next() == Some("create")).then_some(())?;
            Some((words.next()?.to_owned(), words.next()?.parse().ok()?))
        })
        .collect()
}

#[test]
fn topics_and_indices_agree_across_files() {
    let config = config();
    let topics = created_topics();
    assert!(
        !topics.is_empty(),
        "deploy/kafka-init.sh creates no topics (`create NAME PARTITIONS` lines)"
    );
    let templates = templates();
    let mut problems = Problems::new();
    for (name, p) in config
        .get("pipelines")
        .and_then(Value::as_table)
        .into_iter()
        .flatten()
    {
        for t in p
            .get("topics")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            match topics.iter().find(|(n, _)| n == t) {
                Some((_, partitions)) => problems.check(*partitions == 4, || format!("deploy/kafka-init.sh: input topic {t} has {partitions} partitions, expected 4")),
                None => problems.add(format!("{CONFIG}: pipeline {name} consumes `{t}`, which deploy/kafka-init.sh does not create (auto-creation is off)")),
            }
        }
        let dlq = p
            .get("dead_letter_topic")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .unwrap_or(format!("{name}-dlq"));
        problems.check(topics.iter().any(|(n, _)| *n == dlq), || format!("{CONFIG}: pipeline {name} dead-letters to `{dlq}`, which deploy/kafka-init.sh does not create"));
        let index = p.get("index").and_then(Value::as_str).unwrap_or("");
        match template_for_index(&templates, index) {
            Ok(t) => problems.check(t.name == index, || {
                format!("{CONFIG}: index {index} is mapped by template {}", t.name)
            }),
            Err(e) => problems.add(format!("{CONFIG}: pipeline {name}: {e}")),
        }
    }
    let produce = read("deploy/produce.sh");
    for topic in produce
        .split("--topic ")
        .skip(1)
        .filter_map(|s| s.split_whitespace().next())
    {
        problems.check(topics.iter().any(|(n, _)| n == topic), || format!("deploy/produce.sh: produces to `{topic}`, which deploy/kafka-init.sh does not create"));
    }
    for file in ["samples/tweets.jsonl", "samples/news.jsonl"] {
        let in_image = format!("/{}", file);
        problems.check(
            !produce.contains(&in_image) || repo_path(file).is_file(),
            || format!("deploy/produce.sh reads {in_image}, missing from the repository"),
        );
    }
    problems.assert_none("topics and indices");
}

/// `host:port` of a URL or broker string.
fn host_port(s: &str) -> (String, u16) {
    let rest = s.split("://").last().unwrap_or(s);
    let authority = rest.split('/').next().unwrap_or("");
    let (host, port) = authority.rsplit_once(':').unwrap_or((authority, "80"));
    (host.to_owned(), port.parse().unwrap_or(0))
}

#[test]
fn weir_config_points_at_compose_services() {
    let config = config();
    let compose = compose();
    let services = compose["services"].as_object().expect("services");
    let mut problems = Problems::new();

    let (kafka_host, kafka_port) = host_port(config["kafka"]["brokers"].as_str().unwrap_or(""));
    let listeners = services
        .get(&kafka_host)
        .and_then(|s| s["environment"]["KAFKA_ADVERTISED_LISTENERS"].as_str())
        .unwrap_or("");
    problems.check(listeners.contains(&format!("://{kafka_host}:{kafka_port}")), || {
        format!("{CONFIG}: kafka.brokers {kafka_host}:{kafka_port} is not an advertised listener of compose service `{kafka_host}` ({listeners:?})")
    });

    let (es_host, es_port) = host_port(config["elasticsearch"]["url"].as_str().unwrap_or(""));
    problems.check(services.contains_key(&es_host) && es_port == 9200, || {
        format!("{CONFIG}: elasticsearch.url should be http://<compose service>:9200, not {es_host}:{es_port}")
    });
    if let Some(var) = config["elasticsearch"]
        .get("auth")
        .and_then(|a| a.get("password_env"))
        .and_then(Value::as_str)
    {
        let weir_env = &services["weir"]["environment"];
        problems.check(!weir_env[var].is_null(), || {
            format!("{CONFIG}: reads the password from {var}, which the weir service does not set")
        });
    }

    for (name, p) in config
        .get("pipelines")
        .and_then(Value::as_table)
        .into_iter()
        .flatten()
    {
        for m in p
            .get("modules")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(url) = m
                .get("config")
                .and_then(|c| c.get("url"))
                .and_then(Value::as_str)
            {
                let (host, port) = host_port(url);
                problems.check(services.contains_key(&host) && port == 8090, || {
                    format!("{CONFIG}: pipeline {name}: module url {url} should point at a compose service on port 8090 (the classifier listens there)")
                });
                let deps = &services["weir"]["depends_on"][&host];
                problems.check(deps["condition"] == "service_healthy", || {
                    format!("docker-compose.yml: weir should wait for `{host}` to be healthy")
                });
            }
        }
    }

    let admin = config
        .get("admin")
        .and_then(|a| a.get("listen"))
        .and_then(Value::as_str)
        .unwrap_or("");
    let (_, admin_port) = host_port(admin);
    let health = services["weir"]["healthcheck"]["test"].to_string();
    problems.check(admin.starts_with("0.0.0.0:") && health.contains(&format!("localhost:{admin_port}/healthz")), || {
        format!("{CONFIG}: admin.listen {admin} must listen on 0.0.0.0 at the port the weir healthcheck probes ({health})")
    });
    problems.assert_none("weir config vs compose");
}
