package source

import (
	"context"
	"errors"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kelpie-dev/kelpie/internal/testenv"
)

func TestFetchURLForms(t *testing.T) {
	u := newUpstream(t)
	c1 := u.commitPush("apps/web.yaml", "kind: Deployment\n")
	tests := []struct {
		name   string
		url    string
		source string // Fetched.Source
		local  string // LocalPaths()[0]
	}{
		{"bare path", u.bare, u.bare, u.bare},
		{"file URL", "file://" + u.bare, "file://" + u.bare, u.bare},
		{"work tree path", u.Dir, u.Dir, u.Dir}, // its main is c1 too
		{"relative path", relPath(t, u.bare), u.bare, u.bare},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newTestRemote(t, RemoteConfig{URLs: []string{tt.url}})
			f := mustFetch(t, r, "", c1)
			if f.Source != tt.source {
				t.Errorf("Source = %q, want %q", f.Source, tt.source)
			}
			if len(f.Skipped) != 0 {
				t.Errorf("Skipped = %v, want none", f.Skipped)
			}
			b, err := fs.ReadFile(f.FS, "apps/web.yaml")
			if err != nil || string(b) != "kind: Deployment\n" {
				t.Errorf("ReadFile = %q, %v", b, err)
			}
			if got := r.LocalPaths(); len(got) != 1 || got[0] != tt.local {
				t.Errorf("LocalPaths() = %q, want [%q]", got, tt.local)
			}
		})
	}
}

func TestFetchIncremental(t *testing.T) {
	u := newUpstream(t)
	c1 := u.commitPush("a.yaml", "v1\n")
	r := newTestRemote(t, RemoteConfig{URLs: []string{u.bare}})
	mustFetch(t, r, "", c1)
	before := packs(t, r.cfg.CacheDir)

	c2 := u.commitPush("a.yaml", "v2\n")
	f := mustFetch(t, r, c1, c2)
	if b, _ := fs.ReadFile(f.FS, "a.yaml"); string(b) != "v2\n" {
		t.Errorf("a.yaml = %q after the second fetch", b)
	}
	after := packs(t, r.cfg.CacheDir)
	if len(after) != len(before)+1 {
		t.Errorf("packs: %d before, %d after one new commit; want one more", len(before), len(after))
	}
	// The new pack holds only what is new: a commit, a tree, a blob.
	var fresh string
	for _, p := range after {
		if !strings.Contains(strings.Join(before, " "), p) {
			fresh = p
		}
	}
	if n := countPackObjects(t, fresh); n != 3 {
		t.Errorf("new pack has %d objects, want 3 (commit, tree, blob)", n)
	}
}

func TestFetchUnchangedWritesNothing(t *testing.T) {
	u := newUpstream(t)
	c1 := u.commitPush("a.yaml", "v1\n")
	r := newTestRemote(t, RemoteConfig{URLs: []string{u.bare}})
	mustFetch(t, r, "", c1)
	before := treeFiles(t, r.cfg.CacheDir)
	for range 3 {
		mustFetch(t, r, c1, c1)
	}
	if after := treeFiles(t, r.cfg.CacheDir); !maps.Equal(before, after) {
		t.Errorf("fetching an unchanged remote changed the cache:\nbefore %v\nafter  %v", before, after)
	}
}

func TestFetchFallback(t *testing.T) {
	u := newUpstream(t)
	c1 := u.commitPush("a.yaml", "v1\n")
	missing := filepath.Join(t.TempDir(), "gone.git")
	r := newTestRemote(t, RemoteConfig{URLs: []string{missing, u.bare}})
	f := mustFetch(t, r, "", c1)
	if f.Source != u.bare {
		t.Errorf("Source = %q, want the second URL %q", f.Source, u.bare)
	}
	if len(f.Skipped) != 1 || !strings.Contains(f.Skipped[0].Error(), missing) {
		t.Errorf("Skipped = %v, want one error naming %s", f.Skipped, missing)
	}

	// Every URL failing: one error naming each.
	r = newTestRemote(t, RemoteConfig{URLs: []string{missing, missing + "2"}})
	fetchErr(t, r, "", nil, "2 URLs tried", missing+":", missing+"2:")
}

func TestFetchStaleMirror(t *testing.T) {
	u := newUpstream(t)
	c1 := u.commitPush("a.yaml", "v1\n")
	mirror := testenv.BareClone(t, u.bare) // at c1
	c2 := u.commitPush("a.yaml", "v2\n")

	r := newTestRemote(t, RemoteConfig{URLs: []string{mirror, u.bare}})
	mustFetch(t, r, "", c1) // nothing applied yet: the mirror is fine

	// c2 is applied (it came from upstream): the mirror's c1 is behind it.
	f := mustFetch(t, r, c2, c2)
	if f.Source != u.bare {
		t.Errorf("Source = %q, want upstream %q", f.Source, u.bare)
	}
	if len(f.Skipped) != 1 || !errors.Is(f.Skipped[0], ErrNotFastForward) || !strings.Contains(f.Skipped[0].Error(), mirror) {
		t.Errorf("Skipped = %v, want the mirror refused as not a fast-forward", f.Skipped)
	}

	// Upstream down too: refused, and the error says why for each URL.
	if err := os.RemoveAll(u.bare); err != nil {
		t.Fatal(err)
	}
	err := fetchErr(t, r, c2, ErrNotFastForward, mirror, u.bare, "does not descend from "+c2[:12])
	t.Logf("error: %v", err)
	// The refused head is named, for status, but has no tree to apply.
	f, _ = r.Fetch(context.Background(), c2)
	if f.Commit.Hash != c1 || f.Source != mirror || f.FS != nil {
		t.Errorf("Fetched with the refusal = %s from %q (FS %v), want %s from the mirror, no FS", f.Commit.Hash, f.Source, f.FS, c1)
	}
}

func TestFetchRewrite(t *testing.T) {
	u := newUpstream(t)
	c1 := u.commitPush("a.yaml", "v1\n")
	c2 := u.commitPush("a.yaml", "v2\n")
	r := newTestRemote(t, RemoteConfig{URLs: []string{u.bare}})
	mustFetch(t, r, c1, c2)

	// Rewrite: drop c2, commit something else on c1, force-push.
	u.Git("reset", "-q", "--hard", c1)
	c3 := u.commitPush("a.yaml", "v3 rewritten\n")
	fetchErr(t, r, c2, ErrNotFastForward, u.bare, c3[:12], c2[:12])

	// A history rewound to an ancestor is refused as well.
	u.Git("reset", "-q", "--hard", c1)
	u.push()
	fetchErr(t, r, c2, ErrNotFastForward)

	// With AllowRewrite the rewritten head is taken.
	u.Git("reset", "-q", "--hard", c3)
	u.push()
	rw := newTestRemote(t, RemoteConfig{URLs: []string{u.bare}, AllowRewrite: true, CacheDir: r.cfg.CacheDir})
	mustFetch(t, rw, c2, c3)
}

func TestFetchRefKinds(t *testing.T) {
	f := newFixture(t)
	bare := testenv.BareClone(t, f.Dir)
	tests := []struct {
		ref  string
		want string
	}{
		{"main", f.c6},
		{"refs/heads/main", f.c6},
		{"feature", f.f1},
		{"light", f.c3},                 // lightweight tag
		{"v1.0", f.c4},                  // annotated tag, peeled
		{"refs/tags/v1.0-nested", f.c4}, // a tag of a tag
		{"v0.9", f.c2},
		{f.c3, f.c3},                  // a commit on main
		{strings.ToUpper(f.f1), f.f1}, // a commit only on feature
	}
	for _, tt := range tests {
		t.Run(tt.ref, func(t *testing.T) {
			r := newTestRemote(t, RemoteConfig{URLs: []string{bare}, Ref: tt.ref})
			mustFetch(t, r, "", tt.want)
			mustFetch(t, r, tt.want, tt.want) // again, from what the first one learned
		})
	}

	t.Run("commit in cache needs no URL", func(t *testing.T) {
		cache := filepath.Join(t.TempDir(), "cache")
		mustFetch(t, newTestRemote(t, RemoteConfig{URLs: []string{bare}, Ref: f.c4, CacheDir: cache}), "", f.c4)
		r := newTestRemote(t, RemoteConfig{URLs: []string{filepath.Join(t.TempDir(), "gone")}, Ref: f.c4, CacheDir: cache})
		if got := mustFetch(t, r, f.c4, f.c4); got.Source != "cache" {
			t.Errorf("Source = %q, want cache", got.Source)
		}
	})

	for _, tt := range []struct{ ref, want string }{
		{"nope", `no branch or tag of that name`},
		{f.c3[:10], "abbreviated commit hash"},
		{"refs/tags/nope", `unknown revision: couldn't find remote ref "refs/tags/nope"`},
		{strings.Repeat("ab", 20), "on no branch or tag"},
	} {
		t.Run("missing "+tt.ref, func(t *testing.T) {
			r := newTestRemote(t, RemoteConfig{URLs: []string{bare}, Ref: tt.ref})
			fetchErr(t, r, "", nil, bare, tt.want)
		})
	}
}

func TestCommitOffline(t *testing.T) {
	u := newUpstream(t)
	c1 := u.commitPush("a.yaml", "v1\n")
	cache := filepath.Join(t.TempDir(), "cache")
	r := newTestRemote(t, RemoteConfig{URLs: []string{u.bare}, CacheDir: cache})
	mustFetch(t, r, "", c1)
	r.Close()

	// The remote disappears; the agent restarts.
	if err := os.RemoveAll(u.bare); err != nil {
		t.Fatal(err)
	}
	r = newTestRemote(t, RemoteConfig{URLs: []string{u.bare}, CacheDir: cache})
	f, err := r.Commit(c1)
	if err != nil {
		t.Fatalf("Commit(%s) offline: %v", c1, err)
	}
	if b, _ := fs.ReadFile(f.FS, "a.yaml"); string(b) != "v1\n" || f.Commit.Hash != c1 || f.Source != "cache" {
		t.Errorf("Commit = %+v with a.yaml %q", f, b)
	}
	fetchErr(t, r, c1, nil, u.bare)

	if _, err := r.Commit(strings.Repeat("0", 40)); !errors.Is(err, ErrUnknownRevision) {
		t.Errorf("Commit(unknown) = %v, want ErrUnknownRevision", err)
	}
	if _, err := r.Commit(c1[:12]); err == nil {
		t.Errorf("Commit(abbreviated) succeeded, want an error")
	}
}

func TestNewRemoteErrors(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	known := filepath.Join(dir, "known_hosts")
	if err := os.WriteFile(known, []byte("example.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SSH_KNOWN_HOSTS", filepath.Join(dir, "none"))
	t.Setenv("SSH_AUTH_SOCK", "")
	notRepo := filepath.Join(dir, "notrepo")
	if err := os.MkdirAll(filepath.Join(notRepo, "x"), 0o755); err != nil {
		t.Fatal(err)
	}
	ok := func(c RemoteConfig) RemoteConfig {
		if c.URLs == nil {
			c.URLs = []string{"/srv/site.git"}
		}
		if c.CacheDir == "" {
			c.CacheDir = filepath.Join(t.TempDir(), "cache")
		}
		return c
	}
	tests := []struct {
		name string
		cfg  RemoteConfig
		want string
	}{
		{"no URL", RemoteConfig{URLs: []string{}, CacheDir: dir}, "URLs: at least one"},
		{"no cache", RemoteConfig{URLs: []string{"/x"}}, "CacheDir:"},
		{"bad ref", ok(RemoteConfig{Ref: "a..b"}), `Ref: "a..b" is not a valid`},
		{"other refs", ok(RemoteConfig{Ref: "refs/notes/x"}), "only refs/heads/"},
		{"scheme", ok(RemoteConfig{URLs: []string{"ftp://host/x.git"}}), `URLs[0]: ftp://host/x.git: unsupported protocol "ftp"`},
		{"file URL host", ok(RemoteConfig{URLs: []string{"/a", "file://otherhost/x.git"}}), "URLs[1]:"},
		{"ssh key missing", ok(RemoteConfig{SSHKeyFile: filepath.Join(dir, "nokey")}), "SSHKeyFile:"},
		{"ssh key bad", ok(RemoteConfig{URLs: []string{"git@example.com:site.git"}, SSHKeyFile: file, KnownHostsFile: known}), "URLs[0]: git@example.com:site.git: ssh key file " + file},
		{"ssh no known hosts", ok(RemoteConfig{URLs: []string{"ssh://example.com/site.git"}, SSHKeyFile: file}), "known hosts: unable to find any valid known_hosts file"},
		{"ssh no key no agent", ok(RemoteConfig{URLs: []string{"ssh://example.com/site.git"}, KnownHostsFile: known}), "no ssh key file given, and no ssh agent"},
		{"known hosts missing", ok(RemoteConfig{KnownHostsFile: filepath.Join(dir, "nohosts")}), "KnownHostsFile:"},
		{"verify keys bad", ok(RemoteConfig{VerifyKeysFile: file}), "VerifyKeysFile: " + file + ": not an armored OpenPGP"},
		{"cache not a repo", ok(RemoteConfig{CacheDir: notRepo}), "is not empty and not a git repository"},
		{"credentials hidden", ok(RemoteConfig{URLs: []string{"gopher://u:hunter2@host/x"}}), "gopher://host/x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := NewRemote(tt.cfg)
			if err == nil {
				r.Close()
				t.Fatalf("NewRemote succeeded, want error containing %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "hunter2") {
				t.Errorf("NewRemote error = %q, want it to contain %q (and no password)", err, tt.want)
			}
		})
	}
}

func TestRedactURL(t *testing.T) {
	tests := []struct{ in, want string }{
		{"https://github.com/o/r.git", "https://github.com/o/r.git"},
		{"https://user:tok@github.com/o/r.git", "https://github.com/o/r.git"},
		{"https://x-access-token:ghp_abc@github.com/o/r", "https://github.com/o/r"},
		{"ssh://git@host:2222/srv/r.git", "ssh://host:2222/srv/r.git"},
		{"git@github.com:o/r.git", "git@github.com:o/r.git"},
		{"/srv/site.git", "/srv/site.git"},
		{"https://u:p%zz@host/x", "https://host/x"}, // unparsable escape
	}
	for _, tt := range tests {
		if got := redactURL(tt.in); got != tt.want {
			t.Errorf("redactURL(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestFetchHidesCredentials fetches from an https URL with a token that
// cannot answer: the error names the URL without the token.
func TestFetchHidesCredentials(t *testing.T) {
	r := newTestRemote(t, RemoteConfig{URLs: []string{"https://bot:s3cr3t-t0ken@127.0.0.1:1/site.git"}})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, err := r.Fetch(ctx, "")
	if err == nil || strings.Contains(err.Error(), "s3cr3t") || !strings.Contains(err.Error(), "https://127.0.0.1:1/site.git") {
		t.Errorf("Fetch error = %v, want one naming the URL without its token", err)
	}
}

func TestFetchCanceled(t *testing.T) {
	u := newUpstream(t)
	u.commitPush("a.yaml", "v1\n")
	r := newTestRemote(t, RemoteConfig{URLs: []string{u.bare, u.bare}})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := r.Fetch(ctx, ""); !errors.Is(err, context.Canceled) {
		t.Errorf("Fetch(canceled) = %v, want context.Canceled", err)
	}
}

// countPackObjects counts the objects of a pack with git verify-pack.
func countPackObjects(t *testing.T, pack string) int {
	t.Helper()
	out := testenv.Git(t, filepath.Dir(pack), "verify-pack", "-v", strings.TrimSuffix(pack, ".pack")+".idx")
	n := 0
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) >= 3 && len(f[0]) == 40 {
			n++
		}
	}
	return n
}

func TestDescends(t *testing.T) {
	u := newUpstream(t)
	c1 := u.commitPush("a.yaml", "v1\n")
	c2 := u.commitPush("a.yaml", "v2\n")
	r := newTestRemote(t, RemoteConfig{URLs: []string{u.bare}})
	mustFetch(t, r, "", c2)
	for _, tc := range []struct {
		anc, desc string
		want      bool
	}{
		{c1, c2, true}, {c2, c2, true}, {c2, c1, false}, {strings.Repeat("a", 40), c2, false},
	} {
		got, err := r.Descends(tc.anc, tc.desc)
		if err != nil || got != tc.want {
			t.Errorf("Descends(%.7s, %.7s) = %v, %v; want %v", tc.anc, tc.desc, got, err, tc.want)
		}
	}
	if _, err := r.Descends(c1[:12], c2); err == nil {
		t.Error("Descends of an abbreviated hash succeeded")
	}
}
