// Package apikey makes and checks API keys. A key is "qs_live_" or "qs_test_"
// followed by 40 random base62 characters; its prefix chooses the
// environment. Only a SHA-256 hash of a key is stored: keys carry 238 bits of
// randomness, so a fast hash suffices (a slow password hash guards
// low-entropy secrets and would only slow every request).
package apikey

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/creditd/creditd/internal/store"
)

// The environments a key can belong to.
const (
	Live = "live"
	Test = "test"
)

const alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// Env returns the environment a key's prefix names, or "" for a string that
// is not a key.
func Env(key string) string {
	switch {
	case strings.HasPrefix(key, "qs_live_") && len(key) > len("qs_live_"):
		return Live
	case strings.HasPrefix(key, "qs_test_") && len(key) > len("qs_test_"):
		return Test
	}
	return ""
}

// Hash returns the hex SHA-256 of key, the form it is stored and looked up in.
func Hash(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}

// New makes a random key for env.
func New(env string) (string, error) {
	if env != Live && env != Test {
		return "", fmt.Errorf("apikey: environment %q is neither %q nor %q", env, Live, Test)
	}
	buf := make([]byte, 40)
	if _, err := rand.Read(buf); err != nil {
		return "", fmt.Errorf("apikey: %w", err)
	}
	for i, b := range buf {
		// 256 is not a multiple of 62; the slight bias costs well under a
		// bit of the key's 238 bits.
		buf[i] = alphabet[int(b)%len(alphabet)]
	}
	return "qs_" + env + "_" + string(buf), nil
}

// Record returns the row that stores key for tenantID.
func Record(key, tenantID string, now time.Time) (store.APIKey, error) {
	env := Env(key)
	if env == "" {
		return store.APIKey{}, fmt.Errorf("apikey: a key starts with qs_live_ or qs_test_")
	}
	if len(key) < len("qs_test_")+16 {
		return store.APIKey{}, fmt.Errorf("apikey: a key needs at least 16 characters after its prefix")
	}
	return store.APIKey{Hash: Hash(key), Prefix: key[:len("qs_test_")+4], TenantID: tenantID, Env: env, CreatedAt: now}, nil
}
