package httpapi

import (
	"encoding/base64"
	"net/http"
	"strconv"

	"github.com/creditd/creditd/internal/credit"
	"github.com/creditd/creditd/internal/store"
)

const (
	defaultLimit = 50
	maxLimit     = 500
)

// pageParams reads ?cursor=&limit=. It asks the store for one row more than
// the limit, to know whether another page follows.
func pageParams(r *http.Request) (store.Page, error) {
	limit := defaultLimit
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxLimit {
			return store.Page{}, credit.Invalid("limit", "must be an integer from 1 to 500")
		}
		limit = n
	}
	var after string
	if c := r.URL.Query().Get("cursor"); c != "" {
		b, err := base64.RawURLEncoding.DecodeString(c)
		// A cursor is an id or a sequence number: anything else, a NUL say,
		// must not reach the store.
		if err != nil || len(b) == 0 || checkID("cursor", string(b)) != nil {
			return store.Page{}, credit.Invalid("cursor", "is not a cursor this API returned")
		}
		after = string(b)
	}
	return store.Page{After: after, Limit: limit + 1}, nil
}

// Pagination is the envelope's paging part.
type Pagination struct {
	HasMore    bool    `json:"has_more"`
	NextCursor *string `json:"next_cursor"`
}

// List is the envelope of every list.
type List[T any] struct {
	Data       []T        `json:"data"`
	Pagination Pagination `json:"pagination"`
}

// list builds the envelope from rows fetched with pageParams' limit+1;
// cursorOf gives a row's position.
func list[R, T any](p store.Page, rows []R, convert func(R) T, cursorOf func(R) string) List[T] {
	out := List[T]{Data: make([]T, 0, len(rows))}
	if len(rows) == p.Limit {
		rows = rows[:p.Limit-1]
		c := base64.RawURLEncoding.EncodeToString([]byte(cursorOf(rows[len(rows)-1])))
		out.Pagination = Pagination{HasMore: true, NextCursor: &c}
	}
	for _, r := range rows {
		out.Data = append(out.Data, convert(r))
	}
	return out
}
