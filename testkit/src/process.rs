//! Child processes that cannot outlive their test.
//!
//! A [`Process`] is killed with SIGKILL when dropped, and is also killed by the
//! kernel if the test process dies first (`PR_SET_PDEATHSIG`). Its stdout and
//! stderr go to one log file in a fresh temporary directory; the directory is
//! removed on drop unless the dropping thread is panicking (a failed test) or
//! `WEIR_KEEP_LOGS` is set, in which case its path is printed to stderr.

use std::collections::HashSet;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// How many trailing log lines error messages include.
const TAIL_LINES: usize = 40;

/// A TCP port on 127.0.0.1 that was free a moment ago.
///
/// The port is released before returning, so another process could take it;
/// the rig's `start` functions retry on a bind failure. Ports are never handed
/// out twice by one test process.
pub fn free_port() -> u16 {
    static HANDED_OUT: Mutex<Option<HashSet<u16>>> = Mutex::new(None);
    let mut handed_out = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
    let handed_out = handed_out.get_or_insert_with(HashSet::new);
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("bind an ephemeral port on 127.0.0.1")
            .port();
        if handed_out.insert(port) {
            return port;
        }
    }
}

/// A running child process with captured output, killed when dropped.
///
/// - Dropping it sends SIGKILL and reaps the child; if the test process dies
///   first, the kernel kills the child (`PR_SET_PDEATHSIG`).
/// - Stdout and stderr go to one log file in a fresh temporary directory,
///   removed on drop unless the dropping thread is panicking (a failed test)
///   or `WEIR_KEEP_LOGS` is set; a kept log's path is printed to stderr.
///
/// All methods take `&self`, so a `Process` can be shared (e.g. in an `Arc`)
/// between a task that waits for it and one that signals it.
///
/// ```no_run
/// # async fn demo() -> anyhow::Result<()> {
/// use std::process::Command;
/// use std::time::Duration;
/// use weir_testkit::Process;
///
/// let mut command = Command::new("/path/to/weir");
/// command.arg("--config").arg("weir.toml");
/// let weir = Process::spawn("weir", command)?;
/// // ... drive it ...
/// weir.sigterm()?;
/// let status = weir.wait_exit(Duration::from_secs(30)).await;
/// assert!(status.is_some_and(|s| s.success()), "{}", weir.log_tail());
/// # Ok(()) }
/// ```
pub struct Process {
    name: String,
    pid: u32,
    child: Mutex<Child>,
    log_path: PathBuf,
    log_dir: Option<tempfile::TempDir>,
}

impl Process {
    /// Spawns `command` in its own process group, with stdin closed and
    /// stdout/stderr captured to a log file. `name` labels the log and error
    /// messages.
    ///
    /// The command's own stdio settings are overridden.
    pub fn spawn(name: &str, mut command: Command) -> Result<Process> {
        let log_dir = tempfile::Builder::new()
            .prefix(&format!("weir-testkit-{name}-"))
            .tempdir()
            .context("create a temporary directory for the process log")?;
        let log_path = log_dir.path().join(format!("{name}.log"));
        let log = File::create(&log_path)
            .with_context(|| format!("create log file {}", log_path.display()))?;
        command
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        // Its own process group: a terminal's Ctrl-C (SIGINT to the
        // foreground group) reaches only the parent, which decides how its
        // children stop (e.g. exactly one SIGTERM to drain). PDEATHSIG below
        // still ends the child if the parent dies first.
        command.process_group(0);
        let parent = std::process::id();
        // SAFETY: the closure runs between fork and exec and only makes
        // async-signal-safe system calls (prctl, getppid, _exit).
        unsafe {
            command.pre_exec(move || {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(io::Error::last_os_error());
                }
                // The parent may have died before prctl took effect.
                if libc::getppid() as u32 != parent {
                    libc::_exit(1);
                }
                Ok(())
            });
        }
        let program = command.get_program().to_string_lossy().into_owned();
        let child =
            spawn_on_keeper_thread(command).with_context(|| format!("spawn {name} ({program})"))?;
        Ok(Process {
            name: name.to_owned(),
            pid: child.id(),
            child: Mutex::new(child),
            log_path,
            log_dir: Some(log_dir),
        })
    }

    /// The label given to [`Process::spawn`].
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Operating-system process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Path of the file holding the process's stdout and stderr. It is
    /// deleted with the `Process` unless kept (see [`Process`]).
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// The last lines of the process's output (at most 40).
    pub fn log_tail(&self) -> String {
        tail(&self.log_path, TAIL_LINES, |_| true)
    }

    /// The last lines of the process's output that are not `tracing`'s
    /// DEBUG or TRACE lines (at most 40): what a failed test should quote
    /// when per-batch debug lines would fill a plain tail.
    pub fn log_tail_above_debug(&self) -> String {
        tail(&self.log_path, TAIL_LINES, |line| {
            !(line.contains("DEBUG") || line.contains("TRACE"))
        })
    }

    /// Exit status if the process has exited, `None` while it runs.
    pub fn try_status(&self) -> Option<ExitStatus> {
        self.child().try_wait().ok().flatten()
    }

    /// Whether the process is still running.
    pub fn is_running(&self) -> bool {
        self.try_status().is_none()
    }

    /// Fails, quoting the log tail, if the process has exited.
    pub fn ensure_running(&self) -> Result<()> {
        match self.try_status() {
            None => Ok(()),
            Some(status) => bail!("{} exited ({status}){}", self.name, self.log_excerpt()),
        }
    }

    /// The log tail formatted for appending to an error message.
    pub fn log_excerpt(&self) -> String {
        format!(
            "\n--- last lines of {}'s output ---\n{}",
            self.name,
            self.log_tail()
        )
    }

    /// Kills the process with SIGKILL and reaps it.
    pub fn kill9(&self) -> io::Result<ExitStatus> {
        let mut child = self.child();
        if let Some(status) = child.try_wait()? {
            return Ok(status);
        }
        child.kill()?;
        child.wait()
    }

    /// Sends SIGTERM (a graceful shutdown request); does not wait.
    pub fn sigterm(&self) -> io::Result<()> {
        self.signal(libc::SIGTERM)
    }

    /// Freezes the process (SIGSTOP): it keeps its sockets and state but
    /// does nothing until [`Process::thaw`], so a test can look at what it
    /// left in other systems and decide whether to kill it there.
    pub fn freeze(&self) -> io::Result<()> {
        self.signal(libc::SIGSTOP)
    }

    /// Lets a frozen process run again (SIGCONT).
    pub fn thaw(&self) -> io::Result<()> {
        self.signal(libc::SIGCONT)
    }

    /// Sends `signal` to the process unless it has already exited.
    pub fn signal(&self, signal: libc::c_int) -> io::Result<()> {
        let mut child = self.child();
        if child.try_wait()?.is_some() {
            return Ok(());
        }
        // SAFETY: kill(2) has no memory-safety preconditions; the child is
        // not reaped yet (we hold the lock), so the pid still names it.
        if unsafe { libc::kill(self.pid as libc::pid_t, signal) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Waits up to `timeout` for the process to exit; `None` if it is still
    /// running then.
    pub async fn wait_exit(&self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.try_status() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn child(&self) -> std::sync::MutexGuard<'_, Child> {
        self.child.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl std::fmt::Debug for Process {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Process")
            .field("name", &self.name)
            .field("pid", &self.pid)
            .field("log_path", &self.log_path)
            .finish()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.kill9();
        let keep = std::thread::panicking() || std::env::var_os("WEIR_KEEP_LOGS").is_some();
        if let Some(dir) = self.log_dir.take()
            && keep
        {
            let dir = dir.keep();
            eprintln!("weir-testkit: {} log kept at {}", self.name, dir.display());
        }
    }
}

/// Spawns on one long-lived thread: `PR_SET_PDEATHSIG` fires when the
/// *thread* that forked the child exits, and tokio's blocking-pool threads
/// come and go, so children are forked from a thread that lives as long as
/// the test process.
fn spawn_on_keeper_thread(command: Command) -> io::Result<Child> {
    type Job = Box<dyn FnOnce() + Send>;
    static KEEPER: OnceLock<Mutex<mpsc::Sender<Job>>> = OnceLock::new();
    let keeper = KEEPER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("weir-testkit-spawner".into())
            .spawn(move || {
                for job in rx {
                    job();
                }
            })
            .expect("start the weir-testkit spawner thread");
        Mutex::new(tx)
    });
    let (reply_tx, reply_rx) = mpsc::channel();
    let mut command = command;
    let job: Job = Box::new(move || {
        let _ = reply_tx.send(command.spawn());
    });
    keeper
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .send(job)
        .map_err(|_| io::Error::other("weir-testkit spawner thread is gone"))?;
    reply_rx
        .recv()
        .map_err(|_| io::Error::other("weir-testkit spawner thread dropped the request"))?
}

/// The last `lines` lines of the file at `path` (reads at most 64 KiB).
fn tail(path: &Path, lines: usize, keep: impl Fn(&str) -> bool) -> String {
    const MAX: u64 = 4 * 1024 * 1024;
    let read = || -> io::Result<String> {
        let mut file = File::open(path)?;
        let len = file.metadata()?.len();
        file.seek(SeekFrom::Start(len.saturating_sub(MAX)))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    };
    match read() {
        Ok(text) => {
            let all: Vec<&str> = text.lines().filter(|l| keep(l)).collect();
            all[all.len().saturating_sub(lines)..].join("\n")
        }
        Err(e) => format!("(cannot read log {}: {e})", path.display()),
    }
}

#[cfg(test)]
mod tests {
    use std::process::Command;

    use super::Process;

    /// A terminal's Ctrl-C goes to the foreground process group; a child in
    /// the parent's group would get it too, besides whatever the parent
    /// then sends it (for `weir run`: a second signal, which skips draining).
    #[test]
    fn children_run_in_their_own_process_group() {
        let mut command = Command::new("sleep");
        command.arg("30");
        let child = Process::spawn("sleep", command).unwrap();
        // SAFETY: getpgid/getpgrp have no memory-safety preconditions.
        let (child_group, own_group) =
            unsafe { (libc::getpgid(child.pid() as libc::pid_t), libc::getpgrp()) };
        assert_eq!(
            child_group,
            child.pid() as libc::pid_t,
            "leads its own group"
        );
        assert_ne!(child_group, own_group);
    }
}
