//! The events Steward's callback plugin (`steward_events.py`) prints, one
//! JSON object per line, parsed into types.
//!
//! Parsing is lenient on purpose: an `ansible.cfg` can enable other
//! callbacks that print to the same stdout, and a line that is not one of
//! ours is kept as [`Event::Output`] rather than failing the run.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

/// One thing that happened during a run, in the order it happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    PlaybookStart {
        playbook: String,
    },
    PlayStart {
        name: String,
        hosts: Vec<String>,
    },
    TaskStart {
        task: String,
        action: String,
        handler: bool,
    },
    /// One host's result of one task.
    Result(TaskResult),
    /// A task with `until` is retried on a host.
    Retry {
        host: String,
        task: String,
        attempts: Option<u64>,
    },
    /// The play's host pattern matched no host (a `limit` that names no one).
    NoHostsMatched,
    /// Every host of the play failed; the rest of the play is skipped.
    NoHostsRemaining,
    /// The recap: per host, what its tasks did.
    Stats(BTreeMap<String, HostRecap>),
    /// A stdout line that is not one of the plugin's events.
    Output(String),
}

/// How a task ended on a host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    Ok,
    Changed,
    Failed,
    Skipped,
    Unreachable,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Changed => "changed",
            Status::Failed => "failed",
            Status::Skipped => "skipped",
            Status::Unreachable => "unreachable",
        }
    }

    fn parse(s: &str) -> Option<Status> {
        [Status::Ok, Status::Changed, Status::Failed, Status::Skipped, Status::Unreachable]
            .into_iter()
            .find(|v| v.as_str() == s)
    }
}

/// One host's result of one task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskResult {
    pub host: String,
    pub task: String,
    /// The module, e.g. `ansible.builtin.copy`.
    pub action: String,
    pub status: Status,
    pub msg: Option<String>,
    /// A unified diff of what the task changed (or, in check mode, would).
    pub diff: Option<String>,
    /// Check mode could not simulate the task (a module without check-mode
    /// support, or `command`/`shell`): it was skipped, and the real run will
    /// do something the preview did not show.
    pub check_mode_unsupported: bool,
    /// The task has `no_log`: Ansible hid its result.
    pub censored: bool,
    /// A failure the task's `ignore_errors` let pass.
    pub ignored: bool,
    pub rc: Option<i64>,
    /// The end of the task's stdout and stderr, for failures.
    pub stdout: Option<String>,
    pub stderr: Option<String>,
}

impl TaskResult {
    /// A failure that stops the host (not one `ignore_errors` let pass).
    pub fn is_failure(&self) -> bool {
        match self.status {
            Status::Failed => !self.ignored,
            Status::Unreachable => true,
            Status::Ok | Status::Changed | Status::Skipped => false,
        }
    }
}

/// A host's line of the recap.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HostRecap {
    pub ok: u64,
    pub changed: u64,
    pub failed: u64,
    pub unreachable: u64,
    pub skipped: u64,
    pub rescued: u64,
    pub ignored: u64,
}

impl HostRecap {
    /// `ok=2 changed=1 failed=0 unreachable=0 skipped=0`, as Ansible prints it.
    pub fn line(&self) -> String {
        let mut line = format!(
            "ok={} changed={} failed={} unreachable={} skipped={}",
            self.ok, self.changed, self.failed, self.unreachable, self.skipped
        );
        if self.rescued > 0 {
            line.push_str(&format!(" rescued={}", self.rescued));
        }
        if self.ignored > 0 {
            line.push_str(&format!(" ignored={}", self.ignored));
        }
        line
    }
}

impl Event {
    /// Parses one stdout line.
    pub fn parse(line: &str) -> Event {
        let output = || Event::Output(line.to_string());
        let Ok(Value::Object(map)) = serde_json::from_str::<Value>(line.trim()) else { return output() };
        let Some(kind) = map.get("event").and_then(Value::as_str) else { return output() };
        let text = |key: &str| map.get(key).and_then(Value::as_str).map(str::to_string);
        let flag = |key: &str| map.get(key).and_then(Value::as_bool).unwrap_or(false);
        match kind {
            "playbook_start" => Event::PlaybookStart { playbook: text("playbook").unwrap_or_default() },
            "play_start" => Event::PlayStart {
                name: text("name").unwrap_or_default(),
                hosts: map
                    .get("hosts")
                    .and_then(Value::as_array)
                    .map(|hosts| hosts.iter().filter_map(Value::as_str).map(str::to_string).collect())
                    .unwrap_or_default(),
            },
            "task_start" => Event::TaskStart {
                task: text("task").unwrap_or_default(),
                action: text("action").unwrap_or_default(),
                handler: flag("handler"),
            },
            "result" => {
                let Some(status) = text("status").as_deref().and_then(Status::parse) else { return output() };
                Event::Result(TaskResult {
                    host: text("host").unwrap_or_default(),
                    task: text("task").unwrap_or_default(),
                    action: text("action").unwrap_or_default(),
                    status,
                    msg: text("msg"),
                    diff: text("diff").filter(|d| !d.trim().is_empty()),
                    check_mode_unsupported: flag("check_mode_unsupported"),
                    censored: flag("censored"),
                    ignored: flag("ignored"),
                    rc: map.get("rc").and_then(Value::as_i64),
                    stdout: text("stdout").or_else(|| text("module_stdout")).filter(|s| !s.trim().is_empty()),
                    stderr: text("stderr").or_else(|| text("module_stderr")).filter(|s| !s.trim().is_empty()),
                })
            }
            "retry" => Event::Retry {
                host: text("host").unwrap_or_default(),
                task: text("task").unwrap_or_default(),
                attempts: map.get("attempts").and_then(Value::as_u64),
            },
            "no_hosts_matched" => Event::NoHostsMatched,
            "no_hosts_remaining" => Event::NoHostsRemaining,
            "stats" => Event::Stats(parse_stats(map.get("hosts"))),
            _ => output(),
        }
    }
}

fn parse_stats(hosts: Option<&Value>) -> BTreeMap<String, HostRecap> {
    let Some(hosts) = hosts.and_then(Value::as_object) else { return BTreeMap::new() };
    hosts
        .iter()
        .map(|(host, counts)| {
            let empty = Map::new();
            let counts = counts.as_object().unwrap_or(&empty);
            let n = |key: &str| counts.get(key).and_then(Value::as_u64).unwrap_or(0);
            let recap = HostRecap {
                ok: n("ok"),
                changed: n("changed"),
                failed: n("failed"),
                unreachable: n("unreachable"),
                skipped: n("skipped"),
                rescued: n("rescued"),
                ignored: n("ignored"),
            };
            (host.clone(), recap)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn the_plugin_s_lines_become_events() {
        let line = r#"{"action": "ansible.builtin.copy", "diff": "--- before\n+++ after\n", "event": "result", "host": "localhost", "status": "changed", "task": "Write the file", "task_id": "x"}"#;
        let Event::Result(r) = Event::parse(line) else { panic!() };
        assert_eq!((r.host.as_str(), r.task.as_str(), r.status), ("localhost", "Write the file", Status::Changed));
        assert_eq!(r.diff.as_deref(), Some("--- before\n+++ after\n"));
        let line = r#"{"event": "stats", "hosts": {"localhost": {"changed": 1, "failed": 0, "ok": 2, "skipped": 1, "unreachable": 0}}}"#;
        let Event::Stats(stats) = Event::parse(line) else { panic!() };
        assert_eq!(stats["localhost"].line(), "ok=2 changed=1 failed=0 unreachable=0 skipped=1");
        let line =
            r#"{"event": "result", "status": "skipped", "host": "h", "task": "t", "check_mode_unsupported": true}"#;
        let Event::Result(r) = Event::parse(line) else { panic!() };
        assert!(r.check_mode_unsupported && !r.is_failure());
    }

    #[test]
    fn other_lines_are_kept_as_output() {
        for line in ["PLAY RECAP *****", "{\"event\": \"result\", \"status\": \"weird\"}", "[1, 2]", "{}"] {
            assert_eq!(Event::parse(line), Event::Output(line.to_string()), "{line}");
        }
    }

    #[test]
    fn ignored_failures_do_not_stop_a_host() {
        let line = r#"{"event": "result", "status": "failed", "host": "h", "task": "t", "ignored": true}"#;
        let Event::Result(r) = Event::parse(line) else { panic!() };
        assert!(!r.is_failure());
    }
}
