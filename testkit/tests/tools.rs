//! Tool and module lookup. One test: it changes process-wide environment
//! variables.

use weir_testkit::tools;

#[test]
fn missing_tools_and_modules_name_the_fix() {
    let empty = tempfile::tempdir().unwrap();
    // SAFETY: this test binary has a single test, so no thread reads the
    // environment concurrently.
    unsafe {
        std::env::set_var("WEIR_TOOLS_DIR", empty.path());
        std::env::set_var("WEIR_MODULES_DIR", empty.path());
    }
    let tansu = empty.path().join("tansu");
    assert_eq!(
        tools::tansu_bin().unwrap_err().to_string(),
        format!(
            "tansu not found at {}; run `cargo xtask tools`",
            tansu.display()
        )
    );
    assert_eq!(
        tools::osmem_bin().unwrap_err().to_string(),
        format!(
            "osmem-server not found at {}; run `cargo xtask tools`",
            empty.path().join("osmem-server").display()
        )
    );
    assert_eq!(
        tools::module_wasm("redact").unwrap_err().to_string(),
        format!(
            "module redact not built at {}; run `cargo xtask modules`",
            empty.path().join("redact.wasm").display()
        )
    );
    // The rig's start functions fail with the same message, not a skip.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let error = runtime.block_on(weir_testkit::Kafka::start()).unwrap_err();
    assert!(
        error.to_string().contains("run `cargo xtask tools`"),
        "{error:#}"
    );

    // A tool that dies at start: the error quotes its output.
    let script = "#!/bin/sh\necho \"fake $0: cannot start\" >&2\nexit 3\n";
    for tool in ["tansu", "osmem-server"] {
        let path = empty.path().join(tool);
        std::fs::write(&path, script).unwrap();
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
    }
    let error = runtime.block_on(weir_testkit::Kafka::start()).unwrap_err();
    let message = format!("{error:#}");
    assert!(message.contains("tansu exited"), "{message}");
    assert!(message.contains("tansu: cannot start"), "{message}");
    let error = runtime.block_on(weir_testkit::Osmem::start()).unwrap_err();
    let message = format!("{error:#}");
    assert!(message.contains("osmem-server: cannot start"), "{message}");

    std::fs::write(empty.path().join("redact.wasm"), b"\0asm").unwrap();
    assert_eq!(tools::tansu_bin().unwrap(), tansu);
    assert_eq!(
        tools::module_wasm("redact").unwrap(),
        empty.path().join("redact.wasm")
    );

    unsafe {
        std::env::remove_var("WEIR_TOOLS_DIR");
        std::env::remove_var("WEIR_MODULES_DIR");
    }
    assert_eq!(
        tools::tansu_bin()
            .map_err(|e| e.to_string())
            .err()
            .unwrap_or_default()
            .is_empty(),
        tools::tools_dir().join("tansu").is_file()
    );
    assert_eq!(
        tools::tools_dir(),
        tools::workspace_root().join(".tools/bin")
    );
    assert_eq!(
        tools::modules_dir(),
        tools::workspace_root().join("dist/modules")
    );
}
