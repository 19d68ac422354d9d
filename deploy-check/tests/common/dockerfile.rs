//! Just enough of a Dockerfile reader for cross-checks: stages, `ARG`
//! defaults, `COPY` sources and destinations, `RUN` and `CMD` text.

use std::collections::BTreeMap;

use super::read;

#[derive(Debug, Clone)]
pub struct Instruction {
    /// Upper-cased keyword, e.g. `COPY`.
    pub keyword: String,
    /// Everything after the keyword, continuation lines joined.
    pub args: String,
    /// 1-based line of the keyword.
    pub line: usize,
}

#[derive(Debug, Clone)]
pub struct Stage {
    /// Image after `FROM` (with `${ARG}` left as written).
    pub base: String,
    /// `AS name`, if any.
    pub name: Option<String>,
    pub instructions: Vec<Instruction>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Copy {
    /// `--from=STAGE`, if any.
    pub from: Option<String>,
    pub sources: Vec<String>,
    pub dest: String,
    pub line: usize,
}

#[derive(Debug, Clone)]
pub struct Dockerfile {
    /// Repository-relative path, for messages.
    pub file: String,
    /// `ARG`s before the first `FROM`, with their defaults.
    pub global_args: BTreeMap<String, String>,
    pub stages: Vec<Stage>,
}

impl Dockerfile {
    pub fn load(rel: &str) -> Dockerfile {
        Dockerfile::parse(rel, &read(rel))
    }

    pub fn parse(file: &str, text: &str) -> Dockerfile {
        let mut global_args = BTreeMap::new();
        let mut stages: Vec<Stage> = Vec::new();
        for ins in instructions(text) {
            match ins.keyword.as_str() {
                "FROM" => {
                    let words: Vec<&str> = ins
                        .args
                        .split_whitespace()
                        .filter(|w| !w.starts_with("--"))
                        .collect();
                    let name = match words.as_slice() {
                        [_, as_kw, name] if as_kw.eq_ignore_ascii_case("as") => {
                            Some(name.to_string())
                        }
                        _ => None,
                    };
                    stages.push(Stage {
                        base: words.first().unwrap_or(&"").to_string(),
                        name,
                        instructions: Vec::new(),
                    });
                }
                _ if stages.is_empty() => {
                    if ins.keyword == "ARG" {
                        let (k, v) = parse_arg(&ins.args);
                        global_args.insert(k, v);
                    }
                }
                _ => stages.last_mut().unwrap().instructions.push(ins),
            }
        }
        Dockerfile {
            file: file.to_owned(),
            global_args,
            stages,
        }
    }

    /// The last stage (what the image is).
    pub fn final_stage(&self) -> &Stage {
        self.stages
            .last()
            .unwrap_or_else(|| panic!("{}: no FROM", self.file))
    }

    pub fn stage(&self, name: &str) -> Option<&Stage> {
        self.stages.iter().find(|s| s.name.as_deref() == Some(name))
    }
}

impl Stage {
    pub fn copies(&self) -> Vec<Copy> {
        self.instructions
            .iter()
            .filter(|i| i.keyword == "COPY" || i.keyword == "ADD")
            .map(|i| parse_copy(&i.args, i.line))
            .collect()
    }

    /// `ARG NAME=default` of this stage.
    pub fn arg(&self, name: &str) -> Option<String> {
        self.instructions
            .iter()
            .filter(|i| i.keyword == "ARG")
            .map(|i| parse_arg(&i.args))
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    }

    /// All `RUN` bodies joined (for "does it run X" checks).
    pub fn run_text(&self) -> String {
        self.instructions
            .iter()
            .filter(|i| i.keyword == "RUN")
            .map(|i| i.args.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    }

    pub fn instruction(&self, keyword: &str) -> Option<&Instruction> {
        self.instructions
            .iter()
            .rev()
            .find(|i| i.keyword == keyword)
    }
}

fn parse_arg(args: &str) -> (String, String) {
    match args.trim().split_once('=') {
        Some((k, v)) => (k.trim().to_owned(), v.trim().trim_matches('"').to_owned()),
        None => (args.trim().to_owned(), String::new()),
    }
}

fn parse_copy(args: &str, line: usize) -> Copy {
    let mut from = None;
    let mut words: Vec<String> = Vec::new();
    let trimmed = args.trim();
    let (flags, rest) = split_flags(trimmed);
    for flag in flags {
        if let Some(stage) = flag.strip_prefix("--from=") {
            from = Some(stage.to_owned());
        }
    }
    if rest.starts_with('[') {
        if let Ok(list) = serde_json::from_str::<Vec<String>>(rest) {
            words = list;
        }
    } else {
        words = rest.split_whitespace().map(str::to_owned).collect();
    }
    let dest = words.pop().unwrap_or_default();
    Copy {
        from,
        sources: words,
        dest,
        line,
    }
}

fn split_flags(args: &str) -> (Vec<&str>, &str) {
    let mut flags = Vec::new();
    let mut rest = args;
    while rest.starts_with("--") {
        let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        flags.push(&rest[..end]);
        rest = rest[end..].trim_start();
    }
    (flags, rest)
}

/// Splits a Dockerfile into instructions: comments dropped (also inside
/// continuations), `\` continuations joined.
fn instructions(text: &str) -> Vec<Instruction> {
    let mut out = Vec::new();
    let mut current: Option<(String, usize)> = None;
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.starts_with('#') || (line.is_empty() && current.is_none()) {
            continue;
        }
        let (content, continues) = match line.strip_suffix('\\') {
            Some(c) => (c.trim_end(), true),
            None => (line, false),
        };
        match current.as_mut() {
            Some((acc, _)) => {
                acc.push(' ');
                acc.push_str(content);
            }
            None => current = Some((content.to_owned(), i + 1)),
        }
        if !continues {
            let (full, start) = current.take().unwrap();
            let (keyword, args) = full.split_once(char::is_whitespace).unwrap_or((&full, ""));
            out.push(Instruction {
                keyword: keyword.to_ascii_uppercase(),
                args: args.trim().to_owned(),
                line: start,
            });
        }
    }
    out
}
