package postgres

import "runtime"

// defaultPoolSize is the pool's size when the URL does not set
// pool_max_conns: room for the committers' transactions and the reads
// beside them. pgx's own default (the number of CPUs, at least 4) leaves a
// 2-core machine's committers and readers waiting for each other.
const defaultPoolSize = 16

// WriteShards is how many write transactions the service runs at once: one
// committer per shard of customers, each holding one connection while its
// group runs. A quarter of the pool at most, leaving the rest to reads, and
// no more than the cores creditd runs on: more committers make smaller
// groups, and a group's fixed costs (its round trips, its commit) are then
// shared by fewer debits. On 2 cores, 2 committers against 4 (interleaved,
// 32 clients, 10,000 customers): 3,786 and 3,400 against 2,911 and 2,901
// debits/s, PostgreSQL's CPU per debit 185 against 320 µs; batches 9,800 and
// 9,000 against 8,400 and 8,500 events/s (BENCHMARKS.md). PostgreSQL's row
// locks keep shards that meet on one customer correct.
func (db *DB) WriteShards() int {
	return max(1, min(int(db.pool.Config().MaxConns)/4, runtime.GOMAXPROCS(0)))
}
