package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"

	"github.com/creditd/creditd/internal/credit"
	"github.com/creditd/creditd/internal/ledger"
	"github.com/creditd/creditd/internal/store"
)

// planJSON is the plan object.
type planJSON struct {
	ID                 string          `json:"id"`
	Key                string          `json:"key"`
	Name               string          `json:"name"`
	Price              int64           `json:"price"`
	Credits            int64           `json:"credits"`
	Priority           int             `json:"priority"`
	DurationSeconds    *int64          `json:"duration_seconds"`
	PayFromMaxPriority int             `json:"pay_from_max_priority"`
	Metadata           json.RawMessage `json:"metadata"`
	Active             bool            `json:"active"`
	CreatedAt          Time            `json:"created_at"`
}

func planOut(p store.Plan) planJSON {
	out := planJSON{
		ID: p.ID, Key: p.Key, Name: p.Name, Price: p.Price, Credits: p.Credits, Priority: p.Priority,
		PayFromMaxPriority: p.PayFromMaxPriority, Metadata: metadataOut(p.Metadata), Active: p.Active, CreatedAt: Time(p.CreatedAt),
	}
	// 0 is how the store says "never expires"; on the wire that is null,
	// the same value a client sends for it.
	if p.DurationSeconds != 0 {
		out.DurationSeconds = &p.DurationSeconds
	}
	return out
}

// planRequest is a plan to create. Pointers tell an absent (or null) member
// from a zero: price and credits are required, the others take defaults.
type planRequest struct {
	Key                string   `json:"key"`
	Name               string   `json:"name"`
	Price              *int64   `json:"price"`
	Credits            *int64   `json:"credits"`
	Priority           *int     `json:"priority"`
	DurationSeconds    *int64   `json:"duration_seconds"`
	PayFromMaxPriority *int     `json:"pay_from_max_priority"`
	Metadata           Metadata `json:"metadata"`
}

func (req planRequest) input() (ledger.PlanInput, error) {
	var c checks
	if req.Key == "" {
		c.add("key", "is required")
	}
	c.id("key", req.Key)
	c.text("name", req.Name, maxNameLen)
	// A plan's price is what every purchase pays: no default, so that a free
	// plan is a choice written down, not a forgotten member.
	if req.Price == nil {
		c.add("price", "is required: the plan's price in millicredits (0 for a free plan)")
	}
	if req.Credits == nil {
		c.add("credits", "is required: the plan's credits in millicredits")
	}
	// The store's 0 means "no expiry"; a client says that with null, and an
	// explicit 0 is a duration outside the bounds like any other.
	if req.DurationSeconds != nil && *req.DurationSeconds == 0 {
		c.add("duration_seconds", fmt.Sprintf("must be between %d and %d seconds, or null for credits that never expire",
			ledger.MinPlanDuration, ledger.MaxPlanDuration))
	}
	in := ledger.PlanInput{
		Key: req.Key, Name: req.Name, Priority: req.Priority, PayFromMaxPriority: req.PayFromMaxPriority,
		Metadata: json.RawMessage(req.Metadata),
	}
	if req.Price != nil {
		in.Price = *req.Price
	}
	if req.Credits != nil {
		in.Credits = *req.Credits
	}
	if req.DurationSeconds != nil {
		in.DurationSeconds = *req.DurationSeconds
	}
	if err := c.merge(in.Validate()); err != nil {
		return ledger.PlanInput{}, err
	}
	return in, c.err()
}

// merge adds the fields of err, an invalid-request error of package ledger,
// that c does not name yet, so that one 400 names every invalid field once.
// Any other error is returned.
func (c *checks) merge(err error) error {
	var ce *credit.Error
	if err == nil {
		return nil
	}
	if !errors.As(err, &ce) || ce.Code != credit.EInvalid {
		return err
	}
	for _, f := range ce.Fields {
		if !slices.ContainsFunc(c.Fields, func(g credit.FieldError) bool { return g.Field == f.Field }) {
			c.Add(f.Field, f.Message)
		}
	}
	return nil
}

func (s *Server) handlePlanCreate() handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		return s.mutate(w, r, func(body []byte) (ledger.Command, error) {
			var req planRequest
			if err := decode(body, &req); err != nil {
				return nil, err
			}
			in, err := req.input()
			if err != nil {
				return nil, err
			}
			return ledger.CreatePlan{In: in, Encode: encodeAs(http.StatusCreated, planOut)}, nil
		}, nil)
	}
}

// handlePlanArchive takes a plan out of sale. Archiving an archived plan
// answers it as it is: the request's intent holds.
func (s *Server) handlePlanArchive() handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		return s.mutate(w, r, func([]byte) (ledger.Command, error) {
			key := r.PathValue("key")
			if err := checkID("key", key); err != nil {
				return nil, err
			}
			return ledger.ArchivePlan{Key: key, Encode: encodeAs(http.StatusOK, planOut)}, nil
		}, nil)
	}
}

func (s *Server) handlePlanGet() handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		key := r.PathValue("key")
		if err := checkID("key", key); err != nil {
			return err
		}
		p, err := s.svc.Plan(r.Context(), scopeOf(r.Context()), key)
		if err != nil {
			return err
		}
		return encode(w, http.StatusOK, planOut(p))
	}
}

func (s *Server) handlePlanList() handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		p, err := pageParams(r)
		if err != nil {
			return err
		}
		rows, err := s.svc.Plans(r.Context(), scopeOf(r.Context()), p)
		if err != nil {
			return err
		}
		return encode(w, http.StatusOK, list(p, rows, planOut, func(p store.Plan) string { return p.ID }))
	}
}

// PlanEncoder encodes the plan object with status for a plan command run
// outside a request (the CLI's), so that the answer stored under its
// Idempotency-Key is the one the API would have stored.
func PlanEncoder(status int) ledger.Encoder[store.Plan] { return encodeAs(status, planOut) }
