//! Running one Ansible command: its stdout handed over line by line as it
//! comes (the callback plugin prints one event per line and flushes), the
//! end of its stderr kept, a wall clock, and the whole process group
//! stopped when the clock runs out.

use std::ffi::OsString;
use std::io;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncRead, AsyncReadExt, BufReader};
use tokio::process::Command;

/// Bytes of one stdout line that are kept; the plugin cuts its own texts
/// well below this, so only a foreign callback's line can be longer.
const MAX_LINE_BYTES: usize = 1024 * 1024;

/// Bytes of stderr kept: its end, where Ansible's error is.
const STDERR_TAIL_BYTES: usize = 16 * 1024;

/// How long Ansible gets after SIGTERM before the group is killed: enough
/// to remove its temporary files on the hosts and close connections.
const TERM_GRACE: Duration = Duration::from_secs(5);

/// How long the lines printed before a stop may take to arrive.
const DRAIN_GRACE: Duration = Duration::from_secs(2);

/// One command to run.
#[derive(Debug, Clone)]
pub(crate) struct Invocation {
    pub program: PathBuf,
    pub args: Vec<OsString>,
    pub cwd: PathBuf,
    /// The whole environment: nothing of Steward's own is passed on.
    pub env: Vec<(String, String)>,
    pub timeout: Duration,
}

/// How a command ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Exit {
    /// The exit code; killed by signal N counts as 128 + N.
    pub code: i32,
    /// The wall clock ran out and the command was stopped.
    pub timed_out: bool,
    /// The end of stderr.
    pub stderr: String,
    pub elapsed: Duration,
}

/// Runs `invocation`, calling `on_line` with each stdout line as it
/// arrives. An `Err` only when the command could not be started or waited
/// for; a command that fails or is stopped is an [`Exit`].
pub(crate) async fn run_lines(invocation: &Invocation, mut on_line: impl FnMut(String)) -> io::Result<Exit> {
    let mut command = Command::new(&invocation.program);
    command
        .args(&invocation.args)
        .current_dir(&invocation.cwd)
        .env_clear()
        .envs(invocation.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own process group, so that a stop reaches Ansible's workers
        // and the commands its tasks run, not only ansible-playbook.
        .process_group(0)
        .kill_on_drop(true);
    let started = Instant::now();
    let deadline = tokio::time::Instant::now() + invocation.timeout;
    let mut child = command.spawn()?;
    let pid = child.id().unwrap_or(0);
    let mut guard = GroupGuard { pid, armed: true };
    let stderr = child.stderr.take().map(|err| tokio::spawn(read_tail(err, STDERR_TAIL_BYTES)));
    let mut lines = child.stdout.take().map(|out| LineReader::new(BufReader::new(out)));

    let mut timed_out = false;
    if let Some(reader) = lines.as_mut() {
        loop {
            tokio::select! {
                line = reader.next_line() => match line {
                    Ok(Some(line)) => on_line(line),
                    Ok(None) | Err(_) => break,
                },
                _ = tokio::time::sleep_until(deadline) => {
                    timed_out = true;
                    break;
                }
            }
        }
    }
    let status = if timed_out {
        stop(&mut child, pid).await?
    } else {
        match tokio::time::timeout_at(deadline, child.wait()).await {
            Ok(status) => status?,
            Err(_) => {
                timed_out = true;
                stop(&mut child, pid).await?
            }
        }
    };
    if timed_out {
        // What was printed before the stop is still in the pipe.
        if let Some(reader) = lines.as_mut() {
            let drain = async {
                while let Ok(Some(line)) = reader.next_line().await {
                    on_line(line);
                }
            };
            let _ = tokio::time::timeout(DRAIN_GRACE, drain).await;
        }
    }
    let elapsed = started.elapsed();
    let stderr = match stderr {
        Some(task) => match tokio::time::timeout(DRAIN_GRACE, task).await {
            Ok(Ok(bytes)) => String::from_utf8_lossy(&bytes).into_owned(),
            Ok(Err(_)) | Err(_) => String::new(),
        },
        None => String::new(),
    };
    guard.armed = false;
    let code = status.code().unwrap_or_else(|| 128 + status.signal().unwrap_or(0));
    Ok(Exit { code, timed_out, stderr, elapsed })
}

/// Stops a run: SIGTERM to the group, then SIGKILL to whatever is left.
async fn stop(child: &mut tokio::process::Child, pid: u32) -> io::Result<std::process::ExitStatus> {
    signal_group(pid, libc::SIGTERM);
    let status = match tokio::time::timeout(TERM_GRACE, child.wait()).await {
        Ok(status) => status?,
        Err(_) => {
            signal_group(pid, libc::SIGKILL);
            child.wait().await?
        }
    };
    // Workers or task commands that outlived ansible-playbook.
    signal_group(pid, libc::SIGKILL);
    Ok(status)
}

/// Kills the group if the future running it is dropped before the end (the
/// engine gave up on the tool call, the turn was cancelled).
struct GroupGuard {
    pid: u32,
    armed: bool,
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if self.armed {
            signal_group(self.pid, libc::SIGKILL);
        }
    }
}

/// Sends `signal` to the process group `pid` leads (every run has its own).
fn signal_group(pid: u32, signal: i32) {
    let Ok(pgid) = i32::try_from(pid) else { return };
    if pgid <= 1 {
        return;
    }
    // SAFETY: killpg(2) takes plain integers and touches no memory.
    unsafe {
        libc::killpg(pgid, signal);
    }
}

/// Lines of a stream, each cut at [`MAX_LINE_BYTES`]. A partly read line
/// is kept in the reader, so `next_line` can be cancelled (by a `select!`)
/// without losing anything.
struct LineReader<R> {
    reader: R,
    partial: Vec<u8>,
    cut: bool,
}

impl<R: AsyncBufRead + Unpin> LineReader<R> {
    fn new(reader: R) -> Self {
        LineReader { reader, partial: Vec::new(), cut: false }
    }

    async fn next_line(&mut self) -> io::Result<Option<String>> {
        loop {
            let buf = self.reader.fill_buf().await?;
            if buf.is_empty() {
                if self.partial.is_empty() && !self.cut {
                    return Ok(None);
                }
                return Ok(Some(self.take()));
            }
            let (chunk, used, end) = match buf.iter().position(|b| *b == b'\n') {
                Some(i) => (&buf[..i], i + 1, true),
                None => (buf, buf.len(), false),
            };
            let room = MAX_LINE_BYTES.saturating_sub(self.partial.len());
            if chunk.len() > room {
                self.cut = true;
            }
            self.partial.extend_from_slice(&chunk[..chunk.len().min(room)]);
            self.reader.consume(used);
            if end {
                return Ok(Some(self.take()));
            }
        }
    }

    fn take(&mut self) -> String {
        let mut line = String::from_utf8_lossy(&self.partial).into_owned();
        if self.cut {
            line.push_str(" [line cut]");
        }
        self.partial.clear();
        self.cut = false;
        line
    }
}

/// Reads to the end and keeps the last `cap` bytes.
async fn read_tail<R: AsyncRead + Unpin>(mut reader: R, cap: usize) -> Vec<u8> {
    let mut kept = Vec::new();
    let mut chunk = vec![0u8; 8 * 1024];
    loop {
        match reader.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                kept.extend_from_slice(&chunk[..n]);
                if kept.len() > 2 * cap {
                    kept.drain(..kept.len() - cap);
                }
            }
        }
    }
    if kept.len() > cap {
        kept.drain(..kept.len() - cap);
    }
    kept
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn sh(script: &str, timeout: Duration) -> Invocation {
        Invocation {
            program: PathBuf::from("/bin/sh"),
            args: vec!["-c".into(), script.into()],
            cwd: std::env::temp_dir(),
            env: vec![("PATH".into(), "/usr/bin:/bin".into())],
            timeout,
        }
    }

    #[tokio::test]
    async fn lines_arrive_as_they_are_printed_and_stderr_is_kept() {
        let started = Instant::now();
        let mut seen = Vec::new();
        let exit =
            run_lines(&sh("echo one; echo oops >&2; sleep 0.5; echo two; exit 3", Duration::from_secs(10)), |l| {
                seen.push((l, started.elapsed()))
            })
            .await
            .unwrap();
        assert_eq!(seen.iter().map(|(l, _)| l.as_str()).collect::<Vec<_>>(), ["one", "two"]);
        assert!(seen[0].1 < Duration::from_millis(400), "the first line waited for the end: {:?}", seen[0].1);
        assert_eq!((exit.code, exit.timed_out, exit.stderr.as_str()), (3, false, "oops\n"));
    }

    #[tokio::test]
    async fn a_run_past_its_time_is_stopped_with_its_children_and_keeps_its_lines() {
        let nap = format!("40.{}", uuid::Uuid::new_v4().as_u128() % 1_000_000_007);
        let script = format!("echo before; sleep {nap} & sleep {nap}; echo never");
        let mut seen = Vec::new();
        let started = Instant::now();
        let exit = run_lines(&sh(&script, Duration::from_millis(500)), |l| seen.push(l)).await.unwrap();
        assert!(exit.timed_out);
        assert_eq!(seen, ["before"]);
        assert!(started.elapsed() < Duration::from_secs(8), "{:?}", started.elapsed());
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
    async fn long_lines_are_cut_and_the_environment_is_only_what_was_given() {
        let mut seen = Vec::new();
        let script = format!("head -c {} /dev/zero | tr '\\0' x; echo; env", MAX_LINE_BYTES + 10);
        run_lines(&sh(&script, Duration::from_secs(10)), |l| seen.push(l)).await.unwrap();
        assert_eq!(seen[0].len(), MAX_LINE_BYTES + " [line cut]".len());
        let env: Vec<&str> = seen[1..].iter().map(String::as_str).filter(|l| !l.starts_with("PWD=")).collect();
        assert_eq!(env, ["PATH=/usr/bin:/bin"]);
    }
}
