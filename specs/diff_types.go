package specs

// ChangeAction says what happens to an object between two desired states.
type ChangeAction string

// The change actions.
const (
	ChangeAdd    ChangeAction = "add"
	ChangeRemove ChangeAction = "remove"
	ChangeModify ChangeAction = "modify"
)

// Change is the difference for one object between two desired states.
type Change struct {
	Action     ChangeAction  `json:"action"`
	APIVersion string        `json:"apiVersion"`
	Kind       string        `json:"kind"`
	Namespace  string        `json:"namespace,omitempty"`
	Name       string        `json:"name"`
	Fields     []FieldChange `json:"fields,omitempty"`
}

// FieldChange is one changed field of a modified object. Old is absent for an
// added field and New for a removed one. For Secret data both values are
// withheld and Sensitive is true: a diff shows that a secret changed, never
// what it holds.
type FieldChange struct {
	// Op is add (the field is new), remove (it is gone) or modify.
	Op        ChangeAction `json:"op"`
	Path      string       `json:"path"`
	Old       any          `json:"old,omitempty"`
	New       any          `json:"new,omitempty"`
	Sensitive bool         `json:"sensitive,omitempty"`
}
