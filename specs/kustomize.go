package specs

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/kelpie-dev/kelpie/overlay"
)

// A directory of a source that holds a kustomization file (the root or any
// directory below it) is built with kustomize (package overlay), and the
// objects built stand for every file under it: the walk does not go below
// it, so a base under it is loaded only through the kustomizations that
// reference it. A kustomization directory the walk met that another one
// built in the same source uses (a base beside its overlays) is not loaded
// on its own either. docs/manifests.md states the rule.

// build is a kustomization built during a source's walk, whose objects are
// queued once the walk is over.
type build struct {
	dir   string // in the source's FS
	kname string // the kustomization file's display name
	fsys  fs.FS  // where the build read, and its origins are
	name  func(string) string
	docs  []overlay.Document
	uses  []string // kustomization directories used, in the source's FS
	sops  *sopsFS  // what the build read decrypted
}

// queueBuilds queues the objects of a source's builds for decoding, but for
// builds that another of them uses: those objects came through it already.
func (l *loader) queueBuilds(builds []*build) {
	used := map[string]bool{}
	for _, b := range builds {
		for _, u := range b.uses {
			used[u] = true
		}
	}
	for _, b := range builds {
		if !used[b.dir] {
			l.queueBuild(b)
		}
	}
}

// loadKustomization builds the kustomization in directory dir (file kust).
// A failed build is recorded as an error, and nil returned.
func (l *loader) loadKustomization(src Source, dir, kust string) *build {
	kname := displayName(src.Prefix, kust)
	b := &build{dir: dir, kname: kname}
	fsys, name := src.FS, func(p string) string { return displayName(src.Prefix, p) }
	local := func(p string) string { return p }
	if src.Repo != nil && src.RepoDir != "" && src.RepoDir != "." {
		fsys, dir = src.Repo, path.Join(src.RepoDir, dir)
		name = func(p string) string { return displayName(src.Prefix, relativeTo(src.RepoDir, p)) }
		local = func(p string) string { return relativeTo(src.RepoDir, p) }
	}
	dfs, sfs := decryptingFS(fsys, l.decrypt, l.limits.MaxFileBytes, name)
	res, err := overlay.Build(dfs, dir, overlay.Options{MaxFileBytes: l.limits.MaxFileBytes, MaxFiles: l.limits.MaxFiles})
	if len(sfs.errs) > 0 {
		// A file that does not decrypt refuses the build, at its own
		// position rather than at kustomize's word for it.
		l.errs = append(l.errs, sfs.errs...)
		l.unparsed = true
		return nil
	}
	if err != nil {
		e := &Error{Pos: Position{File: kname}, Message: err.Error()}
		var oe *overlay.Error
		if errors.As(err, &oe) {
			e = &Error{Pos: Position{File: name(oe.File), Line: oe.Line, Column: oe.Column}, Message: oe.Message}
		}
		l.errs = append(l.errs, e)
		l.unparsed = true // what it would have built is unknown
		return nil
	}
	b.fsys, b.name, b.docs, b.sops = fsys, name, res.Docs, sfs
	for _, u := range res.Uses {
		b.uses = append(b.uses, local(u))
	}
	return b
}

// queueBuild queues each object built for decoding, positioned in the file
// it came from.
func (l *loader) queueBuild(b *build) {
	fsys, name := b.fsys, b.name
	sources := map[string][]*yaml.Node{}
	for _, d := range b.docs {
		if len(l.files) >= l.limits.MaxFiles {
			if len(l.files) == l.limits.MaxFiles {
				l.errs = append(l.errs, &Error{Pos: Position{File: b.kname}, Message: fmt.Sprintf("more than %d manifest files and objects built; refused", l.limits.MaxFiles)})
				l.files = append(l.files, &fileJob{name: b.kname}) // counted once
			}
			return
		}
		o := &origin{file: b.kname}
		if d.Origin != "" {
			o.file = name(d.Origin)
		}
		if d.Origin != "" {
			srcDocs, ok := sources[d.Origin]
			if !ok {
				if data, err := readLimited(fsys, d.Origin, l.limits.MaxFileBytes); err == nil {
					srcDocs, _ = parseDocuments(o.file, data)
				}
				sources[d.Origin] = srcDocs
			}
			if d.Generated {
				o.at = matchGenerator(srcDocs, d.Kind, d.Name)
			} else {
				o.doc = matchDocument(srcDocs, d.Kind, d.Name, d.Namespace)
			}
		}
		job := &fileJob{name: o.file, data: d.Data, skip: l.skip, origin: o}
		job.origin.encryption, job.plaintexts = b.sops.encryption(d.Origin)
		l.files = append(l.files, job)
	}
}

// relativeTo is slash path p (relative to a file system's root) as seen
// from directory dir of the same file system: "../base/web.yaml".
func relativeTo(dir, p string) string {
	if dir == "." {
		return p
	}
	ds, ps := strings.Split(path.Clean(dir), "/"), strings.Split(path.Clean(p), "/")
	i := 0
	for i < len(ds) && i < len(ps) && ds[i] == ps[i] {
		i++
	}
	up := make([]string, 0, len(ds)-i+len(ps)-i)
	for range ds[i:] {
		up = append(up, "..")
	}
	return path.Join(append(up, ps[i:]...)...)
}

// origin is where an object built by kustomize came from: the document of
// the source file it was written in, when found, or only the file (the
// kustomization, for a generated object).
type origin struct {
	file string
	doc  *yaml.Node // nil when unknown
	// at is the generator's entry in the kustomization, for a generated
	// object (nil when unknown).
	at *yaml.Node
	// encryption is how the source file's SOPS-encrypted values were read
	// before the build (notEncrypted for a file in clear).
	encryption encryption
}

// remap moves the positions of what decoding one built document (out)
// produced (errors from ne on, items from ni on, skipped from ns on) from
// the kustomize output to the source file: an error at a node of out goes
// to the same node (key or value) in the source document, or to its nearest
// ancestor there (a field a patch added); the rest to the source document's
// start. Items keep the source document, so validation errors are placed
// the same way.
func (o *origin) remap(job *fileJob, out *yaml.Node, ne, ni, ns int) {
	for _, e := range job.errs[ne:] {
		segs, key, ok := nodePath(out, e.Pos.Line, e.Pos.Column)
		e.Pos = o.pos("")
		if ok && o.doc != nil {
			e.Pos = nodePos(o.file, follow(o.doc, segs, key))
		}
	}
	for _, it := range job.items[ni:] {
		it.obj.Pos = o.pos("")
		switch {
		case o.doc != nil:
			it.root = o.doc
		case o.at != nil:
			it.root = &yaml.Node{Kind: yaml.MappingNode, Line: o.at.Line, Column: o.at.Column}
		default:
			it.root = &yaml.Node{Kind: yaml.MappingNode}
		}
	}
	for i := range job.skipped[ns:] {
		job.skipped[ns+i].Pos = o.pos("")
	}
}

// pos is the position of field (a field path; "" for the document) in the
// source.
func (o *origin) pos(field string) Position {
	if o.doc == nil {
		if o.at != nil {
			return nodePos(o.file, o.at)
		}
		return Position{File: o.file}
	}
	if field == "" {
		return nodePos(o.file, o.doc)
	}
	return nodePos(o.file, locate(o.doc, field))
}

// nodePath returns the path from n to the node at line:col: the mapping
// keys and sequence indexes on the way, and whether the node is a key.
func nodePath(n *yaml.Node, line, col int) (segs []string, key, ok bool) {
	if n == nil {
		return nil, false, false
	}
	if n.Line == line && n.Column == col && n.Kind != yaml.DocumentNode {
		return nil, false, true
	}
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) > 0 {
			return nodePath(n.Content[0], line, col)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Line == line && k.Column == col {
				return []string{k.Value}, true, true
			}
			if s, isKey, found := nodePath(v, line, col); found {
				return append([]string{k.Value}, s...), isKey, true
			}
		}
	case yaml.SequenceNode:
		for i, it := range n.Content {
			if s, isKey, found := nodePath(it, line, col); found {
				return append([]string{strconv.Itoa(i)}, s...), isKey, true
			}
		}
	}
	return nil, false, false
}

// follow walks segs from n and returns the node there (its key node when
// key is set), or the deepest node on the way.
func follow(n *yaml.Node, segs []string, key bool) *yaml.Node {
	cur := deref(n)
	for i, seg := range segs {
		if key && i == len(segs)-1 && cur.Kind == yaml.MappingNode {
			for j := 0; j+1 < len(cur.Content); j += 2 {
				if cur.Content[j].Value == seg {
					return cur.Content[j]
				}
			}
			return cur
		}
		budget := maxMergeHops
		next := child(cur, pathSegment{name: seg}, &budget)
		if next == nil {
			return cur
		}
		cur = next
	}
	return cur
}

// matchGenerator finds the entry of the generator that made an object in
// its kustomization's documents: the configMapGenerator (ConfigMap) or
// secretGenerator (Secret) entry whose name the object's name contains (the
// longest), or nil.
func matchGenerator(docs []*yaml.Node, kind, name string) *yaml.Node {
	field := map[string]string{KindConfigMap: "configMapGenerator", KindSecret: "secretGenerator"}[kind]
	if len(docs) == 0 || field == "" {
		return nil
	}
	list := explicitChild(docs[0], field)
	if list == nil || list.Kind != yaml.SequenceNode {
		return nil
	}
	var best *yaml.Node
	bestLen := -1
	for _, entry := range list.Content {
		if entry.Kind != yaml.MappingNode {
			continue
		}
		if n, _ := topScalar(entry, "name"); n != "" && len(n) > bestLen && strings.Contains(name, n) {
			best, bestLen = entry, len(n)
		}
	}
	return best
}

// matchDocument finds the document of an object among a source file's
// documents: the one of its kind and name; else, as kustomize renames
// (namePrefix, nameSuffix), the one of its kind whose name the object's
// name contains, the longest; else the only one of its kind. nil when none
// fits.
func matchDocument(docs []*yaml.Node, kind, name, namespace string) *yaml.Node {
	var best, only *yaml.Node
	bestLen, ofKind := -1, 0
	for _, d := range docs {
		if d.Kind != yaml.MappingNode {
			continue
		}
		if k, _ := topScalar(d, "kind"); k != kind {
			continue
		}
		ofKind++
		only = d
		var n string
		if meta := mappingValue(d, "metadata"); meta != nil {
			n, _ = topScalar(meta, "name")
		}
		switch {
		case n == name:
			return d
		case n != "" && len(n) > bestLen && strings.Contains(name, n):
			best, bestLen = d, len(n)
		}
	}
	if best != nil {
		return best
	}
	if ofKind == 1 {
		return only
	}
	return nil
}
