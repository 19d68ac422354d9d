//! Provenance: which module versions produced a document, stamped into a
//! configurable top-level field by a cheap byte splice (no re-parse).

use std::sync::Arc;

use crate::config::{IndexScope, PipelineConfig};
use crate::runtime::LoadedModule;

/// A pipeline's chain of modules as one immutable, swappable unit.
#[derive(Debug, Default)]
pub struct Chain {
    pub modules: Vec<Arc<LoadedModule>>,
    /// `"field":["a@1.0#abc…",…]`, ready to splice into documents.
    provenance: Option<Vec<u8>>,
    /// Documents larger than this fail (a tenant's quota); `None`: no limit.
    pub max_document_bytes: Option<usize>,
    /// A record turning into more documents than this fails (a tenant's
    /// quota); `None`: no limit.
    pub max_documents_per_record: Option<usize>,
    /// Bytes of documents a batch may hold after any module (a tenant's
    /// quota); `None`: no limit.
    pub max_batch_output_bytes: Option<usize>,
    /// Indices a module may send documents to; `None`: any (a chain run
    /// outside a configured pipeline, e.g. `weir process`).
    pub index_scope: Option<IndexScope>,
}

impl Chain {
    /// The chain of a pipeline: its provenance field and, for a tenant's
    /// pipeline, the tenant's document size limit.
    pub fn for_pipeline(modules: Vec<Arc<LoadedModule>>, config: &PipelineConfig) -> Self {
        let quotas = config.tenant.as_ref().map(|t| &t.quotas);
        let mut chain = Self::new(modules, config.provenance_field.as_deref())
            .with_max_document_bytes(quotas.map(|q| q.max_document_bytes));
        chain.max_documents_per_record = quotas.map(|q| q.max_documents_per_record);
        chain.max_batch_output_bytes = quotas.map(|q| q.max_batch_output_bytes);
        chain.index_scope = Some(config.index_scope());
        chain
    }

    /// A chain stamping its versions into `field` (none when `None` or empty).
    pub fn new(modules: Vec<Arc<LoadedModule>>, field: Option<&str>) -> Self {
        let provenance = field.filter(|f| !f.is_empty()).map(|f| {
            let versions: Vec<String> = modules.iter().map(|m| version_label(m)).collect();
            let mut out = serde_json::to_vec(f).expect("a string serializes");
            out.push(b':');
            out.extend(serde_json::to_vec(&versions).expect("strings serialize"));
            out
        });
        Self {
            modules,
            provenance,
            max_document_bytes: None,
            max_documents_per_record: None,
            max_batch_output_bytes: None,
            index_scope: None,
        }
    }

    /// Fails documents larger than `limit` bytes.
    pub fn with_max_document_bytes(mut self, limit: Option<usize>) -> Self {
        self.max_document_bytes = limit;
        self
    }

    pub fn provenance(&self) -> Option<&[u8]> {
        self.provenance.as_deref()
    }
}

/// `name@declared-version#digest12`: what a person needs to find the build.
pub fn version_label(m: &LoadedModule) -> String {
    format!("{}@{}#{}", m.name, m.info.version, m.short_digest())
}

/// Adds `fragment` (`"key":value`) as the last member of a JSON object.
/// `body` must be a validated JSON object.
pub fn splice_member(body: &mut Vec<u8>, fragment: &[u8]) {
    let Some(close) = body.iter().rposition(|&b| b == b'}') else {
        return;
    };
    let open = body.iter().position(|&b| b == b'{').unwrap_or(0);
    let empty = body[open + 1..close].iter().all(u8::is_ascii_whitespace);
    body.truncate(close);
    if !empty {
        body.push(b',');
    }
    body.extend_from_slice(fragment);
    body.push(b'}');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splices_into_empty_and_full_objects() {
        let mut a = b"{}".to_vec();
        splice_member(&mut a, br#""p":[1]"#);
        assert_eq!(a, br#"{"p":[1]}"#);
        let mut b = b"{\"x\":{\"y\":2} }\n".to_vec();
        splice_member(&mut b, br#""p":[1]"#);
        let v: serde_json::Value = serde_json::from_slice(&b).unwrap();
        assert_eq!(v, serde_json::json!({"x": {"y": 2}, "p": [1]}));
    }
}
