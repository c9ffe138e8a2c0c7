package mirror

import (
	"fmt"
	"io/fs"
	"sort"

	"github.com/kelpie-dev/kelpie/runtime/image"
	"github.com/kelpie-dev/kelpie/specs"
)

// manifestImages loads the manifests under root in fsys and returns the
// normalized references of every image their pods use (containers and init
// containers), sorted and without duplicates. A mirror holds no age key:
// SOPS-encrypted files are read undecrypted (an image reference is not a
// secret; one encrypted anyway is refused as an invalid reference).
func manifestImages(fsys fs.FS, root string) ([]string, error) {
	state, err := specs.Load(fsys, root, specs.Options{AllowUndecrypted: true})
	if err != nil {
		return nil, err
	}
	set := map[string]bool{}
	for _, obj := range state.Objects {
		tmpl := specs.PodTemplate(obj.Obj)
		if tmpl == nil {
			continue
		}
		for _, c := range append(tmpl.Spec.InitContainers, tmpl.Spec.Containers...) {
			ref, err := image.NormalizeRef(c.Image)
			if err != nil && obj.Undecrypted {
				return nil, fmt.Errorf("%s: container %s: invalid image reference (is it SOPS-encrypted? a mirror has no key to read it)", obj.Key(), c.Name)
			}
			if err != nil {
				return nil, fmt.Errorf("%s: %w", obj.Key(), err)
			}
			set[ref] = true
		}
	}
	out := make([]string, 0, len(set))
	for r := range set {
		out = append(out, r)
	}
	sort.Strings(out)
	return out, nil
}
