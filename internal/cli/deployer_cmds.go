package cli

import "github.com/spf13/cobra"

// addDeployerCommands registers this group's commands on root. Placeholder until the group lands.
func addDeployerCommands(root *cobra.Command, g *globals) {}
