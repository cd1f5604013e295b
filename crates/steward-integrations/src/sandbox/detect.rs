//! Finding out, once at start-up, where scripts can run.

use std::time::Duration;

use super::bwrap::{Bwrap, SANDBOX_UID};
use super::process::{self, execute};
use super::python::{self, Interpreter};
use super::workdir::WorkDir;
use super::{Backend, Sandbox, SandboxConfig};

impl Sandbox {
    /// Finds bwrap and a Python 3, and runs a trivial command and then a
    /// trivial script in a real sandbox: a bwrap that exists but cannot
    /// build a sandbox here (no user namespaces, a seccomp profile that
    /// forbids them) counts as missing, with bwrap's own words as the reason.
    pub async fn detect(config: &SandboxConfig) -> Sandbox {
        let uid = process::effective_uid();
        let mut pythons = Vec::new();
        let mut python_problems = Vec::new();
        for candidate in python::candidates(config) {
            match python::inspect(&candidate).await {
                Ok(found) if !pythons.contains(&found) => pythons.push(found),
                Ok(_) => {}
                Err(problem) => python_problems.push(problem),
            }
        }
        let why = match find_sandbox(config, uid, &pythons, &mut python_problems).await {
            Ok(backend) => return Sandbox { config: config.clone(), backend },
            Err(why) => why,
        };
        if pythons.is_empty() {
            let problems =
                if python_problems.is_empty() { "none on PATH".to_string() } else { python_problems.join("; ") };
            let why = format!(
                "{why}; and no Python 3 interpreter was found ({problems}): install python3 or set [sandbox] python"
            );
            return Sandbox { config: config.clone(), backend: Backend::Unavailable { why } };
        }
        Sandbox::without_bwrap(config, pythons, why)
    }

    fn without_bwrap(config: &SandboxConfig, pythons: Vec<Interpreter>, why: String) -> Sandbox {
        let backend = match pythons.into_iter().next() {
            Some(python) if config.allow_unsandboxed => Backend::Unsandboxed { python, why },
            Some(_) | None => Backend::Unavailable { why },
        };
        Sandbox { config: config.clone(), backend }
    }
}

/// The sandbox, if bwrap can build one here and one of `pythons` starts
/// in it; else why not. Python problems are added to `python_problems`.
async fn find_sandbox(
    config: &SandboxConfig,
    uid: u32,
    pythons: &[Interpreter],
    python_problems: &mut Vec<String>,
) -> Result<Backend, String> {
    let bwrap = Bwrap::find(config, uid).await?;
    probe_bwrap(&bwrap).await?;
    for python in pythons {
        match probe_python(config, &bwrap, python).await {
            Ok(()) => return Ok(Backend::Bubblewrap { bwrap, python: python.clone() }),
            Err(problem) => python_problems.push(problem),
        }
    }
    let problems = if python_problems.is_empty() { "none found".to_string() } else { python_problems.join("; ") };
    let who = if uid == 0 { format!(" (it runs as uid {SANDBOX_UID} when Steward is root)") } else { String::new() };
    Err(format!(
        "bubblewrap {} works, but no Python 3 runs inside the sandbox{who}: {problems}. Set [sandbox] python in \
steward.toml to an interpreter outside private directories, e.g. /usr/bin/python3",
        bwrap.version
    ))
}

/// Checks that bwrap can build a sandbox here at all.
async fn probe_bwrap(bwrap: &Bwrap) -> Result<(), String> {
    let workdir = WorkDir::create(bwrap.run_as).await.map_err(|e| e.to_string())?;
    let launch = bwrap.launch(vec!["true".into()], workdir.path(), &[], &[], 1024 * 1024);
    let finished = execute(&launch, Duration::from_secs(10), 4096)
        .await
        .map_err(|e| format!("bwrap at {} cannot be started: {e}", bwrap.path.display()))?;
    if finished.exit_code == 0 && !finished.timed_out {
        return Ok(());
    }
    let said = String::from_utf8_lossy(&finished.stderr).trim().to_string();
    let namespaces = if said.contains("namespace") || said.contains("Operation not permitted") {
        " (unprivileged user namespaces look disabled: check the sysctls user.max_user_namespaces and \
kernel.unprivileged_userns_clone, an AppArmor userns restriction, or a container's seccomp profile)"
    } else {
        ""
    };
    Err(format!(
        "bubblewrap {} at {} cannot build a sandbox here: {}{namespaces}",
        bwrap.version,
        bwrap.path.display(),
        if said.is_empty() { format!("exit code {}", finished.exit_code) } else { said }
    ))
}

/// Checks that `python` starts inside the sandbox with the run's limits.
async fn probe_python(config: &SandboxConfig, bwrap: &Bwrap, python: &Interpreter) -> Result<(), String> {
    let probe = Sandbox {
        config: SandboxConfig { timeout_secs: config.timeout_secs.max(10), ..config.clone() },
        backend: Backend::Bubblewrap { bwrap: bwrap.clone(), python: python.clone() },
    };
    match probe.run_python("print('ok')", &[]).await {
        Ok(out) if out.exit_code == 0 && out.stdout.trim() == "ok" => Ok(()),
        Ok(out) => Err(format!(
            "{} (Python {}) does not start in the sandbox: {}",
            python.executable.display(),
            python.version,
            out.stderr.trim()
        )),
        Err(e) => Err(format!(
            "{} (Python {}) does not start in the sandbox: {e}",
            python.executable.display(),
            python.version
        )),
    }
}
