-- +goose Up
-- A debit changes a block's remaining_amount. The live-block indexes were
-- partial on remaining_amount > 0, so every debit rewrote their entry (a
-- partial index is maintained whenever a column of its WHERE changes), one
-- more page in the WAL per debit. They are now partial on live, which
-- changes only when a block is used up: live = (remaining_amount > 0), kept
-- by the store (a used-up block is never loaded again, so it never comes
-- back to life).
ALTER TABLE blocks ADD COLUMN live INTEGER NOT NULL DEFAULT 1 CHECK (live IN (0, 1));
UPDATE blocks SET live = 0 WHERE remaining_amount = 0;
DROP INDEX blocks_live;
DROP INDEX blocks_expiring;
CREATE INDEX blocks_live ON blocks (tenant_id, env, customer_id, seq) WHERE live = 1;
CREATE INDEX blocks_expiring ON blocks (expires_at) WHERE live = 1 AND expires_at IS NOT NULL;

-- +goose Down
DROP INDEX blocks_live;
DROP INDEX blocks_expiring;
CREATE INDEX blocks_live ON blocks (tenant_id, env, customer_id, seq) WHERE remaining_amount > 0;
CREATE INDEX blocks_expiring ON blocks (expires_at) WHERE remaining_amount > 0 AND expires_at IS NOT NULL;
ALTER TABLE blocks DROP COLUMN live;
