//! What the control topic says, as a host has read it so far: the latest
//! record of every key, with module bytes held in memory until used.
//!
//! Held chunk bytes are bounded per tenant; past the bound, chunks of
//! versions no module record lists are dropped first, then new chunks are
//! refused. A version is usable only when every chunk is there, the sizes
//! agree and the bytes hash to its digest.

use std::collections::BTreeMap;

use super::record::{ChunkHeader, ModuleRecord};
use crate::runtime::digest_of;

/// One module version's chunks as read so far.
#[derive(Debug, Clone, Default)]
struct Blob {
    header: Option<ChunkHeader>,
    parts: BTreeMap<u32, Vec<u8>>,
}

impl Blob {
    fn bytes_held(&self) -> u64 {
        self.parts.values().map(|p| p.len() as u64).sum()
    }
}

/// Limits on what a tenant's chunks may hold in memory.
#[derive(Debug, Clone, Copy)]
pub(super) struct ChunkLimits {
    /// Largest module (its header's size).
    pub max_module_bytes: u64,
    /// Chunk bytes one tenant may hold at once.
    pub max_held_bytes: u64,
}

/// The smallest `control.chunk_bytes`.
const MIN_CHUNK: u64 = 1024;

#[derive(Debug, Default)]
pub(super) struct ControlState {
    blobs: BTreeMap<(String, String), Blob>,
    pub(super) modules: BTreeMap<(String, String), ModuleRecord>,
    /// Tenant file texts by id.
    pub(super) tenants: BTreeMap<String, String>,
    pub(super) paused: BTreeMap<String, bool>,
    /// Operator pipelines' rolled-back versions, by (pipeline, module).
    pub(super) rollbacks: BTreeMap<(String, String), String>,
}

impl ControlState {
    /// Adds chunk `index` of `tenant`'s version `digest`, within `limits`.
    pub(super) fn add_chunk(
        &mut self,
        tenant: &str,
        digest: &str,
        index: u32,
        header: ChunkHeader,
        bytes: Vec<u8>,
        limits: ChunkLimits,
    ) -> Result<(), String> {
        if header.size > limits.max_module_bytes {
            return Err(format!(
                "module of {} bytes, over the {} a version may have",
                header.size, limits.max_module_bytes
            ));
        }
        // Chunks are at least MIN_CHUNK bytes (the last aside): a record
        // cannot announce more pieces than its size allows.
        if u64::from(header.chunks) > header.size.div_ceil(MIN_CHUNK).max(1) {
            return Err(format!(
                "{} chunks for a module of {} bytes",
                header.chunks, header.size
            ));
        }
        if bytes.len() as u64 > header.size {
            return Err(format!(
                "chunk of {} bytes in a module of {}",
                bytes.len(),
                header.size
            ));
        }
        let id = (tenant.to_string(), digest.to_string());
        let held: u64 = self.held(tenant) + bytes.len() as u64
            - self
                .blobs
                .get(&id)
                .and_then(|b| b.parts.get(&index))
                .map_or(0, |p| p.len() as u64);
        if held > limits.max_held_bytes {
            self.evict_unlisted(tenant, &id);
            if self.held(tenant) + bytes.len() as u64 > limits.max_held_bytes {
                return Err(format!(
                    "tenant `{tenant}` already holds {} bytes of module chunks (limit {})",
                    self.held(tenant),
                    limits.max_held_bytes
                ));
            }
        }
        let blob = self.blobs.entry(id).or_default();
        if blob
            .header
            .as_ref()
            .is_some_and(|h| (h.chunks, h.size) != (header.chunks, header.size))
        {
            // A rewrite with another chunking: start over from this one.
            blob.parts.clear();
        }
        blob.header = Some(header);
        blob.parts.insert(index, bytes);
        Ok(())
    }

    fn held(&self, tenant: &str) -> u64 {
        self.blobs
            .iter()
            .filter(|((t, _), _)| t == tenant)
            .map(|(_, b)| b.bytes_held())
            .sum()
    }

    /// Drops `tenant`'s versions no module record lists (but `keep`).
    fn evict_unlisted(&mut self, tenant: &str, keep: &(String, String)) {
        let listed: Vec<String> = self
            .modules
            .iter()
            .filter(|((t, _), _)| t == tenant)
            .flat_map(|(_, r)| r.versions.iter().cloned())
            .collect();
        self.blobs
            .retain(|id, _| id.0 != tenant || id == keep || listed.contains(&id.1));
    }

    /// Forgets everything of a removed tenant but its definition's absence.
    pub(super) fn forget_tenant(&mut self, tenant: &str) {
        self.tenants.remove(tenant);
        self.blobs.retain(|(t, _), _| t != tenant);
        self.modules.retain(|(t, _), _| t != tenant);
        let prefix = format!("{tenant}.");
        self.paused.retain(|p, _| !p.starts_with(&prefix));
    }

    /// The bytes of `tenant`'s version `digest`, if complete and intact.
    pub(super) fn module_bytes(&self, tenant: &str, digest: &str) -> Result<Vec<u8>, String> {
        let blob = self
            .blobs
            .get(&(tenant.to_string(), digest.to_string()))
            .ok_or_else(|| {
                format!(
                    "no chunks of version {} in the control topic",
                    short(digest)
                )
            })?;
        let header = blob.header.as_ref().expect("a stored blob has a header");
        if let Some(missing) = (0..header.chunks).find(|i| !blob.parts.contains_key(i)) {
            return Err(format!(
                "version {} is incomplete: chunk {missing} of {} is missing",
                short(digest),
                header.chunks
            ));
        }
        let bytes: Vec<u8> = blob.parts.values().flatten().copied().collect();
        if bytes.len() as u64 != header.size {
            return Err(format!(
                "version {} has {} bytes, its chunks say {}",
                short(digest),
                bytes.len(),
                header.size
            ));
        }
        let actual = digest_of(&bytes);
        if actual != digest {
            return Err(format!(
                "version {} is corrupted: its bytes hash to {}",
                short(digest),
                short(&actual)
            ));
        }
        Ok(bytes)
    }
}

pub(super) fn short(digest: &str) -> &str {
    &digest[..digest.len().min(12)]
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: ChunkLimits = ChunkLimits {
        max_module_bytes: 10_000,
        max_held_bytes: 15_000,
    };

    fn header(chunks: u32, size: u64) -> ChunkHeader {
        ChunkHeader {
            by: None,
            chunks,
            size,
        }
    }

    #[test]
    fn a_version_is_usable_only_whole_and_intact() {
        let bytes = vec![7u8; 6000];
        let digest = digest_of(&bytes);
        let mut s = ControlState::default();
        s.add_chunk(
            "acme",
            &digest,
            0,
            header(2, 6000),
            bytes[..3000].to_vec(),
            LIMITS,
        )
        .unwrap();
        let err = s.module_bytes("acme", &digest).unwrap_err();
        assert!(err.contains("chunk 1 of 2 is missing"), "{err}");
        // Another tenant's chunks are not this tenant's version.
        assert!(s.module_bytes("globex", &digest).is_err());
        s.add_chunk("acme", &digest, 1, header(2, 6000), vec![8u8; 3000], LIMITS)
            .unwrap();
        let err = s.module_bytes("acme", &digest).unwrap_err();
        assert!(err.contains("corrupted"), "{err}");
        s.add_chunk(
            "acme",
            &digest,
            1,
            header(2, 6000),
            bytes[3000..].to_vec(),
            LIMITS,
        )
        .unwrap();
        assert_eq!(s.module_bytes("acme", &digest).unwrap(), bytes);
    }

    #[test]
    fn held_chunks_are_bounded_per_tenant() {
        let mut s = ControlState::default();
        let d = |c: char| c.to_string().repeat(64);
        let err = s
            .add_chunk("acme", &d('a'), 0, header(1, 50_000), vec![0; 10], LIMITS)
            .unwrap_err();
        assert!(err.contains("over the 10000"), "{err}");
        // Endless empty chunks are not a way around the byte bound.
        let err = s
            .add_chunk("acme", &d('a'), 0, header(1_000_000, 10), vec![], LIMITS)
            .unwrap_err();
        assert!(err.contains("1000000 chunks"), "{err}");
        for (i, c) in ['a', 'b'].into_iter().enumerate() {
            s.add_chunk(
                "acme",
                &d(c),
                0,
                header(1, 7000),
                vec![i as u8; 7000],
                LIMITS,
            )
            .unwrap();
        }
        // Unlisted versions make room; a listed one is kept.
        s.modules.insert(
            ("acme".into(), "m".into()),
            ModuleRecord {
                by: None,
                digest: d('b'),
                versions: vec![d('b')],
            },
        );
        s.add_chunk("acme", &d('c'), 0, header(1, 7000), vec![2; 7000], LIMITS)
            .unwrap();
        assert!(
            s.module_bytes("acme", &d('a'))
                .unwrap_err()
                .contains("no chunks")
        );
        s.modules.insert(
            ("acme".into(), "n".into()),
            ModuleRecord {
                by: None,
                digest: d('c'),
                versions: vec![d('c')],
            },
        );
        let err = s
            .add_chunk("acme", &d('e'), 0, header(1, 7000), vec![3; 7000], LIMITS)
            .unwrap_err();
        assert!(err.contains("already holds"), "{err}");
        // Other tenants have their own bound.
        s.add_chunk("globex", &d('e'), 0, header(1, 7000), vec![3; 7000], LIMITS)
            .unwrap();
    }
}
