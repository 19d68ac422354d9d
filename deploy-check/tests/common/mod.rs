//! Helpers shared by the deploy-check tests: repository files, index
//! template mappings, a Dockerfile reader, a minimal HTTP client and an
//! `osmem-server` process.
#![allow(dead_code)]

pub mod dockerfile;
pub mod http;
pub mod mapping;
pub mod osmem;
pub mod time;

use std::path::{Path, PathBuf};
use std::process::Command;

/// The repository root (this crate lives in `<root>/deploy-check`).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("deploy-check lives inside the repository")
        .to_path_buf()
}

/// `<root>/<rel>`.
pub fn repo_path(rel: &str) -> PathBuf {
    repo_root().join(rel)
}

/// Reads a repository file, failing with its path.
pub fn read(rel: &str) -> String {
    let path = repo_path(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// Reads and parses a repository JSON file, failing with its path.
pub fn read_json(rel: &str) -> serde_json::Value {
    serde_json::from_str(&read(rel)).unwrap_or_else(|e| panic!("{rel}: invalid JSON: {e}"))
}

/// Parses every non-empty line of a JSON-lines file; failures name the line.
pub fn read_jsonl(rel: &str) -> Vec<serde_json::Value> {
    read(rel)
        .lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(i, line)| {
            serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("{rel}:{}: invalid JSON: {e}", i + 1))
        })
        .collect()
}

/// Collects problems so a test can report all of them at once.
#[derive(Default)]
pub struct Problems(Vec<String>);

impl Problems {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn add(&mut self, problem: impl Into<String>) {
        self.0.push(problem.into());
    }

    pub fn check(&mut self, ok: bool, problem: impl FnOnce() -> String) {
        if !ok {
            self.0.push(problem());
        }
    }

    /// Fails the test listing every problem, under `what`.
    pub fn assert_none(self, what: &str) {
        if !self.0.is_empty() {
            panic!(
                "{what}: {} problem(s):\n  - {}",
                self.0.len(),
                self.0.join("\n  - ")
            );
        }
    }
}

/// Whether `program` can be run (it answers `args` with exit status 0).
pub fn runs(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// Fails the calling test when `program args` does not run, naming the
/// command that installs it (the suite never passes by skipping a check).
pub fn require(program: &str, args: &[&str], install: &str) {
    assert!(
        runs(program, args),
        "`{program}` is needed by this test and does not run here; install it: {install}"
    );
}

/// Shell-style glob with `*` only (index patterns, workspace members).
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !text.starts_with(first) || !text[first.len()..].ends_with(last) {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for part in &parts[1..parts.len() - 1] {
        match rest.find(part) {
            Some(i) => rest = &rest[i + part.len()..],
            None => return false,
        }
    }
    true
}
