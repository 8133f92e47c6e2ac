-- +goose Up
-- The plan catalog and its purchases. A plan is named by its key in the API
-- and listed by id (creation order); a purchase is found by its id, by its
-- customer's order id (the purchase's identity: a second purchase of one
-- order is refused), and listed per customer, newest first.
CREATE TABLE plans (
    tenant_id             TEXT NOT NULL,
    env                   TEXT NOT NULL,
    id                    TEXT NOT NULL,
    key                   TEXT NOT NULL,
    name                  TEXT NOT NULL,
    price                 INTEGER NOT NULL CHECK (price >= 0),
    credits               INTEGER NOT NULL CHECK (credits > 0),
    priority              INTEGER NOT NULL CHECK (priority BETWEEN 0 AND 100),
    duration_seconds      INTEGER CHECK (duration_seconds > 0), -- NULL: the plan's credits never expire
    pay_from_max_priority INTEGER NOT NULL DEFAULT 0,
    metadata              TEXT,
    active                INTEGER NOT NULL DEFAULT 1,
    created_at            INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, env, id)
);
CREATE UNIQUE INDEX plans_key ON plans (tenant_id, env, key);

-- A rowid table, unlike usage_events (00003): a purchase carries its debits
-- and metadata, larger rows than WITHOUT ROWID suits, and purchases are not
-- the debit path whose B-tree count that migration cut.
CREATE TABLE plan_purchases (
    tenant_id         TEXT NOT NULL,
    env               TEXT NOT NULL,
    customer_id       TEXT NOT NULL,
    id                TEXT NOT NULL,
    plan_key          TEXT NOT NULL,
    order_id          TEXT NOT NULL,
    price             INTEGER NOT NULL,
    credits           INTEGER NOT NULL,
    block_id          TEXT NOT NULL,
    debits            TEXT NOT NULL, -- JSON: [{"block_id": …, "amount": …}]
    balance_after     INTEGER NOT NULL,
    effective_balance INTEGER NOT NULL,
    metadata          TEXT,
    created_at        INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, env, id)
);
CREATE UNIQUE INDEX plan_purchases_order ON plan_purchases (tenant_id, env, customer_id, order_id);
CREATE INDEX plan_purchases_customer ON plan_purchases (tenant_id, env, customer_id, id);

-- Linked transactions: the stored answer of each, and the id on the ledger
-- entries it wrote ('' for entries of no transaction).
CREATE TABLE transactions (
    tenant_id  TEXT NOT NULL,
    env        TEXT NOT NULL,
    id         TEXT NOT NULL,
    body       BLOB NOT NULL,
    metadata   TEXT,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, env, id)
);
ALTER TABLE ledger_entries ADD COLUMN transaction_id TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE ledger_entries DROP COLUMN transaction_id;
DROP TABLE transactions;
DROP TABLE plan_purchases;
DROP TABLE plans;
