package postgres_test

// fillSQL fills an empty database with made-up rows, shaped like a busy
// server's: tenants with hundreds of customers in each environment, blocks
// spent and live and expiring, ledger entries of every type, usage events,
// and idempotency keys stored over the weeks around the suite's clock
// (2026-01-01). The statistics keep fewer most-common values than there are
// tenants, so that the suite's tenants, which the statistics have not seen,
// are estimated like an average one instead of an empty one. It runs in a
// few seconds.
const fillSQL = `
INSERT INTO tenants (id, name, created_at)
	SELECT 'tn' || i, 'tenant', timestamptz '2026-01-01' FROM generate_series(1, 25) AS i;
INSERT INTO api_keys (hash, prefix, tenant_id, env, created_at)
	SELECT md5('key' || i), 'ck_', 'tn' || (i % 25 + 1), 'live', timestamptz '2026-01-01' FROM generate_series(1, 1000) AS i;
INSERT INTO customers (tenant_id, env, id, external_id, created_at, balance)
	SELECT 'tn' || (i % 25 + 1), (ARRAY['live', 'test'])[i % 2 + 1], 'cu' || i, 'user_' || i,
		timestamptz '2026-01-01' + i * interval '1 second', 1000
	FROM generate_series(1, 20000) AS i;
INSERT INTO billable_metrics (tenant_id, env, id, key, created_at)
	SELECT 'tn' || (i % 25 + 1), (ARRAY['live', 'test'])[i % 2 + 1], 'bm' || i, 'metric_' || i, timestamptz '2026-01-01'
	FROM generate_series(1, 8000) AS i;
INSERT INTO metering_rules (tenant_id, env, id, metric_key, cost_type, active, created_at)
	SELECT 'tn' || (i % 25 + 1), (ARRAY['live', 'test'])[i % 2 + 1], 'mr' || i, 'metric_' || (i % 8000 + 1), 'flat',
		i <= 8000, timestamptz '2026-01-01'
	FROM generate_series(1, 16000) AS i;
INSERT INTO blocks (tenant_id, env, customer_id, id, seq, original_amount, remaining_amount, priority, expires_at,
		source, created_at, live)
	SELECT c.tenant_id, c.env, c.id, 'blk_' || c.id || '_' || s, s, 100, CASE WHEN s = 1 THEN 0 ELSE 100 END, 0,
		CASE WHEN s = 2 AND length(c.id) % 2 = 0 THEN c.created_at + interval '30 days' END, 'grant', c.created_at, s <> 1
	FROM customers AS c, generate_series(1, 2) AS s;
INSERT INTO ledger_entries (tenant_id, env, customer_id, id, type, delta, balance_after, created_at)
	SELECT c.tenant_id, c.env, c.id, 'txn_' || c.id || '_' || s, (ARRAY['grant', 'usage', 'expire'])[s], 1, s,
		c.created_at + s * interval '1 minute'
	FROM customers AS c, generate_series(1, 3) AS s;
INSERT INTO usage_events (tenant_id, env, customer_id, id, metric_key, units, cost, idempotency_key, created_at)
	SELECT c.tenant_id, c.env, c.id, 'evt_' || c.id, 'metric_1', 1, 1, 'key-' || c.id, c.created_at
	FROM customers AS c;
INSERT INTO idempotency_keys (tenant_id, env, key, method, path, status, body, created_at)
	SELECT 'tn' || (i % 25 + 1), (ARRAY['live', 'test'])[i % 2 + 1], 'key-' || i, 'POST', '/v1/usage', 201, '\x7b7d',
		timestamptz '2025-12-01' + i * interval '2 minutes'
	FROM generate_series(1, 40000) AS i;
INSERT INTO plans (tenant_id, env, id, key, name, price, credits, priority, created_at)
	SELECT 'tn' || (i % 25 + 1), (ARRAY['live', 'test'])[i % 2 + 1], 'pln_' || i, 'plan_' || i, 'plan', 100, 1000, 10,
		timestamptz '2026-01-01'
	FROM generate_series(1, 2000) AS i;
INSERT INTO plan_purchases (tenant_id, env, customer_id, id, plan_key, order_id, price, credits, block_id, debits,
		balance_after, effective_balance, created_at)
	SELECT c.tenant_id, c.env, c.id, 'pur_' || c.id || '_' || s, 'plan_1', 'ord_' || c.id || '_' || s, 100, 1000,
		'blk_' || c.id || '_' || s, '[]', 1000, 1000, c.created_at + s * interval '1 day'
	FROM customers AS c, generate_series(1, 2) AS s;
-- Ids spread around the suite's own ("res_06…"), as time-ordered ids made
-- over months are: with every id sorting above the suite's, a page's cursor
-- (id < $n) looked to select nothing, and the planner walked the scope's
-- holds of a status instead of the customer's.
INSERT INTO reservations (tenant_id, env, customer_id, id, metric_key, estimated_units, amount, status, expires_at,
		committed_amount, released_amount, created_at, updated_at)
	SELECT c.tenant_id, c.env, c.id, 'res_0' || md5(c.id || '_' || s), 'metric_1', 10, 100, r.status,
		c.created_at + s * interval '1 hour' + interval '5 minutes',
		CASE r.status WHEN 'committed' THEN 80 ELSE 0 END, CASE r.status WHEN 'active' THEN 0 WHEN 'committed' THEN 20 ELSE 100 END,
		c.created_at + s * interval '1 hour', c.created_at + s * interval '1 hour'
	FROM customers AS c, generate_series(1, 4) AS s,
		LATERAL (SELECT CASE WHEN s <= 2 THEN 'committed' WHEN s = 3 THEN (ARRAY['released', 'expired'])[length(c.id) % 2 + 1]
			WHEN length(c.id) % 2 = 0 THEN 'active' ELSE 'committed' END AS status) AS r;
-- Webhook events: four per customer, most delivered, a few failed, one
-- pending for a customer in twenty, whose queue is due; ids spread around
-- the suite's own ("whevt_06…"), as for reservations.
INSERT INTO webhook_events (tenant_id, env, id, customer_id, type, payload, status, tries, attempts, next_attempt_at,
		created_at, updated_at, delivered_at)
	SELECT c.tenant_id, c.env, 'whevt_0' || md5(c.id || '_' || s), c.id,
		(ARRAY['credit.granted', 'balance.low', 'usage.recorded'])[s % 3 + 1], '\x7b7d', w.status, 1, 1,
		c.created_at + s * interval '1 hour', c.created_at + s * interval '1 hour', c.created_at + s * interval '1 hour',
		CASE w.status WHEN 'delivered' THEN c.created_at + s * interval '1 hour' END
	FROM customers AS c, generate_series(1, 4) AS s,
		LATERAL (SELECT CASE WHEN s = 4 AND abs(hashtext(c.id)) % 20 = 0 THEN 'pending'
			WHEN s = 3 AND abs(hashtext(c.id)) % 50 = 1 THEN 'failed' ELSE 'delivered' END AS status) AS w;
INSERT INTO webhook_attempts (tenant_id, env, event_id, n, at, status_code, error, duration_us)
	SELECT tenant_id, env, id, 1, created_at, CASE status WHEN 'delivered' THEN 200 ELSE 500 END, '', 50000
	FROM webhook_events;
INSERT INTO webhook_queues (tenant_id, env, customer_id, next_attempt_at, lease_owner)
	SELECT tenant_id, env, customer_id, min(next_attempt_at), '' FROM webhook_events WHERE status = 'pending'
	GROUP BY tenant_id, env, customer_id;
SET default_statistics_target = 10;
ANALYZE;
`
