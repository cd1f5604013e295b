//! Running the `ssh` client under a wall clock, keeping at most a cap of
//! its output, and killing it when the clock runs out.
//!
//! The same shape as the sandbox's runner, with one difference: past the
//! cap, output is read and thrown away rather than the pipe closed. A
//! remote command that prints a lot (`apt-get upgrade`) must not be cut off
//! halfway because its output was long; only the wall clock stops a run.

use std::ffi::OsString;
use std::io;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::Command;

/// How long the output readers may take to see the end of their pipes once
/// ssh is gone.
const DRAIN_GRACE: Duration = Duration::from_secs(2);

/// One run of a program.
#[derive(Debug, Clone)]
pub(crate) struct Launch {
    pub program: PathBuf,
    pub args: Vec<OsString>,
    /// The whole environment: nothing of Steward's own is passed on.
    pub env: Vec<(String, String)>,
}

/// What a finished (or stopped) run produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Finished {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    /// The exit code; killed by signal N counts as 128 + N.
    pub exit_code: i32,
    /// The wall clock ran out and the run was killed.
    pub timed_out: bool,
    /// stdout or stderr went past the cap; the rest was not kept.
    pub truncated: bool,
    pub elapsed: Duration,
}

/// Runs `launch`, keeping at most `cap` bytes of stdout and of stderr, and
/// kills its process group after `wall`.
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
        .kill_on_drop(true);
    let started = Instant::now();
    let mut child = command.spawn()?;
    let pid = child.id().unwrap_or(0);
    let mut guard = KillGuard { pid, armed: true };
    let stdout = child.stdout.take().map(|out| tokio::spawn(read_capped(out, cap)));
    let stderr = child.stderr.take().map(|err| tokio::spawn(read_capped(err, cap)));
    let (status, timed_out) = match tokio::time::timeout(wall, child.wait()).await {
        Ok(status) => (status?, false),
        Err(_) => {
            kill_group(pid);
            (child.wait().await?, true)
        }
    };
    let elapsed = started.elapsed();
    let (stdout, out_cut) = collect(stdout).await;
    let (stderr, err_cut) = collect(stderr).await;
    guard.armed = false;
    let exit_code = status.code().unwrap_or_else(|| 128 + status.signal().unwrap_or(0));
    Ok(Finished { stdout, stderr, exit_code, timed_out, truncated: out_cut || err_cut, elapsed })
}

/// A reader's bytes and whether it had to cut them; a reader that does not
/// see the end in time is given up on with what it had.
async fn collect(task: Option<tokio::task::JoinHandle<(Vec<u8>, bool)>>) -> (Vec<u8>, bool) {
    let Some(mut task) = task else { return (Vec::new(), false) };
    match tokio::time::timeout(DRAIN_GRACE, &mut task).await {
        Ok(Ok(result)) => result,
        Ok(Err(_)) => (Vec::new(), false),
        Err(_) => {
            task.abort();
            (Vec::new(), true)
        }
    }
}

/// Reads to the end, keeping the first `cap` bytes; returns them and
/// whether there was more.
async fn read_capped<R: AsyncRead + Unpin>(mut reader: R, cap: usize) -> (Vec<u8>, bool) {
    let mut kept = Vec::new();
    let mut cut = false;
    let mut chunk = vec![0u8; 16 * 1024];
    loop {
        match reader.read(&mut chunk).await {
            Ok(0) | Err(_) => return (kept, cut),
            Ok(n) => {
                let room = cap.saturating_sub(kept.len());
                if n > room {
                    cut = true;
                }
                kept.extend_from_slice(&chunk[..n.min(room)]);
            }
        }
    }
}

/// Kills the run if the future running it is dropped before the end (the
/// engine gave up on the tool call, the turn was cancelled).
struct KillGuard {
    pid: u32,
    armed: bool,
}

impl Drop for KillGuard {
    fn drop(&mut self) {
        if self.armed {
            kill_group(self.pid);
        }
    }
}

/// SIGKILLs the process group `pid` leads (each run is started in its own).
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn sh(script: &str) -> Launch {
        Launch {
            program: PathBuf::from("/bin/sh"),
            args: vec!["-c".into(), script.into()],
            env: vec![("PATH".into(), "/usr/bin:/bin".into())],
        }
    }

    #[tokio::test]
    async fn output_past_the_cap_is_read_to_the_end_but_not_kept() {
        let done = execute(&sh("printf 0123456789; echo done >&2; exit 3"), Duration::from_secs(5), 4).await.unwrap();
        assert_eq!(done.stdout, b"0123");
        assert!(done.truncated);
        // The command ran to its end: the exit code is its own.
        assert_eq!(done.exit_code, 3);
        assert_eq!(done.stderr, b"done");
    }

    #[tokio::test]
    async fn a_run_past_the_wall_clock_is_killed() {
        let started = Instant::now();
        let done = execute(&sh("echo early; sleep 30"), Duration::from_millis(300), 100).await.unwrap();
        assert!(done.timed_out);
        assert_eq!(done.exit_code, 128 + libc::SIGKILL);
        assert_eq!(done.stdout, b"early\n");
        assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    }

    #[tokio::test]
    async fn nothing_of_the_parent_environment_is_passed_on() {
        let done = execute(&sh("env"), Duration::from_secs(5), 10_000).await.unwrap();
        let env = String::from_utf8_lossy(&done.stdout);
        assert!(env.contains("PATH=/usr/bin:/bin") && !env.contains("HOME="), "{env}");
    }
}
