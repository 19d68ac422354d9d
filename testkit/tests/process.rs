//! Child-process guards.

use std::os::unix::process::ExitStatusExt;
use std::process::Command;
use std::time::Duration;

use weir_testkit::Process;

fn sh(script: &str) -> Command {
    let mut command = Command::new("sh");
    command.arg("-c").arg(script);
    command
}

fn alive(pid: u32) -> bool {
    // Zombie-free check: /proc/PID exists only until reaped; a killed and
    // reaped child is gone.
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

#[tokio::test]
async fn captures_output_and_exits_on_sigterm() -> anyhow::Result<()> {
    let process = Process::spawn("talker", sh("echo hello; echo oops >&2; exec sleep 30"))?;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !process.log_tail().contains("oops") {
        assert!(
            std::time::Instant::now() < deadline,
            "no output: {}",
            process.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(process.log_tail().contains("hello"));
    assert!(process.is_running());
    assert!(
        process
            .wait_exit(Duration::from_millis(100))
            .await
            .is_none()
    );

    process.sigterm()?;
    let status = process
        .wait_exit(Duration::from_secs(10))
        .await
        .expect("exited");
    assert_eq!(status.signal(), Some(libc_sigterm()));
    let error = process.ensure_running().expect_err("exited");
    assert!(format!("{error:#}").contains("hello"), "{error:#}");
    Ok(())
}

#[tokio::test]
async fn kill9_and_drop_kill_the_child() -> anyhow::Result<()> {
    let process = Process::spawn("sleeper", sh("exec sleep 30"))?;
    let status = process.kill9()?;
    assert_eq!(status.signal(), Some(9));
    assert!(!alive(process.pid()));

    let process = Process::spawn("sleeper", sh("exec sleep 30"))?;
    let pid = process.pid();
    assert!(alive(pid));
    drop(process);
    assert!(!alive(pid));
    Ok(())
}

#[test]
fn spawning_a_missing_program_fails() {
    let error =
        Process::spawn("ghost", Command::new("/nonexistent/weir-ghost")).expect_err("missing");
    assert!(
        format!("{error:#}").contains("/nonexistent/weir-ghost"),
        "{error:#}"
    );
}

fn libc_sigterm() -> i32 {
    15
}

/// Set in the environment of the helper run by
/// `children_die_with_the_test_process`.
const HELPER_ENV: &str = "WEIR_TESTKIT_ORPHAN_HELPER";

/// Not a test on its own: when run as a helper (see below), spawns a guarded
/// child, reports its pid and waits to be killed.
#[test]
fn orphan_helper() {
    if std::env::var_os(HELPER_ENV).is_none() {
        return;
    }
    let process = Process::spawn("orphan", sh("exec sleep 60")).unwrap();
    let log_dir = process.log_path().parent().unwrap().display().to_string();
    println!("CHILD_PID={} LOG_DIR={log_dir}", process.pid());
    std::thread::sleep(Duration::from_secs(60));
}

fn dead_or_zombie(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        // The state follows the parenthesised command name.
        Ok(stat) => stat
            .rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('Z')),
    }
}

#[tokio::test]
async fn children_die_with_the_test_process() -> anyhow::Result<()> {
    use std::io::{BufRead, BufReader};
    let mut helper = Command::new(std::env::current_exe()?)
        .args([
            "--exact",
            "orphan_helper",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(HELPER_ENV, "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()?;
    let stdout = helper.stdout.take().unwrap();
    let line = tokio::task::spawn_blocking(move || {
        BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .find_map(|line| {
                // libtest may print `test orphan_helper ... ` first.
                line.split_once("CHILD_PID=")
                    .map(|(_, pid)| pid.trim().to_owned())
            })
    })
    .await?
    .expect("helper reports its child");
    let (child, log_dir) = line.split_once(" LOG_DIR=").expect("pid and log dir");
    let child: u32 = child.parse()?;
    assert!(
        !dead_or_zombie(child),
        "child {child} runs while the helper lives"
    );

    helper.kill()?; // SIGKILL: no destructor runs in the helper
    helper.wait()?;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !dead_or_zombie(child) {
        assert!(
            std::time::Instant::now() < deadline,
            "child {child} outlived its parent"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The killed helper could not clean up after itself.
    std::fs::remove_dir_all(log_dir)?;
    Ok(())
}
