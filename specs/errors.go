package specs

import (
	"fmt"
	"sort"
	"strings"
)

// Position is a place in a manifest file. Line and Column are 1-based; a zero
// Line means the position is unknown (for example a file-level error).
type Position struct {
	File   string `json:"file"`
	Line   int    `json:"line"`
	Column int    `json:"column"`
}

// String formats the position compiler style: "file:line:col".
func (p Position) String() string {
	switch {
	case p.Line == 0:
		return p.File
	case p.Column == 0:
		return fmt.Sprintf("%s:%d", p.File, p.Line)
	default:
		return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Column)
	}
}

// Error is one problem found in a manifest: where it is, which field it
// concerns (a dotted path such as "spec.template.spec.containers[0].image";
// empty for document-level problems) and what is wrong.
type Error struct {
	Pos     Position `json:"-"`
	Field   string   `json:"field,omitempty"`
	Message string   `json:"message"`
}

// Error formats the problem like a compiler message:
// "apps/web.yaml:14:7: spec.replicas: expected integer, got "two"".
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Pos.String())
	b.WriteString(": ")
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Message)
	return b.String()
}

// ErrorList is every problem found in one load. Load returns a non-empty
// ErrorList (never a bare *Error) when manifests are invalid.
type ErrorList []*Error

// Error joins the problems, one per line.
func (l ErrorList) Error() string {
	lines := make([]string, len(l))
	for i, e := range l {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Sort orders the list by file, line, column and message, so output is
// deterministic whatever order the checks ran in.
func (l ErrorList) Sort() {
	sort.SliceStable(l, func(i, j int) bool {
		a, b := l[i], l[j]
		if a.Pos.File != b.Pos.File {
			return a.Pos.File < b.Pos.File
		}
		if a.Pos.Line != b.Pos.Line {
			return a.Pos.Line < b.Pos.Line
		}
		if a.Pos.Column != b.Pos.Column {
			return a.Pos.Column < b.Pos.Column
		}
		if a.Field != b.Field {
			return a.Field < b.Field
		}
		return a.Message < b.Message
	})
}
