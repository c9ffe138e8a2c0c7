package source

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/go-git/go-git/v5/plumbing/transport"
	gitssh "github.com/go-git/go-git/v5/plumbing/transport/ssh"
)

// endpoint is one URL of a RemoteConfig, parsed once by NewRemote.
type endpoint struct {
	name    string // the remote's name in the cache: "r0", "r1", …
	url     string // what go-git dials: the URL as given, a plain path made absolute
	display string // the URL without userinfo, for messages and Fetched.Source
	secret  string // the password in the URL, scrubbed from errors; "" if none
	local   string // the repository's path when it is on this host (plain path or file://)
	auth    transport.AuthMethod

	tagFirst bool // the short Ref was a tag here last time; guarded by Remote.mu
}

// parseEndpoint classifies one URL: a scheme URL (https, http, ssh, git,
// file), an scp-like ssh address (git@host:path) or a plain path. ssh
// endpoints get key and known_hosts authentication from cfg.
func parseEndpoint(name, raw string, cfg *RemoteConfig) (*endpoint, error) {
	if strings.TrimSpace(raw) != raw || raw == "" {
		return nil, errors.New("empty or space-padded URL")
	}
	ep, err := transport.NewEndpoint(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", redactURL(raw), err)
	}
	e := &endpoint{name: name, url: raw, display: redactURL(raw), secret: ep.Password}
	switch ep.Protocol {
	case "https", "http", "git":
	case "ssh":
		if e.auth, err = sshAuth(ep, cfg); err != nil {
			return nil, fmt.Errorf("%s: %w", e.display, err)
		}
	case "file":
		if strings.HasPrefix(raw, "file://") {
			u, err := url.Parse(raw)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", e.display, err)
			}
			if u.Host != "" && u.Host != "localhost" {
				return nil, fmt.Errorf("%s: file URL names host %q; only local paths are supported", e.display, u.Host)
			}
			e.local = filepath.Clean(u.Path)
		} else {
			// go-git resolves a relative path against the working
			// directory at every fetch; fix it once.
			abs, err := filepath.Abs(raw)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", raw, err)
			}
			e.url, e.display, e.local = abs, abs, abs
		}
	default:
		return nil, fmt.Errorf("%s: unsupported protocol %q (want https, ssh, git, file or a path)", e.display, ep.Protocol)
	}
	return e, nil
}

// sshAuth builds the ssh authentication for an ssh endpoint: the key of
// cfg.SSHKeyFile, or without one the ssh agent (SSH_AUTH_SOCK). Host keys
// are always checked: against cfg.KnownHostsFile when set, else go-git's
// defaults ($SSH_KNOWN_HOSTS, ~/.ssh/known_hosts, /etc/ssh/ssh_known_hosts).
func sshAuth(ep *transport.Endpoint, cfg *RemoteConfig) (transport.AuthMethod, error) {
	user := ep.User
	if user == "" {
		user = "git"
	}
	var files []string // none: go-git's default known_hosts files
	if cfg.KnownHostsFile != "" {
		files = []string{cfg.KnownHostsFile}
	}
	db, err := gitssh.NewKnownHostsDb(files...)
	if err != nil {
		return nil, fmt.Errorf("known hosts: %w", err)
	}
	port := ep.Port
	if port == 0 {
		port = 22
	}
	helper := gitssh.HostKeyCallbackHelper{
		HostKeyCallback: db.HostKeyCallback(),
		// Offer only the key types known_hosts has for this host, or the
		// server may pick one that cannot be checked. (go-git does this
		// itself only when it builds the callback too.)
		HostKeyAlgorithms: db.HostKeyAlgorithms(net.JoinHostPort(ep.Host, strconv.Itoa(port))),
	}
	if cfg.SSHKeyFile != "" {
		k, err := gitssh.NewPublicKeysFromFile(user, cfg.SSHKeyFile, "")
		if err != nil {
			return nil, fmt.Errorf("ssh key file %s: %w", cfg.SSHKeyFile, err)
		}
		k.HostKeyCallbackHelper = helper
		return k, nil
	}
	a, err := gitssh.NewSSHAgentAuth(user)
	if err != nil {
		return nil, fmt.Errorf("no ssh key file given, and no ssh agent: %w", err)
	}
	a.HostKeyCallbackHelper = helper
	return a, nil
}

// redactURL returns a URL without its userinfo (user and password or
// token), to be shown in messages. scp-like addresses (git@host:path) and
// paths have no secret and are returned as they are.
func redactURL(raw string) string {
	if !strings.Contains(raw, "://") {
		return raw
	}
	u, err := url.Parse(raw)
	if err != nil {
		// Unparsable: cut whatever sits between "://" and the last "@"
		// of the authority, to be safe.
		scheme, rest, _ := strings.Cut(raw, "://")
		authority, path, _ := strings.Cut(rest, "/")
		if i := strings.LastIndex(authority, "@"); i >= 0 {
			authority = authority[i+1:]
		}
		if path != "" {
			return scheme + "://" + authority + "/" + path
		}
		return scheme + "://" + authority
	}
	if u.User == nil {
		return raw
	}
	u.User = nil
	return u.String()
}

// scrub returns err unchanged unless its message contains the endpoint's
// password, which it then replaces; errors.Is and errors.As still see err.
func (e *endpoint) scrub(err error) error {
	if err == nil || e.secret == "" {
		return err
	}
	msg := err.Error()
	clean := strings.ReplaceAll(msg, e.secret, "xxxxx")
	if esc := url.PathEscape(e.secret); esc != e.secret {
		clean = strings.ReplaceAll(clean, esc, "xxxxx")
	}
	if esc := url.QueryEscape(e.secret); esc != e.secret {
		clean = strings.ReplaceAll(clean, esc, "xxxxx")
	}
	if clean == msg {
		return err
	}
	return &scrubbedError{msg: clean, err: err}
}

// scrubbedError is an error whose message had a secret taken out.
type scrubbedError struct {
	msg string
	err error
}

func (e *scrubbedError) Error() string { return e.msg }
func (e *scrubbedError) Unwrap() error { return e.err }

// checkReadable fails with a message naming the setting when a file named by
// the configuration cannot be read.
func checkReadable(field, name string) error {
	if name == "" {
		return nil
	}
	f, err := os.Open(name)
	if err != nil {
		return fmt.Errorf("%s: %w", field, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("%s: %w", field, err)
	}
	if fi.IsDir() {
		return fmt.Errorf("%s: %s is a directory", field, name)
	}
	return nil
}
