-- +goose Up
-- A usage event is read only by its id (the ledger's metadata, through the
-- entry's reference), and ids are time-ordered: keyed on (tenant, env, id),
-- a group's inserts append to the right edge of the key's index instead of
-- touching one random page per customer. Rebuilt inside goose's
-- transaction (see 00002).
ALTER TABLE usage_events DROP CONSTRAINT usage_events_pkey;
ALTER TABLE usage_events ADD PRIMARY KEY (tenant_id, env, id);

-- +goose Down
ALTER TABLE usage_events DROP CONSTRAINT usage_events_pkey;
ALTER TABLE usage_events ADD PRIMARY KEY (tenant_id, env, customer_id, id);
