package cli

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kelpie-dev/kelpie/agent"
	"github.com/kelpie-dev/kelpie/internal/testenv"
)

// gnupg is a throwaway GnuPG home for one test: gpg and `git commit -S` use
// it through GNUPGHOME, which it sets for the test. The gpg-agent gpg starts
// for it is killed when the test ends.
type gnupg struct {
	t    *testing.T
	gpg  string
	home string
}

// newGnuPG makes the home, or ends the test through testenv.Missing when
// gpg is not installed (Debian package gnupg; scripts/deps.sh installs it).
func newGnuPG(t *testing.T) *gnupg {
	t.Helper()
	gpg := testenv.Binary(t, "gpg", "gnupg")
	gpgconf := testenv.Binary(t, "gpgconf", "gnupg")
	// Short: gpg-agent's sockets live in it, and a socket path has at most
	// 107 bytes.
	home, err := os.MkdirTemp("", "kgpg")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(home, 0o700); err != nil {
		t.Fatal(err)
	}
	t.Setenv("GNUPGHOME", home)
	t.Cleanup(func() {
		cmd := exec.Command(gpgconf, "--kill", "gpg-agent")
		cmd.Env = append(os.Environ(), "GNUPGHOME="+home)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Logf("gpgconf --kill gpg-agent: %v\n%s", err, out)
		}
		os.RemoveAll(home)
	})
	return &gnupg{t: t, gpg: gpg, home: home}
}

// run runs gpg in batch mode on the home with stdin and returns its stdout.
func (g *gnupg) run(stdin string, args ...string) string {
	g.t.Helper()
	cmd := exec.Command(g.gpg, append([]string{"--batch", "--homedir", g.home}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		g.t.Fatalf("gpg %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return string(out)
}

// newKey generates an unprotected Ed25519 signing key for email and
// returns its fingerprint.
func (g *gnupg) newKey(name, email string) string {
	g.t.Helper()
	g.run(fmt.Sprintf(`%%no-protection
Key-Type: eddsa
Key-Curve: ed25519
Key-Usage: sign
Name-Real: %s
Name-Email: %s
Expire-Date: 0
%%commit
`, name, email), "--gen-key")
	for _, line := range strings.Split(g.run("", "--with-colons", "--list-secret-keys", "<"+email+">"), "\n") {
		if f := strings.Split(line, ":"); len(f) > 9 && f[0] == "fpr" {
			return f[9]
		}
	}
	g.t.Fatalf("no fingerprint listed for the new key %s", email)
	return ""
}

// exportPublic writes the armored public key fpr to a file and returns its
// path.
func (g *gnupg) exportPublic(fpr string) string {
	g.t.Helper()
	armored := g.run("", "--armor", "--export", fpr)
	if !strings.Contains(armored, "BEGIN PGP PUBLIC KEY BLOCK") {
		g.t.Fatalf("gpg --export %s: %q", fpr, armored)
	}
	file := filepath.Join(g.t.TempDir(), "trusted.asc")
	if err := os.WriteFile(file, []byte(armored), 0o644); err != nil {
		g.t.Fatal(err)
	}
	return file
}

// pushSigned commits the files (replacing apps/) with `git commit -S` by
// the key fpr ("" for an unsigned commit) and pushes to the bare
// repository.
func (e *agentE2E) pushSigned(msg, fpr string, files map[string]string) string {
	e.t.Helper()
	if err := os.RemoveAll(filepath.Join(e.repo.Dir, "apps")); err != nil {
		e.t.Fatal(err)
	}
	for name, text := range files {
		e.repo.Write("apps/"+name, text)
	}
	e.repo.Git("add", "-A")
	if fpr == "" {
		e.repo.Git("commit", "-q", "-m", msg)
	} else {
		e.repo.Git("commit", "-q", "-S"+fpr, "-m", msg)
		// git itself checks what it signed, against the same keyring.
		if out := e.repo.Git("log", "-1", "--format=%G? %GF"); out != "G "+fpr {
			e.t.Fatalf("commit %q: git log says %q, want a good signature by %s", msg, out, fpr)
		}
	}
	sha := e.repo.Git("rev-parse", "HEAD")
	e.repo.Git("push", "-q", e.bare, "main")
	return sha
}

// TestAgentSignedCommits runs `kelpie agent --verify-keys FILE` as its own
// process, FILE holding the armored public key of a throwaway key made by
// gpg; commits are signed by `git commit -S` and pushed with the git CLI to
// a bare repository the agent follows (ref watch). A commit signed by the
// key applies. An unsigned commit on top is refused: the host keeps running
// the signed one, pods unchanged, and status names the head and says it is
// not signed (kind untrusted, in JSON and in `kelpie status`). So is a
// commit signed by a key that is not in FILE. A signed fix on top of both
// applies.
func TestAgentSignedCommits(t *testing.T) {
	addr := testenv.ContainerdAddress(t)
	testenv.Binary(t, "git", "git")
	g := newGnuPG(t)
	trusted := g.newKey("Kelpie Release", "release@kelpie.dev")
	foreign := g.newKey("Someone Else", "someone@example.com")
	keys := g.exportPublic(trusted)

	e, hc := newAgentHost(t, addr, "site")
	ns := fmt.Sprintf("sign%d", hc.Octet)
	prefix := hc.SubnetPrefix()

	v1 := e.pushSigned("v1, signed", trusted, map[string]string{"app.yaml": envPod(ns, "app", "v1")})
	e.start("--verify-keys", keys)
	e.waitFor("signed v1 running", 2*time.Minute, func(s agent.Status) bool {
		return s.Applied != nil && s.Applied.Hash == v1 && runningIn(s, prefix, "app")
	})
	if got := hc.ContainerEnv(ns, "app", "main", "VERSION"); got != "v1" {
		t.Fatalf("v1: container has VERSION=%q", got)
	}
	before := e.pods()

	refused := func(what, head, reason string) {
		t.Helper()
		s := e.waitFor(what+" refused", time.Minute, func(s agent.Status) bool {
			return s.Pending != nil && s.Pending.Hash == head && s.LastError != nil
		})
		if s.Applied.Hash != v1 || s.Pending.Reason != agent.KindUntrusted || s.LastError.Kind != agent.KindUntrusted ||
			s.LastError.Commit != head || !strings.Contains(s.LastError.Message, reason) || s.LastSync.Result != "refused" {
			t.Fatalf("%s: applied %s, pending %+v, last error %+v, last sync %+v; want untrusted: %q",
				what, s.Applied.Short(), s.Pending, s.LastError, s.LastSync, reason)
		}
		if after := e.pods(); !samePods(before, after) || !allRunning(after) {
			t.Fatalf("%s changed the host:\nbefore %+v\nafter  %+v", what, before, after)
		}
		if got := hc.ContainerEnv(ns, "app", "main", "VERSION"); got != "v1" {
			t.Fatalf("%s: container has VERSION=%q, want v1", what, got)
		}
		text := runMain(t, "status", "--agent", e.listen, "--no-color")
		if text.code != 0 || !strings.Contains(text.stdout, "Pending:   "+head[:12]) || !strings.Contains(text.stdout, reason) ||
			!strings.Contains(text.stdout, "(untrusted)") {
			t.Fatalf("kelpie status with %s:\n%s%s", what, text.stdout, text.stderr)
		}
		t.Logf("kelpie status with %s:\n%s", what, text.stdout)
	}

	unsigned := e.pushSigned("v2, unsigned", "", map[string]string{"app.yaml": envPod(ns, "app", "unsigned")})
	refused("an unsigned head", unsigned, "is not signed")

	forged := e.pushSigned("v2, signed by a foreign key", foreign, map[string]string{"app.yaml": envPod(ns, "app", "foreign")})
	refused("a head signed by a foreign key", forged, "signed by a key that is not in "+keys)

	fix := e.pushSigned("v2, signed", trusted, map[string]string{"app.yaml": envPod(ns, "app", "v2")})
	s := e.waitFor("signed fix applied", time.Minute, func(s agent.Status) bool {
		return s.Applied != nil && s.Applied.Hash == fix && s.Pending == nil && s.LastError == nil && runningIn(s, prefix, "app")
	})
	if s.LastSync.Result != "ok" || !strings.HasPrefix(s.LastSync.Reason, "fsnotify") {
		t.Fatalf("fix: last sync %+v", s.LastSync)
	}
	if got := hc.ContainerEnv(ns, "app", "main", "VERSION"); got != "v2" {
		t.Fatalf("fix: container has VERSION=%q, want v2", got)
	}
	e.stop()
	if testing.Verbose() {
		t.Logf("agent log:\n%s", e.log)
	}
}
