-- +goose Up
-- Reservations (holds). A hold is read by its id, listed newest first (ids
-- are time-ordered) per customer or across the scope, either filtered by
-- status, and, while active, loaded with its customer's account for every
-- write and swept once its expires_at has passed. Each of those reads binds
-- the leading columns of one index below; the scope-wide list without a
-- status walks the primary key.
--
-- A rowid table, like plan_purchases (00004): a hold carries metadata, and
-- its several indexes would each repeat a WITHOUT ROWID table's whole key.
CREATE TABLE reservations (
    tenant_id        TEXT NOT NULL,
    env              TEXT NOT NULL,
    customer_id      TEXT NOT NULL,
    id               TEXT NOT NULL,
    metric_key       TEXT NOT NULL,
    estimated_units  INTEGER NOT NULL,
    amount           INTEGER NOT NULL CHECK (amount >= 0),
    status           TEXT NOT NULL CHECK (status IN ('active', 'committed', 'released', 'expired')),
    expires_at       INTEGER NOT NULL,
    committed_amount INTEGER NOT NULL DEFAULT 0 CHECK (committed_amount >= 0),
    released_amount  INTEGER NOT NULL DEFAULT 0 CHECK (released_amount >= 0),
    metadata         TEXT,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, env, id)
);
-- Unique, which it is anyway (it holds the primary key): without statistics
-- SQLite otherwise guesses that the whole key names several rows, and ran a
-- multi-row UPDATE … FROM (VALUES …) as a walk through the scope's holds,
-- probing the list for each (the plan test caught it).
CREATE UNIQUE INDEX reservations_customer ON reservations (tenant_id, env, customer_id, id);
CREATE INDEX reservations_customer_status ON reservations (tenant_id, env, customer_id, status, id);
CREATE INDEX reservations_status ON reservations (tenant_id, env, status, id);
-- Only the holds that count in an account's reserved balance: a customer's
-- settled history never slows the load of its account, nor the sweep.
CREATE INDEX reservations_active ON reservations (tenant_id, env, customer_id, id) WHERE status = 'active';
CREATE INDEX reservations_expiring ON reservations (expires_at) WHERE status = 'active';

-- +goose Down
DROP TABLE reservations;
