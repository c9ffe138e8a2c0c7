package cli

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/kelpie-dev/kelpie/specs"
)

// printDiff writes changes terraform-plan style: one line per object with
// +, - or ~, the changed fields of modified objects below it, and a summary.
func printDiff(w io.Writer, z colorizer, from, to string, changes []specs.Change) {
	if len(changes) == 0 {
		fmt.Fprintf(w, "No changes: %s and %s hold the same desired state.\n", termSafe(from), termSafe(to))
		return
	}
	fmt.Fprintf(w, "Changes from %s to %s:\n\n", z.bold(termSafe(from)), z.bold(termSafe(to)))
	var add, mod, del int
	for _, ch := range changes {
		key := specs.Key{Kind: ch.Kind, Namespace: ch.Namespace, Name: ch.Name}.String()
		switch ch.Action {
		case specs.ChangeAdd:
			add++
			fmt.Fprintf(w, "  %s %s\n", z.green("+"), z.bold(termSafe(key)))
		case specs.ChangeRemove:
			del++
			fmt.Fprintf(w, "  %s %s\n", z.red("-"), z.bold(termSafe(key)))
		default:
			mod++
			fmt.Fprintf(w, "  %s %s\n", z.yellow("~"), z.bold(termSafe(key)))
			for _, f := range ch.Fields {
				fmt.Fprintf(w, "      %s\n", fieldLine(z, f))
			}
		}
	}
	fmt.Fprintf(w, "\nDiff: %d to add, %d to change, %d to remove.\n", add, mod, del)
}

// fieldLine formats one field change.
func fieldLine(z colorizer, f specs.FieldChange) string {
	f.Path = termSafe(f.Path)
	if f.Sensitive {
		switch f.Op {
		case specs.ChangeAdd:
			return fmt.Sprintf("%s %s: (sensitive value)", z.green("+"), f.Path)
		case specs.ChangeRemove:
			return fmt.Sprintf("%s %s: (sensitive value)", z.red("-"), f.Path)
		default:
			return fmt.Sprintf("%s %s: (sensitive value changed)", z.yellow("~"), f.Path)
		}
	}
	switch f.Op {
	case specs.ChangeAdd:
		return fmt.Sprintf("%s %s: %s", z.green("+"), f.Path, showValue(f.New))
	case specs.ChangeRemove:
		return fmt.Sprintf("%s %s: %s", z.red("-"), f.Path, showValue(f.Old))
	default:
		return fmt.Sprintf("%s %s: %s → %s", z.yellow("~"), f.Path, showValue(f.Old), showValue(f.New))
	}
}

// showValue renders a field value as compact JSON (strings quoted).
func showValue(v any) string {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(data)
}
