package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/kelpie-dev/kelpie/source"
	"github.com/kelpie-dev/kelpie/specs"
)

// worktreeSide names the working tree as a diff side.
const worktreeSide = "worktree"

// diffCommand is `kelpie diff [--repo DIR] [--path SUBDIR] [FROM [TO]]`.
func diffCommand() *cli.Command {
	return &cli.Command{
		Name:      "diff",
		Usage:     "show what changes between two revisions of the manifests",
		ArgsUsage: "[FROM [TO]]",
		Description: "Compares the desired state at FROM (default HEAD) with TO (default the working\n" +
			"tree), object by object: added (+), removed (-) and modified (~) objects, with the\n" +
			"changed fields. Revisions are anything git accepts for a commit: a sha, a branch,\n" +
			"a tag, HEAD~1. Both commits are read straight from the git object store. Secret\n" +
			"values are never printed, only that they changed, nor any value of a SOPS-encrypted\n" +
			"object; without --age-key-file encrypted values are compared by their ciphertext.\n\n" +
			"Exit status: 0 no changes, 2 changes, 1 error (like terraform plan -detailed-exitcode).",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "repo", Usage: "the git repository (or a directory inside it)", Value: ".", EnvVars: envVars("repo")},
			&cli.StringFlag{Name: "path", Usage: "the manifests' directory inside the repository", Value: ".", EnvVars: envVars("path")},
			skipKindFlag(),
			nodePortRangeFlag(),
			ageKeyFileFlag(),
			outputFlag(),
		},
		Action: runDiff,
	}
}

// diffResult is the -o json output of diff.
type diffResult struct {
	From    string         `json:"from"`
	To      string         `json:"to"`
	Changes []specs.Change `json:"changes"`
}

// runDiff loads both sides and prints their difference.
func runDiff(c *cli.Context) error {
	format, err := outputFormat(c)
	if err != nil {
		return err
	}
	if c.NArg() > 2 {
		return usageErrorf(c, "diff takes at most two revisions, got %d", c.NArg())
	}
	sub, err := cleanSubdir(c.String("path"))
	if err != nil {
		return usageErrorf(c, "invalid value %q for flag --path: %v", c.String("path"), err)
	}
	repo, err := source.OpenLocal(c.String("repo"))
	if err != nil {
		return err
	}
	// Like `git -C DIR`, --path is relative to the --repo directory, which
	// may lie inside the work tree.
	sub = path.Join(repoSubdir(repo, c.String("repo")), sub)
	fromRev := c.Args().Get(0)
	if fromRev == "" {
		fromRev = "HEAD"
	}
	opts, err := loadOptions(c)
	if err != nil {
		return err
	}
	// Without keys an encrypted value is compared by its ciphertext:
	// the diff says it changed, never what it holds.
	opts.AllowUndecrypted = true
	from, fromName, fromExists, err := loadRevision(opts, repo, fromRev, sub)
	if err != nil {
		return manifestFailure(c, err)
	}
	var to *specs.DesiredState
	toName, toExists := worktreeSide, false
	if toRev := c.Args().Get(1); toRev != "" {
		to, toName, toExists, err = loadRevision(opts, repo, toRev, sub)
	} else {
		to, toExists, err = loadWorktree(opts, repo, sub)
	}
	if err != nil {
		return manifestFailure(c, err)
	}
	if !fromExists && !toExists {
		// A typo must not pass for "no changes".
		return fmt.Errorf("the manifests directory %q (--path) does not exist at %s nor in %s", sub, diffLabel(fromRev, fromName), diffLabel(c.Args().Get(1), toName))
	}
	changes, err := specs.Diff(from, to)
	if err != nil {
		return err
	}
	if changes == nil {
		changes = []specs.Change{}
	}
	if format == formatJSON {
		if err := writeJSON(c.App.Writer, diffResult{From: fromName, To: toName, Changes: changes}); err != nil {
			return err
		}
	} else {
		z := newColorizer(c, c.App.Writer)
		printDiff(c.App.Writer, z, diffLabel(fromRev, fromName), diffLabel(c.Args().Get(1), toName), changes)
		if anyUndecrypted(from, to) {
			fmt.Fprintln(c.App.ErrWriter, "note: SOPS-encrypted values were not decrypted (no --age-key-file): a value re-encrypted shows as changed")
		}
	}
	if len(changes) > 0 {
		return ExitCode(2)
	}
	return nil
}

// anyUndecrypted reports whether a state holds SOPS-encrypted values that
// were not decrypted.
func anyUndecrypted(states ...*specs.DesiredState) bool {
	for _, s := range states {
		if s == nil {
			continue
		}
		if _, n := countEncrypted(s); n > 0 {
			return true
		}
	}
	return false
}

// loadRevision resolves rev and loads the manifests of its tree. It returns
// the state, the full commit hash and whether the directory exists there (a
// missing one is an empty state).
func loadRevision(opts specs.Options, repo *source.Repo, rev, sub string) (*specs.DesiredState, string, bool, error) {
	commit, err := repo.Resolve(rev)
	if err != nil {
		return nil, "", false, err
	}
	fsys, err := repo.FS(commit)
	if err != nil {
		return nil, "", false, err
	}
	if _, err := fs.Stat(fsys, sub); errors.Is(err, fs.ErrNotExist) {
		return &specs.DesiredState{}, commit.Hash, false, nil
	}
	state, err := specs.LoadSources(opts, specs.Source{FS: fsys, Root: sub, Prefix: rev + ":"})
	if err != nil {
		return nil, "", false, err
	}
	return state, commit.Hash, true, nil
}

// repoSubdir is the --repo directory relative to the work-tree root ("."
// for the root itself or a bare repository).
func repoSubdir(repo *source.Repo, dir string) string {
	if repo.Root() == "" {
		return "."
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "."
	}
	if info, err := os.Stat(abs); err == nil && !info.IsDir() {
		abs = filepath.Dir(abs)
	}
	root, err := filepath.EvalSymlinks(repo.Root())
	if err != nil {
		root = repo.Root()
	}
	if resolved, err := filepath.EvalSymlinks(abs); err == nil {
		abs = resolved
	}
	rel, err := filepath.Rel(root, abs)
	if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
		return "."
	}
	return filepath.ToSlash(rel)
}

// loadWorktree loads the manifests of the repository's working tree, and
// says whether the directory exists there.
func loadWorktree(opts specs.Options, repo *source.Repo, sub string) (*specs.DesiredState, bool, error) {
	if repo.Root() == "" {
		return nil, false, errors.New("a bare repository has no working tree: give two revisions, FROM and TO")
	}
	dir := filepath.Join(repo.Root(), filepath.FromSlash(sub))
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		return &specs.DesiredState{}, false, nil
	}
	// Name files as paths from the current directory, so they can be opened
	// as printed; fall back to the absolute path outside it.
	prefix := filepath.ToSlash(dir)
	if cwd, err := os.Getwd(); err == nil {
		if r, err := filepath.Rel(cwd, dir); err == nil && r != ".." && !strings.HasPrefix(r, "../") {
			prefix = filepath.ToSlash(r)
		}
	}
	if prefix == "." {
		prefix = ""
	}
	state, err := specs.LoadSources(opts, specs.Source{FS: os.DirFS(dir), Root: ".", Prefix: prefix, Repo: os.DirFS(repo.Root()), RepoDir: sub})
	return state, true, err
}

// manifestFailure prints manifest errors compiler style and exits 1; other
// errors are returned as they are.
func manifestFailure(c *cli.Context, err error) error {
	var list specs.ErrorList
	if !errors.As(err, &list) {
		return err
	}
	printManifestErrors(c.App.ErrWriter, list)
	fmt.Fprintf(c.App.ErrWriter, "kelpie: %d %s in the manifests; nothing compared\n", len(list), plural(len(list), "problem", "problems"))
	return ExitCode(1)
}

// cleanSubdir checks --path is a relative directory inside the repository
// and returns it in fs.FS form.
func cleanSubdir(p string) (string, error) {
	p = path.Clean(filepath.ToSlash(p))
	if p == "" {
		p = "."
	}
	if path.IsAbs(p) || p == ".." || len(p) > 2 && p[:3] == "../" {
		return "", errors.New("must be a directory inside the repository")
	}
	return p, nil
}

// diffLabel names a side for people: the revision as typed with its short
// hash, or "the working tree".
func diffLabel(rev, hash string) string {
	if hash == worktreeSide {
		return "the working tree"
	}
	short := hash
	if len(short) > 12 {
		short = short[:12]
	}
	if rev == "" || rev == hash || rev == short {
		return short
	}
	return fmt.Sprintf("%s (%s)", rev, short)
}
