-- Execution logs are kept for every run a person approved, not only for
-- tasks: `task_id` holds the task's id, or, for an approved call run on its
-- own (an Ansible playbook, say), the approval's id. The foreign key to
-- tasks goes; the rows stay as they are.
CREATE TABLE execution_logs_next (
    task_id TEXT NOT NULL,
    seq BIGINT NOT NULL,
    step_id TEXT,
    level TEXT NOT NULL,
    message TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (task_id, seq)
);
INSERT INTO execution_logs_next (task_id, seq, step_id, level, message, created_at)
    SELECT task_id, seq, step_id, level, message, created_at FROM execution_logs;
DROP TABLE execution_logs;
ALTER TABLE execution_logs_next RENAME TO execution_logs;
