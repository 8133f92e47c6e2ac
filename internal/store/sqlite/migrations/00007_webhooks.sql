-- +goose Up
-- The webhook outbox. An event is written in the transaction of the change
-- that caused it, and delivered in order per customer: each customer with
-- pending events has a queue row that a dispatcher leases by moving its
-- next_attempt_at to the lease's end, so that a crashed dispatcher's queue
-- falls due again by itself.
--
-- A rowid table: seq, the rowid, numbers events in commit order (the writer
-- is alone), and payloads make rows larger than WITHOUT ROWID suits. Only
-- the retention purge deletes events, the oldest delivered or failed ones:
-- a seq it frees is reused only once no newer event exists, which keeps the
-- order among the events that do.
CREATE TABLE webhook_events (
    seq             INTEGER PRIMARY KEY,
    tenant_id       TEXT NOT NULL,
    env             TEXT NOT NULL,
    id              TEXT NOT NULL,
    customer_id     TEXT NOT NULL,
    type            TEXT NOT NULL,
    payload         BLOB NOT NULL, -- the JSON body, kept byte for byte
    status          TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
    tries           INTEGER NOT NULL DEFAULT 0,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    delivered_at    INTEGER
);
CREATE UNIQUE INDEX webhook_events_id ON webhook_events (tenant_id, env, id);
-- A queue's events: only the pending ones, so a customer's delivered history
-- never slows a claim.
CREATE INDEX webhook_events_pending ON webhook_events (tenant_id, env, customer_id, seq) WHERE status = 'pending';
-- Lists by status and the health counts (ids are time-ordered, so a window
-- of time is a range of ids); lists by type; lists by both.
CREATE INDEX webhook_events_status ON webhook_events (tenant_id, env, status, id);
CREATE INDEX webhook_events_type ON webhook_events (tenant_id, env, type, id);
CREATE INDEX webhook_events_status_type ON webhook_events (tenant_id, env, status, type, id);

-- n is the event's attempt count after the attempt: 1 for its first.
CREATE TABLE webhook_attempts (
    tenant_id   TEXT NOT NULL,
    env         TEXT NOT NULL,
    event_id    TEXT NOT NULL,
    n           INTEGER NOT NULL,
    at          INTEGER NOT NULL,
    status_code INTEGER NOT NULL, -- 0: no answer
    error       TEXT NOT NULL DEFAULT '',
    duration_us INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, env, event_id, n)
) WITHOUT ROWID;

-- One row per customer with pending events. lease_owner is '' when the
-- queue is not leased; when it is, next_attempt_at is the lease's end.
CREATE TABLE webhook_queues (
    tenant_id       TEXT NOT NULL,
    env             TEXT NOT NULL,
    customer_id     TEXT NOT NULL,
    next_attempt_at INTEGER NOT NULL,
    lease_owner     TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (tenant_id, env, customer_id)
) WITHOUT ROWID;
-- The claim, across every tenant, in due order.
CREATE INDEX webhook_queues_due ON webhook_queues (next_attempt_at);
-- A scope's earliest due queue, for its health.
CREATE INDEX webhook_queues_scope_due ON webhook_queues (tenant_id, env, next_attempt_at);

-- +goose Down
DROP TABLE webhook_queues;
DROP TABLE webhook_attempts;
DROP TABLE webhook_events;
