//! Index templates (`config/templates/*.json`) and their field mappings.

use std::collections::BTreeMap;

use serde_json::Value;

use super::{glob_match, read_json, repo_path};

/// One index template file.
pub struct Template {
    /// File stem, e.g. `weir-tweets` (also the template name Weir installs it under).
    pub name: String,
    /// Repository-relative path.
    pub file: String,
    pub body: Value,
    pub index_patterns: Vec<String>,
    pub mapping: Mapping,
}

/// The fields of a mapping by dotted path: `hate.scores.hate`, and
/// multi-fields as `text.keyword`.
pub struct Mapping {
    pub fields: BTreeMap<String, Value>,
}

impl Mapping {
    /// Flattens an Elasticsearch `mappings` object (`{"properties": ...}`).
    pub fn from_mappings(mappings: &Value) -> Mapping {
        let mut fields = BTreeMap::new();
        if let Some(props) = mappings.get("properties").and_then(Value::as_object) {
            flatten("", props, &mut fields);
        }
        Mapping { fields }
    }

    /// The field's type: its `type`, or `object` for a field with only `properties`.
    pub fn type_of(&self, path: &str) -> Option<&str> {
        let field = self.fields.get(path)?;
        Some(
            field
                .get("type")
                .and_then(Value::as_str)
                .unwrap_or("object"),
        )
    }

    /// Leaf fields (not objects) with their types.
    pub fn leaves(&self) -> impl Iterator<Item = (&str, &str)> {
        self.fields.iter().filter_map(|(path, field)| {
            let ty = field.get("type").and_then(Value::as_str)?;
            (ty != "object").then_some((path.as_str(), ty))
        })
    }
}

fn flatten(
    prefix: &str,
    props: &serde_json::Map<String, Value>,
    out: &mut BTreeMap<String, Value>,
) {
    for (name, field) in props {
        let path = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}.{name}")
        };
        out.insert(path.clone(), field.clone());
        if let Some(sub) = field.get("properties").and_then(Value::as_object) {
            flatten(&path, sub, out);
        }
        if let Some(multi) = field.get("fields").and_then(Value::as_object) {
            for (sub_name, sub_field) in multi {
                out.insert(format!("{path}.{sub_name}"), sub_field.clone());
            }
        }
    }
}

/// Numeric field types (for avg, sum, min, max ...).
pub const NUMERIC: &[&str] = &[
    "long",
    "integer",
    "short",
    "byte",
    "double",
    "float",
    "half_float",
    "scaled_float",
    "unsigned_long",
];

pub fn is_numeric(ty: &str) -> bool {
    NUMERIC.contains(&ty)
}

/// The template files, by name.
pub fn templates() -> BTreeMap<String, Template> {
    let dir = repo_path("config/templates");
    let entries =
        std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()));
    let mut out = BTreeMap::new();
    for entry in entries {
        let path = entry.expect("directory entry").path();
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        let file = format!(
            "config/templates/{}",
            path.file_name().unwrap().to_string_lossy()
        );
        let body = read_json(&file);
        let index_patterns = body["index_patterns"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        let mapping = Mapping::from_mappings(&body["template"]["mappings"]);
        out.insert(
            name.clone(),
            Template {
                name,
                file,
                body,
                index_patterns,
                mapping,
            },
        );
    }
    out
}

/// The one template whose index patterns match `index` (e.g. a data view
/// title such as `weir-tweets*` is matched by its literal prefix).
pub fn template_for_index<'a>(
    templates: &'a BTreeMap<String, Template>,
    index: &str,
) -> Result<&'a Template, String> {
    let concrete = index.trim_end_matches('*');
    let matching: Vec<&Template> = templates
        .values()
        .filter(|t| t.index_patterns.iter().any(|p| glob_match(p, concrete)))
        .collect();
    match matching.as_slice() {
        [one] => Ok(one),
        [] => Err(format!(
            "no template in config/templates matches index `{index}`"
        )),
        many => Err(format!(
            "index `{index}` matches several templates: {}",
            many.iter()
                .map(|t| t.file.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}
