-- +goose Up
-- A tenant's settings per environment: webhook target and signing secret,
-- low-balance threshold. One row per scope, written rarely.
CREATE TABLE tenant_configs (
    tenant_id             TEXT NOT NULL,
    env                   TEXT NOT NULL,
    webhook_url           TEXT NOT NULL DEFAULT '',
    webhook_secret        BLOB,
    low_balance_threshold INTEGER CHECK (low_balance_threshold >= 0),
    updated_at            INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, env)
) WITHOUT ROWID;

-- +goose Down
DROP TABLE tenant_configs;
