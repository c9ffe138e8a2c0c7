package agent

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"time"
)

// ErrLogSinceUnsupported refuses --since, with what to do instead: the
// container log files (runtime/host) hold what the shim wrote, with no
// time stamps.
var ErrLogSinceUnsupported = errors.New("--since is not supported: kelpie's container logs carry no time stamps; use --tail N")

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
	// Since is refused (ErrLogSinceUnsupported); it is parsed so the
	// refusal is clear.
	Since time.Duration
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
	}
	if o.Previous {
		q.Set("previous", "true")
	}
	return q
}

// ParseLogOptions decodes the endpoint's query; an option kelpie cannot
// honour is an error that says so.
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
		if o.Since, err = time.ParseDuration(s); err != nil || o.Since <= 0 {
			return o, fmt.Errorf("since %q: want a positive duration such as 5m", s)
		}
	}
	return o, o.Supported()
}

// Supported reports an option kelpie cannot honour.
func (o LogOptions) Supported() error {
	if o.Since > 0 {
		return ErrLogSinceUnsupported
	}
	return nil
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
