package source

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/kelpie-dev/kelpie/internal/testenv"
)

// newSigningKey makes a throwaway OpenPGP key and writes its armored public
// part to a file.
func newSigningKey(t *testing.T, name string) (*openpgp.Entity, string) {
	t.Helper()
	e, err := openpgp.NewEntity(name, "test key", name+"@example.com",
		&packet.Config{Algorithm: packet.PubKeyAlgoEdDSA, Time: func() time.Time { return testenv.GitEpoch }})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	w, err := armor.Encode(&buf, openpgp.PublicKeyType, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Serialize(w); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), name+".asc")
	if err := os.WriteFile(file, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return e, file
}

// commitSigned commits a file in the work clone with go-git, signed by key
// (unsigned when key is nil), and pushes it with the git CLI.
func (u *upstream) commitSigned(t *testing.T, name, content string, key *openpgp.Entity) string {
	t.Helper()
	u.Write(name, content)
	repo, err := git.PlainOpen(u.Dir)
	if err != nil {
		t.Fatal(err)
	}
	wt, err := repo.Worktree()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := wt.Add(name); err != nil {
		t.Fatal(err)
	}
	when := testenv.GitEpoch.Add(time.Duration(u.Commits) * time.Minute)
	sig := &object.Signature{Name: "Ada Author", Email: "ada@example.com", When: when}
	h, err := wt.Commit("signed change of "+name, &git.CommitOptions{Author: sig, Committer: sig, SignKey: key})
	if err != nil {
		t.Fatal(err)
	}
	u.Commits++
	u.push()
	return h.String()
}

func TestFetchVerify(t *testing.T) {
	trusted, trustedFile := newSigningKey(t, "release")
	other, _ := newSigningKey(t, "mallory")
	second, secondFile := newSigningKey(t, "second")

	// Both trusted keys in one file, as an operator would concatenate them.
	both := filepath.Join(t.TempDir(), "keys.asc")
	a, _ := os.ReadFile(trustedFile)
	b, _ := os.ReadFile(secondFile)
	if err := os.WriteFile(both, append(a, b...), 0o644); err != nil {
		t.Fatal(err)
	}

	u := newUpstream(t)
	good := u.commitSigned(t, "a.yaml", "v1\n", trusted)
	r := newTestRemote(t, RemoteConfig{URLs: []string{u.bare}, VerifyKeysFile: both})
	mustFetch(t, r, "", good)
	if _, err := r.Commit(good); err != nil {
		t.Errorf("Commit(signed): %v", err)
	}

	bySecond := u.commitSigned(t, "a.yaml", "v2\n", second)
	mustFetch(t, r, good, bySecond)

	unsigned := u.commitSigned(t, "a.yaml", "v3\n", nil)
	fetchErr(t, r, bySecond, ErrUntrusted, unsigned, "is not signed", u.bare)
	if f, _ := r.Fetch(context.Background(), bySecond); f.Commit.Hash != unsigned || f.FS != nil {
		t.Errorf("Fetched with the refusal names %q (FS %v), want the unsigned head and no FS", f.Commit.Hash, f.FS)
	}
	if _, err := r.Commit(unsigned); !errors.Is(err, ErrUntrusted) {
		t.Errorf("Commit(unsigned) = %v, want ErrUntrusted", err)
	}

	foreign := u.commitSigned(t, "a.yaml", "v4\n", other)
	fetchErr(t, r, bySecond, ErrUntrusted, foreign, "signed by a key that is not in "+both)

	// The CLI's commits (unsigned) fail the same way.
	cli := u.commitPush("a.yaml", "v5\n")
	fetchErr(t, r, bySecond, ErrUntrusted, cli)

	// A signed commit on top of refused ones is accepted: only the head counts.
	fixed := u.commitSigned(t, "a.yaml", "v6\n", trusted)
	mustFetch(t, r, bySecond, fixed)

	// Tampering: the signed commit's message changed, its signature kept.
	raw := u.Git("cat-file", "commit", fixed)
	forged := strings.Replace(raw, "signed change of a.yaml", "signed change of b.yaml", 1)
	cmd := exec.Command("git", "hash-object", "-t", "commit", "-w", "--stdin")
	cmd.Dir, cmd.Stdin = u.Dir, strings.NewReader(forged+"\n")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("hash-object: %v", err)
	}
	tampered := strings.TrimSpace(string(out))
	u.Git("reset", "-q", "--hard", tampered)
	u.push()
	r2 := newTestRemote(t, RemoteConfig{URLs: []string{u.bare}, VerifyKeysFile: both, AllowRewrite: true})
	fetchErr(t, r2, fixed, ErrUntrusted, tampered, "bad signature")
}

func TestLoadKeyring(t *testing.T) {
	_, file := newSigningKey(t, "k")
	if _, err := loadKeyring(file); err != nil {
		t.Fatalf("loadKeyring: %v", err)
	}
	empty := filepath.Join(t.TempDir(), "empty.asc")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := loadKeyring(empty); err == nil || !strings.Contains(err.Error(), empty) {
		t.Errorf("loadKeyring(empty) = %v, want an error naming the file", err)
	}

	// A private key given by mistake is refused, not used.
	e, _ := newSigningKey(t, "secret")
	var buf bytes.Buffer
	w, err := armor.Encode(&buf, openpgp.PrivateKeyType, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.SerializePrivate(w, nil); err != nil {
		t.Fatal(err)
	}
	w.Close()
	private := filepath.Join(t.TempDir(), "private.asc")
	if err := os.WriteFile(private, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := loadKeyring(private); err == nil || !strings.Contains(err.Error(), "only public keys") {
		t.Errorf("loadKeyring(private key) = %v, want it refused", err)
	}
}

func TestArmoredBlocks(t *testing.T) {
	a := "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nAAAA\n-----END PGP PUBLIC KEY BLOCK-----"
	b := "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nBBBB\n-----END PGP PUBLIC KEY BLOCK-----\n"
	for _, tt := range []struct {
		name, text string
		want       int
	}{
		{"one", b, 1},
		{"newline between", a + "\n" + b, 2},
		{"no newline between", a + b, 2},
		{"comments around", "# keys of the release team\n" + a + "\n\nsome text\n" + b, 2},
		{"none", "hello\n", 0},
	} {
		if got := armoredBlocks(tt.text); len(got) != tt.want {
			t.Errorf("%s: %d blocks, want %d: %q", tt.name, len(got), tt.want, got)
		}
	}
}
