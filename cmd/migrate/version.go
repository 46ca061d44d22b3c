package main

import (
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// version is set at link time: -ldflags "-X main.version=v1.2.3".
var version = "dev"

type versionInfo struct {
	APIVersion string `json:"apiVersion"`
	Version    string `json:"version"`
	Commit     string `json:"commit,omitempty"`
	Go         string `json:"go"`
	Platform   string `json:"platform"`
}

func newVersionCmd(s *streams, g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:     "version",
		Short:   "Print the migrate version",
		Args:    cobra.NoArgs,
		Example: "  migrate version\n  migrate version -o json",
		RunE: func(*cobra.Command, []string) error {
			info := versionInfo{APIVersion: APIVersion, Version: version, Go: runtime.Version(),
				Platform: runtime.GOOS + "/" + runtime.GOARCH}
			if bi, ok := debug.ReadBuildInfo(); ok {
				for _, kv := range bi.Settings {
					if kv.Key == "vcs.revision" {
						info.Commit = kv.Value
					}
				}
			}
			return render(s.out, g.output, info, func(tw *tableWriter) {
				row(tw, "version", info.Version)
				if info.Commit != "" {
					row(tw, "commit", info.Commit)
				}
				row(tw, "go", info.Go)
				row(tw, "platform", info.Platform)
			})
		},
	}
}
