package httpapi

import (
	"fmt"
	"net/http"

	"github.com/creditd/creditd/internal/credit"
)

func (s *Server) handleHealth() handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		return encode(w, http.StatusOK, map[string]string{"status": "ok"})
	}
}

func (s *Server) handleReady() handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		if err := s.ready(r.Context()); err != nil {
			s.log.WarnContext(r.Context(), "not ready", "err", err)
			w.Header().Set("Retry-After", retryAfter)
			return encode(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable"})
		}
		return encode(w, http.StatusOK, map[string]string{"status": "ready"})
	}
}

// handleProblemPage serves the short human page each problem type URI
// points to.
func (s *Server) handleProblemPage() handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		slug := r.PathValue("slug")
		pt, ok := problemTypes[slug]
		if !ok {
			return credit.Errorf(credit.ENotFound, "no problem type %q", slug)
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintf(w, "%s (HTTP %d)\n\n%s\n", pt.title, pt.status, pt.help)
		return nil
	}
}
