// Package statedir owns the layout of kelpie's state dir (/var/lib/kelpie by
// default): the names of its subdirectories, the keys of the files in them,
// and the atomic writes, labels and leftovers-removal that every runtime
// package (network, volume, host) shares there. It never decides what lives
// in the state dir, and it never talks to containerd or CNI.
package statedir
