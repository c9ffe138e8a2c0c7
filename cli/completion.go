package cli

import (
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"
)

// completionCommand is kelpie completion bash|zsh|fish.
func completionCommand() *cli.Command {
	return &cli.Command{
		Name:      "completion",
		Usage:     "print a shell completion script for bash, zsh or fish",
		ArgsUsage: "bash|zsh|fish",
		Description: `Load completions in the current shell:

   bash:  source <(kelpie completion bash)
   zsh:   source <(kelpie completion zsh)    (after compinit)
   fish:  kelpie completion fish | source

or install them: kelpie completion bash > /etc/bash_completion.d/kelpie`,
		BashComplete: func(c *cli.Context) {
			fmt.Fprintln(c.App.Writer, "bash\nzsh\nfish")
		},
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return usageErrorf(c, "want one shell: bash, zsh or fish")
			}
			script, err := completionScript(c.App, c.Args().First())
			if err != nil {
				return usageErrorf(c, "%v", err)
			}
			_, err = fmt.Fprint(c.App.Writer, script)
			return err
		},
	}
}

// completionScript returns app's completion script for shell. The bash and
// zsh scripts ask the binary itself (app --generate-bash-completion), so they
// stay right as commands change; fish's is generated from the command tree.
func completionScript(app *cli.App, shell string) (string, error) {
	switch shell {
	case "bash":
		return strings.ReplaceAll(bashCompletion, "PROG", app.Name), nil
	case "zsh":
		return strings.ReplaceAll(zshCompletion, "PROG", app.Name), nil
	case "fish":
		script, err := app.ToFishCompletion()
		if err != nil {
			return "", fmt.Errorf("generate fish completion: %w", err)
		}
		return script, nil
	}
	return "", fmt.Errorf("unknown shell %q: want bash, zsh or fish", shell)
}

// bashCompletion is urfave/cli's bash_autocomplete with the program name fixed
// (so it works when sourced from a pipe) and a fallback for systems without
// the bash-completion package.
const bashCompletion = `# bash completion for PROG; load with: source <(PROG completion bash)

_PROG_init_completion() {
  COMPREPLY=()
  if declare -F _get_comp_words_by_ref >/dev/null 2>&1; then
    _get_comp_words_by_ref "$@" cur prev words cword
  else
    words=("${COMP_WORDS[@]}")
    cword=$COMP_CWORD
    cur="${COMP_WORDS[COMP_CWORD]}"
    prev="${COMP_WORDS[COMP_CWORD-1]}"
  fi
}

_PROG_bash_autocomplete() {
  if [[ "${COMP_WORDS[0]}" != "source" ]]; then
    local cur prev opts words cword requestComp
    COMPREPLY=()
    cur="${COMP_WORDS[COMP_CWORD]}"
    if declare -F _init_completion >/dev/null 2>&1; then
      _init_completion -n "=:" || return
    else
      _PROG_init_completion -n "=:" || return
    fi
    words=("${words[@]:0:$cword}")
    if [[ "$cur" == "-"* ]]; then
      requestComp="${words[*]} ${cur} --generate-bash-completion"
    else
      requestComp="${words[*]} --generate-bash-completion"
    fi
    opts=$(eval "${requestComp}" 2>/dev/null)
    COMPREPLY=($(compgen -W "${opts}" -- ${cur}))
    return 0
  fi
}

complete -o bashdefault -o default -o nospace -F _PROG_bash_autocomplete PROG
`

// zshCompletion is urfave/cli's zsh_autocomplete with the program name fixed.
const zshCompletion = `#compdef PROG
# zsh completion for PROG; load with: source <(PROG completion zsh)

_PROG_zsh_autocomplete() {
  local -a opts
  local cur
  cur=${words[-1]}
  if [[ "$cur" == "-"* ]]; then
    opts=("${(@f)$(${words[@]:0:#words[@]-1} ${cur} --generate-bash-completion)}")
  else
    opts=("${(@f)$(${words[@]:0:#words[@]-1} --generate-bash-completion)}")
  fi

  if [[ "${opts[1]}" != "" ]]; then
    _describe 'values' opts
  else
    _files
  fi
}

compdef _PROG_zsh_autocomplete PROG
`

// lastWordKey is the app Metadata key under which Main leaves the last word
// typed before --generate-bash-completion, which completeCommand needs and
// urfave does not pass on.
const lastWordKey = "kelpie.lastWord"

// completeCommand prints the completions for the command running in c, one a
// line. After a flag that wants a value it prints nothing, so the shell falls
// back to file names; after a partly typed flag, the flags it could become
// (the command's and the global ones, since kelpie takes those anywhere);
// otherwise the subcommands.
func completeCommand(c *cli.Context) {
	last, _ := c.App.Metadata[lastWordKey].(string)
	w := c.App.Writer
	if c.Command == nil {
		return
	}
	knownFlag := false
	if strings.HasPrefix(last, "-") {
		name, hasValue := flagName(last)
		var ok, tv bool
		for _, ctx := range c.Lineage() {
			if ctx.Command != nil && !ok {
				tv, ok = commandNode(ctx.Command).lookup(name)
			}
		}
		if ok && tv && !hasValue && dashed(name) == last {
			return // a complete value flag: its value comes next
		}
		knownFlag = ok
		seen := map[string]bool{}
		for _, ctx := range c.Lineage() {
			if ctx.Command == nil {
				continue
			}
			for _, f := range ctx.Command.Flags {
				if v, ok := f.(cli.VisibleFlag); ok && !v.IsVisible() {
					continue
				}
				for _, n := range f.Names() {
					if d := dashed(n); strings.HasPrefix(d, last) && !seen[d] {
						seen[d] = true
						fmt.Fprintln(w, d)
					}
				}
			}
		}
		if !knownFlag {
			return
		}
	}
	for _, sub := range c.Command.Subcommands {
		if !sub.Hidden {
			fmt.Fprintln(w, sub.Name)
		}
	}
}
