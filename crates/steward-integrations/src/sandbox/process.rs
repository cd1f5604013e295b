//! Running one command under a wall-clock limit with capped output, and
//! killing everything it started when the limit passes.

use std::ffi::OsString;
use std::io;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::Command;

/// How long the output readers may take to see the end of their pipes once
/// the command is gone. Only a straggler that kept a pipe open (possible
/// outside the sandbox) makes them wait this long.
const DRAIN_GRACE: Duration = Duration::from_secs(2);

/// How long bwrap gets to notice that its sandbox died and exit by itself.
const REAP_GRACE: Duration = Duration::from_secs(2);

/// How a run is stopped early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stop {
    /// The command is bwrap: kill its child, the sandbox's pid-namespace
    /// init, and the kernel kills every process in the namespace at once,
    /// however many a script forked. bwrap sees its child die and exits with
    /// a status as usual; only if it does not is its process group killed.
    NamespaceInit,
    /// No sandbox: kill the command's process group.
    ProcessGroup,
}

/// One command to run.
#[derive(Debug, Clone)]
pub(crate) struct Launch {
    pub program: PathBuf,
    pub args: Vec<OsString>,
    pub cwd: Option<PathBuf>,
    /// The whole environment: nothing of Steward's own is passed on.
    pub env: Vec<(String, String)>,
    /// Run as this uid and gid (supplementary groups dropped).
    pub run_as: Option<(u32, u32)>,
    pub stop: Stop,
}

/// What a finished (or stopped) run produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Finished {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    /// The exit code; a command killed by signal N counts as 128 + N, as
    /// bwrap and shells report it.
    pub exit_code: i32,
    /// Our wall clock ran out and the run was killed.
    pub timed_out: bool,
    /// stdout or stderr went past the cap; reading stopped there.
    pub truncated: bool,
    pub elapsed: Duration,
}

/// Runs `launch`, reading at most `cap` bytes of stdout and of stderr and
/// killing the run after `wall`.
///
/// Past the cap a stream's pipe is closed rather than drained: the writer
/// gets EPIPE (Python: `BrokenPipeError`) and stops, instead of printing
/// into the void until the wall clock runs out.
pub(crate) async fn execute(launch: &Launch, wall: Duration, cap: usize) -> io::Result<Finished> {
    let mut command = Command::new(&launch.program);
    command
        .args(&launch.args)
        .env_clear()
        .envs(launch.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        // Should this future be dropped mid-run, bwrap dies and
        // --die-with-parent takes the sandbox with it.
        .kill_on_drop(true);
    if let Some(cwd) = &launch.cwd {
        command.current_dir(cwd);
    }
    if let Some((uid, gid)) = launch.run_as {
        // std drops supplementary groups when root sets a uid.
        command.uid(uid).gid(gid);
    }
    let started = Instant::now();
    let mut child = command.spawn()?;
    let pid = child.id().unwrap_or(0);
    let mut guard = KillGuard { pid, stop: launch.stop, armed: true };
    let stdout = child.stdout.take().map(|out| tokio::spawn(read_capped(out, cap)));
    let stderr = child.stderr.take().map(|err| tokio::spawn(read_capped(err, cap)));

    let (status, timed_out) = match tokio::time::timeout(wall, child.wait()).await {
        Ok(status) => (status?, false),
        Err(_) => {
            stop_run(&mut child, pid, launch.stop).await;
            (child.wait().await?, true)
        }
    };
    let elapsed = started.elapsed();
    let (stdout, out_cut, out_done) = collect(stdout).await;
    let (stderr, err_cut, err_done) = collect(stderr).await;
    if !(out_done && err_done) {
        // Something the command started still holds a pipe.
        kill_group(pid);
    }
    guard.armed = false;
    let exit_code = status.code().unwrap_or_else(|| 128 + status.signal().unwrap_or(0));
    Ok(Finished { stdout, stderr, exit_code, timed_out, truncated: out_cut || err_cut, elapsed })
}

/// Kills a run that is still going.
async fn stop_run(child: &mut tokio::process::Child, pid: u32, stop: Stop) {
    match stop {
        Stop::NamespaceInit => {
            kill_children(pid);
            if tokio::time::timeout(REAP_GRACE, child.wait()).await.is_err() {
                kill_group(pid);
            }
        }
        Stop::ProcessGroup => kill_group(pid),
    }
}

/// A reader's result: the bytes, whether they were cut, and whether the
/// reader saw the end in time.
async fn collect(task: Option<tokio::task::JoinHandle<(Vec<u8>, bool)>>) -> (Vec<u8>, bool, bool) {
    let Some(mut task) = task else { return (Vec::new(), false, true) };
    match tokio::time::timeout(DRAIN_GRACE, &mut task).await {
        Ok(Ok((bytes, cut))) => (bytes, cut, true),
        Ok(Err(_)) => (Vec::new(), false, true),
        Err(_) => {
            task.abort();
            (Vec::new(), false, false)
        }
    }
}

/// Reads until the end or `cap` bytes; returns the bytes and whether there
/// was more. Returning drops the reader, which closes the pipe.
async fn read_capped<R: AsyncRead + Unpin>(mut reader: R, cap: usize) -> (Vec<u8>, bool) {
    let mut bytes = Vec::new();
    let mut chunk = vec![0u8; 16 * 1024];
    loop {
        match reader.read(&mut chunk).await {
            Ok(0) | Err(_) => return (bytes, false),
            Ok(n) => {
                let room = cap.saturating_sub(bytes.len());
                if n > room {
                    bytes.extend_from_slice(&chunk[..room]);
                    return (bytes, true);
                }
                bytes.extend_from_slice(&chunk[..n]);
            }
        }
    }
}

/// Kills the run if the future running it is dropped before the end (the
/// engine gave up on the tool call, the turn was cancelled).
struct KillGuard {
    pid: u32,
    stop: Stop,
    armed: bool,
}

impl Drop for KillGuard {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        match self.stop {
            Stop::NamespaceInit => kill_children(self.pid),
            Stop::ProcessGroup => kill_group(self.pid),
        }
    }
}

/// SIGKILLs every process whose parent is `pid`. Read from `/proc/*/stat`,
/// since `/proc/<pid>/task/<pid>/children` needs a kernel option that not
/// every kernel has.
fn kill_children(pid: u32) {
    if pid == 0 {
        return;
    }
    let Ok(entries) = std::fs::read_dir("/proc") else { return };
    for entry in entries.flatten() {
        let Some(child) = entry.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else { continue };
        if parent_of(&entry.path()) == Some(pid) {
            // SAFETY: kill(2) takes plain integers and touches no memory.
            unsafe {
                libc::kill(child, libc::SIGKILL);
            }
        }
    }
}

/// The parent pid from `/proc/<pid>/stat`: the fourth field, counted after
/// the command name, which is in parentheses and may itself hold spaces.
fn parent_of(proc_dir: &Path) -> Option<u32> {
    let stat = std::fs::read_to_string(proc_dir.join("stat")).ok()?;
    let after_name = &stat[stat.rfind(')')? + 1..];
    after_name.split_whitespace().nth(1)?.parse().ok()
}

/// SIGKILLs the process group `pid` leads (every command runs in its own).
fn kill_group(pid: u32) {
    let Ok(pgid) = i32::try_from(pid) else { return };
    if pgid <= 1 {
        return;
    }
    // SAFETY: killpg(2) takes plain integers and touches no memory.
    unsafe {
        libc::killpg(pgid, libc::SIGKILL);
    }
}

/// Steward's effective uid.
pub(crate) fn effective_uid() -> u32 {
    // SAFETY: geteuid(2) cannot fail and touches no memory.
    unsafe { libc::geteuid() }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn sh(script: &str, stop: Stop) -> Launch {
        Launch {
            program: PathBuf::from("/bin/sh"),
            args: vec!["-c".into(), script.into()],
            cwd: None,
            env: vec![("PATH".into(), "/usr/bin:/bin".into())],
            run_as: None,
            stop,
        }
    }

    #[test]
    fn the_parent_pid_is_read_past_a_name_with_spaces_and_parentheses() {
        let dir = std::env::temp_dir().join(format!("steward-stat-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join("stat"), "42 (a (b) c) S 7 42 42 0 -1").unwrap();
        assert_eq!(parent_of(&dir), Some(7));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn output_is_capped_and_the_exit_code_kept() {
        let done =
            execute(&sh("printf 0123456789; echo oops >&2; exit 3", Stop::ProcessGroup), Duration::from_secs(5), 4)
                .await
                .unwrap();
        assert_eq!(done.stdout, b"0123");
        assert!(done.truncated);
        assert_eq!(done.exit_code, 3);
        assert!(!done.timed_out);
    }

    #[tokio::test]
    async fn a_run_past_the_wall_clock_is_killed_with_its_children() {
        // A duration no other process on the host sleeps for.
        let nap = format!("30.{}", uuid::Uuid::new_v4().as_u128() % 1_000_000_007);
        let script = format!("sleep {nap} & sleep {nap}; echo never");
        let started = Instant::now();
        let done = execute(&sh(&script, Stop::ProcessGroup), Duration::from_millis(300), 100).await.unwrap();
        assert!(done.timed_out);
        assert!(done.stdout.is_empty());
        assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
        tokio::time::sleep(Duration::from_millis(200)).await;
        let left: Vec<String> = std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
            .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
            .filter(|c| c.contains(&nap))
            .collect();
        assert!(left.is_empty(), "left behind: {left:?}");
    }

    #[tokio::test]
    async fn nothing_of_the_parent_environment_is_passed_on() {
        let done = execute(&sh("env", Stop::ProcessGroup), Duration::from_secs(5), 10_000).await.unwrap();
        let env = String::from_utf8_lossy(&done.stdout);
        assert!(env.contains("PATH=/usr/bin:/bin"), "{env}");
        assert!(!env.contains("HOME="), "{env}");
    }
}
