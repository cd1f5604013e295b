//! Persistence, behind a trait. `steward-store` implements it with sqlx for
//! SQLite (the embedded default) and PostgreSQL.

use async_trait::async_trait;
use steward_protocol::api::{Conversation, StoredMessage};
use steward_protocol::Message;

use crate::audit::{AuditEntry, NewAuditEntry};
use crate::usage::{UsageGroup, UsageRecord, UsageTotal};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("conversation '{0}' not found")]
    ConversationNotFound(String),
    #[error("database error: {0}")]
    Database(String),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

/// A message to append; the store assigns its id, position and time.
#[derive(Debug, Clone)]
pub struct NewMessage {
    pub conversation_id: String,
    pub message: Message,
    /// The turn that produced it, for tracing.
    pub turn_id: Option<String>,
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// `sqlite` or `postgres`.
    fn backend(&self) -> &'static str;

    /// A cheap round trip, for readiness checks.
    async fn ping(&self) -> Result<(), StoreError>;

    async fn create_conversation(&self, agent: &str, title: Option<&str>) -> Result<Conversation, StoreError>;

    async fn get_conversation(&self, id: &str) -> Result<Option<Conversation>, StoreError>;

    /// Most recently updated first.
    async fn list_conversations(&self, limit: u32) -> Result<Vec<Conversation>, StoreError>;

    /// Appends messages in order, atomically, and bumps the conversation's
    /// `updated_at`. Fails with `ConversationNotFound` if it does not exist.
    async fn append_messages(&self, messages: Vec<NewMessage>) -> Result<Vec<StoredMessage>, StoreError>;

    /// In order of `seq`.
    async fn list_messages(&self, conversation_id: &str) -> Result<Vec<StoredMessage>, StoreError>;

    /// Records the fingerprint of the transcript a history-resending client
    /// has now seen in this conversation (see `engine::fingerprint`).
    async fn set_client_fingerprint(&self, conversation_id: &str, fingerprint: &str) -> Result<(), StoreError>;

    /// The most recently updated conversation whose transcript has this
    /// fingerprint.
    async fn find_by_client_fingerprint(&self, fingerprint: &str) -> Result<Option<Conversation>, StoreError>;

    /// Appends one model call to the usage ledger.
    async fn record_usage(&self, record: &UsageRecord) -> Result<(), StoreError>;

    /// Ledger totals of calls made at or after `since_ms`, by `group`,
    /// ordered by key.
    async fn usage_totals(&self, since_ms: i64, group: UsageGroup) -> Result<Vec<UsageTotal>, StoreError>;

    /// Appends one entry to the tamper-evident audit log: assigns the next
    /// `seq` and the time, redacts secrets from `detail`
    /// ([`crate::audit::redact`]) and chains the hashes, atomically, so
    /// concurrent appends form one chain. Stores without an audit log
    /// refuse.
    async fn append_audit(&self, entry: NewAuditEntry) -> Result<AuditEntry, StoreError> {
        let _ = entry;
        Err(StoreError::Database("this store keeps no audit log".into()))
    }

    /// Audit entries with `seq > after_seq`, in order of `seq`, at most `limit`.
    async fn list_audit(&self, after_seq: i64, limit: u32) -> Result<Vec<AuditEntry>, StoreError> {
        let _ = (after_seq, limit);
        Err(StoreError::Database("this store keeps no audit log".into()))
    }
}
