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
			return docs, yamlError(file, err)
		}
		root := deref(&doc)
		if root == nil || root.Kind == 0 || root.Kind == yaml.DocumentNode ||
			(root.Kind == yaml.ScalarNode && root.ShortTag() == "!!null") {
			continue
		}
		docs = append(docs, root)
	}
}

// yamlError converts a yaml.v3 error into a positioned Error.
func yamlError(file string, err error) *Error {
	msg := err.Error()
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		return &Error{Pos: Position{File: file, Line: line}, Message: "invalid YAML: " + m[2]}
	}
	return &Error{Pos: Position{File: file}, Message: "invalid YAML: " + strings.TrimPrefix(msg, "yaml: ")}
}
