package agent

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"time"
)

// LogOptions are the query of GET /api/v1/pods/{namespace}/{name}/log.
type LogOptions struct {
	// Container names the container; "" means the pod's only app container.
	Container string
	// Follow keeps streaming new output until the container stops.
	Follow bool
	// Tail starts with the last Tail lines; negative means all.
	Tail int
	// Previous asks for the output of the container's previous run
	// instead (Follow does not apply).
	Previous bool
	// Since keeps the output written in the last Since only (0: all),
	// measured on the clock of the host that serves the log; SinceTime
	// the output written at or after it (zero: all). One of them is set.
	// Both filter before Tail, and are as exact as the log's time index
	// (one second; see runtime/host's logTimesSuffix).
	Since     time.Duration
	SinceTime time.Time
}

// ParseSince reads a --since value: a positive duration (10m) or an RFC
// 3339 time (2026-12-04T20:00:00Z). Its error is what is wanted instead
// ("a positive duration such as 10m"); the caller names the value and
// where it came from.
func ParseSince(s string) (time.Duration, time.Time, error) {
	if d, err := time.ParseDuration(s); err == nil {
		if d <= 0 {
			return 0, time.Time{}, errors.New("a positive duration such as 10m")
		}
		return d, time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return 0, time.Time{}, errors.New("a duration such as 10m or an RFC 3339 time such as 2026-12-04T20:00:00Z")
	}
	return 0, t, nil
}

// Cutoff is the time from which output is wanted, at now (zero: all).
func (o LogOptions) Cutoff(now time.Time) time.Time {
	switch {
	case o.Since > 0:
		return now.Add(-o.Since)
	case !o.SinceTime.IsZero():
		return o.SinceTime
	}
	return time.Time{}
}

// Query encodes o as the endpoint's query.
func (o LogOptions) Query() url.Values {
	q := url.Values{}
	if o.Container != "" {
		q.Set("container", o.Container)
	}
	if o.Follow {
		q.Set("follow", "true")
	}
	if o.Tail >= 0 {
		q.Set("tail", strconv.Itoa(o.Tail))
	}
	if o.Since > 0 {
		q.Set("since", o.Since.String())
	} else if !o.SinceTime.IsZero() {
		q.Set("since", o.SinceTime.Format(time.RFC3339Nano))
	}
	if o.Previous {
		q.Set("previous", "true")
	}
	return q
}

// ParseLogOptions decodes the endpoint's query; since is a duration
// (10m) or an RFC 3339 time.
func ParseLogOptions(q url.Values) (LogOptions, error) {
	o := LogOptions{Container: q.Get("container"), Tail: -1}
	var err error
	if o.Follow, err = parseBool(q, "follow"); err != nil {
		return o, err
	}
	if o.Previous, err = parseBool(q, "previous"); err != nil {
		return o, err
	}
	if s := q.Get("tail"); s != "" {
		if o.Tail, err = strconv.Atoi(s); err != nil {
			return o, fmt.Errorf("tail %q: want a number of lines", s)
		}
	}
	if s := q.Get("since"); s != "" {
		if o.Since, o.SinceTime, err = ParseSince(s); err != nil {
			return o, fmt.Errorf("since %q: want %w", s, err)
		}
	}
	return o, nil
}

// ExecOptions are the query of POST /api/v1/pods/{namespace}/{name}/exec.
type ExecOptions struct {
	// Container names the container; "" means the pod's only app container.
	Container string
	// Command is what runs, one query value "command" per argument.
	Command []string
	// Stdin passes the client's standard input; TTY gives the command a
	// terminal of Width × Height (0 leaves the shim's).
	Stdin, TTY    bool
	Width, Height uint32
}

// Query encodes o as the endpoint's query.
func (o ExecOptions) Query() url.Values {
	q := url.Values{"command": o.Command}
	if o.Container != "" {
		q.Set("container", o.Container)
	}
	if o.Stdin {
		q.Set("stdin", "true")
	}
	if o.TTY {
		q.Set("tty", "true")
		q.Set("width", strconv.FormatUint(uint64(o.Width), 10))
		q.Set("height", strconv.FormatUint(uint64(o.Height), 10))
	}
	return q
}

// ParseExecOptions decodes the endpoint's query.
func ParseExecOptions(q url.Values) (ExecOptions, error) {
	o := ExecOptions{Container: q.Get("container"), Command: q["command"]}
	if len(o.Command) == 0 {
		return o, errors.New("exec needs a command: one query value command= per argument")
	}
	var err error
	if o.Stdin, err = parseBool(q, "stdin"); err != nil {
		return o, err
	}
	if o.TTY, err = parseBool(q, "tty"); err != nil {
		return o, err
	}
	for _, f := range []struct {
		name string
		v    *uint32
	}{{"width", &o.Width}, {"height", &o.Height}} {
		if s := q.Get(f.name); s != "" {
			n, err := strconv.ParseUint(s, 10, 16)
			if err != nil {
				return o, fmt.Errorf("%s %q: want a number of characters", f.name, s)
			}
			*f.v = uint32(n)
		}
	}
	return o, nil
}

// parseBool reads a boolean query value; absent is false.
func parseBool(q url.Values, name string) (bool, error) {
	s := q.Get(name)
	if s == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(s)
	if err != nil {
		return false, fmt.Errorf("%s %q: want true or false", name, s)
	}
	return b, nil
}
