//! The control topic's records: keys chosen so compaction keeps the
//! latest state of everything, values that name who wrote them.
//!
//! | key | value |
//! |---|---|
//! | `blob/<tenant>/<sha256>/<i>` | chunk `i` of a module's bytes: a JSON line ([`ChunkHeader`]), `\n`, the bytes |
//! | `module/<tenant>/<name>` | [`ModuleRecord`]: the active digest and the kept versions |
//! | `tenant/<id>` | [`TenantRecord`]: the tenant file's text; a tombstone removes the tenant |
//! | `paused/<pipeline>` | [`PausedRecord`] |
//! | `rollback/<pipeline>/<module>` | [`RollbackRecord`]: an operator pipeline's active version |
//!
//! Every value names its writer (`by`: the tenant whose token made the
//! change, absent for the operator). A host checks each record against
//! what the writer may change and what the tenant's quotas allow; it never
//! trusts that another host did.

use serde::{Deserialize, Serialize};

use crate::config::{valid_module_name, valid_tenant_id};

/// A control record's key, parsed.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum ControlKey {
    Chunk {
        tenant: String,
        digest: String,
        index: u32,
    },
    Module {
        tenant: String,
        name: String,
    },
    Tenant(String),
    Paused(String),
    Rollback {
        pipeline: String,
        module: String,
    },
}

/// Why a record was refused (logged, counted and skipped).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ControlRecordError {
    #[error("key `{0}` is not a control key")]
    ControlKey(String),
    #[error("key `{key}`: {reason}")]
    Value { key: String, reason: String },
}

fn is_digest(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

/// A pipeline name as configured: `a-z A-Z 0-9 - _`, tenants' as
/// `<tenant>.<name>`.
fn is_pipeline(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 200
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

impl ControlKey {
    pub fn parse(raw: &[u8]) -> Result<ControlKey, ControlRecordError> {
        let text = std::str::from_utf8(raw).map_err(|_| {
            ControlRecordError::ControlKey(String::from_utf8_lossy(raw).into_owned())
        })?;
        let bad = || ControlRecordError::ControlKey(text.chars().take(200).collect());
        let parts: Vec<&str> = text.split('/').collect();
        let key = match parts.as_slice() {
            ["blob", tenant, digest, index] if valid_tenant_id(tenant) && is_digest(digest) => {
                ControlKey::Chunk {
                    tenant: tenant.to_string(),
                    digest: digest.to_string(),
                    index: index.parse().map_err(|_| bad())?,
                }
            }
            ["module", tenant, name] if valid_tenant_id(tenant) && valid_module_name(name) => {
                ControlKey::Module {
                    tenant: tenant.to_string(),
                    name: name.to_string(),
                }
            }
            ["tenant", id] if valid_tenant_id(id) => ControlKey::Tenant(id.to_string()),
            ["paused", p] if is_pipeline(p) => ControlKey::Paused(p.to_string()),
            ["rollback", p, m] if is_pipeline(p) && is_pipeline(m) => ControlKey::Rollback {
                pipeline: p.to_string(),
                module: m.to_string(),
            },
            _ => return Err(bad()),
        };
        Ok(key)
    }

    pub fn render(&self) -> String {
        match self {
            ControlKey::Chunk {
                tenant,
                digest,
                index,
            } => format!("blob/{tenant}/{digest}/{index}"),
            ControlKey::Module { tenant, name } => format!("module/{tenant}/{name}"),
            ControlKey::Tenant(id) => format!("tenant/{id}"),
            ControlKey::Paused(p) => format!("paused/{p}"),
            ControlKey::Rollback { pipeline, module } => format!("rollback/{pipeline}/{module}"),
        }
    }

    /// The tenant whose state the key is, if any: only it (or the
    /// operator) may write it.
    pub fn tenant(&self) -> Option<&str> {
        match self {
            ControlKey::Chunk { tenant, .. } | ControlKey::Module { tenant, .. } => Some(tenant),
            ControlKey::Tenant(id) => Some(id),
            ControlKey::Paused(p) => p.split_once('.').map(|(t, _)| t),
            ControlKey::Rollback { .. } => None,
        }
    }
}

/// The JSON line before a chunk's bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChunkHeader {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    /// Chunks of the module (this one is the key's index).
    pub chunks: u32,
    /// Bytes of the whole module.
    pub size: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModuleRecord {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    /// The version to run (sha256 of its bytes).
    pub digest: String,
    /// Versions whose chunks the topic keeps, oldest first (the active one
    /// among them): what a rollback may go back to on a host that never
    /// loaded them.
    pub versions: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantRecord {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    /// The tenant file, as `tenants/<id>.toml` would hold it.
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PausedRecord {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    pub paused: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RollbackRecord {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    /// Digest (or unique prefix) of the kept version to run.
    pub digest: String,
}

/// One record's change, checked against its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ControlChange {
    Chunk {
        tenant: String,
        digest: String,
        index: u32,
        header: ChunkHeader,
        bytes: Vec<u8>,
    },
    Module {
        tenant: String,
        name: String,
        record: ModuleRecord,
    },
    /// `None`: the tenant is removed.
    Tenant {
        id: String,
        text: Option<String>,
    },
    Paused {
        pipeline: String,
        paused: bool,
    },
    Rollback {
        pipeline: String,
        module: String,
        digest: String,
    },
}

/// Largest number of kept versions a module record may list.
pub const MAX_VERSIONS: usize = 64;

impl ControlChange {
    /// Parses and checks a record: its key, its value's shape, and that
    /// its writer may change what the key names (a tenant only its own
    /// keys; tenant definitions and operator pipelines only the operator).
    /// A tombstone is a change only for a tenant (removal).
    pub fn parse(key: &[u8], value: Option<&[u8]>) -> Result<ControlChange, ControlRecordError> {
        let parsed = ControlKey::parse(key)?;
        let name = parsed.render();
        let bad = |reason: String| ControlRecordError::Value {
            key: name.clone(),
            reason,
        };
        let Some(value) = value else {
            return match parsed {
                ControlKey::Tenant(id) => Ok(ControlChange::Tenant { id, text: None }),
                _ => Err(bad("a tombstone removes only a tenant".into())),
            };
        };
        fn json<T: serde::de::DeserializeOwned>(v: &[u8]) -> Result<T, String> {
            serde_json::from_slice(v).map_err(|e| e.to_string())
        }
        let (change, by) = match parsed {
            ControlKey::Chunk {
                tenant,
                digest,
                index,
            } => {
                let split = value
                    .iter()
                    .position(|&b| b == b'\n')
                    .ok_or_else(|| bad("a chunk has no header line".into()))?;
                let header: ChunkHeader = json(&value[..split]).map_err(bad)?;
                if header.chunks == 0 || index >= header.chunks {
                    return Err(bad(format!("chunk {index} of {} chunks", header.chunks)));
                }
                let by = header.by.clone();
                (
                    ControlChange::Chunk {
                        tenant,
                        digest,
                        index,
                        header,
                        bytes: value[split + 1..].to_vec(),
                    },
                    by,
                )
            }
            ControlKey::Module { tenant, name } => {
                let record: ModuleRecord = json(value).map_err(bad)?;
                if !is_digest(&record.digest) || !record.versions.iter().all(|d| is_digest(d)) {
                    return Err(bad("digests are 64 lowercase hex digits".into()));
                }
                if !record.versions.contains(&record.digest) || record.versions.len() > MAX_VERSIONS
                {
                    return Err(bad(format!(
                        "versions must list the active digest, and at most {MAX_VERSIONS}"
                    )));
                }
                let by = record.by.clone();
                (
                    ControlChange::Module {
                        tenant,
                        name,
                        record,
                    },
                    by,
                )
            }
            ControlKey::Tenant(id) => {
                let record: TenantRecord = json(value).map_err(bad)?;
                if record.by.is_some() {
                    return Err(bad("only the operator defines tenants".into()));
                }
                (
                    ControlChange::Tenant {
                        id,
                        text: Some(record.text),
                    },
                    None,
                )
            }
            ControlKey::Paused(pipeline) => {
                let record: PausedRecord = json(value).map_err(bad)?;
                (
                    ControlChange::Paused {
                        pipeline,
                        paused: record.paused,
                    },
                    record.by,
                )
            }
            ControlKey::Rollback { pipeline, module } => {
                let record: RollbackRecord = json(value).map_err(bad)?;
                if record.by.is_some() {
                    return Err(bad("only the operator rolls back its pipelines".into()));
                }
                if record.digest.is_empty() || record.digest.len() > 64 {
                    return Err(bad("a digest prefix is 1-64 hex digits".into()));
                }
                (
                    ControlChange::Rollback {
                        pipeline,
                        module,
                        digest: record.digest,
                    },
                    None,
                )
            }
        };
        if let Some(writer) = &by
            && ControlKey::parse(key)?.tenant() != Some(writer.as_str())
        {
            return Err(bad(format!(
                "written by tenant `{writer}`, which does not own it"
            )));
        }
        Ok(change)
    }
}

/// The records that write module `bytes` (`digest`) of `tenant` in
/// chunks of `chunk_bytes`, by `by`.
pub fn chunk_records(
    tenant: &str,
    digest: &str,
    bytes: &[u8],
    chunk_bytes: usize,
    by: Option<&str>,
) -> Vec<(String, Vec<u8>)> {
    let pieces: Vec<&[u8]> = if bytes.is_empty() {
        vec![&[]]
    } else {
        bytes.chunks(chunk_bytes.max(1)).collect()
    };
    let header = ChunkHeader {
        by: by.map(str::to_string),
        chunks: pieces.len() as u32,
        size: bytes.len() as u64,
    };
    let mut line = serde_json::to_vec(&header).expect("a header serializes");
    line.push(b'\n');
    pieces
        .into_iter()
        .enumerate()
        .map(|(i, piece)| {
            let key = ControlKey::Chunk {
                tenant: tenant.into(),
                digest: digest.into(),
                index: i as u32,
            };
            let mut value = line.clone();
            value.extend_from_slice(piece);
            (key.render(), value)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

    #[test]
    fn keys_round_trip_and_refuse_what_is_not_a_key() {
        for key in [
            ControlKey::Chunk {
                tenant: "acme".into(),
                digest: D.into(),
                index: 3,
            },
            ControlKey::Module {
                tenant: "acme".into(),
                name: "tag".into(),
            },
            ControlKey::Tenant("acme".into()),
            ControlKey::Paused("acme.events".into()),
            ControlKey::Rollback {
                pipeline: "tweets".into(),
                module: "text-clean".into(),
            },
        ] {
            assert_eq!(ControlKey::parse(key.render().as_bytes()), Ok(key));
        }
        for bad in [
            "",
            "module/acme",
            "module/ACME/tag",
            "module/acme/../x",
            "blob/acme/xyz/0",
            "blob/acme/{D}/-1",
            "tenant/acme/more",
            "paused/a b",
            "other/acme",
        ] {
            assert!(
                matches!(
                    ControlKey::parse(bad.as_bytes()),
                    Err(ControlRecordError::ControlKey(_))
                ),
                "{bad}"
            );
        }
        assert!(ControlKey::parse(&[0xff, 0xfe]).is_err());
    }

    #[test]
    fn a_tenant_writes_only_its_own_keys() {
        let module =
            |by: &str| format!(r#"{{"by":"{by}","digest":"{D}","versions":["{D}"]}}"#).into_bytes();
        assert!(ControlChange::parse(b"module/acme/tag", Some(&module("acme"))).is_ok());
        let err = ControlChange::parse(b"module/acme/tag", Some(&module("globex"))).unwrap_err();
        assert!(err.to_string().contains("does not own it"), "{err}");
        let paused = br#"{"by":"globex","paused":true}"#;
        assert!(ControlChange::parse(b"paused/acme.events", Some(paused)).is_err());
        assert!(ControlChange::parse(b"paused/globex.events", Some(paused)).is_ok());
        // Tenants and operator pipelines are the operator's.
        let tenant = br#"{"by":"acme","text":""}"#;
        assert!(ControlChange::parse(b"tenant/acme", Some(tenant)).is_err());
        let rollback = br#"{"by":"acme","digest":"ab"}"#;
        assert!(ControlChange::parse(b"rollback/tweets/clean", Some(rollback)).is_err());
        // Tombstones: only a tenant's removal.
        assert_eq!(
            ControlChange::parse(b"tenant/acme", None),
            Ok(ControlChange::Tenant {
                id: "acme".into(),
                text: None
            })
        );
        assert!(ControlChange::parse(b"module/acme/tag", None).is_err());
    }

    #[test]
    fn garbage_values_are_refused_not_trusted() {
        for (key, value) in [
            ("module/acme/tag", b"not json".as_slice()),
            ("module/acme/tag", br#"{"digest":"short","versions":[]}"#),
            // The active digest must be among the versions.
            (
                "module/acme/tag",
                br#"{"digest":"bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb","versions":[]}"#,
            ),
            ("paused/acme.events", br#"{"paused":"yes"}"#),
            ("paused/acme.events", br#"{"paused":true,"extra":1}"#),
        ] {
            assert!(ControlChange::parse(key.as_bytes(), Some(value)).is_err(), "{key}");
        }
        let key = format!("blob/acme/{D}/5");
        let value = br#"{"chunks":2,"size":10}
xx"#;
        let err = ControlChange::parse(key.as_bytes(), Some(value)).unwrap_err();
        assert!(err.to_string().contains("chunk 5 of 2"), "{err}");
        let no_header = b"raw bytes";
        assert!(ControlChange::parse(key.as_bytes(), Some(no_header)).is_err());
    }

    #[test]
    fn chunks_carry_their_count_and_size() {
        let bytes: Vec<u8> = (0..2500u32).map(|i| i as u8).collect();
        let records = chunk_records("acme", D, &bytes, 1000, Some("acme"));
        assert_eq!(records.len(), 3);
        let mut joined = Vec::new();
        for (i, (key, value)) in records.iter().enumerate() {
            let Ok(ControlChange::Chunk {
                index,
                header,
                bytes: piece,
                ..
            }) = ControlChange::parse(key.as_bytes(), Some(value))
            else {
                panic!("chunk {i} does not parse");
            };
            assert_eq!((index, header.chunks, header.size), (i as u32, 3, 2500));
            joined.extend(piece);
        }
        assert_eq!(joined, bytes);
    }
}
