//! Approvals: stored and read back whole, listed by status and
//! conversation, decided and claimed exactly once under concurrency,
//! conversation grants, and debug mode per conversation.

use std::sync::Arc;

use serde_json::json;
use steward_core::{ApprovalDecision, ApprovalFilter, Store, StoreError};
use steward_protocol::approval::{Approval, ApprovalScope, ApprovalStatus, Preview, PreviewTarget};
use steward_protocol::Effect;

use super::harness::{TestDb, T0};

backend_tests!(
    an_approval_round_trips_whole,
    listing_filters_by_status_and_conversation,
    only_one_of_many_simultaneous_decisions_wins,
    only_one_claim_runs_an_action,
    finishing_records_the_outcome_once,
    a_conversation_grant_needs_an_approved_conversation_scope,
    debug_mode_is_kept_per_conversation,
    an_approved_run_keeps_its_own_execution_log,
);

fn approval(id: &str, conversation: &str, at: i64) -> Approval {
    Approval {
        id: id.into(),
        conversation_id: conversation.into(),
        turn_id: "turn_1".into(),
        agent: "architect".into(),
        call_id: "call_1".into(),
        tool: "control_entity".into(),
        arguments: json!({"entity_id": "lock.front_door", "action": "unlock", "data": {"code": "x\u{0}y"}}),
        effect: Effect::Mutate,
        targets: vec!["lock.front_door".into()],
        preview: Preview {
            summary: "lock.unlock on Front Door (lock.front_door, now locked)".into(),
            targets: vec![PreviewTarget {
                id: "lock.front_door".into(),
                name: Some("Front Door".into()),
                state: Some("locked".into()),
            }],
            details: Some("--- a\n+++ b".into()),
        },
        status: ApprovalStatus::Pending,
        kind: "control_entity|lock|unlock".into(),
        created_at: at,
        expires_at: at + 60_000,
        decided_by: None,
        decided_at: None,
        scope: None,
        idempotency_key: format!("idem_{id}"),
        started_at: None,
        finished_at: None,
        outcome: None,
    }
}

fn approve(by: &str, scope: ApprovalScope) -> ApprovalDecision {
    ApprovalDecision { status: ApprovalStatus::Approved, decided_by: by.into(), decided_at: T0 + 5, scope: Some(scope) }
}

async fn conversation(db: &TestDb) -> String {
    db.store.create_conversation("architect", Some("t")).await.unwrap().id
}

async fn an_approval_round_trips_whole(db: &TestDb) {
    let c = conversation(db).await;
    let a = approval("apr_000000000001", &c, T0);
    db.store.create_approval(&a).await.unwrap();
    let back = db.store.get_approval(&a.id).await.unwrap().unwrap();
    // JSON escapes NUL, so even that survives PostgreSQL's text type.
    assert_eq!(back, a);
    assert!(db.store.get_approval("apr_missing").await.unwrap().is_none());
    // The same id twice is refused, not overwritten.
    assert!(db.store.create_approval(&a).await.is_err());
    // An approval must belong to a stored conversation.
    assert!(db.store.create_approval(&approval("apr_000000000002", "nope", T0)).await.is_err());
}

async fn listing_filters_by_status_and_conversation(db: &TestDb) {
    let (c1, c2) = (conversation(db).await, conversation(db).await);
    for (n, c) in [(1, &c1), (2, &c1), (3, &c2)] {
        db.store.create_approval(&approval(&format!("apr_{n:012}"), c, T0 + n)).await.unwrap();
    }
    db.store.decide_approval("apr_000000000002", &approve("user:a", ApprovalScope::Once)).await.unwrap().unwrap();

    let ids = |list: Vec<Approval>| list.into_iter().map(|a| a.id).collect::<Vec<_>>();
    let all = db.store.list_approvals(&ApprovalFilter::default(), 10).await.unwrap();
    assert_eq!(ids(all), vec!["apr_000000000003", "apr_000000000002", "apr_000000000001"], "newest first");
    let pending = ApprovalFilter { status: Some(ApprovalStatus::Pending), conversation_id: None };
    assert_eq!(ids(db.store.list_approvals(&pending, 10).await.unwrap()), vec!["apr_000000000003", "apr_000000000001"]);
    let in_c1 = ApprovalFilter { status: None, conversation_id: Some(c1.clone()) };
    assert_eq!(ids(db.store.list_approvals(&in_c1, 10).await.unwrap()), vec!["apr_000000000002", "apr_000000000001"]);
    let both = ApprovalFilter { status: Some(ApprovalStatus::Approved), conversation_id: Some(c1) };
    assert_eq!(ids(db.store.list_approvals(&both, 10).await.unwrap()), vec!["apr_000000000002"]);
    assert_eq!(db.store.list_approvals(&ApprovalFilter::default(), 1).await.unwrap().len(), 1);
}

async fn only_one_of_many_simultaneous_decisions_wins(db: &TestDb) {
    let c = conversation(db).await;
    db.store.create_approval(&approval("apr_000000000001", &c, T0)).await.unwrap();
    let store: Arc<dyn Store> = Arc::new(db.store.clone());
    let mut tasks = Vec::new();
    for n in 0..8 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let decision = if n % 2 == 0 {
                approve(&format!("user:{n}"), ApprovalScope::Once)
            } else {
                ApprovalDecision {
                    status: ApprovalStatus::Rejected,
                    decided_by: format!("user:{n}"),
                    decided_at: T0 + 5,
                    scope: None,
                }
            };
            store.decide_approval("apr_000000000001", &decision).await.unwrap()
        }));
    }
    let mut winners = Vec::new();
    for t in tasks {
        if let Some(a) = t.await.unwrap() {
            winners.push(a);
        }
    }
    assert_eq!(winners.len(), 1, "exactly one decision takes effect");
    let stored = db.store.get_approval("apr_000000000001").await.unwrap().unwrap();
    assert_eq!(stored, winners[0]);
    assert_eq!(stored.decided_at, Some(T0 + 5));
    assert!(matches!(stored.status, ApprovalStatus::Approved | ApprovalStatus::Rejected));
    // A decided approval cannot be decided again, nor "decided" to executed.
    assert!(db.store.decide_approval(&stored.id, &approve("user:late", ApprovalScope::Once)).await.unwrap().is_none());
    let not_a_decision = ApprovalDecision { status: ApprovalStatus::Executed, ..approve("x", ApprovalScope::Once) };
    let fresh = approval("apr_000000000002", &c, T0);
    db.store.create_approval(&fresh).await.unwrap();
    assert!(matches!(db.store.decide_approval(&fresh.id, &not_a_decision).await, Err(StoreError::Database(_))));
}

async fn only_one_claim_runs_an_action(db: &TestDb) {
    let c = conversation(db).await;
    db.store.create_approval(&approval("apr_000000000001", &c, T0)).await.unwrap();
    // A pending approval cannot be claimed.
    assert!(!db.store.claim_approval("apr_000000000001", T0 + 6).await.unwrap());
    db.store.decide_approval("apr_000000000001", &approve("user:a", ApprovalScope::Once)).await.unwrap().unwrap();
    let store: Arc<dyn Store> = Arc::new(db.store.clone());
    let mut tasks = Vec::new();
    for n in 0..8 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move { store.claim_approval("apr_000000000001", T0 + 10 + n).await.unwrap() }));
    }
    let mut claimed = 0;
    for t in tasks {
        claimed += usize::from(t.await.unwrap());
    }
    assert_eq!(claimed, 1);
    let stored = db.store.get_approval("apr_000000000001").await.unwrap().unwrap();
    assert!(stored.started_at.is_some());
    assert_eq!(stored.status, ApprovalStatus::Approved);
}

async fn finishing_records_the_outcome_once(db: &TestDb) {
    let c = conversation(db).await;
    db.store.create_approval(&approval("apr_000000000001", &c, T0)).await.unwrap();
    // Only an approved approval can finish.
    let early = db.store.finish_approval("apr_000000000001", ApprovalStatus::Executed, "x", T0 + 1).await.unwrap();
    assert!(early.is_none());
    db.store.decide_approval("apr_000000000001", &approve("user:a", ApprovalScope::Once)).await.unwrap().unwrap();
    assert!(db.store.claim_approval("apr_000000000001", T0 + 6).await.unwrap());
    let done = db
        .store
        .finish_approval("apr_000000000001", ApprovalStatus::Executed, "lock.front_door: unlocked", T0 + 7)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(done.status, ApprovalStatus::Executed);
    assert_eq!(done.outcome.as_deref(), Some("lock.front_door: unlocked"));
    assert_eq!((done.started_at, done.finished_at), (Some(T0 + 6), Some(T0 + 7)));
    let again = db.store.finish_approval("apr_000000000001", ApprovalStatus::Failed, "y", T0 + 8).await.unwrap();
    assert!(again.is_none(), "a finished approval keeps its outcome");
    assert!(db.store.finish_approval("apr_000000000001", ApprovalStatus::Pending, "z", T0).await.is_err());
}

async fn a_conversation_grant_needs_an_approved_conversation_scope(db: &TestDb) {
    let (c1, c2) = (conversation(db).await, conversation(db).await);
    let kind = "control_entity|lock|unlock";
    db.store.create_approval(&approval("apr_000000000001", &c1, T0)).await.unwrap();
    assert!(!db.store.has_conversation_grant(&c1, kind).await.unwrap(), "pending grants nothing");
    db.store.decide_approval("apr_000000000001", &approve("user:a", ApprovalScope::Once)).await.unwrap().unwrap();
    assert!(!db.store.has_conversation_grant(&c1, kind).await.unwrap(), "approving once grants nothing more");

    db.store.create_approval(&approval("apr_000000000002", &c1, T0)).await.unwrap();
    db.store
        .decide_approval("apr_000000000002", &approve("user:a", ApprovalScope::Conversation))
        .await
        .unwrap()
        .unwrap();
    assert!(db.store.has_conversation_grant(&c1, kind).await.unwrap());
    assert!(!db.store.has_conversation_grant(&c1, "control_entity|lock|lock").await.unwrap(), "other kinds");
    assert!(!db.store.has_conversation_grant(&c2, kind).await.unwrap(), "other conversations");
}

async fn debug_mode_is_kept_per_conversation(db: &TestDb) {
    let (c1, c2) = (conversation(db).await, conversation(db).await);
    assert!(!db.store.get_conversation(&c1).await.unwrap().unwrap().debug);
    db.store.set_conversation_debug(&c1, true).await.unwrap();
    assert!(db.store.get_conversation(&c1).await.unwrap().unwrap().debug);
    assert!(!db.store.get_conversation(&c2).await.unwrap().unwrap().debug);
    db.store.set_conversation_debug(&c1, false).await.unwrap();
    assert!(!db.store.get_conversation(&c1).await.unwrap().unwrap().debug);
    assert!(matches!(db.store.set_conversation_debug("nope", true).await, Err(StoreError::ConversationNotFound(_))));
}

async fn an_approved_run_keeps_its_own_execution_log(db: &TestDb) {
    use steward_protocol::task::LogLevel;
    let c = conversation(db).await;
    db.store.create_approval(&approval("apr_log", &c, T0)).await.unwrap();
    for line in ["TASK [Write the file]", "  localhost: changed", "RECAP"] {
        db.store.append_execution_log("apr_log", None, LogLevel::Info, line).await.unwrap();
    }
    let logs = db.store.list_execution_logs("apr_log").await.unwrap();
    let got: Vec<(i64, &str)> = logs.iter().map(|l| (l.seq, l.message.as_str())).collect();
    assert_eq!(got, vec![(1, "TASK [Write the file]"), (2, "  localhost: changed"), (3, "RECAP")]);
    // Neither a task nor an approval: refused, naming it.
    let e = db.store.append_execution_log("apr_missing", None, LogLevel::Info, "x").await.unwrap_err();
    assert!(e.to_string().contains("apr_missing"), "{e}");
}
