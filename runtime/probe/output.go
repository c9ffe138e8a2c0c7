package probe

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"
)

// DefaultTimeout is the timeout of a probe that sets none, as in
// Kubernetes (timeoutSeconds defaults to 1).
const DefaultTimeout = time.Second

// maxOutput bounds the output of a probe, in bytes: it goes to the pod's
// status and the agent's log, and says what happened in a few words.
const maxOutput = 128

// timeoutOf is a probe's timeout, DefaultTimeout when it sets none.
func timeoutOf(d time.Duration) time.Duration {
	if d <= 0 {
		return DefaultTimeout
	}
	return d
}

// TimedOut is the output of a probe that took longer than timeout.
func TimedOut(timeout time.Duration) string {
	return "timeout after " + timeout.String()
}

// Short returns the first line of s, valid UTF-8, trimmed and cut to a
// length fit for a probe's output.
func Short(s string) string {
	return short(s)
}

func short(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexAny(s, "\r\n"); i >= 0 {
		s = strings.TrimSpace(s[:i])
	}
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= maxOutput {
		return s
	}
	cut := maxOutput
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// describe says in a few words why a probe's connection or request
// failed: "connection refused", "timeout after 1s", or the innermost
// error's message. ctx is the probe's own context: when it is done
// because its caller's context was, the output is "canceled".
func describe(ctx context.Context, parent context.Context, err error, timeout time.Duration) string {
	if parent.Err() != nil {
		return "canceled"
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) || ctx.Err() != nil {
		return TimedOut(timeout)
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return TimedOut(timeout)
	}
	for _, e := range []struct {
		errno syscall.Errno
		say   string
	}{
		{syscall.ECONNREFUSED, "connection refused"},
		{syscall.ECONNRESET, "connection reset"},
		{syscall.EHOSTUNREACH, "no route to host"},
		{syscall.ENETUNREACH, "network unreachable"},
		{syscall.EPIPE, "connection closed"},
	} {
		if errors.Is(err, e.errno) {
			return e.say
		}
	}
	// The innermost error of the usual wrappers says what happened; their
	// own text repeats the operation and the address.
	for {
		switch e := err.(type) {
		case *url.Error:
			err = e.Err
			continue
		case *net.OpError:
			err = e.Err
			continue
		case *os.SyscallError:
			err = e.Err
			continue
		}
		break
	}
	return short(err.Error())
}

// statusOutput is the output of an HTTP probe that got an answer.
func statusOutput(code int) string {
	return fmt.Sprintf("HTTP %d", code)
}
