//! The activity stream: every turn's events, approval decisions, task
//! progress and model calls, in one ordered stream for watchers such as the
//! dashboard (`GET /api/events`).
//!
//! Publishing never waits: watchers that fall behind lose the oldest events
//! (they are told how many), and the turns go on. The most recent events are
//! kept so a watcher that connects, or reconnects, first sees what just
//! happened.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use steward_protocol::{ActivityEvent, Event};
use tokio::sync::{broadcast, watch};

/// Events kept for watchers that connect later.
pub const RECENT: usize = 200;
/// Events a slow watcher may fall behind by before it loses some.
const CHANNEL: usize = 1024;

/// The stream. Cheap to clone; clones publish to the same watchers.
#[derive(Clone)]
pub struct Activity {
    inner: Arc<Inner>,
}

struct Inner {
    tx: broadcast::Sender<ActivityEvent>,
    /// Set when the server stops: open streams end, so they do not hold
    /// up a graceful shutdown.
    closed: watch::Sender<bool>,
    /// The sequence number of the last event and the most recent events,
    /// under one lock so a new watcher's replay and its live stream neither
    /// overlap nor leave a gap.
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    seq: u64,
    recent: VecDeque<ActivityEvent>,
}

impl Default for Activity {
    fn default() -> Self {
        Activity::new()
    }
}

impl std::fmt::Debug for Activity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Activity").field("watchers", &self.inner.tx.receiver_count()).finish()
    }
}

impl Activity {
    pub fn new() -> Self {
        Activity {
            inner: Arc::new(Inner {
                tx: broadcast::channel(CHANNEL).0,
                closed: watch::channel(false).0,
                state: Mutex::new(State::default()),
            }),
        }
    }

    /// Adds an event. Text deltas are left out: the activity stream says
    /// what happened, a conversation's own stream carries the words.
    pub fn publish(&self, conversation_id: Option<&str>, agent: Option<&str>, event: Event) {
        if matches!(event, Event::TextDelta { .. }) {
            return;
        }
        let mut state = self.inner.state.lock().unwrap_or_else(|p| p.into_inner());
        state.seq += 1;
        let entry = ActivityEvent {
            seq: state.seq,
            at: now_ms(),
            conversation_id: conversation_id.map(str::to_string),
            agent: agent.map(str::to_string),
            event,
        };
        if state.recent.len() == RECENT {
            state.recent.pop_front();
        }
        state.recent.push_back(entry.clone());
        // No watcher is not an error.
        let _ = self.inner.tx.send(entry);
    }

    /// The kept events after `after` (a sequence number; 0 for all of them)
    /// and the live stream from the next one on.
    pub fn watch(&self, after: u64) -> (Vec<ActivityEvent>, broadcast::Receiver<ActivityEvent>) {
        let state = self.inner.state.lock().unwrap_or_else(|p| p.into_inner());
        let rx = self.inner.tx.subscribe();
        let replay = state.recent.iter().filter(|e| e.seq > after).cloned().collect();
        (replay, rx)
    }

    /// Ends every watcher's stream (the server is stopping).
    pub fn close(&self) {
        self.inner.closed.send_replace(true);
    }

    /// Resolves once [`Activity::close`] was called.
    pub fn closed(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut rx = self.inner.closed.subscribe();
        async move {
            let _ = rx.wait_for(|closed| *closed).await;
        }
    }

    /// The sequence number of the last event; 0 before the first.
    pub fn last_seq(&self) -> u64 {
        self.inner.state.lock().unwrap_or_else(|p| p.into_inner()).seq
    }
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn started(n: u32) -> Event {
        Event::TurnStarted { turn_id: format!("t{n}"), conversation_id: "c".into(), agent: "architect".into() }
    }

    #[tokio::test]
    async fn a_watcher_gets_the_recent_events_then_the_live_ones_without_gap_or_overlap() {
        let a = Activity::new();
        a.publish(Some("c"), Some("architect"), started(1));
        a.publish(Some("c"), Some("architect"), Event::TextDelta { turn_id: "t1".into(), delta: "hi".into() });
        a.publish(None, None, started(2));
        let (replay, mut rx) = a.watch(0);
        assert_eq!(replay.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![1, 2], "text deltas are not kept");
        assert_eq!(replay[0].conversation_id.as_deref(), Some("c"));
        assert_eq!(replay[1].agent, None);
        a.publish(None, None, started(3));
        let live = rx.recv().await.unwrap();
        assert_eq!((live.seq, live.event.turn_id()), (3, "t3"));
        let (replay, _) = a.watch(2);
        assert_eq!(replay.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![3]);
        assert_eq!(a.last_seq(), 3);
        // Closing ends the watchers, whether they wait already or start later.
        let waiting = tokio::spawn(a.closed());
        a.close();
        waiting.await.unwrap();
        a.closed().await;
    }

    #[test]
    fn only_the_most_recent_events_are_kept() {
        let a = Activity::new();
        for n in 0..(RECENT as u32 + 5) {
            a.publish(None, None, started(n));
        }
        let (replay, _) = a.watch(0);
        assert_eq!(replay.len(), RECENT);
        assert_eq!(replay.first().map(|e| e.seq), Some(6));
        assert_eq!(replay.last().map(|e| e.seq), Some(RECENT as u64 + 5));
    }
}
