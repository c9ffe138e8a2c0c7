package source

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"strings"
)

// maxWebhookBody bounds a webhook request body. Push payloads of the git
// hosts are a few KiB to a few hundred; GitHub caps them at 25 MB but
// truncates commit lists long before.
const maxWebhookBody = 1 << 20

// WebhookHandler returns the handler of git host webhooks (POST /hooks/git).
// A request is accepted only when it proves it knows secret:
//
//   - GitHub: X-Hub-Signature-256: sha256=HEX, the HMAC-SHA256 of the body
//   - Gitea, Forgejo, Gogs: X-Gitea-Signature, X-Forgejo-Signature,
//     X-Gogs-Signature: HEX, the same HMAC without the prefix
//   - GitLab: X-Gitlab-Token equal to secret (compared in constant time)
//
// An accepted request gets 202 and sends a Trigger such as
// "webhook github push" to out, without blocking (dropped when out is full:
// a sync is already due); a ping gets 200 and triggers nothing. The payload
// is not otherwise read: any signed event is a reason to fetch, and the fetch
// decides what changed.
//
// Refused: a method other than POST (405), a body over 1 MiB (413), a
// missing or wrong signature (401). An empty secret refuses every request
// with 401.
//
// The handler is safe for concurrent use.
func WebhookHandler(secret string, out chan<- Trigger) http.Handler {
	return &webhook{secret: []byte(secret), out: out}
}

type webhook struct {
	secret []byte
	out    chan<- Trigger
}

func (h *webhook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "webhook: only POST", http.StatusMethodNotAllowed)
		return
	}
	if len(h.secret) == 0 {
		http.Error(w, "webhook: no secret configured", http.StatusUnauthorized)
		return
	}
	if r.ContentLength > maxWebhookBody {
		http.Error(w, "webhook: body over 1 MiB", http.StatusRequestEntityTooLarge)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxWebhookBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			http.Error(w, "webhook: body over 1 MiB", http.StatusRequestEntityTooLarge)
			return
		}
		http.Error(w, "webhook: read body: "+err.Error(), http.StatusBadRequest)
		return
	}
	provider, ok := h.authenticate(r.Header, body)
	if !ok {
		http.Error(w, "webhook: missing or invalid signature", http.StatusUnauthorized)
		return
	}
	event := eventName(r.Header)
	if event == "ping" {
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, "pong\n")
		return
	}
	send(h.out, Trigger{Reason: "webhook " + provider + " " + event})
	w.WriteHeader(http.StatusAccepted)
	_, _ = io.WriteString(w, "sync triggered\n")
}

// authenticate checks the first signature header present, in the order
// below, and returns the provider that sent it. Gitea and Forgejo also send
// X-Hub-Signature-256; their own header comes first.
func (h *webhook) authenticate(hdr http.Header, body []byte) (provider string, ok bool) {
	if token := hdr.Get("X-Gitlab-Token"); token != "" {
		return "gitlab", equalSecret([]byte(token), h.secret)
	}
	for _, s := range []struct{ header, provider string }{
		{"X-Forgejo-Signature", "forgejo"},
		{"X-Gitea-Signature", "gitea"},
		{"X-Gogs-Signature", "gogs"},
	} {
		if sig := hdr.Get(s.header); sig != "" {
			return s.provider, h.validMAC(sig, body)
		}
	}
	if sig := hdr.Get("X-Hub-Signature-256"); sig != "" {
		hexSig, found := strings.CutPrefix(sig, "sha256=")
		return "github", found && h.validMAC(hexSig, body)
	}
	return "", false
}

// validMAC reports whether hexSig is the hex HMAC-SHA256 of body under the
// secret.
func (h *webhook) validMAC(hexSig string, body []byte) bool {
	got, err := hex.DecodeString(strings.TrimSpace(hexSig))
	if err != nil {
		return false
	}
	mac := hmac.New(sha256.New, h.secret)
	mac.Write(body)
	return hmac.Equal(got, mac.Sum(nil))
}

// equalSecret compares a token with the secret in constant time, lengths
// included (both are hashed first).
func equalSecret(token, secret []byte) bool {
	a, b := sha256.Sum256(token), sha256.Sum256(secret)
	return subtle.ConstantTimeCompare(a[:], b[:]) == 1
}

// eventName returns the event a git host says it sends, normalised for a
// trigger reason: "push", "tag-push" (GitLab's "Tag Push Hook"), "ping".
func eventName(hdr http.Header) string {
	var raw string
	for _, k := range []string{"X-GitHub-Event", "X-Forgejo-Event", "X-Gitea-Event", "X-Gogs-Event", "X-Gitlab-Event"} {
		if raw = hdr.Get(k); raw != "" {
			break
		}
	}
	raw = strings.TrimSuffix(strings.ToLower(strings.TrimSpace(raw)), " hook")
	var b strings.Builder
	for _, c := range raw {
		switch {
		case b.Len() >= 40:
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '_', c == '.', c == '-':
			b.WriteRune(c)
		case c == ' ':
			b.WriteByte('-')
		}
	}
	if b.Len() == 0 {
		return "event"
	}
	return b.String()
}
