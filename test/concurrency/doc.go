// Package concurrency holds black-box concurrency tests of creditd: real
// "creditd serve" processes (two on one PostgreSQL database, or one on a
// SQLite file) hammered over HTTP by many clients at once, and a bounded
// history checked for linearizability with porcupine; and a crash test that
// kills a server with SIGKILL under grouped load (on PostgreSQL, the
// database server too, on a server of its own with fsync on), restarts it
// and retries what had no answer. After every run the database itself is
// opened directly and held to ledger.CheckInvariants. Everything is in the
// _test.go files; run them with
//
//	go test ./test/concurrency/ -v -count=1
//
// CREDITD_HAMMER_SECONDS sets how long the hammer runs (10 by default), and
// CREDITD_TEST_REQUIRE_POSTGRES=1 turns a missing PostgreSQL into a failure
// instead of a skip.
package concurrency
