package cli

import (
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/sagedeploy/sagedeploy/internal/buildinfo"
)

func newVersionCmd(g *globals) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the version, commit and build date",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			i := buildinfo.Get()
			if output == "json" {
				return json.NewEncoder(g.stdout).Encode(i)
			}
			_, err := fmt.Fprintf(g.stdout, "sagedeploy %s (commit %s, built %s)\n", i.Version, orUnknown(i.Commit), orUnknown(i.Date))
			return err
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json")
	return cmd
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}
