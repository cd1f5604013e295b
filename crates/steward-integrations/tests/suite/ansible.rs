//! The Ansible tools against a real ansible-core (installed by
//! `scripts/ansible.sh`), running the playbooks of
//! `tests/fixtures/ansible` on this machine with `connection: local`.
//!
//! Without `STEWARD_TEST_ANSIBLE_PLAYBOOK` (the path of ansible-playbook)
//! these tests print why and pass, unless `STEWARD_REQUIRE_ANSIBLE=1` (set
//! by `scripts/test.sh`), in which case they fail.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use steward_core::{Tool, ToolContext, ToolError};
use steward_integrations::ansible::{
    ansible_tools, Ansible, AnsibleConfig, Event, Mode, RunRequest, Status, LIST_HOSTS, LIST_PLAYBOOKS, RUN_PLAYBOOK,
};

const PLAYBOOK_VAR: &str = "STEWARD_TEST_ANSIBLE_PLAYBOOK";
const REQUIRE_VAR: &str = "STEWARD_REQUIRE_ANSIBLE";

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/ansible")
}

/// ansible-playbook, or `None` (after saying why) when it is not here and
/// not required.
fn ansible_playbook() -> Option<PathBuf> {
    match std::env::var_os(PLAYBOOK_VAR).filter(|p| !p.is_empty()) {
        Some(path) => Some(PathBuf::from(path)),
        None if std::env::var(REQUIRE_VAR).as_deref() == Ok("1") => {
            panic!(
                "{REQUIRE_VAR}=1 but {PLAYBOOK_VAR} is not set; run `bash scripts/ansible.sh` and export its last line"
            )
        }
        None => {
            eprintln!(
                "skipping: {PLAYBOOK_VAR} is not set (`bash scripts/ansible.sh` installs ansible-core and prints the \
path); set {REQUIRE_VAR}=1 to make this a failure"
            );
            None
        }
    }
}

fn config(ansible_playbook: PathBuf, timeout_secs: u64) -> AnsibleConfig {
    AnsibleConfig {
        playbook_dir: Some(fixtures().join("playbooks")),
        inventory: Some(fixtures().join("inventory.ini")),
        ansible_playbook: Some(ansible_playbook),
        timeout_secs,
        check_timeout_secs: 60,
    }
}

/// `ansible_list_playbooks`, `ansible_list_hosts`, `ansible_run_playbook`.
type Tools = (Arc<dyn Tool>, Arc<dyn Tool>, Arc<dyn Tool>);

/// The three tools, or `None` when Ansible is not here.
fn tools(timeout_secs: u64) -> Option<Tools> {
    let ansible = Arc::new(Ansible::new(config(ansible_playbook()?, timeout_secs)));
    let mut tools = ansible_tools(ansible).into_iter();
    let (list_playbooks, list_hosts, run) = (tools.next()?, tools.next()?, tools.next()?);
    assert_eq!(
        [list_playbooks.spec().name.as_str(), list_hosts.spec().name.as_str(), run.spec().name.as_str()],
        [LIST_PLAYBOOKS, LIST_HOSTS, RUN_PLAYBOOK]
    );
    Some((list_playbooks, list_hosts, run))
}

fn ctx() -> ToolContext {
    ToolContext {
        turn_id: "t".into(),
        conversation_id: "c".into(),
        agent: "infra".into(),
        call_id: "1".into(),
        approval: None,
        progress: None,
    }
}

/// A directory of its own for each test's files; removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Scratch {
        let dir = std::env::temp_dir().join(format!("steward-ansible-test-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir(&dir).unwrap();
        Scratch(dir)
    }

    fn file(&self, name: &str) -> String {
        self.0.join(name).to_string_lossy().into_owned()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn failed(result: Result<String, ToolError>) -> String {
    match result {
        Err(ToolError::Failed(m)) => m,
        other => panic!("expected a failure, got {other:?}"),
    }
}

fn invalid(result: Result<impl std::fmt::Debug, ToolError>) -> String {
    match result {
        Err(ToolError::InvalidArguments(m)) => m,
        other => panic!("expected invalid arguments, got {other:?}"),
    }
}

/// Processes on the host whose command line holds `marker`.
fn processes_with(marker: &str) -> Vec<String> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
        .filter(|c| c.contains(marker))
        .collect()
}

#[tokio::test]
async fn check_mode_previews_the_diff_and_changes_nothing_then_the_approved_run_writes_the_file() {
    let Some((_, _, run)) = tools(120) else { return };
    let scratch = Scratch::new();
    let dest = scratch.file("greeting.txt");
    let args = json!({"playbook": "write_file.yml", "extra_vars": {"dest": dest, "content": "hello from steward"}});

    let preview = run.preview(&args, &ctx()).await.unwrap();
    assert_eq!(
        preview.summary, "run playbook write_file.yml on 1 host (check mode: 1 changed, 1 ok, 0 failed)",
        "{preview:#?}"
    );
    assert_eq!(preview.targets.len(), 1);
    assert_eq!(preview.targets[0].id, "localhost");
    let details = preview.details.unwrap();
    assert!(details.contains("TASK [Write the file]\n  localhost: changed\n"), "{details}");
    assert!(details.contains(&format!("+++ after: {dest}")), "{details}");
    assert!(details.contains("+hello from steward"), "{details}");
    assert!(details.contains("localhost: ok=2 changed=1 failed=0 unreachable=0 skipped=0"), "{details}");
    assert!(!Path::new(&dest).exists(), "check mode wrote the file");

    let out = run.call(args.clone(), &ctx()).await.unwrap();
    assert!(out.starts_with("run playbook write_file.yml on 1 host: succeeded in "), "{out}");
    assert!(out.contains("recap:\n  localhost: ok=2 changed=1 failed=0 unreachable=0 skipped=0\n"), "{out}");
    assert!(out.contains("full log:\n  PLAY [Write the greeting] (hosts: local)"), "{out}");
    assert!(out.contains("+hello from steward"), "{out}");
    assert_eq!(std::fs::read_to_string(&dest).unwrap(), "hello from steward\n");

    // A second run finds nothing to do.
    let again = run.call(args, &ctx()).await.unwrap();
    assert!(again.contains("localhost: ok=2 changed=0 failed=0"), "{again}");
}

#[tokio::test]
async fn tasks_check_mode_cannot_simulate_are_flagged_not_previewable() {
    let Some((_, _, run)) = tools(120) else { return };
    let scratch = Scratch::new();
    let dest = scratch.file("stamped.txt");
    let args = json!({"playbook": "with_command.yml", "extra_vars": {"dest": dest, "content": "x"}});
    let preview = run.preview(&args, &ctx()).await.unwrap();
    assert_eq!(
        preview.summary,
        "run playbook with_command.yml on 1 host (check mode: 1 changed, 0 ok, 0 failed; 1 task not previewable)"
    );
    let details = preview.details.unwrap();
    assert!(details.contains("Not previewable (check mode cannot simulate these"), "{details}");
    assert!(details.contains("  - Stamp the file (ansible.builtin.command)"), "{details}");
    assert!(details.contains("TASK [Stamp the file]\n  localhost: NOT PREVIEWABLE"), "{details}");
    assert!(!Path::new(&dest).exists() && !Path::new(&format!("{dest}.stamp")).exists());

    let out = run.call(args, &ctx()).await.unwrap();
    assert!(out.contains("localhost: ok=2 changed=2 failed=0"), "{out}");
    assert!(Path::new(&format!("{dest}.stamp")).exists(), "the command did not run for real");
}

#[tokio::test]
async fn a_failing_task_is_reported_per_host_with_its_message() {
    let Some(ansible_playbook) = ansible_playbook() else { return };
    let ansible = Ansible::new(config(ansible_playbook, 120));
    let request = RunRequest { playbook: "failing.yml".into(), ..RunRequest::default() };
    let report = ansible.run(&request, Mode::Apply, &mut |_| {}).await.unwrap();
    assert!(!report.succeeded());
    assert_eq!(report.exit_code, 2, "{report:#?}");
    let failures = report.failures();
    assert_eq!(failures.len(), 1, "{failures:#?}");
    assert_eq!((failures[0].host.as_str(), failures[0].task.as_str()), ("localhost", "Require free space"));
    assert_eq!(failures[0].msg.as_deref(), Some("only 1% free on /srv; free some space first"));
    assert!(!report.results().any(|r| r.task == "Never reached"));

    let (_, _, run) = tools(120).unwrap();
    let message = failed(run.call(json!({"playbook": "failing.yml"}), &ctx()).await);
    assert!(message.starts_with("run playbook failing.yml on 1 host: FAILED on localhost (exit code 2)"), "{message}");
    assert!(message.contains("recap:\n  localhost: ok=1 changed=0 failed=1 unreachable=0 skipped=0"), "{message}");
    assert!(
        message.contains(
            "failed:\n  localhost / Require free space: failed — only 1% free on /srv; free some space first"
        ),
        "{message}"
    );
    // Check mode shows the failure too.
    let preview = run.preview(&json!({"playbook": "failing.yml"}), &ctx()).await.unwrap();
    assert!(preview.summary.ends_with("(check mode: 0 changed, 1 ok, 1 failed)"), "{}", preview.summary);
}

#[tokio::test]
async fn a_run_past_its_timeout_is_stopped_and_reported_with_what_it_did() {
    let Some((_, _, run)) = tools(3) else { return };
    // A duration no other process on the host sleeps for.
    let nap = format!("97.{}", uuid::Uuid::new_v4().as_u128() % 1_000_000_007);
    let started = Instant::now();
    let message = failed(run.call(json!({"playbook": "slow.yml", "extra_vars": {"nap": nap}}), &ctx()).await);
    let took = started.elapsed();
    assert!(message.starts_with("run playbook slow.yml: timed out after 3 s and was stopped"), "{message}");
    assert!(message.contains("TASK [Before the nap]\n    localhost: ok — about to sleep"), "{message}");
    assert!(message.contains("TASK [Sleep]"), "{message}");
    assert!(message.contains("localhost: ok=1 changed=0 failed=0"), "{message}");
    assert!(took < Duration::from_secs(15), "{took:?}");
    let deadline = Instant::now() + Duration::from_secs(5);
    while !processes_with(&nap).is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(processes_with(&nap), Vec::<String>::new(), "left behind");
}

#[tokio::test]
async fn events_arrive_while_the_playbook_runs() {
    let Some(ansible_playbook) = ansible_playbook() else { return };
    let ansible = Ansible::new(config(ansible_playbook, 120));
    let request = RunRequest {
        playbook: "slow.yml".into(),
        extra_vars: json!({"nap": 2}).as_object().cloned(),
        ..RunRequest::default()
    };
    let started = Instant::now();
    let mut seen: Vec<(Event, Duration)> = Vec::new();
    let report = ansible.run(&request, Mode::Apply, &mut |e| seen.push((e.clone(), started.elapsed()))).await.unwrap();
    assert!(report.succeeded(), "{report:#?}");
    let ended = started.elapsed();
    let before_nap = seen
        .iter()
        .find_map(|(e, at)| match e {
            Event::Result(r) if r.task == "Before the nap" && r.status == Status::Ok => Some(*at),
            _ => None,
        })
        .unwrap();
    assert!(
        ended - before_nap >= Duration::from_millis(1500),
        "the event came at {before_nap:?}, the end at {ended:?}"
    );
    assert!(matches!(seen.last(), Some((Event::Stats(_), _))), "{seen:#?}");
}

#[tokio::test]
async fn extra_vars_must_be_a_json_object_of_plain_data() {
    let Some((_, _, run)) = tools(120) else { return };
    for (extra_vars, expected) in [
        (json!("dest=/tmp/x"), "must be a JSON object"),
        (json!(["dest", "/tmp/x"]), "must be a JSON object"),
        (json!(42), "must be a JSON object"),
        (json!({"dest": "{{ lookup('pipe', 'id') }}"}), "template marker"),
        (json!({"ansible_connection": "ssh"}), "ansible_*"),
    ] {
        let args = json!({"playbook": "write_file.yml", "extra_vars": extra_vars});
        assert!(invalid(run.call(args.clone(), &ctx()).await).contains(expected), "{args}");
        assert!(invalid(run.preview(&args, &ctx()).await).contains(expected), "{args}");
    }
}

#[tokio::test]
async fn playbooks_outside_the_playbook_directory_are_refused() {
    let Some((_, _, run)) = tools(120) else { return };
    let outside = fixtures().join("outside.yml");
    for (playbook, expected) in [
        ("../outside.yml".to_string(), "leaves the playbook directory"),
        ("sub/../../outside.yml".to_string(), "leaves the playbook directory"),
        (outside.to_string_lossy().into_owned(), "outside the playbook directory"),
        ("/etc/ansible/site.yml".to_string(), "outside the playbook directory"),
        ("../inventory.ini".to_string(), "leaves the playbook directory"),
        ("nope.yml".to_string(), "there is no playbook `nope.yml`"),
    ] {
        let args = json!({"playbook": playbook});
        assert!(invalid(run.call(args.clone(), &ctx()).await).contains(expected), "{playbook}");
        assert!(invalid(run.preview(&args, &ctx()).await).contains(expected), "{playbook}");
    }
}

#[tokio::test]
async fn nothing_of_steward_s_environment_reaches_ansible_or_its_report() {
    let Some((_, _, run)) = tools(120) else { return };
    let scratch = Scratch::new();
    let listing = scratch.file("environment.txt");
    let secret = format!("steward-fake-secret-{}", uuid::Uuid::new_v4().simple());
    let var = format!("STEWARD_TEST_FAKE_SECRET_{}", uuid::Uuid::new_v4().simple());
    // Steward's own environment holds API keys the same way.
    std::env::set_var(&var, &secret);
    let args = json!({"playbook": "environment.yml", "extra_vars": {"secret_var": var, "dest": listing}});
    let preview = run.preview(&args, &ctx()).await.unwrap();
    let message = failed(run.call(args, &ctx()).await);
    std::env::remove_var(&var);

    // The playbook looked for the variable, and listed all it could see…
    assert!(message.contains("localhost: ok — seen: []"), "{message}");
    let env = std::fs::read_to_string(&listing).unwrap();
    let names: Vec<&str> = env.lines().filter_map(|l| l.split_once('=').map(|(k, _)| k)).collect();
    assert!(names.contains(&"ANSIBLE_STDOUT_CALLBACK") && names.contains(&"HOME"), "{env}");
    // … which was only what Steward gave it (Ansible adds a few of its own).
    for name in &names {
        let ours = ["PATH", "HOME", "TMPDIR", "LANG", "LC_ALL", "PWD", "SHLVL", "_"].contains(name)
            || name.starts_with("ANSIBLE_")
            || name.starts_with("PYTHON")
            || name.starts_with("LC_");
        assert!(ours, "{name} reached the playbook: {env}");
    }
    let everything = format!("{env}\n{message}\n{preview:?}");
    assert!(!everything.contains(&secret) && !everything.contains(&var), "{everything}");
    // The run's private directory, its HOME, is gone.
    let home = env.lines().find_map(|l| l.strip_prefix("HOME=")).unwrap();
    let run_dir = Path::new(home).parent().unwrap();
    assert!(run_dir.file_name().unwrap().to_string_lossy().starts_with("steward-ansible-"), "{home}");
    assert!(!run_dir.exists(), "{} was left behind", run_dir.display());
}

#[tokio::test]
async fn the_playbooks_and_the_inventory_are_listed_without_variables() {
    let Some((list_playbooks, list_hosts, _)) = tools(120) else { return };
    let out: Value = serde_json::from_str(&list_playbooks.call(json!({}), &ctx()).await.unwrap()).unwrap();
    let playbooks = out["playbooks"].as_array().unwrap();
    let names: Vec<&str> = playbooks.iter().map(|p| p["playbook"].as_str().unwrap()).collect();
    assert_eq!(names, ["environment.yml", "failing.yml", "slow.yml", "with_command.yml", "write_file.yml"]);
    let write = playbooks.iter().find(|p| p["playbook"] == "write_file.yml").unwrap();
    assert_eq!(write["plays"], json!([{"name": "Write the greeting", "hosts": "local"}]));

    let out = list_hosts.call(json!({}), &ctx()).await.unwrap();
    let hosts: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(hosts["hosts"], json!(["localhost", "web1.example.test", "web2.example.test"]), "{out}");
    assert_eq!(hosts["groups"]["web"]["hosts"], json!(["web1.example.test", "web2.example.test"]), "{out}");
    assert_eq!(hosts["groups"]["homelab"]["children"], json!(["local", "web"]), "{out}");
    assert!(!out.contains("192.0.2.10") && !out.contains("ansible_connection"), "host variables leaked: {out}");
    assert!(invalid(list_hosts.call(json!({"group": "web"}), &ctx()).await).contains("takes no arguments"));
}
