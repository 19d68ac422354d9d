//! On-disk cache of compiled components, so restarts don't recompile.
//!
//! Deserializing a compiled artifact is `unsafe` in wasmtime: a crafted file
//! is native code. So the cache only loads files this host (or another
//! holding the same key) wrote: every artifact is stored with an
//! HMAC-SHA256 tag under a random 32-byte key kept in the cache folder with
//! mode 0600, and a file whose tag doesn't verify is ignored and rewritten.
//! The file name binds the component's sha256 and the engine's
//! compatibility hash (wasmtime version and compilation settings).

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use hmac::{Hmac, Mac};
use sha2::Sha256;
use wasmtime::Engine;
use wasmtime::component::Component;

type Tag = Hmac<Sha256>;
const TAG_LEN: usize = 32;

/// A folder of compiled components, keyed by content and engine.
pub struct CompileCache {
    dir: PathBuf,
    key: [u8; 32],
    engine_hash: String,
    /// Artifacts are evicted, least recently used first, past this size.
    max_bytes: u64,
}

impl CompileCache {
    /// Opens (creating) the cache folder and its key; the artifacts in it
    /// are kept to `max_bytes` in all.
    pub fn open(dir: &Path, engine: &Engine, max_bytes: u64) -> std::io::Result<Self> {
        fs::create_dir_all(dir)?;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
        let key = load_or_create_key(&dir.join("cache.key"))?;
        let mut h = std::hash::DefaultHasher::new();
        std::hash::Hash::hash(&engine.precompile_compatibility_hash(), &mut h);
        let engine_hash = format!("{:016x}", std::hash::Hasher::finish(&h));
        Ok(Self {
            dir: dir.to_path_buf(),
            key,
            engine_hash,
            max_bytes,
        })
    }

    fn path_for(&self, digest: &str) -> PathBuf {
        self.dir
            .join(format!("{digest}-{}.cwasm", self.engine_hash))
    }

    fn tag(&self, bytes: &[u8]) -> [u8; TAG_LEN] {
        let mut mac = Tag::new_from_slice(&self.key).expect("any key length works");
        mac.update(bytes);
        mac.finalize().into_bytes().into()
    }

    /// The cached component for `digest`, if present and authentic.
    pub fn get(&self, engine: &Engine, digest: &str) -> Option<Component> {
        let path = self.path_for(digest);
        let data = fs::read(&path).ok()?;
        // Used now: the last to be evicted.
        if let Ok(f) = fs::File::options().write(true).open(&path) {
            let _ = f.set_modified(std::time::SystemTime::now());
        }
        if data.len() < TAG_LEN {
            return None;
        }
        let (tag, artifact) = data.split_at(TAG_LEN);
        let mut mac = Tag::new_from_slice(&self.key).expect("any key length works");
        mac.update(artifact);
        if mac.verify_slice(tag).is_err() {
            tracing::warn!(path = %path.display(), "compiled artifact failed authentication; ignoring it");
            return None;
        }
        // SAFETY: the artifact was produced by `Component::serialize` on an
        // engine with the same compatibility hash and authenticated with this
        // cache's secret key, so it is a file this host wrote.
        match unsafe { Component::deserialize(engine, artifact) } {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "cached artifact unusable; recompiling");
                None
            }
        }
    }

    /// Stores `component` for `digest` (write to a temp file, then rename).
    pub fn put(&self, digest: &str, component: &Component) {
        let result = (|| -> std::io::Result<()> {
            let artifact = component.serialize().map_err(std::io::Error::other)?;
            let path = self.path_for(digest);
            let tmp = path.with_extension(format!("tmp{}", std::process::id()));
            let mut f = fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)?;
            f.write_all(&self.tag(&artifact))?;
            f.write_all(&artifact)?;
            f.sync_all()?;
            fs::rename(&tmp, &path)
        })();
        if let Err(e) = result {
            tracing::warn!(error = %e, "could not write the compile cache");
        }
        self.evict();
    }

    /// Removes the least recently used artifacts until the rest fit in
    /// `max_bytes` (the newest one always stays).
    fn evict(&self) {
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return;
        };
        let mut artifacts: Vec<(std::time::SystemTime, u64, PathBuf)> = entries
            .filter_map(Result::ok)
            .filter(|e| e.path().extension().is_some_and(|x| x == "cwasm"))
            .filter_map(|e| {
                let meta = e.metadata().ok()?;
                Some((meta.modified().ok()?, meta.len(), e.path()))
            })
            .collect();
        let mut total: u64 = artifacts.iter().map(|a| a.1).sum();
        artifacts.sort();
        for (_, len, path) in artifacts.iter().take(artifacts.len().saturating_sub(1)) {
            if total <= self.max_bytes {
                break;
            }
            if fs::remove_file(path).is_ok() {
                total -= len;
                tracing::debug!(path = %path.display(), "compile cache: evicted");
            }
        }
    }
}

fn load_or_create_key(path: &Path) -> std::io::Result<[u8; 32]> {
    if let Ok(existing) = fs::read(path)
        && existing.len() == 32
    {
        let mut key = [0u8; 32];
        key.copy_from_slice(&existing);
        return Ok(key);
    }
    let mut key = [0u8; 32];
    rand::fill(&mut key);
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(&key)?;
    f.sync_all()?;
    // Another process may have won the race: keep whichever key is there.
    match fs::hard_link(&tmp, path) {
        Ok(()) => {
            fs::remove_file(&tmp)?;
            Ok(key)
        }
        Err(_) => {
            fs::remove_file(&tmp)?;
            let existing = fs::read(path)?;
            existing.try_into().map_err(|_| {
                std::io::Error::other(format!("{}: not a 32-byte key", path.display()))
            })
        }
    }
}

/// The default cache folder: `$XDG_CACHE_HOME/weir/compiled` or
/// `~/.cache/weir/compiled`.
pub fn default_dir() -> Option<PathBuf> {
    std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .map(|base| base.join("weir").join("compiled"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn engine() -> Engine {
        let mut c = wasmtime::Config::new();
        c.wasm_component_model(true);
        Engine::new(&c).unwrap()
    }

    const WAT: &str = "(component (core module (func (export \"f\"))))";

    #[test]
    fn round_trips_and_rejects_tampering() {
        let dir = tempfile::tempdir().unwrap();
        let engine = engine();
        let cache = CompileCache::open(dir.path(), &engine, u64::MAX).unwrap();
        let component = Component::new(&engine, WAT).unwrap();
        assert!(cache.get(&engine, "abc").is_none());
        cache.put("abc", &component);
        assert!(cache.get(&engine, "abc").is_some());

        // Flip one byte of the artifact: the tag no longer verifies.
        let path = cache.path_for("abc");
        let mut data = fs::read(&path).unwrap();
        let last = data.len() - 1;
        data[last] ^= 0xff;
        fs::write(&path, data).unwrap();
        assert!(cache.get(&engine, "abc").is_none());
    }

    #[test]
    fn another_key_cannot_vouch_for_an_artifact() {
        let dir = tempfile::tempdir().unwrap();
        let engine = engine();
        let cache = CompileCache::open(dir.path(), &engine, u64::MAX).unwrap();
        cache.put("abc", &Component::new(&engine, WAT).unwrap());
        fs::write(dir.path().join("cache.key"), [7u8; 32]).unwrap();
        let reopened = CompileCache::open(dir.path(), &engine, u64::MAX).unwrap();
        assert!(reopened.get(&engine, "abc").is_none());
    }

    #[test]
    fn the_least_recently_used_artifacts_go_past_the_size_limit() {
        let dir = tempfile::tempdir().unwrap();
        let engine = engine();
        let component = Component::new(&engine, WAT).unwrap();
        let probe = CompileCache::open(dir.path(), &engine, u64::MAX).unwrap();
        probe.put("size", &component);
        let one = fs::metadata(probe.path_for("size")).unwrap().len();
        fs::remove_file(probe.path_for("size")).unwrap();

        // Room for two artifacts.
        let cache = CompileCache::open(dir.path(), &engine, 2 * one + one / 2).unwrap();
        let age = |digest: &str, secs: u64| {
            let f = fs::File::options()
                .write(true)
                .open(cache.path_for(digest))
                .unwrap();
            f.set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs))
                .unwrap();
        };
        cache.put("a", &component);
        age("a", 1_000);
        cache.put("b", &component);
        age("b", 2_000);
        // Reading `a` makes it the most recently used: `b` goes first.
        assert!(cache.get(&engine, "a").is_some());
        cache.put("c", &component);
        assert!(cache.path_for("a").exists());
        assert!(
            !cache.path_for("b").exists(),
            "b was the least recently used"
        );
        assert!(cache.path_for("c").exists());
        assert!(
            dir.path().join("cache.key").exists(),
            "the key is never evicted"
        );
    }
}
