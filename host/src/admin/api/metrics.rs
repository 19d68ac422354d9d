//! A tenant's slice of `/metrics`: the series labelled `tenant="<id>"`.

/// Keeps from an OpenMetrics/Prometheus text exposition only the samples
/// whose `tenant` label equals `tenant`, with the `# HELP`/`# TYPE`/
/// `# UNIT` lines of the families that keep at least one, and `# EOF`.
pub fn tenant_series(text: &str, tenant: &str) -> String {
    let mut out = String::new();
    let mut family: Option<&str> = None;
    let mut header: Vec<&str> = Vec::new();
    let mut header_written = false;
    for line in text.lines() {
        if line == "# EOF" {
            break;
        }
        if let Some(meta) = line.strip_prefix("# ") {
            // `# HELP name …`, `# TYPE name …`, `# UNIT name …`
            let name = meta.split(' ').nth(1).unwrap_or("");
            if family != Some(name) {
                family = Some(name);
                header.clear();
                header_written = false;
            }
            header.push(line);
            continue;
        }
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if label(line, "tenant").as_deref() == Some(tenant) {
            if !header_written {
                for h in &header {
                    out.push_str(h);
                    out.push('\n');
                }
                header_written = true;
            }
            out.push_str(line);
            out.push('\n');
        }
    }
    out.push_str("# EOF\n");
    out
}

/// The value of label `key` in a sample line `name{k="v",…} value …`
/// (escapes `\\`, `\"`, `\n` decoded); `None` if the sample has no such
/// label or the label set is malformed.
fn label(line: &str, key: &str) -> Option<String> {
    let open = line.find(['{', ' '])?;
    if line.as_bytes()[open] != b'{' {
        return None;
    }
    let mut rest = &line[open + 1..];
    loop {
        rest = rest.trim_start_matches([',', ' ']);
        if rest.starts_with('}') {
            return None;
        }
        let (k, after) = rest.split_once("=\"")?;
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            let (i, c) = chars.next()?;
            match c {
                '\\' => match chars.next()?.1 {
                    'n' => value.push('\n'),
                    other => value.push(other),
                },
                '"' => break i,
                c => value.push(c),
            }
        };
        if k.trim() == key {
            return Some(value);
        }
        rest = &after[end + 1..];
    }
}
