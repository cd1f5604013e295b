//! Named snapshots of the agents' memory and state, to save before trying
//! something and to go back to afterwards.
//!
//! A snapshot holds what the agents remember: every conversation with its
//! settings and all its messages, and the stored insights; and, only when
//! the home is the built-in demo home, its entities' states and attributes,
//! so going back puts the demo lights back too. It never holds, and a load
//! never rewrites, what records what really happened: the audit log, the
//! approvals and their decisions, the usage ledger and the tasks. A real
//! Home Assistant is never changed by a load either: its state changes only
//! through approved service calls.
//!
//! A load first saves the state it replaces as `autosave-<UTC time>`, in the
//! same store transaction that replaces it, so no load loses anything.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use steward_protocol::api::{Conversation, StoredMessage};
use steward_protocol::insight::Insight;

use crate::audit::NewAuditEntry;
use crate::engine::Engine;
use crate::home::{Entity, Home, HomeError};
use crate::store::StoreError;

/// The longest snapshot name, in characters.
pub const MAX_NAME_CHARS: usize = 64;
/// What the names of the automatic backups a load makes start with.
pub const AUTOSAVE_PREFIX: &str = "autosave-";
/// `home` of a load whose demo home was put back.
pub const HOME_RESTORED: &str = "restored";
/// `home` of a load with a real Home Assistant.
pub const HOME_NOT_RESTORED_REAL: &str =
    "not restored: Home Assistant's state is changed only through approved service calls";
/// The version of [`SnapshotBody`]'s shape.
pub const BODY_FORMAT: u32 = 1;

/// What a snapshot holds, in numbers: what `GET /api/state` lists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotSummary {
    pub name: String,
    /// Milliseconds since the Unix epoch.
    pub created_at: i64,
    pub conversations: u64,
    pub messages: u64,
    pub insights: u64,
    /// Demo home entities (0 with a real Home Assistant).
    pub entities: u64,
    /// `user:<key digest prefix>`, `user:local` or `system`.
    pub created_by: String,
}

/// How much the live state holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateCounts {
    pub conversations: u64,
    pub messages: u64,
    pub insights: u64,
    pub entities: u64,
}

/// A stored message with the turn that produced it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedMessage {
    #[serde(flatten)]
    pub message: StoredMessage,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub turn_id: Option<String>,
}

/// A conversation with its settings and every message, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedConversation {
    #[serde(flatten)]
    pub conversation: Conversation,
    /// What a history-resending client last saw (see `engine::fingerprint`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_fingerprint: Option<String>,
    pub messages: Vec<SavedMessage>,
}

/// The agents' memory as the store holds it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Memory {
    pub conversations: Vec<SavedConversation>,
    pub insights: Vec<Insight>,
}

/// Everything a snapshot holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SnapshotBody {
    pub format: u32,
    #[serde(flatten)]
    pub memory: Memory,
    /// The demo home's entities; `None` when the home was not the demo.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub home: Option<Vec<Entity>>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    pub summary: SnapshotSummary,
    pub body: SnapshotBody,
}

/// What to save besides the memory the store reads itself.
#[derive(Debug, Clone, PartialEq)]
pub struct SnapshotSpec {
    pub name: String,
    pub created_at: i64,
    pub created_by: String,
    pub home: Option<Vec<Entity>>,
}

impl Snapshot {
    /// The snapshot of `memory` made as `spec` says.
    pub fn new(spec: &SnapshotSpec, memory: Memory) -> Snapshot {
        let count = |n: usize| u64::try_from(n).unwrap_or(u64::MAX);
        let summary = SnapshotSummary {
            name: spec.name.clone(),
            created_at: spec.created_at,
            conversations: count(memory.conversations.len()),
            messages: count(memory.conversations.iter().map(|c| c.messages.len()).sum()),
            insights: count(memory.insights.len()),
            entities: count(spec.home.as_ref().map_or(0, Vec::len)),
            created_by: spec.created_by.clone(),
        };
        Snapshot { summary, body: SnapshotBody { format: BODY_FORMAT, memory, home: spec.home.clone() } }
    }
}

/// How a save went in the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SaveOutcome {
    Created(SnapshotSummary),
    Replaced(SnapshotSummary),
    /// A snapshot of that name exists and `replace` was not set; nothing
    /// changed.
    Exists,
}

/// What a load did in the store.
#[derive(Debug, Clone, PartialEq)]
pub struct Loaded {
    /// The snapshot loaded, with its body (the home part is restored from it).
    pub snapshot: Snapshot,
    /// The state it replaced, saved first.
    pub backup: SnapshotSummary,
    /// Conversations the snapshot lacks that stayed because an approval or
    /// a task refers to them.
    pub kept_conversations: Vec<String>,
}

/// A save that took effect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Saved {
    pub summary: SnapshotSummary,
    /// Whether it replaced a snapshot of the same name.
    pub replaced: bool,
}

/// What `POST /api/state/load` answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoadReport {
    pub loaded: SnapshotSummary,
    pub backup: SnapshotSummary,
    /// [`HOME_RESTORED`], or `not restored: <why>`.
    pub home: String,
    pub kept_conversations: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("{0}")]
    InvalidName(String),
    #[error("a snapshot named '{0}' already exists")]
    Exists(String),
    #[error("there is no snapshot named '{0}'")]
    NotFound(String),
    #[error("{0} turn(s) are running")]
    TurnsRunning(usize),
    #[error("the demo home's states could not be read: {0}")]
    Home(HomeError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Checks a snapshot name: 1 to [`MAX_NAME_CHARS`] of `A-Z a-z 0-9 . _ -`.
pub fn check_name(name: &str) -> Result<(), SnapshotError> {
    if name.is_empty() {
        return Err(SnapshotError::InvalidName("name is empty; name the snapshot, e.g. \"before-party\"".into()));
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(SnapshotError::InvalidName(format!("name is longer than {MAX_NAME_CHARS} characters; shorten it")));
    }
    if let Some(bad) = name.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))) {
        return Err(SnapshotError::InvalidName(format!(
            "name '{name}' contains {bad:?}; use only letters A-Z and a-z, digits, '.', '_' and '-'"
        )));
    }
    Ok(())
}

/// `autosave-20261122T093045.123Z`: the backup's name for a load at `now_ms`;
/// names of later loads sort after it.
pub fn autosave_name(now_ms: i64) -> String {
    let stamp = crate::tools::rfc3339(now_ms).replace(['-', ':'], "");
    let stamp = stamp.trim_end_matches('Z');
    format!("{AUTOSAVE_PREFIX}{stamp}.{:03}Z", now_ms.rem_euclid(1000))
}

/// The demo home's entities, to keep in a snapshot; `None` for any other home.
async fn demo_states(home: Option<&Arc<dyn Home>>) -> Result<Option<Vec<Entity>>, SnapshotError> {
    match home {
        Some(home) if home.is_demo() => home.entities().await.map(Some).map_err(SnapshotError::Home),
        Some(_) | None => Ok(None),
    }
}

async fn audit(engine: &Engine, entry: NewAuditEntry) {
    let action = entry.action.clone();
    if let Err(e) = engine.store().append_audit(entry).await {
        tracing::warn!(error = %e, action, "no audit entry written");
    }
}

/// Saves the live state as `name`, made by `actor`; an existing snapshot of
/// that name is replaced only with `replace`.
pub async fn save(engine: &Engine, name: &str, actor: &str, replace: bool) -> Result<Saved, SnapshotError> {
    check_name(name)?;
    let spec = SnapshotSpec {
        name: name.to_string(),
        created_at: engine.clock().now_ms(),
        created_by: actor.to_string(),
        home: demo_states(engine.options().home.as_ref()).await?,
    };
    let (summary, replaced) = match engine.store().save_snapshot(&spec, replace).await? {
        SaveOutcome::Created(summary) => (summary, false),
        SaveOutcome::Replaced(summary) => (summary, true),
        SaveOutcome::Exists => return Err(SnapshotError::Exists(name.to_string())),
    };
    tracing::info!(snapshot = name, replaced, "state saved");
    let detail = serde_json::json!({ "summary": summary, "replaced": replaced });
    audit(engine, NewAuditEntry::new(actor, "state.saved", name).with_detail(detail)).await;
    Ok(Saved { summary, replaced })
}

/// Every snapshot, newest first.
pub async fn list(engine: &Engine) -> Result<Vec<SnapshotSummary>, SnapshotError> {
    Ok(engine.store().list_snapshots().await?)
}

/// How much the live state holds.
pub async fn current(engine: &Engine) -> Result<StateCounts, SnapshotError> {
    let mut counts = engine.store().memory_counts().await?;
    let entities = demo_states(engine.options().home.as_ref()).await?;
    counts.entities = u64::try_from(entities.map_or(0, |e| e.len())).unwrap_or(u64::MAX);
    Ok(counts)
}

/// Refuses a load while `running` turns run: a turn would write its reply
/// into a memory it no longer belongs to.
pub fn check_idle(running: usize) -> Result<(), SnapshotError> {
    match running {
        0 => Ok(()),
        n => Err(SnapshotError::TurnsRunning(n)),
    }
}

/// Makes the live state snapshot `name`'s, after saving it as
/// `autosave-<now>`. Refused while any turn runs.
pub async fn load(engine: &Engine, name: &str, actor: &str) -> Result<LoadReport, SnapshotError> {
    check_name(name)?;
    // A turn starting after this check races the load; the store's
    // transaction still keeps each of them whole.
    check_idle(engine.running_turns())?;
    let home = engine.options().home.as_ref();
    let now = engine.clock().now_ms();
    let backup = SnapshotSpec {
        name: autosave_name(now),
        created_at: now,
        created_by: actor.to_string(),
        home: demo_states(home).await?,
    };
    let loaded =
        engine.store().load_snapshot(name, &backup).await?.ok_or_else(|| SnapshotError::NotFound(name.into()))?;
    let home_outcome = restore_home(home, loaded.snapshot.body.home.as_deref()).await;
    let report = LoadReport {
        loaded: loaded.snapshot.summary,
        backup: loaded.backup,
        home: home_outcome,
        kept_conversations: loaded.kept_conversations,
    };
    tracing::info!(snapshot = name, backup = %report.backup.name, home = %report.home, "state loaded");
    let detail = serde_json::json!({
        "snapshot": report.loaded.name,
        "backup": report.backup.name,
        "home": report.home,
        "kept_conversations": report.kept_conversations,
    });
    audit(engine, NewAuditEntry::new(actor, "state.loaded", name).with_detail(detail)).await;
    Ok(report)
}

/// Puts the demo home back as the snapshot held it; says what happened.
async fn restore_home(home: Option<&Arc<dyn Home>>, saved: Option<&[Entity]>) -> String {
    match (home, saved) {
        (None, _) => "not restored: no home is connected".into(),
        (Some(home), _) if !home.is_demo() => HOME_NOT_RESTORED_REAL.into(),
        (Some(_), None) => "not restored: the snapshot holds no home state (it was saved without the demo home)".into(),
        (Some(home), Some(entities)) => match home.restore_states(entities).await {
            Ok(_) => HOME_RESTORED.into(),
            Err(e) => format!("not restored: {e}"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        for good in ["before-party", "a", "v1.2_final", &"x".repeat(MAX_NAME_CHARS)] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        for bad in ["", "has space", "slash/no", "ünï", "semi;colon", &"x".repeat(MAX_NAME_CHARS + 1)] {
            let Err(SnapshotError::InvalidName(message)) = check_name(bad) else {
                panic!("'{bad}' was accepted");
            };
            assert!(message.contains("name"), "{message}");
        }
    }

    #[test]
    fn autosave_names_are_valid_and_sort_in_time() {
        let first = autosave_name(1_795_334_445_123); // 2026-11-22T08:00:45.123Z
        assert_eq!(first, "autosave-20261122T080045.123Z");
        assert!(check_name(&first).is_ok());
        let later = autosave_name(1_795_334_445_124);
        assert!(later > first, "{later} <= {first}");
    }

    #[test]
    fn a_load_waits_for_no_turn() {
        assert!(check_idle(0).is_ok());
        assert!(matches!(check_idle(2), Err(SnapshotError::TurnsRunning(2))));
    }

    #[test]
    fn a_snapshot_counts_what_it_holds() {
        let message = |seq: i64| SavedMessage {
            message: StoredMessage {
                id: format!("m{seq}"),
                conversation_id: "c1".into(),
                seq,
                role: steward_protocol::Role::User,
                content: "hi".into(),
                tool_calls: Vec::new(),
                tool_call_id: None,
                name: None,
                created_at: 5,
            },
            turn_id: Some("turn_1".into()),
        };
        let conversation = SavedConversation {
            conversation: Conversation {
                id: "c1".into(),
                agent: "architect".into(),
                title: Some("t".into()),
                created_at: 1,
                updated_at: 2,
                debug: true,
            },
            client_fingerprint: Some("fp".into()),
            messages: vec![message(0), message(1)],
        };
        let spec = SnapshotSpec { name: "n".into(), created_at: 9, created_by: "user:local".into(), home: None };
        let snapshot = Snapshot::new(&spec, Memory { conversations: vec![conversation], insights: Vec::new() });
        assert_eq!(
            snapshot.summary,
            SnapshotSummary {
                name: "n".into(),
                created_at: 9,
                conversations: 1,
                messages: 2,
                insights: 0,
                entities: 0,
                created_by: "user:local".into()
            }
        );
        // The body survives JSON whole (the store keeps it as JSON text).
        let json = serde_json::to_string(&snapshot.body).unwrap_or_default();
        let back: SnapshotBody = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}: {json}"));
        assert_eq!(back, snapshot.body);
    }
}
