// Command mkimages writes kelpie's example images, built from the host's
// busybox-static binary, as an OCI image layout into a directory that
// `kelpie apply --image-dir DIR` (and the agent) use directly: so the
// bundled examples run with no registry. Used by scripts and benchmarks.
//
//	go run ./internal/testimage/mkimages DIR
package main

import (
	"fmt"
	"os"

	"github.com/kelpie-dev/kelpie/internal/testimage"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: mkimages DIR")
		os.Exit(2)
	}
	if err := testimage.WriteLayout(os.Args[1], testimage.Standard()...); err != nil {
		fmt.Fprintf(os.Stderr, "mkimages: %v\n", err)
		os.Exit(1)
	}
	for _, s := range testimage.Standard() {
		fmt.Println(s.Name)
	}
}
