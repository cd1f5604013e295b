//! `[ssh]`: the hosts the infra agent may run commands on, and how; see
//! `steward_integrations::ssh` for how the client is started.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use steward_integrations::ssh::{Allowlist, SshConfig, SshHost};

use super::Problem;

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SshSection {
    /// Steward's own known_hosts file; default `<data_dir>/ssh/known_hosts`.
    pub known_hosts: Option<PathBuf>,
    /// Accept and record the key of a host not yet in known_hosts. Off by
    /// default: a first connection could be to an impostor. A key that
    /// changed is refused either way.
    pub trust_on_first_use: bool,
    pub connect_timeout_secs: u64,
    /// The wall clock of one command, connecting included.
    pub command_timeout_secs: u64,
    /// Bytes of stdout, and of stderr, that are kept.
    pub output_cap_bytes: usize,
    /// Read-only command patterns besides the built-in ones (`uptime`,
    /// `df -h`, `systemctl status <unit>`, …), e.g. `zpool status [-v]`.
    pub readonly_commands: Vec<String>,
    /// The hosts, by the name the tools use.
    pub hosts: BTreeMap<String, SshHostSection>,
}

impl Default for SshSection {
    fn default() -> Self {
        SshSection {
            known_hosts: None,
            trust_on_first_use: false,
            connect_timeout_secs: SshConfig::DEFAULT_CONNECT_TIMEOUT_SECS,
            command_timeout_secs: SshConfig::DEFAULT_COMMAND_TIMEOUT_SECS,
            output_cap_bytes: SshConfig::DEFAULT_OUTPUT_CAP_BYTES,
            readonly_commands: Vec::new(),
            hosts: BTreeMap::new(),
        }
    }
}

/// `[ssh.hosts.<name>]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SshHostSection {
    /// A host name or IP address.
    pub host: String,
    #[serde(default = "default_port")]
    pub port: u16,
    pub user: String,
    /// The private key to log in with (an absolute path).
    pub identity_file: PathBuf,
}

fn default_port() -> u16 {
    22
}

impl SshSection {
    /// The integration's configuration, with known_hosts defaulted into
    /// the data directory.
    pub fn ssh_config(&self, data_dir: &Path) -> SshConfig {
        let mut config =
            SshConfig::new(self.known_hosts.clone().unwrap_or_else(|| data_dir.join("ssh").join("known_hosts")));
        config.trust_on_first_use = self.trust_on_first_use;
        config.connect_timeout_secs = self.connect_timeout_secs;
        config.command_timeout_secs = self.command_timeout_secs;
        config.output_cap_bytes = self.output_cap_bytes;
        config.readonly_commands = self.readonly_commands.clone();
        config.hosts = self
            .hosts
            .iter()
            .map(|(name, h)| {
                let host = SshHost {
                    host: h.host.clone(),
                    port: h.port,
                    user: h.user.clone(),
                    identity_file: h.identity_file.clone(),
                };
                (name.clone(), host)
            })
            .collect();
        config
    }

    pub fn validate(&self, p: &mut Vec<Problem>) {
        let ranges: [(&str, u64, u64, u64, &str); 3] = [
            ("ssh.connect_timeout_secs", self.connect_timeout_secs, 1, 300, "the default is 10"),
            ("ssh.command_timeout_secs", self.command_timeout_secs, 1, 3_600, "the default is 60"),
            ("ssh.output_cap_bytes", self.output_cap_bytes as u64, 1_024, 16 * 1024 * 1024, "the default is 65536"),
        ];
        for (key, value, min, max, default) in ranges {
            if !(min..=max).contains(&value) {
                p.push(Problem {
                    key: key.into(),
                    message: format!("{value} is outside {min}–{max}"),
                    fix: format!("use a number from {min} to {max}; {default}"),
                });
            }
        }
        if let Some(path) = &self.known_hosts {
            if path.as_os_str().is_empty() {
                p.push(Problem {
                    key: "ssh.known_hosts".into(),
                    message: "the path is empty".into(),
                    fix: "name a file, or leave it out for <data_dir>/ssh/known_hosts".into(),
                });
            }
        }
        for (i, pattern) in self.readonly_commands.iter().enumerate() {
            if let Err(e) = Allowlist::new(std::slice::from_ref(pattern)) {
                p.push(Problem {
                    key: format!("ssh.readonly_commands[{i}]"),
                    message: e.reason,
                    fix: "write the program and its arguments, with <n>, <unit>, <name> or <path> for an argument \
and [ … ] around optional words, e.g. \"zpool status [-v]\""
                        .into(),
                });
            }
        }
        for (name, host) in &self.hosts {
            host_problems(name, host, p);
        }
    }
}

fn host_problems(name: &str, h: &SshHostSection, p: &mut Vec<Problem>) {
    let key = |field: &str| format!("ssh.hosts.{name}.{field}");
    let name_ok = !name.is_empty()
        && name.len() <= 64
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.');
    if !name_ok {
        p.push(Problem {
            key: format!("ssh.hosts.{name}"),
            message: "a host's name is what the tools call it, and must be letters, digits, '-', '_' or '.'".into(),
            fix: "rename the section, e.g. [ssh.hosts.nas]".into(),
        });
    }
    let host_ok = !h.host.is_empty()
        && !h.host.starts_with('-')
        && h.host.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':' | '%'));
    if !host_ok {
        p.push(Problem {
            key: key("host"),
            message: format!("'{}' is not a host name or IP address", h.host),
            fix: "use a name or address only, e.g. nas.lan or 192.168.1.10 (the user and port have their own keys)"
                .into(),
        });
    }
    if h.port == 0 {
        p.push(Problem {
            key: key("port"),
            message: "port 0 is not allowed".into(),
            fix: "use the port sshd listens on, usually 22 (the default)".into(),
        });
    }
    let user_ok = !h.user.is_empty()
        && !h.user.starts_with('-')
        && h.user.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
    if !user_ok {
        p.push(Problem {
            key: key("user"),
            message: format!("'{}' is not a user name", h.user),
            fix: "use the account to log in as, e.g. user = \"admin\"".into(),
        });
    }
    if !h.identity_file.is_absolute() {
        p.push(Problem {
            key: key("identity_file"),
            message: format!("'{}' is not an absolute path", h.identity_file.display()),
            fix: "give the full path of the private key, e.g. /var/lib/steward/.ssh/id_ed25519 (no ~)".into(),
        });
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use std::path::Path;

    use super::super::{parse_file, Config, Overrides};
    use super::*;

    fn resolve(text: &str) -> Result<Config, super::super::ConfigError> {
        let file = parse_file(text, Path::new("steward.toml"))?;
        Config::resolve(file, None, &BTreeMap::<String, String>::new(), &Overrides::default())
    }

    #[test]
    fn without_an_ssh_section_there_are_no_hosts_and_known_hosts_is_in_the_data_dir() {
        let c = resolve("").unwrap();
        let ssh = c.file.ssh.ssh_config(&c.file.storage.data_dir);
        assert!(ssh.hosts.is_empty() && !ssh.trust_on_first_use);
        assert_eq!(ssh.known_hosts, PathBuf::from("./steward-data/ssh/known_hosts"));
        assert_eq!(ssh, SshConfig::new(PathBuf::from("./steward-data/ssh/known_hosts")));
    }

    #[test]
    fn hosts_and_settings_are_read() {
        let c = resolve(
            "[ssh]\ntrust_on_first_use = true\ncommand_timeout_secs = 30\nknown_hosts = \"/etc/steward/known_hosts\"\n\
readonly_commands = [\"zpool status [-v]\"]\n[ssh.hosts.nas]\nhost = \"192.168.1.10\"\nuser = \"admin\"\n\
identity_file = \"/var/lib/steward/id_ed25519\"\n[ssh.hosts.pi]\nhost = \"pi.lan\"\nport = 2222\nuser = \"pi\"\n\
identity_file = \"/k\"\n",
        )
        .unwrap();
        let ssh = c.file.ssh.ssh_config(Path::new("/data"));
        assert!(ssh.trust_on_first_use);
        assert_eq!(ssh.command_timeout_secs, 30);
        assert_eq!(ssh.known_hosts, PathBuf::from("/etc/steward/known_hosts"));
        assert_eq!(ssh.readonly_commands, ["zpool status [-v]"]);
        assert_eq!(ssh.hosts["nas"].port, 22);
        assert_eq!(ssh.hosts["pi"].display(), "pi@pi.lan:2222");
    }

    #[test]
    fn bad_entries_name_their_key_and_the_fix() {
        let e = resolve(
            "[ssh]\noutput_cap_bytes = 10\nreadonly_commands = [\"uptime\", \"ls <file>\"]\n[ssh.hosts.\"my nas\"]\n\
host = \"admin@nas\"\nport = 0\nuser = \"-oProxyCommand=x\"\nidentity_file = \"~/.ssh/id\"\n",
        )
        .unwrap_err();
        let keys: Vec<&str> = e.0.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "ssh.output_cap_bytes",
                "ssh.readonly_commands[1]",
                "ssh.hosts.my nas",
                "ssh.hosts.my nas.host",
                "ssh.hosts.my nas.port",
                "ssh.hosts.my nas.user",
                "ssh.hosts.my nas.identity_file"
            ],
            "{e}"
        );
        assert!(e.to_string().contains("unknown placeholder `<file>`"), "{e}");
        let e = resolve("[ssh.hosts.nas]\nhost = \"nas\"\nuser = \"a\"\n").unwrap_err().to_string();
        assert!(e.contains("identity_file"), "{e}");
        let e = resolve("[ssh]\ntrust_on_first_contact = true\n").unwrap_err().to_string();
        assert!(e.contains("unknown field `trust_on_first_contact`"), "{e}");
    }
}
