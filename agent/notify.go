package agent

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Notification delivery bounds.
const (
	notifyQueue    = 100              // notifications waiting for delivery; the oldest is dropped beyond
	notifyAttempts = 5                // tries per URL: 1+2+4+8 s of back-off covers a receiver's restart
	notifyBackoff  = time.Second      // the first retry's delay, doubling
	notifyTimeout  = 10 * time.Second // one POST, connection to response
	// SignatureHeader carries the HMAC-SHA256 of a notification's body
	// with Config.NotifySecret, as "sha256=HEX".
	SignatureHeader = "X-Kelpie-Signature"
)

// notifier posts notifications to the operator's URLs from its own
// goroutine (run), so that a slow or failing receiver never blocks the
// loop: send only queues. The queue is bounded; when it is full the
// oldest notification is dropped and counted.
type notifier struct {
	urls     []string
	secret   []byte
	client   *http.Client
	log      *slog.Logger
	attempts int
	backoff  time.Duration // tests shorten it
	counts   *prometheus.CounterVec

	mu    sync.Mutex
	queue [][]byte
	wake  chan struct{}
}

// newNotifier builds the notifier of cfg's Notify URLs, registering its
// counter on reg; nil when there are none.
func newNotifier(cfg *Config, reg prometheus.Registerer) (*notifier, error) {
	if len(cfg.Notify) == 0 {
		return nil, nil
	}
	for _, u := range cfg.Notify {
		p, err := url.Parse(u)
		if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			return nil, fmt.Errorf("agent config: Notify %q (--notify): want an http or https URL", redactURL(u))
		}
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if cfg.TLS.CAFile != "" {
		tc, err := cfg.TLS.ClientConfig()
		if err != nil {
			return nil, fmt.Errorf("agent config: Notify: %w", err)
		}
		tr.TLSClientConfig = tc
	}
	n := &notifier{
		urls: cfg.Notify, secret: []byte(cfg.NotifySecret),
		client: &http.Client{Transport: tr, Timeout: notifyTimeout},
		log:    cfg.Log, attempts: notifyAttempts, backoff: notifyBackoff,
		counts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kelpie_notifications_total",
			Help: "Notifications (--notify) by result: sent, failed (after every retry) or dropped (the queue was full).",
		}, []string{"result"}),
		wake: make(chan struct{}, 1),
	}
	for _, r := range []string{"sent", "failed", "dropped"} {
		n.counts.WithLabelValues(r)
	}
	if err := reg.Register(n.counts); err != nil {
		return nil, fmt.Errorf("register the notification metrics: %w", err)
	}
	return n, nil
}

// send queues body for every URL. It never blocks.
func (n *notifier) send(body []byte) {
	n.mu.Lock()
	if len(n.queue) >= notifyQueue {
		n.queue = n.queue[1:]
		n.counts.WithLabelValues("dropped").Inc()
	}
	n.queue = append(n.queue, body)
	n.mu.Unlock()
	select {
	case n.wake <- struct{}{}:
	default:
	}
}

// next takes the oldest queued notification.
func (n *notifier) next() ([]byte, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if len(n.queue) == 0 {
		return nil, false
	}
	body := n.queue[0]
	n.queue = n.queue[1:]
	return body, true
}

// run delivers queued notifications until ctx ends.
func (n *notifier) run(ctx context.Context) {
	for {
		for {
			body, ok := n.next()
			if !ok {
				break
			}
			for _, u := range n.urls {
				n.deliver(ctx, u, body)
			}
			if ctx.Err() != nil {
				return
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-n.wake:
		}
	}
}

// deliver posts body to u, retrying with exponential back-off on a
// failure or a status other than 2xx.
func (n *notifier) deliver(ctx context.Context, u string, body []byte) {
	delay := n.backoff
	var err error
	for i := range n.attempts {
		if i > 0 {
			t := time.NewTimer(delay)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			delay *= 2
		}
		if err = n.post(ctx, u, body); err == nil {
			n.counts.WithLabelValues("sent").Inc()
			return
		}
		if ctx.Err() != nil {
			return
		}
	}
	n.counts.WithLabelValues("failed").Inc()
	n.log.Warn("notification not delivered", "url", redactURL(u), "attempts", n.attempts, "err", err)
}

// post sends one POST of body to u.
func (n *notifier) post(ctx context.Context, u string, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "kelpie-agent")
	if len(n.secret) > 0 {
		req.Header.Set(SignatureHeader, Sign(n.secret, body))
	}
	resp, err := n.client.Do(req)
	if err != nil {
		return fmt.Errorf("post: %w", redactErr(err, u))
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("post: %s", resp.Status)
	}
	return nil
}

// Sign returns the X-Kelpie-Signature value of body with secret:
// "sha256=" and the hex HMAC-SHA256.
func Sign(secret, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// redactURL keeps a URL's scheme and host for logs and errors: webhook
// tokens live in the userinfo, the query, or (Slack's) the path.
func redactURL(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return "(unparsable URL)"
	}
	r := p.Scheme + "://" + p.Host
	if p.Path != "" && p.Path != "/" || p.RawQuery != "" {
		r += "/…"
	}
	return r
}

// redactErr is err with u replaced by its redacted form: net/http
// errors quote the whole URL, and Slack's carry their token in the path.
func redactErr(err error, u string) error {
	msg := err.Error()
	if r := redactURL(u); r != u {
		msg = string(bytes.ReplaceAll([]byte(msg), []byte(u), []byte(r)))
	}
	return fmt.Errorf("%s", msg)
}
