//! Python and JavaScript modules: toolchains, builds and native tests.
//!
//! A folder under `modules/` with an `app.py` is a Python module, built
//! with componentize-py; one with an `app.js` is a JavaScript module, built
//! with componentize-js. Both build against the binary/text WIT package
//! `cargo xtask wit` writes, so the artifact authors use is the one tested.
//! Outputs go to `dist/modules/<folder>.wasm` like the Rust modules
//! (component check, write-then-rename).
//!
//! The toolchains are pinned here and installed into `.tools/` (pip
//! `--target`, npm `--prefix`), never globally, and only when the pinned
//! version is not there yet. A component build takes 10-20 s, so each
//! output is cached under the cargo target folder by a hash of everything
//! it is built from (the module's sources, the kit, the WIT, the tool
//! version): an unchanged module is copied, not rebuilt.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail, ensure};
use sha2::{Digest, Sha256};

use crate::{cargo, wit};

/// componentize-py from PyPI (and pytest for the native tests).
const COMPONENTIZE_PY: &str = "0.25.1";
const PYTEST: &str = "9.2.0";
/// componentize-py's console script (the package has no `__main__`).
const COMPONENTIZE_PY_MAIN: &str = "import sys; from componentize_py import script; sys.argv[0] = 'componentize-py'; sys.exit(script())";
/// componentize-js from npm.
const COMPONENTIZE_JS: &str = "0.23.0";
/// componentize-js 0.23.0 imports preview2-shim at build time but lists it
/// only as a dev dependency, so npm does not install it along.
const PREVIEW2_SHIM: &str = "0.25.0";

/// The two languages besides Rust.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Language {
    Python,
    JavaScript,
}

impl Language {
    /// The entry file that marks a module folder.
    fn entry(self) -> &'static str {
        match self {
            Language::Python => "app.py",
            Language::JavaScript => "app.js",
        }
    }

    /// Source files that go into the component (tests excluded).
    fn is_source(self, path: &Path) -> bool {
        let ext = path.extension().and_then(|e| e.to_str());
        match self {
            Language::Python => ext == Some("py"),
            Language::JavaScript => matches!(ext, Some("js" | "mjs")),
        }
    }

    fn kit_dir(self, root: &Path) -> PathBuf {
        match self {
            Language::Python => root.join("kits/python"),
            Language::JavaScript => root.join("kits/javascript"),
        }
    }
}

/// A Python or JavaScript module folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Module {
    /// Folder name; names the output file.
    pub name: String,
    pub dir: PathBuf,
    pub language: Language,
}

/// The Python and JavaScript modules under `modules_dir`, by name.
pub fn find(modules_dir: &Path) -> Result<Vec<Module>> {
    let mut found = Vec::new();
    let entries =
        fs::read_dir(modules_dir).with_context(|| format!("reading {}", modules_dir.display()))?;
    for entry in entries {
        let dir = entry?.path();
        if dir.join("Cargo.toml").exists() {
            continue;
        }
        let name = dir
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        for language in [Language::Python, Language::JavaScript] {
            if dir.join(language.entry()).is_file() {
                found.push(Module {
                    name: name.clone(),
                    dir: dir.clone(),
                    language,
                });
            }
        }
    }
    found.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(found)
}

/// Splits module names given on the command line into the polyglot
/// modules they name and the remaining (Rust) names. No names selects
/// every polyglot module (and leaves the Rust selection empty = all).
pub fn split(modules: &[Module], names: &[String]) -> (Vec<Module>, Vec<String>) {
    if names.is_empty() {
        return (modules.to_vec(), Vec::new());
    }
    let mut selected = Vec::new();
    let mut rest = Vec::new();
    for name in names {
        match modules.iter().find(|m| &m.name == name) {
            Some(module) if !selected.contains(module) => selected.push(module.clone()),
            Some(_) => {}
            None => rest.push(name.clone()),
        }
    }
    (selected, rest)
}

/// The installed toolchains, under `.tools/`.
struct Tools {
    root: PathBuf,
}

impl Tools {
    fn new(root: &Path) -> Self {
        Self {
            root: root.join(".tools"),
        }
    }

    fn python_dir(&self) -> PathBuf {
        self.root.join("python")
    }

    fn node_dir(&self) -> PathBuf {
        self.root.join("node")
    }

    /// pip-installs componentize-py and pytest into `.tools/python` unless
    /// the pinned versions are there.
    fn ensure_python(&self) -> Result<()> {
        let dir = self.python_dir();
        let wanted = [
            format!("componentize_py-{COMPONENTIZE_PY}.dist-info"),
            format!("pytest-{PYTEST}.dist-info"),
        ];
        if wanted.iter().all(|d| dir.join(d).is_dir()) {
            return Ok(());
        }
        println!(
            "installing componentize-py {COMPONENTIZE_PY} and pytest {PYTEST} into {}",
            dir.display()
        );
        let status = Command::new("python3")
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "--upgrade",
                "--target",
            ])
            .arg(&dir)
            .arg(format!("componentize-py=={COMPONENTIZE_PY}"))
            .arg(format!("pytest=={PYTEST}"))
            .status()
            .context("running `python3 -m pip install` (is python3 with pip installed?)")?;
        ensure!(
            status.success(),
            "pip install into {} failed ({status})",
            dir.display()
        );
        Ok(())
    }

    /// npm-installs componentize-js into `.tools/node` unless the pinned
    /// version is there.
    fn ensure_node(&self) -> Result<()> {
        let dir = self.node_dir();
        let manifest = dir.join("node_modules/@bytecodealliance/componentize-js/package.json");
        let installed = fs::read_to_string(&manifest)
            .ok()
            .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
            .and_then(|v| v["version"].as_str().map(str::to_owned));
        let shim = dir.join("node_modules/@bytecodealliance/preview2-shim/package.json");
        if installed.as_deref() == Some(COMPONENTIZE_JS) && shim.is_file() {
            return Ok(());
        }
        println!(
            "installing componentize-js {COMPONENTIZE_JS} and preview2-shim {PREVIEW2_SHIM} into {}",
            dir.display()
        );
        fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let status = Command::new("npm")
            .args([
                "install",
                "--no-audit",
                "--no-fund",
                "--loglevel=error",
                "--prefix",
            ])
            .arg(&dir)
            .arg(format!(
                "@bytecodealliance/componentize-js@{COMPONENTIZE_JS}"
            ))
            .arg(format!("@bytecodealliance/preview2-shim@{PREVIEW2_SHIM}"))
            .status()
            .context("running `npm install` (is node with npm installed?)")?;
        ensure!(
            status.success(),
            "npm install into {} failed ({status})",
            dir.display()
        );
        Ok(())
    }

    /// `python3` with `.tools/python` and the kit on its path.
    fn python(&self, root: &Path, extra_path: &[&Path]) -> Command {
        let mut paths = vec![self.python_dir(), Language::Python.kit_dir(root)];
        paths.extend(extra_path.iter().map(|p| p.to_path_buf()));
        let mut command = Command::new("python3");
        command.env(
            "PYTHONPATH",
            std::env::join_paths(paths).expect("paths without separators"),
        );
        command.env("PYTHONDONTWRITEBYTECODE", "1");
        command
    }
}

/// Builds `modules` into `out`; returns each output and its size.
pub fn build(modules: &[Module], out: &Path) -> Result<Vec<(PathBuf, u64)>> {
    if modules.is_empty() {
        return Ok(Vec::new());
    }
    let root = cargo::workspace_root();
    let tools = Tools::new(&root);
    let wit_file = wit::write(&root.join("wit"), None, &root.join("dist"))?;
    let cache = cargo::target_dir().join("weir-polyglot");
    fs::create_dir_all(&cache).with_context(|| format!("creating {}", cache.display()))?;

    let mut installed = Vec::new();
    for module in modules {
        let key = input_hash(&root, module, &wit_file)?;
        let cached = cache.join(format!("{}-{}.wasm", module.name, &key[..16]));
        if cached.is_file() {
            println!("{}: unchanged, from the build cache", module.name);
        } else {
            build_one(&root, &tools, module, &wit_file, &cached)?;
        }
        let dest = out.join(format!("{}.wasm", module.name));
        installed.push(crate::modules::install_file(&cached, &dest)?);
    }
    Ok(installed)
}

fn build_one(
    root: &Path,
    tools: &Tools,
    module: &Module,
    wit_file: &Path,
    dest: &Path,
) -> Result<()> {
    let partial = dest.with_extension("partial");
    println!("{}: building with {:?}", module.name, module.language);
    let status = match module.language {
        Language::Python => {
            tools.ensure_python()?;
            tools
                .python(root, &[])
                .args(["-c", COMPONENTIZE_PY_MAIN, "-d"])
                .arg(wit_file)
                .args(["-w", wit::WORLD, "componentize", "app", "-p"])
                .arg(&module.dir)
                .arg("-p")
                .arg(Language::Python.kit_dir(root))
                .arg("-o")
                .arg(&partial)
                .status()
                .context("running componentize-py")?
        }
        Language::JavaScript => {
            tools.ensure_node()?;
            // componentize-js reads WIT text, so the `.wit` twin of the package.
            Command::new("node")
                .arg(
                    tools
                        .node_dir()
                        .join("node_modules/@bytecodealliance/componentize-js/src/cli.js"),
                )
                .arg(module.dir.join(Language::JavaScript.entry()))
                .arg("-w")
                .arg(wit_file.with_extension("wit"))
                .args(["-n", wit::WORLD, "-o"])
                .arg(&partial)
                .current_dir(root)
                .status()
                .context("running componentize-js (is node installed?)")?
        }
    };
    ensure!(
        status.success(),
        "building {} failed ({status})",
        module.name
    );
    fs::rename(&partial, dest).with_context(|| format!("renaming to {}", dest.display()))
}

/// SHA-256 over the tool version, the WIT package, the kit's and the
/// module's source files (paths and contents, in a fixed order).
fn input_hash(root: &Path, module: &Module, wit_file: &Path) -> Result<String> {
    let mut hasher = Sha256::new();
    let tool = match module.language {
        Language::Python => COMPONENTIZE_PY,
        Language::JavaScript => COMPONENTIZE_JS,
    };
    hasher.update(format!("{:?} {tool}\n", module.language));
    hasher.update(fs::read(wit_file).with_context(|| format!("reading {}", wit_file.display()))?);
    for dir in [module.language.kit_dir(root), module.dir.clone()] {
        for file in sources(&dir, module.language)? {
            hasher.update(
                file.strip_prefix(root)
                    .unwrap_or(&file)
                    .to_string_lossy()
                    .as_bytes(),
            );
            hasher.update([0]);
            hasher.update(fs::read(&file).with_context(|| format!("reading {}", file.display()))?);
        }
    }
    Ok(hex(&hasher.finalize()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Source files under `dir`, sorted; test folders, templates and caches
/// skipped.
fn sources(dir: &Path, language: Language) -> Result<Vec<PathBuf>> {
    const SKIP: [&str; 6] = [
        "test",
        "tests",
        "template",
        "node_modules",
        "__pycache__",
        ".pytest_cache",
    ];
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
            let path = entry?.path();
            let name = path.file_name().unwrap_or_default().to_string_lossy();
            if path.is_dir() {
                if !SKIP.contains(&name.as_ref()) {
                    pending.push(path);
                }
            } else if language.is_source(&path) && name != "conftest.py" {
                files.push(path);
            }
        }
    }
    files.sort();
    Ok(files)
}

/// Runs the kits' and the modules' native tests: pytest per Python
/// folder, `node --test` per JavaScript folder (installing pytest first).
pub fn test(root: &Path) -> Result<()> {
    let tools = Tools::new(root);
    let modules = find(&root.join("modules"))?;
    let python_kit = Language::Python.kit_dir(root);
    let js_kit = Language::JavaScript.kit_dir(root);

    let mut python_dirs = vec![python_kit.clone(), python_kit.join("template")];
    let mut js_dirs = vec![js_kit.clone()];
    for module in &modules {
        match module.language {
            Language::Python => python_dirs.push(module.dir.clone()),
            Language::JavaScript => js_dirs.push(module.dir.clone()),
        }
    }

    tools.ensure_python()?;
    let mut failed = Vec::new();
    for dir in &python_dirs {
        let mut command = tools.python(root, &[]);
        command
            .args(["-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir"])
            .arg(dir)
            .arg("tests")
            .current_dir(dir);
        if !run_native(command, dir)? {
            failed.push(dir.clone());
        }
    }
    // The JavaScript template imports `./weir-kit.js`, as an author's copy
    // would: test it in a scratch folder with the kit beside it.
    let scratch = cargo::target_dir().join("weir-polyglot/js-template");
    copy_dir(&js_kit.join("template"), &scratch)?;
    fs::copy(js_kit.join("weir-kit.js"), scratch.join("weir-kit.js"))?;
    js_dirs.push(scratch);
    for dir in &js_dirs {
        let mut command = Command::new("node");
        command
            .arg("--import")
            .arg(js_kit.join("native.js"))
            .args(["--test", "test/"])
            .current_dir(dir);
        if !run_native(command, dir)? {
            failed.push(dir.clone());
        }
    }
    if !failed.is_empty() {
        let names: Vec<String> = failed.iter().map(|d| d.display().to_string()).collect();
        bail!("native module tests failed in: {}", names.join(", "));
    }
    Ok(())
}

fn run_native(mut command: Command, dir: &Path) -> Result<bool> {
    eprintln!("xtask: native tests in {}", dir.display());
    let status = command
        .status()
        .with_context(|| format!("running {command:?}"))?;
    Ok(status.success())
}

fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    fs::create_dir_all(to).with_context(|| format!("creating {}", to.display()))?;
    for entry in fs::read_dir(from).with_context(|| format!("reading {}", from.display()))? {
        let path = entry?.path();
        let target = to.join(path.file_name().unwrap_or_default());
        if path.is_dir() {
            copy_dir(&path, &target)?;
        } else {
            fs::copy(&path, &target).with_context(|| format!("copying {}", path.display()))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("xtask-polyglot-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn finds_python_and_javascript_folders_but_not_rust_ones() {
        let dir = scratch("find");
        for (folder, file) in [
            ("b-py", "app.py"),
            ("a-js", "app.js"),
            ("rust", "Cargo.toml"),
            ("empty", "x.txt"),
        ] {
            fs::create_dir_all(dir.join(folder)).unwrap();
            fs::write(dir.join(folder).join(file), "").unwrap();
        }
        fs::write(dir.join("rust/app.py"), "").unwrap();
        let found: Vec<(String, Language)> = find(&dir)
            .unwrap()
            .into_iter()
            .map(|m| (m.name, m.language))
            .collect();
        assert_eq!(
            found,
            [
                ("a-js".into(), Language::JavaScript),
                ("b-py".into(), Language::Python)
            ]
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn names_split_into_polyglot_and_rust() {
        let module = |name: &str| Module {
            name: name.into(),
            dir: PathBuf::from(name),
            language: Language::Python,
        };
        let modules = [module("redact-py"), module("other-py")];
        let (poly, rest) = split(
            &modules,
            &["text-clean".into(), "redact-py".into(), "redact-py".into()],
        );
        assert_eq!(poly, [module("redact-py")]);
        assert_eq!(rest, ["text-clean"]);
        let (poly, rest) = split(&modules, &[]);
        assert_eq!((poly.len(), rest.len()), (2, 0));
    }

    #[test]
    fn the_input_hash_follows_sources_but_not_tests() {
        let root = scratch("hash");
        fs::create_dir_all(root.join("kits/python/weir_kit")).unwrap();
        fs::write(root.join("kits/python/weir_kit/__init__.py"), "kit").unwrap();
        let dir = root.join("modules/m");
        fs::create_dir_all(dir.join("tests")).unwrap();
        fs::write(dir.join("app.py"), "v1").unwrap();
        fs::write(dir.join("tests/test_app.py"), "t1").unwrap();
        let wit_file = root.join("w.wasm");
        fs::write(&wit_file, "wit").unwrap();
        let module = Module {
            name: "m".into(),
            dir: dir.clone(),
            language: Language::Python,
        };
        let first = input_hash(&root, &module, &wit_file).unwrap();
        fs::write(dir.join("tests/test_app.py"), "t2").unwrap();
        assert_eq!(input_hash(&root, &module, &wit_file).unwrap(), first);
        fs::write(dir.join("app.py"), "v2").unwrap();
        let second = input_hash(&root, &module, &wit_file).unwrap();
        assert_ne!(second, first);
        fs::write(root.join("kits/python/weir_kit/__init__.py"), "kit2").unwrap();
        assert_ne!(input_hash(&root, &module, &wit_file).unwrap(), second);
        fs::remove_dir_all(&root).unwrap();
    }
}
