-- Approvals: tool calls the policy said must wait for a person.
--
-- `status` moves pending -> approved | rejected | expired, and approved ->
-- executed | failed, each step by a conditional UPDATE so that two
-- simultaneous decisions cannot both take effect. `started_at` is set once,
-- by the one process that runs the action; an approval found `approved`
-- with `started_at` set after a restart was interrupted mid-run and is
-- never run again. `arguments`, `targets` and `preview` are JSON text.

CREATE TABLE approvals (
    id TEXT PRIMARY KEY,
    conversation_id TEXT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    turn_id TEXT NOT NULL,
    agent TEXT NOT NULL,
    call_id TEXT NOT NULL,
    tool TEXT NOT NULL,
    arguments TEXT NOT NULL,
    effect TEXT NOT NULL,
    targets TEXT NOT NULL,
    preview TEXT NOT NULL,
    kind TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    decided_by TEXT,
    decided_at BIGINT,
    scope TEXT,
    idempotency_key TEXT NOT NULL UNIQUE,
    started_at BIGINT,
    finished_at BIGINT,
    outcome TEXT
);

CREATE INDEX approvals_status_idx ON approvals (status, created_at);
CREATE INDEX approvals_conversation_idx ON approvals (conversation_id, created_at);

-- Debug mode per conversation: tool inputs and outputs streamed verbatim.
ALTER TABLE conversations ADD COLUMN debug BIGINT NOT NULL DEFAULT 0;
