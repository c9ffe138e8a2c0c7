package reconciler

import "strings"

// expand replaces $(NAME) references in s following the Kubernetes rules
// (k8s.io/kubernetes third_party/forked/golang/expansion): "$$" is an
// escaped "$", a reference to a name lookup does not know is kept as
// written, and an unterminated "$(" is kept.
func expand(s string, lookup func(string) (string, bool)) string {
	if !strings.Contains(s, "$") {
		return s
	}
	var buf strings.Builder
	checkpoint := 0
	for cursor := 0; cursor < len(s); cursor++ {
		if s[cursor] != '$' || cursor+1 >= len(s) {
			continue
		}
		buf.WriteString(s[checkpoint:cursor])
		read, isVar, advance := readVariableName(s[cursor+1:])
		if isVar {
			if v, ok := lookup(read); ok {
				buf.WriteString(v)
			} else {
				buf.WriteString("$(" + read + ")")
			}
		} else {
			buf.WriteString(read)
		}
		cursor += advance
		checkpoint = cursor + 1
	}
	return buf.String() + s[checkpoint:]
}

// readVariableName reads what follows a '$': the name of a "(NAME)"
// reference (isVar), or the text to copy as is. advance is how many bytes
// of in were consumed.
func readVariableName(in string) (read string, isVar bool, advance int) {
	switch in[0] {
	case '$':
		return "$", false, 1
	case '(':
		for i := 1; i < len(in); i++ {
			if in[i] == ')' {
				return in[1:i], true, i + 1
			}
		}
		return "$(", false, 1
	default:
		return "$" + in[0:1], false, 1
	}
}

// expandAll expands every string of list against lookup.
func expandAll(list []string, lookup func(string) (string, bool)) []string {
	if list == nil {
		return nil
	}
	out := make([]string, len(list))
	for i, s := range list {
		out[i] = expand(s, lookup)
	}
	return out
}
