//! Finding a Python 3 interpreter, and the launcher that sets a script's
//! limits before the script starts.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::process::Command;

use super::SandboxConfig;

/// A Python interpreter and the directories it needs at run time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Interpreter {
    /// What to execute: `sys.executable` as the interpreter reports it (the
    /// real binary, not a pyenv shim or another wrapper script).
    pub executable: PathBuf,
    /// `3.11.7`.
    pub version: String,
    /// The interpreter's prefixes (`sys.prefix`, `sys.base_prefix` …) and the
    /// directory of the real binary: what the sandbox must bind read-only for
    /// the interpreter to find its standard library.
    pub roots: Vec<PathBuf>,
}

/// Asks the interpreter where it lives. Runs on the host, outside any
/// sandbox: this is Steward's own code, and a wrapper such as a pyenv shim
/// may need the environment to find the real interpreter.
const INFO_SCRIPT: &str = "import json, sys; print(json.dumps([sys.executable, sys.version.split()[0], \
sorted({sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix})]))";

/// How long the interpreter may take to answer: a pyenv shim starts a few
/// shell processes before Python itself.
const INFO_TIMEOUT: Duration = Duration::from_secs(15);

/// Interpreters worth trying, in order: the configured one alone, otherwise
/// `python3` on `PATH` and then the usual system locations. The system ones
/// matter when Steward runs as root: a `python3` under `/root` (pyenv) is
/// out of reach of the unprivileged user the sandbox runs as.
pub(crate) fn candidates(config: &SandboxConfig) -> Vec<PathBuf> {
    if let Some(python) = &config.python {
        return vec![python.clone()];
    }
    let mut out: Vec<PathBuf> = Vec::new();
    if let Some(on_path) = find_on_path("python3") {
        out.push(on_path);
    }
    for fixed in ["/usr/bin/python3", "/usr/local/bin/python3"] {
        let fixed = PathBuf::from(fixed);
        if fixed.is_file() && !out.contains(&fixed) {
            out.push(fixed);
        }
    }
    out
}

/// Runs `candidate` once to learn its real executable and prefixes.
pub(crate) async fn inspect(candidate: &Path) -> Result<Interpreter, String> {
    let mut command = Command::new(candidate);
    command.args(["-I", "-c", INFO_SCRIPT]).kill_on_drop(true).stdin(std::process::Stdio::null());
    let output = match tokio::time::timeout(INFO_TIMEOUT, command.output()).await {
        Ok(Ok(output)) => output,
        Ok(Err(e)) => return Err(format!("{} cannot be started: {e}", candidate.display())),
        Err(_) => return Err(format!("{} did not answer within {}s", candidate.display(), INFO_TIMEOUT.as_secs())),
    };
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        return Err(format!("{} failed ({}): {}", candidate.display(), output.status, stderr.trim()));
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let parsed: Result<(String, String, Vec<String>), _> = serde_json::from_str(stdout.trim());
    let Ok((executable, version, prefixes)) = parsed else {
        return Err(format!("{} is not a Python 3 interpreter (it printed {:?})", candidate.display(), stdout.trim()));
    };
    if !version.starts_with("3.") {
        return Err(format!("{} is Python {version}; Python 3 is needed", candidate.display()));
    }
    let executable = PathBuf::from(executable);
    let mut roots: Vec<PathBuf> = prefixes.into_iter().map(PathBuf::from).collect();
    if let Some(dir) = std::fs::canonicalize(&executable).ok().and_then(|real| real.parent().map(Path::to_path_buf)) {
        roots.push(dir);
    }
    roots.sort();
    roots.dedup();
    Ok(Interpreter { executable, version, roots })
}

/// The first `name` on `PATH` that is a file.
pub(crate) fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join(name)).find(|p| p.is_file())
}

/// The limits the launcher applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Limits {
    pub memory_bytes: u64,
    pub cpu_secs: u64,
    pub file_bytes: u64,
    /// `None` outside the sandbox: there the count would be of every process
    /// of Steward's user, not of the script's (see the module docs).
    pub processes: Option<u64>,
}

/// The arguments that make `python` set `limits` on itself and then become
/// the script (`script.py` in the working directory).
///
/// Why a launcher rather than `setrlimit` in Steward before the exec: the
/// process limit has to be set inside the sandbox's own user namespace, so
/// that the kernel counts only the sandbox's processes against it (set on
/// `bwrap` from outside, it would count every process of the user bwrap runs
/// as). Setting all limits in one place keeps them together. The launcher
/// lowers soft and hard limits both, so the script cannot raise them again,
/// and replaces itself with a fresh interpreter, so the script is
/// `__main__` in a clean process.
pub(crate) fn launcher_args(limits: &Limits) -> Vec<OsString> {
    let processes = match limits.processes {
        Some(n) => format!("cap(resource.RLIMIT_NPROC, {n}, {n})\n"),
        None => String::new(),
    };
    let source = format!(
        "import os, resource, sys\n\
def cap(kind, soft, hard):\n    \
_, current = resource.getrlimit(kind)\n    \
if current != resource.RLIM_INFINITY:\n        \
soft, hard = min(soft, current), min(hard, current)\n    \
resource.setrlimit(kind, (soft, hard))\n\
cap(resource.RLIMIT_AS, {mem}, {mem})\n\
cap(resource.RLIMIT_CPU, {cpu}, {cpu} + 1)\n\
cap(resource.RLIMIT_FSIZE, {fsize}, {fsize})\n\
cap(resource.RLIMIT_CORE, 0, 0)\n\
{processes}\
os.execv(sys.executable, [sys.executable, '-I', '-B', '-u', 'script.py'])\n",
        mem = limits.memory_bytes,
        cpu = limits.cpu_secs,
        fsize = limits.file_bytes,
    );
    ["-I", "-B", "-c"].into_iter().map(OsString::from).chain([OsString::from(source)]).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_launcher_sets_every_limit_and_the_process_limit_only_when_asked() {
        let limits = Limits { memory_bytes: 1 << 28, cpu_secs: 3, file_bytes: 1 << 20, processes: Some(16) };
        let args = launcher_args(&limits);
        let source = args.last().and_then(|s| s.to_str()).unwrap_or_default().to_string();
        assert!(source.contains("RLIMIT_AS, 268435456, 268435456"), "{source}");
        assert!(source.contains("RLIMIT_CPU, 3, 3 + 1"), "{source}");
        assert!(source.contains("RLIMIT_NPROC, 16, 16"), "{source}");
        assert!(source.contains("'script.py'"), "{source}");
        let without = launcher_args(&Limits { processes: None, ..limits });
        let source = without.last().and_then(|s| s.to_str()).unwrap_or_default().to_string();
        assert!(!source.contains("NPROC"), "{source}");
    }
}
