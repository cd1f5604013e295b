//! Gateway mode: model calls routed straight through (no agent), so other
//! programs can use Steward's providers, fallbacks, budgets and ledger.

use std::sync::Arc;

use steward_protocol::api::BudgetLine;

use crate::llm::Llm;

#[async_trait::async_trait]
pub trait Gateway: Send + Sync + 'static {
    /// Whether `model` names something the gateway routes (a tier name or
    /// `provider/model` of a configured provider).
    fn routes(&self, model: &str) -> bool;

    /// The model names to list in `/v1/models`.
    fn models(&self) -> Vec<String>;

    /// The budgets and what is left of them.
    fn budgets(&self) -> Vec<BudgetLine>;

    /// The model interface requests go through.
    fn llm(&self) -> Arc<dyn Llm>;

    /// Waits until the usage of every call made so far is recorded.
    async fn flush(&self);
}
