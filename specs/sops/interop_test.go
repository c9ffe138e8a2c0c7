package sops_test

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"filippo.io/age"
	"gopkg.in/yaml.v3"

	"github.com/kelpie-dev/kelpie/internal/testenv"
	"github.com/kelpie-dev/kelpie/specs/sops"
)

// secretYAML is a Secret with values of every shape a Secret holds.
const secretYAML = `# the database password
apiVersion: v1
kind: Secret
metadata:
  name: db
  namespace: shop
type: Opaque
stringData:
  password: hunter2 # inline comment
  cert: |
    -----BEGIN CERTIFICATE-----
    MIIBszCCAVmgAwIBAgIU
    -----END CERTIFICATE-----
  unicode: "grüße, 世界"
  empty: ""
data:
  token: aGVsbG8gd29ybGQ=
`

// deploymentYAML is a Deployment with secret environment values and
// values of the other YAML types, in a second document.
const deploymentYAML = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 2
  paused: false
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: nginx:1.7.9
        env:
        - name: API_KEY
          value: "s3cr3t"
        - name: RATIO
          value: "1.5"
        - name: NOTHING
      terminationGracePeriodSeconds: 30
---
kind: Values
ints: [1, -7, 0]
float: 1.25
yes: true
no: false
null_value: null
nested: {a: {b: [x, {c: deep}]}}
`

// fixture is a generated age key pair.
type fixture struct {
	id        *age.X25519Identity
	recipient string
	keyFile   string
}

// newKey generates an age key, as age-keygen does, and writes its identity
// file.
func newKey(t *testing.T) fixture {
	t.Helper()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), "keys.txt")
	content := "# created: by the test\n# public key: " + id.Recipient().String() + "\n" + id.String() + "\n"
	if err := os.WriteFile(f, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return fixture{id: id, recipient: id.Recipient().String(), keyFile: f}
}

// encrypt encrypts plain with the real sops for the recipients.
func encrypt(t *testing.T, plain string, recipients []string, args ...string) []byte {
	t.Helper()
	bin := testenv.SOPS(t)
	dir := t.TempDir()
	in := filepath.Join(dir, "in.yaml")
	if err := os.WriteFile(in, []byte(plain), 0o600); err != nil {
		t.Fatal(err)
	}
	var global []string
	if len(args) > 0 && args[len(args)-1] == "--mac-only-encrypted" { // a global flag
		global, args = args[len(args)-1:], args[:len(args)-1]
	}
	argv := append(append(global, "encrypt", "--age", strings.Join(recipients, ","), "--input-type", "yaml", "--output-type", "yaml"), args...)
	cmd := exec.Command(bin, append(argv, in)...)
	cmd.Dir = dir
	cmd.Env = testenv.SOPSEnv()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("sops %v: %v\n%s", argv, err, stderr.Bytes())
	}
	return out
}

// parse splits a file into its non-empty documents, as specs does.
func parse(t *testing.T, data []byte) []*yaml.Node {
	t.Helper()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var docs []*yaml.Node
	for {
		var doc yaml.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			return docs
		}
		if err != nil {
			t.Fatalf("parse: %v", err)
		}
		if len(doc.Content) == 1 {
			docs = append(docs, doc.Content[0])
		}
	}
}

// values decodes documents into plain Go values.
func values(t *testing.T, docs []*yaml.Node) []any {
	t.Helper()
	var out []any
	for _, d := range docs {
		var v any
		if err := d.Decode(&v); err != nil {
			t.Fatal(err)
		}
		out = append(out, v)
	}
	return out
}

func TestDecryptWhatSOPSEncrypted(t *testing.T) {
	k := newKey(t)
	other := newKey(t)
	ids := identities(t, k.keyFile)
	for _, tc := range []struct {
		name       string
		plain      string
		recipients []string
		args       []string
	}{
		{"secret, every value", secretYAML, []string{k.recipient}, nil},
		{"secret, data and stringData (Flux's advice)", secretYAML, []string{k.recipient}, []string{"--encrypted-regex", "^(data|stringData)$"}},
		{"secret and deployment, every value", secretYAML + "---\n" + deploymentYAML, []string{k.recipient}, nil},
		{"deployment, env values", deploymentYAML, []string{k.recipient}, []string{"--encrypted-regex", "^(value|data|stringData)$"}},
		{"unencrypted regex", deploymentYAML, []string{k.recipient}, []string{"--unencrypted-regex", "^(apiVersion|kind|metadata)$"}},
		{"unencrypted suffix", "a_plain: 1\nb: 2\nc: {d_plain: x, e: y}\n", []string{k.recipient}, []string{"--unencrypted-suffix", "_plain"}},
		{"encrypted suffix", "a_secret: 1\nb: 2\n", []string{k.recipient}, []string{"--encrypted-suffix", "_secret"}},
		{"mac over encrypted values only", secretYAML, []string{k.recipient}, []string{"--encrypted-regex", "^(data|stringData)$", "--mac-only-encrypted"}},
		{"two recipients, ours second", secretYAML, []string{other.recipient, k.recipient}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			enc := encrypt(t, tc.plain, tc.recipients, tc.args...)
			docs := parse(t, enc)
			if !sops.Encrypted(docs) {
				t.Fatal("Encrypted: false for a file sops encrypted")
			}
			leaves, err := sops.Decrypt(docs, ids)
			if err != nil {
				t.Fatalf("Decrypt: %v", err)
			}
			if len(leaves) == 0 {
				t.Error("no encrypted values reported")
			}
			if got, want := values(t, docs), values(t, parse(t, []byte(tc.plain))); !reflect.DeepEqual(got, want) {
				t.Errorf("decrypted:\n%#v\nwant what was encrypted:\n%#v", got, want)
			}
			if sops.Encrypted(docs) {
				t.Error("the sops block is still there")
			}
		})
	}
}

// identities reads an age identity file.
func identities(t *testing.T, file string) []age.Identity {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	ids, err := sops.ParseIdentities(data)
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

func TestDecryptKeepsLines(t *testing.T) {
	k := newKey(t)
	enc := encrypt(t, secretYAML, []string{k.recipient}, "--encrypted-regex", "^(data|stringData)$")
	docs := parse(t, enc)
	leaves, err := sops.Decrypt(docs, identities(t, k.keyFile))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(enc), "\n")
	for _, l := range leaves {
		key := l.Field[strings.LastIndex(l.Field, ".")+1:]
		if got := strings.TrimSpace(lines[l.Node.Line-1]); !strings.HasPrefix(got, key+": ENC[") {
			t.Errorf("%s decrypted at line %d, which holds %q in the encrypted file", l.Field, l.Node.Line, got)
		}
	}
	fields := map[string]bool{}
	for _, l := range leaves {
		fields[l.Field] = true
	}
	for _, f := range []string{"stringData.password", "stringData.cert", "stringData.unicode", "data.token"} {
		if !fields[f] {
			t.Errorf("leaf %s not reported; got %v", f, fields)
		}
	}
}

func TestDecryptRefuses(t *testing.T) {
	k := newKey(t)
	wrong := newKey(t)
	regex := []string{"--encrypted-regex", "^(data|stringData|value)$"}
	plain := secretYAML + "---\n" + deploymentYAML
	for _, tc := range []struct {
		name   string
		args   []string
		edit   func(string) string
		ids    []age.Identity
		want   string
		wantAt string // the field the error names
	}{
		{name: "wrong key", ids: []age.Identity{wrong.id}, want: "no key in the age key file can decrypt this file: it is encrypted for " + k.recipient, wantAt: "sops"},
		{name: "no key", ids: nil, want: "no age key was given", wantAt: "sops"},
		{name: "ciphertext changed", edit: func(s string) string {
			i := strings.Index(s, "password: ENC[AES256_GCM,data:") + len("password: ENC[AES256_GCM,data:")
			c := "A"
			if s[i] == 'A' {
				c = "B"
			}
			return s[:i] + c + s[i+1:]
		}, want: "cannot decrypt the value", wantAt: "stringData.password"},
		{name: "value moved to another key", args: regex, edit: func(s string) string {
			return strings.Replace(s, "\ndata:\n    token:", "\ndata:\n    other:", 1)
		}, want: "cannot decrypt the value", wantAt: "data.other"},
		{name: "clear value changed", args: regex, edit: func(s string) string {
			return strings.Replace(s, "name: db", "name: dc", 1)
		}, want: "MAC mismatch", wantAt: "sops.mac"},
		{name: "encrypted values swapped", args: regex, edit: swapEnvValues, want: "MAC mismatch", wantAt: "sops.mac"},
		{name: "value removed", args: regex, edit: func(s string) string {
			i := strings.Index(s, "    unicode: ENC[")
			j := i + strings.Index(s[i:], "\n") + 1
			return s[:i] + s[j:]
		}, want: "MAC mismatch", wantAt: "sops.mac"},
		{name: "only pgp", edit: func(s string) string { return strings.ReplaceAll(s, "\n    age:\n", "\n    pgp:\n") }, want: "encrypted for pgp only", wantAt: "sops"},
		{name: "comment rules", edit: func(s string) string {
			return strings.ReplaceAll(s, "\n    version:", "\n    encrypted_comment_regex: sops:enc\n    version:")
		}, want: "encrypted_comment_regex is not supported", wantAt: "sops.encrypted_comment_regex"},
		{name: "metadata only in a later document", edit: func(s string) string {
			i := strings.Index(s, "sops:\n")
			j := strings.Index(s, "\n---\n")
			return s[:i] + s[j+1:]
		}, want: "the first document of a SOPS-encrypted file must hold the sops metadata", wantAt: "sops"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			enc := string(encrypt(t, plain, []string{k.recipient}, tc.args...))
			if tc.edit != nil {
				edited := tc.edit(enc)
				if edited == enc {
					t.Fatal("the edit changed nothing")
				}
				enc = edited
			}
			ids := tc.ids
			if tc.name != "wrong key" && tc.name != "no key" {
				ids = []age.Identity{k.id}
			}
			docs := parse(t, []byte(enc))
			before := values(t, docs)
			_, err := sops.Decrypt(docs, ids)
			if err == nil {
				t.Fatal("Decrypt succeeded")
			}
			var se *sops.Error
			if !errors.As(err, &se) || !strings.Contains(se.Message, tc.want) || se.Field != tc.wantAt || se.Line == 0 {
				t.Fatalf("error %q (%#v), want %q at %s with a line", err, err, tc.want, tc.wantAt)
			}
			for _, secret := range []string{"hunter2", "s3cr3t", "aGVsbG8gd29ybGQ=", "BEGIN CERTIFICATE"} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("the error quotes a plaintext value: %v", err)
				}
			}
			if after := values(t, docs); !reflect.DeepEqual(before, after) {
				t.Error("a refused file was changed")
			}
		})
	}
}

// swapEnvValues exchanges the two encrypted env values of a Deployment:
// both sit at the same key path, so each still decrypts, but the MAC,
// taken over the values in order, no longer matches.
func swapEnvValues(s string) string {
	lines := strings.Split(s, "\n")
	var at []int
	for i, l := range lines {
		if strings.Contains(l, "value: ENC[") {
			at = append(at, i)
		}
	}
	if len(at) < 2 {
		return s
	}
	lines[at[0]], lines[at[1]] = lines[at[1]], lines[at[0]]
	return strings.Join(lines, "\n")
}

func TestMaskWithoutKey(t *testing.T) {
	k := newKey(t)
	enc := encrypt(t, secretYAML+"---\n"+deploymentYAML, []string{k.recipient}, "--encrypted-regex", "^(data|stringData|value)$")
	docs := parse(t, enc)
	leaves, err := sops.Mask(docs)
	if err != nil {
		t.Fatalf("Mask: %v", err)
	}
	if len(leaves) != 6 { // password, cert, unicode, token, and the two env values
		t.Errorf("%d leaves, want 6", len(leaves))
	}
	var out bytes.Buffer
	for _, v := range values(t, docs) { // the values: comments stay encrypted
		if err := yaml.NewEncoder(&out).Encode(v); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range []string{"ENC[", "sops:", "hunter2", "s3cr3t", "aGVsbG8gd29ybGQ="} {
		if strings.Contains(out.String(), s) {
			t.Errorf("masked documents hold %q:\n%s", s, out.String())
		}
	}
	if !strings.Contains(out.String(), "name: db") || !strings.Contains(out.String(), "replicas: 2") {
		t.Errorf("values in clear were lost:\n%s", out.String())
	}

	// The same placeholder for the same ciphertext; a new one when it changes.
	again := parse(t, enc)
	if _, err := sops.Mask(again); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(values(t, docs), values(t, again)) {
		t.Error("masking the same file twice differs")
	}

	bad := strings.Replace(string(enc), "password: ENC[AES256_GCM,data:", "password: ENC[AES256_GCM,data!", 1)
	if _, err := sops.Mask(parse(t, []byte(bad))); err == nil || !strings.Contains(err.Error(), "stringData.password: not a SOPS encrypted value") {
		t.Errorf("a malformed value: %v", err)
	}
}

func TestParseIdentities(t *testing.T) {
	k := newKey(t)
	if ids := identities(t, k.keyFile); len(ids) != 1 {
		t.Fatalf("%d identities", len(ids))
	}
	for _, bad := range []string{"", "# only a comment\n", "AGE-SECRET-KEY-1NOTAKEY\n"} {
		if _, err := sops.ParseIdentities([]byte(bad)); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}
