package specs

import (
	"bufio"
	"bytes"
	"io/fs"
	"path"
	"strings"

	"github.com/go-git/go-git/v5/plumbing/format/gitignore"
)

// IgnoreFile is the name of the file holding gitignore-style patterns of
// paths Load skips. Patterns in a subdirectory's file apply below it.
const IgnoreFile = ".kelpieignore"

// ignorer accumulates .kelpieignore patterns while a tree is walked.
type ignorer struct {
	patterns []gitignore.Pattern
	matcher  gitignore.Matcher
}

// load reads dir's ignore file, if any; rel is dir relative to the load root.
func (ig *ignorer) load(fsys fs.FS, dir, rel string) error {
	data, err := fs.ReadFile(fsys, path.Join(dir, IgnoreFile))
	if err != nil {
		if isNotExist(err) {
			return nil
		}
		return err
	}
	var domain []string
	if rel != "." && rel != "" {
		domain = strings.Split(rel, "/")
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), " \t\r")
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		ig.patterns = append(ig.patterns, gitignore.ParsePattern(line, domain))
	}
	ig.matcher = gitignore.NewMatcher(ig.patterns)
	return sc.Err()
}

// ignored reports whether rel (relative to the load root) is excluded.
func (ig *ignorer) ignored(rel string, isDir bool) bool {
	if ig.matcher == nil || rel == "." {
		return false
	}
	return ig.matcher.Match(strings.Split(rel, "/"), isDir)
}
