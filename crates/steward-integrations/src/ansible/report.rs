//! What a run did, and the text people and the model read about it: the
//! check-mode preview of an approval, and the report of a real run.

use std::collections::BTreeMap;
use std::time::Duration;

use super::events::{Event, HostRecap, Status, TaskResult};
use super::Mode;

/// Events kept per run; later ones are counted, not kept. The recap comes
/// from Ansible's own stats, so it is complete either way.
pub(crate) const MAX_EVENTS: usize = 5_000;

/// Lines of one diff shown in a log.
const DIFF_LINES: usize = 60;

/// What one run of a playbook did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunReport {
    /// The playbook, relative to the playbook directory.
    pub playbook: String,
    pub mode: Mode,
    /// In order, at most [`MAX_EVENTS`].
    pub events: Vec<Event>,
    /// Events past [`MAX_EVENTS`], not kept.
    pub events_dropped: usize,
    /// ansible-playbook's exit code: 0 all well, 2 a host failed, 4
    /// unreachable, others an error before or around the run (its message
    /// is in `stderr`); 128 + N when stopped by signal N.
    pub exit_code: i32,
    pub timed_out: bool,
    /// The end of ansible-playbook's stderr: warnings and errors.
    pub stderr: String,
    pub elapsed: Duration,
}

impl RunReport {
    pub fn results(&self) -> impl Iterator<Item = &TaskResult> {
        self.events.iter().filter_map(|e| match e {
            Event::Result(r) => Some(r),
            Event::PlaybookStart { .. }
            | Event::PlayStart { .. }
            | Event::TaskStart { .. }
            | Event::Retry { .. }
            | Event::NoHostsMatched
            | Event::NoHostsRemaining
            | Event::Stats(_)
            | Event::Output(_) => None,
        })
    }

    /// Ansible's recap, or, when the run was stopped before it, one counted
    /// from the results so far.
    pub fn recap(&self) -> BTreeMap<String, HostRecap> {
        if let Some(stats) = self.events.iter().rev().find_map(|e| match e {
            Event::Stats(stats) => Some(stats),
            _ => None,
        }) {
            return stats.clone();
        }
        let mut recap: BTreeMap<String, HostRecap> = BTreeMap::new();
        for r in self.results() {
            let host = recap.entry(r.host.clone()).or_default();
            match r.status {
                Status::Ok => host.ok += 1,
                Status::Changed => {
                    host.ok += 1;
                    host.changed += 1;
                }
                Status::Failed if r.ignored => {
                    host.ok += 1;
                    host.ignored += 1;
                }
                Status::Failed => host.failed += 1,
                Status::Skipped => host.skipped += 1,
                Status::Unreachable => host.unreachable += 1,
            }
        }
        recap
    }

    /// The hosts the run touched.
    pub fn hosts(&self) -> Vec<String> {
        self.recap().into_keys().collect()
    }

    /// Failed (and not ignored) or unreachable results.
    pub fn failures(&self) -> Vec<&TaskResult> {
        self.results().filter(|r| r.is_failure()).collect()
    }

    /// Tasks that check mode could not simulate, each named once.
    pub fn not_previewable(&self) -> Vec<&TaskResult> {
        let mut seen: Vec<&TaskResult> = Vec::new();
        for r in self.results().filter(|r| r.check_mode_unsupported) {
            if !seen.iter().any(|s| s.task == r.task) {
                seen.push(r);
            }
        }
        seen
    }

    /// Ran to its end with every host well.
    pub fn succeeded(&self) -> bool {
        self.exit_code == 0 && !self.timed_out && self.failures().is_empty()
    }

    /// No task result at all: Ansible stopped before running anything (a
    /// syntax error, a missing variable in a play header, bad options).
    pub fn ran_nothing(&self) -> bool {
        self.results().next().is_none()
    }

    /// Ansible's own error line (`ERROR! …`), or the end of stderr.
    pub fn error_line(&self) -> Option<String> {
        let stderr = self.stderr.trim();
        if stderr.is_empty() {
            return None;
        }
        let line = stderr
            .lines()
            .find(|l| l.starts_with("ERROR!") || l.starts_with("[ERROR]"))
            .or_else(|| stderr.lines().rev().find(|l| !l.trim().is_empty()))
            .unwrap_or(stderr);
        Some(line.chars().take(500).collect())
    }

    /// The results by status: (changed, ok, failed or unreachable).
    fn counts(&self) -> (usize, usize, usize) {
        let mut counts = (0, 0, 0);
        for r in self.results() {
            match r.status {
                Status::Changed => counts.0 += 1,
                Status::Ok => counts.1 += 1,
                Status::Failed if r.ignored => counts.1 += 1,
                Status::Failed | Status::Unreachable => counts.2 += 1,
                Status::Skipped => {}
            }
        }
        counts
    }

    /// The recap, one line per host.
    pub fn recap_lines(&self) -> Vec<String> {
        self.recap().iter().map(|(host, recap)| format!("{host}: {}", recap.line())).collect()
    }

    /// The log of the run as a person reads it, at most `max_lines` lines.
    pub fn log_lines(&self, max_lines: usize) -> Vec<String> {
        let mut lines: Vec<String> = Vec::new();
        for event in &self.events {
            if !matches!(event, Event::Stats(_)) {
                lines.extend(event_lines(event, self.mode));
            }
        }
        if self.events_dropped > 0 {
            lines.push(format!("… {} more events not kept", self.events_dropped));
        }
        if lines.len() > max_lines {
            let more = lines.len() - max_lines;
            lines.truncate(max_lines);
            lines.push(format!("… {more} more lines"));
        }
        lines
    }

    /// The approval's one-line summary of a check-mode run.
    pub(crate) fn preview_summary(&self, what: &str, timeout_secs: u64) -> String {
        if self.timed_out {
            let (changed, ok, failed) = self.counts();
            return format!(
                "{what} (check mode did not finish within {timeout_secs} s, so the preview is incomplete: so far \
{changed} changed, {ok} ok, {failed} failed)"
            );
        }
        if self.ran_nothing() && self.exit_code != 0 {
            let why = self.error_line().unwrap_or_else(|| format!("exit code {}", self.exit_code));
            return format!("{what} (check mode could not run it: {why})");
        }
        let hosts = self.hosts().len();
        if hosts == 0 {
            return format!("{what} (check mode: no host matched the plays' hosts and limit, so nothing would run)");
        }
        let (changed, ok, failed) = self.counts();
        let not_previewable = self.not_previewable().len();
        let mut summary = format!(
            "{what} on {hosts} host{} (check mode: {changed} changed, {ok} ok, {failed} failed",
            if hosts == 1 { "" } else { "s" }
        );
        if not_previewable > 0 {
            summary.push_str(&format!(
                "; {not_previewable} task{} not previewable",
                if not_previewable == 1 { "" } else { "s" }
            ));
        }
        summary.push(')');
        summary
    }

    /// The approval's details for a check-mode run: what would change, task
    /// by task, with diffs, then the recap.
    pub(crate) fn preview_details(&self, max_lines: usize) -> String {
        let mut out =
            vec![format!("Check mode (ansible-playbook --check --diff) of {}: nothing was changed.", self.playbook)];
        let not_previewable = self.not_previewable();
        if !not_previewable.is_empty() {
            out.push("Not previewable (check mode cannot simulate these; they will run for real, unseen here):".into());
            for r in not_previewable {
                out.push(format!("  - {} ({})", r.task, r.action));
            }
        }
        if !self.failures().is_empty() {
            out.push(
                "Tasks failed in check mode; a failed host runs none of its later tasks, so those are not shown."
                    .into(),
            );
        }
        out.push(String::new());
        out.extend(self.log_lines(max_lines.saturating_sub(out.len() + 8)));
        out.push(String::new());
        out.push("RECAP (check mode)".into());
        out.extend(self.recap_lines().into_iter().map(|l| format!("  {l}")));
        if self.ran_nothing() && !self.stderr.trim().is_empty() {
            out.push(String::new());
            out.push("ansible-playbook said:".into());
            out.extend(tail_lines(&self.stderr, 20).into_iter().map(|l| format!("  {l}")));
        }
        out.join("\n")
    }

    /// The report of a real run: the outcome first, then the recap and the
    /// failures, then the log, so that a cut keeps what matters.
    pub(crate) fn run_text(&self, headline: &str, max_log_lines: usize) -> String {
        let mut out = vec![headline.to_string()];
        let recap = self.recap_lines();
        if !recap.is_empty() {
            out.push("recap:".into());
            out.extend(recap.into_iter().map(|l| format!("  {l}")));
        }
        let failures = self.failures();
        if !failures.is_empty() {
            out.push("failed:".into());
            for r in failures {
                out.push(format!("  {} / {}: {} — {}", r.host, r.task, r.status.as_str(), failure_text(r)));
            }
        }
        if self.ran_nothing() && !self.stderr.trim().is_empty() {
            out.push("ansible-playbook said:".into());
            out.extend(tail_lines(&self.stderr, 20).into_iter().map(|l| format!("  {l}")));
        }
        out.push("full log:".into());
        out.extend(self.log_lines(max_log_lines).into_iter().map(|l| format!("  {l}")));
        out.join("\n")
    }
}

/// A failure in one line: the message, or the end of the command's output.
fn failure_text(r: &TaskResult) -> String {
    if r.censored {
        return "(output hidden: the task has no_log)".into();
    }
    let mut text = r.msg.clone().unwrap_or_default();
    if let Some(stderr) = r.stderr.as_deref().and_then(|s| s.lines().rev().find(|l| !l.trim().is_empty())) {
        text.push_str(&format!(" (stderr: {})", stderr.trim()));
    }
    if let Some(rc) = r.rc {
        text.push_str(&format!(" (rc {rc})"));
    }
    if text.is_empty() {
        text = "no message".into();
    }
    one_line(&text, 600)
}

/// The lines of the log one event makes, as a person reads them; the
/// recap (`Stats`) is a line per host.
pub fn event_lines(event: &Event, mode: Mode) -> Vec<String> {
    let mut lines = Vec::new();
    match event {
        Event::PlaybookStart { .. } => {}
        Event::PlayStart { name, hosts } => lines.push(format!("PLAY [{name}] (hosts: {})", hosts.join(", "))),
        Event::TaskStart { task, handler, .. } => {
            lines.push(format!("{} [{task}]", if *handler { "HANDLER" } else { "TASK" }))
        }
        Event::Result(r) => result_lines(r, mode, &mut lines),
        Event::Retry { host, task, attempts } => lines.push(format!(
            "  {host}: retrying {task}{}",
            attempts.map(|a| format!(" (attempt {a})")).unwrap_or_default()
        )),
        Event::NoHostsMatched => lines.push("  no host matched the play's hosts (and limit)".into()),
        Event::NoHostsRemaining => lines.push("  no hosts left: every host of the play failed".into()),
        Event::Stats(recap) => {
            lines.push("RECAP".into());
            lines.extend(recap.iter().map(|(host, r)| format!("  {host}: {}", r.line())));
        }
        Event::Output(text) if !text.trim().is_empty() => lines.push(format!("  | {text}")),
        Event::Output(_) => {}
    }
    lines
}

/// The lines of one result: status, message, diff.
fn result_lines(r: &TaskResult, mode: Mode, lines: &mut Vec<String>) {
    if r.censored {
        lines.push(format!("  {}: {} (output hidden: no_log)", r.host, r.status.as_str()));
        return;
    }
    if r.check_mode_unsupported && mode == Mode::Check {
        lines.push(format!(
            "  {}: NOT PREVIEWABLE — check mode cannot simulate {}; it will run for real",
            r.host, r.action
        ));
        return;
    }
    let status = match (r.status, r.ignored) {
        (Status::Failed, true) => "failed (ignored)",
        (status, _) => status.as_str(),
    };
    let message = match r.status {
        Status::Failed | Status::Unreachable => Some(failure_text(r)),
        Status::Ok | Status::Changed | Status::Skipped => r.msg.as_deref().map(|m| one_line(m, 300)),
    };
    match message {
        Some(m) if !m.is_empty() => lines.push(format!("  {}: {status} — {m}", r.host)),
        _ => lines.push(format!("  {}: {status}", r.host)),
    }
    if let Some(diff) = &r.diff {
        let diff_lines: Vec<&str> = diff.lines().collect();
        for line in diff_lines.iter().take(DIFF_LINES) {
            lines.push(format!("      {line}"));
        }
        if diff_lines.len() > DIFF_LINES {
            lines.push(format!("      … {} more diff lines", diff_lines.len() - DIFF_LINES));
        }
    }
}

/// `text` on one line, at most `max` characters.
fn one_line(text: &str, max: usize) -> String {
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= max {
        return flat;
    }
    let mut cut: String = flat.chars().take(max).collect();
    cut.push('…');
    cut
}

fn tail_lines(text: &str, n: usize) -> Vec<String> {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..].iter().map(|l| l.to_string()).collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn report(lines: &[&str], mode: Mode) -> RunReport {
        RunReport {
            playbook: "site.yml".into(),
            mode,
            events: lines.iter().map(|l| Event::parse(l)).collect(),
            events_dropped: 0,
            exit_code: 0,
            timed_out: false,
            stderr: String::new(),
            elapsed: Duration::from_millis(10),
        }
    }

    const CHECK_RUN: &[&str] = &[
        r#"{"event": "play_start", "name": "Web", "hosts": ["web"]}"#,
        r#"{"event": "task_start", "task": "Write config", "action": "ansible.builtin.copy"}"#,
        r#"{"event": "result", "host": "web1", "task": "Write config", "action": "ansible.builtin.copy", "status": "changed", "diff": "--- before\n+++ after\n@@ -0,0 +1 @@\n+port=80\n"}"#,
        r#"{"event": "result", "host": "web2", "task": "Write config", "action": "ansible.builtin.copy", "status": "ok"}"#,
        r#"{"event": "task_start", "task": "Reload", "action": "ansible.builtin.command"}"#,
        r#"{"event": "result", "host": "web1", "task": "Reload", "action": "ansible.builtin.command", "status": "skipped", "msg": "Command would have run if not in check mode", "check_mode_unsupported": true}"#,
        r#"{"event": "result", "host": "web2", "task": "Reload", "action": "ansible.builtin.command", "status": "skipped", "msg": "Command would have run if not in check mode", "check_mode_unsupported": true}"#,
        r#"{"event": "stats", "hosts": {"web1": {"ok": 1, "changed": 1, "skipped": 1}, "web2": {"ok": 1, "skipped": 1}}}"#,
    ];

    #[test]
    fn a_check_run_previews_changes_diffs_and_what_it_cannot_simulate() {
        let r = report(CHECK_RUN, Mode::Check);
        assert_eq!(
            r.preview_summary("run playbook site.yml", 300),
            "run playbook site.yml on 2 hosts (check mode: 1 changed, 1 ok, 0 failed; 1 task not previewable)"
        );
        let details = r.preview_details(200);
        assert!(details.contains("  - Reload (ansible.builtin.command)"), "{details}");
        assert!(details.contains("  web1: changed\n      --- before\n      +++ after"), "{details}");
        assert!(details.contains("+port=80"), "{details}");
        assert!(details.contains("web1: NOT PREVIEWABLE"), "{details}");
        assert!(details.ends_with("RECAP (check mode)\n  web1: ok=1 changed=1 failed=0 unreachable=0 skipped=1\n  web2: ok=1 changed=0 failed=0 unreachable=0 skipped=1"), "{details}");
    }

    #[test]
    fn details_are_capped() {
        let mut lines: Vec<String> = CHECK_RUN.iter().map(|l| l.to_string()).collect();
        for i in 0..500 {
            lines.insert(1, format!(r#"{{"event": "task_start", "task": "t{i}", "action": "debug"}}"#));
        }
        let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
        let details = report(&refs, Mode::Check).preview_details(200);
        assert!(details.lines().count() <= 205, "{}", details.lines().count());
        assert!(details.contains("more lines"));
        assert!(details.contains("RECAP (check mode)"));
    }

    #[test]
    fn a_stopped_run_counts_its_recap_from_the_results_so_far() {
        let mut r = report(&CHECK_RUN[..4], Mode::Apply);
        r.timed_out = true;
        assert_eq!(
            r.recap_lines(),
            [
                "web1: ok=1 changed=1 failed=0 unreachable=0 skipped=0",
                "web2: ok=1 changed=0 failed=0 unreachable=0 skipped=0"
            ]
        );
        assert!(!r.succeeded());
    }

    #[test]
    fn a_limit_that_matches_no_host_is_said_plainly() {
        let r = report(
            &[
                r#"{"event": "play_start", "name": "Web", "hosts": ["web"]}"#,
                r#"{"event": "no_hosts_matched"}"#,
                r#"{"event": "stats", "hosts": {}}"#,
            ],
            Mode::Check,
        );
        assert_eq!(
            r.preview_summary("run playbook site.yml (limit nobody)", 300),
            "run playbook site.yml (limit nobody) (check mode: no host matched the plays' hosts and limit, so nothing would run)"
        );
        assert!(r.preview_details(200).contains("no host matched the play's hosts (and limit)"));
    }

    #[test]
    fn a_run_that_never_started_says_why() {
        let mut r = report(&[], Mode::Check);
        r.exit_code = 4;
        r.stderr = "[WARNING]: something\nERROR! 'hostz' is not a valid attribute for a Play\n\nThe error appears to be in '/x/site.yml'".into();
        assert_eq!(
            r.preview_summary("run playbook site.yml", 300),
            "run playbook site.yml (check mode could not run it: ERROR! 'hostz' is not a valid attribute for a Play)"
        );
    }
}
