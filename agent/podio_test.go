package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/kelpie-dev/kelpie/internal/execwire"
	"github.com/kelpie-dev/kelpie/reconciler"
	"github.com/kelpie-dev/kelpie/reconciler/reconcilertest"
	"github.com/kelpie-dev/kelpie/runtime/host"
)

func TestParseLogOptions(t *testing.T) {
	tests := []struct {
		name    string
		query   string
		want    LogOptions
		wantErr error // nil: no error; errAny: some error
	}{
		{name: "defaults", query: "", want: LogOptions{Tail: -1}},
		{name: "all", query: "container=web&follow=true&tail=5", want: LogOptions{Container: "web", Follow: true, Tail: 5}},
		{name: "bad tail", query: "tail=x", wantErr: errAny},
		{name: "bad follow", query: "follow=maybe", wantErr: errAny},
		{name: "since a duration", query: "since=5m&tail=2", want: LogOptions{Since: 5 * time.Minute, Tail: 2}},
		{name: "since a time", query: "since=2026-12-04T20:00:00Z", want: LogOptions{SinceTime: time.Date(2026, 12, 4, 20, 0, 0, 0, time.UTC), Tail: -1}},
		{name: "negative since", query: "since=-5m", wantErr: errAny},
		{name: "zero since", query: "since=0s", wantErr: errAny},
		{name: "bad since", query: "since=yesterday", wantErr: errAny},
		{name: "previous", query: "previous=true&tail=3", want: LogOptions{Previous: true, Tail: 3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, _ := url.ParseQuery(tt.query)
			got, err := ParseLogOptions(q)
			switch {
			case tt.wantErr == nil && err != nil:
				t.Fatalf("error %v", err)
			case tt.wantErr == errAny && err == nil, tt.wantErr != nil && tt.wantErr != errAny && !errors.Is(err, tt.wantErr):
				t.Fatalf("error %v, want %v", err, tt.wantErr)
			case tt.wantErr == nil && !reflect.DeepEqual(got, tt.want):
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
	// Query and Parse agree.
	for _, o := range []LogOptions{
		{Container: "c", Follow: true, Tail: 0},
		{Since: 90 * time.Second, Tail: -1, Previous: true},
		{SinceTime: time.Date(2026, 12, 4, 20, 0, 0, 5, time.UTC), Tail: 3},
	} {
		if got, err := ParseLogOptions(o.Query()); err != nil || !reflect.DeepEqual(got, o) {
			t.Errorf("round trip: %+v %v, want %+v", got, err, o)
		}
	}
	// The cutoff: a duration back from now, or the time given.
	now := time.Date(2026, 12, 4, 21, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		o    LogOptions
		want time.Time
	}{
		{LogOptions{}, time.Time{}},
		{LogOptions{Since: time.Hour}, now.Add(-time.Hour)},
		{LogOptions{SinceTime: now.Add(time.Minute)}, now.Add(time.Minute)},
	} {
		if got := tt.o.Cutoff(now); !got.Equal(tt.want) {
			t.Errorf("%+v.Cutoff = %v, want %v", tt.o, got, tt.want)
		}
	}
}

// errAny stands for "some error" in the option tables.
var errAny = errors.New("any error")

func TestParseExecOptions(t *testing.T) {
	o := ExecOptions{Container: "c", Command: []string{"sh", "-c", "echo a&b"}, Stdin: true, TTY: true, Width: 80, Height: 24}
	got, err := ParseExecOptions(o.Query())
	if err != nil || !reflect.DeepEqual(got, o) {
		t.Fatalf("round trip: %+v %v, want %+v", got, err, o)
	}
	for _, query := range []string{"", "command=x&tty=maybe", "command=x&width=-1", "command=x&height=100000"} {
		q, _ := url.ParseQuery(query)
		if _, err := ParseExecOptions(q); err == nil {
			t.Errorf("%q: accepted", query)
		}
	}
}

// TestHTTPGuardPodIO: a pod's log and exec need the API token or the peer
// token on every address, loopback included.
func TestHTTPGuardPodIO(t *testing.T) {
	const token, peer = "0123456789abcdef0123", "peer-peer-peer-peer-peer"
	ok := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusTeapot) })
	tests := []struct {
		name, listen, method, path, auth string
		peerCert                         bool
		want                             int
	}{
		{"loopback log without token", "127.0.0.1:7070", "GET", "/api/v1/pods/default/web/log", "", false, http.StatusUnauthorized},
		{"loopback log with API token", "127.0.0.1:7070", "GET", "/api/v1/pods/default/web/log", "Bearer " + token, false, http.StatusTeapot},
		{"lan exec without token", "10.1.2.3:7070", "POST", "/api/v1/pods/default/web/exec", "", false, http.StatusUnauthorized},
		{"lan exec with wrong token", "10.1.2.3:7070", "POST", "/api/v1/pods/default/web/exec", "Bearer nope-nope-nope-nope", false, http.StatusUnauthorized},
		{"lan exec with peer token", "10.1.2.3:7070", "POST", "/api/v1/pods/default/web/exec", "Bearer " + peer, false, http.StatusTeapot},
		{"lan log with API token", "10.1.2.3:7070", "GET", "/api/v1/pods/default/web/log", "Bearer " + token, false, http.StatusTeapot},
		{"peer token needs a client certificate", "10.1.2.3:7070", "GET", "/api/v1/pods/default/web/log", "Bearer " + peer, true, http.StatusUnauthorized},
		{"peer token opens nothing else", "10.1.2.3:7070", "POST", "/api/v1/sync", "Bearer " + peer, false, http.StatusUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := newHTTPGuard(tt.listen, token, tt.peerCert)
			g.peer = []string{peer}
			r := newLocalRequest(tt.method, tt.path, nil)
			r.Host = tt.listen
			if tt.auth != "" {
				r.Header.Set("Authorization", tt.auth)
			}
			if code, body := do(g.wrap(ok), r); code != tt.want {
				t.Errorf("%d %s, want %d", code, strings.TrimSpace(body), tt.want)
			}
		})
	}
}

// podIORuntime is the fake runtime with a log and an exec.
type podIORuntime struct {
	*reconcilertest.Fake
}

func (podIORuntime) LogsTail(_ context.Context, ns, pod, container string, filter host.LogFilter, _ bool, w io.Writer) error {
	if pod != "web" {
		return fmt.Errorf("no pod %s/%s", ns, pod)
	}
	lines := []string{"one\n", "two\n", "three\n"}
	if !filter.Since.IsZero() {
		lines = append([]string{"since " + filter.Since.UTC().Format(time.RFC3339) + "\n"}, lines...)
	}
	if tail := filter.Tail; tail >= 0 && tail < len(lines) {
		lines = lines[len(lines)-tail:]
	}
	_, err := io.WriteString(w, strings.Join(lines, ""))
	return err
}

func (podIORuntime) LogsPrevious(_ context.Context, _, _, _ string, _ host.LogFilter, w io.Writer) error {
	_, err := io.WriteString(w, "before\n")
	return err
}

func (podIORuntime) Exec(_ context.Context, _, _, _ string, cmd []string, eio host.ExecIO) (int, error) {
	fmt.Fprintf(eio.Stdout, "ran %s\n", strings.Join(cmd, " "))
	if eio.Stdin != nil {
		in, _ := io.ReadAll(eio.Stdin)
		fmt.Fprintf(eio.Stderr, "read %q\n", in)
	}
	return 3, nil
}

// TestPodLogAndExec: an agent on its own serves its pods' log and exec to
// the holder of its API token.
func TestPodLogAndExec(t *testing.T) {
	const token = "0123456789abcdef0123"
	h := newHarness(t)
	h.cfg.APIToken = token
	h.startOn(podIORuntime{h.rt})
	srv := httptest.NewServer(h.agent.Handler())
	defer srv.Close()

	get := func(path, auth string) (int, string) {
		req, _ := http.NewRequest("GET", srv.URL+path, nil)
		if auth != "" {
			req.Header.Set("Authorization", "Bearer "+auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("/api/v1/pods/default/web/log?tail=2", token); code != 200 || body != "two\nthree\n" {
		t.Errorf("log: %d %q", code, body)
	}
	if code, _ := get("/api/v1/pods/default/web/log", ""); code != http.StatusUnauthorized {
		t.Errorf("log without a token: %d, want 401", code)
	}
	if code, body := get("/api/v1/pods/default/web/log?previous=true", token); code != 200 || body != "before\n" {
		t.Errorf("log --previous: %d %q", code, body)
	}
	// since=1h reaches the runtime as the agent's clock's now less an hour.
	wantSince := "since " + h.clock.Now().Add(-time.Hour).UTC().Format(time.RFC3339) + "\n"
	if code, body := get("/api/v1/pods/default/web/log?since=1h", token); code != 200 || !strings.HasPrefix(body, wantSince) {
		t.Errorf("log --since: %d %q, want it to begin %q", code, body, wantSince)
	}
	if code, body := get("/api/v1/pods/default/web/log?since=soon", token); code != http.StatusBadRequest || !strings.Contains(body, "since") {
		t.Errorf("log --since soon: %d %q", code, body)
	}

	q := ExecOptions{Command: []string{"echo", "hi"}, Stdin: true}.Query()
	req, _ := http.NewRequest("POST", srv.URL+"/api/v1/pods/default/web/exec?"+q.Encode(), nil)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", execwire.Protocol)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("exec: %s %s", resp.Status, b)
	}
	conn := resp.Body.(io.ReadWriteCloser)
	defer conn.Close()
	fw := execwire.NewWriter(conn)
	if err := fw.Write(execwire.Stdin, []byte("input")); err != nil {
		t.Fatal(err)
	}
	if err := fw.Write(execwire.StdinEOF, nil); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr strings.Builder
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		f, err := execwire.Read(conn)
		if err != nil {
			t.Fatalf("read frames: %v (stdout %q)", err, stdout.String())
		}
		switch f.Type {
		case execwire.Stdout:
			stdout.Write(f.Payload)
		case execwire.Stderr:
			stderr.Write(f.Payload)
		case execwire.Exit:
			code, _ := execwire.ParseExitCode(f.Payload)
			if code != 3 || stdout.String() != "ran echo hi\n" || stderr.String() != "read \"input\"\n" {
				t.Fatalf("exit %d, stdout %q, stderr %q", code, stdout.String(), stderr.String())
			}
			return
		case execwire.Error:
			t.Fatalf("exec error: %s", f.Payload)
		}
	}
	t.Fatal("no exit frame")
}

var _ reconciler.Runtime = podIORuntime{}
