//go:build !unix

package sqlite

// freeBytes cannot tell the free space here; the writes' own errors (SQLITE_FULL)
// still report a full disk.
func freeBytes(string) (uint64, bool) { return 0, false }
