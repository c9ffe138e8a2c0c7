package overlay

import (
	"bytes"
	"fmt"
	"strings"

	"gopkg.in/yaml.v3"
)

// refusedFields are kustomization fields kelpie does not build, and why.
var refusedFields = map[string]string{
	"helmCharts":                  "helm charts are not supported: kelpie builds kustomizations without running helm; render the chart and commit its output",
	"helmChartInflationGenerator": "helm charts are not supported: kelpie builds kustomizations without running helm; render the chart and commit its output",
	"helmGlobals":                 "helm charts are not supported: kelpie builds kustomizations without running helm; render the chart and commit its output",
	"generators":                  "kustomize plugins are off: use the kustomization's own fields (configMapGenerator, patches, replacements, ...)",
	"transformers":                "kustomize plugins are off: use the kustomization's own fields (namePrefix, labels, patches, replacements, ...)",
	"validators":                  "kustomize plugins are off",
}

// pathLists are kustomization fields holding lists of paths.
var pathLists = []string{"resources", "bases", "components", "crds", "configurations", "patchesStrategicMerge"}

// pathEntries are kustomization fields holding lists of mappings with a
// path field.
var pathEntries = []string{"patches", "patchesJson6902", "replacements"}

// generatorFields are kustomization fields holding generators, whose
// files, envs and env name files.
var generatorFields = []string{"configMapGenerator", "secretGenerator"}

// refusals checks a kustomization for what kelpie refuses to build: remote
// bases and files, helm charts and plugins. It returns the first, at its
// line, or nil. Content kustomize cannot parse is left for kustomize to
// report.
func refusals(file string, data []byte) *Error {
	var doc yaml.Node
	if err := yaml.NewDecoder(bytes.NewReader(data)).Decode(&doc); err != nil || len(doc.Content) == 0 {
		return nil
	}
	m := doc.Content[0]
	if m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], m.Content[i+1]
		if why, ok := refusedFields[k.Value]; ok {
			return &Error{File: file, Line: k.Line, Column: k.Column, Message: k.Value + ": " + why}
		}
		var e *Error
		switch {
		case contains(pathLists, k.Value):
			e = checkList(file, k.Value, v)
		case contains(pathEntries, k.Value):
			e = checkEntries(file, k.Value, v, "path")
		case contains(generatorFields, k.Value):
			e = checkGenerators(file, k.Value, v)
		case k.Value == "openapi" && v.Kind == yaml.MappingNode:
			e = checkEntry(file, k.Value, v, "path")
		}
		if e != nil {
			return e
		}
	}
	return nil
}

// checkList checks a list of paths (inline YAML in the list, as
// patchesStrategicMerge allows, is skipped).
func checkList(file, field string, v *yaml.Node) *Error {
	if v.Kind != yaml.SequenceNode {
		return nil
	}
	for i, it := range v.Content {
		if it.Kind == yaml.ScalarNode && !strings.Contains(it.Value, "\n") && isRemote(it.Value) {
			return remoteError(file, fmt.Sprintf("%s[%d]", field, i), it)
		}
	}
	return nil
}

// checkEntries checks the key field of each mapping in a list.
func checkEntries(file, field string, v *yaml.Node, key string) *Error {
	if v.Kind != yaml.SequenceNode {
		return nil
	}
	for i, it := range v.Content {
		if e := checkEntry(file, fmt.Sprintf("%s[%d]", field, i), it, key); e != nil {
			return e
		}
	}
	return nil
}

// checkEntry checks the key field of one mapping.
func checkEntry(file, field string, m *yaml.Node, key string) *Error {
	if m.Kind != yaml.MappingNode {
		return nil
	}
	for j := 0; j+1 < len(m.Content); j += 2 {
		if p := m.Content[j+1]; m.Content[j].Value == key && p.Kind == yaml.ScalarNode && isRemote(p.Value) {
			return remoteError(file, field+"."+key, p)
		}
	}
	return nil
}

// checkGenerators checks the files a ConfigMap or Secret generator reads.
func checkGenerators(file, field string, v *yaml.Node) *Error {
	if v.Kind != yaml.SequenceNode {
		return nil
	}
	for i, g := range v.Content {
		if g.Kind != yaml.MappingNode {
			continue
		}
		for j := 0; j+1 < len(g.Content); j += 2 {
			name, val := g.Content[j].Value, g.Content[j+1]
			at := fmt.Sprintf("%s[%d].%s", field, i, name)
			switch name {
			case "env":
				if val.Kind == yaml.ScalarNode && isRemote(val.Value) {
					return remoteError(file, at, val)
				}
			case "files", "envs":
				if val.Kind != yaml.SequenceNode {
					continue
				}
				for k, f := range val.Content {
					// "key=path" names the key of a file.
					_, p, found := strings.Cut(f.Value, "=")
					if !found {
						p = f.Value
					}
					if f.Kind == yaml.ScalarNode && isRemote(p) {
						return remoteError(file, fmt.Sprintf("%s[%d]", at, k), f)
					}
				}
			}
		}
	}
	return nil
}

// remoteError is the refusal of a remote reference.
func remoteError(file, field string, n *yaml.Node) *Error {
	return &Error{File: file, Line: n.Line, Column: n.Column,
		Message: fmt.Sprintf("%s: %q is remote; kelpie builds kustomizations from the repository alone, without network access: vendor it into the repository", field, n.Value)}
}

// isRemote reports whether kustomize would fetch a reference over the
// network (or clone it with git): a URL with a scheme, a go-getter or
// GitHub shorthand, an SCP-like user@host:path, or a github.com path. It
// errs on the side of refusing.
func isRemote(ref string) bool {
	s := strings.ToLower(strings.TrimSpace(ref))
	if strings.Contains(s, "://") || strings.HasPrefix(s, "git::") || strings.HasPrefix(s, "gh:") {
		return true
	}
	first, _, _ := strings.Cut(s, "/")
	if strings.Contains(first, "@") {
		return true
	}
	return first == "github.com" || strings.HasPrefix(first, "github.com:")
}

// contains reports whether list holds s.
func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// withOriginAnnotations adds originAnnotations to a kustomization's
// buildMetadata, so every object built records the file it came from. The
// text is appended when the field is absent (line numbers stay those of the
// file); otherwise the document is rewritten.
func withOriginAnnotations(data []byte) ([]byte, error) {
	var doc yaml.Node
	if err := yaml.NewDecoder(bytes.NewReader(data)).Decode(&doc); err != nil || len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		return data, nil // kustomize reports what is wrong with it
	}
	m := doc.Content[0]
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value != "buildMetadata" {
			continue
		}
		v := m.Content[i+1]
		if v.Kind != yaml.SequenceNode {
			return data, nil
		}
		for _, it := range v.Content {
			if it.Value == "originAnnotations" {
				return data, nil
			}
		}
		v.Content = append(v.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: "originAnnotations"})
		return yaml.Marshal(m)
	}
	if m.Style&yaml.FlowStyle != 0 || bytes.Count(data, []byte("\n---")) > 0 {
		m.Content = append(m.Content,
			&yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: "buildMetadata"},
			&yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq", Content: []*yaml.Node{{Kind: yaml.ScalarNode, Tag: "!!str", Value: "originAnnotations"}}})
		return yaml.Marshal(m)
	}
	out := append([]byte{}, data...)
	if len(out) > 0 && out[len(out)-1] != '\n' {
		out = append(out, '\n')
	}
	return append(out, "buildMetadata: [originAnnotations]\n"...), nil
}
