//! `cargo xtask modules [NAMES...] [--out DIR]`: builds the Wasm modules
//! under `modules/` (including the test fixtures) as components and copies
//! them to `dist/modules/<package>.wasm`.
//!
//! All selected modules are built by one `cargo build --target
//! wasm32-wasip2 --profile wasm` invocation. `fixture-stamp` is then
//! rebuilt twice, with `WEIR_FIXTURE_STAMP=a` and `=b`, into
//! `fixture-stamp-a.wasm` and `fixture-stamp-b.wasm` for hot-reload tests.
//! Each output is checked to be a component, not a core module, and is
//! written with write-then-rename, so a host watching the folder never
//! loads a half-written file.
//!
//! Python and JavaScript module folders under `modules/` (an `app.py` or
//! `app.js`, no `Cargo.toml`) are built too, by `polyglot.rs`.

use std::ffi::OsString;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail, ensure};
use serde_json::Value;

use crate::polyglot;

/// Rust target modules are built for: rustc links a component directly.
const TARGET: &str = "wasm32-wasip2";
/// Cargo profile for modules (root Cargo.toml: release + LTO + strip).
const PROFILE: &str = "wasm";
/// The fixture built once per stamp.
const STAMP_FIXTURE: &str = "fixture-stamp";
/// Build-time variable the stamp fixture reads.
const STAMP_VAR: &str = "WEIR_FIXTURE_STAMP";
/// The stamps it is built with.
const STAMPS: [&str; 2] = ["a", "b"];
/// `\0asm` followed by the component-model layer's version and layer
/// fields (a core module has `01 00 00 00` here).
const COMPONENT_PREAMBLE: [u8; 8] = [0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00];

/// Arguments of `cargo xtask modules`.
#[derive(clap::Args)]
pub struct Args {
    /// Module packages to build (default: every package under modules/).
    pub names: Vec<String>,
    /// Output directory (default: <workspace>/dist/modules).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

/// A module package found under `modules/`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ModulePackage {
    /// Package name, e.g. `text-clean`; names the output file.
    name: String,
    /// Library crate name, e.g. `text_clean`; names cargo's artifact.
    crate_name: String,
}

/// What `cargo metadata` tells us.
struct Workspace {
    root: PathBuf,
    target_dir: PathBuf,
    modules: Vec<ModulePackage>,
}

/// Builds the selected modules and installs them into the output folder.
pub fn build(args: &Args) -> Result<()> {
    let cargo = cargo();
    let workspace = Workspace::load(&cargo)?;
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| workspace.root.join("dist").join("modules"));
    fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;

    // Python and JavaScript module folders (polyglot.rs); the other names
    // are Rust packages.
    let polyglot = polyglot::find(&workspace.root.join("modules"))?;
    let (polyglot, rust_names) = polyglot::split(&polyglot, &args.names);
    let mut installed = Vec::new();
    if args.names.is_empty() || !rust_names.is_empty() {
        installed = build_rust(&cargo, &workspace, &rust_names, &out)?;
    }
    installed.extend(polyglot::build(&polyglot, &out)?);

    println!(
        "built {} components into {}",
        installed.len(),
        out.display()
    );
    for (path, size) in &installed {
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        println!("  {name:<28} {:>8.1} KiB", *size as f64 / 1024.0);
    }
    Ok(())
}

/// Builds the selected Rust module packages into `out`.
fn build_rust(
    cargo: &OsString,
    workspace: &Workspace,
    names: &[String],
    out: &Path,
) -> Result<Vec<(PathBuf, u64)>> {
    let selected = select(&workspace.modules, names)?;
    ensure_target_installed()?;
    let artifacts = workspace.target_dir.join(TARGET).join(PROFILE);

    cargo_build(cargo, &workspace.root, &selected, None)?;
    let mut installed = Vec::new();
    for module in &selected {
        let dest = out.join(format!("{}.wasm", module.name));
        installed.push(install(&artifacts, module, &dest)?);
    }

    if let Some(stamp) = selected.iter().find(|m| m.name == STAMP_FIXTURE) {
        for value in STAMPS {
            cargo_build(
                cargo,
                &workspace.root,
                std::slice::from_ref(stamp),
                Some(value),
            )?;
            let dest = out.join(format!("{}-{value}.wasm", stamp.name));
            installed.push(install(&artifacts, stamp, &dest)?);
        }
    }

    Ok(installed)
}

fn cargo() -> OsString {
    std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into())
}

impl Workspace {
    /// Runs `cargo metadata --format-version 1 --no-deps` (so
    /// `CARGO_TARGET_DIR` and the workspace layout are cargo's own view).
    fn load(cargo: &OsString) -> Result<Self> {
        let output = Command::new(cargo)
            .args(["metadata", "--format-version", "1", "--no-deps"])
            .output()
            .context("running cargo metadata")?;
        ensure!(
            output.status.success(),
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let metadata: Value =
            serde_json::from_slice(&output.stdout).context("parsing cargo metadata output")?;
        Self::from_metadata(&metadata)
    }

    fn from_metadata(metadata: &Value) -> Result<Self> {
        let path = |key: &str| {
            metadata[key]
                .as_str()
                .map(PathBuf::from)
                .with_context(|| format!("cargo metadata has no `{key}`"))
        };
        let root = path("workspace_root")?;
        let target_dir = path("target_directory")?;
        let modules_dir = root.join("modules");
        let mut modules: Vec<ModulePackage> = metadata["packages"]
            .as_array()
            .context("cargo metadata has no `packages`")?
            .iter()
            .filter(|package| {
                package["manifest_path"]
                    .as_str()
                    .is_some_and(|manifest| Path::new(manifest).starts_with(&modules_dir))
            })
            .filter_map(module_package)
            .collect();
        modules.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(Self {
            root,
            target_dir,
            modules,
        })
    }
}

/// The package as a module, if it has a `cdylib` library target.
fn module_package(package: &Value) -> Option<ModulePackage> {
    let name = package["name"].as_str()?;
    let lib = package["targets"].as_array()?.iter().find(|target| {
        target["kind"]
            .as_array()
            .is_some_and(|kinds| kinds.iter().any(|k| k == "cdylib"))
    })?;
    Some(ModulePackage {
        name: name.to_owned(),
        crate_name: lib["name"].as_str()?.replace('-', "_"),
    })
}

/// The modules named on the command line (all of them when none is).
fn select(modules: &[ModulePackage], names: &[String]) -> Result<Vec<ModulePackage>> {
    if modules.is_empty() {
        bail!("no module packages (with a cdylib target) under modules/");
    }
    if names.is_empty() {
        return Ok(modules.to_vec());
    }
    let mut selected: Vec<ModulePackage> = Vec::new();
    for name in names {
        let Some(module) = modules.iter().find(|m| &m.name == name) else {
            let known: Vec<&str> = modules.iter().map(|m| m.name.as_str()).collect();
            bail!("unknown module {name:?}; modules are: {}", known.join(", "));
        };
        if !selected.contains(module) {
            selected.push(module.clone());
        }
    }
    Ok(selected)
}

/// Fails with the fix when rustc has no standard library for the target.
/// Makes sure the toolchain in use can build for [`TARGET`]: if its
/// standard library is missing, runs `rustup target add` (for the toolchain
/// cargo runs xtask with, which is `rust-toolchain.toml`'s: rustup passes it
/// on in `RUSTUP_TOOLCHAIN`). Needed even with `rust-toolchain.toml`, since
/// rustup installs missing targets itself only when auto-install is on.
pub fn ensure_target_installed() -> Result<()> {
    if target_installed()? {
        return Ok(());
    }
    eprintln!("xtask: the {TARGET} target is not installed; running `rustup target add {TARGET}`");
    let status = Command::new("rustup")
        .args(["target", "add", TARGET])
        .status()
        .with_context(|| {
            format!(
                "the {TARGET} target is not installed and rustup could not be run; \
                 install the {TARGET} standard library for your Rust toolchain"
            )
        })?;
    ensure!(
        status.success(),
        "`rustup target add {TARGET}` failed ({status})"
    );
    ensure!(
        target_installed()?,
        "`rustup target add {TARGET}` succeeded but rustc still has no {TARGET} standard library"
    );
    Ok(())
}

/// Whether rustc's sysroot has the [`TARGET`] standard library.
fn target_installed() -> Result<bool> {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let output = Command::new(rustc)
        .args(["--print", "sysroot"])
        .output()
        .context("running rustc --print sysroot")?;
    ensure!(output.status.success(), "rustc --print sysroot failed");
    let sysroot = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
    Ok(sysroot.join("lib/rustlib").join(TARGET).is_dir())
}

/// One `cargo build` for `modules`; with `stamp`, sets the stamp fixture's
/// variable for this build only (and clears it otherwise, so it never
/// leaks into the regular builds).
fn cargo_build(
    cargo: &OsString,
    root: &Path,
    modules: &[ModulePackage],
    stamp: Option<&str>,
) -> Result<()> {
    let mut command = Command::new(cargo);
    command
        .current_dir(root)
        .args(["build", "--target", TARGET, "--profile", PROFILE]);
    for module in modules {
        command.args(["-p", &module.name]);
    }
    match stamp {
        Some(value) => command.env(STAMP_VAR, value),
        None => command.env_remove(STAMP_VAR),
    };
    let status = command.status().context("running cargo build")?;
    ensure!(status.success(), "cargo build of the modules failed");
    Ok(())
}

/// Copies the module's artifact to `dest` (via a temporary file and a
/// rename), after checking it is a component. Returns `dest` and its size.
fn install(artifacts: &Path, module: &ModulePackage, dest: &Path) -> Result<(PathBuf, u64)> {
    install_file(&artifacts.join(format!("{}.wasm", module.crate_name)), dest)
}

/// Copies the component at `source` to `dest` (via a temporary file and a
/// rename), after checking it is a component. Returns `dest` and its size.
pub fn install_file(source: &Path, dest: &Path) -> Result<(PathBuf, u64)> {
    check_component(source)?;
    let temporary = dest.with_extension("wasm.tmp");
    fs::copy(source, &temporary)
        .with_context(|| format!("copying {} to {}", source.display(), temporary.display()))?;
    fs::rename(&temporary, dest).with_context(|| format!("renaming to {}", dest.display()))?;
    let size = fs::metadata(dest)?.len();
    Ok((dest.to_owned(), size))
}

/// Checks the file starts with the component preamble.
fn check_component(path: &Path) -> Result<()> {
    let mut preamble = [0u8; 8];
    fs::File::open(path)
        .and_then(|mut file| file.read_exact(&mut preamble))
        .with_context(|| format!("reading {}", path.display()))?;
    ensure!(
        preamble[..4] == COMPONENT_PREAMBLE[..4],
        "{} is not WebAssembly",
        path.display()
    );
    ensure!(
        preamble == COMPONENT_PREAMBLE,
        "{} is a core module, not a component (preamble {:02x?})",
        path.display(),
        preamble
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn package(name: &str, manifest: &str, kinds: &[&str], target: &str) -> Value {
        json!({
            "name": name,
            "manifest_path": manifest,
            "targets": [{"name": target, "kind": kinds}],
        })
    }

    fn metadata() -> Value {
        json!({
            "workspace_root": "/ws",
            "target_directory": "/cache/target",
            "packages": [
                package("text-clean", "/ws/modules/text-clean/Cargo.toml", &["cdylib"], "text_clean"),
                package("weir", "/ws/host/Cargo.toml", &["lib"], "weir"),
                package("fixture-x", "/ws/modules/fixture-x/Cargo.toml", &["cdylib", "rlib"], "fixture-x"),
                package("helper", "/ws/modules/helper/Cargo.toml", &["lib"], "helper"),
            ],
        })
    }

    #[test]
    fn finds_cdylib_packages_under_modules() {
        let ws = Workspace::from_metadata(&metadata()).unwrap();
        assert_eq!(ws.target_dir, Path::new("/cache/target"));
        let names: Vec<(&str, &str)> = ws
            .modules
            .iter()
            .map(|m| (m.name.as_str(), m.crate_name.as_str()))
            .collect();
        assert_eq!(
            names,
            [("fixture-x", "fixture_x"), ("text-clean", "text_clean")]
        );
    }

    #[test]
    fn selection_defaults_to_all_and_rejects_unknown_names() {
        let modules = Workspace::from_metadata(&metadata()).unwrap().modules;
        assert_eq!(select(&modules, &[]).unwrap(), modules);
        let one = select(&modules, &["text-clean".into(), "text-clean".into()]).unwrap();
        assert_eq!(one.len(), 1);
        let err = select(&modules, &["nope".into()]).unwrap_err().to_string();
        assert!(err.contains("fixture-x, text-clean"), "{err}");
    }

    #[test]
    fn component_check_tells_core_modules_apart() {
        let dir = std::env::temp_dir().join(format!("xtask-modules-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let component = dir.join("c.wasm");
        fs::write(&component, COMPONENT_PREAMBLE).unwrap();
        assert!(check_component(&component).is_ok());
        let core = dir.join("m.wasm");
        fs::write(&core, b"\0asm\x01\0\0\0").unwrap();
        let err = check_component(&core).unwrap_err().to_string();
        assert!(err.contains("core module"), "{err}");
        let junk = dir.join("j.wasm");
        fs::write(&junk, b"nope").unwrap();
        assert!(check_component(&junk).is_err());
        fs::remove_dir_all(&dir).unwrap();
    }
}
