-- +goose Up
-- A customer's ledger listed by type (GET …/ledger?type=usage) finds its
-- page through this index instead of reading the customer's whole history.
CREATE INDEX ledger_entries_customer_type ON ledger_entries (tenant_id, env, customer_id, type, seq);

-- +goose Down
DROP INDEX ledger_entries_customer_type;
