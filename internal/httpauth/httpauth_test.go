package httpauth

import (
	"net/http/httptest"
	"testing"
)

func TestTokenAuthorized(t *testing.T) {
	tests := []struct {
		name   string
		header string // Authorization
		basic  string // basic-auth password, when set
		tokens []string
		want   bool
	}{
		{name: "bearer", header: "Bearer s3cret", tokens: []string{"s3cret"}, want: true},
		{name: "bearer with spaces", header: "Bearer  s3cret ", tokens: []string{"s3cret"}, want: true},
		{name: "basic password", basic: "s3cret", tokens: []string{"other", "s3cret"}, want: true},
		{name: "wrong token", header: "Bearer nope", tokens: []string{"s3cret"}},
		{name: "no credentials", tokens: []string{"s3cret"}},
		{name: "empty token authorizes nothing", header: "Bearer ", tokens: []string{""}},
		{name: "no tokens", header: "Bearer s3cret"},
		{name: "other scheme", header: "Token s3cret", tokens: []string{"s3cret"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/v2/", nil)
			if tt.header != "" {
				r.Header.Set("Authorization", tt.header)
			}
			if tt.basic != "" {
				r.SetBasicAuth("kelpie", tt.basic)
			}
			if got := TokenAuthorized(r, tt.tokens...); got != tt.want {
				t.Errorf("TokenAuthorized = %v, want %v", got, tt.want)
			}
		})
	}
}
