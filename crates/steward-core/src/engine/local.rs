//! The first stage of routing: a home command or question the local intent
//! engine understands is answered without a model — a question from the
//! entities' current states, a command through `control_entity` and the
//! same policy and approval gate a model's call goes through.

use std::hash::{Hash, Hasher};
use std::sync::Arc;

use steward_protocol::{FinishReason, Message, Role, ToolCall};

use super::{Outcome, TurnRun};
use crate::home::{Area, Entity};
use crate::intent::{IntentEngine, Understanding};

/// The tool local commands go through.
const CONTROL_TOOL: &str = "control_entity";

/// The home as a turn saw it at its start.
pub(super) struct Snapshot {
    pub entities: Vec<Entity>,
    pub areas: Vec<Area>,
}

/// The intent engine built for one shape of the catalog (its entities'
/// ids, names, aliases and areas), reused while that shape holds.
#[derive(Default)]
pub(super) struct IntentCache {
    shape: u64,
    engine: Option<Arc<IntentEngine>>,
}

fn shape_of(snapshot: &Snapshot) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for e in &snapshot.entities {
        (&e.entity_id, &e.name, &e.aliases, &e.area_id).hash(&mut h);
    }
    for a in &snapshot.areas {
        (&a.area_id, &a.name, &a.aliases, &a.floor).hash(&mut h);
    }
    h.finish()
}

impl TurnRun {
    /// The intent engine for this snapshot, built when the catalog changed.
    fn intent_engine(&self, snapshot: &Snapshot) -> Arc<IntentEngine> {
        let shape = shape_of(snapshot);
        let mut cache = self.engine.inner.intents.lock().unwrap_or_else(|p| p.into_inner());
        match &cache.engine {
            Some(engine) if cache.shape == shape => engine.clone(),
            _ => {
                let engine = Arc::new(IntentEngine::new(snapshot.entities.clone(), snapshot.areas.clone()));
                *cache = IntentCache { shape, engine: Some(engine.clone()) };
                engine
            }
        }
    }

    /// What the user's newest message asks for, when the intent engine is
    /// sure of it and this agent may act on it.
    pub(super) fn understand_locally(&self, snapshot: &Snapshot) -> Option<Understanding> {
        let text = self.context.last().filter(|m| m.role == Role::User).map(|m| m.content.as_str())?;
        let understanding = self.intent_engine(snapshot).understand_with(text, &snapshot.entities)?;
        if !understanding.is_confident() {
            return None;
        }
        let may = if understanding.is_mutation() {
            self.agent.tools.iter().any(|t| t == CONTROL_TOOL)
        } else {
            self.agent.tools.iter().any(|t| crate::agent::HOME_READ_TOOLS.contains(&t.as_str()))
        };
        may.then_some(understanding)
    }

    /// Answers or carries out what the intent engine understood.
    pub(super) async fn run_locally(&mut self, understanding: Understanding, snapshot: Snapshot) -> Outcome {
        tracing::info!(
            intent = ?understanding.intent,
            targets = understanding.targets.len(),
            confidence = understanding.confidence,
            "understood locally, without a model"
        );
        if !understanding.is_mutation() {
            let answer = understanding
                .answer(&snapshot.entities)
                .unwrap_or_else(|| "I could not find the state of that right now.".to_string());
            return self.say(answer, FinishReason::Stop).await;
        }

        let calls: Vec<ToolCall> = understanding
            .control_calls()
            .into_iter()
            .enumerate()
            .map(|(i, args)| ToolCall::new(format!("local_{}_{i}", self.turn_id), CONTROL_TOOL, args.to_string()))
            .collect();
        let mut assistant = Message::assistant(String::new());
        assistant.tool_calls = calls.clone();
        if let Err(e) = self.store(vec![assistant.clone()]).await {
            return self.fail(steward_protocol::ErrorCode::StoreFailed, e.to_string()).await;
        }
        self.context.push(assistant);
        let results = match self.tool_round(&calls).await {
            Ok(results) => results,
            Err(outcome) => return outcome,
        };
        if let Some(outcome) = self.ask_for_approvals().await {
            return outcome;
        }
        let failures: Vec<&str> = results
            .iter()
            .map(|m| m.content.as_str())
            .filter(|c| c.starts_with("error") || c.starts_with("not executed"))
            .collect();
        if !failures.is_empty() {
            return self.say(format!("That did not work: {}", failures.join("; ")), FinishReason::Stop).await;
        }
        // The targets' states after the call, for the confirmation.
        let mut states = Vec::new();
        if let Some(home) = &self.engine.inner.options.home {
            for id in &understanding.targets {
                if let Ok(e) = home.entity(id).await {
                    states.push(e);
                }
            }
        }
        let text = understanding.confirmation(&states).unwrap_or_else(|| "Done.".to_string());
        self.say(text, FinishReason::Stop).await
    }
}
