package specs

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"

	"filippo.io/age"
	"gopkg.in/yaml.v3"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kelpie-dev/kelpie/overlay"
	"github.com/kelpie-dev/kelpie/specs/sops"
)

// DefaultNamespace is the namespace of objects whose manifest names none.
const DefaultNamespace = "default"

// Options configure a load.
type Options struct {
	// Limits bound hostile input; zero fields take DefaultLimits.
	Limits Limits
	// Workers is how many files are parsed and decoded at once; 0 means
	// GOMAXPROCS. Files are read one at a time, and the result (objects and
	// errors, in order) is the same whatever the number.
	Workers int
	// SkipKinds are kinds left out of the desired state (--skip-kind): a
	// document of such a kind is not decoded, and is listed in
	// DesiredState.Skipped. A source's ConfigFile may add kinds
	// (skipKinds).
	SkipKinds []string
	// NodePortRange is the inclusive range a NodePort Service's nodePort
	// must be in: the agents' --service-node-port-range. Zero means
	// DefaultNodePortRange.
	NodePortRange [2]int32
	// AgeIdentities decrypt SOPS-encrypted manifest files (--age-key-file;
	// see DecryptFile). A file that none of them decrypts is refused.
	AgeIdentities []age.Identity
	// AllowUndecrypted lets a SOPS-encrypted file load without keys (no
	// AgeIdentities): it is checked for form only, its encrypted values are
	// placeholders and its objects are marked Undecrypted. For validate and
	// diff, never for what runs.
	AllowUndecrypted bool
}

// Source is one tree or file to load.
type Source struct {
	// FS holds the manifests: a work tree (os.DirFS), a git tree or a test map.
	FS fs.FS
	// Root is the directory or file inside FS to load; "" means ".".
	Root string
	// Prefix is prepended to file names in positions, so errors name the
	// path the user typed (e.g. "examples/site").
	Prefix string
	// Repo, when set, is the repository FS is part of, and RepoDir where
	// FS's root is in it (a slash path): a kustomization under FS may then
	// use bases and files elsewhere in Repo (../../base), never outside it.
	// Nil means FS is the whole repository.
	Repo    fs.FS
	RepoDir string
}

// Load reads, decodes, defaults and validates every manifest under root in
// fsys. Every *.yaml and *.yml file below root is read (recursively),
// except dot-files, dot-directories and paths matched by .kelpieignore; a
// root that names a file loads that file whatever its extension. A
// directory holding a kustomization file (kustomization.yaml, .yml or
// Kustomization), the root or one met in the walk, is built with kustomize
// instead, and the walk does not go below it: the objects built stand for
// its files, and their positions point at the files they came from. On invalid
// input Load returns a nil state and an ErrorList holding every problem found.
func Load(fsys fs.FS, root string, opts Options) (*DesiredState, error) {
	return LoadSources(opts, Source{FS: fsys, Root: root})
}

// LoadSources is Load over several trees or files validated as one desired
// state (references and duplicates are checked across all of them).
func LoadSources(opts Options, sources ...Source) (*DesiredState, error) {
	l := &loader{limits: opts.Limits.withDefaults(), workers: opts.Workers, failed: map[Key]bool{}, skip: skipSet{}, nodePorts: opts.NodePortRange,
		decrypt: decryption{ids: opts.AgeIdentities, allowUndecrypted: opts.AllowUndecrypted}}
	if l.nodePorts == ([2]int32{}) {
		l.nodePorts = DefaultNodePortRange
	}
	l.skip.add(opts.SkipKinds, "--skip-kind")
	for _, src := range sources {
		if err := l.loadSource(src); err != nil {
			return nil, err
		}
	}
	l.decodeFiles()
	l.finish()
	if len(l.errs) > 0 {
		l.errs.Sort()
		withholdPlaintexts(l.errs, l.plaintexts)
		return nil, l.errs
	}
	state := &DesiredState{index: make(map[Key]*Object, len(l.items)), Skipped: l.skipped}
	for _, it := range l.items {
		state.Objects = append(state.Objects, it.obj)
		state.index[it.obj.Key()] = it.obj
	}
	sort.Slice(state.Objects, func(i, j int) bool { return state.Objects[i].Key().Less(state.Objects[j].Key()) })
	return state, nil
}

// loader holds the state of one Load.
type loader struct {
	limits  Limits
	workers int
	files   []*fileJob
	errs    ErrorList
	items   []*item
	refs    []reference
	// failed holds the keys of documents that did not decode, so references
	// to them are not reported as missing a second time.
	failed map[Key]bool
	// unparsed is set when a file had a syntax error: the objects in its
	// unparsed part are unknown, so missing references are not reported.
	unparsed bool
	// skip are the kinds left out, and why; skipped the documents left out.
	skip    skipSet
	skipped []Skipped
	// nodePorts is the range a nodePort must be in (Options.NodePortRange).
	nodePorts [2]int32
	// decrypt says how SOPS-encrypted files are read; plaintexts are the
	// values decrypted, which no message may quote.
	decrypt    decryption
	plaintexts []string
}

// item is a decoded object with the YAML it came from, kept until
// validation has positioned its errors.
type item struct {
	obj  *Object
	root *yaml.Node
}

// loadSource walks one source. A returned error is an I/O failure of the
// source itself, not a manifest problem.
func (l *loader) loadSource(src Source) error {
	root := src.Root
	if root == "" {
		root = "."
	}
	info, err := fs.Stat(src.FS, root)
	if err != nil {
		return fmt.Errorf("read manifests %s: %w", displayName(src.Prefix, root), err)
	}
	if !info.IsDir() {
		if slices.Contains(overlay.FileNames, path.Base(root)) {
			// A kustomization file named as the root builds its directory.
			if b := l.loadKustomization(src, path.Dir(root), root); b != nil {
				l.queueBuilds([]*build{b})
			}
			return nil
		}
		l.loadFile(src, root, path.Base(root))
		return nil
	}
	cfgName := displayName(src.Prefix, path.Join(root, ConfigFile))
	cfg, cerrs := readRepoConfig(src.FS, root, cfgName)
	l.errs = append(l.errs, cerrs...)
	l.skip.add(cfg.SkipKinds, "skipKinds in "+cfgName)
	var ig ignorer
	var builds []*build
	defer func() { l.queueBuilds(builds) }()
	return fs.WalkDir(src.FS, root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("read manifests %s: %w", displayName(src.Prefix, p), err)
		}
		rel := relPath(root, p)
		if rel != "." && strings.HasPrefix(d.Name(), ".") {
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if ig.ignored(rel, d.IsDir()) {
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			kust, err := overlay.Find(src.FS, p)
			if err != nil {
				l.errs = append(l.errs, &Error{Pos: Position{File: displayName(src.Prefix, p)}, Message: err.Error()})
				return fs.SkipDir
			}
			if kust != "" {
				if b := l.loadKustomization(src, p, kust); b != nil {
					builds = append(builds, b)
				}
				return fs.SkipDir
			}
			if err := ig.load(src.FS, p, rel); err != nil {
				return fmt.Errorf("read %s: %w", displayName(src.Prefix, path.Join(p, IgnoreFile)), err)
			}
			return nil
		}
		if ext := path.Ext(p); ext != ".yaml" && ext != ".yml" {
			return nil
		}
		if d.Type()&fs.ModeSymlink != 0 {
			// A link to a manifest counts as the manifest (fs.Stat follows
			// links where the file system has them); anything else is skipped.
			info, err := fs.Stat(src.FS, p)
			if err != nil || !info.Mode().IsRegular() {
				return nil
			}
		} else if !d.Type().IsRegular() {
			return nil
		}
		l.loadFile(src, p, rel)
		return nil
	})
}

// fileJob is one manifest file read from a source, waiting to be decoded.
type fileJob struct {
	name string
	data []byte
	// The decoding's outcome.
	items     []*item
	errs      ErrorList
	failed    []Key
	syntaxErr bool // part of the file could not be parsed
	// skip are the kinds left out (read only while decoding); skipped
	// the documents left out.
	skip    skipSet
	skipped []Skipped
	// nodePorts is the range a nodePort must be in (Options.NodePortRange).
	nodePorts [2]int32
	// decrypt says how SOPS-encrypted files are read; encrypted marks the
	// documents that held encrypted values.
	decrypt    decryption
	encrypted  map[*yaml.Node]encryption
	plaintexts []string
	// origin is set for an object built by kustomize: the file and
	// document it came from, where its positions are moved.
	origin *origin
}

// loadFile reads one manifest file for decoding.
func (l *loader) loadFile(src Source, p, rel string) {
	name := displayName(src.Prefix, p)
	if len(l.files) >= l.limits.MaxFiles {
		if len(l.files) == l.limits.MaxFiles {
			l.errs = append(l.errs, &Error{Pos: Position{File: name}, Message: fmt.Sprintf("more than %d manifest files; refused", l.limits.MaxFiles)})
			l.files = append(l.files, &fileJob{name: name}) // counted once
		}
		return
	}
	data, err := readLimited(src.FS, p, l.limits.MaxFileBytes)
	if err != nil {
		l.errs = append(l.errs, &Error{Pos: Position{File: name}, Message: err.Error()})
		return
	}
	l.files = append(l.files, &fileJob{name: name, data: data, skip: l.skip, decrypt: l.decrypt})
}

// decodeFiles parses and decodes every file read, on up to l.workers
// goroutines (pure computation: the files were read already), then merges
// the results in file order so the outcome does not depend on scheduling.
func (l *loader) decodeFiles() {
	workers := l.workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	workers = min(workers, len(l.files))
	next := make(chan *fileJob)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			dec := decoder{limits: l.limits}
			for job := range next {
				job.decode(&dec)
			}
		}()
	}
	for _, job := range l.files {
		if job.data != nil {
			next <- job
		}
	}
	close(next)
	wg.Wait()
	for _, job := range l.files {
		l.items = append(l.items, job.items...)
		l.errs = append(l.errs, job.errs...)
		l.skipped = append(l.skipped, job.skipped...)
		l.plaintexts = append(l.plaintexts, job.plaintexts...)
		for _, k := range job.failed {
			l.failed[k] = true
		}
		l.unparsed = l.unparsed || job.syntaxErr
		job.data = nil
	}
}

// decode parses the file's documents and decodes each into a typed object.
func (job *fileJob) decode(dec *decoder) {
	docs, perr := parseDocuments(job.name, job.data)
	if sops.Encrypted(docs) {
		if perr != nil {
			// The MAC covers the whole file: a file read in part cannot be
			// decrypted.
			job.errs = append(job.errs, perr)
			job.syntaxErr = true
			return
		}
		if !job.decryptDocuments(docs) {
			return
		}
	}
	if job.origin != nil && job.origin.encryption != notEncrypted {
		// Built from a file decrypted before the build (sopsFS).
		if job.encrypted == nil {
			job.encrypted = map[*yaml.Node]encryption{}
		}
		for _, doc := range docs {
			job.encrypted[doc] = job.origin.encryption
		}
	}
	for _, doc := range docs {
		ne, ni, ns := len(job.errs), len(job.items), len(job.skipped)
		job.decodeDocument(dec, doc)
		if job.origin != nil {
			job.origin.remap(job, doc, ne, ni, ns)
		}
	}
	if perr != nil {
		if job.origin != nil {
			perr.Pos = job.origin.pos("")
		}
		job.errs = append(job.errs, perr)
		job.syntaxErr = true
	}
}

// readLimited reads a file, refusing one larger than max bytes without
// reading past the limit.
func readLimited(fsys fs.FS, p string, max int64) ([]byte, error) {
	f, err := fsys.Open(p)
	if err != nil {
		return nil, fmt.Errorf("cannot read: %w", unwrapPath(err))
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, fmt.Errorf("cannot read: %w", unwrapPath(err))
	}
	if int64(len(data)) > max {
		return nil, fmt.Errorf("file is larger than the limit of %d bytes; refused", max)
	}
	return data, nil
}

// decodeDocument decodes one YAML document into a typed object.
func (job *fileJob) decodeDocument(dec *decoder, root *yaml.Node) {
	file := job.name
	pos := Position{File: file, Line: root.Line, Column: root.Column}
	if root.Kind != yaml.MappingNode {
		job.errs = append(job.errs, &Error{Pos: pos, Message: fmt.Sprintf("a manifest document must be a mapping with apiVersion and kind, got %s", describe(root))})
		return
	}
	apiVersion, avNode := topScalar(root, "apiVersion")
	kind, kindNode := topScalar(root, "kind")
	if apiVersion == "" || kind == "" {
		var missing []string
		if apiVersion == "" {
			missing = append(missing, "apiVersion")
		}
		if kind == "" {
			missing = append(missing, "kind")
		}
		job.errs = append(job.errs, &Error{Pos: pos, Message: "document has no " + strings.Join(missing, " and ")})
		return
	}
	if why, ok := job.skip[kind]; ok {
		s := Skipped{APIVersion: apiVersion, Kind: kind, Pos: pos, Why: why}
		if meta := mappingValue(root, "metadata"); meta != nil {
			s.Name, _ = topScalar(meta, "name")
			s.Namespace, _ = topScalar(meta, "namespace")
		}
		job.skipped = append(job.skipped, s)
		return
	}
	ki, ok := kinds[kind]
	if !ok {
		msg, known := foreignKindMessage(kind)
		if !known {
			msg = fmt.Sprintf("unsupported kind %q (apiVersion %s); kelpie supports %s", kind, apiVersion, supportedKindList())
		}
		job.errs = append(job.errs, &Error{Pos: nodePos(file, kindNode), Field: "kind", Message: msg})
		return
	}
	if ki.apiVersion != apiVersion {
		job.errs = append(job.errs, &Error{Pos: nodePos(file, avNode), Field: "apiVersion",
			Message: fmt.Sprintf("apiVersion %q is not supported for %s; use %q", apiVersion, kind, ki.apiVersion)})
		return
	}
	enc := job.encrypted[root]
	dec.file = file
	dec.secret = kind == KindSecret
	dec.withhold = enc != notEncrypted
	dec.nodes = 0
	dec.aborted = false
	dec.errs = nil
	v := dec.decode(root, ki.typ)
	if len(dec.errs) > 0 {
		job.errs = append(job.errs, dec.errs...)
		job.failed = append(job.failed, failedKey(root, kind, ki.namespaced))
		return
	}
	meta := v.(metav1.Object)
	obj := &Object{APIVersion: apiVersion, Kind: kind, Name: meta.GetName(), Namespace: meta.GetNamespace(), Pos: pos, Obj: v,
		Encrypted: enc != notEncrypted, Undecrypted: enc == encryptedMasked}
	it := &item{obj: obj, root: root}
	if ki.namespaced && obj.Namespace == "" {
		obj.Namespace = DefaultNamespace
		meta.SetNamespace(DefaultNamespace)
	}
	if !ki.namespaced && obj.Namespace != "" {
		job.errs = append(job.errs, itemError(it, "metadata.namespace", "%s is cluster-scoped; remove metadata.namespace", kind))
		return
	}
	job.items = append(job.items, it)
}

// errorAt records a problem at field path of an item.
func (l *loader) errorAt(it *item, field, format string, args ...any) {
	l.errs = append(l.errs, itemError(it, field, format, args...))
}

// itemError is a problem at field path of an item, positioned at the YAML
// node of that field (or its nearest ancestor present in the manifest).
func itemError(it *item, field, format string, args ...any) *Error {
	n := locate(it.root, field)
	return &Error{Pos: nodePos(it.obj.Pos.File, n), Field: field, Message: fmt.Sprintf(format, args...)}
}

// topScalar returns the value and node of a top-level scalar key.
func topScalar(m *yaml.Node, key string) (string, *yaml.Node) {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			v := deref(m.Content[i+1])
			if v.Kind == yaml.ScalarNode && v.ShortTag() == "!!str" {
				return v.Value, v
			}
			return "", v
		}
	}
	return "", m
}

// nodePos is the position of node n in file.
func nodePos(file string, n *yaml.Node) Position {
	return Position{File: file, Line: n.Line, Column: n.Column}
}

// displayName joins a source prefix and a path inside the source.
func displayName(prefix, p string) string {
	switch {
	case prefix == "":
		return p
	case strings.HasSuffix(prefix, ":"): // "REV:" names a path in a commit, as git does
		return prefix + path.Clean(p)
	}
	return path.Join(prefix, p)
}

// relPath is p relative to root (both fs.FS paths).
func relPath(root, p string) string {
	if root == "." {
		return p
	}
	if p == root {
		return "."
	}
	return strings.TrimPrefix(p, root+"/")
}

// isNotExist reports whether err means a missing file.
func isNotExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }

// unwrapPath strips the *fs.PathError wrapper (the file is named already).
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// failedKey is the best-effort key of a document that failed to decode.
func failedKey(root *yaml.Node, kind string, namespaced bool) Key {
	k := Key{Kind: kind}
	if meta := explicitChild(root, "metadata"); meta != nil && meta.Kind == yaml.MappingNode {
		if n := explicitChild(meta, "name"); n != nil {
			k.Name = n.Value
		}
		if namespaced {
			k.Namespace = DefaultNamespace
			if n := explicitChild(meta, "namespace"); n != nil && n.Value != "" {
				k.Namespace = n.Value
			}
		}
	}
	return k
}

// mappingValue returns the mapping value of key in mapping m, or nil.
func mappingValue(m *yaml.Node, key string) *yaml.Node {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			if v := deref(m.Content[i+1]); v.Kind == yaml.MappingNode {
				return v
			}
			return nil
		}
	}
	return nil
}
