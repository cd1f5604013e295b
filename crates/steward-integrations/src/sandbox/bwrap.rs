//! bubblewrap: finding it, and the command line that builds the sandbox.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::process::Command;

use super::process::{Launch, Stop};
use super::python::find_on_path;
use super::SandboxConfig;

/// The uid and gid the sandbox runs as, inside and (when Steward is root)
/// outside: the overflow user `nobody`.
pub const SANDBOX_UID: u32 = 65534;

/// Host directories that make up the sandbox's read-only root: programs and
/// libraries, nothing with data in it. `/home`, `/root`, `/etc` (but for the
/// files below), `/var`, `/run`, `/srv`, `/opt`, Steward's data directory and
/// the working directory all stay out, so a script cannot read keys, tokens
/// or anyone's files and print them into a model's context.
const SYSTEM_DIRS: &[&str] = &["/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"];

/// The few files of `/etc` a program needs to start and tell the time: the
/// dynamic linker's cache (on Debian's multiarch layout libraries are only
/// found through it), the time zone, and the user database without
/// passwords.
const ETC_FILES: &[&str] = &[
    "/etc/ld.so.cache",
    "/etc/ld.so.conf",
    "/etc/ld.so.conf.d",
    "/etc/localtime",
    "/etc/passwd",
    "/etc/group",
    "/etc/nsswitch.conf",
];

/// A bubblewrap that was found, and how to run it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Bwrap {
    pub path: PathBuf,
    /// `0.8.0`.
    pub version: String,
    /// `--disable-userns` (0.8 and newer): nested user namespaces are kernel
    /// attack surface a script has no use for.
    disable_userns: bool,
    /// Who bwrap runs as: `nobody` when Steward is root (see the module
    /// docs), otherwise Steward's own user.
    pub run_as: Option<(u32, u32)>,
}

impl Bwrap {
    /// Finds bwrap (the configured path, else `bwrap` on `PATH`, else
    /// `/usr/bin/bwrap`) and checks that it is new enough. Whether it can
    /// actually build a sandbox here is for the caller's probe run.
    pub async fn find(config: &SandboxConfig, steward_uid: u32) -> Result<Bwrap, String> {
        let path = match &config.bwrap_path {
            Some(path) if path.is_file() => path.clone(),
            Some(path) => {
                return Err(format!(
                    "bubblewrap not found: there is no bwrap at {} ([sandbox] bwrap in steward.toml)",
                    path.display()
                ))
            }
            None => {
                match find_on_path("bwrap").or_else(|| Some(PathBuf::from("/usr/bin/bwrap")).filter(|p| p.is_file())) {
                    Some(path) => path,
                    None => return Err("bubblewrap not found: no bwrap on PATH or at /usr/bin/bwrap".into()),
                }
            }
        };
        let version = version_of(&path).await?;
        let Some((major, minor)) = parse_version(&version) else {
            return Err(format!("{} does not look like bubblewrap (its --version said {version:?})", path.display()));
        };
        if (major, minor) < (0, 7) {
            return Err(format!(
                "bubblewrap {version} at {} is too old: Steward needs 0.7 or newer, to limit the size of the \
sandbox's /tmp; upgrade it",
                path.display()
            ));
        }
        let run_as = (steward_uid == 0).then_some((SANDBOX_UID, SANDBOX_UID));
        Ok(Bwrap { path, version, disable_userns: (major, minor) >= (0, 8), run_as })
    }

    /// The bwrap command that runs `command` (program first) in a fresh
    /// sandbox whose `/tmp` is a `scratch_bytes` tmpfs holding `inputs`
    /// (file names in `workdir`, bound read-only). `python_roots` are the
    /// interpreter's directories, bound read-only where they are not under
    /// the system directories already.
    pub fn launch(
        &self,
        command: Vec<OsString>,
        workdir: &Path,
        inputs: &[String],
        python_roots: &[PathBuf],
        scratch_bytes: u64,
    ) -> Launch {
        let mut a = Args::default();
        // Every namespace: no network (only a loopback of its own), no view
        // of the host's processes, its own hostname, IPC and cgroup view.
        // The user namespace is demanded, not just tried: the process limit
        // counts per user namespace (see the module docs).
        a.flag("--unshare-all").flag("--unshare-user");
        if self.disable_userns {
            a.flag("--disable-userns");
        }
        a.pair("--uid", SANDBOX_UID.to_string()).pair("--gid", SANDBOX_UID.to_string());
        a.pair("--hostname", "steward-sandbox");
        // The sandbox dies with bwrap, and bwrap with Steward; a new session
        // keeps the script away from any terminal.
        a.flag("--die-with-parent").flag("--new-session").pair("--cap-drop", "ALL");

        let mut bound: Vec<PathBuf> = Vec::new();
        for dir in SYSTEM_DIRS {
            let path = Path::new(dir);
            match std::fs::symlink_metadata(path) {
                Ok(meta) if meta.file_type().is_symlink() => {
                    if let Ok(target) = std::fs::read_link(path) {
                        a.triple("--symlink", target, path);
                    }
                }
                Ok(meta) if meta.is_dir() => {
                    a.triple("--ro-bind", path, path);
                    bound.push(path.to_path_buf());
                }
                Ok(_) | Err(_) => {}
            }
        }
        for file in ETC_FILES {
            a.triple("--ro-bind-try", file, file);
        }
        for root in python_roots {
            let covered = bound.iter().any(|b| root.starts_with(b));
            // Binding `/` would undo everything above.
            if !covered && root.parent().is_some() {
                a.triple("--ro-bind", root, root);
                bound.push(root.clone());
            }
        }
        // /dev is bwrap's own small tmpfs; read-only, so it cannot become an
        // unlimited scratch space beside /tmp.
        a.pair("--proc", "/proc").pair("--dev", "/dev").pair("--remount-ro", "/dev");
        // /tmp: memory-backed and capped, so scratch files neither touch the
        // host's disk nor grow without bound.
        a.pair("--size", scratch_bytes.to_string()).pair("--tmpfs", "/tmp");
        for name in inputs {
            a.triple("--ro-bind", workdir.join(name), Path::new("/tmp").join(name));
        }
        // The root bwrap assembled the mounts on is a tmpfs too; seal it.
        a.pair("--remount-ro", "/").pair("--chdir", "/tmp");
        a.flag("--");
        a.0.extend(command);
        Launch {
            program: self.path.clone(),
            args: a.0,
            cwd: None,
            env: sandbox_env(),
            run_as: self.run_as,
            stop: Stop::NamespaceInit,
        }
    }
}

/// The whole environment inside: nothing of Steward's.
fn sandbox_env() -> Vec<(String, String)> {
    [("PATH", "/usr/local/bin:/usr/bin:/bin"), ("HOME", "/tmp"), ("TMPDIR", "/tmp"), ("LANG", "C.UTF-8")]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[derive(Default)]
struct Args(Vec<OsString>);

impl Args {
    fn flag(&mut self, flag: &str) -> &mut Self {
        self.0.push(flag.into());
        self
    }

    fn pair(&mut self, flag: &str, value: impl Into<OsString>) -> &mut Self {
        self.0.push(flag.into());
        self.0.push(value.into());
        self
    }

    fn triple(&mut self, flag: &str, a: impl AsRef<Path>, b: impl AsRef<Path>) -> &mut Self {
        self.0.push(flag.into());
        self.0.push(a.as_ref().as_os_str().to_owned());
        self.0.push(b.as_ref().as_os_str().to_owned());
        self
    }
}

async fn version_of(path: &Path) -> Result<String, String> {
    let mut command = Command::new(path);
    command.arg("--version").kill_on_drop(true).stdin(std::process::Stdio::null());
    match tokio::time::timeout(Duration::from_secs(5), command.output()).await {
        Ok(Ok(out)) if out.status.success() => {
            Ok(String::from_utf8_lossy(&out.stdout).trim().trim_start_matches("bubblewrap").trim().to_string())
        }
        Ok(Ok(out)) => Err(format!(
            "{} --version failed ({}): {}",
            path.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )),
        Ok(Err(e)) => Err(format!("{} cannot be started: {e}", path.display())),
        Err(_) => Err(format!("{} --version did not answer within 5 s", path.display())),
    }
}

/// `0.8.0` → `(0, 8)`.
fn parse_version(version: &str) -> Option<(u32, u32)> {
    let mut parts = version.split('.');
    let major = parts.next()?.trim().parse().ok()?;
    let minor = parts.next()?.trim().parse().ok()?;
    Some((major, minor))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_read_as_major_and_minor() {
        assert_eq!(parse_version("0.8.0"), Some((0, 8)));
        assert_eq!(parse_version("0.11.1"), Some((0, 11)));
        assert_eq!(parse_version("bogus"), None);
    }

    #[test]
    fn the_command_line_hides_the_host_and_binds_inputs_read_only_into_a_sized_tmp() {
        let bwrap = Bwrap {
            path: PathBuf::from("/usr/bin/bwrap"),
            version: "0.8.0".into(),
            disable_userns: true,
            run_as: Some((SANDBOX_UID, SANDBOX_UID)),
        };
        let launch = bwrap.launch(
            vec!["/usr/bin/python3".into(), "-c".into(), "pass".into()],
            Path::new("/tmp/steward-sandbox-x"),
            &["script.py".to_string()],
            &[PathBuf::from("/usr"), PathBuf::from("/opt/python"), PathBuf::from("/")],
            1 << 20,
        );
        let args: Vec<String> = launch.args.iter().map(|a| a.to_string_lossy().into_owned()).collect();
        let line = args.join(" ");
        for expected in [
            "--unshare-all --unshare-user --disable-userns",
            "--die-with-parent --new-session --cap-drop ALL",
            "--ro-bind /opt/python /opt/python",
            "--size 1048576 --tmpfs /tmp",
            "--ro-bind /tmp/steward-sandbox-x/script.py /tmp/script.py",
            "--remount-ro / --chdir /tmp -- /usr/bin/python3 -c pass",
        ] {
            assert!(line.contains(expected), "{expected} missing from {line}");
        }
        assert!(!line.contains("--ro-bind / /"), "{line}");
        assert!(!line.contains("/home") && !line.contains("/root"), "{line}");
        assert_eq!(launch.run_as, Some((SANDBOX_UID, SANDBOX_UID)));
        assert!(launch.env.iter().any(|(k, v)| k == "HOME" && v == "/tmp"));
    }
}
