package reconciler

import (
	"fmt"
	"os"
)

// Volume is one resolved pod volume.
type Volume struct {
	// Name is what Mounts refer to.
	Name string
	// Source is an EmptyDir, HostPath, Projected or Claim.
	Source VolumeSource
}

// VolumeSource is where a volume's content comes from: EmptyDir,
// HostPath, Projected or Claim. The set is closed; switch on the type.
type VolumeSource interface {
	volumeSource()
}

// EmptyDir is a directory created with the pod and removed with it.
type EmptyDir struct {
	// Medium is "" (the state dir's disk) or "Memory" (a tmpfs).
	Medium string
	// SizeLimit in bytes; 0 means none.
	SizeLimit int64
}

// HostPath is a path of the host. The runtime refuses paths outside its
// allow-list.
type HostPath struct {
	Path string
	// Type is the Kubernetes hostPath type ("", "Directory",
	// "DirectoryOrCreate", "File", "FileOrCreate", "Socket", "CharDevice",
	// "BlockDevice"); "" checks nothing.
	Type string
}

// Projected is a directory of files projected from a ConfigMap or a
// Secret, resolved to their content. The runtime writes them once per pod
// (a changed ConfigMap changes the pod's hash, so the pod is replaced).
type Projected struct {
	// Files, sorted by path. An optional ConfigMap or Secret that does not
	// exist gives no files.
	Files []File
	// Secret volumes go on a tmpfs and are never logged.
	Secret bool
}

// File is one projected file.
type File struct {
	// Path is relative to the volume's root, without "..".
	Path string
	Data []byte
	// Mode is the file's permission bits.
	Mode os.FileMode
}

// String describes the file without its content.
func (f File) String() string {
	return fmt.Sprintf("%s (%d bytes, %#o)", f.Path, len(f.Data), uint32(f.Mode.Perm()))
}

func (EmptyDir) volumeSource()  {}
func (HostPath) volumeSource()  {}
func (Projected) volumeSource() {}
func (Claim) volumeSource()     {}
