package specs

import (
	"errors"
	"os"
	"strings"
	"testing"
	"testing/fstest"

	"filippo.io/age"
	corev1 "k8s.io/api/core/v1"
)

// sopsOverlay is a kustomization over the SOPS fixture whose changes (a
// name prefix and a label) would break the file's MAC if it were decrypted
// after the build.
func sopsOverlay(t *testing.T, extra fstest.MapFS) fstest.MapFS {
	t.Helper()
	secret, err := os.ReadFile("testdata/sops/site/secret.yaml")
	if err != nil {
		t.Fatal(err)
	}
	fsys := fstest.MapFS{
		"site/secret.yaml": {Data: secret},
		"site/kustomization.yaml": {Data: []byte("resources:\n- secret.yaml\nnamePrefix: edge-\n" +
			"labels:\n- pairs:\n    site: north\n")},
	}
	for k, v := range extra {
		fsys[k] = v
	}
	return fsys
}

func TestOverlayDecryptsSOPSBeforeTheBuild(t *testing.T) {
	state, err := Load(sopsOverlay(t, nil), "site", Options{AgeIdentities: sopsTestKeys(t)})
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	sec := state.Get(Key{Kind: KindSecret, Namespace: DefaultNamespace, Name: "edge-db"})
	if sec == nil {
		t.Fatalf("no Secret edge-db")
	}
	if !sec.Encrypted || sec.Undecrypted {
		t.Errorf("Secret edge-db: Encrypted %v, Undecrypted %v; want true, false (diffs must withhold its values)", sec.Encrypted, sec.Undecrypted)
	}
	s := sec.Obj.(*corev1.Secret)
	if string(s.Data["password"]) != "hunter2" || string(s.Data["user"]) != "admin" {
		t.Errorf("Secret decrypted to %q, %q", s.Data["password"], s.Data["user"])
	}
	if s.Labels["site"] != "north" {
		t.Errorf("labels %v: the overlay's label was not applied", s.Labels)
	}
	if got := sec.Pos.File; !strings.HasSuffix(got, "secret.yaml") {
		t.Errorf("Secret placed at %v, want the encrypted source file", sec.Pos)
	}
}

func TestOverlaySOPSWithoutKey(t *testing.T) {
	state, err := Load(sopsOverlay(t, nil), "site", Options{AllowUndecrypted: true})
	if err != nil {
		t.Fatalf("Load, undecrypted allowed: %v", err)
	}
	sec := state.Get(Key{Kind: KindSecret, Namespace: DefaultNamespace, Name: "edge-db"})
	if sec == nil || !sec.Encrypted || !sec.Undecrypted {
		t.Fatalf("Secret edge-db: %+v; want it masked (Encrypted and Undecrypted)", sec)
	}
	if v := string(sec.Obj.(*corev1.Secret).Data["password"]); v == "hunter2" {
		t.Errorf("masked Secret holds the plaintext")
	}

	other, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		opts Options
		want string
	}{
		{"no key", Options{}, "site/secret.yaml:12:5: sops: encrypted with SOPS, and no age key was given to decrypt it (--age-key-file)"},
		{"wrong key", Options{AgeIdentities: []age.Identity{other}}, "site/secret.yaml:12:5: sops: no key in the age key file can decrypt this file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(sopsOverlay(t, nil), "site", tc.opts)
			var list ErrorList
			if !errors.As(err, &list) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "kustomize") {
				t.Errorf("the refusal is reported through kustomize's words as well: %v", err)
			}
		})
	}
}

func TestOverlayRefusesSOPSDotenv(t *testing.T) {
	fsys := sopsOverlay(t, fstest.MapFS{
		"site/creds.env": {Data: []byte("password=ENC[AES256_GCM,data:4JsoHPdA2A==,iv:x,tag:y,type:str]\nsops_mac=ENC[AES256_GCM,data:z,iv:x,tag:y,type:str]\n")},
	})
	fsys["site/kustomization.yaml"] = &fstest.MapFile{Data: []byte("resources:\n- secret.yaml\nsecretGenerator:\n- name: creds\n  envs:\n  - creds.env\n")}
	_, err := Load(fsys, "site", Options{AgeIdentities: sopsTestKeys(t)})
	if err == nil || !strings.Contains(err.Error(), "site/creds.env: a SOPS-encrypted dotenv or INI file is not supported by kelpie") {
		t.Fatalf("error %v, want the dotenv file refused", err)
	}
}
