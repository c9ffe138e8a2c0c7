package specs

import "fmt"

// Key identifies an object in a desired state: two objects with the same key
// are duplicates.
type Key struct {
	Kind      string `json:"kind"`
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name"`
}

// String formats the key as "Kind/namespace/name" (or "Kind/name" for
// cluster-scoped kinds).
func (k Key) String() string {
	if k.Namespace == "" {
		return k.Kind + "/" + k.Name
	}
	return fmt.Sprintf("%s/%s/%s", k.Kind, k.Namespace, k.Name)
}

// Less orders keys by kind, namespace and name.
func (k Key) Less(o Key) bool {
	if k.Kind != o.Kind {
		return k.Kind < o.Kind
	}
	if k.Namespace != o.Namespace {
		return k.Namespace < o.Namespace
	}
	return k.Name < o.Name
}

// Object is one decoded, defaulted and validated manifest document.
type Object struct {
	// APIVersion and Kind are the document's type, e.g. "apps/v1" and "Deployment".
	APIVersion string
	Kind       string
	// Namespace is the object's namespace ("default" when the manifest omits
	// it); empty for cluster-scoped kinds (Namespace, Network).
	Namespace string
	Name      string
	// Pos is where the document starts.
	Pos Position
	// Obj is the typed object: *corev1.Pod, *appsv1.Deployment,
	// *appsv1.DaemonSet, *batchv1.Job, *batchv1.CronJob, *corev1.Service,
	// *corev1.Secret, *corev1.ConfigMap, *corev1.PersistentVolumeClaim,
	// *corev1.Namespace or *Network. Status fields are always zero.
	Obj any
	// Encrypted is set when the manifest held SOPS-encrypted values: diffs
	// and messages withhold every value of the object.
	Encrypted bool
	// Undecrypted is set when those values were not decrypted (loaded with
	// Options.AllowUndecrypted and no key): they are placeholders.
	Undecrypted bool
	// Hash is the canonical content hash ("sha256:<hex>") of the defaulted
	// object: stable across key order, comments and formatting.
	Hash string
}

// Key returns the object's identity.
func (o *Object) Key() Key {
	return Key{Kind: o.Kind, Namespace: o.Namespace, Name: o.Name}
}

// DesiredState is the validated content of one manifest tree. Objects are
// sorted by Key.
type DesiredState struct {
	Objects []*Object
	// Skipped are the documents left out because their kind is skipped
	// (Options.SkipKinds, skipKinds in ConfigFile), in file order.
	Skipped []Skipped
	index   map[Key]*Object
}

// Get returns the object with key k, or nil.
func (d *DesiredState) Get(k Key) *Object {
	if d == nil {
		return nil
	}
	return d.index[k]
}

// Len reports the number of objects.
func (d *DesiredState) Len() int {
	if d == nil {
		return 0
	}
	return len(d.Objects)
}
