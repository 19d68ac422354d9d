//! Where the rig finds its external programs and the Wasm modules under test.
//!
//! Nothing here skips: a missing tool or module is an error whose message says
//! which command installs or builds it, so a test that needs it fails loudly.

use std::path::{Path, PathBuf};

/// A tool or module the rig needs is not where it should be.
#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    /// A tool binary installed by `cargo xtask tools` is missing.
    #[error("{tool} not found at {}; run `cargo xtask tools`", path.display())]
    ToolNotFound {
        /// Binary name, e.g. `tansu`.
        tool: &'static str,
        /// Where it was looked for.
        path: PathBuf,
    },
    /// A Wasm module built by `cargo xtask modules` is missing.
    #[error("module {name} not built at {}; run `cargo xtask modules`", path.display())]
    ModuleNotBuilt {
        /// Module name as passed to [`module_wasm`].
        name: String,
        /// Where it was looked for.
        path: PathBuf,
    },
}

/// Root of the Cargo workspace (the parent of this crate's manifest directory).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("testkit lives inside the workspace")
        .to_path_buf()
}

/// Folder holding the tool binaries: `$WEIR_TOOLS_DIR`, else `<workspace>/.tools/bin`.
pub fn tools_dir() -> PathBuf {
    match std::env::var_os("WEIR_TOOLS_DIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => workspace_root().join(".tools").join("bin"),
    }
}

/// Folder holding built Wasm modules: `$WEIR_MODULES_DIR`, else `<workspace>/dist/modules`.
pub fn modules_dir() -> PathBuf {
    match std::env::var_os("WEIR_MODULES_DIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => workspace_root().join("dist").join("modules"),
    }
}

fn tool(tool: &'static str) -> Result<PathBuf, ToolError> {
    let path = tools_dir().join(tool);
    if path.is_file() {
        Ok(path)
    } else {
        Err(ToolError::ToolNotFound { tool, path })
    }
}

/// Path of the `tansu` Kafka broker binary.
pub fn tansu_bin() -> Result<PathBuf, ToolError> {
    tool("tansu")
}

/// Path of the `osmem-server` OpenSearch-compatible server binary.
pub fn osmem_bin() -> Result<PathBuf, ToolError> {
    tool("osmem-server")
}

/// Path of the built Wasm module `<modules dir>/<name>.wasm`.
pub fn module_wasm(name: &str) -> Result<PathBuf, ToolError> {
    let path = modules_dir().join(format!("{name}.wasm"));
    if path.is_file() {
        Ok(path)
    } else {
        Err(ToolError::ModuleNotBuilt {
            name: name.to_owned(),
            path,
        })
    }
}
