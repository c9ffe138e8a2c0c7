package source

import (
	"strings"
	"time"

	"github.com/go-git/go-git/v5/plumbing/object"
)

// shortLen is the length of Commit.Short: 12 hex digits stay unique in
// repositories far larger than a GitOps repository.
const shortLen = 12

// Commit is a resolved commit.
type Commit struct {
	Hash    string    // full 40-hex sha
	Short   string    // first 12 hex digits of Hash
	Subject string    // first paragraph of the message on one line, as `git log --format=%s`
	Author  string    // "Name <email>"
	When    time.Time // author time, as `git log` shows it
}

// String returns the short hash and the subject, like `git log --oneline`.
func (c Commit) String() string {
	return c.Short + " " + c.Subject
}

func newCommit(c *object.Commit) Commit {
	h := c.Hash.String()
	return Commit{
		Hash:    h,
		Short:   h[:shortLen],
		Subject: subject(c.Message),
		Author:  c.Author.String(),
		When:    c.Author.When,
	}
}

// subject returns the first paragraph of a commit message with its lines
// joined by spaces, as git's %s placeholder does.
func subject(msg string) string {
	var lines []string
	for line := range strings.Lines(msg) {
		line = strings.TrimSpace(line)
		if line == "" {
			if len(lines) > 0 {
				break
			}
			continue // leading blank lines
		}
		lines = append(lines, line)
	}
	return strings.Join(lines, " ")
}
