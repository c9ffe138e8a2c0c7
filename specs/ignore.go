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
	patterns []ignorePattern
}

// ignorePattern is one pattern line. go-git's matcher lets a directory-only
// pattern ("dir/", "!*/") match every file below such a directory; git
// applies it to directories alone (their files are excluded or not by the
// walk skipping the directory), so the flag is kept here to do as git does.
type ignorePattern struct {
	pattern gitignore.Pattern
	dirOnly bool
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
		ig.patterns = append(ig.patterns, ignorePattern{
			pattern: gitignore.ParsePattern(line, domain),
			dirOnly: strings.HasSuffix(line, "/"),
		})
	}
	return sc.Err()
}

// ignored reports whether rel (relative to the load root) is excluded.
func (ig *ignorer) ignored(rel string, isDir bool) bool {
	if len(ig.patterns) == 0 || rel == "." {
		return false
	}
	parts := strings.Split(rel, "/")
	for i := len(ig.patterns) - 1; i >= 0; i-- { // the last matching pattern decides
		p := ig.patterns[i]
		if p.dirOnly && !isDir {
			continue
		}
		switch p.pattern.Match(parts, isDir) {
		case gitignore.Exclude:
			return true
		case gitignore.Include:
			return false
		}
	}
	return false
}
