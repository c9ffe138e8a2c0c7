package overlay

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"
	"sync"

	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/api/types"
)

// FileNames are the names of a kustomization file, as kustomize knows them.
var FileNames = []string{"kustomization.yaml", "kustomization.yml", "Kustomization"}

// Options bound a build.
type Options struct {
	// MaxFileBytes is the largest file read, and the largest object built.
	MaxFileBytes int64
	// MaxFiles is the most files the build reads (a file read twice counts
	// twice), and the most objects it may return.
	MaxFiles int
}

// Document is one object built.
type Document struct {
	// Kind, Name and Namespace are the object's, as built.
	Kind, Name, Namespace string
	// Data is the object as YAML, without kustomize's annotations.
	Data []byte
	// Origin is the fs path of the file the object came from: a resource
	// file, or for a generated object the kustomization that configured the
	// generator. "" when kustomize did not say.
	Origin string
	// Generated is set when a generator made the object.
	Generated bool
}

// Result is what a build made.
type Result struct {
	// Docs are the objects built, in kustomize's order.
	Docs []Document
	// Uses are the directories of the other kustomizations the build read
	// (its bases and components, at any depth): fs paths, sorted.
	Uses []string
}

// Error is a build that failed: where (an fs path; Line 0 when unknown) and
// why.
type Error struct {
	File         string
	Line, Column int
	Message      string
}

// Error formats the problem as FILE:LINE:COL: MESSAGE.
func (e *Error) Error() string {
	switch {
	case e.Line == 0:
		return e.File + ": " + e.Message
	case e.Column == 0:
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Message)
	}
	return fmt.Sprintf("%s:%d:%d: %s", e.File, e.Line, e.Column, e.Message)
}

// Find returns the fs path of the kustomization file in directory dir, or
// "" when there is none. Two of them in one directory are an error, as in
// kustomize.
func Find(fsys fs.FS, dir string) (string, error) {
	found := ""
	for _, name := range FileNames {
		p := path.Join(dir, name)
		info, err := fs.Stat(fsys, p)
		if err != nil || info.IsDir() {
			continue
		}
		if found != "" {
			return "", &Error{File: p, Message: fmt.Sprintf("%s is in the same directory; keep one kustomization file", path.Base(found))}
		}
		found = p
	}
	return found, nil
}

// buildMu serializes builds: kustomize keeps global state (kyaml's OpenAPI
// schema, which a kustomization's openapi field replaces for the whole
// process), so Flux's kustomize-controller also builds one at a time.
var buildMu sync.Mutex

// Build runs kustomize on directory dir of fsys, which must hold a
// kustomization file, and returns the objects built and the kustomizations
// used.
// A failed build is an *Error naming the kustomization file (and line, for
// what kelpie refuses). It is safe for concurrent use; builds run one at a
// time.
func Build(fsys fs.FS, dir string, opts Options) (*Result, error) {
	buildMu.Lock()
	defer buildMu.Unlock()
	kust, err := Find(fsys, dir)
	if err != nil {
		return nil, err
	}
	if kust == "" {
		return nil, &Error{File: dir, Message: "no kustomization file"}
	}
	rfs := &repoFS{fsys: fsys, limits: opts, rootKust: kust}
	k := krusty.MakeKustomizer(&krusty.Options{
		Reorder:          krusty.ReorderOptionNone,
		LoadRestrictions: types.LoadRestrictionsRootOnly,
		PluginConfig:     types.DisabledPluginConfig(),
	})
	m, err := k.Run(rfs, virtual(dir))
	if err != nil {
		return nil, rfs.buildError(kust, err)
	}
	docs := make([]Document, 0, m.Size())
	for _, res := range m.Resources() {
		if len(docs) >= opts.MaxFiles {
			return nil, &Error{File: kust, Message: fmt.Sprintf("the kustomization builds more than %d objects; refused", opts.MaxFiles)}
		}
		d := Document{Kind: res.GetKind(), Name: res.GetName(), Namespace: res.GetNamespace()}
		origin, err := res.GetOrigin()
		if err == nil && origin != nil && origin.Repo == "" {
			p := origin.Path
			if origin.ConfiguredIn != "" {
				p, d.Generated = origin.ConfiguredIn, true
			}
			if p = inside(dir, p); p != "" {
				d.Origin, _ = rfs.follow(p) // the file itself, past symlinks
			}
		}
		docs = append(docs, d)
	}
	if err := m.RemoveOriginAnnotations(); err != nil {
		return nil, &Error{File: kust, Message: fmt.Sprintf("remove origin annotations: %v", err)}
	}
	if err := m.RemoveTransformerAnnotations(); err != nil {
		return nil, &Error{File: kust, Message: fmt.Sprintf("remove transformer annotations: %v", err)}
	}
	for i, res := range m.Resources() {
		data, err := res.AsYAML()
		if err != nil {
			return nil, &Error{File: kust, Message: fmt.Sprintf("%s %s: %v", docs[i].Kind, docs[i].Name, err)}
		}
		if int64(len(data)) > opts.MaxFileBytes {
			return nil, &Error{File: kust, Message: fmt.Sprintf("%s %s built is larger than the limit of %d bytes; refused", docs[i].Kind, docs[i].Name, opts.MaxFileBytes)}
		}
		docs[i].Data = data
	}
	res := &Result{Docs: docs}
	for f := range rfs.kustTexts {
		if f != kust {
			res.Uses = append(res.Uses, path.Dir(f))
		}
	}
	sort.Strings(res.Uses)
	return res, nil
}

// inside is the fs path of p, relative to directory dir, or "" when it
// leads out of the file system.
func inside(dir, p string) string {
	j := path.Join(dir, p)
	if p == "" || path.IsAbs(p) || j == ".." || strings.HasPrefix(j, "../") {
		return ""
	}
	return j
}

// buildError turns kustomize's failure into an Error: a refusal of kelpie's
// first, at its line; then a path out of the repository or a limit; then
// kustomize's own message, with the repository's paths relative again.
func (r *repoFS) buildError(kust string, err error) *Error {
	var e *Error
	switch {
	case r.refused != nil:
		return r.refused
	case errors.As(err, &e):
		return e
	case r.limit != nil:
		return &Error{File: kust, Message: r.limit.Error()}
	case r.escaped != "":
		if e := r.escapingEntry(kust); e != nil {
			return e
		}
		return &Error{File: kust, Message: "a path leads outside the repository (a ../ above its root, or a symlink out of it); refused"}
	}
	msg := strings.ReplaceAll(err.Error(), virtualRoot+"/", "")
	msg = strings.ReplaceAll(msg, virtualRoot, ".")
	return &Error{File: kust, Line: r.lineOf(kust, msg), Message: "kustomize: " + msg}
}

// escapingEntry finds the line of a kustomization read (the root one first)
// whose path goes above the repository's root with ../, or nil.
func (r *repoFS) escapingEntry(kust string) *Error {
	files := make([]string, 0, len(r.kustTexts))
	for f := range r.kustTexts {
		if f != kust {
			files = append(files, f)
		}
	}
	sort.Strings(files)
	for _, f := range append([]string{kust}, files...) {
		for i, l := range strings.Split(string(r.kustTexts[f]), "\n") {
			v := strings.TrimSpace(l)
			v = strings.TrimPrefix(v, "- ")
			v = strings.TrimSpace(strings.TrimPrefix(v, "path:"))
			v = strings.Trim(v, `"'`)
			if !strings.Contains(v, "..") {
				continue
			}
			if j := path.Join(path.Dir(f), v); j == ".." || strings.HasPrefix(j, "../") {
				return &Error{File: f, Line: i + 1, Message: fmt.Sprintf("%q leads outside the repository; refused", v)}
			}
		}
	}
	return nil
}

// lineOf guesses the line of kustomization kust that a kustomize error is
// about: the first line holding a quoted name of the message. 0 when none.
func (r *repoFS) lineOf(kust, msg string) int {
	text, ok := r.kustTexts[kust]
	if !ok {
		return 0
	}
	lines := strings.Split(string(text), "\n")
	for _, q := range quoted(msg) {
		for i, l := range lines {
			if strings.Contains(l, q) && !strings.HasPrefix(strings.TrimSpace(l), "#") {
				return i + 1
			}
		}
	}
	return 0
}

// quoted returns the names quoted with ' or " in msg (no spaces inside),
// last first: kustomize wraps errors outermost first, and quotes nest.
func quoted(msg string) []string {
	var out []string
	for _, q := range []string{"'", `"`} {
		parts := strings.Split(msg, q)
		for i := 1; i < len(parts)-1; i++ {
			if s := strings.TrimSpace(parts[i]); s != "" && !strings.ContainsAny(s, " \n:") {
				out = append(out, s)
			}
		}
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out
}
