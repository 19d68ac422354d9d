//! `weir process` over stdin: a line that is not valid UTF-8 fails alone,
//! reported with its line number, and the lines around it are processed.
//! The run itself succeeds (exit 0): per-line failures are reported on
//! stderr and counted in the closing summary, as for any other bad record.
//!
//! Needs `cargo xtask modules` (the `passthrough` module).

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::Value;

#[test]
fn a_line_that_is_not_utf8_fails_alone() {
    let module = weir_testkit::module_wasm("passthrough").expect("cargo xtask modules");
    let mut input = Vec::new();
    input.extend_from_slice(b"{\"n\":1,\"text\":\"first\"}\n");
    input.extend_from_slice(b"{\"n\":2,\"text\":\"caf\xe9 latin-1\"}\n"); // line 2: not UTF-8
    input.extend_from_slice(b"\n"); // line 3: blank, ignored
    input.extend_from_slice(b"not json\r\n"); // line 4: UTF-8, not JSON
    input.extend_from_slice(b"{\"n\":5,\"text\":\"fifth\"}"); // line 5, no final newline

    let mut child = Command::new(env!("CARGO_BIN_EXE_weir"))
        .arg("process")
        .arg("-m")
        .arg(&module)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start weir process");
    child.stdin.take().unwrap().write_all(&input).unwrap();
    let out = child.wait_with_output().expect("weir process runs");
    let stderr = String::from_utf8_lossy(&out.stderr);

    assert_eq!(out.status.code(), Some(0), "stderr:\n{stderr}");
    let docs: Vec<Value> = String::from_utf8(out.stdout)
        .expect("stdout is UTF-8")
        .lines()
        .map(|l| serde_json::from_str(l).expect("each output line is a JSON document"))
        .collect();
    let numbers: Vec<i64> = docs.iter().map(|d| d["n"].as_i64().unwrap()).collect();
    assert_eq!(numbers, [1, 5], "stderr:\n{stderr}");

    let failures: Vec<&str> = stderr.lines().filter(|l| l.starts_with("line ")).collect();
    assert_eq!(failures.len(), 2, "stderr:\n{stderr}");
    assert!(
        failures[0].starts_with("line 2: not valid UTF-8 (invalid byte at column 19)"),
        "stderr:\n{stderr}"
    );
    assert!(
        failures[1].starts_with("line 4: record 2: passthrough: invalid JSON"),
        "stderr:\n{stderr}"
    );
    assert!(
        stderr.contains("4 records in, 2 documents out, 2 failed"),
        "stderr:\n{stderr}"
    );
}
