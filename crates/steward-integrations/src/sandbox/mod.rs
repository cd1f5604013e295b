//! A sandbox for Python analysis scripts that a model wrote, and the
//! `run_analysis_script` tool built on it.
//!
//! Model-written code is untrusted: the data it reads (entity names, states)
//! can carry instructions from whoever named a device. So a script runs in
//! a bubblewrap sandbox with
//!
//! - no network: its own network namespace, with only a loopback of its own;
//! - a read-only root holding only programs and libraries (`/usr` and its
//!   symlinks, the interpreter's prefix, a handful of `/etc` files), so
//!   Steward's data, configuration, keys and people's homes are not there to
//!   be read and printed back into a model's context;
//! - a private `/tmp`, a size-capped tmpfs holding only the input files
//!   (bound read-only) and whatever the script writes;
//! - an environment of four variables (`PATH`, `HOME=/tmp`, `TMPDIR`,
//!   `LANG`) instead of Steward's, which holds API keys;
//! - its own pid, IPC, UTS and cgroup namespaces, a fresh `/proc`, no
//!   capabilities, a new session;
//! - limits on address space (memory), CPU seconds, file size, processes,
//!   wall-clock time and output. Memory and CPU are limited per process, so
//!   a script that forks to the process limit could use up to
//!   `max_processes × memory_mb`; on a small host, lower either.
//!
//! # The process limit, and why the sandbox runs as `nobody` under root
//!
//! A fork bomb is stopped by `RLIMIT_NPROC`, which the launcher (see
//! `python::launcher_args`) sets inside the sandbox. Two kernel facts shape
//! this:
//!
//! - Since Linux 5.14 the process count behind `RLIMIT_NPROC` is kept per
//!   user namespace, so a limit set inside the sandbox's own user namespace
//!   counts only the sandbox's processes: concurrent runs do not share a
//!   budget, and Steward's own threads do not count (set from outside, on
//!   bwrap, it would count every process of that user).
//! - The kernel never enforces `RLIMIT_NPROC` on processes whose real uid is
//!   root in the initial namespace, and bwrap started by root maps the
//!   sandbox's user to root outside. So when Steward runs as root it starts
//!   bwrap as `nobody` (65534); bwrap then builds the sandbox with an
//!   unprivileged user namespace, as it does for any normal user, and the
//!   limit holds. This also means that under root a script that escaped the
//!   sandbox would be `nobody`, not root.
//!
//! The cgroup pids controller was the other candidate; it was not chosen
//! because it needs root or a delegated cgroup, differs between cgroup v1 and
//! v2, is often read-only inside containers, and leaves directories behind
//! when Steward dies mid-run. The user-namespace route needs nothing but
//! bwrap and unprivileged user namespaces, which bwrap needs anyway.
//!
//! When the wall clock runs out, Steward kills the sandbox's pid-namespace
//! init; the kernel then kills every process in the namespace at once,
//! however many a script forked.
//!
//! bwrap exits as soon as the script does and leaves its short-lived init
//! to be reaped by the host's pid 1; in a container, run Steward under an
//! init that reaps (`docker run --init`), as for any program that starts
//! processes.
//!
//! On kernels older than 5.14 the process count is per user, not per user
//! namespace: under root that is still the sandbox's `nobody`; under a
//! normal user it includes Steward's own threads, so a script may be unable
//! to start any process at all. That fails closed.
//!
//! # Without a sandbox
//!
//! When bwrap is missing or cannot build a sandbox here, scripts are
//! refused with the reason, unless `[sandbox] allow_unsandboxed = true`. Then
//! they run as Steward's user with the memory, CPU, file-size, time and
//! output limits but none of the isolation (no process limit either: outside
//! a user namespace it would count all of Steward's user's processes), and
//! the tool declares itself as changing things, so a person approves every
//! run.

mod bwrap;
mod detect;
mod process;
mod python;
mod tool;
mod workdir;

use std::path::{Path, PathBuf};
use std::time::Duration;

pub use bwrap::SANDBOX_UID;
pub use tool::RunAnalysisScript;

use bwrap::Bwrap;
use process::{execute, Finished, Launch, Stop};
use python::{Interpreter, Limits};
use workdir::WorkDir;

/// What to tell a person who has no working sandbox.
pub(crate) const INSTALL_HINT: &str = "install bubblewrap (apt-get install bubblewrap) or allow unsandboxed \
execution with [sandbox] allow_unsandboxed = true in steward.toml";

/// The script's file name in its working directory.
const SCRIPT_FILE: &str = "script.py";

/// The size of the private `/tmp` (the input files are bound into it and
/// take none of it), and the largest file a script may write.
const SCRATCH_BYTES: u64 = 64 * 1024 * 1024;

/// How the sandbox is found and what a script may use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxConfig {
    /// Run scripts without a sandbox when none is available (each run then
    /// needs a person's approval). Off by default.
    pub allow_unsandboxed: bool,
    /// bwrap to use; default: `bwrap` on `PATH`.
    pub bwrap_path: Option<PathBuf>,
    /// The Python 3 interpreter; default: `python3` on `PATH`, then
    /// `/usr/bin/python3`.
    pub python: Option<PathBuf>,
    /// Address space per process, in MiB.
    pub memory_mb: u64,
    /// CPU seconds per process.
    pub cpu_secs: u64,
    /// Wall-clock seconds for the whole run.
    pub timeout_secs: u64,
    /// Processes and threads inside the sandbox, its own init included.
    pub max_processes: u64,
    /// Bytes of stdout, and of stderr, that are kept.
    pub output_cap_bytes: usize,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        SandboxConfig {
            allow_unsandboxed: false,
            bwrap_path: None,
            python: None,
            memory_mb: 512,
            cpu_secs: 10,
            timeout_secs: 20,
            max_processes: 32,
            output_cap_bytes: 64 * 1024,
        }
    }
}

/// What a script printed and how it ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunOutput {
    pub stdout: String,
    pub stderr: String,
    /// The exit code; killed by signal N counts as 128 + N.
    pub exit_code: i32,
    /// stdout or stderr went past the output cap and was cut there.
    pub truncated: bool,
    pub elapsed_ms: u64,
    /// False when it ran without a sandbox (allowed by configuration).
    pub sandboxed: bool,
}

/// Why a script did not run, or was stopped.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// No sandbox, and running without one is not allowed.
    #[error(
        "refusing to run model-written code: no sandbox ({0}). Install bubblewrap (apt-get install \
bubblewrap), or set [sandbox] allow_unsandboxed = true in steward.toml to run scripts without one (every \
run then needs a person's approval)"
    )]
    Unavailable(String),
    /// Our wall clock ran out; the sandbox was killed.
    #[error(
        "the script was stopped after {secs} s, its time limit. Make it do less (fewer entities, a shorter \
period, no endless loops or sleeps), or raise [sandbox] timeout_secs in steward.toml"
    )]
    Timeout { secs: u64, output: Box<RunOutput> },
    /// The kernel stopped it at the CPU-time limit.
    #[error(
        "the script used up its {secs} s of CPU time and was stopped. Make the computation cheaper (no busy \
loops, fewer nested loops over all points), or raise [sandbox] cpu_secs in steward.toml"
    )]
    CpuLimit { secs: u64, output: Box<RunOutput> },
    /// An allocation failed at the memory limit.
    #[error(
        "the script ran out of memory: it may use at most {mb} MB. Work through the data in pieces \
instead of building large copies, or raise [sandbox] memory_mb in steward.toml"
    )]
    MemoryLimit { mb: u64, output: Box<RunOutput> },
    /// Starting a process or thread failed at the process limit.
    #[error(
        "the script tried to start more than {max} processes or threads and was refused. An analysis \
script should do its work in one process: no fork, subprocess or process pools"
    )]
    ProcessLimit { max: u64, output: Box<RunOutput> },
    /// An input file name that could escape the private /tmp or hide the script.
    #[error(
        "`{0}` cannot be an input file name: use letters, digits, '.', '-' and '_', not starting with \
'.', and not {SCRIPT_FILE}"
    )]
    BadFileName(String),
    /// Steward could not set the run up.
    #[error(
        "cannot run the script: {what}: {source}. Check that the temporary directory ({}) is writable \
and has room",
        std::env::temp_dir().display()
    )]
    Io {
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
}

impl SandboxError {
    /// What the script printed before it was stopped, if it ran.
    pub fn output(&self) -> Option<&RunOutput> {
        match self {
            SandboxError::Timeout { output, .. }
            | SandboxError::CpuLimit { output, .. }
            | SandboxError::MemoryLimit { output, .. }
            | SandboxError::ProcessLimit { output, .. } => Some(output),
            SandboxError::Unavailable(_) | SandboxError::BadFileName(_) | SandboxError::Io { .. } => None,
        }
    }

    fn io(what: &'static str) -> impl FnOnce(std::io::Error) -> SandboxError {
        move |source| SandboxError::Io { what, source }
    }
}

/// Where scripts run: the sandbox found at start-up, or why there is none.
#[derive(Debug, Clone)]
pub struct Sandbox {
    config: SandboxConfig,
    backend: Backend,
}

#[derive(Debug, Clone)]
enum Backend {
    Bubblewrap {
        bwrap: Bwrap,
        python: Interpreter,
    },
    /// No sandbox, but the configuration allows running without one.
    Unsandboxed {
        python: Interpreter,
        why: String,
    },
    Unavailable {
        why: String,
    },
}

impl Sandbox {
    /// A sandbox that was not looked for, for checks that only need the
    /// tool's name (`steward config check`); it refuses every script.
    pub fn unchecked(config: &SandboxConfig) -> Sandbox {
        let why = "the sandbox was not checked".to_string();
        Sandbox { config: config.clone(), backend: Backend::Unavailable { why } }
    }

    pub fn config(&self) -> &SandboxConfig {
        &self.config
    }

    /// Scripts run in a bubblewrap sandbox.
    pub fn is_sandboxed(&self) -> bool {
        matches!(self.backend, Backend::Bubblewrap { .. })
    }

    /// Scripts run at all: in the sandbox, or without one when allowed.
    pub fn can_run(&self) -> bool {
        match self.backend {
            Backend::Bubblewrap { .. } | Backend::Unsandboxed { .. } => true,
            Backend::Unavailable { .. } => false,
        }
    }

    /// Why there is no sandbox, when there is none.
    pub fn unavailable_reason(&self) -> Option<&str> {
        match &self.backend {
            Backend::Bubblewrap { .. } => None,
            Backend::Unsandboxed { why, .. } | Backend::Unavailable { why } => Some(why),
        }
    }

    /// One line for the start-up log.
    pub fn describe(&self) -> String {
        match &self.backend {
            Backend::Bubblewrap { bwrap, python } => format!(
                "analysis scripts run in a bubblewrap {} sandbox{} with Python {} ({})",
                bwrap.version,
                if bwrap.run_as.is_some() { format!(" as uid {SANDBOX_UID}") } else { String::new() },
                python.version,
                python.executable.display()
            ),
            Backend::Unsandboxed { python, why } => format!(
                "analysis scripts run WITHOUT a sandbox (allowed by [sandbox] allow_unsandboxed; every run needs \
a person's approval) with Python {} ({}): {why}",
                python.version,
                python.executable.display()
            ),
            Backend::Unavailable { why } => format!("analysis scripts are refused: no sandbox ({why}); {INSTALL_HINT}"),
        }
    }

    /// Runs `script` with `files` (name, contents) beside it in its working
    /// directory, `/tmp` in the sandbox.
    ///
    /// A script that ends by itself, whatever its exit code, is an `Ok`; one
    /// stopped at a limit is the matching error, carrying what it printed.
    pub async fn run_python(&self, script: &str, files: &[(String, Vec<u8>)]) -> Result<RunOutput, SandboxError> {
        let (python, bwrap) = match &self.backend {
            Backend::Bubblewrap { bwrap, python } => (python, Some(bwrap)),
            Backend::Unsandboxed { python, .. } => (python, None),
            Backend::Unavailable { why } => return Err(SandboxError::Unavailable(why.clone())),
        };
        if let Some((bad, _)) = files.iter().find(|(name, _)| !valid_file_name(name)) {
            return Err(SandboxError::BadFileName(bad.clone()));
        }
        let workdir = WorkDir::create(bwrap.and_then(|b| b.run_as)).await?;
        workdir.write(SCRIPT_FILE, script.as_bytes()).await?;
        for (name, contents) in files {
            workdir.write(name, contents).await?;
        }
        let limits = self.limits(bwrap.is_some());
        let launch = match bwrap {
            Some(bwrap) => {
                let mut inputs: Vec<String> = files.iter().map(|(name, _)| name.clone()).collect();
                inputs.push(SCRIPT_FILE.to_string());
                let mut command = vec![python.executable.clone().into_os_string()];
                command.extend(python::launcher_args(&limits));
                bwrap.launch(command, workdir.path(), &inputs, &python.roots, SCRATCH_BYTES)
            }
            None => unsandboxed_launch(python, &limits, workdir.path()),
        };
        let wall = Duration::from_secs(self.config.timeout_secs);
        let finished = execute(&launch, wall, self.config.output_cap_bytes)
            .await
            .map_err(SandboxError::io("starting the interpreter"))?;
        drop(workdir);
        tracing::debug!(
            sandboxed = bwrap.is_some(),
            exit_code = finished.exit_code,
            timed_out = finished.timed_out,
            truncated = finished.truncated,
            elapsed_ms = finished.elapsed.as_millis() as u64,
            "analysis script finished"
        );
        self.judge(finished, bwrap.is_some())
    }

    fn limits(&self, sandboxed: bool) -> Limits {
        Limits {
            memory_bytes: self.config.memory_mb.saturating_mul(1024 * 1024),
            cpu_secs: self.config.cpu_secs,
            file_bytes: SCRATCH_BYTES,
            processes: sandboxed.then_some(self.config.max_processes),
        }
    }

    /// Names the limit a run hit, from how it ended. Each sign is specific:
    /// our own timer, the signal of the CPU limit, Python's `MemoryError`
    /// (or ENOMEM), and EAGAIN from fork or a thread start under the process
    /// limit.
    fn judge(&self, finished: Finished, sandboxed: bool) -> Result<RunOutput, SandboxError> {
        let output = Box::new(RunOutput {
            stdout: String::from_utf8_lossy(&finished.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&finished.stderr).into_owned(),
            exit_code: finished.exit_code,
            truncated: finished.truncated,
            elapsed_ms: u64::try_from(finished.elapsed.as_millis()).unwrap_or(u64::MAX),
            sandboxed,
        });
        let failed = finished.exit_code != 0;
        let stderr_lines = || output.stderr.lines().map(str::trim);
        if finished.timed_out {
            return Err(SandboxError::Timeout { secs: self.config.timeout_secs, output });
        }
        if finished.exit_code == 128 + libc::SIGXCPU {
            return Err(SandboxError::CpuLimit { secs: self.config.cpu_secs, output });
        }
        if failed && stderr_lines().any(|l| l.starts_with("MemoryError") || l.contains("[Errno 12]")) {
            return Err(SandboxError::MemoryLimit { mb: self.config.memory_mb, output });
        }
        let process_refused =
            |l: &str| l.starts_with("BlockingIOError: [Errno 11]") || l.contains("can't start new thread");
        if sandboxed && failed && stderr_lines().any(process_refused) {
            return Err(SandboxError::ProcessLimit { max: self.config.max_processes, output });
        }
        Ok(*output)
    }
}

/// Running the launcher directly, as Steward's user, in `workdir`.
fn unsandboxed_launch(python: &Interpreter, limits: &Limits, workdir: &Path) -> Launch {
    let home = workdir.to_string_lossy().into_owned();
    Launch {
        program: python.executable.clone(),
        args: python::launcher_args(limits),
        cwd: Some(workdir.to_path_buf()),
        env: vec![
            ("PATH".into(), "/usr/local/bin:/usr/bin:/bin".into()),
            ("HOME".into(), home.clone()),
            ("TMPDIR".into(), home),
            ("LANG".into(), "C.UTF-8".into()),
        ],
        run_as: None,
        stop: Stop::ProcessGroup,
    }
}

/// A plain name that stays inside the working directory and does not
/// replace the script.
fn valid_file_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 100
        && !name.starts_with('.')
        && name != SCRIPT_FILE
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finished(exit_code: i32, stderr: &str) -> Finished {
        Finished {
            stdout: Vec::new(),
            stderr: stderr.as_bytes().to_vec(),
            exit_code,
            timed_out: false,
            truncated: false,
            elapsed: Duration::from_millis(5),
        }
    }

    fn sandbox() -> Sandbox {
        Sandbox::unchecked(&SandboxConfig::default())
    }

    #[test]
    fn limits_are_named_from_how_the_run_ended() {
        let s = sandbox();
        let memory = s.judge(finished(1, "Traceback (most recent call last):\n  File \"x\"\nMemoryError\n"), true);
        assert!(matches!(memory, Err(SandboxError::MemoryLimit { mb: 512, .. })), "{memory:?}");
        let fork = s.judge(finished(1, "BlockingIOError: [Errno 11] Resource temporarily unavailable\n"), true);
        assert!(matches!(fork, Err(SandboxError::ProcessLimit { max: 32, .. })), "{fork:?}");
        // Outside the sandbox no process limit is set, so EAGAIN is not ours.
        assert!(s.judge(finished(1, "BlockingIOError: [Errno 11] x\n"), false).is_ok());
        let cpu = s.judge(finished(128 + libc::SIGXCPU, ""), true);
        assert!(matches!(cpu, Err(SandboxError::CpuLimit { secs: 10, .. })), "{cpu:?}");
        let mut late = finished(137, "");
        late.timed_out = true;
        let timeout = s.judge(late, true);
        assert!(matches!(timeout, Err(SandboxError::Timeout { secs: 20, .. })), "{timeout:?}");
        // A script's own error is its output, not a limit.
        let own = s.judge(finished(1, "ValueError: MemoryError is not mentioned first\n"), true);
        assert_eq!(own.map(|o| o.exit_code).ok(), Some(1));
    }

    #[test]
    fn input_names_stay_inside_the_directory() {
        for good in ["data.json", "points-1.csv", "a_b"] {
            assert!(valid_file_name(good), "{good}");
        }
        for bad in ["", "../x", "a/b", ".hidden", "script.py", "x y", "é"] {
            assert!(!valid_file_name(bad), "{bad}");
        }
    }

    #[tokio::test]
    async fn an_unchecked_sandbox_refuses_and_says_how_to_get_one() {
        let e = sandbox().run_python("print(1)", &[]).await.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(e.starts_with("refusing to run model-written code: no sandbox"), "{e}");
        assert!(e.contains("apt-get install bubblewrap") && e.contains("allow_unsandboxed = true"), "{e}");
    }
}
