package httpapi_test

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/creditd/creditd/internal/httpapi"
)

// openAPIDoc is the document, parsed as the validator reads JSON (numbers
// stay exact), with a compiler that resolves any location in it as a
// JSON Schema 2020-12 schema.
type openAPIDoc struct {
	root     map[string]any
	compiler *jsonschema.Compiler
	compiled map[string]*jsonschema.Schema
}

// docURL names the document for the compiler; nothing is fetched.
const docURL = "mem:///openapi.json"

func loadOpenAPI(t *testing.T) *openAPIDoc {
	t.Helper()
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(httpapi.OpenAPIDocument()))
	if err != nil {
		t.Fatalf("openapi/openapi.json is not JSON: %v", err)
	}
	root, ok := v.(map[string]any)
	if !ok {
		t.Fatal("openapi/openapi.json is not a JSON object")
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020) // OpenAPI 3.1's dialect builds on it
	if err := c.AddResource(docURL, root); err != nil {
		t.Fatal(err)
	}
	return &openAPIDoc{root: root, compiler: c, compiled: map[string]*jsonschema.Schema{}}
}

// schema compiles the schema at ptr (a JSON pointer into the document);
// nil, with the test failed, when it is not a valid schema.
func (d *openAPIDoc) schema(t *testing.T, ptr string) *jsonschema.Schema {
	t.Helper()
	if s, ok := d.compiled[ptr]; ok {
		return s
	}
	s, err := d.compiler.Compile(docURL + "#" + ptr)
	if err != nil {
		t.Errorf("schema at %s: %v", ptr, err)
	}
	d.compiled[ptr] = s
	return s
}

// pointer returns the value at ptr, or nil.
func (d *openAPIDoc) pointer(ptr string) any {
	var v any = d.root
	for _, tok := range strings.Split(ptr, "/")[1:] {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[strings.NewReplacer("~1", "/", "~0", "~").Replace(tok)]
	}
	return v
}

// resolve follows v's local $ref, if it has one, to what it names.
func (d *openAPIDoc) resolve(v any) any {
	for range 16 {
		m, ok := v.(map[string]any)
		ref, _ := m["$ref"].(string)
		if !ok || !strings.HasPrefix(ref, "#/") {
			return v
		}
		v = d.pointer(ref[1:])
	}
	return v
}

// wantExamples fails the test unless every media type of a request body or
// response has at least one example.
func (d *openAPIDoc) wantExamples(t *testing.T, where string, bodyOrResponse map[string]any) {
	t.Helper()
	content, _ := bodyOrResponse["content"].(map[string]any)
	for ctype, media := range content {
		media := media.(map[string]any)
		if exs, _ := media["examples"].(map[string]any); len(exs) == 0 && media["example"] == nil {
			t.Errorf("%s (%s): no example", where, ctype)
		}
	}
}

func escapePointer(tok string) string {
	return strings.NewReplacer("~", "~0", "/", "~1").Replace(tok)
}

// walkDoc calls visit for every object in v, with its JSON pointer. It does
// not descend into examples: their values are data, not document.
func walkDoc(v any, ptr string, visit func(ptr string, node map[string]any)) {
	switch v := v.(type) {
	case map[string]any:
		visit(ptr, v)
		for k, e := range v {
			if k != "examples" && k != "example" {
				walkDoc(e, ptr+"/"+escapePointer(k), visit)
			}
		}
	case []any:
		for i, e := range v {
			walkDoc(e, ptr+"/"+strconv.Itoa(i), visit)
		}
	}
}

// enumOf returns a schema's enum, sorted, as strings.
func enumOf(schema any) []string {
	var out []string
	m, _ := schema.(map[string]any)
	for _, v := range m["enum"].([]any) {
		out = append(out, fmt.Sprint(v))
	}
	slices.Sort(out)
	return out
}

// TestOpenAPIExamples validates every example against its schema: those of
// media types, parameters and headers, and a schema's own examples.
func TestOpenAPIExamples(t *testing.T) {
	doc := loadOpenAPI(t)
	n := 0
	check := func(schemaPtr, where string, v any) {
		n++
		if s := doc.schema(t, schemaPtr); s != nil {
			if err := s.Validate(v); err != nil {
				t.Errorf("example %s does not validate: %v", where, err)
			}
		}
	}
	walkDoc(doc.root, "", func(ptr string, node map[string]any) {
		if _, ok := node["schema"].(map[string]any); ok {
			exs, _ := node["examples"].(map[string]any)
			for name, ex := range exs {
				v, ok := doc.resolve(ex).(map[string]any)["value"]
				if !ok {
					t.Errorf("example %s/examples/%s has no value", ptr, name)
				}
				check(ptr+"/schema", ptr+"/examples/"+escapePointer(name), v)
			}
			if v, ok := node["example"]; ok {
				check(ptr+"/schema", ptr+"/example", v)
			}
		} else if exs, ok := node["examples"].([]any); ok {
			for i, v := range exs {
				check(ptr, fmt.Sprintf("%s/examples/%d", ptr, i), v)
			}
		}
	})
	if n < 100 {
		t.Errorf("found %d examples; the walk is broken", n)
	}
}

// goldenRoutes names the route of each golden file: the operation
// ("METHOD /path" as documented) whose answer it is, or the response
// component it is when no operation answers it (an unknown route, a
// method a path does not allow). A new golden file needs its line here.
var goldenRoutes = map[string]string{
	"customer_create":      "POST /v1/customers",
	"customer_exists":      "POST /v1/customers",
	"customer_get":         "GET /v1/customer-by-external-id/{external_id}",
	"customer_list":        "GET /v1/customers",
	"metric_create":        "POST /v1/billable-metrics",
	"metric_exists":        "POST /v1/billable-metrics",
	"metric_list":          "GET /v1/billable-metrics",
	"rule_flat":            "POST /v1/metering-rules",
	"rule_per_unit":        "POST /v1/metering-rules",
	"rule_tiered":          "POST /v1/metering-rules",
	"rule_list":            "GET /v1/metering-rules",
	"grant_topup":          "POST /v1/topup/grant",
	"grant_plan":           "POST /v1/customer-by-external-id/{external_id}/credits/grant",
	"usage":                "POST /v1/usage",
	"usage_replay":         "POST /v1/usage",
	"usage_batch":          "POST /v1/usage/batch",
	"usage_batch_replay":   "POST /v1/usage/batch",
	"balance":              "GET /v1/customer-by-external-id/{external_id}/credits",
	"balance_blocks":       "GET /v1/customer-by-external-id/{external_id}/credits",
	"ledger":               "GET /v1/customer-by-external-id/{external_id}/ledger",
	"ledger_page":          "GET /v1/customer-by-external-id/{external_id}/ledger",
	"entitlement_allowed":  "GET /v1/customer-by-external-id/{external_id}/entitlements/{key}",
	"entitlement_denied":   "GET /v1/customer-by-external-id/{external_id}/entitlements/{key}",
	"problem_invalid":      "POST /v1/topup/grant",
	"problem_invalid_type": "POST /v1/usage",
	"problem_insufficient": "POST /v1/usage",
	"problem_not_found":    "GET /v1/customer-by-external-id/{external_id}/credits",
	"problem_no_rule":      "POST /v1/usage",
	"problem_key_reused":   "POST /v1/topup/grant",
	"problem_key_required": "POST /v1/usage",
	"problem_unauthorized": "GET /v1/customers",
	"problem_method":       "#/components/responses/MethodNotAllowed",
	"problem_route":        "#/components/responses/NotFound",
	"problem_media_type":   "POST /v1/usage",
	"problem_too_large":    "POST /v1/customers",

	"plan_create":            "POST /v1/plans",
	"plan_exists":            "POST /v1/plans",
	"plan_list":              "GET /v1/plans",
	"purchase":               "POST /v1/customer-by-external-id/{external_id}/plan-purchases",
	"purchase_replay":        "POST /v1/customer-by-external-id/{external_id}/plan-purchases",
	"purchase_duplicate":     "POST /v1/customer-by-external-id/{external_id}/plan-purchases",
	"purchase_short":         "POST /v1/customer-by-external-id/{external_id}/plan-purchases",
	"purchase_list":          "GET /v1/customer-by-external-id/{external_id}/plan-purchases",
	"reserve":                "POST /v1/reserve",
	"reserve_short":          "POST /v1/reserve",
	"reservation_commit":     "POST /v1/reserve/{id}/commit",
	"reservation_not_active": "POST /v1/reserve/{id}/release",
	"reservation_get":        "GET /v1/reserve/{id}",
	"reservation_list":       "GET /v1/reservations",
	"balance_held":           "GET /v1/customer-by-external-id/{external_id}/credits",
	"transaction":            "POST /v1/transactions",
	"transaction_refused":    "POST /v1/transactions",
	"config_patch":           "PATCH /v1/tenants/{id}/config",
	"webhook_health":         "GET /v1/webhooks/health",
}

// The golden files number ids ("<blk-1>", "<uuid-1>"); validating puts back
// ids of the real shape, so that the schemas' id patterns apply.
var (
	goldenID   = regexp.MustCompile(`<(blk|evt|txn|bm|mr|res|pln|pur|trx|whevt)-(\d+)>`)
	goldenUUID = regexp.MustCompile(`<uuid-(\d+)>`)
)

// readGolden splits a golden file into its status, content type, headers
// and body (see golden_test.go's normalize).
func readGolden(t *testing.T, path string) (status int, ctype string, header http.Header, body any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	head, rest, _ := bytes.Cut(b, []byte("\n"))
	code, ctype, _ := strings.Cut(string(head), " ")
	if status, err = strconv.Atoi(code); err != nil {
		t.Fatalf("%s: first line %q is not a status and content type", path, head)
	}
	header = http.Header{}
	for len(rest) > 0 && rest[0] != '{' && rest[0] != '[' {
		var line []byte
		line, rest, _ = bytes.Cut(rest, []byte("\n"))
		name, value, _ := strings.Cut(string(line), ": ")
		header.Add(name, value)
	}
	rest = goldenID.ReplaceAllFunc(rest, func(m []byte) []byte {
		sub := goldenID.FindSubmatch(m)
		n, _ := strconv.Atoi(string(sub[2]))
		return fmt.Appendf(nil, "%s_%026d", sub[1], n)
	})
	rest = goldenUUID.ReplaceAllFunc(rest, func(m []byte) []byte {
		n, _ := strconv.Atoi(string(goldenUUID.FindSubmatch(m)[1]))
		return fmt.Appendf(nil, "01963a5c-0000-7000-8000-%012d", n)
	})
	if body, err = jsonschema.UnmarshalJSON(bytes.NewReader(rest)); err != nil {
		t.Fatalf("%s: body: %v", path, err)
	}
	return status, ctype, header, body
}

// TestOpenAPIGolden validates every golden answer against the document:
// its status is documented for its route, its content type and headers are
// declared, its body validates against the schema, and every member of it
// is declared by the schema (the document omits nothing the server sends).
func TestOpenAPIGolden(t *testing.T) {
	doc := loadOpenAPI(t)
	ops := docOperations(doc.root)
	files, err := filepath.Glob(filepath.Join("testdata", "*.golden"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden files: %v", err)
	}
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".golden")
		t.Run(name, func(t *testing.T) {
			route, ok := goldenRoutes[name]
			if !ok {
				t.Fatalf("%s: add its route to goldenRoutes in openapi_schema_test.go", file)
			}
			status, ctype, header, body := readGolden(t, file)
			at := strings.TrimPrefix(route, "#")
			if !strings.HasPrefix(route, "#/") {
				if ops[route] == nil {
					t.Fatalf("goldenRoutes: %s is not in the document", route)
				}
				method, path, _ := strings.Cut(route, " ")
				at = "/paths/" + escapePointer(path) + "/" + strings.ToLower(method) + "/responses/" + strconv.Itoa(status)
				r, ok := doc.pointer(at).(map[string]any)
				if !ok {
					t.Fatalf("%s does not document status %d", route, status)
				}
				if ref, ok := r["$ref"].(string); ok {
					at = strings.TrimPrefix(ref, "#")
				}
			}
			resp, ok := doc.pointer(at).(map[string]any)
			if !ok {
				t.Fatalf("no response at %s", at)
			}
			if d := doc.pointer(at + "/content/" + escapePointer(ctype)); d == nil {
				t.Fatalf("%s: content type %s is not documented at %s", route, ctype, at)
			}
			declared, _ := resp["headers"].(map[string]any)
			for h := range header {
				if _, ok := declared[h]; !ok {
					t.Errorf("%s %d: header %s is not documented at %s", route, status, h, at)
				}
			}
			schemaPtr := at + "/content/" + escapePointer(ctype) + "/schema"
			s := doc.schema(t, schemaPtr)
			if s == nil {
				return
			}
			if err := s.Validate(body); err != nil {
				t.Errorf("%s %d does not validate against %s: %v", route, status, schemaPtr, err)
			}
			var extra []string
			doc.undeclared([]any{doc.pointer(schemaPtr)}, body, "", &extra)
			for _, e := range extra {
				t.Errorf("%s %d: member %s is not declared by %s", route, status, e, schemaPtr)
			}
		})
	}
}

// members gathers the property schemas an object schema declares, through
// $ref, allOf, anyOf and oneOf; open reports a schema that admits members
// it does not name (additionalProperties other than false).
func (d *openAPIDoc) members(schema any, into map[string][]any) (open bool) {
	m, _ := d.resolve(schema).(map[string]any)
	if ap, ok := m["additionalProperties"]; ok && ap != false {
		open = true
	}
	props, _ := m["properties"].(map[string]any)
	for name, ps := range props {
		into[name] = append(into[name], ps)
	}
	for _, k := range []string{"allOf", "anyOf", "oneOf"} {
		subs, _ := m[k].([]any)
		for _, sub := range subs {
			open = d.members(sub, into) || open
		}
	}
	return open
}

// items gathers the item schemas of an array schema, as members does.
func (d *openAPIDoc) items(schema any, into *[]any) {
	m, _ := d.resolve(schema).(map[string]any)
	if it, ok := m["items"]; ok {
		*into = append(*into, it)
	}
	for _, k := range []string{"allOf", "anyOf", "oneOf"} {
		subs, _ := m[k].([]any)
		for _, sub := range subs {
			d.items(sub, into)
		}
	}
}

// undeclared appends the JSON pointer of every member of v that none of
// schemas declares. An object schema that declares no member at all is
// free-form (metadata), and is not looked into.
func (d *openAPIDoc) undeclared(schemas []any, v any, ptr string, out *[]string) {
	switch v := v.(type) {
	case map[string]any:
		props := map[string][]any{}
		open := false
		for _, s := range schemas {
			open = d.members(s, props) || open
		}
		if len(props) == 0 {
			return
		}
		for name, e := range v {
			subs, ok := props[name]
			if !ok {
				if !open {
					*out = append(*out, ptr+"/"+escapePointer(name))
				}
				continue
			}
			d.undeclared(subs, e, ptr+"/"+escapePointer(name), out)
		}
	case []any:
		var items []any
		for _, s := range schemas {
			d.items(s, &items)
		}
		for i, e := range v {
			d.undeclared(items, e, ptr+"/"+strconv.Itoa(i), out)
		}
	}
}
