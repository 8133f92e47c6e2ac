-- +goose Up
-- A debit changes a block's remaining_amount. The live-block indexes were
-- partial on remaining_amount > 0, which made that column indexed: every
-- debit's UPDATE then wrote new entries in every index of blocks instead of
-- a heap-only (HOT) update. They are now partial on live, which changes
-- only when a block is used up: live = (remaining_amount > 0), kept by the
-- store (a used-up block is never loaded again, so it never comes back to
-- life). A fillfactor below 100 leaves room in each page for HOT updates.
-- Built inside goose's transaction (see 00002).
ALTER TABLE blocks ADD COLUMN live boolean NOT NULL DEFAULT true;
UPDATE blocks SET live = false WHERE remaining_amount = 0;
DROP INDEX blocks_live;
DROP INDEX blocks_expiring;
CREATE INDEX blocks_live ON blocks (tenant_id, env, customer_id, seq) WHERE live;
CREATE INDEX blocks_expiring ON blocks (expires_at) WHERE live AND expires_at IS NOT NULL;
ALTER TABLE blocks SET (fillfactor = 80);
ALTER TABLE customers SET (fillfactor = 80);

-- +goose Down
DROP INDEX blocks_live;
DROP INDEX blocks_expiring;
CREATE INDEX blocks_live ON blocks (tenant_id, env, customer_id, seq) WHERE remaining_amount > 0;
CREATE INDEX blocks_expiring ON blocks (expires_at) WHERE remaining_amount > 0 AND expires_at IS NOT NULL;
ALTER TABLE blocks DROP COLUMN live;
ALTER TABLE blocks RESET (fillfactor);
ALTER TABLE customers RESET (fillfactor);
