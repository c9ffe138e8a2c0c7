// Package httpauth checks the shared-secret tokens kelpie's HTTP endpoints
// accept (the mirror's registry and git endpoints). It never issues,
// stores or logs a token.
package httpauth

import (
	"crypto/subtle"
	"net/http"
	"strings"
)

// TokenAuthorized reports whether r carries one of tokens as a bearer
// token or as a basic-auth password, comparing in constant time. Empty
// tokens authorize nothing.
func TokenAuthorized(r *http.Request, tokens ...string) bool {
	got := ""
	if _, pass, ok := r.BasicAuth(); ok {
		got = pass
	} else if b, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		got = strings.TrimSpace(b)
	}
	match := 0
	for _, t := range tokens {
		if t != "" && got != "" {
			match |= subtle.ConstantTimeCompare([]byte(got), []byte(t))
		}
	}
	return match == 1
}
