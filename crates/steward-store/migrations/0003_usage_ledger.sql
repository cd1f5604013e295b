-- The usage ledger: one row per model call made by the router.
--
-- Costs are BIGINT millionths of the price table's currency unit, so sums
-- are exact on both backends. `local` is 0/1. `fallback_path` lists the
-- deployments tried before this one, separated by ' > '.

CREATE TABLE usage_ledger (
    id TEXT PRIMARY KEY,
    created_at BIGINT NOT NULL,
    caller TEXT,
    tier TEXT,
    provider TEXT NOT NULL,
    model TEXT NOT NULL,
    prompt_tokens BIGINT NOT NULL,
    completion_tokens BIGINT NOT NULL,
    cached_tokens BIGINT NOT NULL,
    cost_micros BIGINT NOT NULL,
    latency_ms BIGINT NOT NULL,
    ttft_ms BIGINT,
    outcome TEXT NOT NULL,
    local BIGINT NOT NULL,
    fallback_path TEXT,
    trace_id TEXT
);

CREATE INDEX usage_ledger_created_at_idx ON usage_ledger (created_at);
