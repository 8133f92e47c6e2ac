-- +goose Up
-- The webhook outbox. An event is written in the transaction of the change
-- that caused it, and delivered in order per customer: each customer with
-- pending events has a queue row that a dispatcher leases by moving its
-- next_attempt_at to the lease's end, so that a crashed dispatcher's queue
-- falls due again by itself. The queue row is also what serializes the
-- insert of a customer's event with a dispatcher deciding that its queue is
-- empty: both lock it first.
--
-- seq is the commit order of a customer's events: a transaction takes its
-- value only after it holds the customer's queue row (WritesApply).
CREATE TABLE webhook_events (
    tenant_id       text NOT NULL,
    env             text NOT NULL,
    id              text NOT NULL,
    seq             bigint GENERATED ALWAYS AS IDENTITY,
    customer_id     text NOT NULL,
    type            text NOT NULL,
    payload         bytea NOT NULL, -- the JSON body, kept byte for byte
    status          text NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
    tries           integer NOT NULL DEFAULT 0,
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    delivered_at    timestamptz,
    PRIMARY KEY (tenant_id, env, id)
);
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
    tenant_id   text NOT NULL,
    env         text NOT NULL,
    event_id    text NOT NULL,
    n           integer NOT NULL,
    at          timestamptz NOT NULL,
    status_code integer NOT NULL, -- 0: no answer
    error       text NOT NULL DEFAULT '',
    duration_us bigint NOT NULL,
    PRIMARY KEY (tenant_id, env, event_id, n)
);

-- One row per customer with pending events. lease_owner is '' when the
-- queue is not leased; when it is, next_attempt_at is the lease's end.
CREATE TABLE webhook_queues (
    tenant_id       text NOT NULL,
    env             text NOT NULL,
    customer_id     text NOT NULL,
    next_attempt_at timestamptz NOT NULL,
    lease_owner     text NOT NULL DEFAULT '',
    PRIMARY KEY (tenant_id, env, customer_id)
);
-- The claim, across every tenant, in due order.
CREATE INDEX webhook_queues_due ON webhook_queues (next_attempt_at);
-- A scope's earliest due queue, for its health.
CREATE INDEX webhook_queues_scope_due ON webhook_queues (tenant_id, env, next_attempt_at);

-- +goose Down
DROP TABLE webhook_queues;
DROP TABLE webhook_attempts;
DROP TABLE webhook_events;
