-- +goose Up
-- Times are Unix milliseconds (UTC): the API answers with millisecond
-- precision, and integers compare and index cheaply. Every tenant-owned table
-- carries (tenant_id, env), the wall between tenants and environments, and
-- every hot query touches one customer's rows.
CREATE TABLE tenants (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    created_at INTEGER NOT NULL
);

CREATE TABLE api_keys (
    hash       TEXT PRIMARY KEY,
    prefix     TEXT NOT NULL,
    tenant_id  TEXT NOT NULL REFERENCES tenants (id),
    env        TEXT NOT NULL CHECK (env IN ('live', 'test')),
    created_at INTEGER NOT NULL
);

CREATE TABLE customers (
    tenant_id       TEXT NOT NULL,
    env             TEXT NOT NULL,
    id              TEXT NOT NULL,
    external_id     TEXT,
    display_name    TEXT NOT NULL DEFAULT '',
    metadata        TEXT,
    created_at      INTEGER NOT NULL,
    balance         INTEGER NOT NULL DEFAULT 0,
    reserved        INTEGER NOT NULL DEFAULT 0 CHECK (reserved >= 0),
    lifetime_earned INTEGER NOT NULL DEFAULT 0,
    version         INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, env, id)
);
CREATE UNIQUE INDEX customers_external_id ON customers (tenant_id, env, external_id);

CREATE TABLE billable_metrics (
    tenant_id   TEXT NOT NULL,
    env         TEXT NOT NULL,
    id          TEXT NOT NULL,
    key         TEXT NOT NULL,
    name        TEXT NOT NULL DEFAULT '',
    description TEXT NOT NULL DEFAULT '',
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, env, id)
);
CREATE UNIQUE INDEX billable_metrics_key ON billable_metrics (tenant_id, env, key);

CREATE TABLE metering_rules (
    tenant_id  TEXT NOT NULL,
    env        TEXT NOT NULL,
    id         TEXT NOT NULL,
    metric_key TEXT NOT NULL,
    cost_type  TEXT NOT NULL,
    flat_cost  INTEGER NOT NULL DEFAULT 0,
    unit_cost  INTEGER NOT NULL DEFAULT 0,
    unit_size  INTEGER NOT NULL DEFAULT 1,
    tier_mode  TEXT NOT NULL DEFAULT '',
    tiers      TEXT,
    active     INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, env, id)
);
CREATE UNIQUE INDEX metering_rules_active ON metering_rules (tenant_id, env, metric_key) WHERE active = 1;

CREATE TABLE blocks (
    tenant_id           TEXT NOT NULL,
    env                 TEXT NOT NULL,
    customer_id         TEXT NOT NULL,
    id                  TEXT NOT NULL,
    seq                 INTEGER NOT NULL,
    original_amount     INTEGER NOT NULL CHECK (original_amount > 0),
    remaining_amount    INTEGER NOT NULL CHECK (remaining_amount >= 0 AND remaining_amount <= original_amount),
    priority            INTEGER NOT NULL,
    expires_at          INTEGER,
    price_paid          INTEGER NOT NULL DEFAULT 0,
    source              TEXT NOT NULL,
    reason              TEXT NOT NULL DEFAULT '',
    currency            TEXT NOT NULL DEFAULT '',
    external_payment_id TEXT NOT NULL DEFAULT '',
    metadata            TEXT,
    created_at          INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, env, customer_id, id)
);
CREATE INDEX blocks_live ON blocks (tenant_id, env, customer_id, seq) WHERE remaining_amount > 0;
CREATE INDEX blocks_expiring ON blocks (expires_at) WHERE remaining_amount > 0 AND expires_at IS NOT NULL;

CREATE TABLE ledger_entries (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id       TEXT NOT NULL,
    env             TEXT NOT NULL,
    customer_id     TEXT NOT NULL,
    id              TEXT NOT NULL UNIQUE,
    type            TEXT NOT NULL,
    delta           INTEGER NOT NULL,
    balance_after   INTEGER NOT NULL,
    block_id        TEXT NOT NULL DEFAULT '',
    reference_type  TEXT NOT NULL DEFAULT '',
    reference_id    TEXT NOT NULL DEFAULT '',
    idempotency_key TEXT NOT NULL DEFAULT '',
    metadata        TEXT,
    created_at      INTEGER NOT NULL
);
CREATE INDEX ledger_entries_customer ON ledger_entries (tenant_id, env, customer_id, seq);

-- Append-only, enforced by the database itself.
-- +goose StatementBegin
CREATE TRIGGER ledger_entries_no_update BEFORE UPDATE ON ledger_entries
BEGIN
    SELECT RAISE(ABORT, 'ledger entries are append-only');
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER ledger_entries_no_delete BEFORE DELETE ON ledger_entries
BEGIN
    SELECT RAISE(ABORT, 'ledger entries are append-only');
END;
-- +goose StatementEnd

CREATE TABLE usage_events (
    tenant_id       TEXT NOT NULL,
    env             TEXT NOT NULL,
    customer_id     TEXT NOT NULL,
    id              TEXT NOT NULL,
    metric_key      TEXT NOT NULL,
    units           INTEGER NOT NULL,
    cost            INTEGER NOT NULL,
    idempotency_key TEXT NOT NULL,
    metadata        TEXT,
    created_at      INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, env, customer_id, id)
);

CREATE TABLE idempotency_keys (
    tenant_id  TEXT NOT NULL,
    env        TEXT NOT NULL,
    key        TEXT NOT NULL,
    method     TEXT NOT NULL,
    path       TEXT NOT NULL,
    status     INTEGER NOT NULL,
    body       BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, env, key)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);

-- +goose Down
DROP TABLE idempotency_keys;
DROP TABLE usage_events;
DROP TABLE ledger_entries;
DROP TABLE blocks;
DROP TABLE metering_rules;
DROP TABLE billable_metrics;
DROP TABLE customers;
DROP TABLE api_keys;
DROP TABLE tenants;
