package specs

import (
	"fmt"
	"io/fs"
	"path"

	"gopkg.in/yaml.v3"
)

// ConfigFile is the optional file, in the root directory of the manifests,
// that says how kelpie reads them:
//
//	skipKinds: [ServiceAccount, Role, RoleBinding]   # kinds left out (listed in plans)
//
// Unknown keys are errors (FILE:LINE), as in manifests.
const ConfigFile = ".kelpie.yaml"

// repoConfig is the content of ConfigFile.
type repoConfig struct {
	SkipKinds []string `yaml:"skipKinds"`
}

// readRepoConfig reads ConfigFile in dir of fsys, if there is one. name is
// the file's name for positions.
func readRepoConfig(fsys fs.FS, dir, name string) (repoConfig, []*Error) {
	var cfg repoConfig
	data, err := fs.ReadFile(fsys, path.Join(dir, ConfigFile))
	if err != nil {
		if isNotExist(err) {
			return cfg, nil
		}
		return cfg, []*Error{{Pos: Position{File: name}, Message: fmt.Sprintf("cannot read: %v", unwrapPath(err))}}
	}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return cfg, []*Error{{Pos: Position{File: name}, Message: fmt.Sprintf("not valid YAML: %v", err)}}
	}
	if len(root.Content) == 0 {
		return cfg, nil
	}
	m := deref(root.Content[0])
	if m.Kind != yaml.MappingNode {
		return cfg, []*Error{{Pos: nodePos(name, m), Message: "want a mapping such as skipKinds: [ServiceAccount]"}}
	}
	var errs []*Error
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], deref(m.Content[i+1])
		switch k.Value {
		case "skipKinds":
			if v.Kind != yaml.SequenceNode {
				errs = append(errs, &Error{Pos: nodePos(name, v), Field: "skipKinds", Message: "want a list of kinds"})
				continue
			}
			for j, it := range v.Content {
				it = deref(it)
				if it.Kind != yaml.ScalarNode || it.Value == "" {
					errs = append(errs, &Error{Pos: nodePos(name, it), Field: fmt.Sprintf("skipKinds[%d]", j), Message: "want a kind name"})
					continue
				}
				cfg.SkipKinds = append(cfg.SkipKinds, it.Value)
			}
		default:
			errs = append(errs, &Error{Pos: nodePos(name, k), Field: k.Value, Message: "unknown setting (known: skipKinds)"})
		}
	}
	return cfg, errs
}
