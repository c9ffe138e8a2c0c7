package cli

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/urfave/cli/v2"
)

// Version is kelpie's release version, set at link time:
//
//	go build -ldflags "-X github.com/kelpie-dev/kelpie/cli.Version=v1.2.3" ./cmd/kelpie
//
// When empty, kelpie version reports the main module's version from the
// binary's build info, or "dev".
var Version string

// Commit is the git commit kelpie was built from, set at link time like
// Version (-X github.com/kelpie-dev/kelpie/cli.Commit=...). When empty, the
// vcs.revision the go command stamped into the binary is used, if any.
var Commit string

// versionInfo is what kelpie version prints.
type versionInfo struct {
	Version   string `json:"version"`
	Commit    string `json:"commit"`
	GoVersion string `json:"goVersion"`
	OS        string `json:"os"`
	Arch      string `json:"arch"`
}

// versionCommand is kelpie version.
func versionCommand() *cli.Command {
	return &cli.Command{
		Name:  "version",
		Usage: "print kelpie's version, git commit, Go version and platform",
		Flags: []cli.Flag{outputFlag()},
		Action: func(c *cli.Context) error {
			format, err := outputFormat(c)
			if err != nil {
				return err
			}
			if c.Args().Present() {
				return usageErrorf(c, "unexpected argument %q: version takes none", c.Args().First())
			}
			info, _ := debug.ReadBuildInfo()
			v := resolveVersion(Version, Commit, info)
			if format == formatJSON {
				return writeJSON(c.App.Writer, v)
			}
			_, err = fmt.Fprintf(c.App.Writer, "version:  %s\ncommit:   %s\ngo:       %s\nplatform: %s/%s\n",
				v.Version, v.Commit, v.GoVersion, v.OS, v.Arch)
			return err
		},
	}
}

// resolveVersion combines the link-time values with the build info (which
// may be nil): link-time values win, then the module version and VCS stamp,
// then "dev" and "unknown".
func resolveVersion(version, commit string, info *debug.BuildInfo) versionInfo {
	v := versionInfo{
		Version:   version,
		Commit:    commit,
		GoVersion: runtime.Version(),
		OS:        runtime.GOOS,
		Arch:      runtime.GOARCH,
	}
	if info != nil {
		if v.Version == "" && info.Main.Version != "" && info.Main.Version != "(devel)" {
			v.Version = info.Main.Version
		}
		if v.Commit == "" {
			var revision string
			var modified bool
			for _, s := range info.Settings {
				switch s.Key {
				case "vcs.revision":
					revision = s.Value
				case "vcs.modified":
					modified = s.Value == "true"
				}
			}
			if revision != "" && modified {
				revision += "-dirty"
			}
			v.Commit = revision
		}
	}
	if v.Version == "" {
		v.Version = "dev"
	}
	if v.Commit == "" {
		v.Commit = "unknown"
	}
	return v
}
