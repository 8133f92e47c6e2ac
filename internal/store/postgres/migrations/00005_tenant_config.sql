-- +goose Up
-- A tenant's settings per environment: webhook target and signing secret,
-- low-balance threshold. One row per scope, written rarely.
CREATE TABLE tenant_configs (
    tenant_id             text NOT NULL,
    env                   text NOT NULL,
    webhook_url           text NOT NULL DEFAULT '',
    webhook_secret        bytea,
    low_balance_threshold bigint CHECK (low_balance_threshold >= 0),
    updated_at            timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, env)
);

-- +goose Down
DROP TABLE tenant_configs;
