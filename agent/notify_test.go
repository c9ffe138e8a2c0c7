package agent

import (
	"crypto/hmac"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/kelpie-dev/kelpie/internal/testenv"
)

// testNotifySecret signs the notifications of these tests.
const testNotifySecret = "notify-secret-for-tests"

// receiver is a webhook receiver on loopback that records what it is
// sent; codes, when set, answer the first requests in turn.
type receiver struct {
	t     *testing.T
	srv   *httptest.Server
	mu    sync.Mutex
	codes []int
	hits  int       // requests received
	got   []Payload // payloads answered 2xx
	hold  chan struct{}
}

func newReceiver(t *testing.T, codes ...int) *receiver {
	r := &receiver{t: t, codes: codes}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	if r.hold != nil {
		select {
		case <-r.hold:
		case <-req.Context().Done():
			return
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.hits++
	if want := Sign([]byte(testNotifySecret), body); !hmac.Equal([]byte(req.Header.Get(SignatureHeader)), []byte(want)) {
		r.t.Errorf("notification signature %q, want %q", req.Header.Get(SignatureHeader), want)
	}
	if strings.Contains(string(body), testNotifySecret) {
		r.t.Errorf("the notification holds the secret: %s", body)
	}
	code := http.StatusOK
	if len(r.codes) > 0 {
		code, r.codes = r.codes[0], r.codes[1:]
	}
	if code/100 == 2 {
		var p Payload
		if err := json.Unmarshal(body, &p); err != nil {
			r.t.Errorf("notification body: %v\n%s", err, body)
		}
		r.got = append(r.got, p)
	}
	w.WriteHeader(code)
}

// wait waits until n payloads were received and returns them.
func (r *receiver) wait(n int) []Payload {
	r.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		r.mu.Lock()
		got := append([]Payload(nil), r.got...)
		r.mu.Unlock()
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("timed out waiting for %d notifications; got %+v", n, got)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// notifyHarness is a harness whose agent notifies r, with short retries.
func notifyHarness(t *testing.T, r *receiver) *harness {
	h := newHarness(t)
	h.cfg.Notify = []string{r.srv.URL + "/hook"}
	h.cfg.NotifySecret = testNotifySecret
	h.cfg.RetryMin, h.cfg.RetryMax = time.Hour, time.Hour // retries only by hand
	return h
}

// fastRetries shortens the notifier's back-off.
func fastRetries(a *Agent) { a.ops.notify.backoff = time.Millisecond }

// TestNotifyRefusedThenResolved: a refused commit sends one signed firing
// notification (a stalled sync of the same head sends no other); the next
// good commit sends it resolved.
func TestNotifyRefusedThenResolved(t *testing.T) {
	r := newReceiver(t)
	h := notifyHarness(t, r)
	h.src.push("v1", map[string]string{"app.yaml": deployment("web", 1, "busybox")})
	h.startWith(fastRetries)
	h.waitSync(0)

	bad := h.src.push("broken", map[string]string{"app.yaml": brokenManifest})
	h.syncNow("test")
	got := r.wait(1)
	p := got[0]
	if p.Version != "4" || p.Status != "firing" || len(p.Alerts) != 1 || p.Node != "test-host" {
		t.Fatalf("firing payload: %+v", p)
	}
	al := p.Alerts[0]
	if al.Status != "firing" || al.Labels["alertname"] != AlertCommitRefused || al.Labels["node"] != "test-host" || al.Labels["commit"] != bad.Hash[:12] || al.StartsAt.IsZero() || !al.EndsAt.IsZero() {
		t.Fatalf("firing alert: %+v", al)
	}
	if !strings.Contains(al.Annotations["description"], "app.yaml:7") || !strings.Contains(p.Text, "[FIRING] KelpieCommitRefused") {
		t.Fatalf("firing alert text: %q, %q", p.Text, al.Annotations)
	}

	h.syncNow("again") // the same head: stalls, still firing, not resent
	h.src.push("fixed", map[string]string{"app.yaml": deployment("web", 2, "busybox")})
	h.syncNow("test")
	got = r.wait(2)
	p = got[1]
	if len(got) != 2 || p.Status != "resolved" || p.Alerts[0].Labels["commit"] != bad.Hash[:12] || p.Alerts[0].EndsAt.IsZero() || !strings.HasPrefix(p.Text, "[RESOLVED]") {
		t.Fatalf("after the fix: %+v", got)
	}
	// The receiver has the body before the notifier counts it sent.
	testenv.Eventually(t, 10*time.Second, "kelpie_notifications_total{result=sent} = 2", func() bool {
		return testutil.ToFloat64(h.agent.ops.notify.counts.WithLabelValues("sent")) == 2
	})
}

// TestNotifyRetries: a receiver that answers 500 twice gets the
// notification on the third try, once.
func TestNotifyRetries(t *testing.T) {
	r := newReceiver(t, 500, 500, 200)
	h := notifyHarness(t, r)
	h.src.push("broken", map[string]string{"app.yaml": brokenManifest})
	h.startWith(fastRetries)
	got := r.wait(1)
	h.waitFor("delivered", func(Status) bool {
		return testutil.ToFloat64(h.agent.ops.notify.counts.WithLabelValues("sent")) == 1
	})
	r.mu.Lock()
	hits := r.hits
	r.mu.Unlock()
	if len(got) != 1 || hits != 3 || got[0].Alerts[0].Labels["alertname"] != AlertCommitRefused {
		t.Fatalf("%d requests, payloads %+v", hits, got)
	}
}

// TestNotifySlowReceiver: a receiver that does not answer blocks no sync.
func TestNotifySlowReceiver(t *testing.T) {
	r := newReceiver(t)
	r.hold = make(chan struct{})
	h := notifyHarness(t, r)
	h.src.push("broken", map[string]string{"app.yaml": brokenManifest})
	h.startWith(fastRetries)
	h.waitSync(0)
	for i := range 5 {
		h.src.push("broken again", map[string]string{"app.yaml": brokenManifest}) // a new refused commit each time: a new alert
		if s := h.syncNow("test"); s.LastSync.Result != resultRefused {
			t.Fatalf("sync %d: %+v", i, s.LastSync)
		}
	}
	close(r.hold)
	r.wait(1)
}

// TestNotifySyncFailing: transient failures notify only once they persist
// (3 in a row), and their end resolves it.
func TestNotifySyncFailing(t *testing.T) {
	r := newReceiver(t)
	h := notifyHarness(t, r)
	h.src.push("v1", map[string]string{"app.yaml": deployment("web", 1, "busybox")})
	h.startWith(fastRetries)
	h.waitSync(0)
	h.src.setErr(errors.New("dial tcp: connection refused"))
	h.syncNow("f1")
	h.syncNow("f2")
	r.mu.Lock()
	early := len(r.got)
	r.mu.Unlock()
	h.syncNow("f3")
	got := r.wait(1)
	if early != 0 || got[0].Status != "firing" || got[0].Alerts[0].Labels["alertname"] != AlertSyncFailing || !strings.Contains(got[0].Alerts[0].Annotations["description"], "connection refused") {
		t.Fatalf("after 2 failures %d notifications; after 3: %+v", early, got)
	}
	h.syncNow("f4")
	h.src.setErr(nil)
	h.syncNow("ok")
	got = r.wait(2)
	if len(got) != 2 || got[1].Status != "resolved" || got[1].Alerts[0].Labels["alertname"] != AlertSyncFailing {
		t.Fatalf("after recovery: %+v", got)
	}
}

// TestNotifyHostLostOnce: three agents over real gossip notify one
// receiver; when a follower dies, the receiver gets one KelpieHostLost
// (from the leader), not one per survivor.
func TestNotifyHostLostOnce(t *testing.T) {
	r := newReceiver(t)
	src := newFakeSource()
	src.push("v1", map[string]string{"web.yaml": deployment("web", 3, "busybox")})
	tc := newTestCluster(t, src)
	notify := func(cfg *Config) {
		cfg.Notify = []string{r.srv.URL}
		cfg.NotifySecret = testNotifySecret
	}
	for _, name := range []string{"a", "b", "c"} {
		tc.start(name, 3, notify)
	}
	tc.waitPods("3 replicas", replicaNames("web", 3))
	lead := tc.leader()
	var victim *clusterMember
	for _, m := range tc.members {
		if m != lead {
			victim = m
			break
		}
	}
	tc.kill(victim)
	got := r.wait(1)
	al := got[0].Alerts[0]
	if got[0].Status != "firing" || al.Labels["alertname"] != AlertHostLost || al.Labels["node"] != victim.name || got[0].Node != lead.name {
		t.Fatalf("host lost: %+v", got)
	}
	// The survivors go on (a sync each, and drift checks): no second copy.
	for _, m := range tc.members {
		if m.cancel != nil {
			seq := m.agent.Status().LastSync.Seq
			m.agent.Trigger("test")
			deadline := time.Now().Add(10 * time.Second)
			for m.agent.Status().LastSync.Seq == seq && time.Now().Before(deadline) {
				time.Sleep(5 * time.Millisecond)
			}
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.got) != 1 {
		t.Fatalf("%d notifications, want 1: %+v", len(r.got), r.got)
	}
}

// TestNotifyConfigRejected: New names a notification URL or history limit
// it cannot use, without the URL's secrets.
func TestNotifyConfigRejected(t *testing.T) {
	for _, tc := range []struct {
		name   string
		adjust func(*Config)
		want   string
	}{
		{"ftp URL", func(c *Config) { c.Notify = []string{"ftp://user:pw@example.com/x"} }, `Notify "ftp://example.com/…" (--notify): want an http or https URL`},
		{"no host", func(c *Config) { c.Notify = []string{"https:///hook"} }, "want an http or https URL"},
		{"history limit", func(c *Config) { c.HistoryLimit = 20000 }, "HistoryLimit 20000: want 1 to 10000"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			tc.adjust(&h.cfg)
			_, err := New(h.cfg, Deps{Source: h.src, Runtime: h.rt})
			if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "pw") {
				t.Fatalf("New: %v, want %q", err, tc.want)
			}
		})
	}
}
