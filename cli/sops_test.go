package cli

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"filippo.io/age"

	"github.com/kelpie-dev/kelpie/internal/testenv"
)

// The SOPS fixtures of specs: a Secret (data and stringData encrypted) and
// a Deployment (env values encrypted), for the test key next to them.
const (
	sopsSite    = "../specs/testdata/sops/site"
	sopsKeyFile = "../specs/testdata/sops/keys.txt"
)

// sopsSecrets are the plaintext values of the fixtures and of sopsEncrypt's
// callers: no output may hold one.
var sopsSecrets = []string{"hunter2", "YWRtaW4=", "s3cr3t-api-key", "n3w-s3cr3t", "bjN3LXMzY3IzdA=="}

// sopsKey copies the fixtures' test key to a file only its owner reads.
func sopsKey(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(sopsKeyFile)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "keys.txt")
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// sopsRecipient is the fixtures' age recipient, from the key file's
// "# public key:" comment.
func sopsRecipient(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(sopsKeyFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(data), "\n") {
		if r, ok := strings.CutPrefix(l, "# public key: "); ok {
			return r
		}
	}
	t.Fatal("no public key in " + sopsKeyFile)
	return ""
}

// sopsEncrypt encrypts plain with the real sops for recipient.
func sopsEncrypt(t *testing.T, plain, recipient string, args ...string) string {
	t.Helper()
	bin := testenv.SOPS(t)
	dir := t.TempDir()
	in := filepath.Join(dir, "in.yaml")
	if err := os.WriteFile(in, []byte(plain), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, append(append([]string{"encrypt", "--age", recipient}, args...), in)...)
	cmd.Dir = dir
	cmd.Env = testenv.SOPSEnv()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("sops: %v\n%s", err, stderr.Bytes())
	}
	return string(out)
}

// noSecrets fails the test when an output holds a plaintext value.
func noSecrets(t *testing.T, what string, outs ...string) {
	t.Helper()
	for _, o := range outs {
		for _, s := range sopsSecrets {
			if strings.Contains(o, s) {
				t.Errorf("%s prints the secret value %q:\n%s", what, s, o)
			}
		}
	}
}

func TestValidateSOPS(t *testing.T) {
	clearEnv(t)
	key := sopsKey(t)

	res := runMain(t, "--no-color", "validate", "--age-key-file", key, sopsSite)
	if res.code != 0 || !strings.Contains(res.stdout, "2 objects hold SOPS-encrypted values, decrypted and checked") {
		t.Errorf("with the key: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
	noSecrets(t, "validate", res.stdout, res.stderr)

	t.Setenv("KELPIE_AGE_KEY_FILE", key)
	res = runMain(t, "validate", "-o", "json", sopsSite)
	if res.code != 0 || !strings.Contains(res.stdout, `"decrypted": 2`) {
		t.Errorf("KELPIE_AGE_KEY_FILE: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
	os.Unsetenv("KELPIE_AGE_KEY_FILE")

	res = runMain(t, "--no-color", "validate", sopsSite)
	if res.code != 0 || !strings.Contains(res.stdout, "2 objects hold SOPS-encrypted values, not decrypted (no --age-key-file): checked for form only") {
		t.Errorf("without a key: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}

	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(t.TempDir(), "other.txt")
	if err := os.WriteFile(other, []byte(id.String()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	res = runMain(t, "validate", "--age-key-file", other, sopsSite)
	if res.code != 1 || !strings.Contains(res.stderr, "secret.yaml:12:5: sops: no key in the age key file can decrypt this file") {
		t.Errorf("wrong key: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}

	if err := os.Chmod(key, 0o644); err != nil {
		t.Fatal(err)
	}
	res = runMain(t, "validate", "--age-key-file", key, sopsSite)
	if res.code != 1 || !strings.Contains(res.stderr, "mode 0644 lets group or others read or write the key; chmod 600 it") {
		t.Errorf("a key file others may read: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
}

// TestPlanSOPSNeedsKey: what runs is never planned from placeholders.
func TestPlanSOPSNeedsKey(t *testing.T) {
	clearEnv(t)
	res := runMain(t, "plan", "-f", sopsSite, "--containerd-address", filepath.Join(t.TempDir(), "none.sock"))
	if res.code != 1 || !strings.Contains(res.stderr, "no age key was given to decrypt it (--age-key-file)") {
		t.Errorf("plan without a key: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
}

func TestDiffSOPS(t *testing.T) {
	clearEnv(t)
	recipient := sopsRecipient(t)
	r := testenv.NewGitRepo(t)
	r.CopyTree(sopsSite, "site")
	r.Commit("v1: encrypted secrets")
	secret := "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\nstringData:\n  password: n3w-s3cr3t\ndata:\n  user: YWRtaW4=\n"
	r.Write("site/secret.yaml", sopsEncrypt(t, secret, recipient, "--encrypted-regex", "^(data|stringData)$"))
	r.Commit("v2: a new password")

	for _, args := range [][]string{
		{"--no-color", "diff", "--repo", r.Dir, "--path", "site", "HEAD~1", "HEAD"},
		{"--no-color", "diff", "--repo", r.Dir, "--path", "site", "--age-key-file", sopsKey(t), "HEAD~1", "HEAD"},
		{"diff", "-o", "json", "--repo", r.Dir, "--path", "site", "HEAD~1", "HEAD"},
	} {
		res := runMain(t, args...)
		if res.code != 2 || !strings.Contains(res.stdout, "Secret/default/db") && !strings.Contains(res.stdout, `"name": "db"`) {
			t.Errorf("%v: exit %d\n%s%s", args, res.code, res.stdout, res.stderr)
		}
		if args[0] == "--no-color" && !strings.Contains(res.stdout, "data.password: (sensitive value changed)") {
			t.Errorf("%v: the password's change is not shown:\n%s", args, res.stdout)
		}
		if strings.Contains(res.stdout, "Deployment") {
			t.Errorf("%v: the Deployment did not change:\n%s", args, res.stdout)
		}
		noSecrets(t, "diff", res.stdout, res.stderr)
	}
}
