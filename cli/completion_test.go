package cli

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestCompletionScripts(t *testing.T) {
	clearEnv(t)
	tests := []struct {
		shell string
		want  []string
	}{
		// bash and zsh ask the binary for its commands at completion time.
		{"bash", []string{"complete ", "_kelpie_bash_autocomplete kelpie", "--generate-bash-completion"}},
		{"zsh", []string{"#compdef kelpie", "compdef _kelpie_zsh_autocomplete kelpie", "--generate-bash-completion"}},
		// fish's script is generated from the command tree.
		{"fish", []string{"complete -c kelpie", "'version'", "'completion'", "-l log-level", "-l output"}},
	}
	for _, tt := range tests {
		t.Run(tt.shell, func(t *testing.T) {
			r := runMain(t, "completion", tt.shell)
			if r.code != 0 || r.stderr != "" || strings.TrimSpace(r.stdout) == "" {
				t.Fatalf("code %d, stderr %q, stdout %d bytes; want 0, nothing, a script", r.code, r.stderr, len(r.stdout))
			}
			for _, w := range tt.want {
				if !strings.Contains(r.stdout, w) {
					t.Errorf("%s script does not mention %q:\n%s", tt.shell, w, r.stdout)
				}
			}
			if strings.Contains(r.stdout, "PROG") {
				t.Errorf("%s script still has the PROG placeholder", tt.shell)
			}
			checkSyntax(t, tt.shell, r.stdout)
		})
	}
}

// checkSyntax parses script with the shell itself when it is installed.
func checkSyntax(t *testing.T, shell, script string) {
	t.Helper()
	bin, err := exec.LookPath(shell)
	if err != nil {
		t.Logf("%s not installed; syntax not checked", shell)
		return
	}
	file := filepath.Join(t.TempDir(), "kelpie."+shell)
	if err := os.WriteFile(file, []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(bin, "-n", file).CombinedOutput(); err != nil {
		t.Errorf("%s -n: %v\n%s", shell, err, out)
	}
}

func TestCompletionUsage(t *testing.T) {
	clearEnv(t)
	for _, args := range [][]string{{"completion"}, {"completion", "ksh"}, {"completion", "bash", "zsh"}} {
		r := runMain(t, args...)
		if r.code != 1 || !strings.HasSuffix(r.stderr, "Run 'kelpie completion --help' for usage.\n") {
			t.Errorf("kelpie %s: code %d, stderr %q; want a usage error", strings.Join(args, " "), r.code, r.stderr)
		}
	}
}

func TestGenerateBashCompletion(t *testing.T) {
	clearEnv(t)
	tests := []struct {
		name    string
		args    string
		want    []string
		notWant []string
	}{
		{"commands", "--generate-bash-completion", []string{"version", "completion", "help"}, nil},
		{"commands after a global flag", "--log-level debug --generate-bash-completion", []string{"version", "completion"}, nil},
		{"commands after a bool flag", "--no-color --generate-bash-completion", []string{"--no-color", "version", "completion"}, nil},
		{"global flags", "--log --generate-bash-completion", []string{"--log-level", "--log-format"}, []string{"version", "--no-color"}},
		{"command flags and global flags", "version --o --generate-bash-completion", []string{"--output"}, []string{"--log-level"}},
		{"all flags of a command", "version - --generate-bash-completion", []string{"--output", "-o", "--help", "--log-level", "--no-color"}, nil},
		{"nothing after a value flag", "version -o --generate-bash-completion", nil, []string{"--output", "version"}},
		{"shells", "completion --generate-bash-completion", []string{"bash", "zsh", "fish"}, nil},
		{"shells after flags elsewhere", "--no-color completion --generate-bash-completion", []string{"bash", "zsh", "fish"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runMain(t, strings.Fields(tt.args)...)
			if r.code != 0 || r.stderr != "" {
				t.Fatalf("kelpie %s: code %d, stderr %q", tt.args, r.code, r.stderr)
			}
			got := strings.Fields(r.stdout)
			for _, w := range tt.want {
				if !slices.Contains(got, w) {
					t.Errorf("kelpie %s offers %q, want %q among them", tt.args, got, w)
				}
			}
			for _, w := range tt.notWant {
				if slices.Contains(got, w) {
					t.Errorf("kelpie %s offers %q, want no %q", tt.args, got, w)
				}
			}
			if tt.want == nil && len(got) != 0 {
				t.Errorf("kelpie %s offers %q, want nothing", tt.args, got)
			}
		})
	}
}
