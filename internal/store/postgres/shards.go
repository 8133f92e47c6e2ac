package postgres

// defaultPoolSize is the pool's size when the URL does not set
// pool_max_conns: room for the committers' transactions and the reads
// beside them. pgx's own default (the number of CPUs, at least 4) leaves a
// 2-core machine's committers and readers waiting for each other.
const defaultPoolSize = 16

// WriteShards is how many write transactions the service runs at once: one
// committer per shard of customers, each holding one connection while its
// group runs, so a quarter of the pool, leaving the rest to reads.
// PostgreSQL's row locks keep shards that meet on one customer correct.
func (db *DB) WriteShards() int {
	return max(1, int(db.pool.Config().MaxConns)/4)
}
