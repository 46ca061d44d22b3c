package main

import (
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"sigs.k8s.io/yaml"
)

// APIVersion stamps every JSON and YAML document migrate prints.
const APIVersion = "migrate/v1"

// render prints v in the format the user chose with -o. JSON and YAML are
// the stable, versioned forms; table is for people and is built by table.
func render(w io.Writer, format string, v any, table func(tw *tabwriter.Writer)) error {
	switch format {
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	case "yaml":
		js, err := json.Marshal(v)
		if err != nil {
			return err
		}
		y, err := yaml.JSONToYAML(js)
		if err != nil {
			return err
		}
		_, err = w.Write(y)
		return err
	default:
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		table(tw)
		return tw.Flush()
	}
}

// row writes one tab-separated table row.
func row(tw io.Writer, cells ...any) {
	for i, c := range cells {
		if i > 0 {
			fmt.Fprint(tw, "\t")
		}
		fmt.Fprint(tw, c)
	}
	fmt.Fprintln(tw)
}

// fileOutputFlag lets commands that write a file (plan, report) accept the
// documented "-o FILE": when -o is not a data format it names the file.
func fileOutputFlag(g *globalOptions, out *string) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		switch g.output {
		case "table", "json", "yaml":
		default:
			if *out != "" && *out != g.output {
				return usageErrorf("-o %s and --out %s name two output files; use one", g.output, *out)
			}
			*out, g.output = g.output, "table"
		}
		return cmd.Root().PersistentPreRunE(cmd, args)
	}
}
