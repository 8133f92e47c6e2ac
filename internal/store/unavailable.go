package store

import (
	"context"
	"errors"
	"sync"
)

// ErrUnavailable marks a database that cannot serve now: down, hung past its
// deadline, out of disk, read-only. The request may succeed later; the API
// answers 503 with Retry-After. Backends return it wrapped with their own
// error, or recognise their driver's errors through RegisterUnavailable.
var ErrUnavailable = errors.New("database unavailable")

var (
	classifiersMu sync.RWMutex
	classifiers   []func(error) bool
)

// RegisterUnavailable adds a backend's test for its driver's errors that mean
// "unavailable" (connection refused, disk full, …). Backends call it from
// init, so that Unavailable knows every linked driver without the packages
// above the store importing one.
func RegisterUnavailable(is func(error) bool) {
	classifiersMu.Lock()
	defer classifiersMu.Unlock()
	classifiers = append(classifiers, is)
}

// Unavailable reports whether err says the database could not serve the
// request, as opposed to refusing it (a conflict, a missing row) or failing
// on a bug. A deadline that passed is unavailability too: every database
// call runs under one, and a hung database shows as nothing else.
func Unavailable(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, ErrUnavailable) || errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	classifiersMu.RLock()
	defer classifiersMu.RUnlock()
	for _, is := range classifiers {
		if is(err) {
			return true
		}
	}
	return false
}
