//! Git audit: every applied configuration change becomes a commit
//! `infra(<approval-or-task-id>): <summary>` in a configured repository.
//!
//! The repository is created when missing. Commits are made one at a time
//! with the `git` program, with a fixed author, no signing and no hooks, so
//! a user's global git setup cannot make them fail or run code.

use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use steward_core::changes::{AppliedChange, ChangeRecorder};
use steward_core::Redactor;
use tokio::process::Command;
use tokio::sync::Mutex;

/// Longest a git command may take.
const GIT_TIMEOUT: Duration = Duration::from_secs(30);

pub struct GitAudit {
    repo: PathBuf,
    /// Commits are made one at a time.
    lock: Mutex<()>,
    redactor: Redactor,
}

impl std::fmt::Debug for GitAudit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitAudit").field("repo", &self.repo).finish()
    }
}

impl GitAudit {
    /// Opens `repo`, creating the directory and the repository when
    /// missing. Fails with a clear message when `git` is not installed or
    /// the directory cannot be used.
    pub async fn open(repo: impl Into<PathBuf>, redactor: Redactor) -> Result<GitAudit, String> {
        let repo = repo.into();
        tokio::fs::create_dir_all(&repo)
            .await
            .map_err(|e| format!("cannot create the git audit repository {}: {e}", repo.display()))?;
        let audit = GitAudit { repo, lock: Mutex::new(()), redactor };
        if !audit.repo.join(".git").exists() {
            audit.git(&["init", "--quiet"]).await?;
        }
        Ok(audit)
    }

    pub fn repo(&self) -> &Path {
        &self.repo
    }

    async fn git(&self, args: &[&str]) -> Result<String, String> {
        let mut command = Command::new("git");
        command
            .arg("-C")
            .arg(&self.repo)
            .args(["-c", "commit.gpgsign=false", "-c", "core.hooksPath=/dev/null", "-c", "user.name=Steward"])
            .args(["-c", "user.email=steward@localhost"])
            .args(args)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_TERMINAL_PROMPT", "0")
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true);
        let output = match tokio::time::timeout(GIT_TIMEOUT, command.output()).await {
            Err(_) => return Err(format!("git {} took longer than {} s", args.join(" "), GIT_TIMEOUT.as_secs())),
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err("git audit needs the `git` program, which is not installed (apt-get install git)".into())
            }
            Ok(Err(e)) => return Err(format!("cannot run git: {e}")),
            Ok(Ok(output)) => output,
        };
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            return Err(format!("git {} failed: {}", args.first().unwrap_or(&""), stderr.trim()));
        }
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
    }
}

/// A change's file path, if it stays inside the repository.
fn safe_path(path: &str) -> Option<PathBuf> {
    let p = Path::new(path);
    let normal = !path.is_empty() && p.components().all(|c| matches!(c, Component::Normal(_)));
    let not_git = p.components().next().map(|c| c.as_os_str() != ".git").unwrap_or(false);
    (normal && not_git).then(|| p.to_path_buf())
}

#[async_trait]
impl ChangeRecorder for GitAudit {
    async fn record(&self, change: &AppliedChange) -> Result<Option<String>, String> {
        let _one_at_a_time = self.lock.lock().await;
        let mut paths = Vec::new();
        for file in &change.files {
            let relative = safe_path(&file.path).ok_or_else(|| {
                format!("'{}' is not a relative path inside the audit repository; nothing was recorded", file.path)
            })?;
            let full = self.repo.join(&relative);
            match &file.contents {
                Some(contents) => {
                    if let Some(parent) = full.parent() {
                        tokio::fs::create_dir_all(parent)
                            .await
                            .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
                    }
                    tokio::fs::write(&full, contents)
                        .await
                        .map_err(|e| format!("cannot write {}: {e}", full.display()))?;
                }
                None => match tokio::fs::remove_file(&full).await {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(format!("cannot remove {}: {e}", full.display())),
                },
            }
            paths.push(relative.to_string_lossy().into_owned());
        }
        let mut add = vec!["add", "--all", "--"];
        add.extend(paths.iter().map(String::as_str));
        self.git(&add).await?;
        // Only these paths: anything else in the repository stays out of
        // this change's commit.
        let mut staged = vec!["diff", "--cached", "--name-only", "--"];
        staged.extend(paths.iter().map(String::as_str));
        if self.git(&staged).await?.is_empty() {
            return Ok(None);
        }
        let summary = self.redactor.text(change.summary.lines().next().unwrap_or("").trim());
        let message = format!("infra({}): {summary}", change.reference);
        let mut commit = vec!["commit", "--quiet", "-m", &message, "--"];
        commit.extend(paths.iter().map(String::as_str));
        self.git(&commit).await?;
        self.git(&["rev-parse", "HEAD"]).await.map(Some)
    }
}

#[cfg(test)]
mod tests {
    use steward_core::changes::ChangedFile;

    use super::*;

    fn change(reference: &str, summary: &str, files: Vec<ChangedFile>) -> AppliedChange {
        AppliedChange { reference: reference.into(), summary: summary.into(), files }
    }

    fn file(path: &str, contents: Option<&str>) -> ChangedFile {
        ChangedFile { path: path.into(), contents: contents.map(String::from) }
    }

    async fn git_log(repo: &Path) -> Vec<String> {
        let out = Command::new("git").arg("-C").arg(repo).args(["log", "--format=%s"]).output().await.unwrap();
        String::from_utf8_lossy(&out.stdout).lines().map(String::from).collect()
    }

    #[tokio::test]
    async fn applied_changes_become_commits_named_after_their_approval() {
        let dir = std::env::temp_dir().join(format!("steward-git-audit-{}", uuid_like()));
        let audit = GitAudit::open(dir.join("repo"), Redactor::new(["tok-123456".to_string()])).await.unwrap();
        let first = audit
            .record(&change(
                "apr_1a2b3c4d5e6f",
                "create automation porch_light with token tok-123456\nsecond line",
                vec![file("automations/porch_light.yaml", Some("alias: Porch light\n"))],
            ))
            .await
            .unwrap();
        assert!(first.as_deref().is_some_and(|h| h.len() == 40), "{first:?}");
        assert_eq!(
            std::fs::read_to_string(dir.join("repo/automations/porch_light.yaml")).unwrap(),
            "alias: Porch light\n"
        );
        // The same contents again: nothing to commit.
        let same = change("apr_2", "again", vec![file("automations/porch_light.yaml", Some("alias: Porch light\n"))]);
        assert_eq!(audit.record(&same).await.unwrap(), None);
        // A removal is a commit too.
        let removed = audit
            .record(&change("task_9", "delete porch_light", vec![file("automations/porch_light.yaml", None)]))
            .await;
        assert!(removed.unwrap().is_some());
        assert!(!dir.join("repo/automations/porch_light.yaml").exists());
        assert_eq!(
            git_log(&dir.join("repo")).await,
            vec![
                "infra(task_9): delete porch_light",
                "infra(apr_1a2b3c4d5e6f): create automation porch_light with token [redacted]"
            ]
        );
        // A non-ASCII summary is fine.
        let c = change("apr_5", "Küche: Licht bei 18 °C", vec![file("automations/kueche.json", Some("{}\n"))]);
        assert!(audit.record(&c).await.unwrap().is_some());
        // Other files in the repository stay out of a change's commit.
        std::fs::write(dir.join("repo/notes.txt"), "unrelated").unwrap();
        let c = change("apr_4", "add readme", vec![file("README.md", Some("audit\n"))]);
        assert!(audit.record(&c).await.unwrap().is_some());
        let out = Command::new("git").arg("-C").arg(dir.join("repo")).args(["status", "--porcelain"]).output().await;
        assert_eq!(String::from_utf8_lossy(&out.unwrap().stdout).trim(), "?? notes.txt");
        // Reopening an existing repository keeps its history.
        let again = GitAudit::open(dir.join("repo"), Redactor::default()).await.unwrap();
        let c = change("apr_3", "add playbook", vec![file("playbooks/site.yml", Some("- hosts: all\n"))]);
        again.record(&c).await.unwrap();
        assert_eq!(git_log(&dir.join("repo")).await.len(), 5);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn paths_outside_the_repository_are_refused() {
        let dir = std::env::temp_dir().join(format!("steward-git-audit-{}", uuid_like()));
        let audit = GitAudit::open(&dir, Redactor::default()).await.unwrap();
        for bad in ["../escape.yaml", "/etc/passwd", "a/../../b", ".git/config", ""] {
            let err = audit.record(&change("apr_1", "x", vec![file(bad, Some("x"))])).await.unwrap_err();
            assert!(err.contains("is not a relative path inside the audit repository"), "{bad}: {err}");
        }
        assert!(!dir.parent().unwrap().join("escape.yaml").exists());
        let _ = std::fs::remove_dir_all(dir);
    }

    fn uuid_like() -> String {
        format!("{}-{:?}", std::process::id(), std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH))
            .replace(|c: char| !c.is_ascii_alphanumeric(), "")
    }
}
