package credit

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestStandardLibraryOnly guards the layering: the money rules depend on
// nothing but the standard library (no store, no HTTP, no third party).
// Test files may import what they like.
func TestStandardLibraryOnly(t *testing.T) {
	names, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	checked := 0
	for _, name := range names {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		src, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		f, err := parser.ParseFile(fset, name, src, parser.ImportsOnly)
		if err != nil {
			t.Fatalf("parse %s: %v", name, err)
		}
		checked++
		for _, imp := range f.Imports {
			path, err := strconv.Unquote(imp.Path.Value)
			if err != nil {
				t.Fatalf("%s: import %s: %v", name, imp.Path.Value, err)
			}
			if !isStd(path) {
				t.Errorf("%s imports %q, want standard library only", name, path)
			}
		}
	}
	if checked == 0 {
		t.Fatalf("found no non-test .go files in the package directory, want at least one")
	}
}

// isStd reports whether path names a standard library package: its first
// element has no dot (and it is not cgo's "C").
func isStd(path string) bool {
	first, _, _ := strings.Cut(path, "/")
	return path != "C" && !strings.Contains(first, ".")
}

func TestIsStd(t *testing.T) {
	tests := []struct {
		path string
		want bool
	}{
		{"fmt", true},
		{"math/bits", true},
		{"C", false},
		{"github.com/creditd/creditd/internal/store", false},
		{"pgregory.net/rapid", false},
		{"golang.org/x/sync/errgroup", false},
	}
	for _, tt := range tests {
		if got := isStd(tt.path); got != tt.want {
			t.Errorf("isStd(%q) = %v, want %v", tt.path, got, tt.want)
		}
	}
}
