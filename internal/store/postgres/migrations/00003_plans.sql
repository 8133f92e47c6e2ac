-- +goose Up
-- The plan catalog and its purchases. A plan is named by its key in the API
-- and listed by id (creation order); a purchase is found by its id, by its
-- customer's order id (the purchase's identity: a second purchase of one
-- order is refused), and listed per customer, newest first.
CREATE TABLE plans (
    tenant_id             text NOT NULL,
    env                   text NOT NULL,
    id                    text NOT NULL,
    key                   text NOT NULL,
    name                  text NOT NULL,
    price                 bigint NOT NULL CHECK (price >= 0),
    credits               bigint NOT NULL CHECK (credits > 0),
    priority              integer NOT NULL CHECK (priority BETWEEN 0 AND 100),
    duration_seconds      bigint CHECK (duration_seconds > 0), -- NULL: the plan's credits never expire
    pay_from_max_priority integer NOT NULL DEFAULT 0,
    metadata              text,
    active                boolean NOT NULL DEFAULT true,
    created_at            timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, env, id)
);
CREATE UNIQUE INDEX plans_key ON plans (tenant_id, env, key);

CREATE TABLE plan_purchases (
    tenant_id         text NOT NULL,
    env               text NOT NULL,
    customer_id       text NOT NULL,
    id                text NOT NULL,
    plan_key          text NOT NULL,
    order_id          text NOT NULL,
    price             bigint NOT NULL,
    credits           bigint NOT NULL,
    block_id          text NOT NULL,
    debits            text NOT NULL, -- JSON: [{"block_id": …, "amount": …}]
    balance_after     bigint NOT NULL,
    effective_balance bigint NOT NULL,
    metadata          text,
    created_at        timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, env, id)
);
CREATE UNIQUE INDEX plan_purchases_order ON plan_purchases (tenant_id, env, customer_id, order_id);
CREATE INDEX plan_purchases_customer ON plan_purchases (tenant_id, env, customer_id, id);
-- Without it the planner multiplies the selectivities of tenant, env and
-- customer as if they were independent, expects one row per customer, and
-- finds an order through plan_purchases_customer as cheaply as through
-- plan_purchases_order, reading the customer's every purchase (the plan test
-- caught it). With it, a customer's purchases are counted as they are.
CREATE STATISTICS plan_purchases_customer_stats ON tenant_id, env, customer_id FROM plan_purchases;

-- Linked transactions: the stored answer of each, and the id on the ledger
-- entries it wrote ('' for entries of no transaction). A column with a
-- constant default is added without rewriting the table.
CREATE TABLE transactions (
    tenant_id  text NOT NULL,
    env        text NOT NULL,
    id         text NOT NULL,
    body       bytea NOT NULL,
    metadata   text,
    created_at timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, env, id)
);
ALTER TABLE ledger_entries ADD COLUMN transaction_id text NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE ledger_entries DROP COLUMN transaction_id;
DROP TABLE transactions;
DROP TABLE plan_purchases;
DROP TABLE plans;
