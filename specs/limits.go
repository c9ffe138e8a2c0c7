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

// Limits on what the manifests may ask for. They keep a hostile or mistaken
// commit (`replicas: 2147483647`) from making every agent and the scheduler
// allocate without bound: validation refuses more, with the field's
// position, before anything is expanded or placed. docs/manifests.md lists
// them for operators.
const (
	// MaxReplicas is the largest spec.replicas of a Deployment, and the
	// largest spec.parallelism and spec.completions of a Job (or of a
	// CronJob's job template). 10,000 is the size the scheduler is built
	// and tested for in one whole cluster.
	MaxReplicas = 10_000
	// MaxPods is the most pods one desired state may ask for in all:
	// Deployment replicas, one per Pod and per DaemonSet (on each host), and
	// the parallelism of each Job and CronJob.
	MaxPods = 50_000
	// MaxContainersPerPod bounds the containers of one pod, init
	// containers included.
	MaxContainersPerPod = 100
	// MaxPortsPerContainer bounds the ports of one container.
	MaxPortsPerContainer = 100
	// MaxEnvPerContainer bounds the env and envFrom entries of one
	// container, together.
	MaxEnvPerContainer = 1_000
	// MaxDataBytes bounds the data of one ConfigMap (data and binaryData
	// values) or Secret (data and stringData values), as Kubernetes does:
	// 1 MiB.
	MaxDataBytes = 1 << 20
)
