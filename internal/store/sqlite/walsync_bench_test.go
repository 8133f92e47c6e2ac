//go:build linux

package sqlite

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// BenchmarkWALSync measures the disk under the WAL, not our code: a group's
// frames (a 24-byte header and a 4 KiB page each, written as SQLite writes
// them) and then one fsync, into a file that grows, one written before
// (what the WAL is after its first start-over), and one fallocated. It says
// what a commit's fsync costs on this disk in each case (BENCHMARKS.md).
//
//	go test ./internal/store/sqlite -run '^$' -bench WALSync -benchtime 500x
func BenchmarkWALSync(b *testing.B) {
	const frames = 110 // a group of 16 debits over 10,000 customers
	header, page := make([]byte, 24), make([]byte, 4096)
	for _, mode := range []string{"append", "overwrite", "fallocate"} {
		b.Run(mode, func(b *testing.B) {
			f, err := os.Create(filepath.Join(b.TempDir(), "wal"))
			if err != nil {
				b.Fatal(err)
			}
			defer f.Close()
			size := int64(b.N) * frames * int64(len(header)+len(page))
			switch mode {
			case "overwrite":
				chunk := make([]byte, 1<<20)
				for n := int64(0); n < size; n += int64(len(chunk)) {
					if _, err := f.Write(chunk); err != nil {
						b.Fatal(err)
					}
				}
			case "fallocate":
				if err := syscall.Fallocate(int(f.Fd()), 0, 0, size); err != nil {
					b.Skipf("fallocate: %v", err)
				}
			}
			if err := f.Sync(); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			var off int64
			for range b.N {
				for range frames {
					f.WriteAt(header, off)
					f.WriteAt(page, off+int64(len(header)))
					off += int64(len(header) + len(page))
				}
				if err := f.Sync(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
