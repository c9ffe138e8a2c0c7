package agent

import (
	"strings"
	"testing"

	"github.com/kelpie-dev/kelpie/reconciler"
	"github.com/kelpie-dev/kelpie/runtime/statedir"
)

// TestConfigValidate: defaults are filled, and a bad field is named.
func TestConfigValidate(t *testing.T) {
	good := func() Config {
		c := DefaultConfig()
		c.Repos = []string{"/srv/site.git"}
		c.Host = reconciler.Host{Name: "h1"}
		return c
	}
	c := good()
	if err := c.validate(); err != nil {
		t.Fatal(err)
	}
	if c.StateDir != statedir.Default || c.Runtime.StateDir != c.StateDir || c.Path != "." || c.Listen != DefaultListen ||
		c.Interval != DefaultInterval || !c.Prune || c.AllowEmpty || c.Clock == nil || c.Log == nil || c.Parallelism != reconciler.DefaultParallelism {
		t.Fatalf("defaults: %+v", c)
	}
	if got := c.StatePath(); got != "/var/lib/kelpie/agent/state.json" {
		t.Errorf("StatePath = %s", got)
	}

	tests := []struct {
		name   string
		change func(*Config)
		want   string
	}{
		{"no repo", func(c *Config) { c.Repos = nil }, "Repos (--repo)"},
		{"empty repo", func(c *Config) { c.Repos = []string{""} }, "Repos[0]"},
		{"absolute path", func(c *Config) { c.Path = "/apps" }, "Path \"/apps\" (--path)"},
		{"path escapes", func(c *Config) { c.Path = "../x" }, "Path"},
		{"negative interval", func(c *Config) { c.Interval = -1 }, "Interval -1ns (--interval)"},
		{"relative state dir", func(c *Config) { c.StateDir = "state" }, "StateDir \"state\" (--state-dir)"},
		{"state dirs differ", func(c *Config) { c.StateDir, c.Runtime.StateDir = "/a", "/b" }, "differ"},
		{"bad listen", func(c *Config) { c.Listen = "7070" }, "Listen \"7070\" (--listen)"},
		{"no node name", func(c *Config) { c.Host.Name = "" }, "Host.Name (--node-name)"},
		{"retry bounds", func(c *Config) { c.RetryMin, c.RetryMax = 10, 5 }, "RetryMax"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := good()
			tc.change(&c)
			err := c.validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want one containing %q", err, tc.want)
			}
		})
	}

	c = good()
	c.Path = "apps/./site/"
	c.Runtime.StateDir = "/srv/kelpie"
	if err := c.validate(); err != nil || c.Path != "apps/site" || c.StateDir != "/srv/kelpie" {
		t.Fatalf("path %q state dir %q: %v", c.Path, c.StateDir, err)
	}
}

// TestDisplayReposHidesCredentials: status and logs never show a URL's
// userinfo.
func TestDisplayReposHidesCredentials(t *testing.T) {
	got := displayRepos([]string{"https://bot:s3cret@git.example.com/site.git", "git@github.com:org/site.git", "/srv/site.git"})
	want := []string{"https://git.example.com/site.git", "git@github.com:org/site.git", "/srv/site.git"}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("displayRepos[%d] = %q, want %q", i, got[i], want[i])
		}
	}
}
