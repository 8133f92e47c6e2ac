// Package credit holds creditd's money rules: credit blocks and their burn
// order, debits, grants, expiry, pricing of usage, and the ledger entries each
// change produces.
//
// It is pure Go with no I/O: every function takes the operation's time as an
// argument and works on values the caller loaded. Storage and HTTP are thin
// adapters around it, so everything that decides an amount can be tested here
// without a database. Amounts are int64 millicredits; every sum is checked for
// overflow. The package imports only the standard library (a test guards it).
package credit
