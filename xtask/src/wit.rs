//! `cargo xtask wit [--contract 0.1|0.2] [--out FILE]`: writes the module
//! contract (`wit/` for 0.1, `wit/v0.2/` for 0.2; both without
//! `--contract`) as one binary WIT package,
//! `dist/weir-pipeline-<version>.wasm`, and the same contract as one
//! self-contained text file next to it, `dist/weir-pipeline-<version>.wit`
//! (dependencies as nested packages).
//!
//! Authors outside this repository generate bindings from a single file
//! (`componentize-py -d weir-pipeline-0.1.0.wasm ...`, `wit-bindgen rust
//! weir-pipeline-0.1.0.wasm`) instead of copying the `wit/` folder with its
//! `deps/`. componentize-js 0.23 reads WIT text only, hence the `.wit`.
//! The binary embeds the `wasi:logging` interface it uses and decodes back
//! to the same world. Both files are written via a temporary name and a
//! rename, then read back and checked.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail, ensure};
use wit_parser::{PackageId, Resolve};

use crate::cargo;

/// The package `wit/` defines.
pub const PACKAGE: &str = "weir:pipeline";
/// The world every 0.1 module targets (the polyglot SDKs' world).
pub const WORLD: &str = "module";
/// The world of 0.2, the document model.
const WORLD_0_2: &str = "doc-module";
/// The interface either world exports.
const EXPORT: &str = "processor";

/// The contract versions in this repository: (version, folder under the
/// workspace root).
const CONTRACTS: [(&str, &str); 2] = [("0.1", "wit"), ("0.2", "wit/v0.2")];

/// Arguments of `cargo xtask wit`.
#[derive(clap::Args)]
pub struct Args {
    /// Which contract to write (default: every one).
    #[arg(long, value_parser = ["0.1", "0.2"])]
    pub contract: Option<String>,
    /// Output file (default: <workspace>/dist/weir-pipeline-<version>.wasm);
    /// needs `--contract`.
    #[arg(long, value_name = "FILE", requires = "contract")]
    pub out: Option<PathBuf>,
}

pub fn run(args: &Args) -> Result<()> {
    let root = cargo::workspace_root();
    for (version, dir) in CONTRACTS {
        if args.contract.as_deref().is_some_and(|c| c != version) {
            continue;
        }
        let written = write(&root.join(dir), args.out.as_deref(), &root.join("dist"))?;
        let text = written.with_extension("wit");
        println!(
            "wrote {} ({} bytes) and {}: package {PACKAGE}, world {}",
            written.display(),
            fs::metadata(&written)?.len(),
            text.display(),
            world_of(version)
        );
    }
    Ok(())
}

/// The world modules of contract `version` (`0.1.0`, `0.2`, …) target.
fn world_of(version: &str) -> &'static str {
    if version.starts_with("0.1") {
        WORLD
    } else {
        WORLD_0_2
    }
}

/// Encodes the package in `wit_dir` into `out` (or `<dist>/<file name>`),
/// checks the written file and returns its path.
/// The text form goes next to it with the `.wit` extension.
pub fn write(wit_dir: &Path, out: Option<&Path>, dist: &Path) -> Result<PathBuf> {
    let (bytes, version) = encode(wit_dir)?;
    let out = match out {
        Some(out) => out.to_owned(),
        None => dist.join(file_name(&version)),
    };
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    }
    replace(&out, &bytes)?;
    let written = fs::read(&out).with_context(|| format!("reading {}", out.display()))?;
    check(&written).with_context(|| format!("checking {}", out.display()))?;

    let text_path = out.with_extension("wit");
    replace(&text_path, text(wit_dir)?.as_bytes())?;
    check_text(&text_path).with_context(|| format!("checking {}", text_path.display()))?;
    Ok(out)
}

/// Writes `bytes` to `path` via a temporary file and a rename.
fn replace(path: &Path, bytes: &[u8]) -> Result<()> {
    let temporary = path.with_extension("tmp");
    fs::write(&temporary, bytes).with_context(|| format!("writing {}", temporary.display()))?;
    fs::rename(&temporary, path).with_context(|| format!("renaming to {}", path.display()))
}

/// `wit_dir` as one WIT text: the main package, then every dependency as a
/// nested `package ns:name@version { ... }` block.
pub fn text(wit_dir: &Path) -> Result<String> {
    let mut resolve = Resolve::default();
    let (package, _sources) = resolve
        .push_dir(wit_dir)
        .with_context(|| format!("parsing WIT in {}", wit_dir.display()))?;
    let nested: Vec<PackageId> = resolve
        .packages
        .iter()
        .map(|(id, _)| id)
        .filter(|id| *id != package)
        .collect();
    let mut printer = wit_component::WitPrinter::default();
    printer
        .print(&resolve, package, &nested)
        .context("printing WIT")?;
    Ok(printer.output.to_string())
}

/// Parses a text package file and checks it like [`check`].
fn check_text(path: &Path) -> Result<()> {
    let mut resolve = Resolve::default();
    let package = resolve.push_file(path)?;
    check_resolve(&resolve, package)
}

/// `weir-pipeline-<version>.wasm`.
pub fn file_name(version: &str) -> String {
    format!("weir-pipeline-{version}.wasm")
}

/// Parses `wit_dir` (with its `deps/`) and encodes its main package.
/// Returns the binary and the package version.
pub fn encode(wit_dir: &Path) -> Result<(Vec<u8>, String)> {
    let mut resolve = Resolve::default();
    let (package, _sources) = resolve
        .push_dir(wit_dir)
        .with_context(|| format!("parsing WIT in {}", wit_dir.display()))?;
    let version = package_version(&resolve, package)?;
    let bytes = wit_component::encode(&resolve, package)
        .with_context(|| format!("encoding {PACKAGE}@{version}"))?;
    Ok((bytes, version))
}

fn package_version(resolve: &Resolve, package: PackageId) -> Result<String> {
    let name = &resolve.packages[package].name;
    ensure!(
        format!("{}:{}", name.namespace, name.name) == PACKAGE,
        "wit/ defines {name}, expected {PACKAGE}"
    );
    name.version
        .as_ref()
        .map(ToString::to_string)
        .with_context(|| format!("{name} has no version"))
}

/// Decodes a binary WIT package and checks it holds `weir:pipeline` with
/// its version's world (`module` for 0.1, `doc-module` for 0.2) exporting
/// `processor`.
pub fn check(bytes: &[u8]) -> Result<()> {
    let decoded = wit_component::decode(bytes).context("decoding the WIT package")?;
    let wit_component::DecodedWasm::WitPackage(resolve, package) = decoded else {
        bail!("the file is a component, not a WIT package");
    };
    check_resolve(&resolve, package)
}

fn check_resolve(resolve: &Resolve, package: PackageId) -> Result<()> {
    let version = package_version(resolve, package)?;
    let world_name = world_of(&version);
    let world = resolve
        .select_world(&[package], Some(world_name))
        .with_context(|| format!("{PACKAGE}@{version} has no world {world_name}"))?;
    let exports_processor = resolve.worlds[world].exports.keys().any(|key| {
        matches!(key, wit_parser::WorldKey::Interface(id)
            if resolve.interfaces[*id].name.as_deref() == Some(EXPORT))
    });
    ensure!(
        exports_processor,
        "world {world_name} does not export {EXPORT}"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wit_dir() -> PathBuf {
        cargo::workspace_root().join("wit")
    }

    #[test]
    fn written_package_decodes_to_the_module_world() {
        let dir = std::env::temp_dir().join(format!("xtask-wit-{}", std::process::id()));
        let path = write(&wit_dir(), None, &dir).unwrap();
        assert_eq!(path, dir.join("weir-pipeline-0.1.0.wasm"));
        let bytes = fs::read(&path).unwrap();
        let wit_component::DecodedWasm::WitPackage(resolve, package) =
            wit_component::decode(&bytes).unwrap()
        else {
            panic!("not a WIT package");
        };
        assert_eq!(
            resolve.packages[package].name.to_string(),
            "weir:pipeline@0.1.0"
        );
        let world = resolve.select_world(&[package], Some("module")).unwrap();
        let world = &resolve.worlds[world];
        // The world's import (wasi:logging) survives the round trip, and the
        // processor interface keeps its three functions.
        let imports: Vec<String> = world
            .imports
            .keys()
            .map(|key| resolve.name_world_key(key))
            .collect();
        assert!(
            imports
                .iter()
                .any(|i| i == "wasi:logging/logging@0.1.0-draft"),
            "{imports:?}"
        );
        let processor = resolve
            .interfaces
            .iter()
            .find(|(_, i)| i.name.as_deref() == Some("processor") && i.package == Some(package))
            .map(|(_, i)| i)
            .unwrap();
        let mut functions: Vec<&str> = processor.functions.keys().map(String::as_str).collect();
        functions.sort();
        assert_eq!(functions, ["describe", "init", "process"]);
        // The text form parses on its own (no deps folder) to the same world.
        let text = dir.join("weir-pipeline-0.1.0.wit");
        let source = fs::read_to_string(&text).unwrap();
        assert!(
            source.contains("\npackage weir:pipeline@0.1.0;"),
            "{source}"
        );
        assert!(
            source.contains("package wasi:logging@0.1.0-draft {"),
            "{source}"
        );
        check_text(&text).unwrap();
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_0_2_package_decodes_to_the_doc_module_world() {
        let dir = std::env::temp_dir().join(format!("xtask-wit-02-{}", std::process::id()));
        let path = write(&cargo::workspace_root().join("wit/v0.2"), None, &dir).unwrap();
        assert_eq!(path, dir.join("weir-pipeline-0.2.0.wasm"));
        let wit_component::DecodedWasm::WitPackage(resolve, package) =
            wit_component::decode(&fs::read(&path).unwrap()).unwrap()
        else {
            panic!("not a WIT package");
        };
        assert_eq!(
            resolve.packages[package].name.to_string(),
            "weir:pipeline@0.2.0"
        );
        assert!(resolve.select_world(&[package], Some("doc-module")).is_ok());
        // The document resource is in the package, with its methods.
        let doc = resolve
            .types
            .iter()
            .find(|(_, t)| t.name.as_deref() == Some("doc"))
            .map(|(id, _)| id)
            .expect("a doc resource");
        let methods: Vec<&str> = resolve
            .interfaces
            .iter()
            .flat_map(|(_, i)| i.functions.values())
            .filter(|f| f.kind.resource() == Some(doc))
            .map(|f| f.item_name())
            .collect();
        for m in ["get", "set", "remove", "keys", "to-json", "clone"] {
            assert!(methods.contains(&m), "{m} missing from {methods:?}");
        }
        let text = fs::read_to_string(dir.join("weir-pipeline-0.2.0.wit")).unwrap();
        assert!(text.contains("\npackage weir:pipeline@0.2.0;"), "{text}");
        check_text(&dir.join("weir-pipeline-0.2.0.wit")).unwrap();
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn check_rejects_what_is_not_the_package() {
        assert!(check(b"\0asm\x01\0\0\0").is_err());
        assert!(check(b"junk").is_err());
    }

    #[test]
    fn a_wrong_package_name_is_named() {
        let dir = std::env::temp_dir().join(format!("xtask-wit-bad-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        fs::write(
            dir.join("x.wit"),
            "package other:thing@1.0.0;\ninterface i {}\n",
        )
        .unwrap();
        let err = encode(&dir).unwrap_err().to_string();
        assert!(
            err.contains("other:thing@1.0.0") && err.contains(PACKAGE),
            "{err}"
        );
        fs::remove_dir_all(&dir).unwrap();
    }
}
