package cli

import (
	"cmp"
	"fmt"

	"github.com/spf13/cobra"
)

func newVersionCmd(g *globals) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:     "version",
		Short:   "Print the version, commit and build date",
		Example: "  sagedeploy version",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			i := g.version
			if output == "json" {
				return writeJSONLine(g.stdout, i)
			}
			_, err := fmt.Fprintf(g.stdout, "sagedeploy %s (commit %s, built %s)\n", i.Version, cmp.Or(i.Commit, "unknown"), cmp.Or(i.Date, "unknown"))
			return err
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json")
	return cmd
}
