-- Tasks and plans: a request that needs several steps, its plan (a DAG of
-- steps) and what happened while it ran.
--
-- `tasks.status` moves planning -> awaiting_approval -> running -> succeeded |
-- failed | cancelled (or awaiting_approval -> rejected), each move a
-- conditional UPDATE so a cancel and a finish racing have one winner. A step
-- moves to `running` only while its task is running (checked in the same
-- UPDATE). Costs are in micro-dollars (BIGINT, as in the usage ledger);
-- `arguments` and `depends_on` are JSON text.

CREATE TABLE tasks (
    id TEXT PRIMARY KEY,
    request TEXT NOT NULL,
    status TEXT NOT NULL,
    conversation_id TEXT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    approval_id TEXT,
    plan_summary TEXT,
    estimated_cost_micros BIGINT NOT NULL DEFAULT 0,
    error TEXT,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    finished_at BIGINT
);

CREATE INDEX tasks_status_idx ON tasks (status, created_at);
CREATE INDEX tasks_created_idx ON tasks (created_at);

CREATE TABLE task_steps (
    task_id TEXT NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    step_id TEXT NOT NULL,
    position BIGINT NOT NULL,
    agent TEXT NOT NULL,
    tool TEXT NOT NULL,
    arguments TEXT NOT NULL,
    description TEXT NOT NULL,
    depends_on TEXT NOT NULL,
    effect TEXT NOT NULL,
    estimated_cost_micros BIGINT NOT NULL DEFAULT 0,
    status TEXT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    output TEXT,
    error TEXT,
    started_at BIGINT,
    finished_at BIGINT,
    PRIMARY KEY (task_id, step_id)
);

CREATE TABLE execution_logs (
    task_id TEXT NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    seq BIGINT NOT NULL,
    step_id TEXT,
    level TEXT NOT NULL,
    message TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (task_id, seq)
);
