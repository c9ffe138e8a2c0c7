package specs

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
)

// TestDiffGolden diffs two manifest trees and compares the JSON with a golden file.
func TestDiffGolden(t *testing.T) {
	from, err := Load(os.DirFS("testdata/diff/from"), ".", Options{})
	if err != nil {
		t.Fatal(err)
	}
	to, err := Load(os.DirFS("testdata/diff/to"), ".", Options{})
	if err != nil {
		t.Fatal(err)
	}
	changes, err := Diff(from, to)
	if err != nil {
		t.Fatal(err)
	}
	out, err := json.MarshalIndent(changes, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	goldenCheck(t, "testdata/diff/changes.golden", string(out)+"\n")
	if strings.Contains(string(out), "hunter2") || strings.Contains(string(out), "czNjcjN0") || strings.Contains(string(out), "s3cr3t") {
		t.Error("diff leaks a secret value")
	}
}

// TestDiffProperties checks diffing a state with itself is empty, with nil
// is all adds or all removes, and that the diff is symmetric in its actions.
func TestDiffProperties(t *testing.T) {
	state, err := Load(os.DirFS(corpusValid), ".", Options{})
	if err != nil {
		t.Fatal(err)
	}
	same, err := Diff(state, state)
	if err != nil || len(same) != 0 {
		t.Fatalf("self diff: %v %v", same, err)
	}
	adds, _ := Diff(nil, state)
	removes, _ := Diff(state, nil)
	if len(adds) != state.Len() || len(removes) != state.Len() {
		t.Fatalf("adds %d removes %d, want %d", len(adds), len(removes), state.Len())
	}
	for i := range adds {
		if adds[i].Action != ChangeAdd || removes[i].Action != ChangeRemove || adds[i].Name != removes[i].Name {
			t.Errorf("change %d: %+v / %+v", i, adds[i], removes[i])
		}
	}
	from, _ := Load(os.DirFS("testdata/diff/from"), ".", Options{})
	to, _ := Load(os.DirFS("testdata/diff/to"), ".", Options{})
	fwd, _ := Diff(from, to)
	back, _ := Diff(to, from)
	if len(fwd) != len(back) {
		t.Fatalf("forward %d changes, backward %d", len(fwd), len(back))
	}
	opposite := map[ChangeAction]ChangeAction{ChangeAdd: ChangeRemove, ChangeRemove: ChangeAdd, ChangeModify: ChangeModify}
	for i := range fwd {
		if back[i].Action != opposite[fwd[i].Action] || len(back[i].Fields) != len(fwd[i].Fields) {
			t.Errorf("%s: forward %s/%d fields, backward %s/%d fields", fwd[i].Name, fwd[i].Action, len(fwd[i].Fields), back[i].Action, len(back[i].Fields))
		}
	}
}
