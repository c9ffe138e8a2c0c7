package agent

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/http/cgi"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"

	"github.com/kelpie-dev/kelpie/gossip"
	"github.com/kelpie-dev/kelpie/internal/atomicfile"
	"github.com/kelpie-dev/kelpie/internal/httpauth"
)

// Peer sync (--serve-mirror): an agent serves, read-only, on its Listen
// address, what its peers need to follow it with no other source:
//
//	/mirror/git/repo.git  the commit this host applied, over git's smart HTTP
//	                      (upload-pack only): --repo http://kelpie:TOKEN@HOST:PORT/mirror/git/repo.git
//	/mirror/v2/…          the images of its containerd namespace and image dirs,
//	                      as a pull-only registry: --registry-mirror docker.io=http://kelpie:TOKEN@HOST:PORT/mirror
//
// Every request needs the mirror token as the basic-auth password (any user)
// or as a bearer token.
const (
	// MirrorRepoPath is the URL path of the repository a serving agent
	// offers its peers.
	MirrorRepoPath = "/mirror/git/repo.git"
	// MirrorRegistryPath is the base URL path of its registry: what a
	// peer's --registry-mirror names (the API itself is under /mirror/v2/).
	MirrorRegistryPath = "/mirror"

	mirrorTokenLabel  = "kelpie-mirror" // what MirrorTokenFromKey signs
	minMirrorTokenLen = 16              // shorter is guessable, not a secret
)

// MirrorTokenFromKey derives the mirror token of a cluster from one of its
// gossip keys: hex(HMAC-SHA256(key, "kelpie-mirror")), where key is the raw
// key (base64-decoded --gossip-key). Every member computes the same token,
// and it reveals nothing of the key. By hand:
//
//	echo -n kelpie-mirror | openssl dgst -sha256 -mac HMAC \
//	  -macopt hexkey:$(echo "$KELPIE_GOSSIP_KEY" | cut -d, -f1 | base64 -d | xxd -p -c 256)
func MirrorTokenFromKey(key []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(mirrorTokenLabel))
	return hex.EncodeToString(m.Sum(nil))
}

// mirrorTokens returns the tokens a serving agent accepts: MirrorToken when
// set, else the token of every key of the cluster's keyring, so that peers
// keep working while a key is rotated.
func mirrorTokens(cfg *Config) ([]string, error) {
	if cfg.MirrorToken != "" {
		return []string{cfg.MirrorToken}, nil
	}
	var keys [][]byte
	var err error
	switch {
	case cfg.Cluster == nil:
	case cfg.Cluster.Key != "":
		keys, err = gossip.ParseKeys(cfg.Cluster.Key)
	case cfg.Cluster.KeyFile != "":
		keys, err = gossip.ReadKeyFile(cfg.Cluster.KeyFile)
	}
	if err != nil {
		return nil, fmt.Errorf("derive the mirror token from the gossip key: %w", err)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("ServeMirror (--serve-mirror) needs MirrorToken (--mirror-token) or a cluster gossip key (--gossip-key)")
	}
	tokens := make([]string, len(keys))
	for i, k := range keys {
		tokens[i] = MirrorTokenFromKey(k)
	}
	return tokens, nil
}

// mirrorServer serves /mirror/: the git view and the registry.
//
// The git cache (Config.CacheDir) keeps each URL's branches under
// refs/remotes/rN/ and the applied commit under refs/kelpie/applied, names
// a follower's fetch would not find. So the served repository is a view:
// a bare repository of its own (StateDir/agent/mirror/repo.git) whose
// objects are the cache's (objects/info/alternates, nothing copied) and
// whose one ref, named as this agent's Ref (refs/heads/main, or
// refs/tags/TAG, or a detached HEAD for a commit), points at the commit
// this host applied. A follower thus gets what its peer runs, which passed
// the peer's checks (signatures, fast-forward, validation); in a cluster
// that is the commit the leader placed. The ref is updated from the
// agent's status at each ref advertisement. `git http-backend` (a CGI)
// serves it: git's own upload-pack, fast and with shallow support, where
// go-git's server is many times slower (PITFALLS.md).
type mirrorServer struct {
	tokens   []string
	applied  func() string // the applied commit, "" before the first
	view     string        // the served bare repository
	refFile  string        // its file of the served ref
	backend  *cgi.Handler
	registry http.Handler
	log      *slog.Logger

	mu        sync.Mutex // serialises publish
	published string     // the commit refFile names
}

// newMirrorServer prepares the view repository under cfg.StateDir and the
// handlers; registry builds the /v2/ handler for the accepted tokens (Open
// gives image.Client.RegistryHandler). cfg must be validated.
func newMirrorServer(cfg *Config, registry func(tokens ...string) http.Handler, applied func() string) (*mirrorServer, error) {
	tokens, err := mirrorTokens(cfg)
	if err != nil {
		return nil, err
	}
	gitBin, err := exec.LookPath("git")
	if err != nil {
		return nil, fmt.Errorf("serve mirror (--serve-mirror): git http-backend serves the repository: %w", err)
	}
	root := filepath.Join(cfg.StateDir, "agent", "mirror")
	m := &mirrorServer{
		tokens:   tokens,
		applied:  applied,
		view:     filepath.Join(root, "repo.git"),
		registry: http.StripPrefix(MirrorRegistryPath, registry(tokens...)),
		log:      cfg.Log,
	}
	head, err := m.initView(cfg.CacheDir(), cfg.Ref)
	if err != nil {
		return nil, fmt.Errorf("serve mirror (--serve-mirror): %w", err)
	}
	if head != "" {
		m.refFile = filepath.Join(m.view, filepath.FromSlash(head))
	} else {
		m.refFile = filepath.Join(m.view, "HEAD")
	}
	m.backend = &cgi.Handler{
		Path: gitBin,
		Args: []string{"http-backend"},
		Root: "/mirror/git",
		Env: []string{
			"GIT_PROJECT_ROOT=" + root,
			"GIT_HTTP_EXPORT_ALL=1",
			"GIT_CONFIG_NOSYSTEM=1",
			"HOME=" + root, // no user's git config applies
		},
	}
	return m, nil
}

// initView (re)writes the view repository: config, HEAD, alternates. It
// returns the served ref's name, "" when HEAD itself is (a commit Ref).
// The view's files are written with atomicfile, not go-git: go-git rewrites
// a ref file in place (truncate, then write), which git http-backend,
// reading concurrently, could see empty.
func (m *mirrorServer) initView(cache, ref string) (string, error) {
	for _, d := range []string{"refs/heads", "refs/tags", "objects/info"} {
		if err := os.MkdirAll(filepath.Join(m.view, d), 0o700); err != nil {
			return "", err
		}
	}
	name := ""
	switch {
	case len(ref) == 40 && isHexString(ref):
	case strings.HasPrefix(ref, "refs/"):
		name = ref
	default:
		name = "refs/heads/" + ref
	}
	files := map[string]string{
		"config": "[core]\n\trepositoryformatversion = 0\n\tbare = true\n" +
			"[http]\n\treceivepack = false\n\tuploadpack = true\n" +
			"[gc]\n\tauto = 0\n", // the view holds no objects of its own
		"objects/info/alternates": filepath.Join(cache, "objects") + "\n",
		"description":             "kelpie peer mirror of the commit this host applied\n",
	}
	if name != "" {
		files["HEAD"] = "ref: " + name + "\n"
		if err := os.RemoveAll(filepath.Join(m.view, filepath.FromSlash(name))); err != nil {
			return "", err // a stale commit of the last run: publish writes the current one
		}
	}
	for f, text := range files {
		if err := atomicfile.WriteFile(filepath.Join(m.view, f), []byte(text), 0o600); err != nil {
			return "", err
		}
	}
	return name, nil
}

// publish points the served ref at the applied commit; before the first
// commit is applied it serves no ref at all.
func (m *mirrorServer) publish() error {
	commit := m.applied()
	m.mu.Lock()
	defer m.mu.Unlock()
	if commit == m.published {
		return nil
	}
	var err error
	if commit == "" {
		if err = os.Remove(m.refFile); errors.Is(err, fs.ErrNotExist) {
			err = nil
		}
	} else {
		err = atomicfile.WriteFile(m.refFile, []byte(commit+"\n"), 0o600)
	}
	if err != nil {
		return fmt.Errorf("publish commit %q to %s: %w", commit, m.view, err)
	}
	m.published = commit
	return nil
}

// ServeHTTP checks the token, then serves the registry or the repository.
func (m *mirrorServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !httpauth.TokenAuthorized(r, m.tokens...) {
		w.Header().Set("WWW-Authenticate", `Basic realm="kelpie mirror"`)
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = io.WriteString(w, "a valid mirror token is required") // git clients quote it: no newline
		return
	}
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil || repeated(q) {
		// Go reads the first of a repeated parameter, git http-backend the
		// last: ?service=git-upload-pack&service=git-receive-pack passed
		// the check below and reached receive-pack.
		http.Error(w, "malformed or repeated query parameters", http.StatusBadRequest)
		return
	}
	p := r.URL.Path
	switch {
	case strings.HasPrefix(p, "/mirror/v2/"):
		m.registry.ServeHTTP(w, r)
	case p == MirrorRepoPath+"/info/refs" && r.Method == http.MethodGet &&
		len(q) == 1 && q.Get("service") == "git-upload-pack":
		if err := m.publish(); err != nil {
			m.log.Warn("peer mirror: cannot publish the applied commit", "err", err)
			http.Error(w, "the mirror cannot publish its commit", http.StatusInternalServerError)
			return
		}
		m.backend.ServeHTTP(w, r)
	case p == MirrorRepoPath+"/git-upload-pack" && r.Method == http.MethodPost:
		m.backend.ServeHTTP(w, r)
	case strings.HasPrefix(p, MirrorRepoPath+"/"):
		// receive-pack, and git's dumb protocol, which would read the
		// view's files and miss the objects behind the alternates.
		http.Error(w, "read-only mirror: only git-upload-pack over smart HTTP is served", http.StatusForbidden)
	default:
		http.NotFound(w, r)
	}
}

// repeated reports whether a query names a parameter more than once.
func repeated(q url.Values) bool {
	for _, vs := range q {
		if len(vs) > 1 {
			return true
		}
	}
	return false
}

// logMirror says, once at start, where peers find this host's mirror.
func (m *mirrorServer) logMirror(listen string) {
	host, port, _ := net.SplitHostPort(listen)
	addr := listen
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		addr = net.JoinHostPort("THIS-HOST", port)
	}
	m.log.Info("serving the applied commit and the images to peers (--serve-mirror)",
		"repo", "http://kelpie:TOKEN@"+addr+MirrorRepoPath,
		"registry_mirror", "docker.io=http://kelpie:TOKEN@"+addr+MirrorRegistryPath)
	if ip := net.ParseIP(host); host == "localhost" || ip != nil && ip.IsLoopback() {
		m.log.Warn("--serve-mirror on a loopback --listen: only this host can reach the mirror", "listen", listen)
	}
}

// isHexString reports whether s is made of hex digits only.
func isHexString(s string) bool {
	for _, c := range s {
		if !strings.ContainsRune("0123456789abcdefABCDEF", c) {
			return false
		}
	}
	return true
}

// publishedApplied returns the applied commit of the published status, ""
// before the first: appliedHash's value, safe from any goroutine.
func (a *Agent) publishedApplied() string {
	a.mu.RLock()
	defer a.mu.RUnlock()
	if a.status.Applied == nil {
		return ""
	}
	return a.status.Applied.Hash
}
