//! Unit tests of the shared helpers, so the other checks can trust them.

mod common;

use common::dockerfile::Dockerfile;
use common::glob_match;
use common::http::base64;
use common::time::parse_rfc3339;

#[test]
fn glob_matches_like_a_shell() {
    assert!(glob_match("weir-tweets*", "weir-tweets"));
    assert!(glob_match("weir-tweets*", "weir-tweets-2026.11"));
    assert!(!glob_match("weir-tweets*", "weir-news"));
    assert!(glob_match("modules/*", "modules/text-clean"));
    assert!(glob_match("a*b*c", "aXXbYYc"));
    assert!(!glob_match("a*b*c", "aXXcYYb"));
}

#[test]
fn parses_rfc3339() {
    assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
    assert_eq!(parse_rfc3339("2026-11-26T12:00:00Z"), Some(1_795_694_400));
    assert_eq!(
        parse_rfc3339("2026-11-26T13:00:00+01:00"),
        Some(1_795_694_400)
    );
    assert_eq!(
        parse_rfc3339("2026-11-26T12:00:00.250Z"),
        Some(1_795_694_400)
    );
    assert_eq!(parse_rfc3339("2024-02-29T00:00:00Z"), Some(1_709_164_800));
    for bad in [
        "2026-11-26",
        "2026-11-26 12:00:00Z",
        "2026-13-01T00:00:00Z",
        "2025-02-29T00:00:00Z",
        "2026-11-26T12:00:00",
        "2026-11-26T12:00:00+0100",
    ] {
        assert_eq!(parse_rfc3339(bad), None, "{bad}");
    }
}

#[test]
fn base64_matches_rfc4648_vectors() {
    for (plain, encoded) in [
        ("", ""),
        ("f", "Zg=="),
        ("fo", "Zm8="),
        ("foo", "Zm9v"),
        ("foobar", "Zm9vYmFy"),
    ] {
        assert_eq!(base64(plain.as_bytes()), encoded);
    }
}

#[test]
fn dockerfile_reader_handles_stages_continuations_and_copy_forms() {
    let d = Dockerfile::parse(
        "test/Dockerfile",
        r#"# syntax=docker/dockerfile:1
ARG V=1.0
FROM rust:${V} AS build
ARG MODS="a b"
COPY Cargo.toml Cargo.lock ./
RUN echo one \
 # a comment inside a continuation
 && echo two
FROM debian:slim
COPY --from=build --chown=1:1 /out/x /usr/local/bin/x
COPY ["conf dir/a.json", "/etc/a.json"]
CMD ["run"]
"#,
    );
    assert_eq!(d.global_args.get("V").map(String::as_str), Some("1.0"));
    assert_eq!(d.stages.len(), 2);
    let build = d.stage("build").unwrap();
    assert_eq!(build.arg("MODS").as_deref(), Some("a b"));
    assert_eq!(build.copies()[0].sources, ["Cargo.toml", "Cargo.lock"]);
    assert_eq!(build.copies()[0].dest, "./");
    assert!(
        build.run_text().contains("echo one && echo two"),
        "{}",
        build.run_text()
    );
    let last = d.final_stage();
    let copies = last.copies();
    assert_eq!(copies[0].from.as_deref(), Some("build"));
    assert_eq!(copies[0].sources, ["/out/x"]);
    assert_eq!(copies[1].sources, ["conf dir/a.json"]);
    assert_eq!(copies[1].dest, "/etc/a.json");
    assert_eq!(last.instruction("CMD").unwrap().args, r#"["run"]"#);
}
