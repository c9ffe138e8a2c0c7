package specs

import (
	"bytes"
	"errors"
	"io"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// yamlLine extracts the line number from a yaml.v3 syntax error.
var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// parseDocuments splits a manifest file into its YAML documents, as node
// trees (aliases are not expanded here). Empty documents are skipped. A
// syntax error ends the file: YAML cannot be parsed past it.
func parseDocuments(file string, data []byte) ([]*yaml.Node, *Error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var docs []*yaml.Node
	for {
		var doc yaml.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return docs, yamlError(file, data, err)
		}
		root := deref(&doc)
		if root == nil || root.Kind == 0 || root.Kind == yaml.DocumentNode ||
			(root.Kind == yaml.ScalarNode && root.ShortTag() == "!!null") {
			continue
		}
		docs = append(docs, root)
	}
}

// yamlError converts a yaml.v3 error into a positioned Error. yaml.v3
// reports the line where the enclosing block starts, not the offending line,
// so the line is refined by re-parsing growing prefixes of the document
// until the same error appears (see refineLine).
func yamlError(file string, data []byte, err error) *Error {
	msg := err.Error()
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		return &Error{Pos: Position{File: file, Line: refineLine(data, line, m[2])}, Message: "invalid YAML: " + m[2]}
	}
	return &Error{Pos: Position{File: file}, Message: "invalid YAML: " + strings.TrimPrefix(msg, "yaml: ")}
}

// refineScanLines bounds how far past the reported line refineLine looks.
const refineScanLines = 400

// refineLine returns the first line at or after reported (1-based) such that
// the text up to and including it fails to parse with the same message; the
// reported line when none does within refineScanLines lines. Only the
// document holding the reported line is re-parsed.
func refineLine(data []byte, reported int, msg string) int {
	lines := bytes.SplitAfter(data, []byte("\n"))
	if reported < 1 || reported > len(lines) {
		return reported
	}
	start := 0 // first line (0-based) of the document holding the reported line
	for i := reported - 1; i >= 0; i-- {
		if bytes.HasPrefix(lines[i], []byte("---")) {
			start = i
			break
		}
	}
	end := min(len(lines), reported+refineScanLines)
	for k := max(reported, start+1); k <= end; k++ {
		prefix := bytes.Join(lines[start:k], nil)
		if failsWith(prefix, msg) {
			return k
		}
	}
	return reported
}

// failsWith reports whether parsing data fails with message msg.
func failsWith(data []byte, msg string) bool {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var doc yaml.Node
		err := dec.Decode(&doc)
		if err == nil {
			continue
		}
		if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
			return m[2] == msg
		}
		return false
	}
}
