//! Applied configuration changes (automations, playbooks, files), recorded
//! outside the database too — e.g. as commits in a git repository — so a
//! person can review, diff and revert them with the tools they know.
//!
//! A tool that applies such a change, after it has been approved and has
//! succeeded, hands an [`AppliedChange`] to the [`ChangeRecorder`] it was
//! built with; the reference is the approval's (or task's) id.

use async_trait::async_trait;

/// One file as it is after the change; `None` when the change removed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangedFile {
    /// Relative to the record's root, `/`-separated, e.g. `automations/porch_light.yaml`.
    pub path: String,
    pub contents: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppliedChange {
    /// The approval or task the change was applied under.
    pub reference: String,
    /// One line: what changed.
    pub summary: String,
    pub files: Vec<ChangedFile>,
}

#[async_trait]
pub trait ChangeRecorder: Send + Sync + 'static {
    /// Records an applied change; returns the record's id (a commit hash),
    /// or `None` when the files were already as given.
    async fn record(&self, change: &AppliedChange) -> Result<Option<String>, String>;
}
