package specs

// Limits bound what Load accepts, so hostile input (alias bombs, deep
// nesting, huge files) is refused quickly instead of expanded into memory.
type Limits struct {
	// MaxFileBytes is the largest manifest file read. Larger files are an
	// error; they are never read past this size.
	MaxFileBytes int64
	// MaxNodes is the largest number of YAML nodes one document may expand
	// to, counting every node reached through an alias again.
	MaxNodes int
	// MaxDepth is the deepest nesting of mappings and sequences accepted.
	MaxDepth int
	// MaxFiles is the largest number of manifest files one load reads.
	MaxFiles int
}

// DefaultLimits returns limits that comfortably fit real manifests.
func DefaultLimits() Limits {
	return Limits{
		MaxFileBytes: 16 << 20, // 16 MiB: far above any hand-written manifest, well below memory pressure
		MaxNodes:     250_000,  // a large Deployment is ~500 nodes; a 10k-key ConfigMap ~20k
		MaxDepth:     64,       // Kubernetes objects nest ~15 deep; CRD-like data rarely past 30
		MaxFiles:     100_000,  // a site repository with this many manifests is a mistake
	}
}

// withDefaults fills zero fields from DefaultLimits.
func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	if l.MaxFileBytes <= 0 {
		l.MaxFileBytes = d.MaxFileBytes
	}
	if l.MaxNodes <= 0 {
		l.MaxNodes = d.MaxNodes
	}
	if l.MaxDepth <= 0 {
		l.MaxDepth = d.MaxDepth
	}
	if l.MaxFiles <= 0 {
		l.MaxFiles = d.MaxFiles
	}
	return l
}
