package httpapi_test

// The OpenAPI document (openapi/openapi.json, served at GET /openapi.json)
// is held to the code both ways: every route registered is documented and
// every documented route is registered; the document is valid OpenAPI 3.1
// (the official schema, and a second parser); every example validates
// against its schema; and every golden answer in testdata validates against
// the schema of its route and status, with no member the schema does not
// declare (openapi_schema_test.go).

import (
	"bytes"
	"crypto/sha256"
	b64 "encoding/base64"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"maps"
	"net/http"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/pb33f/libopenapi"
	"github.com/pb33f/libopenapi/datamodel"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/creditd/creditd/internal/httpapi"
)

// docMethods are the operations a path item may hold, as the document names
// them.
var docMethods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

// pathParam matches a path parameter in a mux pattern or a document path.
var pathParam = regexp.MustCompile(`\{([^}/]*)\}`)

// registeredRoutes returns the pattern of every route the package's code
// registers: each s.handle("…") and s.mux.Handle/HandleFunc("…") call.
// Patterns must be string literals, so that this can see them.
func registeredRoutes(t *testing.T) (fromHandle, all []string) {
	t.Helper()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok || len(call.Args) == 0 {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			onMux := false
			if x, ok := sel.X.(*ast.SelectorExpr); ok && x.Sel.Name == "mux" {
				onMux = sel.Sel.Name == "Handle" || sel.Sel.Name == "HandleFunc"
			}
			if sel.Sel.Name != "handle" && !onMux {
				return true
			}
			lit, ok := call.Args[0].(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				// server.go's handle itself passes its parameter on.
				if id, ok := call.Args[0].(*ast.Ident); ok && id.Name == "pattern" && onMux {
					return true
				}
				t.Errorf("%s: a route registered with a pattern that is not a string literal", fset.Position(call.Pos()))
				return true
			}
			pattern, _ := strconv.Unquote(lit.Value)
			all = append(all, pattern)
			if !onMux {
				fromHandle = append(fromHandle, pattern)
			}
			return true
		})
	}
	return fromHandle, all
}

// docOperations returns the document's operations by "METHOD /path".
func docOperations(doc map[string]any) map[string]map[string]any {
	ops := map[string]map[string]any{}
	for path, item := range doc["paths"].(map[string]any) {
		for _, m := range docMethods {
			if op, ok := item.(map[string]any)[m].(map[string]any); ok {
				ops[strings.ToUpper(m)+" "+path] = op
			}
		}
	}
	return ops
}

// TestOpenAPIRoutes checks the document against the router both ways.
func TestOpenAPIRoutes(t *testing.T) {
	doc := loadOpenAPI(t)
	ops := docOperations(doc.root)
	fromHandle, all := registeredRoutes(t)
	if len(fromHandle) == 0 {
		t.Fatal("found no route registered with s.handle")
	}
	served := map[string]bool{}
	for _, pattern := range all {
		// The document writes {name} for Go's {name...} too.
		served[strings.ReplaceAll(pattern, "...}", "}")] = true
	}
	for _, route := range slices.Sorted(maps.Keys(served)) {
		if ops[route] == nil {
			t.Errorf("%s is served but not in openapi/openapi.json", route)
		}
	}
	for _, route := range slices.Sorted(maps.Keys(ops)) {
		if !served[route] {
			t.Errorf("%s is in openapi/openapi.json but no route serves it", route)
		}
	}
	// What the parse above found is what the mux serves: each pattern, with
	// its parameters filled in, routes to itself.
	for _, pattern := range fromHandle {
		method, path, _ := strings.Cut(pattern, " ")
		target := pathParam.ReplaceAllString(path, "p1")
		if got := httpapi.RouteOf(method, target); got != pattern {
			t.Errorf("%s %s routes to %q, want %q", method, target, got, pattern)
		}
	}
}

// TestOpenAPIDocument checks that the document is valid OpenAPI 3.1 and
// keeps the API's own rules.
func TestOpenAPIDocument(t *testing.T) {
	doc := loadOpenAPI(t)

	// The official schema of OpenAPI 3.1 documents (as libopenapi ships it).
	c := jsonschema.NewCompiler()
	meta, err := jsonschema.UnmarshalJSON(strings.NewReader(datamodel.OpenAPI31SchemaData))
	if err != nil {
		t.Fatal(err)
	}
	const metaURL = "https://spec.openapis.org/oas/3.1/schema/2022-10-07"
	if err := c.AddResource(metaURL, meta); err != nil {
		t.Fatal(err)
	}
	oas, err := c.Compile(metaURL)
	if err != nil {
		t.Fatal(err)
	}
	if err := oas.Validate(doc.root); err != nil {
		t.Errorf("not a valid OpenAPI 3.1 document: %v", err)
	}
	if v := doc.root["openapi"]; v != "3.1.0" {
		t.Errorf("openapi = %v, want 3.1.0", v)
	}
	// A second implementation reads it and resolves every reference.
	ldoc, err := libopenapi.NewDocument(httpapi.OpenAPIDocument())
	if err != nil {
		t.Fatalf("libopenapi: %v", err)
	}
	if _, err := ldoc.BuildV3Model(); err != nil {
		t.Errorf("libopenapi: %v", err)
	}
	// Every schema is valid JSON Schema 2020-12: compiling checks each
	// against the meta-schema, and resolves its references.
	walkDoc(doc.root, "", func(ptr string, node map[string]any) {
		if s, ok := node["schema"]; ok {
			if _, ok := s.(map[string]any); ok {
				doc.schema(t, ptr+"/schema")
			}
		}
	})
	for name := range doc.root["components"].(map[string]any)["schemas"].(map[string]any) {
		doc.schema(t, "/components/schemas/"+name)
	}

	ids := map[string]string{}
	for route, op := range docOperations(doc.root) {
		method, path, _ := strings.Cut(route, " ")
		id, _ := op["operationId"].(string)
		if id == "" || ids[id] != "" {
			t.Errorf("%s: operationId %q is missing or also %s's", route, id, ids[id])
		}
		ids[id] = route
		if tags, _ := op["tags"].([]any); len(tags) != 1 || op["summary"] == nil {
			t.Errorf("%s: want one tag and a summary", route)
		}
		// Path parameters: exactly the template's, declared and required.
		var inPath []string
		for _, m := range pathParam.FindAllStringSubmatch(path, -1) {
			inPath = append(inPath, m[1])
		}
		var declared []string
		idem := false
		params, _ := op["parameters"].([]any)
		for _, p := range params {
			p := doc.resolve(p).(map[string]any)
			switch {
			case p["in"] == "path":
				declared = append(declared, p["name"].(string))
				if p["required"] != true {
					t.Errorf("%s: path parameter %v is not required", route, p["name"])
				}
			case p["in"] == "header" && p["name"] == "Idempotency-Key":
				idem = p["required"] == true
			}
		}
		slices.Sort(inPath)
		slices.Sort(declared)
		if !slices.Equal(inPath, declared) {
			t.Errorf("%s: path parameters %v, want %v", route, declared, inPath)
		}
		if mutates := method == "POST" || method == "PATCH"; mutates != idem {
			t.Errorf("%s: a required Idempotency-Key header is %v, want %v (every POST and PATCH needs one)", route, idem, mutates)
		}
		// No key needed exactly where the server needs none.
		sec, hasSec := op["security"].([]any)
		documentedPublic := hasSec && len(sec) == 0
		target := pathParam.ReplaceAllString(path, "p1")
		if pub := httpapi.Public(target); pub != documentedPublic {
			t.Errorf("%s: documented as public: %v; the server's public(): %v", route, documentedPublic, pub)
		}
		// At least one example for each request body and each success.
		if rb, ok := op["requestBody"]; ok {
			doc.wantExamples(t, route+" request body", doc.resolve(rb).(map[string]any))
		}
		for status, r := range op["responses"].(map[string]any) {
			if strings.HasPrefix(status, "2") {
				doc.wantExamples(t, route+" "+status, doc.resolve(r).(map[string]any))
			}
		}
	}

	// The problem types are errors.go's table: each code under its status.
	comps := doc.root["components"].(map[string]any)
	for name, r := range comps["responses"].(map[string]any) {
		doc.wantExamples(t, "response "+name, r.(map[string]any))
	}
	statuses := httpapi.ProblemStatuses()
	byStatus := map[int][]string{}
	for code, status := range statuses {
		byStatus[status] = append(byStatus[status], code)
	}
	codes := enumOf(doc.pointer("/components/schemas/Problem/properties/code"))
	if !slices.Equal(codes, slices.Sorted(maps.Keys(statuses))) {
		t.Errorf("Problem.code enum = %v, want errors.go's codes %v", codes, slices.Sorted(maps.Keys(statuses)))
	}
	seen := map[int]bool{}
	for name, s := range comps["schemas"].(map[string]any) {
		props, _ := s.(map[string]any)["properties"].(map[string]any)
		st, _ := props["status"].(map[string]any)
		if _, ok := st["const"]; !ok || !strings.HasSuffix(name, "Problem") {
			continue // Problem itself, or not a problem
		}
		status, _ := strconv.Atoi(fmt.Sprint(st["const"]))
		seen[status] = true
		want := byStatus[status]
		slices.Sort(want)
		if got := enumOf(props["code"]); !slices.Equal(got, want) {
			t.Errorf("%s: codes %v, want errors.go's %v for %d", name, got, want, status)
		}
	}
	for status := range byStatus {
		if !seen[status] {
			t.Errorf("no problem schema for status %d", status)
		}
	}
}

// TestOpenAPIServed checks GET /openapi.json and GET /docs.
func TestOpenAPIServed(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, "sqlite")
	for _, key := range []string{"", none} {
		name := "with key"
		if key == none {
			name = "without key"
		}
		t.Run(name, func(t *testing.T) {
			r := ts.do(t, req{method: http.MethodGet, path: "/openapi.json", apiKey: key})
			r.want(t, http.StatusOK)
			if !bytes.Equal(r.body, httpapi.OpenAPIDocument()) {
				t.Error("GET /openapi.json is not the compiled-in document")
			}
			r = ts.do(t, req{method: http.MethodGet, path: "/docs", apiKey: key})
			if r.status != http.StatusOK || r.header.Get("Content-Type") != "text/html; charset=utf-8" {
				t.Fatalf("GET /docs: %d %s", r.status, r.header.Get("Content-Type"))
			}
			page := string(r.body)
			// Self-contained: nothing from another origin.
			if strings.Contains(page, "http://") || strings.Contains(page, "https://") {
				t.Error("the docs page names another origin; it must be self-contained")
			}
			// The policy admits the page's own script, and only it.
			_, script, _ := strings.Cut(page, "<script>")
			script, _, _ = strings.Cut(script, "</script>")
			sum := sha256.Sum256([]byte(script))
			hash := "'sha256-" + b64.StdEncoding.EncodeToString(sum[:]) + "'"
			if csp := r.header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src "+hash) ||
				!strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "connect-src 'self'") {
				t.Errorf("Content-Security-Policy %q does not admit the page's script (%s) and only it", csp, hash)
			}
			if !strings.Contains(page, `fetch("openapi.json"`) {
				t.Error("the docs page does not load openapi.json")
			}
		})
	}
}
