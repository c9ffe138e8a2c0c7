package cli

import (
	"encoding/json"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
)

func TestResolveVersion(t *testing.T) {
	stamped := &debug.BuildInfo{
		Main: debug.Module{Path: "github.com/kelpie-dev/kelpie", Version: "v0.4.0"},
		Settings: []debug.BuildSetting{
			{Key: "vcs", Value: "git"},
			{Key: "vcs.revision", Value: "0123456789abcdef"},
			{Key: "vcs.modified", Value: "false"},
		},
	}
	dirty := &debug.BuildInfo{
		Main: debug.Module{Path: "github.com/kelpie-dev/kelpie", Version: "(devel)"},
		Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "fedcba9876543210"},
			{Key: "vcs.modified", Value: "true"},
		},
	}
	tests := []struct {
		name            string
		version, commit string
		info            *debug.BuildInfo
		wantVersion     string
		wantCommit      string
	}{
		{"nothing known", "", "", nil, "dev", "unknown"},
		{"ldflags win", "v1.2.3", "abc1234", stamped, "v1.2.3", "abc1234"},
		{"ldflags version, stamped commit", "v1.2.3", "", stamped, "v1.2.3", "0123456789abcdef"},
		{"module version and revision", "", "", stamped, "v0.4.0", "0123456789abcdef"},
		{"devel build with local changes", "", "", dirty, "dev", "fedcba9876543210-dirty"},
		{"build info without vcs", "", "", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}, "dev", "unknown"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := resolveVersion(tt.version, tt.commit, tt.info)
			if v.Version != tt.wantVersion || v.Commit != tt.wantCommit {
				t.Errorf("got %s %s, want %s %s", v.Version, v.Commit, tt.wantVersion, tt.wantCommit)
			}
			if v.GoVersion != runtime.Version() || v.OS != runtime.GOOS || v.Arch != runtime.GOARCH {
				t.Errorf("got %s %s/%s, want this toolchain and platform", v.GoVersion, v.OS, v.Arch)
			}
		})
	}
}

func TestVersionCommand(t *testing.T) {
	clearEnv(t)
	r := runMain(t, "version")
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("code %d, stderr %q", r.code, r.stderr)
	}
	lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
	wantPrefixes := []string{"version:  ", "commit:   ", "go:       " + runtime.Version(), "platform: " + runtime.GOOS + "/" + runtime.GOARCH}
	if len(lines) != len(wantPrefixes) {
		t.Fatalf("kelpie version printed %d lines, want %d:\n%s", len(lines), len(wantPrefixes), r.stdout)
	}
	for i, p := range wantPrefixes {
		if !strings.HasPrefix(lines[i], p) || len(lines[i]) == len("version:  ") {
			t.Errorf("line %d = %q, want %q followed by a value", i+1, lines[i], p)
		}
	}

	r = runMain(t, "version", "-o", "json")
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("code %d, stderr %q", r.code, r.stderr)
	}
	var v map[string]string
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil {
		t.Fatalf("kelpie version -o json: %v\n%s", err, r.stdout)
	}
	for _, k := range []string{"version", "commit", "goVersion", "os", "arch"} {
		if v[k] == "" {
			t.Errorf("JSON has no %q: %s", k, r.stdout)
		}
	}
	if v["goVersion"] != runtime.Version() || v["os"] != runtime.GOOS || v["arch"] != runtime.GOARCH {
		t.Errorf("JSON = %v, want this toolchain and platform", v)
	}
}

func TestVersionFromLinker(t *testing.T) {
	clearEnv(t)
	defer func(v, c string) { Version, Commit = v, c }(Version, Commit)
	Version, Commit = "v9.9.9", "cafebabe"
	r := runMain(t, "version")
	if !strings.HasPrefix(r.stdout, "version:  v9.9.9\ncommit:   cafebabe\n") {
		t.Errorf("kelpie version with -X values:\n%s", r.stdout)
	}
}
