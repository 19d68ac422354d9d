//! Tidy tests that keep `host/src` laid out the way `docs/architecture.md`
//! draws it:
//!
//! - every top-level module sits on a layer and imports only from layers
//!   below it (never from above, never from a neighbour on its own layer);
//! - inside every folder, its files and subfolders import each other
//!   without a cycle (a folder's `mod.rs` is its interface and may be used
//!   by all of its children);
//! - no two public types of the host share a name.
//!
//! The checker reads the sources as text: every `crate::…`, `super::…` and
//! `self::…` path (and `weir::…` in the binary's own files) outside
//! comments and test modules is an import, resolved to the file it names,
//! through the `pub use` re-exports of a folder's `mod.rs`. A failure names
//! the file and line of each offending import.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Bottom first. A module may import from any layer before its own.
const LAYERS: &[&[&str]] = &[
    &["event", "telemetry", "net"],
    &["config"],
    &["runtime"],
    &["pipeline"],
    &["sinks", "source"],
    &["modules"],
    &["fleet"],
    &["admin"],
    &["app"],
    // The binary: `main.rs` and its `cli/` (they see the library as `weir::`).
    &["cli", "main"],
];

#[test]
fn host_src_imports_only_downward_and_without_cycles() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let report = check(&src, LAYERS);
    assert!(report.is_empty(), "host/src breaks its layering:\n{report}");
}

#[test]
fn no_two_public_types_of_the_host_share_a_name() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let report = duplicate_type_names(&src);
    assert!(report.is_empty(), "public type names used twice:\n{report}");
}

/// The checker itself, on a tree made to break every rule once: it must
/// name each break, with its file and line.
#[test]
fn the_checker_finds_upward_imports_neighbours_and_cycles() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let write = |rel: &str, text: &str| {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    };
    write(
        "lib.rs",
        "pub mod low;\npub mod mid;\npub mod high;\npub mod side;\n",
    );
    write("low/mod.rs", "mod a;\nmod b;\npub use a::Alpha;\n");
    // a -> b -> a: a cycle inside low/.
    write("low/a.rs", "use super::b::Beta;\npub struct Alpha;\n");
    write(
        "low/b.rs",
        "pub struct Beta;\nfn f() { let _ = crate::low::Alpha; }\n",
    );
    // mid reaches up into high (through a re-export) and sideways into side.
    write(
        "mid.rs",
        "// crate::high::Nope in a comment is no import\nuse crate::low::Alpha;\n\nuse crate::high::Top;\nfn g() { crate::side::x(); }\nuse crate::{\n    low::Alpha as A,\n    high::{self as h},\n};\n",
    );
    write(
        "high.rs",
        "pub struct Top;\nuse crate::{\n    low::Alpha,\n    mid::{self},\n};\n",
    );
    write(
        "side.rs",
        "pub fn x() {}\n#[cfg(test)]\nmod tests {\n    use crate::high::Top;\n}\n",
    );
    let layers: &[&[&str]] = &[&["low"], &["mid", "side"], &["high"]];
    let report = check(root, layers);
    assert!(
        report.contains("mid.rs:4: `crate::high` is on layer 3, above mid (layer 2)"),
        "{report}"
    );
    assert!(
        report.contains("mid.rs:5: `crate::side` is a neighbour of mid on layer 2"),
        "{report}"
    );
    assert!(
        report.contains("mid.rs:6: `crate::high` is on layer 3, above mid (layer 2)"),
        "a multi-line group is read leaf by leaf: {report}"
    );
    assert!(
        report.contains("cycle in low/: a.rs -> b.rs -> a.rs"),
        "{report}"
    );
    assert!(report.contains("low/a.rs:1"), "{report}");
    assert!(report.contains("low/b.rs:2"), "{report}");
    // Comments and test modules are not imports; downward imports are fine.
    assert!(!report.contains("mid.rs:1"), "{report}");
    assert!(!report.contains("mid.rs:2"), "{report}");
    assert!(!report.contains("side.rs"), "{report}");
    assert!(!report.contains("high.rs:2:"), "{report}");
    // mid and high import each other: a cycle between layers shows too.
    assert!(
        report.contains("cycle in the crate root: high.rs -> mid.rs -> high.rs"),
        "{report}"
    );
    assert_eq!(report.lines().count(), 5, "{report}");

    write("low/c.rs", "pub struct Alpha;\n");
    let dupes = duplicate_type_names(root);
    assert!(dupes.contains("`Alpha`: low/a.rs:2, low/c.rs:1"), "{dupes}");
}

/// One source file: its module path and its lines (comments and test
/// modules blanked out, line numbers kept).
struct Source {
    rel: PathBuf,
    module: Vec<String>,
    lines: Vec<String>,
}

/// Imports between two children of one folder: (from, to) -> the
/// `file:line` of each.
type ChildEdges = BTreeMap<(String, String), Vec<String>>;

/// An import found in a file.
struct Import {
    line: usize,
    /// The path it names, made absolute (module segments, then items).
    target: Vec<String>,
}

fn check(src: &Path, layers: &[&[&str]]) -> String {
    let sources = read_tree(src);
    let modules: BTreeSet<Vec<String>> = sources.iter().map(|s| s.module.clone()).collect();
    let reexports = reexports(&sources);
    let rank: HashMap<&str, usize> = layers
        .iter()
        .enumerate()
        .flat_map(|(i, names)| names.iter().map(move |n| (*n, i + 1)))
        .collect();
    let mut report = String::new();
    // Edges between the children of each folder: folder -> (from, to) -> where.
    let mut edges: BTreeMap<Vec<String>, ChildEdges> = BTreeMap::new();
    for s in &sources {
        let Some(top) = s.module.first() else {
            continue;
        };
        for imp in imports(s) {
            let target = resolve(&imp.target, &modules, &reexports);
            let Some(target_top) = target.first() else {
                continue;
            };
            let place = format!("{}:{}", s.rel.display(), imp.line);
            if target_top != top {
                let shown = format!("crate::{target_top}");
                match (rank.get(top.as_str()), rank.get(target_top.as_str())) {
                    (Some(&from), Some(&to)) if to > from => writeln!(
                        report,
                        "{place}: `{shown}` is on layer {to}, above {top} (layer {from})"
                    )
                    .unwrap(),
                    (Some(&from), Some(&to)) if to == from => writeln!(
                        report,
                        "{place}: `{shown}` is a neighbour of {top} on layer {from}"
                    )
                    .unwrap(),
                    (None, _) => writeln!(report, "{place}: `{top}` is on no layer").unwrap(),
                    (_, None) => writeln!(report, "{place}: `{shown}` is on no layer").unwrap(),
                    _ => {}
                }
            }
            // The folder both sit in, and the child of it each belongs to.
            let common = s
                .module
                .iter()
                .zip(&target)
                .take_while(|(a, b)| a == b)
                .count();
            let (Some(from), Some(to)) = (s.module.get(common), target.get(common)) else {
                continue; // one contains the other: a parent and its child
            };
            edges
                .entry(s.module[..common].to_vec())
                .or_default()
                .entry((from.clone(), to.clone()))
                .or_default()
                .push(place);
        }
    }
    for (folder, edges) in &edges {
        for cycle in cycles(edges) {
            let shown: Vec<String> = cycle
                .iter()
                .map(|c| child_name(&sources, folder, c))
                .collect();
            let folder_name = if folder.is_empty() {
                "the crate root".to_string()
            } else {
                format!("{}/", folder.join("/"))
            };
            let places: BTreeSet<&str> = cycle
                .windows(2)
                .flat_map(|w| {
                    edges[&(w[0].clone(), w[1].clone())]
                        .iter()
                        .map(String::as_str)
                })
                .collect();
            let places: Vec<&str> = places.into_iter().collect();
            writeln!(
                report,
                "cycle in {folder_name}: {} (imports at {})",
                shown.join(" -> "),
                places.join(", ")
            )
            .unwrap();
        }
    }
    report
}

/// `name.rs` or `name/` for a child module of `folder`.
fn child_name(sources: &[Source], folder: &[String], child: &str) -> String {
    let mut module = folder.to_vec();
    module.push(child.to_string());
    match sources.iter().find(|s| s.module == module) {
        Some(s) if s.rel.ends_with("mod.rs") => format!("{child}/"),
        _ => format!("{child}.rs"),
    }
}

/// Every elementary cycle through the smallest node of each strongly
/// connected part is enough to name the problem; this returns one cycle
/// per part that has any, starting and ending at its smallest node.
fn cycles(edges: &ChildEdges) -> Vec<Vec<String>> {
    let mut next: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for (from, to) in edges.keys() {
        next.entry(from).or_default().insert(to);
    }
    let mut found: Vec<Vec<String>> = Vec::new();
    let mut covered: BTreeSet<String> = BTreeSet::new();
    for &start in next.keys() {
        if covered.contains(start) {
            continue;
        }
        // Breadth-first search for the shortest way back to `start`.
        let mut parent: BTreeMap<&str, &str> = BTreeMap::new();
        let mut queue = std::collections::VecDeque::from([start]);
        let mut back = None;
        while let Some(n) = queue.pop_front() {
            for &m in next.get(n).into_iter().flatten() {
                if m == start {
                    back = Some(n);
                    break;
                }
                if !parent.contains_key(m) {
                    parent.insert(m, n);
                    queue.push_back(m);
                }
            }
            if back.is_some() {
                break;
            }
        }
        let Some(mut n) = back else { continue };
        let mut path = vec![start.to_string()];
        let mut rev = vec![n];
        while n != start {
            n = parent[n];
            if n != start {
                rev.push(n);
            }
        }
        path.extend(rev.iter().rev().map(|s| s.to_string()));
        path.push(start.to_string());
        covered.extend(path.iter().cloned());
        found.push(path);
    }
    found
}

/// Names a folder's `mod.rs` re-exports, by the folder's module path:
/// name -> the child module it comes from.
fn reexports(sources: &[Source]) -> HashMap<Vec<String>, HashMap<String, String>> {
    let mut out: HashMap<Vec<String>, HashMap<String, String>> = HashMap::new();
    for s in sources {
        let text = s.lines.join("\n");
        let mut rest = text.as_str();
        while let Some(i) = rest.find("pub use ") {
            rest = &rest[i + "pub use ".len()..];
            let end = rest.find(';').unwrap_or(rest.len());
            let stmt = &rest[..end];
            rest = &rest[end..];
            let stmt = stmt.trim().trim_start_matches("self::");
            let Some((child, names)) = stmt.split_once("::") else {
                continue;
            };
            if child == "crate" || child == "super" || !child.chars().all(is_ident) {
                continue;
            }
            let names = names.trim().trim_start_matches('{').trim_end_matches('}');
            for name in names.split(',') {
                let name = name.trim();
                let name = name.rsplit(" as ").next().unwrap_or(name).trim();
                let name = name.rsplit("::").next().unwrap_or(name).trim();
                if !name.is_empty() && name.chars().all(is_ident) {
                    out.entry(s.module.clone())
                        .or_default()
                        .insert(name.to_string(), child.to_string());
                }
            }
        }
    }
    out
}

/// The module a path names: its longest prefix that is a module, plus the
/// child a re-exported name comes from.
fn resolve(
    path: &[String],
    modules: &BTreeSet<Vec<String>>,
    reexports: &HashMap<Vec<String>, HashMap<String, String>>,
) -> Vec<String> {
    let mut n = path.len();
    while n > 0 && !modules.contains(&path[..n].to_vec()) {
        n -= 1;
    }
    let mut module = path[..n].to_vec();
    if let Some(name) = path.get(n)
        && let Some(child) = reexports.get(&module).and_then(|r| r.get(name))
    {
        module.push(child.clone());
    }
    module
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// The imports of one file, made absolute: every leaf of every path that
/// starts with `crate::`, `super::`, `self::` (or `weir::` in the binary).
fn imports(s: &Source) -> Vec<Import> {
    let in_binary = matches!(s.module.first().map(String::as_str), Some("main" | "cli"));
    let text = s.lines.join("\n");
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut at = 0;
    while at < text.len() {
        let Some((k, prefix)) = ["crate::", "super::", "self::", "weir::"]
            .iter()
            .filter_map(|p| text[at..].find(p).map(|k| (k, *p)))
            .min()
        else {
            break;
        };
        let begin = at + k;
        at = begin + prefix.len();
        // Only a path's first segment counts (`a::self::` is no new path).
        if begin > 0 && (is_ident(bytes[begin - 1] as char) || bytes[begin - 1] == b':') {
            continue;
        }
        if prefix == "weir::" && !in_binary {
            continue;
        }
        let mut leaves = Vec::new();
        at = at.max(parse_tree(&text, at, Vec::new(), &mut leaves));
        let line = text[..begin].matches('\n').count() + 1;
        for mut segments in leaves {
            if segments.last().is_some_and(|s| s == "self") {
                segments.pop();
            }
            let mut target = match prefix {
                "crate::" | "weir::" => Vec::new(),
                "self::" => s.module.clone(),
                _ => {
                    let mut m = s.module.clone();
                    m.pop();
                    while segments.first().is_some_and(|s| s == "super") {
                        segments.remove(0);
                        m.pop();
                    }
                    m
                }
            };
            target.extend(segments);
            out.push(Import { line, target });
        }
    }
    out
}

/// Parses `a::b::{c, d::{e, f as g}}` from `pos`, pushing each leaf path
/// (after `prefix`) to `out`; returns where the path ends.
fn parse_tree(
    text: &str,
    mut pos: usize,
    mut segments: Vec<String>,
    out: &mut Vec<Vec<String>>,
) -> usize {
    let skip_space = |mut p: usize| {
        while text.as_bytes().get(p).is_some_and(u8::is_ascii_whitespace) {
            p += 1;
        }
        p
    };
    loop {
        let ident: String = text[pos..].chars().take_while(|c| is_ident(*c)).collect();
        pos += ident.len();
        if !ident.is_empty() {
            segments.push(ident);
        }
        // `crate::{…}` opens a group right after the prefix.
        let group = text[pos..].starts_with('{');
        if !group && !text[pos..].starts_with("::") {
            out.push(segments);
            return pos;
        }
        if !group {
            pos += 2;
            if !text[pos..].starts_with('{') {
                continue;
            }
        }
        pos += 1;
        loop {
            pos = skip_space(pos);
            if pos >= text.len() || text[pos..].starts_with('}') {
                return pos + 1;
            }
            pos = skip_space(parse_tree(text, pos, segments.clone(), out));
            if text[pos..].starts_with("as ") {
                pos = skip_space(pos + 3);
                pos += text[pos..].chars().take_while(|c| is_ident(*c)).count();
                pos = skip_space(pos);
            }
            if text[pos..].starts_with(',') {
                pos += 1;
            } else if !text[pos..].starts_with('}') {
                return pos;
            }
        }
    }
}

fn read_tree(src: &Path) -> Vec<Source> {
    let mut files = Vec::new();
    walk(src, &mut files);
    files.sort();
    files
        .into_iter()
        .filter_map(|path| {
            let rel = path.strip_prefix(src).unwrap().to_path_buf();
            // Test-only files: `tests.rs`, anything under a `tests/` folder.
            if rel.components().any(|c| c.as_os_str() == "tests")
                || rel.file_name().is_some_and(|n| n == "tests.rs")
            {
                return None;
            }
            let text = std::fs::read_to_string(&path).ok()?;
            let mut module: Vec<String> = rel
                .with_extension("")
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            if matches!(module.last().map(String::as_str), Some("mod" | "lib")) {
                module.pop();
            }
            Some(Source {
                rel,
                module,
                lines: code_lines(&text),
            })
        })
        .collect()
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let p = entry.path();
        if p.is_dir() {
            walk(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

/// The file's lines with `//` comments removed and everything from a
/// `#[cfg(test)]` module on blanked (test code may import what it likes).
fn code_lines(text: &str) -> Vec<String> {
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    for i in 0..lines.len() {
        if lines[i].trim() == "#[cfg(test)]"
            && lines
                .get(i + 1)
                .is_some_and(|l| l.trim_start().starts_with("mod "))
        {
            for l in &mut lines[i..] {
                l.clear();
            }
            break;
        }
    }
    for l in &mut lines {
        if let Some(k) = comment_start(l) {
            l.truncate(k);
        }
    }
    lines
}

/// Where a `//` comment starts, outside string literals.
fn comment_start(line: &str) -> Option<usize> {
    let bytes = line.as_bytes();
    let mut in_str = false;
    let mut i = 0;
    while i + 1 < bytes.len() {
        match bytes[i] {
            b'\\' if in_str => i += 1,
            b'"' => in_str = !in_str,
            b'/' if !in_str && bytes[i + 1] == b'/' => return Some(i),
            _ => {}
        }
        i += 1;
    }
    None
}

/// `pub struct|enum|trait|type Name` declared more than once.
fn duplicate_type_names(src: &Path) -> String {
    let mut seen: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for s in read_tree(src) {
        for (i, line) in s.lines.iter().enumerate() {
            let t = line.trim_start();
            let Some(rest) = t.strip_prefix("pub ") else {
                continue;
            };
            let rest = rest.trim_start();
            for kind in ["struct ", "enum ", "trait ", "type "] {
                if let Some(name) = rest.strip_prefix(kind) {
                    let name: String = name.chars().take_while(|c| is_ident(*c)).collect();
                    if !name.is_empty() {
                        seen.entry(name).or_default().push(format!(
                            "{}:{}",
                            s.rel.display(),
                            i + 1
                        ));
                    }
                }
            }
        }
    }
    let mut report = String::new();
    for (name, places) in seen.iter().filter(|(_, p)| p.len() > 1) {
        writeln!(report, "`{name}`: {}", places.join(", ")).unwrap();
    }
    report
}
