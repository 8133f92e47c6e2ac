-- +goose Up
-- A usage event was clustered on (tenant, env, customer, id): each debit's
-- insert landed on the page of its customer, one more random page in the
-- WAL per debit over many customers. It is read only by its id (the
-- ledger's metadata, through the entry's reference), and ids are
-- time-ordered, so keyed on (tenant, env, id) a group's inserts append to
-- the same few pages. The copy runs inside goose's transaction: fine for the
-- databases that exist today; a very large one takes as long as it copies.
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
    PRIMARY KEY (tenant_id, env, id)
) WITHOUT ROWID;
INSERT INTO usage_events_new SELECT tenant_id, env, customer_id, id, metric_key, units, cost, idempotency_key,
    metadata, created_at FROM usage_events;
DROP TABLE usage_events;
ALTER TABLE usage_events_new RENAME TO usage_events;

-- +goose Down
-- The rows keep their meaning either way; going down keeps this key.
SELECT 1;
