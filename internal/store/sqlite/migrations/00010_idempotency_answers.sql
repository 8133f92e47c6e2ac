-- +goose Up
-- An idempotency record held its stored answer (a few hundred bytes) in the
-- key's row, clustered on the key: client keys are random, so the table was
-- a fat B-tree written at random places, soon larger than the writer's page
-- cache, and every group's lookups of new keys read its pages back from the
-- operating system. The key's row now holds the answer's id, and the answers
-- append to a table of their own, read only when a key is replayed.
-- The copy runs inside goose's transaction, as 00009's: a database with
-- many live keys takes as long as it copies them (records older than a day
-- are purged by the sweeper, so at most a day's worth).
CREATE TABLE idempotency_answers (
    id     INTEGER PRIMARY KEY, -- rowid, handed out in commit order
    method TEXT NOT NULL,
    path   TEXT NOT NULL,
    status INTEGER NOT NULL,
    body   BLOB NOT NULL
);
CREATE TABLE idempotency_keys_new (
    tenant_id  TEXT NOT NULL,
    env        TEXT NOT NULL,
    key        TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    answer_id  INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, env, key)
) WITHOUT ROWID;
INSERT INTO idempotency_answers (id, method, path, status, body)
    SELECT row_number() OVER (ORDER BY created_at, tenant_id, env, key), method, path, status, body
    FROM idempotency_keys;
INSERT INTO idempotency_keys_new (tenant_id, env, key, created_at, answer_id)
    SELECT tenant_id, env, key, created_at, row_number() OVER (ORDER BY created_at, tenant_id, env, key)
    FROM idempotency_keys;
DROP TABLE idempotency_keys;
ALTER TABLE idempotency_keys_new RENAME TO idempotency_keys;
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);

-- +goose Down
CREATE TABLE idempotency_keys_old (
    tenant_id  TEXT NOT NULL,
    env        TEXT NOT NULL,
    key        TEXT NOT NULL,
    method     TEXT NOT NULL,
    path       TEXT NOT NULL,
    status     INTEGER NOT NULL,
    body       BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, env, key)
) WITHOUT ROWID;
INSERT INTO idempotency_keys_old SELECT k.tenant_id, k.env, k.key, a.method, a.path, a.status, a.body, k.created_at
    FROM idempotency_keys AS k JOIN idempotency_answers AS a ON a.id = k.answer_id;
DROP TABLE idempotency_keys;
DROP TABLE idempotency_answers;
ALTER TABLE idempotency_keys_old RENAME TO idempotency_keys;
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);
