package specs

import (
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
	"testing/fstest"

	"filippo.io/age"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/kelpie-dev/kelpie/specs/sops"
)

// The fixtures in testdata/sops were encrypted with the real sops for the
// test key in testdata/sops/keys.txt (see the comment in site/secret.yaml);
// the specs/sops tests run sops itself.

func sopsTestKeys(t *testing.T) []age.Identity {
	t.Helper()
	data, err := os.ReadFile("testdata/sops/keys.txt")
	if err != nil {
		t.Fatal(err)
	}
	ids, err := sops.ParseIdentities(data)
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

func TestLoadDecryptsSOPS(t *testing.T) {
	state, err := Load(os.DirFS("testdata/sops/site"), ".", Options{AgeIdentities: sopsTestKeys(t)})
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	sec := state.Get(Key{Kind: KindSecret, Namespace: DefaultNamespace, Name: "db"})
	if sec == nil || !sec.Encrypted || sec.Undecrypted {
		t.Fatalf("Secret db: %+v", sec)
	}
	s := sec.Obj.(*corev1.Secret)
	if string(s.Data["password"]) != "hunter2" || string(s.Data["user"]) != "admin" { // stringData is folded into data
		t.Errorf("Secret decrypted to %q, %q", s.Data["password"], s.Data["user"])
	}
	web := state.Get(Key{Kind: KindDeployment, Namespace: DefaultNamespace, Name: "web"})
	if web == nil || !web.Encrypted {
		t.Fatalf("Deployment web: %+v", web)
	}
	if v := web.Obj.(*appsv1.Deployment).Spec.Template.Spec.Containers[0].Env[0].Value; v != "s3cr3t-api-key" {
		t.Errorf("env value decrypted to %q", v)
	}
}

func TestLoadRefusesSOPSWithoutKey(t *testing.T) {
	other, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		opts Options
		want string
	}{
		{"no key", Options{}, "secret.yaml:12:5: sops: encrypted with SOPS, and no age key was given to decrypt it (--age-key-file)"},
		{"wrong key", Options{AgeIdentities: []age.Identity{other}}, "secret.yaml:12:5: sops: no key in the age key file can decrypt this file"},
		{"wrong key, undecrypted allowed", Options{AgeIdentities: []age.Identity{other}, AllowUndecrypted: true}, "no key in the age key file can decrypt this file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(os.DirFS("testdata/sops/site"), ".", tc.opts)
			var list ErrorList
			if !errors.As(err, &list) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "not found") {
				t.Errorf("a refused file's Secret is reported missing too: %v", err)
			}
		})
	}
}

func TestLoadUndecryptedSOPS(t *testing.T) {
	state, err := Load(os.DirFS("testdata/sops/site"), ".", Options{AllowUndecrypted: true})
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	for _, o := range state.Objects {
		if !o.Encrypted || !o.Undecrypted {
			t.Errorf("%s: Encrypted %v, Undecrypted %v", o.Key(), o.Encrypted, o.Undecrypted)
		}
		data, _ := json.Marshal(o.Obj)
		for _, secret := range []string{"hunter2", "admin", "s3cr3t", "ENC["} {
			if strings.Contains(string(data), secret) {
				t.Errorf("%s holds %q: %s", o.Key(), secret, data)
			}
		}
	}

	// A value the rules say is encrypted, in clear.
	enc, err := os.ReadFile("testdata/sops/site/secret.yaml")
	if err != nil {
		t.Fatal(err)
	}
	_, err = Load(fstest.MapFS{"s.yaml": {Data: []byte(strings.Replace(string(enc), "encrypted_regex: ^(data|stringData)$", "encrypted_regex: ^(name|data|stringData)$", 1))}}, ".", Options{AllowUndecrypted: true})
	if err == nil || !strings.Contains(err.Error(), "s.yaml:6:11: metadata.name: SOPS: not a SOPS encrypted value") {
		t.Errorf("a rule that covers a value in clear: %v", err)
	}

	// Encrypted names (sops's default: every value) cannot be checked
	// without the key; with it they can.
	_, err = Load(os.DirFS("testdata/sops/all"), ".", Options{AllowUndecrypted: true})
	if err == nil || !strings.Contains(err.Error(), "secret.yaml:3:13: apiVersion: SOPS: encrypted, so the object cannot be checked without the age key") {
		t.Errorf("encrypted apiVersion without the key: %v", err)
	}
	all, err := Load(os.DirFS("testdata/sops/all"), ".", Options{AgeIdentities: sopsTestKeys(t)})
	if err != nil {
		t.Fatalf("every value encrypted, with the key: %v", err)
	}
	// replicas was encrypted as type:int, and decodes as one.
	if web := all.Get(Key{Kind: KindDeployment, Namespace: DefaultNamespace, Name: "web"}); web == nil || *web.Obj.(*appsv1.Deployment).Spec.Replicas != 1 {
		t.Errorf("every value encrypted: Deployment web %+v", web)
	}
}

func TestDiffWithholdsEncryptedValues(t *testing.T) {
	ids := sopsTestKeys(t)
	from, err := Load(os.DirFS("testdata/sops/site"), ".", Options{AgeIdentities: ids})
	if err != nil {
		t.Fatal(err)
	}
	to, err := Load(os.DirFS("testdata/sops/site"), ".", Options{AgeIdentities: ids})
	if err != nil {
		t.Fatal(err)
	}
	web := to.Get(Key{Kind: KindDeployment, Namespace: DefaultNamespace, Name: "web"})
	d := web.Obj.(*appsv1.Deployment)
	d.Spec.Template.Spec.Containers[0].Env[0].Value = "n3w-s3cr3t"
	d.Spec.Template.Spec.Containers[0].Image = "nginx:1.8"
	web.Hash = "changed"
	changes, err := Diff(from, to)
	if err != nil {
		t.Fatal(err)
	}
	out, _ := json.Marshal(changes)
	if len(changes) != 1 || len(changes[0].Fields) != 2 {
		t.Fatalf("changes: %s", out)
	}
	for _, f := range changes[0].Fields {
		if !f.Sensitive || f.Old != nil || f.New != nil {
			t.Errorf("field %s of an encrypted object shown: %+v", f.Path, f)
		}
	}
	if strings.Contains(string(out), "s3cr3t") {
		t.Errorf("diff leaks a decrypted value: %s", out)
	}
}

func TestErrorsWithholdDecryptedValues(t *testing.T) {
	// testdata/sops/invalid/web.yaml: the image "nginx secret-tag" and the
	// env value are encrypted; the image is invalid.
	_, err := Load(os.DirFS("testdata/sops/invalid"), ".", Options{AgeIdentities: sopsTestKeys(t)})
	if err == nil || !strings.Contains(err.Error(), "web.yaml:17:26: spec.template.spec.containers[0].image: image reference \"(value withheld)\" contains whitespace") {
		t.Fatalf("error %v", err)
	}
	if strings.Contains(err.Error(), "secret-tag") || strings.Contains(err.Error(), "s3cr3t") {
		t.Errorf("the error quotes a decrypted value: %v", err)
	}
}
