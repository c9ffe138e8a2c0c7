package gossip

import (
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestGenerateKeyParses(t *testing.T) {
	k, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	keys, err := ParseKeys(k)
	if err != nil || len(keys) != 1 || len(keys[0]) != KeySize {
		t.Fatalf("ParseKeys(GenerateKey()) = %d keys, %v", len(keys), err)
	}
	k2, _ := GenerateKey()
	if k == k2 {
		t.Fatal("two keys alike")
	}
}

func TestParseKeys(t *testing.T) {
	k16 := base64.StdEncoding.EncodeToString(make([]byte, 16))
	k24 := base64.StdEncoding.EncodeToString(make([]byte, 24))
	for _, tc := range []struct {
		in      string
		n       int
		wantErr string
	}{
		{testKey, 1, ""},
		{k16 + "," + k24 + "\n" + testKey, 3, ""},
		{`["` + testKey + `", "` + k16 + `"]`, 2, ""},
		{"", 0, "empty"},
		{"not-base64!", 0, "not base64"},
		{base64.StdEncoding.EncodeToString(make([]byte, 20)), 0, "20 bytes"},
		{"[1,2]", 0, "JSON"},
	} {
		keys, err := ParseKeys(tc.in)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("ParseKeys(%q) error = %v, want %q", tc.in, err, tc.wantErr)
			}
			continue
		}
		if err != nil || len(keys) != tc.n {
			t.Errorf("ParseKeys(%q) = %d keys, %v; want %d", tc.in, len(keys), err, tc.n)
		}
	}
	path := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(path, []byte(testKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if keys, err := ReadKeyFile(path); err != nil || len(keys) != 1 {
		t.Fatalf("ReadKeyFile = %d, %v", len(keys), err)
	}
	if _, err := ReadKeyFile(filepath.Join(t.TempDir(), "none")); err == nil {
		t.Fatal("ReadKeyFile of a missing file succeeded")
	}
}

func TestConfigRejects(t *testing.T) {
	for _, tc := range []struct {
		name    string
		adjust  func(*Config)
		wantErr string
	}{
		{"no key", func(c *Config) { c.Key = "" }, "--insecure-gossip"},
		{"key and insecure", func(c *Config) { c.Insecure = true }, "--insecure-gossip"},
		{"key and key file", func(c *Config) { c.KeyFile = "/x" }, "--gossip-key-file"},
		{"bad key", func(c *Config) { c.Key = "abc" }, "--gossip-key"},
		{"bad bind", func(c *Config) { c.BindAddr = "localhost" }, "--bind"},
		{"bad join", func(c *Config) { c.Join = []string{"10.0.0.1"} }, "--join"},
		{"negative expect", func(c *Config) { c.Expect = -1 }, "--expect"},
		{"too many labels", func(c *Config) {
			c.Labels = map[string]string{}
			for i := range 40 {
				c.Labels[strings.Repeat("k", 8)+string(rune('a'+i%26))+strings.Repeat("x", i)] = "value"
			}
		}, "--labels"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := testConfig(t, "n", &logBuf{})
			tc.adjust(&c)
			n, err := New(c)
			if err == nil {
				n.Shutdown()
				t.Fatal("New succeeded")
			}
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %q does not name %q", err, tc.wantErr)
			}
		})
	}
	c := testConfig(t, "n", &logBuf{})
	c.Key = ""
	if _, err := New(c); !errors.Is(err, ErrNoKey) {
		t.Fatalf("no key: %v, want ErrNoKey", err)
	}
}

func TestInsecureClusterForms(t *testing.T) {
	cl := startCluster(t, 2, func(i int, c *Config) { c.Key, c.Insecure = "", true })
	waitFor(t, 10*time.Second, "2 members", func() (bool, string) { return converged(cl.nodes, 2) })
	if !strings.Contains(cl.logs[0].String(), "NOT encrypted") {
		t.Fatal("an insecure node does not warn")
	}
}

// TestWrongKeyNotAdmitted: a node with another key joins; it is refused,
// it says why in its log, and nobody counts it as a member.
func TestWrongKeyNotAdmitted(t *testing.T) {
	other, _ := GenerateKey()
	cl := startCluster(t, 3, func(i int, c *Config) {
		if i == 2 {
			c.Key = other
		}
	})
	waitFor(t, 10*time.Second, "the refusal logged by the intruder", func() (bool, string) {
		return strings.Contains(cl.logs[2].String(), "not encrypted with a key in our keyring") && cl.nodes[2].KeyErrors() > 0, "no log yet"
	})
	waitFor(t, 10*time.Second, "the two good nodes together", func() (bool, string) { return converged(cl.nodes[:2], 2) })
	for _, n := range cl.nodes[:2] {
		for _, m := range n.Members() {
			if m.Name == "n02" {
				t.Fatalf("%s admitted the node with the wrong key: %+v", n.Name(), m)
			}
		}
	}
	if k := aliveCount(cl.nodes[2]); k != 1 {
		t.Fatalf("the node with the wrong key sees %d members", k)
	}
}

// TestKeyRotation: nodes whose keyrings share a key but differ in primary
// still form a cluster (the middle step of a rotation).
func TestKeyRotation(t *testing.T) {
	newKey, _ := GenerateKey()
	cl := startCluster(t, 3, func(i int, c *Config) {
		switch i {
		case 0:
			c.Key = testKey + "," + newKey
		case 1:
			c.Key = newKey + "," + testKey
		default:
			c.KeyFile = filepath.Join(t.TempDir(), "keyring.json")
			c.Key = ""
			os.WriteFile(c.KeyFile, []byte(`["`+newKey+`","`+testKey+`"]`), 0o600)
		}
	})
	waitFor(t, 10*time.Second, "3 members", func() (bool, string) { return converged(cl.nodes, 3) })
}
