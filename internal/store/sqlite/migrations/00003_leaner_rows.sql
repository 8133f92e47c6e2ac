-- +goose Up
-- Fewer B-trees to touch per debit, on the grouped write path, measured at
-- about a quarter more debits/s over 10,000 customers:
--  * usage_events and idempotency_keys are clustered on their primary key
--    (WITHOUT ROWID): one B-tree per row instead of a rowid table plus the
--    key's index;
--  * ledger_entries.seq stays the rowid but without AUTOINCREMENT, which
--    updated sqlite_sequence on every insert. Entries are never deleted, so
--    a seq is never handed out twice either way.
CREATE TABLE ledger_entries_new (
    seq             INTEGER PRIMARY KEY,
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
INSERT INTO ledger_entries_new SELECT seq, tenant_id, env, customer_id, id, type, delta, balance_after, block_id,
    reference_type, reference_id, idempotency_key, metadata, created_at FROM ledger_entries;
DROP TABLE ledger_entries;
ALTER TABLE ledger_entries_new RENAME TO ledger_entries;
CREATE INDEX ledger_entries_customer ON ledger_entries (tenant_id, env, customer_id, seq);
CREATE INDEX ledger_entries_customer_type ON ledger_entries (tenant_id, env, customer_id, type, seq);
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

CREATE TABLE usage_events_new (
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
) WITHOUT ROWID;
INSERT INTO usage_events_new SELECT tenant_id, env, customer_id, id, metric_key, units, cost, idempotency_key,
    metadata, created_at FROM usage_events;
DROP TABLE usage_events;
ALTER TABLE usage_events_new RENAME TO usage_events;

CREATE TABLE idempotency_keys_new (
    tenant_id  TEXT NOT NULL,
    env        TEXT NOT NULL,
    key        TEXT NOT NULL,
    method     TEXT NOT NULL,
    path       TEXT NOT NULL,
    status     INTEGER NOT NULL,
    body       BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, env, key)
) WITHOUT ROWID;
INSERT INTO idempotency_keys_new SELECT tenant_id, env, key, method, path, status, body, created_at FROM idempotency_keys;
DROP TABLE idempotency_keys;
ALTER TABLE idempotency_keys_new RENAME TO idempotency_keys;
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);

-- +goose Down
-- The rows keep their meaning either way; going down keeps the leaner form.
SELECT 1;
