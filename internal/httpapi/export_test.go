package httpapi

// ProblemCodes returns the codes a client may be answered with: every type
// of the one table but internal, which no request should ever provoke.
func ProblemCodes() map[string]bool {
	codes := map[string]bool{}
	for code := range problemTypes {
		if code != "internal" {
			codes[code] = true
		}
	}
	return codes
}
