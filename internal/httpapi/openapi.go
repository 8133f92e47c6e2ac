package httpapi

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/base64"
	"net/http"
)

// The OpenAPI 3.1 document of the API and the page that renders it are
// compiled into the binary: a server describes exactly the API it serves,
// and the page needs no CDN or network. openapi_test.go holds the document
// to the router, its examples to its schemas, and the golden answers to
// both.
var (
	//go:embed openapi/openapi.json
	openAPIDocument []byte

	//go:embed openapi/docs.html
	docsPage []byte
)

// docsPolicy lets the page run its own inline script and style, and fetch
// from this server, and nothing else: nothing can load from elsewhere, even
// if a later edit of the page links something. The hashes pin the inline
// script and style as compiled in.
var docsPolicy = "default-src 'none'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'; " +
	"script-src " + inlineHash(docsPage, "script") + "; style-src " + inlineHash(docsPage, "style")

// inlineHash returns the CSP source expression ('sha256-…') of the first
// <tag>…</tag> element's text in page, or 'none' when there is none.
func inlineHash(page []byte, tag string) string {
	_, rest, ok := bytes.Cut(page, []byte("<"+tag+">"))
	if !ok {
		return "'none'"
	}
	text, _, ok := bytes.Cut(rest, []byte("</"+tag+">"))
	if !ok {
		return "'none'"
	}
	sum := sha256.Sum256(text)
	return "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
}

// handleOpenAPI serves the OpenAPI document (GET /openapi.json).
func (s *Server) handleOpenAPI() handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		w.Header().Set("Content-Type", "application/json")
		w.Write(openAPIDocument)
		return nil
	}
}

// handleDocs serves the page that renders the document (GET /docs).
func (s *Server) handleDocs() handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		h := w.Header()
		h.Set("Content-Type", "text/html; charset=utf-8")
		h.Set("Content-Security-Policy", docsPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		w.Write(docsPage)
		return nil
	}
}
