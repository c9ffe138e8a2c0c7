package sops

import (
	"fmt"

	"gopkg.in/yaml.v3"
)

// Error is a problem with an encrypted file, at a node of it. Its message
// never holds a plaintext value.
type Error struct {
	// Line and Column are the node's position (1-based; 0 when unknown).
	Line, Column int
	// Field is the path of the value ("data.password",
	// "spec.template.spec.containers[0].env[1].value", "sops.mac"), or "".
	Field   string
	Message string
}

// Error formats the problem as "LINE:COL: FIELD: MESSAGE".
func (e *Error) Error() string {
	s := ""
	if e.Line > 0 {
		s = fmt.Sprintf("%d:%d: ", e.Line, e.Column)
	}
	if e.Field != "" {
		s += e.Field + ": "
	}
	return s + e.Message
}

// errorf is an Error at node n (which may be nil).
func errorf(n *yaml.Node, field, format string, args ...any) *Error {
	e := &Error{Field: field, Message: fmt.Sprintf(format, args...)}
	if n != nil {
		e.Line, e.Column = n.Line, n.Column
	}
	return e
}
