//! Kibana saved objects (`kibana/weir-dashboard.ndjson`): well-formed Kibana 8
//! export lines whose references resolve, whose visualizations and saved
//! search use fields the index templates map with a compatible type, and a
//! dashboard that lays them all out. Also runs `kibana/import.sh` against a
//! recording stand-in for Kibana's import API.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Command, Output};

use serde_json::Value;

use common::http::{OneShotServer, base64};
use common::mapping::{Template, is_numeric, template_for_index, templates};
use common::{Problems, read, repo_path, require};

const NDJSON: &str = "kibana/weir-dashboard.ndjson";

struct Object {
    line: usize,
    id: String,
    ty: String,
    attributes: Value,
    references: Vec<(String, String, String)>, // (name, type, id)
}

impl Object {
    fn at(&self) -> String {
        format!("{NDJSON}:{} ({} {})", self.line, self.ty, self.id)
    }

    fn reference(&self, name: &str) -> Option<&(String, String, String)> {
        self.references.iter().find(|(n, _, _)| n == name)
    }

    /// A JSON-in-a-string attribute, parsed.
    fn embedded(&self, path: &[&str]) -> Result<Value, String> {
        let mut v = &self.attributes;
        for key in path {
            v = &v[*key];
        }
        let text = v.as_str().ok_or_else(|| {
            format!(
                "{}: attribute {} is not a string",
                self.at(),
                path.join(".")
            )
        })?;
        serde_json::from_str(text).map_err(|e| {
            format!(
                "{}: attribute {} is not JSON: {e}",
                self.at(),
                path.join(".")
            )
        })
    }
}

fn objects() -> Vec<Object> {
    let text = read(NDJSON);
    assert!(text.ends_with('\n'), "{NDJSON}: must end with a newline");
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, line)| {
            let at = format!("{NDJSON}:{}", i + 1);
            let v: Value =
                serde_json::from_str(line).unwrap_or_else(|e| panic!("{at}: invalid JSON: {e}"));
            let field = |k: &str| {
                v[k].as_str()
                    .unwrap_or_else(|| panic!("{at}: no string `{k}`"))
                    .to_owned()
            };
            let references = v["references"]
                .as_array()
                .unwrap_or_else(|| panic!("{at}: `references` must be an array"))
                .iter()
                .map(|r| {
                    let s = |k: &str| {
                        r[k].as_str()
                            .unwrap_or_else(|| panic!("{at}: reference without `{k}`: {r}"))
                            .to_owned()
                    };
                    (s("name"), s("type"), s("id"))
                })
                .collect();
            assert!(v["attributes"].is_object(), "{at}: no `attributes` object");
            assert!(
                v["coreMigrationVersion"].is_string(),
                "{at}: no coreMigrationVersion (Kibana 8 export format)"
            );
            assert!(
                v["typeMigrationVersion"].is_string(),
                "{at}: no typeMigrationVersion (Kibana 8 export format)"
            );
            Object {
                line: i + 1,
                id: field("id"),
                ty: field("type"),
                attributes: v["attributes"].clone(),
                references,
            }
        })
        .collect()
}

/// Data view id -> template of the indices it covers.
fn data_view_templates<'a>(
    objects: &[Object],
    templates: &'a BTreeMap<String, Template>,
) -> BTreeMap<String, &'a Template> {
    objects
        .iter()
        .filter(|o| o.ty == "index-pattern")
        .map(|o| {
            let title = o.attributes["title"]
                .as_str()
                .unwrap_or_else(|| panic!("{}: no title", o.at()));
            let t =
                template_for_index(templates, title).unwrap_or_else(|e| panic!("{}: {e}", o.at()));
            (o.id.clone(), t)
        })
        .collect()
}

/// Field names a KQL query mentions (`field:value`, `not field:(a or b)`).
fn kql_fields(query: &str) -> Vec<String> {
    let mut out = Vec::new();
    let bytes: Vec<char> = query.chars().collect();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i].is_alphabetic() || bytes[i] == '_' || bytes[i] == '@' {
            let start = i;
            while i < bytes.len() && (bytes[i].is_alphanumeric() || "_.@".contains(bytes[i])) {
                i += 1;
            }
            let word: String = bytes[start..i].iter().collect();
            let mut j = i;
            while j < bytes.len() && bytes[j] == ' ' {
                j += 1;
            }
            if bytes.get(j) == Some(&':') {
                out.push(word);
            }
        } else {
            i += 1;
        }
    }
    out
}

/// Checks that `field` exists in `t` and suits `usage`.
fn check_field(t: &Template, field: &str, usage: &str, at: &str, problems: &mut Problems) {
    let Some(ty) = t.mapping.type_of(field) else {
        problems.add(format!("{at}: field `{field}` is not mapped in {}", t.file));
        return;
    };
    let ok = match usage {
        "numeric" => is_numeric(ty),
        "keyword" => ty == "keyword",
        "date" => ty == "date",
        "sortable" => ty == "date" || ty == "keyword" || is_numeric(ty),
        "aggregatable" => ty == "keyword" || ty == "date" || is_numeric(ty),
        "column" => ty != "object",
        other => panic!("unknown usage {other}"),
    };
    problems.check(ok, || {
        format!(
            "{at}: `{field}` is {ty} in {}, but is used as {usage}",
            t.file
        )
    });
}

/// What kind of field an aggregation needs.
fn agg_usage(agg_type: &str) -> Option<&'static str> {
    Some(match agg_type {
        "avg" | "sum" | "min" | "max" | "median" | "percentiles" | "percentile_ranks"
        | "std_dev" | "histogram" | "range" => "numeric",
        "terms" | "significant_terms" | "rare_terms" => "keyword",
        "date_histogram" | "date_range" => "date",
        "cardinality" => "aggregatable",
        _ => return None,
    })
}

/// Aggregation schemas each legacy visualization type accepts.
fn schemas_for(vis_type: &str) -> Option<&'static [&'static str]> {
    Some(match vis_type {
        "line" | "area" | "histogram" | "horizontal_bar" => {
            &["metric", "segment", "group", "split"]
        }
        "pie" => &["metric", "segment", "split"],
        "tagcloud" => &["metric", "segment"],
        "table" => &["metric", "bucket", "split"],
        "metric" => &["metric", "group"],
        _ => return None,
    })
}

#[test]
fn objects_are_unique_and_references_resolve() {
    let objects = objects();
    let mut problems = Problems::new();
    let mut seen = BTreeSet::new();
    for o in &objects {
        problems.check(seen.insert((o.ty.clone(), o.id.clone())), || {
            format!("{}: duplicate object", o.at())
        });
        problems.check(
            ["index-pattern", "visualization", "search", "dashboard"].contains(&o.ty.as_str()),
            || format!("{}: unexpected object type", o.at()),
        );
        let mut names = BTreeSet::new();
        for (name, ty, id) in &o.references {
            problems.check(names.insert(name.clone()), || {
                format!("{}: reference name `{name}` used twice", o.at())
            });
            problems.check(objects.iter().any(|t| &t.ty == ty && &t.id == id), || {
                format!(
                    "{}: reference `{name}` -> {ty} `{id}` is not in {NDJSON}",
                    o.at()
                )
            });
        }
    }
    problems.assert_none("saved object references");
}

#[test]
fn data_views_have_date_time_fields() {
    let objects = objects();
    let templates = templates();
    let views = data_view_templates(&objects, &templates);
    let mut problems = Problems::new();
    let expected = [
        ("weir-tweets*", "created_at"),
        ("weir-news*", "published_at"),
    ];
    for (title, time_field) in expected {
        let view = objects
            .iter()
            .find(|o| o.ty == "index-pattern" && o.attributes["title"] == title);
        let Some(view) = view else {
            problems.add(format!("{NDJSON}: no data view for `{title}`"));
            continue;
        };
        problems.check(view.attributes["timeFieldName"] == time_field, || {
            format!(
                "{}: time field is {}, expected {time_field}",
                view.at(),
                view.attributes["timeFieldName"]
            )
        });
        check_field(
            views[&view.id],
            time_field,
            "date",
            &view.at(),
            &mut problems,
        );
        // Field formats name mapped fields.
        if let Ok(formats) = view.embedded(&["fieldFormatMap"]) {
            for field in formats.as_object().into_iter().flatten().map(|(k, _)| k) {
                check_field(views[&view.id], field, "column", &view.at(), &mut problems);
            }
        }
    }
    problems.check(views.len() == expected.len(), || {
        format!(
            "{NDJSON}: {} data views, expected {}",
            views.len(),
            expected.len()
        )
    });
    problems.assert_none("data views");
}

#[test]
fn visualizations_use_mapped_fields_of_compatible_types() {
    let objects = objects();
    let templates = templates();
    let views = data_view_templates(&objects, &templates);
    let mut problems = Problems::new();
    let mut uses: BTreeSet<(String, String)> = BTreeSet::new(); // (agg type, field)
    for o in objects.iter().filter(|o| o.ty == "visualization") {
        let at = o.at();
        let vis = match o.embedded(&["visState"]) {
            Ok(v) => v,
            Err(e) => {
                problems.add(e);
                continue;
            }
        };
        let source = match o.embedded(&["kibanaSavedObjectMeta", "searchSourceJSON"]) {
            Ok(v) => v,
            Err(e) => {
                problems.add(e);
                continue;
            }
        };
        problems.check(vis["title"] == o.attributes["title"], || {
            format!("{at}: visState.title differs from the title")
        });
        let vis_type = vis["type"].as_str().unwrap_or("");
        let Some(schemas) = schemas_for(vis_type) else {
            problems.add(format!("{at}: unsupported visualization type `{vis_type}`"));
            continue;
        };
        problems.check(
            vis["params"]["type"].is_null()
                || vis["params"]["type"] == vis_type
                || vis_type == "tagcloud",
            || {
                format!(
                    "{at}: params.type {} differs from type {vis_type}",
                    vis["params"]["type"]
                )
            },
        );
        let ref_name = source["indexRefName"].as_str().unwrap_or("");
        let Some((_, _, view_id)) = o
            .reference(ref_name)
            .filter(|(_, ty, _)| ty == "index-pattern")
        else {
            problems.add(format!(
                "{at}: searchSourceJSON.indexRefName `{ref_name}` names no index-pattern reference"
            ));
            continue;
        };
        let Some(template) = views.get(view_id) else {
            problems.add(format!("{at}: data view `{view_id}` is not in {NDJSON}"));
            continue;
        };
        let aggs = vis["aggs"].as_array().cloned().unwrap_or_default();
        problems.check(!aggs.is_empty(), || format!("{at}: no aggregations"));
        let ids: Vec<&str> = aggs.iter().filter_map(|a| a["id"].as_str()).collect();
        problems.check(
            ids.len() == aggs.len() && ids.iter().collect::<BTreeSet<_>>().len() == ids.len(),
            || format!("{at}: aggregation ids must be present and unique: {ids:?}"),
        );
        let metric_ids: BTreeSet<&str> = aggs
            .iter()
            .filter(|a| a["schema"] == "metric")
            .filter_map(|a| a["id"].as_str())
            .collect();
        problems.check(!metric_ids.is_empty(), || {
            format!("{at}: no metric aggregation")
        });
        for a in &aggs {
            let agg_type = a["type"].as_str().unwrap_or("");
            let schema = a["schema"].as_str().unwrap_or("");
            let agg_at = format!("{at}: agg {} ({agg_type})", a["id"]);
            problems.check(schemas.contains(&schema), || {
                format!("{agg_at}: schema `{schema}` not valid for {vis_type}")
            });
            problems.check(a["enabled"] == true, || format!("{agg_at}: disabled"));
            let params = &a["params"];
            match (agg_usage(agg_type), params["field"].as_str()) {
                (Some(usage), Some(field)) => {
                    check_field(template, field, usage, &agg_at, &mut problems);
                    uses.insert((agg_type.to_owned(), field.to_owned()));
                }
                (Some(_), None) => problems.add(format!("{agg_at}: needs params.field")),
                (None, _) if ["count", "filters"].contains(&agg_type) => {}
                (None, _) => problems.add(format!(
                    "{agg_at}: aggregation type not checked by this test; add it to agg_usage"
                )),
            }
            if agg_type == "terms" {
                let order_by = params["orderBy"].as_str().unwrap_or("");
                problems.check(metric_ids.contains(order_by) || order_by == "_key", || {
                    format!("{agg_at}: orderBy `{order_by}` is not a metric aggregation id")
                });
            }
            if agg_type == "filters" {
                let filters = params["filters"].as_array().cloned().unwrap_or_default();
                problems.check(!filters.is_empty(), || format!("{agg_at}: no filters"));
                for f in filters {
                    problems.check(f["input"]["language"] == "kuery", || {
                        format!("{agg_at}: filter language must be kuery")
                    });
                    let query = f["input"]["query"].as_str().unwrap_or("");
                    for field in kql_fields(query) {
                        check_field(template, &field, "keyword", &agg_at, &mut problems);
                        uses.insert(("filters".into(), field));
                    }
                }
            }
        }
        for series in vis["params"]["seriesParams"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let id = series["data"]["id"].as_str().unwrap_or("");
            problems.check(metric_ids.contains(id), || {
                format!("{at}: seriesParams refers to metric id `{id}`, which does not exist")
            });
        }
        for query_field in kql_fields(source["query"]["query"].as_str().unwrap_or("")) {
            check_field(template, &query_field, "keyword", &at, &mut problems);
        }
    }
    // The panels the dashboard is meant to have.
    for (agg, field) in [
        ("avg", "sentiment.score"),
        ("date_histogram", "published_at"),
        ("terms", "source.name"),
        ("terms", "sentiment.label"),
        ("filters", "hate.label"),
        ("date_histogram", "created_at"),
        ("terms", "hate.categories"),
        ("terms", "hashtags"),
    ] {
        problems.check(uses.contains(&(agg.to_owned(), field.to_owned())), || {
            format!("{NDJSON}: no visualization runs {agg} on `{field}`")
        });
    }
    problems.assert_none("visualizations");
}

#[test]
fn saved_search_lists_flagged_tweets() {
    let objects = objects();
    let templates = templates();
    let views = data_view_templates(&objects, &templates);
    let mut problems = Problems::new();
    let searches: Vec<&Object> = objects.iter().filter(|o| o.ty == "search").collect();
    assert!(!searches.is_empty(), "{NDJSON}: no saved search");
    for o in searches {
        let at = o.at();
        let source = o
            .embedded(&["kibanaSavedObjectMeta", "searchSourceJSON"])
            .unwrap_or_else(|e| panic!("{e}"));
        let ref_name = source["indexRefName"].as_str().unwrap_or("");
        let view = o
            .reference(ref_name)
            .map(|(_, _, id)| id.clone())
            .unwrap_or_default();
        let Some(template) = views.get(&view) else {
            problems.add(format!(
                "{at}: indexRefName `{ref_name}` names no data view in the file"
            ));
            continue;
        };
        let columns: Vec<&str> = o.attributes["columns"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        for c in &columns {
            check_field(template, c, "column", &at, &mut problems);
        }
        for sort in o.attributes["sort"].as_array().into_iter().flatten() {
            let field = sort[0].as_str().unwrap_or("");
            check_field(template, field, "sortable", &at, &mut problems);
            problems.check(
                ["asc", "desc"].contains(&sort[1].as_str().unwrap_or("")),
                || format!("{at}: sort direction {}", sort[1]),
            );
        }
        let query = source["query"]["query"].as_str().unwrap_or("");
        problems.check(source["query"]["language"] == "kuery", || {
            format!("{at}: query language must be kuery")
        });
        for field in kql_fields(query) {
            check_field(template, &field, "keyword", &at, &mut problems);
        }
        if o.id == "weir-tweets-flagged" {
            problems.check(
                columns == ["text", "hate.label", "hate.score", "user.screen_name"],
                || format!("{at}: columns are {columns:?}"),
            );
            problems.check(
                query.contains("hate.label") && !query.contains("neither"),
                || format!("{at}: query `{query}` should select hate.label hate/offensive"),
            );
            problems.check(
                o.attributes["sort"][0][0] == "created_at" && o.attributes["sort"][0][1] == "desc",
                || format!("{at}: should sort by created_at, newest first"),
            );
        }
    }
    problems.assert_none("saved searches");
}

#[test]
fn dashboard_lays_out_every_visualization_and_search() {
    let objects = objects();
    let dashboards: Vec<&Object> = objects.iter().filter(|o| o.ty == "dashboard").collect();
    assert_eq!(dashboards.len(), 1, "{NDJSON}: expected one dashboard");
    let d = dashboards[0];
    let at = d.at();
    let panels = d
        .embedded(&["panelsJSON"])
        .unwrap_or_else(|e| panic!("{e}"));
    let panels = panels
        .as_array()
        .unwrap_or_else(|| panic!("{at}: panelsJSON is not an array"));
    d.embedded(&["optionsJSON"])
        .unwrap_or_else(|e| panic!("{e}"));
    d.embedded(&["kibanaSavedObjectMeta", "searchSourceJSON"])
        .unwrap_or_else(|e| panic!("{e}"));
    let mut problems = Problems::new();
    let mut on_dashboard = BTreeSet::new();
    let mut cells: Vec<(String, u64, u64, u64, u64)> = Vec::new();
    for p in panels {
        let index = p["panelIndex"].as_str().unwrap_or("");
        let panel_at = format!("{at}: panel {index}");
        let grid = &p["gridData"];
        let (x, y, w, h) = (
            grid["x"].as_u64(),
            grid["y"].as_u64(),
            grid["w"].as_u64(),
            grid["h"].as_u64(),
        );
        let (Some(x), Some(y), Some(w), Some(h)) = (x, y, w, h) else {
            problems.add(format!("{panel_at}: gridData needs x, y, w, h"));
            continue;
        };
        problems.check(x + w <= 48 && w > 0 && h > 0, || {
            format!("{panel_at}: gridData {grid} does not fit the 48-column grid")
        });
        problems.check(grid["i"] == index, || {
            format!("{panel_at}: gridData.i must equal panelIndex")
        });
        for (other, ox, oy, ow, oh) in &cells {
            let overlap = x < ox + ow && *ox < x + w && y < oy + oh && *oy < y + h;
            problems.check(!overlap, || format!("{panel_at}: overlaps panel {other}"));
        }
        cells.push((index.to_owned(), x, y, w, h));
        let ref_name = format!("{index}:{}", p["panelRefName"].as_str().unwrap_or(""));
        match d.reference(&ref_name) {
            Some((_, ty, id)) => {
                problems.check(p["type"] == ty.as_str(), || {
                    format!("{panel_at}: type {} but reference is a {ty}", p["type"])
                });
                on_dashboard.insert((ty.clone(), id.clone()));
            }
            None => problems.add(format!("{panel_at}: no reference named `{ref_name}`")),
        }
    }
    for o in objects
        .iter()
        .filter(|o| o.ty == "visualization" || o.ty == "search")
    {
        problems.check(on_dashboard.contains(&(o.ty.clone(), o.id.clone())), || {
            format!("{}: not on the dashboard", o.at())
        });
    }
    problems.check(
        d.attributes["timeRestore"] == true && d.attributes["timeFrom"].is_string(),
        || format!("{at}: should restore a time range"),
    );
    problems.assert_none("dashboard");
}

// --- kibana/import.sh -----------------------------------------------------------------

/// kibana/import.sh runs with bash and curl.
fn require_shell_tools() {
    require("bash", &["--version"], "apt-get install bash");
    require("curl", &["--version"], "apt-get install curl");
}

fn import(envs: &[(&str, &str)], args: &[&str]) -> Output {
    let mut cmd = Command::new("bash");
    cmd.arg(repo_path("kibana/import.sh")).args(args);
    for var in [
        "KIBANA_URL",
        "KIBANA_SPACE",
        "KIBANA_API_KEY",
        "ELASTIC_USERNAME",
        "ELASTIC_PASSWORD",
    ] {
        cmd.env_remove(var);
    }
    cmd.envs(envs.iter().copied());
    cmd.output().expect("run kibana/import.sh")
}

fn describe(out: &Output) -> String {
    format!(
        "{}; stdout: {}; stderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn import_script_posts_the_file_with_xsrf_and_auth() {
    require_shell_tools();
    let server = OneShotServer::start(
        200,
        r#"{"successCount":9,"success":true,"successResults":[]}"#,
    );
    let out = import(
        &[("KIBANA_URL", &server.url), ("ELASTIC_PASSWORD", "s3cret")],
        &[],
    );
    assert!(
        out.status.success(),
        "import.sh failed against a successful Kibana: {}",
        describe(&out)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("imported 9"),
        "import.sh did not report the count: {}",
        describe(&out)
    );
    let req = server.received().expect("import.sh sent no request");
    assert_eq!(
        req.request_line,
        "POST /api/saved_objects/_import?overwrite=true HTTP/1.1"
    );
    assert!(
        req.header("kbn-xsrf").is_some(),
        "no kbn-xsrf header: {:?}",
        req.headers
    );
    assert_eq!(
        req.header("authorization"),
        Some(format!("Basic {}", base64(b"elastic:s3cret")).as_str())
    );
    assert!(
        req.header("content-type")
            .is_some_and(|c| c.starts_with("multipart/form-data")),
        "not a form upload: {:?}",
        req.headers
    );
    let body = String::from_utf8_lossy(&req.body);
    assert!(
        body.contains("name=\"file\"") && body.contains("filename=\"weir-dashboard.ndjson\""),
        "no file part: {body:.300}"
    );
    assert!(
        body.contains(read(NDJSON).trim_end()),
        "the uploaded file is not kibana/weir-dashboard.ndjson"
    );
}

#[test]
fn import_script_uses_an_api_key_and_space_when_given() {
    require_shell_tools();
    let server = OneShotServer::start(200, r#"{"successCount":9,"success":true}"#);
    let out = import(
        &[
            ("KIBANA_URL", &server.url),
            ("KIBANA_API_KEY", "a2V5"),
            ("KIBANA_SPACE", "ops"),
            ("ELASTIC_PASSWORD", "x"),
        ],
        &[],
    );
    assert!(out.status.success(), "{}", describe(&out));
    let req = server.received().expect("no request");
    assert_eq!(
        req.request_line,
        "POST /s/ops/api/saved_objects/_import?overwrite=true HTTP/1.1"
    );
    assert_eq!(req.header("authorization"), Some("ApiKey a2V5"));
}

#[test]
fn import_script_fails_loudly() {
    require_shell_tools();
    // HTTP error.
    let server = OneShotServer::start(401, r#"{"statusCode":401,"error":"Unauthorized"}"#);
    let out = import(
        &[("KIBANA_URL", &server.url), ("ELASTIC_PASSWORD", "wrong")],
        &[],
    );
    assert!(
        !out.status.success(),
        "import.sh succeeded on HTTP 401: {}",
        describe(&out)
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("HTTP 401"),
        "401 not reported: {}",
        describe(&out)
    );

    // 200 with per-object errors.
    let server = OneShotServer::start(
        200,
        r#"{"successCount":8,"success":false,"errors":[{"id":"x","type":"visualization","error":{"type":"missing_references"}}]}"#,
    );
    let out = import(&[("KIBANA_URL", &server.url)], &[]);
    assert!(
        !out.status.success(),
        "import.sh succeeded although Kibana reported errors: {}",
        describe(&out)
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("missing_references"),
        "errors not printed: {}",
        describe(&out)
    );

    // Nobody listening.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let out = import(&[("KIBANA_URL", &url)], &[]);
    assert!(
        !out.status.success(),
        "import.sh succeeded with Kibana down: {}",
        describe(&out)
    );

    // Missing file.
    let out = import(&[("KIBANA_URL", &url)], &["/nonexistent/objects.ndjson"]);
    assert!(
        !out.status.success(),
        "import.sh succeeded without its file: {}",
        describe(&out)
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("does not exist"),
        "{}",
        describe(&out)
    );
}
