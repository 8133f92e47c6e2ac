-- +goose Up
-- Reservations (holds). A hold is read by its id, listed newest first (ids
-- are time-ordered) per customer or across the scope, either filtered by
-- status, and, while active, loaded with its customer's account for every
-- write and swept once its expires_at has passed. Each of those reads binds
-- the leading columns of one index below; the scope-wide list without a
-- status walks the primary key.
CREATE TABLE reservations (
    tenant_id        text NOT NULL,
    env              text NOT NULL,
    customer_id      text NOT NULL,
    id               text NOT NULL,
    metric_key       text NOT NULL,
    estimated_units  bigint NOT NULL,
    amount           bigint NOT NULL CHECK (amount >= 0),
    status           text NOT NULL CHECK (status IN ('active', 'committed', 'released', 'expired')),
    expires_at       timestamptz NOT NULL,
    committed_amount bigint NOT NULL DEFAULT 0 CHECK (committed_amount >= 0),
    released_amount  bigint NOT NULL DEFAULT 0 CHECK (released_amount >= 0),
    metadata         text,
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, env, id)
);
-- Unique, which it is anyway (it holds the primary key), as in SQLite's
-- schema, whose planner needs to know it.
CREATE UNIQUE INDEX reservations_customer ON reservations (tenant_id, env, customer_id, id);
CREATE INDEX reservations_customer_status ON reservations (tenant_id, env, customer_id, status, id);
CREATE INDEX reservations_status ON reservations (tenant_id, env, status, id);
-- Only the holds that count in an account's reserved balance: a customer's
-- settled history never slows the load of its account, nor the sweep.
CREATE INDEX reservations_active ON reservations (tenant_id, env, customer_id, id) WHERE status = 'active';
CREATE INDEX reservations_expiring ON reservations (expires_at) WHERE status = 'active';

-- +goose Down
DROP TABLE reservations;
