package source

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
)

// RemoteConfig configures a tracked remote repository.
type RemoteConfig struct {
	// URLs are where the repository is fetched from, in order: upstream
	// first, then mirrors, each tried when the ones before it fail or
	// offer a head that is refused. Each is an https://, http://, ssh://,
	// git:// or file:// URL, an scp-like ssh address (git@host:path) or a
	// plain path to a bare or non-bare repository on this host.
	// Credentials in a URL (https://user:token@host/…) are used but never
	// shown: messages print the URL without its userinfo.
	URLs []string
	// Ref is what is tracked: a branch (default "main"), a tag, a full ref
	// name (refs/heads/…, refs/tags/…) or a full 40-digit commit hash. A
	// short name is looked up as a branch first, then as a tag.
	Ref string
	// CacheDir is the bare repository the remote is fetched into, owned by
	// the caller (e.g. StateDir/git/<hash of the URLs>). It is created
	// when missing.
	CacheDir string
	// SSHKeyFile is the private key (unencrypted, PEM or OpenSSH format)
	// for ssh URLs. Without one the ssh agent is asked.
	SSHKeyFile string
	// KnownHostsFile lists the ssh host keys to accept. Without one,
	// $SSH_KNOWN_HOSTS, ~/.ssh/known_hosts and /etc/ssh/ssh_known_hosts are
	// read. A host whose key is not listed is refused.
	KnownHostsFile string
	// CABundle adds PEM CAs to trust for https URLs (--tls-ca); ClientCert
	// and ClientKey are a PEM certificate and key presented to servers
	// that ask for one (a peer's mirror with --tls-client-ca).
	CABundle, ClientCert, ClientKey []byte
	// VerifyKeysFile holds armored OpenPGP public keys. When set, a head
	// commit is accepted only if it is signed by one of them.
	VerifyKeysFile string
	// AllowRewrite accepts a head that does not descend from the applied
	// commit. Without it such a head is refused with ErrNotFastForward, so
	// that neither an accident nor an attacker rolls a site back silently.
	AllowRewrite bool
	// StallTimeout gives up on a URL that sends nothing (no progress, no
	// pack data) for this long, with an error wrapping ErrStalled, and
	// goes on to the next one; 0 means DefaultStallTimeout. A slow link
	// that keeps sending is never cut off.
	StallTimeout time.Duration
}

// validate fills defaults and rejects nonsense, naming the field.
func (c *RemoteConfig) validate() error {
	if len(c.URLs) == 0 {
		return errors.New("URLs: at least one repository URL is needed")
	}
	if c.StallTimeout < 0 {
		return fmt.Errorf("StallTimeout: %v is negative", c.StallTimeout)
	}
	if c.StallTimeout == 0 {
		c.StallTimeout = DefaultStallTimeout
	}
	if c.Ref == "" {
		c.Ref = "main" // the default branch of git ≥ 2.28 and of the git hosts
	}
	if _, _, err := parseRef(c.Ref); err != nil {
		return fmt.Errorf("Ref: %w", err)
	}
	if c.CacheDir == "" {
		return errors.New("CacheDir: a directory for the repository cache is needed")
	}
	abs, err := filepath.Abs(c.CacheDir)
	if err != nil {
		return fmt.Errorf("CacheDir: %w", err)
	}
	c.CacheDir = abs
	for _, f := range []struct{ field, name string }{
		{"SSHKeyFile", c.SSHKeyFile}, {"KnownHostsFile", c.KnownHostsFile}, {"VerifyKeysFile", c.VerifyKeysFile},
	} {
		if err := checkReadable(f.field, f.name); err != nil {
			return err
		}
	}
	return nil
}

// refKind says what RemoteConfig.Ref names.
type refKind int

const (
	kindName   refKind = iota // a short name: a branch, else a tag
	kindBranch                // refs/heads/NAME
	kindTag                   // refs/tags/NAME
	kindCommit                // a full commit hash
)

// parseRef classifies a Ref and returns its short name (or the hash).
func parseRef(ref string) (refKind, string, error) {
	if len(ref) == 2*len(plumbing.ZeroHash) && isHex(ref) {
		return kindCommit, strings.ToLower(ref), nil
	}
	kind, name := kindName, ref
	switch {
	case strings.HasPrefix(ref, "refs/heads/"):
		kind, name = kindBranch, strings.TrimPrefix(ref, "refs/heads/")
	case strings.HasPrefix(ref, "refs/tags/"):
		kind, name = kindTag, strings.TrimPrefix(ref, "refs/tags/")
	case strings.HasPrefix(ref, "refs/"):
		return 0, "", fmt.Errorf("%q: only refs/heads/… and refs/tags/… can be tracked", ref)
	}
	if name == "" || name == "HEAD" || plumbing.ReferenceName("refs/heads/"+name).Validate() != nil {
		return 0, "", fmt.Errorf("%q is not a valid branch or tag name", ref)
	}
	return kind, name, nil
}

// Remote is a remote repository tracked through a local bare cache: Fetch
// brings the tracked ref's history into the cache and returns its head
// commit and tree, read from the cache without a checkout.
//
// Fetch, Commit and Maintain may be called from several goroutines; they run
// one at a time. The fs.FS of a Fetched may be read from any goroutine, also
// during them; a read waits while a fetch or Maintain writes to the cache.
//
// The cache's layout: the tracked branch of URLs[N] is fetched into
// refs/remotes/rN/BRANCH, a tracked tag into refs/tags/rN/TAG (each URL
// has its own, so a stale mirror never overwrites what upstream gave), and
// the applied commit is kept by refs/kelpie/applied. `git -C CACHE log
// r0/main` works for a look inside.
type Remote struct {
	cfg       RemoteConfig
	kind      refKind
	name      string // the branch or tag name, or the commit hash
	endpoints []*endpoint
	keys      *keyring // nil: signatures are not checked

	mu      sync.Mutex // serialises Fetch, Commit and Maintain
	cache   *Repo
	applied string // the applied commit of the last Fetch, kept by Maintain
}

// NewRemote validates cfg and opens its cache, creating an empty bare
// repository when CacheDir is missing or empty. Nothing is fetched. Errors
// name the field at fault: "new remote: Ref: …".
func NewRemote(cfg RemoteConfig) (*Remote, error) {
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("new remote: %w", err)
	}
	r := &Remote{cfg: cfg}
	r.kind, r.name, _ = parseRef(cfg.Ref)
	for i, u := range cfg.URLs {
		e, err := parseEndpoint(fmt.Sprintf("r%d", i), u, &r.cfg)
		if err != nil {
			return nil, fmt.Errorf("new remote: URLs[%d]: %w", i, err)
		}
		r.endpoints = append(r.endpoints, e)
	}
	if cfg.VerifyKeysFile != "" {
		k, err := loadKeyring(cfg.VerifyKeysFile)
		if err != nil {
			return nil, fmt.Errorf("new remote: VerifyKeysFile: %w", err)
		}
		r.keys = k
	}
	cache, err := openCache(cfg.CacheDir)
	if err != nil {
		return nil, fmt.Errorf("new remote: CacheDir: %w", err)
	}
	r.cache = cache
	return r, nil
}

// openCache opens the bare repository dir, or creates it when dir is
// missing or empty. It never looks in parent directories: a cache that is
// not a repository is an error, not a reason to use an enclosing one.
func openCache(dir string) (*Repo, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	if !isGitDir(dir) {
		entries, err := os.ReadDir(dir)
		if err != nil {
			return nil, err
		}
		if len(entries) > 0 {
			return nil, fmt.Errorf("%s is not empty and not a git repository", dir)
		}
		if _, err := git.PlainInit(dir, true); err != nil {
			return nil, fmt.Errorf("create cache repository %s: %w", dir, err)
		}
	}
	return openGitDir("", dir)
}

// Close releases the cache's open pack files. The Remote and the file
// systems it returned must not be used afterwards.
func (r *Remote) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cache.Close()
}

// LocalPaths returns the file system paths of the URLs that are repositories
// on this host (plain paths and file:// URLs), in URL order, for WatchRefs.
func (r *Remote) LocalPaths() []string {
	var paths []string
	for _, e := range r.endpoints {
		if e.local != "" {
			paths = append(paths, e.local)
		}
	}
	return paths
}

// Commit returns a commit that is already in the cache, by its full hash,
// with its tree, without touching the network: after a restart the agent
// reads the last applied commit this way. With VerifyKeysFile the commit's
// signature is checked as Fetch checks a head's. A commit that is not in
// the cache gives an error wrapping ErrUnknownRevision.
func (r *Remote) Commit(hash string) (Fetched, error) {
	if len(hash) != 2*len(plumbing.ZeroHash) || !isHex(hash) {
		return Fetched{}, fmt.Errorf("read cached commit %q: not a full commit hash", hash)
	}
	hash = strings.ToLower(hash)
	r.mu.Lock()
	defer r.mu.Unlock()
	c, err := r.cache.Resolve(hash)
	if err != nil {
		return Fetched{}, fmt.Errorf("read cached commit %s from %s: %w", hash, r.cfg.CacheDir, err)
	}
	if err := r.verify(c.Hash); err != nil {
		return Fetched{}, fmt.Errorf("read cached commit %s: %w", hash, err)
	}
	fsys, err := r.cache.FS(c)
	if err != nil {
		return Fetched{}, fmt.Errorf("read cached commit %s: %w", hash, err)
	}
	return Fetched{Commit: c, FS: fsys, Source: cacheSource}, nil
}

// cacheSource is the Source of a Fetched read from the cache without
// contacting any URL.
const cacheSource = "cache"

// Descends reports whether commit descendant is commit ancestor or has it
// in its history, both given by full hash and read from the cache. A commit
// the cache does not hold is no ancestor. The agent's leader checks with it
// that a commit it is about to place does not roll the cluster back.
func (r *Remote) Descends(ancestor, descendant string) (bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cache.Descends(ancestor, descendant)
}
