// Command kelpie keeps a fleet of container hosts in the state a git
// repository describes. It only runs the application in package cli.
package main

import (
	"os"

	"github.com/kelpie-dev/kelpie/cli"
)

func main() {
	os.Exit(cli.Main(os.Args, os.Stdin, os.Stdout, os.Stderr))
}
