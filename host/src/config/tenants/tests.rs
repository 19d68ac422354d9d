use crate::config::{Config, ConfigError};

const BASE: &str = r#"
[kafka]
brokers = "127.0.0.1:9092"
[elasticsearch]
url = "http://127.0.0.1:9200"
[tenants]
dir = "tenants"
[tenants.defaults]
max_memory_bytes = 16777216
"#;

const ACME: &str = r#"
index_prefix = "acme-"
topic_prefixes = ["acme."]
allowed_outbound_hosts = ["http://127.0.0.1:8090"]
[quotas]
records_per_second = 500
max_batch_time = "200ms"
[pipelines.tweets]
topics = ["acme.tweets"]
index = "acme-tweets"
allowed_outbound_hosts = ["http://127.0.0.1:8090"]
modules = [{ path = "clean.wasm" }]
"#;

/// A config folder with `weir.toml`, `tenants/` and each tenant's modules.
struct Dir(tempfile::TempDir);

impl Dir {
    fn new(tenants: &[(&str, &str)]) -> Self {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("tenants")).unwrap();
        for (id, text) in tenants {
            std::fs::write(d.path().join(format!("tenants/{id}.toml")), text).unwrap();
            let modules = d.path().join(format!("tenants/{id}/modules"));
            std::fs::create_dir_all(&modules).unwrap();
            std::fs::write(modules.join("clean.wasm"), b"not checked here").unwrap();
        }
        Self(d)
    }

    fn load(&self, extra: &str) -> Result<Config, ConfigError> {
        let text = format!("{BASE}{extra}");
        Config::from_toml(&text, &self.0.path().join("weir.toml"), self.0.path())
    }
}

fn error(dir: &Dir) -> String {
    dir.load("").unwrap_err().to_string()
}

#[test]
fn tenant_pipelines_join_the_host_under_their_tenant() {
    let dir = Dir::new(&[("acme", ACME)]);
    let c = dir.load("").unwrap();
    let p = &c.pipelines["acme.tweets"];
    let binding = p.tenant.as_ref().unwrap();
    assert_eq!(binding.id, "acme");
    // Overrides win, defaults fill the rest.
    assert_eq!(binding.quotas.records_per_second, 500);
    assert_eq!(
        binding.quotas.max_batch_time,
        std::time::Duration::from_millis(200)
    );
    assert_eq!(binding.quotas.max_memory_bytes, 16 << 20);
    assert_eq!(p.dead_letter_topic.as_deref(), Some("acme.tweets-dlq"));
    let modules_dir = std::fs::canonicalize(dir.0.path())
        .unwrap()
        .join("tenants/acme/modules");
    assert_eq!(p.modules[0].path, modules_dir.join("clean.wasm"));
    assert_eq!(c.tenant_set["acme"].modules_dir, modules_dir);
}

#[test]
fn a_topic_outside_the_tenant_is_refused_naming_file_and_key() {
    let dir = Dir::new(&[(
        "acme",
        &ACME.replace("topics = [\"acme.tweets\"]", "topics = [\"tweets\"]"),
    )]);
    let e = error(&dir);
    assert!(
        e.contains(
            "tenants/acme.toml: pipelines.tweets.topics: topic `tweets` is not the tenant's"
        ),
        "{e}"
    );
}

#[test]
fn an_index_outside_the_prefix_is_refused() {
    let dir = Dir::new(&[(
        "acme",
        &ACME.replace("index = \"acme-tweets\"", "index = \"weir-tweets\""),
    )]);
    assert!(error(&dir).contains("pipelines.tweets.index: index `weir-tweets` does not start with the tenant's prefix `acme-`"));
}

#[test]
fn a_dead_letter_topic_outside_the_tenant_is_refused() {
    let dir = Dir::new(&[(
        "acme",
        &ACME.replace(
            "index = \"acme-tweets\"",
            "index = \"acme-tweets\"\ndead_letter_topic = \"ops-dlq\"",
        ),
    )]);
    assert!(
        error(&dir).contains("pipelines.tweets.dead_letter_topic: `ops-dlq` is not the tenant's")
    );
}

#[test]
fn module_paths_may_not_leave_the_tenants_folder() {
    for path in [
        "../../other/modules/clean.wasm",
        "/etc/passwd",
        "x/../../clean.wasm",
    ] {
        let dir = Dir::new(&[("acme", &ACME.replace("clean.wasm", path))]);
        let e = error(&dir);
        assert!(
            e.contains("pipelines.tweets.modules[0].path")
                && e.contains("leaves the tenant's modules folder"),
            "{path}: {e}"
        );
    }
}

#[test]
fn outbound_hosts_must_be_granted_to_the_tenant() {
    let dir = Dir::new(&[(
        "acme",
        &ACME.replace(
            "allowed_outbound_hosts = [\"http://127.0.0.1:8090\"]\n[quotas]",
            "[quotas]",
        ),
    )]);
    assert!(error(&dir).contains(
        "pipelines.tweets.allowed_outbound_hosts: `http://127.0.0.1:8090` is not in the tenant's"
    ));
}

#[test]
fn overlapping_tenants_are_refused() {
    // acme2 owns `acme.t…`, which overlaps acme's `acme.`.
    let other = ACME.replace("acme-", "acme2-").replace(
        "topic_prefixes = [\"acme.\"]",
        "topic_prefixes = [\"acme.t\"]",
    );
    let dir = Dir::new(&[("acme", ACME), ("acme2", &other)]);
    let e = error(&dir);
    assert!(
        e.contains("acme2.toml: topic_prefixes: `acme.t` overlaps tenant `acme`"),
        "{e}"
    );
}

#[test]
fn quotas_are_checked_against_the_runtime() {
    let dir = Dir::new(&[(
        "acme",
        &ACME.replace("[quotas]", "[quotas]\nmax_memory_bytes = 1073741824"),
    )]);
    assert!(
        error(&dir)
            .contains("quotas.max_memory_bytes: 1073741824 exceeds runtime.max_memory_bytes")
    );
    let dir = Dir::new(&[(
        "acme",
        &ACME.replace("[quotas]", "[quotas]\nmax_memroy_bytes = 1"),
    )]);
    assert!(error(&dir).contains("unknown field `max_memroy_bytes`"));
}

#[test]
fn bad_ids_and_tokens_are_refused() {
    let dir = Dir::new(&[("Acme", ACME)]);
    assert!(error(&dir).contains("`Acme` is not a tenant id"));
    let dir = Dir::new(&[("acme", &format!("token_sha256 = \"abc\"\n{ACME}"))]);
    assert!(error(&dir).contains("token_sha256: must be 64 hex digits"));
}

#[test]
fn a_missing_tenants_folder_names_the_key() {
    let d = tempfile::tempdir().unwrap();
    let e = Config::from_toml(BASE, &d.path().join("weir.toml"), d.path())
        .unwrap_err()
        .to_string();
    assert!(e.contains("tenants.dir:"), "{e}");
}

#[test]
fn module_names_for_the_api_are_plain() {
    use super::valid_module_name;
    for ok in ["clean", "text-clean", "a_1"] {
        assert!(valid_module_name(ok), "{ok}");
    }
    for bad in [
        "",
        "..",
        "../x",
        "a/b",
        ".hidden",
        "A",
        "x.wasm",
        "-x",
        &"a".repeat(65),
    ] {
        assert!(!valid_module_name(bad), "{bad}");
    }
}

#[test]
fn tenants_on_a_public_admin_port_need_an_operator_token() {
    let dir = Dir::new(&[("acme", ACME)]);
    let e = dir
        .load("\n[admin]\nlisten = \"0.0.0.0:9464\"\n")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("admin.operator_token_sha256: required when tenants are configured"),
        "{e}"
    );
    let token = format!(
        "\n[admin]\nlisten = \"0.0.0.0:9464\"\noperator_token_sha256 = \"{}\"\n",
        "a".repeat(64)
    );
    dir.load(&token).unwrap();
    // Loopback stays usable without one (a single operator's machine).
    dir.load("").unwrap();
}

#[test]
fn a_tenant_reads_only_its_own_environment_variables() {
    let upstream = |var: &str| {
        format!(
            "{ACME}\n[upstreams.c]\nurl = \"http://127.0.0.1:8090\"\nauth = {{ bearer_env = \"{var}\" }}\n"
        )
    };
    for var in ["ELASTIC_PASSWORD", "WEIR_TENANT_GLOBEX_TOKEN", "ACME_TOKEN"] {
        let dir = Dir::new(&[("acme", &upstream(var))]);
        let e = error(&dir);
        assert!(
            e.contains(&format!(
                "acme.toml: upstreams.c.auth.bearer_env: `{var}` is not this tenant's to read: its variables start with `WEIR_TENANT_ACME_`"
            )),
            "{e}"
        );
    }
    let dir = Dir::new(&[("acme", &upstream("WEIR_TENANT_ACME_TOKEN"))]);
    assert!(dir.load("").is_ok());
    // The operator chooses the prefix.
    let dir = Dir::new(&[("acme", &upstream("T_ACME_TOKEN"))]);
    assert!(dir.load("").is_err());
    let base = BASE.replace(
        "dir = \"tenants\"",
        "dir = \"tenants\"\nenv_prefix = \"T_\"",
    );
    Config::from_toml(&base, &dir.0.path().join("weir.toml"), dir.0.path()).unwrap();
}

#[test]
fn tenants_may_not_share_a_modules_folder() {
    let other = ACME
        .replace("acme-", "globex-")
        .replace("acme.", "globex.")
        .replace(
            "index_prefix",
            "modules_dir = \"acme/modules/x\"\nindex_prefix",
        );
    let dir = Dir::new(&[("acme", ACME), ("globex", &other)]);
    let e = error(&dir);
    assert!(
        e.contains("globex.toml: modules_dir:")
            && e.contains("overlaps tenant `acme`'s modules folder"),
        "{e}"
    );
}

#[test]
fn a_tenants_token_endpoint_must_be_one_of_its_hosts() {
    let with_token_url = |url: &str| {
        format!(
            "{ACME}\n[upstreams.c]\nurl = \"http://127.0.0.1:8090\"\nauth = {{ token_url = \"{url}\", username_env = \"WEIR_TENANT_ACME_U\", password_env = \"WEIR_TENANT_ACME_P\" }}\n"
        )
    };
    let dir = Dir::new(&[("acme", &with_token_url("http://169.254.169.254/token"))]);
    let e = error(&dir);
    assert!(
        e.contains("acme.toml: upstreams.c.auth.token_url: `http://169.254.169.254/token` is not in the tenant's allowed_outbound_hosts"),
        "{e}"
    );
    let dir = Dir::new(&[("acme", &with_token_url("http://127.0.0.1:8090/token"))]);
    dir.load("").unwrap();
}

/// `acme` with another quota and `globex`, both loadable.
const GLOBEX: &str = r#"
[pipelines.news]
topics = ["globex.news"]
index = "globex-news"
modules = [{ path = "clean.wasm" }]
"#;

impl Dir {
    /// Writes `weir.toml` and reloads it for a host running `running`.
    fn reload(
        &self,
        running: &Config,
    ) -> Result<(Config, Vec<crate::config::ConfigProblem>), ConfigError> {
        let path = self.0.path().join("weir.toml");
        std::fs::write(&path, BASE).unwrap();
        Config::reload(&path, running)
    }

    fn write(&self, id: &str, text: &str) {
        std::fs::write(self.0.path().join(format!("tenants/{id}.toml")), text).unwrap();
    }
}

#[test]
fn a_bad_tenant_file_refuses_only_that_tenants_change_on_reload() {
    let dir = Dir::new(&[("acme", ACME), ("globex", GLOBEX)]);
    let running = dir.load("").unwrap();
    // globex changes validly; acme's file breaks in two ways in turn (not
    // TOML of the right shape; a value out of range); initech is new and
    // broken.
    dir.write(
        "globex",
        &format!("[quotas]\nrecords_per_second = 7\n{GLOBEX}"),
    );
    dir.write("initech", "index_prefix = 3\n");
    std::fs::create_dir_all(dir.0.path().join("tenants/initech/modules")).unwrap();
    for (bad, key) in [
        (format!("bogus = 1\n{ACME}"), ""),
        (
            ACME.replace("records_per_second = 500", "max_stored_modules = 0"),
            "quotas.max_stored_modules",
        ),
    ] {
        dir.write("acme", &bad);
        let (c, refused) = dir.reload(&running).unwrap();
        assert_eq!(c.tenant_set["globex"].quotas.records_per_second, 7);
        assert_eq!(
            c.tenant_set["acme"], running.tenant_set["acme"],
            "acme keeps its running definition"
        );
        assert_eq!(c.pipelines["acme.tweets"], running.pipelines["acme.tweets"]);
        assert!(
            !c.tenant_set.contains_key("initech"),
            "a new bad tenant stays out"
        );
        let files: Vec<String> = refused
            .iter()
            .map(|p| p.file.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(files, ["acme.toml", "initech.toml"], "{refused:?}");
        assert_eq!(refused[0].key, key, "{refused:?}");
        assert!(
            refused[1].key == "index_prefix" || refused[1].reason.contains("index_prefix"),
            "{refused:?}"
        );
    }
    // A problem in weir.toml itself still refuses the whole reload.
    let path = dir.0.path().join("weir.toml");
    std::fs::write(&path, format!("{BASE}[admin]\nmax_connections = 0\n")).unwrap();
    let e = Config::reload(&path, &running).unwrap_err();
    assert!(e.to_string().contains("admin.max_connections"), "{e}");
}

#[test]
fn stored_module_caps_are_checked() {
    let dir = Dir::new(&[(
        "acme",
        &ACME.replace(
            "records_per_second = 500",
            "max_module_bytes = 1000\nmax_stored_module_bytes = 999",
        ),
    )]);
    let e = error(&dir);
    assert!(
        e.contains(
            "acme.toml: quotas.max_stored_module_bytes: 999 is less than max_module_bytes (1000)"
        ),
        "{e}"
    );
}

#[test]
fn a_batch_must_hold_at_least_one_largest_document() {
    let dir = Dir::new(&[(
        "acme",
        &ACME.replace(
            "records_per_second = 500",
            "max_document_bytes = 2000\nmax_batch_output_bytes = 1999",
        ),
    )]);
    let e = error(&dir);
    assert!(
        e.contains(
            "acme.toml: quotas.max_batch_output_bytes: 1999 is less than max_document_bytes (2000)"
        ),
        "{e}"
    );
}

/// ACME with an `[elasticsearch]` table holding `auth`.
fn with_es(auth: &str) -> String {
    format!("{ACME}\n[elasticsearch]\nauth = {auth}\n")
}

#[test]
fn a_tenants_elasticsearch_credentials_name_only_its_own_variables() {
    for (auth, key, var) in [
        (
            r#"{ type = "api_key", api_key_env = "ELASTIC_PASSWORD" }"#,
            "api_key_env",
            "ELASTIC_PASSWORD",
        ),
        (
            r#"{ type = "basic", username = "acme", password_env = "WEIR_TENANT_GLOBEX_ES" }"#,
            "password_env",
            "WEIR_TENANT_GLOBEX_ES",
        ),
    ] {
        let dir = Dir::new(&[("acme", &with_es(auth))]);
        let e = error(&dir);
        assert!(
            e.contains(&format!(
                "acme.toml: elasticsearch.auth.{key}: `{var}` is not this tenant's to read: its variables start with `WEIR_TENANT_ACME_`"
            )),
            "{e}"
        );
    }
    let own = r#"{ type = "api_key", api_key_env = "WEIR_TENANT_ACME_ES_KEY" }"#;
    let dir = Dir::new(&[("acme", &with_es(own)), ("globex", &globex())]);
    let c = dir.load("").unwrap();
    let auth = crate::config::ElasticsearchAuth::ApiKey {
        api_key_env: "WEIR_TENANT_ACME_ES_KEY".into(),
    };
    assert_eq!(c.tenant_set["acme"].elasticsearch.as_ref(), Some(&auth));
    let binding = c.pipelines["acme.tweets"].tenant.clone().unwrap();
    assert_eq!(binding.elasticsearch, Some(auth));
    // A tenant without the table indexes with the host's credentials.
    let globex = c.pipelines["globex.tweets"].tenant.clone().unwrap();
    assert_eq!(globex.elasticsearch, None);
}

/// A second tenant that names no credentials.
fn globex() -> String {
    ACME.replace("acme", "globex")
        .replace("allowed_outbound_hosts = [\"http://127.0.0.1:8090\"]\n", "")
}

#[test]
fn a_tenant_cannot_point_its_documents_elsewhere_or_send_them_bare() {
    // Only `auth`: the cluster, TLS and batching stay the host's.
    let dir = Dir::new(&[(
        "acme",
        &format!("{ACME}\n[elasticsearch]\nurl = \"http://10.0.0.1:9200\"\n"),
    )]);
    let e = error(&dir);
    assert!(
        e.contains("acme.toml") && e.contains("unknown field `url`"),
        "{e}"
    );
    let dir = Dir::new(&[("acme", &with_es(r#"{ type = "none" }"#))]);
    let e = error(&dir);
    assert!(
        e.contains("acme.toml: elasticsearch.auth: `none` is not a tenant credential"),
        "{e}"
    );
}

#[test]
fn a_tenants_elasticsearch_secret_must_be_set_when_the_environment_is_read() {
    let auth =
        r#"{ type = "basic", username = "acme", password_env = "WEIR_TENANT_ACME_ES_PASSWORD" }"#;
    let dir = Dir::new(&[("acme", &with_es(auth))]);
    let path = dir.0.path().join("weir.toml");
    let e = Config::from_toml_with(BASE, &path, dir.0.path(), |_| None)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains(
            "acme.toml: elasticsearch.auth.password_env: environment variable WEIR_TENANT_ACME_ES_PASSWORD is not set"
        ),
        "{e}"
    );
    let env = |k: &str| (k == "WEIR_TENANT_ACME_ES_PASSWORD").then(|| "s3cret".to_string());
    Config::from_toml_with(BASE, &path, dir.0.path(), env).unwrap();
}
