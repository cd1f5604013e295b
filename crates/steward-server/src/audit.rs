//! `GET /api/audit`: a page of the audit log, and the verification of its
//! whole hash chain.

use std::collections::HashMap;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::Json;
use steward_core::{ChainVerifier, Store, StoreError};
use steward_protocol::api::{AuditReport, AuditVerification};

use crate::error::ApiError;
use crate::query::{number_param, query_map};
use crate::AppState;

const DEFAULT_LIMIT: u32 = 100;
const MAX_LIMIT: u32 = 1000;
/// Rows read per query while verifying.
const VERIFY_PAGE: u32 = 1000;

pub async fn list(
    State(state): State<AppState>,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Result<Json<AuditReport>, ApiError> {
    let query = query_map(query)?;
    let after = match query.get("after") {
        None => 0,
        Some(a) => a.parse::<i64>().ok().filter(|a| *a >= 0).ok_or_else(|| {
            ApiError::invalid(format!("after must be a sequence number (0 or more), not '{a}'")).with_param("after")
        })?,
    };
    let limit = number_param(&query, "limit", DEFAULT_LIMIT, 1..=MAX_LIMIT)?;
    let store = state.engine.store();
    let entries = store.list_audit(after, limit).await.map_err(ApiError::from)?;
    let verified = verify(store.as_ref()).await.map_err(ApiError::from)?;
    Ok(Json(AuditReport { entries, verified }))
}

/// Checks every row of the log, page by page.
pub async fn verify(store: &dyn Store) -> Result<AuditVerification, StoreError> {
    let mut verifier = ChainVerifier::new();
    let mut after = 0;
    loop {
        let page = store.list_audit(after, VERIFY_PAGE).await?;
        for entry in &page {
            if let Err(bad) = verifier.push(entry) {
                return Ok(AuditVerification {
                    ok: false,
                    checked: verifier.checked(),
                    first_bad_seq: Some(bad.seq),
                    reason: Some(bad.reason),
                });
            }
        }
        match page.last() {
            Some(last) if page.len() == VERIFY_PAGE as usize => after = last.seq,
            _ => break,
        }
    }
    Ok(AuditVerification { ok: true, checked: verifier.checked(), first_bad_seq: None, reason: None })
}
