-- +goose Up
-- Every tenant-owned table is keyed by (tenant_id, env, ...) and every hot
-- query touches one customer's rows, so that the schema can be distributed by
-- (tenant, customer) on a Postgres-compatible distributed engine.
CREATE TABLE tenants (
    id         text PRIMARY KEY,
    name       text NOT NULL,
    created_at timestamptz NOT NULL
);

CREATE TABLE api_keys (
    hash       text PRIMARY KEY,
    prefix     text NOT NULL,
    tenant_id  text NOT NULL REFERENCES tenants (id),
    env        text NOT NULL CHECK (env IN ('live', 'test')),
    created_at timestamptz NOT NULL
);

CREATE TABLE customers (
    tenant_id       text NOT NULL,
    env             text NOT NULL,
    id              text NOT NULL,
    external_id     text,
    display_name    text NOT NULL DEFAULT '',
    metadata        text,
    created_at      timestamptz NOT NULL,
    balance         bigint NOT NULL DEFAULT 0,
    reserved        bigint NOT NULL DEFAULT 0 CHECK (reserved >= 0),
    lifetime_earned bigint NOT NULL DEFAULT 0,
    version         bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, env, id)
);
CREATE UNIQUE INDEX customers_external_id ON customers (tenant_id, env, external_id);

CREATE TABLE billable_metrics (
    tenant_id   text NOT NULL,
    env         text NOT NULL,
    id          text NOT NULL,
    key         text NOT NULL,
    name        text NOT NULL DEFAULT '',
    description text NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, env, id)
);
CREATE UNIQUE INDEX billable_metrics_key ON billable_metrics (tenant_id, env, key);

CREATE TABLE metering_rules (
    tenant_id  text NOT NULL,
    env        text NOT NULL,
    id         text NOT NULL,
    metric_key text NOT NULL,
    cost_type  text NOT NULL,
    flat_cost  bigint NOT NULL DEFAULT 0,
    unit_cost  bigint NOT NULL DEFAULT 0,
    unit_size  bigint NOT NULL DEFAULT 1,
    tier_mode  text NOT NULL DEFAULT '',
    tiers      text,
    active     boolean NOT NULL,
    created_at timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, env, id)
);
CREATE UNIQUE INDEX metering_rules_active ON metering_rules (tenant_id, env, metric_key) WHERE active;

CREATE TABLE blocks (
    tenant_id           text NOT NULL,
    env                 text NOT NULL,
    customer_id         text NOT NULL,
    id                  text NOT NULL,
    seq                 bigint NOT NULL,
    original_amount     bigint NOT NULL CHECK (original_amount > 0),
    remaining_amount    bigint NOT NULL CHECK (remaining_amount >= 0 AND remaining_amount <= original_amount),
    priority            integer NOT NULL,
    expires_at          timestamptz,
    price_paid          bigint NOT NULL DEFAULT 0,
    source              text NOT NULL,
    reason              text NOT NULL DEFAULT '',
    currency            text NOT NULL DEFAULT '',
    external_payment_id text NOT NULL DEFAULT '',
    metadata            text,
    created_at          timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, env, customer_id, id)
);
CREATE INDEX blocks_live ON blocks (tenant_id, env, customer_id, seq) WHERE remaining_amount > 0;
CREATE INDEX blocks_expiring ON blocks (expires_at) WHERE remaining_amount > 0 AND expires_at IS NOT NULL;

CREATE TABLE ledger_entries (
    seq             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id       text NOT NULL,
    env             text NOT NULL,
    customer_id     text NOT NULL,
    id              text NOT NULL UNIQUE,
    type            text NOT NULL,
    delta           bigint NOT NULL,
    balance_after   bigint NOT NULL,
    block_id        text NOT NULL DEFAULT '',
    reference_type  text NOT NULL DEFAULT '',
    reference_id    text NOT NULL DEFAULT '',
    idempotency_key text NOT NULL DEFAULT '',
    metadata        text,
    created_at      timestamptz NOT NULL
);
CREATE INDEX ledger_entries_customer ON ledger_entries (tenant_id, env, customer_id, seq);

-- Append-only, enforced by the database itself.
-- +goose StatementBegin
CREATE FUNCTION ledger_entries_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'ledger entries are append-only';
END;
$$;
-- +goose StatementEnd
CREATE TRIGGER ledger_entries_no_change BEFORE UPDATE OR DELETE ON ledger_entries
    FOR EACH ROW EXECUTE FUNCTION ledger_entries_append_only();

CREATE TABLE usage_events (
    tenant_id       text NOT NULL,
    env             text NOT NULL,
    customer_id     text NOT NULL,
    id              text NOT NULL,
    metric_key      text NOT NULL,
    units           bigint NOT NULL,
    cost            bigint NOT NULL,
    idempotency_key text NOT NULL,
    metadata        text,
    created_at      timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, env, customer_id, id)
);

CREATE TABLE idempotency_keys (
    tenant_id  text NOT NULL,
    env        text NOT NULL,
    key        text NOT NULL,
    method     text NOT NULL,
    path       text NOT NULL,
    status     integer NOT NULL,
    body       bytea NOT NULL,
    created_at timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, env, key)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);

-- +goose Down
DROP TABLE idempotency_keys;
DROP TABLE usage_events;
DROP TABLE ledger_entries;
DROP FUNCTION ledger_entries_append_only();
DROP TABLE blocks;
DROP TABLE metering_rules;
DROP TABLE billable_metrics;
DROP TABLE customers;
DROP TABLE api_keys;
DROP TABLE tenants;
