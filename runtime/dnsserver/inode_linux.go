package dnsserver

import (
	"os"
	"syscall"
)

// inode returns a file's inode number (a rename over the file changes it).
func inode(st os.FileInfo) uint64 {
	if s, ok := st.Sys().(*syscall.Stat_t); ok {
		return s.Ino
	}
	return 0
}
