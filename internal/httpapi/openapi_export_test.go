package httpapi

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
)

// routesOnly is a Server with its routes and nothing else: enough to ask
// the mux which pattern serves a request, without a store.
var routesOnly = sync.OnceValue(func() *Server {
	s := &Server{mux: http.NewServeMux()}
	s.routes()
	return s
})

// RouteOf returns the pattern of the route registered in routes() that
// serves method and target ("GET /v1/customers/{customer_id}"), or "" when
// none does.
func RouteOf(method, target string) string {
	_, pattern := routesOnly().mux.Handler(httptest.NewRequest(method, target, nil))
	return pattern
}

// Public reports whether a request for target needs no API key.
func Public(target string) bool {
	u, err := url.Parse(target)
	return err == nil && public(u)
}

// ProblemStatuses returns the HTTP status of every problem type, by code.
func ProblemStatuses() map[string]int {
	out := map[string]int{}
	for code, pt := range problemTypes {
		out[code] = pt.status
	}
	return out
}

// OpenAPIDocument returns the document compiled into the server.
func OpenAPIDocument() []byte { return openAPIDocument }
